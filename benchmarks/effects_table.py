"""Markdown for the synthetic benchmark's results: the calibration rows
(results/synth_calibration.json) and the effects table (results/effects.json), used by
make_table.py for the README, docs/benchmark.md and docs/synthetic.md."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
DIRECTION = {1: "higher", -1: "lower"}


def _load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _pm(m: dict | float | None, digits: int = 1) -> str:
    if m is None:
        return "–"
    if isinstance(m, int | float):
        return f"{m:.{digits}f}"
    return f"{m['mean']:.{digits}f} ± {m['std']:.{digits}f}"


def calibration_rows() -> list[str]:
    cal = _load("synth_calibration")
    if not cal:
        return []
    out = ["| synthetic benchmark calibration (sysu/all/single, 10 trials) | R1 | mAP | mINP |"]
    out.append("|---|---|---|---|")
    for name, r in cal["rows"].items():
        seeds = f" ({len(r['seeds'])} seeds, mean ± std)" if "seeds" in r else ""
        out.append(f"| {name}{seeds} | {_pm(r['R1'])} | {_pm(r['mAP'])} | {_pm(r['mINP'])} |")
    met = ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in cal["targets"].items())
    return [*out, "", f"Targets — {met}."]


def _dataset_note(eff: dict) -> str:
    """The factors a table was measured on, when they are not today's defaults."""
    from vireid.data.synthetic import SynthSpec

    now = SynthSpec().key()
    diff = {k: v for k, v in eff["dataset"].items() if now.get(k) != v}
    return ", ".join(f"{k} {v}" for k, v in diff.items())


def effects_rows(name: str = "effects") -> list[str]:
    """The effects table of ``results/<name>.json``; one measured on other factors than
    today's defaults says which in its header."""
    eff = _load(name)
    if not eff:
        return []
    other = _dataset_note(eff)
    where = f"; earlier factors: {other}" if other else ""
    out = [
        f"| effects (synthetic, {len(eff['seeds'])} seeds{where}) | row | loss terms active | R1 | "
        "mAP | mINP | cross ARI | paper R1 / mAP | paper's direction | here |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g in eff["groups"]:
        for r in g["rows"]:
            paper = r.get("paper")
            if isinstance(paper, dict):
                paper_s = f"{paper['R1']:.1f} / {paper['mAP']:.1f}"
            else:
                paper_s = paper or "–"  # a row the paper describes without a number
            if "effect" in r:
                e = r["effect"]
                direction = f"{DIRECTION[r['paper_direction']]} than {r['compare_to']}"
                here = f"{e['verdict']} ({e['diff']:+.1f} ± {2 * e['se']:.1f})"
            else:
                direction = here = "–"
            out.append(
                f"| {g['method']} | {r['name']} | {', '.join(r['terms'])} | {_pm(r.get('R1'))} "
                f"| {_pm(r.get('mAP'))} | {_pm(r.get('mINP'))} | "
                f"{_pm(r.get('cross_ARI'), 3)} | {paper_s} | {direction} | {here} |"
            )
        for c in g.get("contrasts", []):  # (a0 − a1) − (b0 − b1), paired by seed
            e = c["effect"]
            out.append(
                f"| {g['method']} | {c['name']}: ({c['a'][0]} − {c['a'][1]}) − ({c['b'][0]} − "
                f"{c['b'][1]}) | – | {c['a_diff']:+.1f} vs {c['b_diff']:+.1f} | – | – | – | – | "
                f"{DIRECTION[c['paper_direction']]} than 0 | "
                f"{e['verdict']} ({e['diff']:+.1f} ± {2 * e['se']:.1f}) |"
            )
    return out
