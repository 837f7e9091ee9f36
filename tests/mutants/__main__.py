"""Run every mechanism mutant against the tests that claim to guard it.

    python -m tests.mutants                 # all mutants, table + benchmarks/results/mutants.json
    python -m tests.mutants --fast          # the subset CI runs (.ci/run)
    python -m tests.mutants --only mmm.     # mutants whose name starts with "mmm."
    python -m tests.mutants --list          # names, mechanisms and guarding tests

First the union of the guarding tests runs once without a mutant: every guard must pass on
the real code, or no kill would mean anything. Then, for each mutant, one pytest session
with ``$VIREID_MUTANT`` set runs that mutant's tests and stops at the first failure (``-x``);
the failing test is the one that *killed* it. A mutant whose tests all pass **survived**; a
mutant whose patch cannot be applied (the name it patches is gone) or whose session ends
without a result is **broken**; one still running after ``--timeout`` seconds is killed and
reported as **timeout**. Any of the three makes the exit code 1.

Each session is a fork of this process, which has imported torch and vireid already (the
mutant modules import them), so a session costs pytest's collection and the tests, not the
interpreter's start-up (about 5 s of CPU per mutant on a 2-core machine); the child applies
its mutant before collecting the test modules, as a fresh ``python -m pytest`` would.
``--no-fork`` starts a fresh interpreter per session instead (platforms without fork).
Sessions run ``--jobs`` at a time, each with one torch thread.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import ENV, Mutant, load_all

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PYTEST_ARGS = ["-p", "no:cacheprovider", "-p", "no:xdist", "-q"]
# a mutant's tests must not be deselected by the default '-m "not slow"' marker filter
MARKERS = ["-m", "not gpu"]
BAD = ("survived", "broken", "timeout")


@dataclass
class Session:
    """One pytest session (a forked child or a subprocess) and where its results land."""

    mutant: Mutant | None
    tests: list[str]
    tmp: Path
    pid: int = 0
    proc: subprocess.Popen | None = None
    t0: float = field(default_factory=time.perf_counter)
    rc: int | None = None
    timed_out: bool = False

    @property
    def xml(self) -> Path:
        return self.tmp / "junit.xml"

    @property
    def log(self) -> Path:
        return self.tmp / "log.txt"

    def poll(self) -> int | None:
        if self.rc is None:
            if self.proc is not None:
                self.rc = self.proc.poll()
            else:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.rc = os.waitstatus_to_exitcode(status)
        return self.rc

    def kill(self) -> None:
        """The session and everything it started (DDP ranks, CLI subprocesses)."""
        self.timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid if self.proc else self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        else:
            os.waitpid(self.pid, 0)
        self.rc = -signal.SIGKILL


def _pytest_args(s: Session, stop_first: bool) -> list[str]:
    return [
        *PYTEST_ARGS,
        *MARKERS,
        f"--junitxml={s.xml}",
        *(["-x"] if stop_first else []),
        *s.tests,
    ]


def _child(args: list[str], mutant: str | None, log: Path) -> None:
    """In the forked child: own process group, output to ``log``, ``$VIREID_MUTANT`` set,
    then one pytest session; never returns."""
    code = 3
    try:
        os.setpgid(0, 0)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(ROOT)
        os.environ.pop(ENV, None)
        if mutant:
            os.environ[ENV] = mutant
        import pytest

        code = int(pytest.main(args))
    except BaseException:  # whatever happens, the parent reads the log
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def start(mutant: Mutant | None, tests: list[str], stop_first: bool, fork: bool) -> Session:
    s = Session(mutant, tests, Path(tempfile.mkdtemp(prefix="vireid-mutant-")))
    args = _pytest_args(s, stop_first)
    name = mutant.name if mutant else None
    if fork:
        sys.stdout.flush()
        sys.stderr.flush()
        s.pid = os.fork()
        if s.pid == 0:
            _child(args, name, s.log)
    else:
        env = {k: v for k, v in os.environ.items() if k != ENV}
        if name:
            env[ENV] = name
        with s.log.open("w") as log:
            s.proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", *args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    return s


def result(s: Session) -> dict:
    """The session's failing test ids, pytest's exit code, the seconds and the log tail."""
    failed, ran = [], 0
    if s.xml.is_file():
        try:
            cases = list(ET.parse(s.xml).iter("testcase"))
        except ET.ParseError:  # killed while writing
            cases = []
        for case in cases:
            ran += 1
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{case.get('classname')}::{case.get('name')}")
    tail = s.log.read_text(errors="replace")[-3000:] if s.log.is_file() else ""
    return {
        "rc": s.rc,
        "failed": failed,
        "ran": ran,
        "seconds": round(time.perf_counter() - s.t0, 1),
        "tail": tail,
        "timed_out": s.timed_out,
    }


def judge(m: Mutant, res: dict) -> dict:
    if res["timed_out"]:
        status = "timeout"
    elif res["ran"] == 0:  # the patch could not be applied (pytest_configure failed)
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
        "fast": m.fast,
        "status": status,
        "killed_by": res["failed"][0] if status == "killed" else None,
        "tests_run": res["ran"],
        "seconds": res["seconds"],
        **({"output": res["tail"]} if status in ("broken", "timeout") else {}),
    }


def run_all(todo: list, jobs: int, timeout: float, fork: bool, on_done) -> list[dict]:
    """Run ``(mutant, tests, stop_first)`` sessions ``jobs`` at a time (no threads: the
    parent forks from its only thread); ``on_done(mutant, result)`` as each ends."""
    pending, running, out = list(todo), [], []
    while pending or running:
        while pending and len(running) < jobs:
            running.append(start(*pending.pop(0), fork=fork))
        for s in list(running):
            if s.poll() is None and time.perf_counter() - s.t0 > timeout:
                s.kill()
            if s.rc is not None:
                running.remove(s)
                res = result(s)
                out.append(on_done(s.mutant, res))
        time.sleep(0.05)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.mutants")
    ap.add_argument("--only", nargs="*", default=None, help="name prefixes")
    ap.add_argument("--fast", action="store_true", help="only the mutants marked fast (CI)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per mutant")
    ap.add_argument("--no-fork", action="store_true", help="a fresh interpreter per session")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--no-baseline", action="store_true", help="skip the guards' clean run")
    ap.add_argument(
        "--out",
        default=None,
        help="results/<out>.json, or a path ending in .json (default: mutants, or none "
        "with --only/--fast)",
    )
    a = ap.parse_args(argv)
    fork = hasattr(os, "fork") and not a.no_fork
    # before torch is imported (by the mutant modules): every session gets one thread
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    registry = load_all()
    chosen = [
        m
        for m in registry.values()
        if (not a.fast or m.fast) and (a.only is None or m.name.startswith(tuple(a.only)))
    ]
    console = Console(width=160)
    if a.list:
        for m in chosen:
            fast = " [fast]" if m.fast else ""
            console.print(
                f"{m.name}{fast}  [dim]{m.mechanism}[/]\n    " + "\n    ".join(m.tests),
                markup=True,
                highlight=False,
            )
        return 0
    if not chosen:
        console.print("no mutant matches", style="red")
        return 2
    t0, load0, cpu0 = time.perf_counter(), os.getloadavg(), os.times()
    if not a.no_baseline:
        guards = sorted({t for m in chosen for t in m.tests})
        (base,) = run_all([(None, guards, False)], 1, a.timeout * 4, fork, lambda m, res: res)
        if base["rc"] != 0:
            console.print(base["tail"], markup=False)
            console.print(f"guarding tests fail without a mutant: {base['failed']}", style="red")
            return 2
        console.print(
            f"{len(guards)} guarding tests pass on the real code "
            f"({base['ran']} test cases, {base['seconds']} s)"
        )

    def done(m, res):
        row = judge(m, res)
        by = f" by {row['killed_by'].split('::')[-1]}" if row["killed_by"] else ""
        console.print(
            f"{row['name']}: {row['status']}{by} ({row['seconds']} s)",
            style="bold red" if row["status"] in BAD else None,
            markup=False,
            highlight=False,
        )
        return row

    todo = [(m, list(m.tests), True) for m in chosen]
    finished = {r["name"]: r for r in run_all(todo, a.jobs, a.timeout, fork, done)}
    rows = [finished[m.name] for m in chosen]  # registry order
    total = time.perf_counter() - t0
    cpu = sum(
        getattr(os.times(), k) - getattr(cpu0, k) for k in ("children_user", "children_system")
    )

    table = Table(title=f"mechanism mutants ({len(rows)})", show_lines=False)
    for col in ("mutant", "mechanism", "tests", "result", "s"):
        table.add_column(col, overflow="fold")
    for r in rows:
        result_s = r["killed_by"].split("::")[-1] if r["status"] == "killed" else r["status"]
        style = "bold red" if r["status"] in BAD else None
        table.add_row(
            r["name"],
            r["mechanism"],
            str(len(r["tests"])),
            result_s,
            str(r["seconds"]),
            style=style,
        )
    console.print(table)
    bad = [r for r in rows if r["status"] in BAD]
    for r in bad:
        if "output" in r:
            console.print(f"--- {r['name']} ({r['status']}) ---\n{r['output']}", markup=False)
    counts = {k: sum(r["status"] == k for r in rows) for k in ("killed", *BAD)}
    console.print(
        ", ".join(f"{v} {k}" for k, v in counts.items())
        + f" in {total:.0f} s ({cpu:.0f} s of CPU in the sessions)"
    )

    out = a.out or (None if (a.only or a.fast) else "mutants")
    if out:
        path = Path(out) if out.endswith(".json") else RESULTS / f"{out}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "benchmark": "mutants",
            "command": "python -m tests.mutants "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": {
                "cpu": platform.machine(),
                "cores": os.cpu_count(),
                "jobs": a.jobs,
                "fork": fork,
                # other processes' load: the seconds below are wall time on a shared machine
                "loadavg_start": [round(x, 1) for x in load0],
                "loadavg_end": [round(x, 1) for x in os.getloadavg()],
            },
            "seconds": round(total, 1),
            # CPU time of the sessions (and what they started): about what the wall time
            # would be on an idle machine, times the number of cores the jobs share
            "cpu_seconds": round(cpu, 1),
            **counts,
            "mutants": [{k: v for k, v in r.items() if k != "output"} for r in rows],
        }
        path.write_text(json.dumps(record, indent=2) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
