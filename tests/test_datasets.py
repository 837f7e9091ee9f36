from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import write_image
from vireid.data.datasets import DatasetError
from vireid.data.datasets.base import parse_id_line
from vireid.data.datasets.folder import load_folder, read_manifest
from vireid.data.datasets.llcm import load_llcm
from vireid.data.datasets.regdb import load_regdb, parse_list_line
from vireid.data.datasets.sysu_mm01 import load_sysu_mm01
from vireid.data.records import Modality


def test_sysu_training_set_is_train_union_val(sysu_root):
    splits = load_sysu_mm01(sysu_root)
    ids = lambda name: {
        int(x) for x in (sysu_root / "exp" / f"{name}_id.txt").read_text().strip().split(",")
    }
    assert {s.pid for s in splits.train} == ids("train") | ids("val")
    assert splits.test_ids == sorted(ids("test"))
    for s in splits.train:
        p = Path(s.path)
        assert p.parent.name == f"{s.pid:04d}" and p.parent.parent.name == f"cam{s.camid}"
        assert (s.modality is Modality.INFRARED) == (s.camid in (3, 6))
    # community order: visible block (sorted id x cams 1,2,4,5 x sorted files), then IR
    vis = [s for s in splits.train if s.modality is Modality.VISIBLE]
    assert splits.train[: len(vis)] == vis
    keys = [(s.pid, (1, 2, 4, 5).index(s.camid), s.path) for s in vis]
    assert keys == sorted(keys)


def test_root_containing_cam_is_harmless(sysu_root):
    assert "cam" in sysu_root.name  # the fixture's root is named "... cam copy"
    assert all(s.camid in range(1, 7) for s in load_sysu_mm01(sysu_root).train)


def test_missing_root_and_env(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="expected a directory"):
        load_sysu_mm01(tmp_path / "nope")
    monkeypatch.delenv("VIREID_DATA", raising=False)
    with pytest.raises(DatasetError, match="VIREID_DATA"):
        load_sysu_mm01(None)


def test_root_from_env(sysu_root, monkeypatch):
    monkeypatch.setenv("VIREID_DATA", str(sysu_root))
    assert load_sysu_mm01(None).root == sysu_root


def test_missing_split_file(sysu_copy):
    (sysu_copy / "exp" / "val_id.txt").unlink()
    with pytest.raises(DatasetError, match=r"val split: expected a file at .*val_id.txt"):
        load_sysu_mm01(sysu_copy)


def test_empty_identity_folder(sysu_copy):
    tid = (sysu_copy / "exp" / "train_id.txt").read_text().split(",")[0].strip()
    folder = next(
        p for c in range(1, 7) if (p := sysu_copy / f"cam{c}" / f"{int(tid):04d}").is_dir()
    )
    for f in folder.iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=f"{folder.name}: identity folder holds no images"):
        load_sysu_mm01(sysu_copy)


def test_bad_id_line(sysu_copy):
    (sysu_copy / "exp" / "test_id.txt").write_text("1,2,x3\n")
    with pytest.raises(DatasetError, match=r"test_id.txt: item 3 is 'x3'"):
        load_sysu_mm01(sysu_copy)


@given(st.text(max_size=60))
@example("1,²")  # "²".isdigit() is True but int("²") fails
def test_id_line_parser_never_crashes(text):
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(text)
    try:
        ids = parse_id_line(Path(f.name))
    except DatasetError as e:
        assert f.name in str(e)
        return
    finally:
        Path(f.name).unlink()
    assert ids and all(isinstance(i, int) and i >= 0 for i in ids)


@given(st.text(max_size=80))
@example("Visible/1/a.bmp ¹")
def test_list_line_parser_never_crashes(line):
    try:
        rel, label = parse_list_line(line, Path("idx/x.txt"), 1)
    except DatasetError as e:
        assert "idx/x.txt:1" in str(e)
        return
    assert isinstance(label, int) and rel


def test_regdb_reader(regdb_root):
    splits = load_regdb(regdb_root, trial=2)
    vis = [s for s in splits.train if s.modality is Modality.VISIBLE]
    ir = [s for s in splits.train if s.modality is Modality.INFRARED]
    assert len(vis) == len(ir) == 6 * 4
    assert [s.pid for s in vis] == [s.pid for s in ir]  # aligned lists
    assert {s.camid for s in vis} == {1} and {s.camid for s in ir} == {2}
    with pytest.raises(DatasetError, match="trial must be one of 1..10"):
        load_regdb(regdb_root, trial=0)


def test_regdb_bad_label_line(regdb_root, tmp_path):
    import shutil

    root = tmp_path / "r"
    shutil.copytree(regdb_root, root)
    f = root / "idx" / "train_visible_1.txt"
    lines = f.read_text().splitlines()
    lines[2] = lines[2].split()[0] + " seven"
    f.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=r"train_visible_1.txt:3: .*integer label"):
        load_regdb(root, trial=1)


def test_llcm_reader_parses_components(llcm_root):
    assert "cam" in llcm_root.name
    splits = load_llcm(llcm_root)
    assert {s.camid for s in splits.train} == {1, 2}
    assert splits.test_ids == [3, 5, 8]
    assert {s.modality for s in splits.train} == {Modality.VISIBLE, Modality.INFRARED}


def test_llcm_training_images_take_the_camera_from_the_file_name(tmp_path):
    """The LLCM release keeps training images in identity folders without a camera
    folder (``vis/0001/0001_c01_s185535_f7010_vis.jpg``); the camera is in the name."""
    root = tmp_path / "LLCM"
    (root / "test_vis" / "cam1" / "0009").mkdir(parents=True)
    write_image(root / "test_vis" / "cam1" / "0009" / "0009_c01_s1_f1_vis.jpg")
    (root / "idx").mkdir()
    (root / "idx" / "test_id.txt").write_text("9")
    for sub, cams in (("vis", (1, 3)), ("nir", (4, 9))):
        lines = []
        for label, pid in enumerate((1, 2)):
            for cam in cams:
                rel = f"{sub}/{pid:04d}/{pid:04d}_c{cam:02d}_s185535_f70{cam}_{sub}.jpg"
                write_image(root / rel)
                lines.append(f"{rel} {label}")
        (root / "idx" / f"train_{sub}.txt").write_text("\n".join(lines) + "\n")
    splits = load_llcm(root)
    cams = {m: {s.camid for s in splits.train if s.modality is m} for m in Modality}
    assert cams == {Modality.VISIBLE: {1, 3}, Modality.INFRARED: {4, 9}}


def test_folder_tree_and_manifest(tmp_path):
    root = tmp_path / "mine"
    for split, mod, cam, pid in [
        ("train", "rgb", 1, 7),
        ("train", "ir", 2, 7),
        ("query", "ir", 2, 9),
        ("gallery", "visible", 1, 9),
    ]:
        write_image(root / split / mod / f"cam{cam}" / str(pid) / "a.png")
    splits = load_folder(root)
    assert len(splits.train) == 2 and splits.test_ids == [9]
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "split,path,pid,camid,modality\ntrain,mine/train/rgb/cam1/7/a.png,7,1,"
        "rgb\nquery,x.png,1,2,thermal\n"
    )
    out = read_manifest(manifest)
    assert out["query"][0].modality is Modality.INFRARED
    manifest.write_text("split,path,pid,camid,modality\ntrain,a.png,7,1,uv\n")
    with pytest.raises(DatasetError, match=r"m.csv:2: unknown modality 'uv'"):
        read_manifest(manifest)
    manifest.write_text("split,path,pid\n")
    with pytest.raises(DatasetError, match="missing columns"):
        read_manifest(manifest)


@given(st.text(max_size=60))
def test_path_and_modality_parsers_never_crash(text):
    from vireid.data.datasets.llcm import camid_from_relpath

    try:
        cam = camid_from_relpath(text)
        assert isinstance(cam, int) and cam >= 0
    except DatasetError as e:
        assert "cam<N>" in str(e)
    assert camid_from_relpath("nir/0001/0001_c07_s185535_f7010_nir.jpg") == 7
    try:
        Modality.parse(text)
    except ValueError as e:
        assert "unknown modality" in str(e)
