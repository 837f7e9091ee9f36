"""Run every mechanism mutant against the tests that claim to guard it.

    python -m tests.mutants                 # all mutants, table + benchmarks/results/mutants.json
    python -m tests.mutants --fast          # the subset CI runs
    python -m tests.mutants --only mmm.     # mutants whose name starts with "mmm."
    python -m tests.mutants --list          # names, mechanisms and guarding tests

First the union of the guarding tests runs once without a mutant: every guard must pass on
the real code, or no kill would mean anything. Then, for each mutant, one pytest process
with ``$VIREID_MUTANT`` set runs that mutant's tests and stops at the first failure (``-x``);
the failing test is the one that *killed* it. A mutant whose tests all pass **survived**; a
mutant whose patch cannot be applied (the name it patches is gone) is **broken**. Either
makes the exit code 1. Mutants run ``--jobs`` at a time, each pytest with one torch thread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import ENV, load_all

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q"]
# a mutant's tests must not be deselected by the default '-m "not slow"' marker filter
MARKERS = ["-m", "not gpu"]


def _env(mutant: str | None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop(ENV, None)
    if mutant:
        env[ENV] = mutant
    return env


def _pytest(tests: list[str], mutant: str | None, stop_first: bool) -> dict:
    """Run ``tests``; return the failing test ids, pytest's exit code and the seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [*PYTEST, *MARKERS, f"--junitxml={xml}", *(["-x"] if stop_first else []), *tests]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(mutant), capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        failed, ran = [], 0
        if xml.is_file():
            for case in ET.parse(xml).iter("testcase"):
                ran += 1
                if case.find("failure") is not None or case.find("error") is not None:
                    failed.append(f"{case.get('classname')}::{case.get('name')}")
    return {
        "rc": proc.returncode,
        "failed": failed,
        "ran": ran,
        "seconds": round(seconds, 1),
        "tail": (proc.stdout + proc.stderr)[-3000:],
    }


def _judge(m, res: dict) -> dict:
    if res["ran"] == 0:  # the patch could not be applied (pytest_configure failed)
        status = "broken"
    elif res["failed"]:
        status = "killed"
    elif res["rc"] == 0:
        status = "survived"
    else:
        status = "broken"
    return {
        "name": m.name,
        "mechanism": m.mechanism,
        "tests": list(m.tests),
        "status": status,
        "killed_by": res["failed"][0] if status == "killed" else None,
        "tests_run": res["ran"],
        "seconds": res["seconds"],
        **({"output": res["tail"]} if status == "broken" else {}),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.mutants")
    ap.add_argument("--only", nargs="*", default=None, help="name prefixes")
    ap.add_argument("--fast", action="store_true", help="only the mutants marked fast (CI)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--no-baseline", action="store_true", help="skip the guards' clean run")
    ap.add_argument(
        "--out",
        default=None,
        help="results/<out>.json (default: mutants, or none with --only/--fast)",
    )
    a = ap.parse_args(argv)
    registry = load_all()
    chosen = [
        m
        for m in registry.values()
        if (not a.fast or m.fast) and (a.only is None or m.name.startswith(tuple(a.only)))
    ]
    console = Console(width=160)
    if a.list:
        for m in chosen:
            console.print(
                f"{m.name}  [dim]{m.mechanism}[/]\n    " + "\n    ".join(m.tests),
                markup=True,
                highlight=False,
            )
        return 0
    if not chosen:
        console.print("no mutant matches", style="red")
        return 2
    t0 = time.perf_counter()
    if not a.no_baseline:
        guards = sorted({t for m in chosen for t in m.tests})
        base = _pytest(guards, None, stop_first=False)
        if base["rc"] != 0:
            console.print(base["tail"], markup=False)
            console.print(f"guarding tests fail without a mutant: {base['failed']}", style="red")
            return 2
        console.print(
            f"{len(guards)} guarding tests pass on the real code "
            f"({base['ran']} test cases, {base['seconds']} s)"
        )
    with ThreadPoolExecutor(a.jobs) as pool:
        rows = list(pool.map(lambda m: _judge(m, _pytest(list(m.tests), m.name, True)), chosen))
    total = time.perf_counter() - t0

    table = Table(title=f"mechanism mutants ({len(rows)})", show_lines=False)
    for col in ("mutant", "mechanism", "tests", "result", "s"):
        table.add_column(col, overflow="fold")
    for r in rows:
        result = r["killed_by"].split("::")[-1] if r["status"] == "killed" else r["status"]
        style = {"killed": None, "survived": "bold red", "broken": "bold red"}[r["status"]]
        table.add_row(
            r["name"], r["mechanism"], str(len(r["tests"])), result, str(r["seconds"]), style=style
        )
    console.print(table)
    bad = [r for r in rows if r["status"] != "killed"]
    for r in bad:
        if r["status"] == "broken":
            console.print(f"--- {r['name']} (broken) ---\n{r['output']}", markup=False)
    console.print(
        f"{len(rows) - len(bad)} killed, "
        f"{sum(r['status'] == 'survived' for r in rows)} survived, "
        f"{sum(r['status'] == 'broken' for r in rows)} broken in {total:.0f} s"
    )

    out = a.out or (None if (a.only or a.fast) else "mutants")
    if out:
        RESULTS.mkdir(parents=True, exist_ok=True)
        record = {
            "benchmark": "mutants",
            "command": "python -m tests.mutants " + " ".join(argv or sys.argv[1:]),
            "machine": {"cpu": platform.machine(), "cores": os.cpu_count(), "jobs": a.jobs},
            "seconds": round(total, 1),
            "killed": len(rows) - len(bad),
            "survived": sum(r["status"] == "survived" for r in rows),
            "broken": sum(r["status"] == "broken" for r in rows),
            "mutants": [{k: v for k, v in r.items() if k != "output"} for r in rows],
        }
        (RESULTS / f"{out}.json").write_text(json.dumps(record, indent=2) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
