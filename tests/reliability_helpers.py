"""Shared by the reliability tests: a tiny checkpoint and features file made without
training, and the assertion that a CLI call failed with one clean line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

INSTANT = Path(__file__).parents[1] / "configs" / "tests" / "instant.yaml"
# what a reader's message must never repeat: the libraries' advice to load unsafely
UNSAFE_ADVICE = ("weights_only=False", "weights_only` set to `False", "allow_pickle=")


def make_checkpoint(path: Path, *overrides: str) -> Path:
    """A real vireid checkpoint of the instant model (4 classes), untrained."""
    from vireid.config import load_config
    from vireid.engine.builders import build_optimizer
    from vireid.engine.checkpoint import save_checkpoint
    from vireid.methods import build_method
    from vireid.models import build_model

    cfg = load_config(INSTANT, list(overrides))
    method = build_method(cfg.method, build_model(cfg.model, 4))
    return save_checkpoint(
        path,
        model=method,
        optimizer=build_optimizer(cfg, method),
        scaler=None,
        epoch=1,
        step=3,
        config=cfg.model_dump(mode="json"),
        fingerprint="0123456789abcdef",
        trial=None,
    )


def make_features(path: Path, n_ids: int = 6, per_side: int = 3, seed: int = 0) -> Path:
    """A features file with an explicit query/gallery split (no dataset needed)."""
    from vireid.data.records import Modality, Sample
    from vireid.evaluation.features import save_features

    rng = np.random.default_rng(seed)
    samples, split = [], []
    for pid in range(n_ids):
        for side, mod, cam in (("query", Modality.INFRARED, 3), ("gallery", Modality.VISIBLE, 1)):
            for k in range(per_side):
                samples.append(Sample(f"/data/{side}/{pid}/{k}.jpg", pid, cam, mod))
                split.append(side)
    centers = rng.normal(size=(n_ids, 8))
    feats = centers[[s.pid for s in samples]] + 0.5 * rng.normal(size=(len(samples), 8))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    return save_features(path, feats, samples, split)


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def assert_one_line_error(result, *needles: str, alone: bool = True) -> str:
    """Exit code 2, exactly one ``error:`` line holding every needle, no traceback, no
    unsafe advice; ``alone``: nothing else printed (commands that log first pass False)."""
    out = result.output
    assert result.exit_code == 2, out
    errors = error_lines(out)
    assert len(errors) == 1, out
    assert "Traceback" not in out, out
    assert not any(a in out for a in UNSAFE_ADVICE), out
    if alone:
        assert [line for line in out.splitlines() if line.strip()] == errors, out
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]
