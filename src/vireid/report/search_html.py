"""Self-contained HTML page of search results: each query with its top matches as
embedded thumbnails, similarity, modality and (when both identities are known) a
green/red border."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from ..data.records import Sample
from ..search import Match
from .html import thumbnail


def _match_class(q: Sample, g: Sample) -> str:
    if q.pid < 0 or g.pid < 0:
        return "unknown"
    return "same" if q.pid == g.pid else "other"


def _who(s: Sample) -> str:
    """Identity and camera for a caption: a file's base name repeats across identities."""
    return (f"id {s.pid}" if s.pid >= 0 else "id ?") + f" · cam{s.camid}"


def write_search_report(
    out_dir, queries: list[Sample], results: list[list[Match]], **header
) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "name": Path(q.path).name,
            "who": _who(q),
            "modality": q.modality.value,
            "thumb": thumbnail(q.path, 96),
            "matches": [
                {
                    "rank": m.rank,
                    "similarity": m.similarity,
                    "name": Path(m.sample.path).name,
                    "who": _who(m.sample),
                    "modality": m.sample.modality.value,
                    "thumb": thumbnail(m.sample.path, 96),
                    "cls": _match_class(q, m.sample),
                }
                for m in matches
            ],
        }
        for q, matches in zip(queries, results, strict=True)
    ]
    env = Environment(
        loader=PackageLoader("vireid.report", "templates"), autoescape=select_autoescape()
    )
    page = env.get_template("search.html").render(queries=rows, **header)
    path = out / "index.html"
    path.write_text(page)
    return path
