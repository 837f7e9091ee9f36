"""Property tests over the three readers that take a user's file: the checkpoint reader,
the ``--features`` ``.npz`` reader and the image reader. Whatever the bytes (random,
truncated, bit-flipped, lying headers, odd formats, extreme numbers), a reader either
returns data that passes its own checks or raises its one error type with one line naming
the file, never repeats a library's advice to load unsafely, and leaves the file as it
was; the ``vireid`` command on top exits 0 or 2 with one line, without a traceback.

The default run keeps the example counts small; ``pytest -m slow`` runs many more and
calls the installed ``vireid`` in a subprocess."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from typer.testing import CliRunner

from reliability_helpers import (
    UNSAFE_ADVICE,
    assert_one_line_error,
    digest,
    make_checkpoint,
    make_features,
)
from vireid.cli import app
from vireid.data.cache import MAX_PIXELS, load_rgb
from vireid.data.datasets.errors import DatasetError
from vireid.engine.checkpoint import CheckpointError
from vireid.engine.restore import model_from_checkpoint
from vireid.evaluation.features import FEATURE_KEYS, load_features, samples_from_features

runner = CliRunner()
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FUZZ_CLI = settings(FUZZ, max_examples=12)
FUZZ_SLOW = settings(FUZZ, max_examples=400)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """One real file of each kind, and the folder-protocol tree and model for the CLI."""
    from conftest import write_image

    d = tmp_path_factory.mktemp("fuzz")
    images = {}
    for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp")):
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 12, 3), np.uint8)).save(
            buf, fmt
        )
        images[suffix] = buf.getvalue()
    root = d / "tree"
    for split in ("query", "gallery"):
        for mod, cam in (("infrared", 2), ("visible", 1)):
            if (split == "query") == (mod == "infrared"):
                for pid in (1, 2):
                    write_image(root / split / mod / f"cam{cam}" / str(pid) / "0.png", pid)
    return Base(
        {
            "ckpt": make_checkpoint(d / "last.pt").read_bytes(),
            "folder_ckpt": make_checkpoint(
                d / "folder.pt", "data.dataset.name=folder", "eval.protocol=folder"
            ),
            "npz": make_features(d / "f.npz").read_bytes(),
            "images": images,
            "tree": root,
        }
    )


class Base(dict):
    """The fixture's files; a short repr, so a falsifying example stays readable."""

    def __repr__(self) -> str:
        return "<base files>"


# ------------------------------------------------------------------ byte mutations
def byte_mutations(max_size: int = 1 << 20):
    """(kind, argument) pairs ``mutate`` applies to a file's bytes."""
    pos = st.integers(0, max_size)
    return st.one_of(
        st.tuples(st.just("truncate"), pos),
        st.tuples(st.just("flip"), st.lists(st.tuples(pos, st.integers(0, 7)), min_size=1)),
        st.tuples(st.just("splice"), st.tuples(pos, st.binary(min_size=1, max_size=64))),
        st.tuples(st.just("random"), st.binary(max_size=4096)),
    )


def mutate(data: bytes, op) -> bytes:
    kind, arg = op
    if kind == "truncate":
        return data[: arg % (len(data) + 1)]
    if kind == "flip":
        b = bytearray(data)
        for p, bit in arg:
            b[p % len(b)] ^= 1 << bit
        return bytes(b)
    if kind == "splice":
        p, blob = arg
        p %= len(data) + 1
        return data[:p] + blob + data[p + len(blob) :]
    return arg


def _check_message(e: Exception, path: Path) -> None:
    msg = str(e)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    assert not any(a in msg for a in UNSAFE_ADVICE), msg


def _write(dirname: str, name: str, data: bytes) -> tuple[Path, str]:
    path = Path(dirname) / name
    path.write_bytes(data)
    return path, digest(path)


# ------------------------------------------------------------------ checkpoints
def _checkpoint_property(base, op) -> None:
    with tempfile.TemporaryDirectory() as d:
        path, before = _write(d, "last.pt", mutate(base["ckpt"], op))
        try:
            _, _, state = model_from_checkpoint(path)
        except CheckpointError as e:
            _check_message(e, path)
        else:  # accepted: only what a checkpoint may hold
            for v in state["model"].values():
                assert not v.is_floating_point() or torch.isfinite(v).all()
            assert isinstance(state["epoch"], int) and isinstance(state["config"], dict)
        assert digest(path) == before


@FUZZ
@given(op=byte_mutations())
def test_checkpoint_reader_fuzz(base, op):
    _checkpoint_property(base, op)


@pytest.mark.slow
@FUZZ_SLOW
@given(op=byte_mutations())
def test_checkpoint_reader_fuzz_many(base, op):
    _checkpoint_property(base, op)


# ------------------------------------------------------------------ features files
def _features_ok(data: dict) -> None:
    f = data["feats"]
    assert f.dtype == np.float32 and f.ndim == 2 and np.isfinite(f).all()
    assert not len(f) or f.shape[1] >= 1
    assert all(len(data[k]) == len(f) for k in FEATURE_KEYS)
    samples_from_features(data)


def _features_property(path: Path, before: str) -> None:
    try:
        _features_ok(load_features(path))
    except ValueError as e:
        _check_message(e, path)
    assert digest(path) == before


@FUZZ
@given(op=byte_mutations())
def test_features_reader_fuzz_bytes(base, op):
    with tempfile.TemporaryDirectory() as d:
        _features_property(*_write(d, "f.npz", mutate(base["npz"], op)))


DTYPES = ["f2", "f4", "f8", "i1", "i8", "u8", "?", "c8", "U3", "S3", "M8[s]"]
odd_arrays = hnp.arrays(
    dtype=st.sampled_from(DTYPES),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40),
)


@st.composite
def feature_dicts(draw, valid: dict):
    """The valid arrays, each possibly dropped or replaced by an odd one (any dtype and
    shape, numpy's extreme values: NaN, ±Inf, huge integers, empty strings)."""
    out = {}
    for k, v in valid.items():
        choice = draw(st.sampled_from(["keep", "keep", "odd", "drop"]))
        if choice == "keep":
            out[k] = v
        elif choice == "odd":
            out[k] = draw(odd_arrays)
    return out


@FUZZ
@given(data=st.data())
def test_features_reader_fuzz_arrays(base, data):
    with tempfile.TemporaryDirectory() as d:
        valid = dict(np.load(io.BytesIO(base["npz"])))
        arrays = data.draw(feature_dicts(valid))
        path = Path(d) / "f.npz"
        np.savez(path, **arrays)
        _features_property(path, digest(path))


@pytest.mark.slow
@FUZZ_SLOW
@given(op=byte_mutations(), data=st.data())
def test_features_reader_fuzz_many(base, op, data):
    with tempfile.TemporaryDirectory() as d:
        _features_property(*_write(d, "f.npz", mutate(base["npz"], op)))
        path = Path(d) / "g.npz"
        np.savez(path, **data.draw(feature_dicts(dict(np.load(io.BytesIO(base["npz"]))))))
        _features_property(path, digest(path))


@FUZZ_CLI
@given(data=st.data())
def test_eval_features_cli_fuzz(base, data):
    """The command on top: exit 0, or 2 with one line (errors of the evaluation itself,
    like 'no valid query', need not name the file)."""
    with tempfile.TemporaryDirectory() as d:
        if data.draw(st.booleans()):
            raw = mutate(base["npz"], data.draw(byte_mutations()))
            path, before = _write(d, "f.npz", raw)
        else:
            path = Path(d) / "f.npz"
            np.savez(path, **data.draw(feature_dicts(dict(np.load(io.BytesIO(base["npz"]))))))
            before = digest(path)
        r = runner.invoke(app, ["eval", "--features", str(path), "--protocol", "sysu/all/single"])
        if r.exit_code != 0:
            assert_one_line_error(r)
        assert digest(path) == before


# ------------------------------------------------------------------ images
def _png(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _other_format(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, fmt)
    return buf.getvalue()


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
side = st.integers(1, 2**31 - 1)


def image_bytes(base):
    """A valid image, mutated; a PNG header of any size; another format (GIF, TIFF,
    WebP, EPS): which of Pillow's decoders would take it is the reader's choice, not the
    file's."""
    valid = st.sampled_from(sorted(base["images"].items()))
    return st.one_of(
        st.tuples(valid, byte_mutations(4096)).map(lambda t: (t[0][0], mutate(t[0][1], t[1]))),
        st.tuples(side, side).map(lambda wh: (".png", _png(*wh))),
        st.sampled_from(["GIF", "TIFF", "WEBP"]).map(lambda f: (".jpg", _other_format(f))),
        st.just((".jpg", EPS)),
    )


def _image_property(path: Path, before: str) -> None:
    try:
        im = load_rgb(str(path))
    except DatasetError as e:
        _check_message(e, path)
    else:
        assert im.mode == "RGB" and im.width * im.height <= MAX_PIXELS
    assert digest(path) == before


@FUZZ
@given(data=st.data())
def test_image_reader_fuzz(base, data):
    suffix, raw = data.draw(image_bytes(base))
    with tempfile.TemporaryDirectory() as d:
        _image_property(*_write(d, "im" + suffix, raw))


@pytest.mark.slow
@FUZZ_SLOW
@given(data=st.data())
def test_image_reader_fuzz_many(base, data):
    suffix, raw = data.draw(image_bytes(base))
    with tempfile.TemporaryDirectory() as d:
        _image_property(*_write(d, "im" + suffix, raw))


@FUZZ_CLI
@given(data=st.data())
def test_eval_images_cli_fuzz(base, data, tmp_path_factory):
    """One query image of a folder protocol replaced: ``vireid eval`` decodes it."""
    import shutil

    suffix, raw = data.draw(image_bytes(base))
    root = tmp_path_factory.mktemp("tree")
    shutil.copytree(base["tree"], root, dirs_exist_ok=True)
    victim = next(iter(sorted((root / "query").rglob("*.png"))))
    victim.unlink()
    victim = victim.with_suffix(suffix)
    victim.write_bytes(raw)
    before = digest(victim)
    r = runner.invoke(
        app, ["eval", str(base["folder_ckpt"]), "--protocol", "folder", "--root", str(root)]
    )
    if r.exit_code != 0:
        line = assert_one_line_error(r, alone=False)
        assert victim.name in line or "no valid query" in line
    assert digest(victim) == before


# ------------------------------------------------------------------ the real command
def _vireid(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "vireid", *args], capture_output=True, text=True, env=env
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)
@settings(FUZZ, max_examples=6)
@given(op=byte_mutations())
def test_vireid_subprocess_fuzz(base, op, tmp_path_factory):
    """As a user runs it: a separate process, stderr read as printed."""
    d = tmp_path_factory.mktemp("sub")
    ck, ck_before = _write(d, "last.pt", mutate(base["ckpt"], op))
    ft, ft_before = _write(d, "f.npz", mutate(base["npz"], op))
    for args in (["eval", str(ck), "--root", str(d)], ["eval", "--features", str(ft), "-"]):
        if args[-1] == "-":
            args = [*args[:-1], "--protocol", "sysu/all/single"]
        p = _vireid(*args)
        if p.returncode != 0:
            assert p.returncode == 2, p.stderr
            lines = [x for x in p.stderr.splitlines() if x.strip()]
            assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr
            assert not any(a in p.stderr for a in UNSAFE_ADVICE)
    assert (digest(ck), digest(ft)) == (ck_before, ft_before)
