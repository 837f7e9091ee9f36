"""`vireid index`, `vireid search` and `vireid serve` as their files' writers and readers:
one writer per index file (a lock naming its owner), leftovers of killed writers removed,
broken index files as one line for every command, only JPEG/PNG/BMP read, unreadable
folders refused, paths that work from any working directory, and the serve command's
own refusals (exposure without a token, --max-upload-mb inf, a port in use) before it
announces anything."""

import os
import socket

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import index_images, write_image
from vireid.cli import app
from vireid.cli.serve_cmd import default_hosts, is_loopback
from vireid.search import GalleryIndex
from vireid.search.lock import IndexBusyError, IndexLock
from vireid.serve import GalleryService

runner = CliRunner()


@pytest.fixture
def index_file(checkpoint, gallery_dir, tmp_path):
    return index_images(checkpoint, tmp_path / "g.npz", gallery_dir / "visible")


def _one_error_line(r, *fragments):
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    for f in fragments:
        assert f in lines[0], r.output


def test_a_second_writer_is_refused_with_the_owner_named(
    checkpoint, fe, gallery_dir, index_file, tmp_path
):
    """The probe: `index --append` on the file a running service owns, and its rows
    vanished at the service's next save."""
    append = ["index", str(checkpoint), "--out", str(index_file), "--append"]
    with GalleryService(index_file, fe, upload_dir=tmp_path / "up"):
        r = runner.invoke(app, [*append, "--images", str(gallery_dir / "ir")])
        _one_error_line(r, f"{index_file} is being written by pid {os.getpid()}", "--read-only")
        with pytest.raises(IndexBusyError, match="is being written by"):
            GalleryService(index_file, fe)
        r = runner.invoke(app, ["serve", str(index_file), str(checkpoint)])
        _one_error_line(r, "is being written by")
        GalleryService(index_file, fe, read_only=True).close()  # readers take no lock
        assert len(GalleryIndex.from_file(index_file)) == 6
    r = runner.invoke(app, [*append, "--images", str(gallery_dir / "ir")])  # handed back
    assert r.exit_code == 0, r.output
    assert len(GalleryIndex.from_file(index_file)) == 12


def test_leftovers_of_killed_writers_are_removed_by_the_next_writer(
    checkpoint, fe, gallery_dir, index_file, tmp_path
):
    tmp = tmp_path / ".g.npz.k1ll3d.tmp"
    tmp.write_bytes(b"\0" * 2**20)
    other = tmp_path / ".other.npz.x.tmp"  # another file's: not ours to remove
    other.write_bytes(b"x")
    with IndexLock(index_file):
        assert not tmp.exists() and other.exists()
    tmp.write_bytes(b"\0")
    up = tmp_path / "up"
    up.mkdir()
    old_upload_tmp = up / ".abc.png.x.tmp"
    old_upload_tmp.write_bytes(b"x")
    os.utime(old_upload_tmp, (1, 1))
    fresh_upload_tmp = up / ".def.png.y.tmp"  # may be a live writer's: kept
    fresh_upload_tmp.write_bytes(b"y")
    with GalleryService(index_file, fe, upload_dir=up):
        assert not tmp.exists() and not old_upload_tmp.exists() and fresh_upload_tmp.exists()


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "nan"])
def test_broken_index_files_are_one_line_for_every_command(
    checkpoint, gallery_dir, index_file, damage
):
    raw = index_file.read_bytes()
    if damage == "nan":
        data = dict(np.load(index_file))
        data["feats"][3] = np.nan
        with open(index_file, "wb") as f:
            np.savez(f, **data)
    else:
        index_file.write_bytes(
            {"empty": b"", "truncated": raw[: len(raw) // 3], "garbage": os.urandom(999)}[damage]
        )
    before = index_file.read_bytes()
    query = str(gallery_dir / "ir")
    for args in (
        ["search", str(index_file), str(checkpoint), query],
        ["serve", str(index_file), str(checkpoint)],
        ["serve", str(index_file), str(checkpoint), "--read-only"],
        ["index", str(checkpoint), "--out", str(index_file), "--append", "--images", query],
    ):
        _one_error_line(runner.invoke(app, args), str(index_file))
    assert index_file.read_bytes() == before


def test_append_to_an_index_without_model_id_is_refused(checkpoint, fe, gallery_dir, index_file):
    data = dict(np.load(index_file))
    del data["model_id"]
    with open(index_file, "wb") as f:
        np.savez(f, **data)
    ir = str(gallery_dir / "ir")
    r = runner.invoke(
        app, ["index", str(checkpoint), "--out", str(index_file), "--append", "--images", ir]
    )
    _one_error_line(r, "does not record which weights built it")
    with pytest.raises(ValueError, match="does not record which weights"):
        GalleryService(index_file, fe)
    GalleryService(index_file, fe, read_only=True).close()  # searching it is allowed


def test_index_reads_only_jpeg_png_bmp_within_the_pixel_limit(checkpoint, tmp_path):
    out = ["index", str(checkpoint), "--out", str(tmp_path / "g.npz"), "--images"]
    folder = tmp_path / "visible"
    write_image(folder / "ok.jpg")
    Image.new("RGB", (32, 64)).save(folder / "x.png", "GIF")  # a GIF named .png
    _one_error_line(runner.invoke(app, [*out, str(folder)]), "x.png: not a JPEG, PNG or BMP")
    (folder / "x.png").unlink()
    Image.new("RGB", (8, 8)).save(folder / "y.jpg", "EPS")  # EPS runs Ghostscript
    _one_error_line(runner.invoke(app, [*out, str(folder)]), "y.jpg: not a JPEG, PNG or BMP")
    (folder / "y.jpg").unlink()
    Image.new("L", (3000, 2000)).save(folder / "big.png")
    r = runner.invoke(app, [*out, str(folder), "--max-pixels", "5000000"])
    _one_error_line(r, "big.png: 3000×2000 pixels, more than the limit of 5,000,000")
    r = runner.invoke(app, [*out, str(folder), "--out", str(tmp_path)])
    _one_error_line(r, "is a folder")


def test_unreadable_sub_folders_are_an_error_not_skipped(checkpoint, tmp_path, monkeypatch):
    """The probe indexed 108 of 113 images with rc 0 (tests run as root here, so the
    permission error is injected where the walk meets the folder)."""
    for sub in ("a", "b"):
        write_image(tmp_path / "visible" / sub / "1.jpg")
    locked = str(tmp_path / "visible" / "b")
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out, images = str(tmp_path / "g.npz"), str(tmp_path / "visible")
    r = runner.invoke(app, ["index", str(checkpoint), "--out", out, "--images", images])
    _one_error_line(r, f"{locked}: cannot read this folder (Permission denied)")


def test_paths_work_from_any_working_directory(checkpoint, fe, gallery_dir, tmp_path, monkeypatch):
    """The probe: started from another folder, thumbnails 404 and re-posting an uploaded
    picture added it a second time."""
    from fastapi.testclient import TestClient

    from vireid.serve import create_app

    monkeypatch.chdir(gallery_dir.parent)
    r = runner.invoke(
        app, ["index", str(checkpoint), "--out", "g.npz", "--images", "gallery/visible"]
    )
    assert r.exit_code == 0, r.output
    picture = (gallery_dir / "ir").rglob("*.jpg").__next__().read_bytes()
    form = {"modality": "infrared"}
    with GalleryService("g.npz", fe) as s:
        c = TestClient(create_app(s), base_url="http://localhost")
        assert c.post("/gallery", files={"images": ("p.jpg", picture)}, data=form).json()["added"][
            0
        ]["new"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rel = os.path.relpath(gallery_dir.parent / "g.npz")
    with GalleryService(rel, fe) as s:
        c = TestClient(create_app(s), base_url="http://localhost")
        again = c.post("/gallery", files={"images": ("p.jpg", picture)}, data=form).json()
        assert again["added"][0] == {**again["added"][0], "row": 6, "new": False}
        assert [c.get(f"/gallery/{i}/thumbnail").status_code for i in range(7)] == [200] * 7
    assert all(os.path.isabs(s.path) for s in GalleryIndex.from_file(rel).samples)


def test_protocol_index_works_from_any_working_directory(
    checkpoint, fe, sysu_root, tmp_path, monkeypatch
):
    """Row 12's leftover: `index --protocol --root REL` stored cwd-relative paths, so served
    from another folder its thumbnails 404. `eval --features` matches rows by absolute path:
    a new file evaluates with a relative --root, an older file of relative paths still
    evaluates from the folder it was made in, with either kind of --root."""
    import json

    from fastapi.testclient import TestClient

    from vireid.serve import create_app

    monkeypatch.chdir(sysu_root.parent)
    rel = ["--protocol", "sysu/all/single", "--trials", "1", "--root", sysu_root.name]
    out = tmp_path / "p.npz"
    r = runner.invoke(app, ["index", str(checkpoint), "--out", str(out), *rel])
    assert r.exit_code == 0, r.output
    n = len(GalleryIndex.from_file(out))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with GalleryService(out, fe) as s:
        c = TestClient(create_app(s), base_url="http://localhost")
        assert [c.get(f"/gallery/{i}/thumbnail").status_code for i in range(n)] == [200] * n

    monkeypatch.chdir(sysu_root.parent)
    with np.load(out) as z:
        arrays = dict(z)
    arrays["paths"] = np.asarray([os.path.relpath(p) for p in arrays["paths"]])
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    means = []
    for i, (feats, root) in enumerate(
        [(out, sysu_root.name), (old, sysu_root.name), (old, str(sysu_root))]
    ):
        args = [*rel[:-1], root, "--out", str(tmp_path / f"e{i}")]
        r = runner.invoke(app, ["eval", "--features", str(feats), *args])
        assert r.exit_code == 0, r.output
        means.append(json.loads((tmp_path / f"e{i}" / "results.json").read_text())["mean"])
    assert means[1] == means[0] == means[2]


def test_a_folder_named_past_int64_is_an_unknown_identity(checkpoint, tmp_path):
    write_image(tmp_path / "visible" / "99999999999999999999" / "1.jpg")
    write_image(tmp_path / "visible" / "cam99999999999999999999" / "7" / "1.jpg")
    out = tmp_path / "g.npz"
    r = runner.invoke(
        app, ["index", str(checkpoint), "--out", str(out), "--images", str(tmp_path / "visible")]
    )
    assert r.exit_code == 0, r.output
    assert sorted((s.pid, s.camid) for s in GalleryIndex.from_file(out).samples) == [
        (-1, 0),
        (7, 0),
    ]


def test_serve_refuses_before_announcing(checkpoint, index_file):
    base = ["serve", str(index_file), str(checkpoint)]
    r = runner.invoke(app, [*base, "--host", "0.0.0.0"])
    _one_error_line(r, "reaches beyond this machine", "--token", "--insecure")
    r = runner.invoke(app, [*base, "--token-reads"])
    _one_error_line(r, "--token-reads needs --token")
    r = runner.invoke(app, [*base, "--max-upload-mb", "inf"])
    _one_error_line(r, "--max-upload-mb inf")
    r = runner.invoke(app, [*base, "--token", "short"])
    _one_error_line(r, "at least 16 characters")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = runner.invoke(app, [*base, "--port", str(port)])
    _one_error_line(r, f"cannot listen on 127.0.0.1:{port} (Address already in use)")
    assert "serving" not in r.output
    # the lock was handed back on the way out: a writer can take it
    IndexLock(index_file).acquire().release()


def test_loopback_and_default_host_names():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("::")
    assert default_hosts("127.0.0.1") == ["localhost", "127.0.0.1", "::1"]
    assert default_hosts("10.1.2.3")[-1] == "10.1.2.3"
    assert socket.gethostname().lower() in default_hosts("0.0.0.0")


def test_serve_announces_after_binding_and_warns_on_every_interface(
    checkpoint, index_file, monkeypatch
):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: started.append(sockets))
    base = ["serve", str(index_file), str(checkpoint), "--port", "0"]
    r = runner.invoke(app, [*base, "--host", "0.0.0.0"], env={"VIREID_TOKEN": "t" * 20})
    assert r.exit_code == 0, r.output
    assert "serving 6 images" in r.output and "listening on every interface" in r.output
    assert "writes need the token, searches do not" in r.output and len(started) == 1
    r = runner.invoke(app, [*base, "--host", "0.0.0.0", "--insecure"])
    assert r.exit_code == 0 and "anyone who reaches this machine can search and add" in r.output
    r = runner.invoke(app, [*base])
    assert r.exit_code == 0 and "warning" not in r.output
    for sockets in started:
        sockets[0].close()
