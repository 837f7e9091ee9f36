"""The HTML rank report in a real headless browser (Chromium from Debian packages, driven
by Playwright). Slow and optional: ``pip install -e '.[browser]'``, ``apt-get install
chromium``, then ``pytest -m slow tests/test_report_browser.py``."""

import numpy as np
import pytest

from conftest import chromium as _chromium
from vireid.data.protocols import query_gallery
from vireid.evaluation.evaluator import evaluate_protocol
from vireid.report import write_report

pytestmark = pytest.mark.slow


def test_report_loads_counts_and_sorts(sysu_root, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(100, 8))

    def featurize(samples):
        x = centers[[s.pid for s in samples]] + 1.2 * rng.normal(size=(len(samples), 8))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    result = evaluate_protocol("sysu/all/single", sysu_root, [0], featurize)
    page_path = write_report(tmp_path / "rep", result, max_queries=50)
    q, g = query_gallery("sysu/all/single", sysu_root, 0)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(page_path.as_uri())
        assert page.inner_text("#nq") == str(len(q))
        assert page.inner_text("#ng") == str(len(g))
        rows = page.locator(".q")
        shown = min(50, len(q))
        assert rows.count() == shown
        # every thumbnail decoded (the data URIs are valid images)
        widths = page.eval_on_selector_all("img[data-t]", "els => els.map(e => e.naturalWidth)")
        assert min(widths) > 0
        aps = lambda: [
            float(x)
            for x in page.eval_on_selector_all(
                ".q", "els => els.filter(e => e.style.display !== 'none').map(e => e.dataset.ap)"
            )
        ]
        first = aps()
        assert first == sorted(first)  # worst first
        page.select_option("#sort", "desc")
        assert aps() == sorted(first, reverse=True)
        cam = page.eval_on_selector("#cam option:nth-child(2)", "o => o.value")
        page.select_option("#cam", cam)
        cams = page.eval_on_selector_all(
            ".q", "els => els.filter(e => e.style.display !== 'none').map(e => e.dataset.cam)"
        )
        assert cams and set(cams) == {cam}
        page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        browser.close()


def test_search_page_renders_every_thumbnail(sysu_root, tmp_path):
    """The search page (`vireid search --report`) in a browser: one row per query, each
    with its matches, every embedded thumbnail decodes."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from vireid.data.records import Modality
    from vireid.report.search_html import write_search_report
    from vireid.search import GalleryIndex, collect_images

    gallery = collect_images([sysu_root / "cam1", sysu_root / "cam2"], "visible")
    queries = collect_images([sysu_root / "cam3"], "infrared")[:5]
    rng = np.random.default_rng(0)
    g = rng.normal(size=(len(gallery), 8)).astype(np.float32)
    index = GalleryIndex(g / np.linalg.norm(g, axis=1, keepdims=True), gallery)
    found = index.search(rng.normal(size=(5, 8)).astype(np.float32), Modality.INFRARED, 4)
    page_path = write_search_report(
        tmp_path / "s",
        queries,
        found,
        gallery="g.npz",
        gallery_size=len(gallery),
        model="m",
        mode="cross-modality",
    )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(page_path.as_uri())
        assert page.locator(".row").count() == 5
        assert page.locator(".row figure").count() == 5 * 5
        widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        assert len(widths) == 25 and min(widths) > 0
        browser.close()
