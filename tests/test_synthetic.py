import hashlib
import io

import numpy as np
from PIL import Image

from vireid.data.check import check_dataset
from vireid.data.synthetic import SynthSpec, write_llcm, write_regdb, write_sysu


def _digest(root):
    h = hashlib.sha1()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_per_seed(tmp_path):
    spec = SynthSpec(
        ids=8, seed=11, height=48, width=24, min_images=1, max_images=2, gallery_images=2
    )
    write_sysu(tmp_path / "a", spec)
    write_sysu(tmp_path / "b", spec)
    write_sysu(tmp_path / "c", SynthSpec(**{**spec.__dict__, "seed": 12}))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_sysu_output_passes_the_check(sysu_root):
    rep = check_dataset("sysu_mm01", sysu_root)
    assert rep.ok, rep.error or rep.unreadable
    assert rep.counts["test_ids"] > 0 and rep.counts["queries"] > 0


def test_regdb_output_passes_the_check(regdb_root):
    for trial in (1, 10):
        rep = check_dataset("regdb", regdb_root, trial)
        assert rep.ok, rep.error or rep.unreadable


def test_infrared_is_grey_and_visible_is_colour(sysu_root):
    ir = next((sysu_root / "cam3").rglob("*.jpg"))
    vis = next((sysu_root / "cam1").rglob("*.jpg"))
    a = np.asarray(Image.open(ir).convert("RGB")).astype(int)
    b = np.asarray(Image.open(vis).convert("RGB")).astype(int)
    assert np.abs(a[..., 0] - a[..., 1]).mean() < 2  # 3 equal channels (JPEG noise aside)
    assert np.abs(b[..., 0] - b[..., 2]).mean() > 5


def test_regdb_pairs_are_aligned(regdb_root):
    v = (regdb_root / "idx" / "test_visible_3.txt").read_text().splitlines()
    t = (regdb_root / "idx" / "test_thermal_3.txt").read_text().splitlines()
    assert [x.split()[1] for x in v] == [x.split()[1] for x in t]
    assert [x.split("/")[1] for x in v] == [x.split("/")[1] for x in t]
    train = {
        x.split("/")[1]
        for x in (regdb_root / "idx" / "train_visible_3.txt").read_text().splitlines()
    }
    assert not train & {x.split("/")[1] for x in v}  # disjoint identities per trial


def test_regdb_layout(tmp_path):
    write_regdb(tmp_path, SynthSpec(ids=8, height=32, width=16), per_id=2)
    assert len(list((tmp_path / "Visible").rglob("*.bmp"))) == 16
    assert len(list((tmp_path / "idx").glob("*.txt"))) == 40


def test_sysu_frames_render_any_subset_of_identities_as_the_full_set(tmp_path):
    # the clustering benchmark cuts its 12k/34k populations out of the 100k one
    from vireid.data.synthetic.writer import sysu_frames

    spec = SynthSpec(ids=8, seed=5, height=48, width=24, min_images=1, max_images=3)
    full = list(sysu_frames(spec, [1, 2, 3]))
    part = list(sysu_frames(spec, [2]))
    assert [f[:3] for f in part] == [f[:3] for f in full if f[0] == 2]
    for a, b in zip(part, [f for f in full if f[0] == 2], strict=True):
        np.testing.assert_array_equal(a[3], b[3])
    assert {f[0] for f in full} == {1, 2, 3} and full[0][3].shape == (48, 24, 3)
    # and they are the images write_sysu writes (its files: their JPEG encoding)
    stats = write_sysu(tmp_path / "d", spec)
    assert stats["images"] == sum(1 for _ in (tmp_path / "d").rglob("*.jpg"))
    for pid, cid, frame, img in full[:5]:
        path = tmp_path / "d" / f"cam{cid}" / f"{pid:04d}" / f"{frame:04d}.jpg"
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=95)
        assert buf.getvalue() == path.read_bytes()


def test_llcm_layout_reads_and_trains(tmp_path):
    """The release's layout: train lists with labels 0..N-1 over identity folders (the
    camera in the file name), test folders per camera, no NIR camera 3, test ids disjoint
    from the training ids; the LLCM reader and protocols read it unchanged."""
    from vireid.data.datasets.llcm import load_llcm
    from vireid.data.protocols import query_gallery

    root = tmp_path / "LLCM"
    stats = write_llcm(root, SynthSpec(ids=9, height=48, width=24, min_images=1, max_images=2))
    rep = check_dataset("llcm", root)
    assert rep.ok, rep.error or rep.unreadable
    splits = load_llcm(root)
    assert sorted({s.pid for s in splits.train}) == list(range(stats["train_ids"]))
    assert {s.camid for s in splits.train} <= set(range(1, 10))
    assert not (root / "test_nir" / "cam3").exists()
    test_ids = {int(x) for x in (root / "idx" / "test_id.txt").read_text().split(",")}
    train_dirs = {int(p.name) for p in (root / "vis").iterdir()}
    assert test_ids.isdisjoint(train_dirs) and len(test_ids) == stats["test_ids"]
    q, g = query_gallery("llcm/i2v", root, 0)
    assert q and g
