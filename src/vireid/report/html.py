"""Self-contained HTML rank report (torchreid's visrank, in a browser).

For one trial: each query with a modality badge, its top-k gallery thumbnails with green
(same id) / red borders and distances, and its AP; the table sorts by AP (worst first by
default) and filters by camera pair. Thumbnails are embedded (base64 JPEG), so the file
opens anywhere. ``ranks.csv`` holds every query's top-k file names; ``cmc.png`` and
``distances.png`` the curves.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from ..data.cache import load_rgb
from ..data.protocols import get_protocol
from ..data.records import Sample
from ..evaluation.evaluator import ProtocolResult, TrialResult
from ..evaluation.ranking import keep_mask
from .plots import plot_cmc, plot_distance_histogram, plot_robustness


def thumbnail_jpeg(
    path: str, height: int = 64, load: Callable[[], Image.Image] | None = None
) -> bytes:
    """The image at ``path`` (or ``load()``: a robustness report shows the corrupted image
    the model saw) scaled to ``height`` as JPEG bytes (DatasetError if it cannot be read)."""
    im = load() if load is not None else load_rgb(path)
    w = max(1, round(im.width * height / im.height))
    buf = io.BytesIO()
    im.resize((w, height)).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def thumbnail(path: str, height: int = 64, load: Callable[[], Image.Image] | None = None) -> str:
    """A data URI of ``thumbnail_jpeg`` ("" for an unreadable image)."""
    try:
        data = thumbnail_jpeg(path, height, load)
    except ValueError:
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def _rank_rows(t: TrialResult, topk: int, rule: str):
    """Each query's top-k *after* the protocol's removals, so the report shows the list
    the metrics were computed on (e.g. no cam2 images for SYSU cam3 queries)."""
    dist = -(t.q_feats.astype(np.float64) @ t.g_feats.astype(np.float64).T)
    order = np.argsort(dist, axis=1)
    q_pid = np.array([q.pid for q in t.query])
    q_cam = np.array([q.camid for q in t.query])
    g_pid = np.array([g.pid for g in t.gallery])
    g_cam = np.array([g.camid for g in t.gallery])
    keep = keep_mask(rule, q_pid, q_cam, g_pid[order], g_cam[order])
    for i, q in enumerate(t.query):
        ranked = order[i] if keep is None else order[i][keep[i]]
        items = [(t.gallery[j], float(dist[i, j])) for j in ranked[:topk]]
        yield i, q, items, float(t.result.ap[i])


def write_report(
    out_dir: str | Path,
    result: ProtocolResult,
    trial_index: int = 0,
    topk: int = 10,
    max_queries: int = 400,
    robustness: dict | None = None,
    image_for: Callable[[Sample], Image.Image] | None = None,
) -> Path:
    """``robustness``: a ``robustness.json`` dict, shown as tables and a plot of mAP
    against severity; ``image_for(sample)``: the image to show (the corrupted one)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = result.trials[trial_index]
    rows = list(_rank_rows(t, topk, get_protocol(result.protocol).rule))
    with (out / "ranks.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["query", "pid", "camid", "modality", "AP", *[f"rank{k + 1}" for k in range(topk)]]
        )
        for _, q, items, ap in rows:
            w.writerow(
                [
                    q.path,
                    q.pid,
                    q.camid,
                    q.modality.value,
                    "" if np.isnan(ap) else f"{ap:.4f}",
                    *[g.path for g, _ in items],
                ]
            )
    # the worst queries first: they are what a reader opens a report for
    shown = sorted(rows, key=lambda r: np.nan_to_num(r[3], nan=2.0))[:max_queries]
    thumbs: dict[str, str] = {}
    for _, q, items, _ in shown:
        for s in (q, *(g for g, _ in items)):
            if s.path not in thumbs:
                load = (lambda s=s: image_for(s)) if image_for is not None else None
                thumbs[s.path] = thumbnail(s.path, load=load)
    ids = {p: f"t{i}" for i, p in enumerate(thumbs)}
    queries = [
        {
            "path": q.path,
            "name": Path(q.path).name,
            "pid": q.pid,
            "camid": q.camid,
            "modality": q.modality.value,
            "ap": None if np.isnan(ap) else round(ap * 100, 2),
            "cams": f"{q.camid}",
            "thumb": ids[q.path],
            "ranks": [
                {
                    "name": Path(g.path).name,
                    "pid": g.pid,
                    "camid": g.camid,
                    "match": g.pid == q.pid,
                    "dist": round(d, 4),
                    "thumb": ids[g.path],
                }
                for g, d in items
            ],
        }
        for _, q, items, ap in shown
    ]
    cam_pairs = sorted({f"{q['camid']}" for q in queries})
    dist = -(t.q_feats @ t.g_feats.T)
    same = np.array([q.pid for q in t.query])[:, None] == np.array([g.pid for g in t.gallery])
    plot_distance_histogram(dist[same], dist[~same], out / "distances.png")
    plot_cmc({f"trial {tr.trial}": tr.result.cmc for tr in result.trials[:10]}, out / "cmc.png")
    robust = None
    if robustness is not None:
        from ..evaluation.corruption.tables import summary_rows, sweep_rows

        header, rows = sweep_rows(robustness)
        if rows:
            plot_robustness(robustness, out / "robustness.png")
        summary = summary_rows(robustness)
        robust = {"res": robustness, "summary": summary, "header": header, "rows": rows}
    env = Environment(
        loader=PackageLoader("vireid.report", "templates"), autoescape=select_autoescape(["html"])
    )
    html = env.get_template("report.html").render(
        protocol=result.protocol,
        trial=t.trial,
        summary=t.result.summary(),
        num_query=len(t.query),
        num_gallery=len(t.gallery),
        num_valid=t.result.num_valid,
        num_shown=len(queries),
        queries=queries,
        thumbs={v: thumbs[k] for k, v in ids.items()},
        cam_pairs=cam_pairs,
        topk=topk,
        robust=robust,
    )
    (out / "index.html").write_text(html)
    return out / "index.html"
