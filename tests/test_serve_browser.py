"""The service's page in headless Chromium (Playwright): upload a query, see its
cross-modality matches as thumbnails. Slow and optional, like test_report_browser.py."""

import pytest

from conftest import chromium, index_images, live_server
from vireid.serve import GalleryService, create_app

pytestmark = pytest.mark.slow


def test_page_uploads_a_query_and_shows_cross_modality_thumbnails(
    checkpoint, fe, gallery_dir, tmp_path
):
    sync_api = pytest.importorskip("playwright.sync_api")
    index = index_images(checkpoint, tmp_path / "g.npz", gallery_dir)
    service = GalleryService(index, fe)
    query = sorted((gallery_dir / "ir").rglob("*.jpg"))[0]
    (tmp_path / "notes.txt").write_text("not a picture")
    all_loaded = (
        "() => [...document.querySelectorAll('.result img, #query img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    pid = int(query.parent.name)  # the folder names the identity (as `vireid index` reads)
    with live_server(create_app(service)) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        asked = []
        page.on("request", lambda r: asked.append(r.url))
        page.goto(url + "/")
        page.wait_for_function(
            "() => document.getElementById('stats').textContent.includes('24 images')"
        )
        page.set_input_files("#image", str(query))
        page.select_option("#modality", "infrared")
        page.fill("#k", "4")
        page.click("#go")
        page.wait_for_function("() => document.querySelectorAll('.result').length === 4")
        page.wait_for_function(all_loaded)
        mods = page.eval_on_selector_all(".result", "els => els.map(e => e.dataset.modality)")
        assert mods == ["visible"] * 4
        assert page.inner_text("#mode") == "infrared query → visible gallery"
        widths = page.eval_on_selector_all(
            ".result img, #query img", "els => els.map(e => e.naturalWidth)"
        )
        assert len(widths) == 5 and min(widths) > 0
        # the query is shown, with its modality; without its identity no border is judged
        assert page.is_visible("#query img") and "infrared" in page.inner_text("#query")
        classes = page.eval_on_selector_all(".result", "els => els.map(e => e.className)")
        assert classes == ["result unknown"] * 4 and page.is_hidden("#legend")
        # with the identity: green where a match has it, red where it has another
        page.fill("#pid", str(pid))
        page.click("#go")
        page.wait_for_function("() => !document.getElementById('legend').hidden")
        page.wait_for_function(all_loaded)
        pids = page.eval_on_selector_all(".result", "els => els.map(e => +e.dataset.pid)")
        classes = page.eval_on_selector_all(".result", "els => els.map(e => e.className)")
        assert classes == [f"result {'same' if x == pid else 'other'}" for x in pids]
        assert "same" in classes[0]  # the same person, seen by the other modality, first
        assert f"id {pid}" in page.inner_text("#query")
        colours = page.eval_on_selector_all(
            ".result img", "els => els.map(e => getComputedStyle(e).borderTopColor)"
        )
        assert {"rgb(42, 157, 58)", "rgb(221, 51, 51)"} >= set(colours)
        page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
        # a refused upload shows the service's message and nothing of the last search:
        # no results, no caption, no broken query picture
        page.set_input_files("#image", str(tmp_path / "notes.txt"))
        page.click("#go")
        page.wait_for_function("() => document.getElementById('error').textContent !== ''")
        assert "not a JPEG, PNG or BMP image" in page.inner_text("#error")
        assert page.locator(".result").count() == 0
        assert page.inner_text("#mode") == "" and page.is_hidden("#legend")
        page.wait_for_function("() => document.getElementById('query').hidden")
        page.screenshot(path=str(tmp_path / "serve_error.png"), full_page=True)
        # the page names its icon inline: the browser never asks the service for one
        assert not [u for u in asked if u.endswith("/favicon.ico")]
        assert page.get_attribute("link[rel=icon]", "href").startswith("data:image/svg+xml")
        browser.close()
