"""Feature parity of ``vireid import``: the community's own model code, random weights,
and vireid's two-stream network built from the imported checkpoint give the same test
features (within 1e-5).

For each source network (AGW ``model.py``; CAJ ``ICCV21_CAJ/model.py``; MMM ``model.py``
and its cluster-contrast stage ``clustercontrast/models/agw.py``; DDAG ``model_main.py``)
the script builds their ``embed_net`` from a checkout, draws random values for every
weight and BatchNorm statistic (so the zero-initialised non-local outputs and BNNeck
shifts take part), saves it in the source's checkpoint format, runs ``vireid import`` on
it and compares, per modality, the feature their test script scores (the BN feature;
CAJ's ``testa.py``: flip-averaged and re-normalised) with vireid's. Prints one JSON line.

    python benchmarks/parity/features.py --agw AGW_CHECKOUT --mmm MMM_CHECKOUT \\
        --ddag DDAG_CHECKOUT [--size 288x144] [--out parity_features]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from shims import apply_shims

from _common import emit

TOLERANCE = 1e-5


def _fresh_import(repo: Path, module: str):
    """Import ``module`` from ``repo`` (their flat module names clash across repos)."""
    for name in list(sys.modules):
        top = name.split(".")[0]
        if top in {"model", "model_main", "resnet", "attention", "clustercontrast"}:
            del sys.modules[name]
    sys.path.insert(0, str(repo))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(repo))


def _randomize(net: torch.nn.Module, seed: int) -> None:
    """Every float tensor redrawn; the non-local blocks' at a tenth of the scale (their
    un-normalised attention is cubic in the input and overflows at full scale)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if not t.is_floating_point():
                continue
            scale = 0.1 if "NL_" in name else 1.0
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.ndim == 1:  # BN weights and shifts, running means, conv biases
                base = 1.0 if name.endswith(".weight") else 0.0
                t.copy_(base + 0.2 * torch.randn(t.shape, generator=g))
            else:
                fan_in = t[0].numel()
                t.copy_(scale * torch.randn(t.shape, generator=g) / fan_in**0.5)


def _sources(a) -> list[tuple[str, str, Path, callable]]:
    """(name, --format, checkout dir, build → (net, container key, forward(x, modal)))."""
    out = []
    if a.agw:

        def agw(classes=7, repo=a.agw):
            net = _fresh_import(repo, "model").embed_net(classes, no_local="on", gm_pool="on")
            return net, "net", lambda x, modal: net(x, x, modal)[1]

        def agw_base(classes=7, repo=a.agw):
            net = _fresh_import(repo, "model").embed_net(classes, no_local="off", gm_pool="off")
            return net, "net", lambda x, modal: net(x, x, modal)[1]

        def caj(classes=7, repo=a.agw / "ICCV21_CAJ"):
            net = _fresh_import(repo, "model").embed_net(classes, no_local="on", gm_pool="on")
            return net, "net", lambda x, modal: net(x, x, modal)[1]

        out += [("agw", "agw", agw), ("agw (method base)", "agw", agw_base)]
        out += [("caj", "caj", caj)]
    if a.mmm:

        def mmm(classes=7, repo=a.mmm):
            net = _fresh_import(repo, "model").embed_net(classes, no_local="on", gm_pool="on")
            return net, "net", lambda x, modal: net(x, x, modal)[1]

        def mmm_stage_a(classes=None, repo=a.mmm):  # agw(): its default 1000 classes
            net = _fresh_import(repo, "clustercontrast.models.agw").agw()
            return torch.nn.DataParallel(net), "state_dict", lambda x, modal: net(x, x, modal)

        out += [("mmm", "mmm", mmm), ("mmm stage A (cluster-contrast agw.py)", "mmm", mmm_stage_a)]
    if a.ddag:

        def ddag(classes=7, repo=a.ddag):
            net = _fresh_import(repo, "model_main").embed_net(512, classes, wpa=True)
            adj = torch.ones(1)
            return net, "net", lambda x, modal: net(x, x, adj, modal)[0]

        out.append(("ddag (global branch, --drop-heads)", "ddag", ddag))
    return out


def compare(name, fmt, build, h, w, work: Path) -> dict:
    from vireid.engine.imported import import_checkpoint
    from vireid.engine.restore import load_model
    from vireid.evaluation.features import embed_batch

    net, key, forward = build()
    _randomize(net, 0)
    net.eval()
    src = work / f"{fmt}.t"
    state = {key: net.state_dict(), "epoch": 3}
    torch.save(state, src)
    out = work / f"{fmt}.pt"
    import_checkpoint(src, out, fmt, drop_heads=fmt == "ddag", size=(h, w))
    model, cfg, _, _ = load_model(out, "cpu")
    x = torch.randn(6, 3, h, w, generator=torch.Generator().manual_seed(1))
    diffs = {}
    for modal, modality in ((1, 0), (2, 1)):
        with torch.no_grad():
            theirs = forward(x, modal)
            if cfg.eval.flip:  # CAJ testa.py: mean of the normalised pair, re-normalised
                theirs = F.normalize(theirs + forward(x.flip(3), modal), dim=1)
            m = torch.full((len(x),), modality)
            ours = embed_batch(lambda x, m: model(x, m)["feat"], x, m, cfg.eval.flip)
        diffs["visible" if modality == 0 else "infrared"] = float((theirs - ours).abs().max())
    # controls: the comparison fails for the wrong stem and without the non-local blocks
    with torch.no_grad():
        swapped = model.embed(x, torch.ones(len(x), dtype=torch.long))
        controls = {"other_stem": float((forward(x, 1) - swapped).abs().max())}
        if cfg.model.non_local:
            kept, model.nl_index = model.nl_index, [[] for _ in model.nl_index]
            bypass = model.embed(x, torch.zeros(len(x), dtype=torch.long))
            model.nl_index = kept
            controls["non_local_bypassed"] = float((forward(x, 1) - bypass).abs().max())
    if cfg.eval.flip:
        controls = {}  # the controls compare unflipped features
    worst = max(diffs.values())
    return {
        "source": name,
        "format": fmt,
        "max_abs_diff": diffs,
        "controls": controls,
        "ok": worst <= TOLERANCE and all(c > 100 * TOLERANCE for c in controls.values()),
    }


def write_fixture(sources, path: Path) -> None:
    """Their state-dict key names and shapes (SYSU-MM01's 395 classes; the
    cluster-contrast model's default 1000), no values and no code: the CI fixture of
    ``tests/test_community_import.py``. Sources after the first are stored as
    differences from it."""
    lists = {}
    for name, fmt, build in sources:
        net, container, _ = build(395) if "stage A" not in name else build()
        lists[name] = (fmt, container, {k: list(v.shape) for k, v in net.state_dict().items()})
    first = next(iter(lists))
    base = lists[first][2]
    out = {}
    for name, (fmt, container, keys) in lists.items():
        entry = {"format": fmt, "container": container}
        if name == first:
            entry["keys"] = [[k, s] for k, s in keys.items()]
        else:
            prefix = "module." if all(k.startswith("module.") for k in keys) else ""
            bare = {k.removeprefix(prefix): s for k, s in keys.items()}
            entry["like"], entry["prefix"] = first, prefix
            entry["add"] = [[k, s] for k, s in bare.items() if base.get(k) != s]
            entry["drop"] = [k for k in base if k not in bare]
        out[name] = entry
    # one key per line: readable and diffable
    text = json.dumps(out, indent=1)
    text = re.sub(r"\[\s+(\"[^\"]+\"),\s+\[([^\]]*)\]\s+\]", _one_line, text)
    path.write_text(text + "\n")
    print(f"wrote {path} ({len(text)} characters)")


def _one_line(m: re.Match) -> str:
    dims = ", ".join(d.strip() for d in m[2].split(",") if d.strip())
    return f"[{m[1]}, [{dims}]]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agw", type=Path, help="mangye16/Cross-Modal-Re-ID-baseline checkout")
    p.add_argument("--mmm", type=Path, help="shijiangming1/MMM checkout")
    p.add_argument("--ddag", type=Path, help="mangye16/DDAG checkout")
    p.add_argument("--size", default="288x144", help="test image size HxW")
    p.add_argument("--out", default=None, help="results file stem (benchmarks/results/)")
    p.add_argument("--write-fixture", type=Path, help="write their key names and shapes here")
    a = p.parse_args()
    h, w = (int(v) for v in a.size.lower().split("x"))
    for key in ("agw", "mmm", "ddag", "write_fixture"):
        if getattr(a, key) is not None:
            setattr(a, key, getattr(a, key).resolve())
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # their ResNets load ImageNet weights at construction: random ones here (every
        # weight is redrawn afterwards anyway); the cluster-contrast copy reads a file
        import torchvision

        init = work / "examples" / "pretrained" / "resnet50-19c8e357.pth"
        init.parent.mkdir(parents=True)
        torch.save(torchvision.models.resnet50().state_dict(), init)
        apply_shims(init)
        cwd = os.getcwd()
        os.chdir(work)
        try:
            if a.write_fixture:
                return write_fixture(_sources(a), a.write_fixture)
            rows = [compare(n, f, b, h, w, work) for n, f, b in _sources(a)]
        finally:
            os.chdir(cwd)
    result = {"size": f"{h}x{w}", "tolerance": TOLERANCE, "rows": rows}
    if a.out:
        emit(a.out, result)
    else:
        print(json.dumps(result))
    if not all(r["ok"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
