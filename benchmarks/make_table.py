"""Regenerate the README's benchmark table from benchmarks/results/*.json, and the
generated blocks of docs/benchmark.md (effects table) and docs/synthetic.md (calibration).

python benchmarks/make_table.py     # rewrites the blocks between the markers
"""

from __future__ import annotations

import json
from pathlib import Path

from effects_table import calibration_rows, effects_rows

ROOT = Path(__file__).parents[1]
START, END = "<!-- BENCH:START -->", "<!-- BENCH:END -->"


def _load(name: str) -> dict | None:
    p = ROOT / "benchmarks" / "results" / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def rows() -> list[str]:
    out = ["| benchmark | measured | reference in the same run | machine |", "|---|---|---|---|"]
    cpu = lambda r: f"{r['machine']['cores']} CPU cores"  # noqa: E731
    if ev := _load("eval"):
        s = ev["sysu_sized"]
        out.append(
            f"| SYSU-sized eval, 3,803 × 301, 10 trials | {s['ours_s']:.2f} s "
            f"(metrics identical: {s['metrics_identical']}) | per-query loop "
            f"{s['loop_s']:.2f} s → **{s['speedup']:.1f}×** | {cpu(ev)} |"
        )
        if lg := ev.get("large"):
            out.append(
                f"| eval {lg['n']:,} × {lg['n']:,} from features | {lg['seconds']:.0f} s,"
                f" peak RSS {lg['peak_rss_mb']:.0f} MB | a dense float64 distance "
                f"matrix alone: {lg['dense_dist_would_need_mb']:,.0f} MB | {cpu(ev)} |"
            )
    if d := _load("data"):
        for g in d["generation"]:
            out.append(
                f"| synthetic generation {g['size']} | {g['images_per_s']:.0f} images/s "
                f"| – | 1 process |"
            )
        by = {(r["workers"], r["cache"]): r["images_per_s"] for r in d["loader"]}
        for w in (0, 2):
            out.append(
                f"| train loader 288×144, {w} workers | cache {by[(w, True)]:.0f} "
                f"images/s | decode JPEG each time {by[(w, False)]:.0f} images/s | "
                f"{cpu(d)} |"
            )
    if t := _load("train_cpu"):
        r = t["runs"][0]
        out.append(
            f"| train ResNet-50 two-stream 288×144, CPU fp32 | {r['images_per_s']:.1f} "
            f"images/s, peak RSS {r['peak_rss_mb']:.0f} MB | – | {cpu(t)} |"
        )
    if t := _load("train_methods_cpu"):
        for r in t["runs"]:
            out.append(
                f"| train step cost, method `{r['method']}` (ResNet-50 288×144, batch 64, CPU"
                f" fp32) | {r['images_per_s']:.1f} images/s | ×{r['relative_to_first']:.2f}"
                f" of `{t['runs'][0]['method']}` in the same run | {cpu(t)} |"
            )
    if t := _load("train_gpu"):
        for r in t["runs"]:
            mode = r["amp"] if r["amp"] != "off" else "fp32"
            cl = " + channels_last" if r["channels_last"] else ""
            out.append(
                f"| train ResNet-50 two-stream 288×144, {mode}{cl} | "
                f"{r['images_per_s']:.0f} images/s, peak {r['peak_gpu_mem_mb']:.0f} MB"
                f" | – | {r['gpu']} |"
            )
    # the isotropic model (cluster) and a trained network's features (scale_features.py)
    for name in ("cluster", "cluster_real_agw", "cluster_real_agw_r50"):
        if c := _load(name):
            for r in c["runs"]:
                out += _cluster_rows(r, c)
    for name in ("cluster_gpu", "cluster_gpu_1m", "cluster_gpu_1m_d2048", "cluster_gpu_1m_h200"):
        if c := _load(name):
            out += [_gpu_cluster_row(r, c["machine"]) for r in c["runs"]]
    if k := _load("knn_gpu"):
        out += [_knn_gpu_row(r, k["machine"]) for r in k["runs"]]
    out += emcc_rows(cpu) + index_rows(cpu) + onnx_rows(cpu) + serve_rows(cpu)
    out += serve_mixed_rows(cpu) + cli_rows(cpu)
    for name in ("mmm_step", "mmm_step_ivf", "mmm_step_real_agw", "mmm_step_real_agw_ivf"):
        if st := _load(name):
            out.append(_mmm_step_row(st, cpu(st)))
    return out


def cli_rows(cpu) -> list[str]:
    """Start-up of ``vireid --help`` and of commands that stop at an error."""
    c = _load("cli_startup")
    if not c:
        return []
    what = {
        "help": "`vireid --help`",
        "config_error": "`vireid config validate` with an unknown key",
        "missing_recipe": "`vireid train` of a missing recipe",
    }
    load = c["load_average"][0]
    out = []
    for case, label in what.items():
        o, r = c["ours"][case], c["reference_run"][case]
        out.append(
            f"| CLI start-up, {label} | {o['cpu_s']:.2f} s CPU, {o['wall_s']:.2f} s wall "
            f"(load average {load:.0f}) | eager imports ({c['reference']}) {r['cpu_s']:.2f} s "
            f"CPU, {r['wall_s']:.1f} s wall → **{o['speedup_cpu']:.0f}×** CPU | {cpu(c)} |"
        )
    return out


# the clustering rows' features besides the isotropic model (benchmarks/scale_features.py)
FEATURES = {
    "agw": " (features of a trained network: AGW quickstart, ResNet-18 width 0.5)",
    "agw_r50": " (features of a trained network: AGW, ResNet-50)",
}


def _mmm_step_row(st: dict, cpu: str) -> str:
    """The MMM step: total and per stage; the k-means reference (one scikit-learn fit
    per cluster) of the same run; with approximate neighbours, the agreement with the
    exact clusterings."""
    skip = ("total_s", "total_cpu_s", "cpu_s", "kmeans_reference_s")
    stages = {k[:-2]: v for k, v in st.items() if k.endswith("_s") and k not in skip}
    measured = f"{st['total_s']:.1f} s ({_stages(stages)}), peak {st['peak_algo_mb']:.0f} MB"
    ref = "–"
    if "kmeans_reference_s" in st:
        ref = (
            f"k-means: one scikit-learn KMeans per cluster {st['kmeans_reference_s']:.1f} s →"
            f" **{st['kmeans_speedup']:.1f}×**, inertia ratio {st['kmeans_inertia_ratio']:.4f}"
        )
    if "ari_vs_exact_joint" in st:
        ari = ", ".join(
            f"{m} {st[f'ari_vs_exact_{m}']:.4f}" for m in ("visible", "infrared", "joint")
        )
        ref += f"; vs exact-kNN labels ARI {ari}"
    if "ari_vs_ids_joint" in st:
        ari = ", ".join(
            f"{m} {st[f'ari_vs_ids_{m}']:.3f}" for m in ("visible", "infrared", "joint")
        )
        ref += f"; vs identities ARI {ari}"
    feats = FEATURES.get(st.get("features"), "")
    return (
        f"| MMM pseudo-label step, {st['visible']:,} + {st['infrared']:,} × {st['dim']}{feats}, "
        f"{st.get('knn', 'exact')} kNN (3 clusterings, k-means n_init {st['kmeans_n_init']},"
        f" matching) | {measured} | {ref} | {cpu} |"
    )


def emcc_rows(cpu) -> list[str]:
    """ECUL's EMCC distance next to the modality-balanced Jaccard, same run."""
    e = _load("emcc")
    if not e:
        return []
    j, m = e["jaccard_modality"], e["emcc"]
    return [
        f"| EMCC + DBSCAN (ECUL joint clustering: k1 {e['k1']}, k2 {e['k2']}, k3 {e['k3']}, "
        f"camera-aware), N = {e['n']:,}, D = {e['dim']} | {m['seconds']:.1f} s, "
        f"+{m['algo_mb']:.0f} MB (peak RSS {m['peak_mb']:.0f} MB incl. features) | "
        f"`jaccard_distance(modality=...)` {j['seconds']:.1f} s, +{j['algo_mb']:.0f} MB → "
        f"×{e['time_ratio']:.2f} time | {cpu(e)} |"
    ]


DEFAULT_KNOB = {"ivf": ("nprobe", 16), "hnsw": ("ef_search", 64)}


def index_rows(cpu) -> list[str]:
    """Gallery index at 1M: flat, then each approximate kind at its default knob."""
    ix = _load("index_1m")
    if not ix:
        return []
    f, size = ix["flat"], f"N = {ix['n']:,}, D = {ix['dim']}"
    out = [
        f"| gallery index, flat (exact), {size} | {f['ms_single']:.1f} ms per query "
        f"({f['ms_per_query_batch']:.2f} ms each in a batch of {ix['queries']:,}) | – | "
        f"{cpu(ix)} |"
    ]
    for kind, (key, value) in DEFAULT_KNOB.items():
        if kind not in ix:
            continue
        k = ix[kind]
        r = next(r for r in k["runs"] if r[key] == value)
        shape = f"nlist {k['nlist']:,}" if kind == "ivf" else f"M {k['hnsw_m']}"
        out.append(
            f"| gallery index, {kind} ({shape}, {key} {value}), {size} | recall@10 "
            f"{r['recall_at_10']:.3f}, {r['ms_single']:.2f} ms per query, build "
            f"{k['build_s']:.0f} s | flat {f['ms_single']:.1f} ms per query → "
            f"**{r['speedup_single_vs_flat']:.0f}×** | {cpu(ix)} |"
        )
    return out


def onnx_rows(cpu) -> list[str]:
    o = _load("onnx")
    if not o:
        return []
    return [
        f"| ONNX export, {r['model']}: {r['arch']}, {r['input']}, D = {r['dim']} | "
        f"onnxruntime max abs difference {r['max_abs_diff']:.1e} over {o['images']} images"
        f" | torch `FeatureExtractor` in the same run | {cpu(o)} |"
        for r in o["runs"]
    ]


def serve_rows(cpu) -> list[str]:
    s = _load("serve_load")
    if not s:
        return []
    lat = s["latency_ms"]
    return [
        f"| `vireid serve` on loopback, {s['requests']} POST /search, {s['concurrency']} "
        f"concurrent ({s['model']}, {s['gallery_images']:,} images) | "
        f"{s['throughput_rps']:.1f} requests/s, p50 {lat['p50']:.0f} ms, p95 "
        f"{lat['p95']:.0f} ms; {s['failed']} failed, index unchanged: "
        f"{s['index_unchanged']} | in process, no HTTP: {s['in_process_ms_per_query']:.0f} ms"
        f" per query | {cpu(s)} |"
    ]


def serve_mixed_rows(cpu) -> list[str]:
    """bench_serve.py's mixed load (issue 26): searches and additions from many clients
    against a large index, one row each; the additions' row carries the restart check.
    The load average is part of the machine: the times are the shared machine's."""
    s = _load("serve_mixed")
    if not s:
        return []
    srch, add, rss = s["search_ms"], s["add_ms"], s["server_rss_mb"]
    load = s["load_average_1m"]["before"]
    machine = f"{cpu(s)}, server {s['server_threads']} thread, load average {load:.0f}"
    what = (
        f"{s['requests']:,} requests ({srch['n']} POST /search, {add['n']} POST /gallery), "
        f"{s['concurrency']} concurrent, {s['gallery_rows']:,}-row index ({s['model']}, "
        f"D = {s['dim']})"
    )
    after = s["index_after_restart"]
    kept = all(
        after[k]
        for k in ("all_acknowledged_in_file", "only_acknowledged_in_file", "earlier_rows_unchanged")
    )
    return [
        f"| `vireid serve` mixed load, searches: {what} | p50 {srch['p50']:.0f} ms, p95 "
        f"{srch['p95']:.0f} ms; {s['failed']} of {s['requests']:,} failed; server peak RSS "
        f"{rss['peak']:,} MB ({rss['start']:,} MB at start) | in process, no HTTP: "
        f"{s['in_process_ms_per_query']:.0f} ms per query | {machine} |",
        f"| `vireid serve` mixed load, additions: same run | p50 {add['p50']:.0f} ms, p95 "
        f"{add['p95']:.0f} ms; after a restart {after['rows']:,} rows: the earlier ones "
        f"unchanged, all {after['acknowledged_additions']} acknowledged additions and nothing "
        f"else: {kept} | – | {machine} |",
    ]


def _gpu_cluster_row(r: dict, machine: dict) -> str:
    stages = _stages(r["stages_s"])
    ref = []
    if "host_s" in r:
        ref.append(f"host path {r['host_s']:.1f} s, labels identical: {r['labels_equal_host']}")
    if dense := _dense(r):
        ref.append(
            f"our dense re-implementation {dense['seconds']:.1f} s, labels identical: "
            f"{dense['labels_identical']}"
        )
    return (
        f"| Jaccard + DBSCAN on the GPU, N = {r['n']:,}, D = {r['dim']} | "
        f"{r['sparse_s']:.1f} s ({stages}), GPU peak {r['gpu_peak_mb']:,.0f} MB, host "
        f"peak RSS {r['sparse_peak_mb']:,.0f} MB incl. features | {'; '.join(ref) or '–'} | "
        f"{machine['gpu']} + {machine['cores']} CPU cores |"
    )


def _knn_gpu_row(r: dict, machine: dict) -> str:
    """The exact k1-NN self-join alone: bf16 candidates re-ranked vs float32 products."""
    return (
        f"| exact k-NN self-join on the GPU (k {r['k']}), N = {r['n']:,}, D = {r['dim']}, bf16"
        f" candidates re-ranked in fp32 | {r['bf16_s']:.1f} s; rows identical to fp32"
        f" {100 * r['bf16_rows_identical']:.2f} %, max |Δd²| {r['bf16_max_abs_d2_diff']:.1e}"
        f" | float32 products {r['fp32_s']:.1f} s → **{r['fp32_s'] / r['bf16_s']:.1f}×** | "
        f"{machine['gpu']} + {machine['cores']} CPU cores |"
    )


def _stages(st: dict) -> str:
    return ", ".join(f"{k} {v:.0f}" if v >= 10 else f"{k} {v:.1f}" for k, v in st.items())


def _dense(r: dict) -> dict | None:
    """The dense-reference result of a run (nested since issue 16; flat in older files)."""
    if "dense" in r:
        return r["dense"]
    if r.get("dense_s"):
        return {"seconds": r["dense_s"], "labels_identical": r["labels_identical"]}
    return None


def _cluster_rows(r: dict, c: dict) -> list[str]:
    """One row per neighbour search (exact, ivf, hnsw) at one N: time per stage, the
    approximate rows' recall and label agreement, and the references of the same run —
    the community's own compute_jaccard_distance (the published ratio) and our dense
    re-implementation of its formulation (time and label identity only)."""
    comm = c.get("references", {}).get("community", {})
    cc = r.get("community")
    dense = _dense(r)
    ref_dense = (
        f"our dense re-implementation of the community formulation {dense['seconds']:.1f} s"
        f", labels identical: {dense['labels_identical']}"
        if dense
        else None
    )
    cpu = f"{c['machine']['cores']} CPU cores"
    n = r.get("n_features", r["n"])
    head = f"Jaccard + DBSCAN, N = {n:,}, D = {r['dim']}{FEATURES.get(r.get('features'), '')}"
    rows = []
    searches = [("exact", r, None), *((k, v, v) for k, v in r.get("approx", {}).items())]
    for name, res, ap in searches:
        secs = res["sparse_s"] if ap is None else res["seconds"]
        mb = res["sparse_algo_mb"] if ap is None else res["algo_mb"]
        measured = f"{secs:.1f} s ({_stages(res['stages_s'])}), +{mb:.0f} MB"
        if res.get("ari_vs_ids") is not None:
            measured += f"; vs identities ARI {res['ari_vs_ids']:.3f}"
        if ap is not None:
            measured += (
                f"; recall@k1 {ap['recall_k1']:.2f}, k-reciprocal recall "
                f"{ap['recall_reciprocal']:.2f}; vs exact labels ARI {ap['ari_vs_exact']:.4f}, "
                f"outliers {ap['outliers']} (exact {r['outliers']}), clusters {ap['clusters']}"
                f" (exact {r['clusters']})"
            )
        refs = []
        if cc:
            ratio = cc["seconds"] / secs
            refs.append(
                f"community `compute_jaccard_distance` (cluster-contrast, faiss CPU) + DBSCAN "
                f"{cc['seconds']:.1f} s → **{ratio:.1f}×**"
                + (f", labels identical: {cc['labels_identical']}" if ap is None else "")
            )
        elif ap is None:
            why = "not in this run" if "skipped" not in comm else "skipped (no checkout)"
            refs.append(f"community code: {why}")
        if ref_dense and ap is None:
            refs.append(ref_dense)
        rows.append(f"| {head}, {name} kNN | {measured} | {'; '.join(refs) or '–'} | {cpu} |")
    return rows


def robustness_rows() -> list[str]:
    rb = _load("robustness")
    if not rb:
        return []
    out = [
        "| corruption robustness (synthetic, SYSU-MM01-C protocol) | clean mAP | random-mix "
        "mAP | sweep-average mAP | mCE (mAP) vs AGW |",
        "|---|---|---|---|---|",
    ]
    for name, r in rb["models"].items():
        mce = (r.get("mce") or {}).get("mAP", {}).get("mCE")
        out.append(
            f"| {name} quickstart | {r['clean']['mean']['mAP']:.2f} | "
            f"{r['corrupted']['mean']['mAP']:.2f} | {r['sweep_mean']['mAP']:.2f} | "
            f"{'100 (reference)' if name == 'agw' else '–' if mce is None else f'{mce:.1f}'} |"
        )
    return out


def replace_block(path: Path, lines: list[str], start: str = START, end: str = END) -> None:
    text = path.read_text()
    a, b = text.index(start) + len(start), text.index(end)
    path.write_text(text[:a] + "\n" + "\n".join(lines) + "\n" + text[b:])


def main() -> None:
    table = rows()
    earlier = effects_rows("effects_earlier")  # the table on the benchmark's earlier factors
    for extra in (calibration_rows(), effects_rows(), earlier, robustness_rows()):
        if extra:
            table += ["", *extra]
    replace_block(ROOT / "README.md", table)
    replace_block(ROOT / "docs" / "benchmark.md", [*effects_rows(), "", *earlier])
    cal = ("<!-- CALIBRATION:START -->", "<!-- CALIBRATION:END -->")
    replace_block(ROOT / "docs" / "synthetic.md", calibration_rows(), *cal)


if __name__ == "__main__":
    main()
