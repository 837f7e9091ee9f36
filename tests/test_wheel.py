"""The wheel as a user gets it: built from this checkout, installed into a fresh virtual
environment (the running interpreter's packages visible through a .pth file, so nothing
is downloaded but the build backend), then run from a folder outside the checkout:
``vireid --version``, ``vireid demo --help``, a shipped recipe by name
(``vireid config show mmm_sysu``) and a short training of another by name."""

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from vireid import __version__

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "LICENSE", "README.md", "src", "configs")


def _run(cmd, cwd, **kw):
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, **kw)
    assert out.returncode == 0, f"{cmd}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:  # a clean copy: no build/ or egg-info of earlier builds
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(p, src / name)
    build = _run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp), "."], src
    )
    assert "Deprecat" not in build.stdout + build.stderr  # project.license is the SPDX form
    wheel = next(tmp.glob("vireid-*.whl"))
    env = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)], tmp)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))
    # torch & co. from this interpreter's site-packages, never from the checkout's src/
    here = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (purelib / "zz_host_packages.pth").write_text("\n".join(here) + "\n")
    py = env / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", str(wheel)], tmp
    )
    return wheel, env, tmp


def test_wheel_holds_the_recipes_and_the_licence(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "vireid/configs/unsupervised/mmm_sysu.yaml" in names
    assert "vireid/configs/quickstart/agw_synth.yaml" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    meta = zipfile.ZipFile(wheel).read(f"vireid-{__version__}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in meta and "Requires-Python: >=3.11" in meta
    assert "faiss-cpu" in meta and 'extra == "faiss"' in meta


def test_installed_cli_runs_recipes_by_name_outside_the_checkout(installed, sysu_root):
    _, env, tmp = installed
    work = tmp / "elsewhere"
    work.mkdir()
    vireid = str(env / "bin" / "vireid")
    where = _run(
        [str(env / "bin" / "python"), "-c", "import vireid; print(vireid.__file__)"], work
    ).stdout
    assert str(env) in where and str(ROOT) not in where  # the installed copy, not src/
    assert _run([vireid, "--version"], work).stdout.strip() == f"vireid {__version__}"
    assert "Synthesise data" in _run([vireid, "demo", "--help"], work).stdout
    shown = _run([vireid, "config", "show", "mmm_sysu"], work).stdout
    assert "name: mmm" in shown and "output_dir: runs/mmm_sysu" in shown
    # the README's configs/... path resolves to the packaged recipe too
    _run([vireid, "config", "validate", "configs/quickstart/agw_synth.yaml"], work)
    run = work / "run"
    _run(
        [
            vireid,
            "train",
            "instant",
            f"data.dataset.root={sysu_root}",
            f"output_dir={run}",
            f"data.cache_dir={work / 'c'}",
            "train.epochs=1",
            "eval.trials=1",
        ],
        work,
    )
    assert (run / "last.pt").is_file() and (run / "log.txt").is_file()
