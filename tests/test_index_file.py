"""An index file is untrusted input: every defect is one line naming the file, nothing
is allocated that the file does not hold, and a reader never changes it (fuzzed with
Hypothesis: random bytes, truncations, bit flips, odd arrays)."""

import hashlib
import io
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vireid.data.records import Modality, Sample
from vireid.search import GalleryIndex, IndexSpec
from vireid.search.index_file import IndexFileError, read_index_file

V, I = Modality.VISIBLE, Modality.INFRARED


def _gallery(n=40, dim=8, kind="flat", seed=0) -> GalleryIndex:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    samples = [Sample(f"/g/{i}.jpg", i, 1, V if i % 2 else I) for i in range(n)]
    return GalleryIndex(x, samples, IndexSpec(kind=kind), model_id="m")


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("idx") / "g.npz"
    return _gallery(kind="hnsw").save(path).read_bytes()


def _one_line_naming(e: BaseException, path) -> None:
    text = str(e)
    assert "\n" not in text and str(path) in text, text


def _refused(path) -> None:
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(IndexFileError) as e:
        GalleryIndex.from_file(path)
    _one_line_naming(e.value, path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # readers never write


def test_empty_truncated_and_foreign_files_are_one_line(good, tmp_path):
    path = tmp_path / "g.npz"
    for data in (b"", good[: len(good) // 2], good[:-10], b"PK\x03\x04" + b"\0" * 50, b"x" * 99):
        path.write_bytes(data)
        _refused(path)
    with pytest.raises(IndexFileError, match="is empty"):
        path.write_bytes(b"")
        read_index_file(path)
    with pytest.raises(IndexFileError, match="is a folder"):
        read_index_file(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_index_file(tmp_path / "none.npz")


def _npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _arrays(n=4, dim=3) -> dict:
    return {
        "feats": np.eye(n, dim, dtype=np.float32) + 0.1,
        "pids": np.arange(n),
        "camids": np.ones(n, np.int64),
        "modality": np.array(["visible", "infrared"] * (n // 2)),
        "paths": np.array([f"/g/{i}.jpg" for i in range(n)]),
        "model_id": np.asarray("m"),
    }


@pytest.mark.parametrize(
    "change,fragment",
    [
        ({"feats": np.full((4, 3), np.nan, np.float32)}, "4 of 4 rows of 'feats' hold NaN"),
        ({"feats": np.zeros((4, 0), np.float32)}, "expected float (N, D), D ≥ 1"),
        ({"feats": np.zeros((4, 3), np.int64)}, "expected float"),
        ({"pids": np.arange(4.0)}, "'pids' is float64"),
        ({"pids": np.full(4, 2**64 - 1, np.uint64)}, "past the int64 range"),
        ({"camids": np.arange(3)}, "expected 4 integers"),
        ({"modality": np.array(["uv"] * 4)}, "'modality' holds ['uv']"),
        ({"paths": np.arange(4)}, "'paths' is int64"),
        ({"model_id": np.arange(2)}, "'model_id' is not one string"),
        ({"index_spec": np.asarray('{"kind": "lsh"}')}, "unreadable index_spec"),
    ],
)
def test_wrong_arrays_are_named(tmp_path, change, fragment):
    path = _npz(tmp_path / "g.npz", **{**_arrays(), **change})
    with pytest.raises(IndexFileError, match=None) as e:
        GalleryIndex.from_file(path)
    _one_line_naming(e.value, path)
    assert fragment in str(e.value)


def test_one_nan_row_is_refused_not_silently_never_found(tmp_path):
    a = _arrays()
    a["feats"][2, 1] = np.inf
    path = _npz(tmp_path / "g.npz", **a)
    with pytest.raises(IndexFileError, match=r"1 of 4 rows .* \(first: row 2, /g/2.jpg\)"):
        GalleryIndex.from_file(path)


def test_a_size_field_past_the_data_allocates_nothing(tmp_path):
    """An .npy header that declares 2**40 float32 rows in a 1 KB member is refused from
    the header (np.load would allocate for the declared shape first)."""
    buf = io.BytesIO()
    np.save(buf, np.zeros((4, 3), np.float32))
    raw = buf.getvalue().replace(b"(4, 3)", b"(1099511627776, 3)".ljust(6))
    path = tmp_path / "g.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("feats.npy", raw)
    with pytest.raises(IndexFileError, match="array 'feats' declares"):
        read_index_file(path)


def _hnsw_levels_offset(blob: bytes) -> int:
    off = 4 + 4 + 8 + 8 + 8 + 1 + 4  # fourcc, d, ntotal, 2 dummies, is_trained, metric
    for width in (8, 4):  # assign_probas (double), cum_nneighbor_per_level (int)
        off += 8 + width * struct.unpack_from("<Q", blob, off)[0]
    return off  # the size field of `levels`


def test_a_crafted_hnsw_blob_cannot_make_faiss_allocate(tmp_path):
    """The probe's blob asked faiss for 8 GB (std::bad_alloc); with the limits set from
    the blob's own size faiss refuses it from the size field."""
    gallery = _gallery(kind="hnsw")
    path = gallery.save(tmp_path / "g.npz")
    data = dict(np.load(path))
    blob = bytearray(data["faiss_visible"].tobytes())
    off = _hnsw_levels_offset(blob)
    assert struct.unpack_from("<Q", blob, off)[0] == 20  # the 20 visible rows
    struct.pack_into("<Q", blob, off, 2**31)  # 2**31 ints: 8 GB
    data["faiss_visible"] = np.frombuffer(bytes(blob), np.uint8)
    _npz(path, **data)
    with pytest.raises(IndexFileError, match="stored hnsw index is broken"):
        GalleryIndex.from_file(path)
    # another faiss kind than the one vireid writes is not read at all
    data["faiss_visible"] = _gallery(kind="ivf", n=200).snapshot().blobs[V]
    _npz(path, **data)
    with pytest.raises(IndexFileError, match="not a faiss IndexHNSWFlat"):
        GalleryIndex.from_file(path)


FUZZ = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


def _fuzz_one(good, tmp_path, data) -> None:
    """Truncations, bit flips, byte runs and random bytes: the reader either loads a
    consistent gallery or raises one line naming the file; it never writes to it."""
    how = data.draw(st.sampled_from(["truncate", "flip", "splice", "random"]))
    raw = bytearray(good)
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "splice":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i : i + 8] = data.draw(st.binary(min_size=8, max_size=8))
    else:
        raw = bytearray(data.draw(st.binary(max_size=2000)))
    path = tmp_path / "fuzz.npz"
    path.write_bytes(bytes(raw))
    try:
        g = GalleryIndex.from_file(path)
    except IndexFileError as e:
        _one_line_naming(e, path)
    else:  # a flip in a region nobody checks (padding, a path's text) may still load
        assert np.isfinite(g.feats).all() and len(g.samples) == len(g.feats)
        assert sum(g.counts().values()) == len(g)
    assert path.read_bytes() == bytes(raw)


@settings(max_examples=60, **FUZZ)
@given(data=st.data())
def test_fuzzed_index_files_load_or_fail_in_one_line(good, tmp_path, data):
    _fuzz_one(good, tmp_path, data)


@pytest.mark.slow
@settings(max_examples=2000, **FUZZ)
@given(data=st.data())
def test_fuzzed_index_files_many(good, tmp_path, data):
    _fuzz_one(good, tmp_path, data)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_truncate_gives_the_gallery_of_the_first_rows(kind):
    """What a failed save undoes: after ``truncate(n)`` the gallery searches like one built
    from the first n rows, and grows again from there."""
    full, first = _gallery(n=300, kind=kind), _gallery(n=300, kind=kind)
    full.add(_gallery(n=60, seed=1).feats, [Sample(f"/n/{i}.jpg", -1, 0, V) for i in range(60)])
    full.truncate(300)
    assert len(full) == 300 and "/n/0.jpg" not in full and full.counts() == first.counts()
    q = _gallery(n=10, seed=2).feats
    for m in (V, I):
        got = [[x.row for x in r] for r in full.search(q, m, 5)]
        want = [[x.row for x in r] for r in first.search(q, m, 5)]
        if kind == "flat":
            assert got == want
        else:  # approximate kinds: the same rows searched (HNSW's graph is rebuilt)
            assert all(max(r) < 300 for r in got)
    full.add(q[:1], [Sample("/n/again.jpg", -1, 0, I)])
    assert full.row_of("/n/again.jpg") == 300 and full.search(q[:1], V, 1)[0][0].row == 300
