"""Regenerate the README's benchmark table from benchmarks/results/*.json.

python benchmarks/make_table.py     # rewrites the block between the BENCH markers
"""

from __future__ import annotations

import json
from pathlib import Path

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
    if c := _load("cluster"):
        for r in c["runs"]:
            dense = (
                f"dense {r['dense_s']:.1f} s, +{r['dense_algo_mb']:.0f} MB; labels "
                f"identical: {r['labels_identical']}"
                if r.get("dense_s")
                else "dense: 3 × N² float32 arrays, not run"
            )
            out.append(
                f"| Jaccard + DBSCAN, N = {r['n']:,}, D = {r['dim']} | "
                f"{r['sparse_s']:.1f} s, +{r['sparse_algo_mb']:.0f} MB (peak RSS "
                f"{r['sparse_peak_mb']:.0f} MB incl. features) | {dense} | {cpu(c)} |"
            )
    for name in ("cluster_gpu", "cluster_gpu_1m", "cluster_gpu_1m_d2048"):
        if c := _load(name):
            out += [_gpu_cluster_row(r, c["machine"]) for r in c["runs"]]
    out += emcc_rows(cpu) + index_rows(cpu) + onnx_rows(cpu) + serve_rows(cpu)
    if st := _load("mmm_step"):
        out.append(
            f"| MMM pseudo-label step, {st['visible']:,} + {st['infrared']:,} × "
            f"{st['dim']} (3 clusterings, k-means n_init {st['kmeans_n_init']}, "
            f"matching) | {st['total_s']:.0f} s, peak {st['peak_algo_mb']:.0f} MB | – |"
            f" {cpu(st)} |"
        )
    return out


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


def ecul_effects_rows() -> list[str]:
    """ECUL's ablation on the synthetic benchmark (benchmarks/effects/ecul.yaml)."""
    ef = _load("effects_ecul")
    if not ef:
        return []
    out = [
        "| ECUL ablation (synthetic, mean ± std over seeds) | R1 | mAP | joint ARI | joint NMI "
        "| joint clusters | joint outliers |",
        "|---|---|---|---|---|---|---|",
    ]
    pm = lambda r, k, f: f"{r[k]['mean']:{f}} ± {r[k]['std']:{f}}" if k in r else "–"  # noqa: E731
    for g in ef["groups"]:
        for r in g["rows"]:
            out.append(
                f"| {r['name']} ({r['seeds']} seeds) | {pm(r, 'R1', '.2f')} | "
                f"{pm(r, 'mAP', '.2f')} | {pm(r, 'joint_ARI', '.3f')} | "
                f"{pm(r, 'joint_NMI', '.3f')} | {pm(r, 'joint_clusters', '.0f')} | "
                f"{pm(r, 'joint_outlier_ratio', '.2f')} |"
            )
    return out


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


def _gpu_cluster_row(r: dict, machine: dict) -> str:
    st = r["stages_s"]
    stages = ", ".join(f"{k} {v:.0f}" if v >= 10 else f"{k} {v:.1f}" for k, v in st.items())
    ref = []
    if "host_s" in r:
        ref.append(f"host path {r['host_s']:.1f} s, labels identical: {r['labels_equal_host']}")
    if r.get("dense_s"):
        ref.append(f"dense {r['dense_s']:.1f} s, labels identical: {r['labels_identical']}")
    return (
        f"| Jaccard + DBSCAN on the GPU, N = {r['n']:,}, D = {r['dim']} | "
        f"{r['sparse_s']:.1f} s ({stages}), GPU peak {r['gpu_peak_mb']:,.0f} MB, host "
        f"peak RSS {r['sparse_peak_mb']:,.0f} MB incl. features | {'; '.join(ref) or '–'} | "
        f"{machine['gpu']} + {machine['cores']} CPU cores |"
    )


def ablation_rows() -> list[str]:
    ab = _load("mmm_ablation")
    if not ab:
        return []
    out = [
        "| MMM ablation (synthetic) | R1 | mAP | mINP | cross ARI | single-memory ARI |",
        "|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    for r in ab["rows"]:
        out.append(
            f"| {r['row']} | {r['R1']:.2f} | {r['mAP']:.2f} | {r['mINP']:.2f} | "
            f"{fmt(r.get('cross_ARI'))} | {fmt(r.get('cross_ARI_single_memory'))} |"
        )
    return out


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


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    a, b = text.index(START) + len(START), text.index(END)
    table = rows()
    if ab := ablation_rows():
        table += ["", *ab]
    if rb := robustness_rows():
        table += ["", *rb]
    if ec := ecul_effects_rows():
        table += ["", *ec]
    readme.write_text(text[:a] + "\n" + "\n".join(table) + "\n" + text[b:])


if __name__ == "__main__":
    main()
