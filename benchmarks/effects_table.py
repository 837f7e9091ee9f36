"""Markdown for the synthetic benchmark's results: the calibration rows
(results/synth_calibration.json) and the effects table (results/effects.json, each group
replaced by its results/effects_paired_<group>.json when that exists), used by
make_table.py for the README, docs/benchmark.md and docs/synthetic.md."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
PAIRED_PREFIX = "effects_paired_"  # per-group results of the paired-seed runs
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


def effect_sources(name: str = "effects") -> list[tuple[dict, dict]]:
    """(results file, group) for every group of ``results/<name>.json``; for the main table
    (``effects``) a group measured in its own ``results/effects_paired_<group>.json`` (the
    paired-seed runs) replaces the one in effects.json, and groups found only there are
    added at the end."""
    base = _load(name)
    groups = [(base, g) for g in base["groups"]] if base else []
    if name != "effects":
        return groups
    for path in sorted(RESULTS.glob(f"{PAIRED_PREFIX}*.json")):
        eff = json.loads(path.read_text())
        eff["file"] = path.stem
        for g in eff["groups"]:
            at = [i for i, (_, old) in enumerate(groups) if old["group"] == g["group"]]
            if at:
                groups[at[0]] = (eff, g)
            else:
                groups.append((eff, g))
    return groups


def _effect(r: dict, rows: dict, eff: dict) -> dict:
    """The row's verdict against its compared row, by bench_effects' rule (paired by seed);
    rows of files written before the rows recorded their seeds all ran on the file's
    seeds, in that order, so those seeds pair them."""
    from bench_effects import verdict

    def seeded(x: dict) -> dict:
        return {**x, "seed_ids": x.get("seed_ids") or eff["seeds"]}

    return verdict(seeded(r), seeded(rows[r["compare_to"]]), r["paper_direction"])


def effects_rows(name: str = "effects") -> list[str]:
    """The effects table of ``results/<name>.json`` (the main one: merged with the
    per-group paired files), then a line naming each group's results file and seeds; a
    table measured on other factors than today's defaults says which."""
    sources = effect_sources(name)
    if not sources:
        return []
    notes = {_dataset_note(eff) for eff, _ in sources}
    where = f"; earlier factors: {notes.pop()}" if len(notes) == 1 and "" not in notes else ""
    out = [
        f"| effects (synthetic{where}) | row | seeds | loss terms active | R1 | mAP | mINP | "
        "cross ARI | paper R1 / mAP | paper's direction | here (R1, paired by seed) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for eff, g in sources:
        rows = {r["name"]: r for r in g["rows"]}
        for r in g["rows"]:
            paper = r.get("paper")
            if isinstance(paper, dict):
                paper_s = f"{paper['R1']:.1f} / {paper['mAP']:.1f}"
            else:
                paper_s = paper or "–"  # a row the paper describes without a number
            if r.get("compare_to") in rows:
                e = _effect(r, rows, eff)
                direction = f"{DIRECTION[r['paper_direction']]} than {r['compare_to']}"
                here = f"{e['verdict']} ({e['diff']:+.1f} ± {e.get('crit', 2) * e['se']:.1f})"
            else:
                direction = here = "–"
            out.append(
                f"| {g['method']} | {r['name']} | {r['seeds']} | {', '.join(r['terms'])} "
                f"| {_pm(r.get('R1'))} | {_pm(r.get('mAP'))} | {_pm(r.get('mINP'))} | "
                f"{_pm(r.get('cross_ARI'), 3)} | {paper_s} | {direction} | {here} |"
            )
        for c in g.get("contrasts", []):  # (a0 − a1) − (b0 − b1), paired by seed
            e = c["effect"]
            out.append(
                f"| {g['method']} | {c['name']}: ({c['a'][0]} − {c['a'][1]}) − ({c['b'][0]} − "
                f"{c['b'][1]}) | – | – "
                f"| {c['a_diff']:+.1f} vs {c['b_diff']:+.1f} | – | – | – | – | "
                f"{DIRECTION[c['paper_direction']]} than 0 | "
                f"{e['verdict']} ({e['diff']:+.1f} ± {e.get('crit', 2) * e['se']:.1f}) |"
            )
    files: dict[str, list[str]] = {}
    for eff, g in sources:
        seeds = " ".join(map(str, eff["seeds"]))
        other = _dataset_note(eff)
        key = f"`results/{eff.get('file', name)}.json` (seeds {seeds}"
        key += f"; factors: {other})" if other and not where else ")"
        files.setdefault(key, []).append(g["group"])
    sources_s = "; ".join(f"{', '.join(gs)}: {k}" for k, gs in files.items())
    return [*out, "", f"Results: {sources_s}."]
