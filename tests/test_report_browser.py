"""The HTML report in headless Chromium at laptop size (1366 x 768): the headline is above the fold.

Renders ``casebench evaluate --report`` for the bundled text-following example model on casebench-mini, opens
``index.html`` from disk in Chromium (the Debian package, driven by Playwright), checks that the four headline
cards, their CIs and constants, and the interval warning are visible without scrolling, that the metric
table carries arrows and constant marks, and that the confusion matrices are one side-by-side figure. The
screenshot is kept next to the report (``report.png``) for a human to look at.
"""

from __future__ import annotations

import shutil

import pytest

from casebench import testing
from casebench.benchmarks import get_benchmark
from casebench.cli import main

pytestmark = pytest.mark.slow

MINI = get_benchmark("casebench-mini")
EXAMPLES = MINI.gold_path.parent / "examples"
CHROMIUM = shutil.which("chromium") or testing.CHROMIUM
ARGS = testing.CHROMIUM_ARGS


def test_report_headline_above_the_fold(tmp_path):
    from playwright.sync_api import sync_playwright

    rep = tmp_path / "rep"
    assert main(["evaluate", str(EXAMPLES / "text-model.jsonl"), "-b", "casebench-mini", "--bootstrap", "100",
                 "--model-name", "text-model", "--trained-on", "mini-acted", "--report", str(rep)]) == 0
    names = {p.name for p in rep.iterdir()}
    assert "confusion.png" in names and not any(n.startswith("confusion_") for n in names)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto((rep / "index.html").as_uri())
        page.screenshot(path=str(rep / "report.png"))
        cards = page.locator("#headline .card")
        assert cards.count() == 4
        titles = [t.strip() for t in cards.locator("h3").all_inner_texts()]
        assert titles == ["Conflict accuracy ↑", "Congruent accuracy ↑", "Text-following rate ↓", "Conflict gap ↓"]
        for i in range(4):
            box = cards.nth(i).bounding_box()
            assert box and box["y"] + box["height"] <= 768 and box["x"] + box["width"] <= 1366, (titles[i], box)
            text = cards.nth(i).inner_text()
            assert "95% CI [" in text and "constant: 0." in text and "speakers" in text, text
        # the text-only model follows the words: its text-following rate is far above the constant's
        tfr = cards.nth(2).inner_text()
        assert "below constant" in tfr
        warning = page.locator("#warnings")
        assert "oracle" in warning.inner_text()
        assert warning.bounding_box()["y"] < 768
        header = page.locator("#metrics thead").inner_text()
        assert "conflict" in header and "congruent" in header and "not zero-shot" in header
        body = page.locator("#metrics tbody").inner_text()
        assert "accuracy ↑" in body and "kl ↓" in body and "beats" in body
        # every caption once
        captions = page.locator("figcaption").all_inner_texts()
        assert len(captions) == len(set(captions)) and any("row-normalised" in c for c in captions)
        browser.close()
    assert (rep / "report.png").stat().st_size > 20_000
