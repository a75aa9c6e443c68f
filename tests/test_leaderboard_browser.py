"""Browser tests of the leaderboard in headless Chromium (the Debian package, driven by Playwright).

A real uvicorn server on a free port of 127.0.0.1 (scoring in a worker thread, 50 resamples). The main flow
runs with JavaScript *disabled*: sign in, submit through the form, watch the row appear on the board (the
page refreshes itself while a submission of yours is being scored) with its CIs, sort by clicking column
headers, and check that a test-phase score stays hidden on every page. One check runs with JavaScript on
(the filter select applies itself).
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from casebench import testing
from casebench.benchmarks import get_benchmark
from casebench.leaderboard.config import BoardConfig, LeaderboardConfig

pytestmark = pytest.mark.slow

MINI = get_benchmark("casebench-mini")
EXAMPLES = MINI.gold_path.parent / "examples"
CHROMIUM = shutil.which("chromium") or testing.CHROMIUM
ARGS = testing.CHROMIUM_ARGS
CI = re.compile(r"\d\.\d{3}\s+-?\d\.\d{3}–-?\d\.\d{3}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from casebench.leaderboard.app import make_app

    tmp = tmp_path_factory.mktemp("lb-browser")
    cfg = LeaderboardConfig(boards=[BoardConfig("casebench-mini", quota_per_day=0),
                                    BoardConfig("casebench-mini", phase="test", quota_per_day=0)],
                            data_dir=tmp / "data", n_boot=50, workers=0, secret_key="browser-test")
    app = make_app(cfg, in_thread=True)
    lb = app.state.lb
    lb.create_user("ada", "ada-password")
    lb.create_user("boss", "boss-password", admin=True)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield f"http://127.0.0.1:{port}", lb
    srv.should_exit = True
    t.join(15)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM} (scripts/install.sh installs the Debian package)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def sign_in(page, base, user):
    page.goto(f"{base}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", f"{user}-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def submit_form(page, base, board, path, model, revision="v1"):
    page.goto(f"{base}/submit")
    page.select_option("select[name=board]", board)
    page.set_input_files("input[name=file]", str(path))
    page.fill("input[name=model_name]", model)
    page.fill("input[name=model_revision]", revision)
    page.fill("input[name=trained_on]", "IEMOCAP")
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(r".*/submissions/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def test_sign_in_submit_watch_sort_and_hidden(server, browser):
    base, lb = server
    ctx = browser.new_context(java_script_enabled=False)
    page = ctx.new_page()
    page.set_default_timeout(60_000)

    # wrong password: stays on the sign-in page with a message
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "nope-nope")
    page.click("button[type=submit]")
    assert "Wrong username or password" in page.content()
    sign_in(page, base, "ada")
    assert "Account (ada)" in page.content()

    # an invalid file through the form: line-numbered errors, nothing queued
    bad = Path(lb.config.data_dir) / "bad.jsonl"
    bad.write_text('{"id": "mini-0000", "label": "angy"}\n')
    page.goto(f"{base}/submit")
    page.set_input_files("input[name=file]", str(bad))
    page.fill("input[name=model_name]", "broken")
    page.click("form.stack button[type=submit]")
    errors = page.inner_text("#errors")
    assert "bad.jsonl:1: id 'mini-0000': field 'label': unknown label 'angy'" in errors
    assert "no quota was used" in errors

    # submit through the form, then watch the row appear on the board (the page refreshes itself)
    sid = submit_form(page, base, "casebench-mini/dev", EXAMPLES / "text-model.jsonl", "text-net")
    page.goto(f"{base}/b/casebench-mini/dev")
    page.wait_for_selector(f"tr.entry[data-id='{sid}']", timeout=60_000)
    row = page.inner_text(f"tr.entry[data-id='{sid}']")
    assert "text-net" in row and CI.search(row)
    assert page.locator("tr.baseline").count() == 1  # the constant baseline as a reference row

    sid2 = submit_form(page, base, "casebench-mini/dev", EXAMPLES / "voice-model.jsonl", "voice-net")
    page.wait_for_selector("#status:text('done')", timeout=60_000)  # the submission page refreshes itself
    page.goto(f"{base}/b/casebench-mini/dev")
    assert page.locator(f"tr.entry[data-id='{sid2}']").count() == 1

    def models():
        return [t.split("\n")[0].split("@")[0].strip() for t in page.locator("tr.entry td.model").all_inner_texts()]

    def values(key):
        col = [c.get_attribute("data-key") for c in page.locator("th.metric").all()].index(key)
        out = []
        for r in page.locator("tr.entry").all():
            v = r.locator("td.num[data-value]").nth(col).get_attribute("data-value")
            out.append(float(v))
        return out

    # default: conflict macro-F1, best first; click the header to reverse, then sort by another column
    assert models() == ["voice-net", "text-net"]
    page.click("th.metric[data-key='conflict.macro_f1'] a")
    assert "order=asc" in page.url and models() == ["text-net", "voice-net"]
    v = values("conflict.macro_f1")
    assert v == sorted(v)
    page.click("th.metric[data-key='conflict.text_following_rate'] a")  # lower is better: lowest first
    v = values("conflict.text_following_rate")
    assert v == sorted(v) and models() == ["voice-net", "text-net"]
    page.click("th.metric[data-key='conflict.text_following_rate'] a")
    assert values("conflict.text_following_rate") == sorted(v, reverse=True)
    # filter without JavaScript: the form's button
    page.fill("input[name=q]", "voice")
    page.click("form.filters button[type=submit]")
    assert models() == ["voice-net"]

    # a test-phase submission: scored, but its scores stay hidden everywhere
    sid3 = submit_form(page, base, "casebench-mini/test", EXAMPLES / "voice-model.jsonl", "secret-net")
    page.wait_for_selector("#status:text('done')", timeout=60_000)
    assert "hidden until the organiser reveals" in page.inner_text("#hidden-note")
    assert not CI.search(page.inner_text("main"))
    page.goto(f"{base}/b/casebench-mini/test")
    assert page.locator("#hidden-note").count() == 1 and "secret-net" not in page.content()
    assert page.locator("tr.entry").count() == 0
    resp = page.goto(f"{base}/api/submissions/{sid3}/results.json")
    assert resp.status == 404

    # the organiser reveals: now the row shows, with CIs
    ctx.clear_cookies()
    sign_in(page, base, "boss")
    page.goto(f"{base}/b/casebench-mini/test")
    page.click("#reveal")
    page.wait_for_selector(f"tr.entry[data-id='{sid3}']")
    assert CI.search(page.inner_text(f"tr.entry[data-id='{sid3}']"))
    ctx.close()


def test_api_docs_render_under_the_content_policy(server, browser):
    base, _ = server
    ctx = browser.new_context()
    page = ctx.new_page()
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/api/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)  # rendered by the local Swagger UI
    assert "casebench leaderboard" in page.inner_text(".swagger-ui .info .title")
    assert page.locator(".opblock-summary-path", has_text="/api/submissions").count() >= 1
    assert not blocked, blocked
    ctx.close()


def test_javascript_enhancement_applies_filters(server, browser):
    base, _ = server
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{base}/b/casebench-mini/dev")
    page.select_option("select[name=zero_shot]", "0")  # IEMOCAP is not a corpus of casebench-mini: all zero-shot
    page.wait_for_url(re.compile(r".*zero_shot=0.*"))
    assert page.locator("tr.entry").count() == 0 and "matches the filters" in page.content()
    ctx.close()


def test_board_fits_a_laptop_screen(server, browser, tmp_path):
    """The board at 1366 x 768 (a common laptop screen): every split's columns on screen without scrolling
    sideways; dates, the overall column and the corpus behind "not zero-shot" shown. The screenshot is kept
    in the test's folder (and in CASEBENCH_SCREENSHOTS, when set, for a person to look at)."""
    import os

    base, lb = server
    user = lb.user_by_name("ada")
    tmp = Path(lb.config.data_dir) / "tmp"
    for model, path, trained in (("wav2vec-er", "voice-model.jsonl", "IEMOCAP"),
                                 ("text-only-baseline-with-a-long-name", "text-model.jsonl", "mini-acted,IEMOCAP"),
                                 ("hubert-ft", "voice-model.jsonl", "")):
        f = tmp / f"{model}.jsonl"
        f.write_bytes((EXAMPLES / path).read_bytes())
        lb.accept(user, "casebench-mini/dev", f, path, {"model_name": model, "model_revision": "v2",
                                                         "trained_on": trained, "parameters": "94000000"})
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    deadline = time.monotonic() + 120
    while True:
        page.goto(f"{base}/b/casebench-mini/dev")
        if page.locator("tr.entry td.model", has_text="hubert-ft").count() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    shot = tmp_path / "board-1366x768.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("CASEBENCH_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    right = page.evaluate("Math.max(...[...document.querySelectorAll('#board th.split, #board th.metric')]"
                          ".map(e => e.getBoundingClientRect().right))")
    assert right <= 1366
    splits = page.locator("#board th.split").all_inner_texts()
    assert splits == ["all", "conflict", "congruent", "mini-acted"]
    text = page.inner_text("#board")
    assert "trained on mini-acted" in text and re.search(r"20\d\d-\d\d-\d\d", text) and "overall" in text
    assert "speaker clusters" in page.inner_text("#warnings")  # the scorer's interval warnings
    ctx.close()
