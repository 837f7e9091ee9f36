"""The mutant runner itself (tests/mutants): a deliberately surviving mutant and one whose
patched name is gone both fail the run; a killed one is reported with its killing test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
GUARD = "tests/test_losses.py::test_pairwise_euclidean"
MUTANTS = f'''
from vireid.losses import triplet

T = ["{GUARD}"]


@mutant("selftest.survivor", "replaces a helper by itself: nothing changes", tests=T)
def _(mp):
    mp.setattr(triplet, "_masks", triplet._masks)


@mutant("selftest.broken", "patches a name that no longer exists", tests=T)
def _(mp):
    mp.setattr(triplet, "no_such_function", None)


@mutant("selftest.killed", "every distance zero", tests=T)
def _(mp):
    replace(mp, triplet, "pairwise_euclidean", lambda x: x.new_zeros(len(x), len(x)))
'''


def test_survivors_and_broken_mutants_fail_the_run(tmp_path):
    extra = tmp_path / "selftest_mutants.py"
    extra.write_text(MUTANTS)
    out = tmp_path / "mutants.json"
    env = {**os.environ, "VIREID_MUTANT_FILES": str(extra), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "tests.mutants", "--only", "selftest.", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    record = json.loads(out.read_text())
    status = {m["name"]: (m["status"], m["killed_by"]) for m in record["mutants"]}
    assert status == {
        "selftest.survivor": ("survived", None),
        "selftest.broken": ("broken", None),
        "selftest.killed": ("killed", "tests.test_losses::test_pairwise_euclidean"),
    }
    assert (record["killed"], record["survived"], record["broken"]) == (1, 1, 1)
    assert "no_such_function" in r.stdout  # the broken mutant's error is shown
