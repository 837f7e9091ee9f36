"""Run a community repository's scripts unmodified on this machine.

Everything that must change for their code to run here is applied at run time, in this
process, and listed here; nothing of theirs is copied into vireid:

* ``cpu``: ``Tensor.cuda()`` / ``Module.cuda()`` return the object itself (no GPU here);
  ``nn.DataParallel`` is the plain module (one CPU device).
* ``imagenet``: ``torch.utils.model_zoo.load_url`` (their ResNet's ImageNet download)
  returns the state dict of a local weights file instead.
* ``pillow``: ``Image.ANTIALIAS``, removed in Pillow 10, is its old value ``LANCZOS``.
* ``tensorboardX``: not installed here; a writer that keeps the scalars their scripts log
  (``SCALARS``: tag -> [(step, value)], e.g. AGW's per-epoch mean losses) and writes no
  file.

``run_script`` executes one of their scripts as ``__main__`` with a given ``sys.argv``
and working directory, after replacing literal source lines that hard-code what must
change (a data path, an image size, an epoch count); ``patch_modules`` does the same for
a module their scripts import. Each replacement must match exactly once, so a changed
upstream file fails loudly instead of running something else.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import types
from pathlib import Path

import torch


def apply_shims(init_weights: str | Path | None) -> None:
    """Install every shim in this process (``init_weights``: the local file that replaces
    their ImageNet download; None leaves the download in place)."""
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.nn.DataParallel = _PlainParallel
    if init_weights is not None:
        import torch.utils.model_zoo as model_zoo

        state = read_weights(Path(init_weights))
        model_zoo.load_url = lambda *a, **k: dict(state)
        torch.hub.load_state_dict_from_url = lambda *a, **k: dict(state)
    from PIL import Image

    if not hasattr(Image, "ANTIALIAS"):
        Image.ANTIALIAS = Image.LANCZOS
    if "tensorboardX" not in sys.modules:
        mod = types.ModuleType("tensorboardX")
        mod.SummaryWriter = _RecordingWriter
        sys.modules["tensorboardX"] = mod


def read_weights(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


SCALARS: dict[str, list[tuple[int, float]]] = {}


class _RecordingWriter:
    def __init__(self, *a, **k) -> None:
        pass

    def add_scalar(self, tag, value, step=None, *a, **k) -> None:
        SCALARS.setdefault(tag, []).append((step, float(value)))

    def __getattr__(self, name):
        return lambda *a, **k: None


class _PlainParallel(torch.nn.Module):
    """``nn.DataParallel`` on one CPU: keeps the ``module.`` prefix of its state dict."""

    def __init__(self, module, *a, **k) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


class _PatchedModules(importlib.abc.MetaPathFinder):
    """Imports the named modules from their own file with literal replacements applied."""

    def __init__(self, patches: dict[str, dict[str, str]]) -> None:
        self.patches = patches

    def find_spec(self, name, path, target=None):
        if name not in self.patches:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        origin, replace = Path(spec.origin), self.patches[name]

        class Loader(importlib.machinery.SourceFileLoader):
            def get_data(self, file):
                if Path(file) == origin:
                    return patched_source(origin, replace).encode()
                return super().get_data(file)

            def get_code(self, fullname):  # never a cached .pyc of the unpatched file
                return compile(self.get_data(self.path), self.path, "exec")

        spec.loader = Loader(name, str(origin))
        return spec


def patch_modules(patches: dict[str, dict[str, str]]) -> None:
    """``{module name: {old line: new line}}``: applied when each module is imported."""
    sys.meta_path.insert(0, _PatchedModules(patches))


def patched_source(path: Path, replace: dict[str, str]) -> str:
    src = path.read_text()
    for old, new in replace.items():
        n = src.count(old)
        if n != 1:
            raise SystemExit(f"{path}: expected {old!r} exactly once, found it {n} times")
        src = src.replace(old, new)
    return src


def run_script(
    path: Path, argv: list[str], cwd: Path, replace: dict[str, str] | None = None
) -> dict:
    """Execute ``path`` as ``__main__`` (its directory first on ``sys.path``, ``cwd`` as the
    working directory) and return its global namespace."""
    path = Path(path).resolve()
    src = patched_source(path, replace or {})
    ns = {"__name__": "__main__", "__file__": str(path)}
    old_argv, old_cwd, old_out = sys.argv, os.getcwd(), sys.stdout
    sys.argv = [str(path), *argv]
    sys.path.insert(0, str(path.parent))
    os.chdir(cwd)
    try:
        exec(compile(src, str(path), "exec"), ns)
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
        sys.path.remove(str(path.parent))
        # their Logger replaces sys.stdout and closes the console when collected
        _KEEP.append(sys.stdout)
        sys.stdout = old_out
    return ns


_KEEP: list = []
