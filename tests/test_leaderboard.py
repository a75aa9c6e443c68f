"""The leaderboard: ranking and board (pure), config, security helpers, the service, the web app and API
(through Starlette's TestClient, scoring in a worker thread), security (hidden labels, XSS, uploads, tokens,
cross-user access, CSRF, rate limits), quotas, idempotency, reveal, export and the queue's exactly-once
claims. Browser and load tests are in test_leaderboard_browser.py and test_leaderboard_load.py (slow)."""

from __future__ import annotations

import gzip
import re
import threading
import time
from pathlib import Path

import orjson
import pytest

from casebench.benchmarks import get_benchmark
from casebench.errors import ConfigError, InputError, Problem
from casebench.leaderboard import ranking
from casebench.leaderboard.board import build_board, columns
from casebench.leaderboard.config import BoardConfig, LeaderboardConfig, RateLimit, parse_board_arg
from casebench.leaderboard.db import Submission, select
from casebench.leaderboard.security import RateLimiter, Sessions, hash_password, verify_password
from casebench.leaderboard.service import Leaderboard, ServiceError, check_file_name, sanitize_problems

MINI = get_benchmark("casebench-mini")
EXAMPLES = MINI.gold_path.parent / "examples"
VOICE, TEXT = EXAMPLES / "voice-model.jsonl", EXAMPLES / "text-model.jsonl"
GOLD_LINES = MINI.gold_path.read_text().splitlines()[1:]


# -- helpers -------------------------------------------------------------------------------------------


def phase_file(path, phase, folder) -> Path:
    """The lines of a whole-benchmark predictions file that belong to one phase (dev/test)."""
    from casebench.leaderboard.phases import filter_lines

    ids = [line.split(",")[0] for line in GOLD_LINES if line.rstrip().endswith("," + phase)]
    out = Path(folder) / f"{Path(path).stem}-{phase}.jsonl"
    filter_lines(path, out, ids)
    return out


def make_config(tmp_path, boards=None, **kw) -> LeaderboardConfig:
    kw.setdefault("n_boot", 50)
    kw.setdefault("workers", 0)
    kw.setdefault("rate_limit", RateLimit(burst=1000, per_minute=60_000))
    return LeaderboardConfig(boards=boards or [BoardConfig("casebench-mini")], data_dir=tmp_path / "lb",
                             secret_key="test-secret", **kw)


class Site:
    """A TestClient over the app with a scoring thread, plus users and tokens."""

    def __init__(self, tmp_path, boards=None, **kw):
        from fastapi.testclient import TestClient

        from casebench.leaderboard.app import make_app

        self.cfg = make_config(tmp_path, boards, **kw)
        self.app = make_app(self.cfg, in_thread=True)
        self.lb: Leaderboard = self.app.state.lb
        self.client = TestClient(self.app)
        self.client.__enter__()
        self.users, self.tokens = {}, {}
        for name, admin in (("ada", False), ("bob", False), ("boss", True)):
            self.users[name] = self.lb.create_user(name, f"{name}-password", admin=admin)
            self.tokens[name] = self.lb.create_token(self.users[name].id)
        self.seen: list[str] = []  # every response body, for the hidden-label checks

    def close(self):
        self.client.__exit__(None, None, None)

    def req(self, method, url, **kw):
        r = self.client.request(method, url, **kw)
        self.seen.append(r.text)
        return r

    def api_submit(self, user="ada", path=VOICE, name=None, benchmark="casebench-mini", phase="dev",
                   content=None, headers=None, **meta):
        meta.setdefault("model_name", "voice")
        data = {"benchmark": benchmark, "phase": phase, **meta}
        body = content if content is not None else Path(path).read_bytes()
        h = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        h.update(headers or {})
        return self.req("POST", "/api/submissions", headers=h, data=data,
                        files={"file": (name or Path(path).name, body)})

    def wait(self, sub_id, user="ada", timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.req("GET", f"/api/submissions/{sub_id}", headers={"Authorization": f"Bearer {self.tokens[user]}"})
            if r.json()["status"] in ("done", "failed"):
                return r.json()
            time.sleep(0.1)
        raise AssertionError(f"submission {sub_id} not scored in {timeout} s")

    def login(self, user):
        self.client.cookies.clear()
        page = self.req("GET", "/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = self.req("POST", "/login", data={"username": user, "password": f"{user}-password", "csrf": csrf,
                                              "next": "/"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return self.csrf()

    def csrf(self):
        return re.search(r'name="csrf" value="([^"]+)"', self.req("GET", "/").text).group(1)


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path, boards=[BoardConfig("casebench-mini", quota_per_day=0),
                               BoardConfig("casebench-mini", phase="test", quota_per_day=0)])
    yield s
    s.close()


# -- pure parts ------------------------------------------------------------------------------------------


def test_rank_ties_chain_and_follow_paired_tests():
    es = [ranking.Entry(k, v, v - .05, v + .05) for k, v in (("a", .9), ("b", .88), ("c", .86), ("d", .5))]
    r = ranking.rank(es, True)
    assert [(x.entry.key, x.rank, x.tied) for x in r] == [("a", 1, False), ("b", 1, True), ("c", 1, True),
                                                          ("d", 4, False)]
    pv = {("a", "b"): 0.001, ("b", "c"): 0.5}
    r = ranking.rank(es, True, p_value=lambda a, b: pv.get((a, b)))
    assert [x.rank for x in r] == [1, 2, 2, 4]
    assert [x.basis for x in r] == [None, "paired", "paired", "ci"]
    # lower is better: order flips; undefined values are last and unranked
    es2 = [ranking.Entry("x", .3, .2, .4), ranking.Entry("y", .1, .05, .15), ranking.Entry("z", None)]
    assert [(x.entry.key, x.rank) for x in ranking.rank(es2, False)] == [("y", 1), ("x", 2), ("z", None)]
    assert ranking.neighbour_pairs(ranking.rank(es, True)) == [("a", "b"), ("b", "c"), ("c", "d")]


def test_board_columns_sort_filter_and_baselines():
    cols = columns(MINI)
    keys = [c["key"] for c in cols]
    assert keys[:3] == ["all.macro_f1", "all.js", "all.ccc"]
    assert "conflict.text_following_rate" in keys and "mini-acted.macro_f1" in keys

    def res(v):
        e = {"value": v, "ci_low": v - .01, "ci_high": v + .01, "n": 10}
        return {"splits": {"conflict": {"macro_f1": e, "text_following_rate": {**e, "value": 1 - v}}},
                "baselines": {"majority_class": {"conflict": {"macro_f1": {**e, "value": .1}}}}}

    rows = [{"id": i, "model": m, "zero_shot": z, "results": res(v)}
            for i, (m, z, v) in enumerate([("alpha", True, .5), ("beta", False, .7), ("gamma", True, .6)])]
    b = build_board(MINI, rows)
    assert b["sort"] == "conflict.macro_f1" and [r["model"] for r in b["rows"]] == ["beta", "gamma", "alpha"]
    assert [r["rank"] for r in b["rows"]] == [1, 2, 3]
    assert b["baselines"][0]["name"] == "majority_class"
    asc = build_board(MINI, rows, sort="conflict.macro_f1", order="asc")
    assert [r["model"] for r in asc["rows"]] == ["alpha", "gamma", "beta"]
    # lower-is-better column: best (lowest) first by default
    tfr = build_board(MINI, rows, sort="conflict.text_following_rate")
    assert [r["model"] for r in tfr["rows"]] == ["beta", "gamma", "alpha"]
    assert [r["model"] for r in build_board(MINI, rows, sort="model")["rows"]] == ["alpha", "beta", "gamma"]
    assert [r["model"] for r in build_board(MINI, rows, zero_shot="1")["rows"]] == ["gamma", "alpha"]
    assert [r["model"] for r in build_board(MINI, rows, q="ET")["rows"]] == ["beta"]
    custom = build_board(MINI, rows, metrics=["accuracy"])
    assert {c["metric"] for c in custom["columns"]} == {"accuracy"}
    assert build_board(MINI, rows, sort="nonsense")["sort"] == "conflict.macro_f1"
    # the scorer's warnings (e.g. few speaker clusters) are gathered once for the board
    rows[0]["results"]["warnings"] = ["conflict: the interval rests on 6 speaker clusters (fewer than 10)"]
    rows[1]["results"]["warnings"] = list(rows[0]["results"]["warnings"])
    assert build_board(MINI, rows)["warnings"] == rows[0]["results"]["warnings"]


def test_config_checks_and_board_args():
    with pytest.raises(ConfigError, match="phase"):
        BoardConfig("casebench-mini", phase="final")
    with pytest.raises(ConfigError, match="applies only to a test phase"):
        BoardConfig("casebench-mini", visibility="hidden")
    with pytest.raises(ConfigError, match="did you mean 'quota_total'"):
        LeaderboardConfig.from_dict({"board": [{"benchmark": "casebench-mini", "quota_totl": 3}]})
    with pytest.raises(ConfigError, match="listed twice"):
        LeaderboardConfig(boards=[BoardConfig("casebench-mini"), BoardConfig("casebench-mini")])
    assert parse_board_arg("casebench-mini").key == "casebench-mini/dev"
    assert parse_board_arg("casebench-mini:test", visibility="submitter").visibility == "submitter"


def test_example_config_loads():
    cfg = LeaderboardConfig.load(Path(__file__).parents[1] / "leaderboard" / "example.toml")
    assert [b.key for b in cfg.boards] == ["casebench-mini/dev", "casebench-mini/test"]
    assert cfg.data_dir.is_absolute() and cfg.rate_limit.burst >= 1


def test_passwords_sessions_and_rate_limiter():
    h = hash_password("pw-123456")
    assert h.startswith("scrypt$") and "pw-123456" not in h
    assert verify_password("pw-123456", h) and not verify_password("pw-1234567", h)
    assert not verify_password("x", "garbage")
    s = Sessions("k", 60)
    sess = s.new(3)
    assert s.loads(s.dumps(sess)) == sess
    assert s.loads(s.dumps(sess)[:-2] + "xx") is None and s.loads(None) is None
    assert s.check_csrf(sess, s.csrf_token(sess)) and not s.check_csrf(sess, "0" * 64)
    assert not s.check_csrf(s.new(3), s.csrf_token(sess))
    rl = RateLimiter(burst=3, per_minute=6)
    assert [rl.allow("t", now=0)[0] for _ in range(4)] == [True, True, True, False]
    ok, wait = rl.allow("t", now=0)
    assert not ok and 9 < wait <= 10
    assert rl.allow("t", now=10.01)[0] and rl.allow("other", now=0)[0]


def test_file_names_and_sanitised_problems():
    assert check_file_name("preds.jsonl.gz") == "preds.jsonl.gz"
    assert check_file_name(None) == "predictions.jsonl"
    for bad in ("../etc/passwd", "a/b.jsonl", "C:\\x.jsonl", "..", "x\x00.jsonl", "c:x", "\nname"):
        with pytest.raises(ServiceError) as e:
            check_file_name(bad)
        assert e.value.status == 400 and e.value.code == "bad_file_name"
    err = InputError([Problem("unknown id", expected="the id of a benchmark item", file="/srv/tmp/abc", line=2,
                              id="mini-00001", field="id", hint="did you mean 'mini-0001'?"),
                      Problem("none of the 3 ids matches a gold id (the file has e.g. 'x'; the gold set has e.g. "
                              "'mini-0000')", expected="ids of the benchmark's items (/srv/gold.csv)",
                              hint="wrong benchmark or id scheme?")],
                     summary="2 problems in predictions file /srv/tmp/abc")
    out, total = sanitize_problems(err, "p.jsonl", ["/srv/tmp/abc", "/srv/gold.csv"])
    text = orjson.dumps(out).decode()
    assert total == 2 and "mini-0001'" not in text and "did you mean" not in text
    assert "'mini-0000'" not in text and "/srv" not in text
    assert out[0]["message"] == "p.jsonl:2: id 'mini-00001': field 'id': id 'mini-00001' is not in the benchmark; " \
                                "expected the id of a benchmark item"


# -- the app: submit, score, see -------------------------------------------------------------------------


def test_submit_score_and_board(site):
    r = site.api_submit(model_name="voice-net", model_revision="v1", parameters="94_000_000",
                        trained_on="IEMOCAP", model_url="https://example.org/m")
    assert r.status_code == 202, r.text
    sid = r.json()["id"]
    done = site.wait(sid)
    assert done["status"] == "done" and done["scores_visible"]
    assert set(done["splits"]) == {"all", "conflict", "congruent", "mini-acted"}
    assert done["model"]["parameters"] == 94_000_000 and done["model"]["zero_shot"] is True
    # the result is the CLI's on the dev items: same scorer, same numbers
    from casebench.evaluate import evaluate

    dev = site.lb.board_items(site.lb.board("casebench-mini/dev")).benchmark_of("phase")
    assert len(dev.load_gold()) == 240 and set(dev.load_gold().columns["split"]) == {"dev"}
    ref = evaluate(phase_file(VOICE, "dev", site.cfg.data_dir), dev, n_boot=50, seed=0)
    assert done["splits"]["conflict"]["macro_f1"] == ref["splits"]["conflict"]["macro_f1"]
    res = site.req("GET", f"/api/submissions/{sid}/results.json").json()
    assert res["baselines"] == ref["baselines"] and "confusion" in res  # dev phase: full detail
    site.wait(site.api_submit(path=TEXT, model_name="text-net", trained_on="mini-acted").json()["id"])
    board = site.req("GET", "/api/boards/casebench-mini/dev").json()
    assert [r["model"] for r in board["rows"]] == ["voice-net", "text-net"]
    assert board["rows"][1]["zero_shot"] is False
    assert board["rows"][0]["cells"]["conflict.macro_f1"]["ci_low"] is not None
    assert [b["name"] for b in board["baselines"]] == ["test prior (oracle)"]
    html = site.req("GET", "/b/casebench-mini/dev?sort=conflict.macro_f1&order=asc").text
    assert html.index("text-net") < html.index("voice-net")
    # submission dates, the overall column, and the corpus that makes a row "not zero-shot"
    assert board["rows"][0]["overall"] + board["rows"][1]["overall"] == pytest.approx(1.0)
    assert re.search(r'<span class="date" title="[^"]+">20\d\d-\d\d-\d\d</span>', html)
    assert "trained on mini-acted" in html and board["rows"][1]["overlap"] == ["mini-acted"]
    by_overall = site.req("GET", "/api/boards/casebench-mini/dev?sort=overall").json()["rows"]
    assert [r["overall"] for r in by_overall] == sorted((r["overall"] for r in by_overall), reverse=True)
    # the scorer's interval warnings reach the board (mini-acted has 5 speakers in the dev phase)
    assert any("mini-acted" in w and "speaker clusters" in w for w in board["warnings"])
    assert 'id="warnings"' in html and "speaker clusters" in html
    # the index shows this server's own address in the submit command
    assert "--server http://testserver --phase dev" in site.req("GET", "/").text
    assert re.search(r'class="ci">0\.\d{3}–0\.\d{3}<', html)


def test_rank_ties_use_paired_comparisons(site):
    a = site.api_submit(model_name="m1").json()["id"]
    b = site.api_submit(model_name="m2", model_revision="copy").json()["id"]  # same predictions: a tie
    site.wait(a), site.wait(b)
    site.req("GET", "/b/casebench-mini/dev")  # queues the neighbour comparison
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = site.req("GET", "/api/boards/casebench-mini/dev").json()["rows"]
        if rows[1]["tie_basis"] in ("paired", "equal"):
            break
        time.sleep(0.2)
    assert [r["rank"] for r in rows] == [1, 1]


def test_latest_submission_per_model_revision(site):
    site.wait(site.api_submit(path=TEXT, model_name="m", model_revision="r1").json()["id"])
    site.wait(site.api_submit(path=VOICE, model_name="m", model_revision="r1").json()["id"])
    site.wait(site.api_submit(path=TEXT, model_name="m", model_revision="r2").json()["id"])
    rows = site.req("GET", "/api/boards/casebench-mini/dev").json()["rows"]
    assert sorted((r["revision"], r["id"]) for r in rows) == [("r1", 2), ("r2", 3)]


# -- hidden labels -------------------------------------------------------------------------------------


def _assert_no_gold(texts, extra=()):
    blob = "\n".join(texts)
    assert str(MINI.gold_path) not in blob and str(MINI.gold_path.parent) not in blob
    for line in GOLD_LINES[:50]:
        assert line not in blob
    for s in extra:
        assert s not in blob, s


def test_test_phase_scores_hidden_until_reveal(site, tmp_path):
    sid = site.api_submit(phase="test", model_name="secret-model").json()["id"]
    st = site.wait(sid)
    assert st["status"] == "done" and not st["scores_visible"] and "splits" not in st and st["hidden"]
    full = orjson.loads(site.lb.submission(sid).results)
    secret_values = {f"{e['value']:.3f}" for m in full["splits"].values() for e in m.values()
                     if e["value"] is not None and 0.1 < e["value"] < 0.99}
    anon = site.req("GET", "/b/casebench-mini/test")
    assert "hidden-note" in anon.text and "secret-model" not in anon.text
    assert site.req("GET", "/api/boards/casebench-mini/test").json()["rows"] == []
    assert site.req("GET", f"/api/submissions/{sid}/results.json").status_code == 404
    bob = {"Authorization": f"Bearer {site.tokens['bob']}"}
    assert site.req("GET", f"/api/submissions/{sid}/results.json", headers=bob).status_code == 404
    assert site.req("GET", f"/api/submissions/{sid}", headers=bob).status_code == 404
    ada = {"Authorization": f"Bearer {site.tokens['ada']}"}
    assert site.req("GET", f"/api/submissions/{sid}/results.json", headers=ada).status_code == 404  # hidden
    site.login("ada")
    page = site.req("GET", f"/submissions/{sid}").text
    assert "hidden until the organiser reveals" in page
    for path in ("/", "/b/casebench-mini/test", "/submissions", "/submit", "/account"):
        site.req("GET", path)
    # invalid uploads to the test board: sanitised errors
    bad = b'{"id": "mini-00001", "label": "sad"}\n{"id": "MINI-0002", "label": "sad"}\n'
    r = site.api_submit(phase="test", content=bad, name="bad.jsonl")
    assert r.status_code == 422 and "is not in the benchmark" in r.text and "did you mean" not in r.text
    r = site.api_submit(phase="test", content=b'{"id": "zzz", "label": "sad"}\n', name="bad.jsonl")
    assert r.status_code == 422 and "mini-0000" not in r.text.split("have no line")[0]
    from casebench.leaderboard.export import export_site

    export_site(site.lb, tmp_path / "site")
    exported = [p.read_text() for p in (tmp_path / "site").rglob("*") if p.is_file() and p.suffix in (".html", ".json")]
    assert not list((tmp_path / "site" / "results").iterdir())
    all_text = site.seen + exported
    _assert_no_gold(all_text)
    blob = "\n".join(t for t in all_text)
    leaked = [v for v in secret_values if f">{v}<" in blob or f'"value": {v}' in blob]
    assert not leaked
    # reveal: public, but redacted (no confusion, per-class or conflict breakdown)
    site.login("boss")
    csrf = site.csrf()
    assert site.req("POST", "/admin/reveal/casebench-mini/test", data={"csrf": csrf},
                    follow_redirects=False).status_code == 303
    site.client.cookies.clear()
    res = site.req("GET", f"/api/submissions/{sid}/results.json").json()
    assert res["splits"]["all"] and not {"confusion", "per_class", "conflict_breakdown"} & set(res)
    assert "secret-model" in site.req("GET", "/b/casebench-mini/test").text
    export_site(site.lb, tmp_path / "site")
    out = orjson.loads((tmp_path / "site" / "results" / f"{sid}.json").read_bytes())
    assert "confusion" not in out and out["predictions"]["file"] == "voice-model.jsonl"
    _assert_no_gold([p.read_text() for p in (tmp_path / "site").rglob("*.json")])


def test_submitter_visibility(tmp_path):
    s = Site(tmp_path, boards=[BoardConfig("casebench-mini", phase="test", visibility="submitter")])
    try:
        sid = s.api_submit(phase="test").json()["id"]
        st = s.wait(sid)
        # before the reveal the submitter gets the Ladder's feedback on the public part, not the results
        assert not st["scores_visible"] and "splits" not in st
        fb = st["feedback"]
        assert fb["kind"] == "ladder" and fb["metric"] == "accuracy" and fb["part"] == "public" and fb["moved"]
        # the step is what the public part's 95% interval supports; the public part is drawn with a random key per
        # board, so its size (and the step: 0.01 or 0.1 on casebench-mini) varies from one site to the next
        assert fb["step"] in (0.01, 0.1) and 0 < fb["shown"] < 1
        assert round(fb["shown"], 2 if fb["step"] == 0.01 else 1) == fb["shown"]
        s.login("ada")
        page = s.req("GET", f"/submissions/{sid}").text
        assert 'id="feedback"' in page and "public part" in page and f"{fb['shown']}" in page
        assert s.req("GET", f"/api/submissions/{sid}/results.json",
                     headers={"Authorization": f"Bearer {s.tokens['ada']}"}).status_code == 404
        assert "feedback" not in s.req("GET", f"/api/submissions/{sid}",
                                       headers={"Authorization": f"Bearer {s.tokens['boss']}"}).json()
        assert s.req("GET", f"/api/submissions/{sid}/results.json",
                     headers={"Authorization": f"Bearer {s.tokens['bob']}"}).status_code == 404
        assert s.req("GET", "/api/boards/casebench-mini/test").json()["rows"] == []
    finally:
        s.close()


# -- security ---------------------------------------------------------------------------------------------


def test_stored_xss_is_escaped(site):
    evil = "<script>alert('x')</script>"
    sid = site.api_submit(model_name=evil, model_revision='"><img src=x onerror=alert(1)>',
                          description="<b onmouseover=alert(2)>hi</b>").json()["id"]
    site.wait(sid)
    site.login("ada")
    for path in ("/b/casebench-mini/dev", f"/submissions/{sid}", "/submissions"):
        html = site.req("GET", path).text
        assert "<script>alert" not in html and "<img src=x" not in html and "<b onmouseover" not in html
        assert "&lt;script&gt;" in html
    r = site.req("GET", "/b/casebench-mini/dev")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    bad_url = site.api_submit(model_name="m", model_url="javascript:alert(1)")
    assert bad_url.status_code == 422 and bad_url.json()["problems"][0]["field"] == "model_url"


def test_uploads_refused_with_clear_4xx(tmp_path):
    s = Site(tmp_path, max_upload_mb=0.05, max_uncompressed_mb=1)
    try:
        big = VOICE.read_bytes() * 2  # ~200 KB > 50 KB
        r = s.api_submit(content=big)
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        r = s.api_submit(content=b"x" * 2_000_000)  # past the form overhead: refused by Content-Length
        assert r.status_code == 413
        bomb = gzip.compress(b" \n" * 2_500_000)
        r = s.api_submit(content=bomb, name="p.jsonl.gz")
        assert r.status_code == 413 and "uncompressed" in r.json()["detail"]
        for name in ("../../etc/passwd", "dir/p.jsonl", "..\\p.jsonl"):
            r = s.api_submit(content=VOICE.read_bytes()[:100], name=name)
            assert r.status_code == 400 and r.json()["error"] == "bad_file_name", name
        r = s.api_submit(content=b"PK\x03\x04rest-of-a-zip")
        assert r.status_code == 422 and "zip archive" in r.text
        r = s.api_submit(content=b"\x00\xff\xfe garbage\n{not json}\n")
        assert r.status_code == 422 and {p.get("line") for p in r.json()["problems"]} >= {1, 2}
        r = s.api_submit(content=b"", name="empty.jsonl")
        assert r.status_code == 422 and "empty file" in r.text
        r = s.api_submit(model_name="", content=b'{"id": "x"}\n')
        assert r.status_code == 422 and r.json()["error"] == "invalid_metadata"
        r = s.req("POST", "/api/submissions", headers={"Authorization": f"Bearer {s.tokens['ada']}"},
                  data={"benchmark": "casebench-mini", "model_name": "m"})
        assert r.status_code == 400 and r.json()["error"] == "no_file"
        r = s.api_submit(benchmark="nope")
        assert r.status_code == 404 and r.json()["error"] == "unknown_board"
        with s.lb.db.read() as sess:
            assert sess.scalar(select(Submission.id)) is None  # nothing was queued
        assert not list((s.cfg.data_dir / "tmp").iterdir())  # and no temporary file is left
    finally:
        s.close()


def test_tokens_and_cross_user_access(site):
    r = site.api_submit(user=None)
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated" and "Bearer" in r.headers["www-authenticate"]
    r = site.api_submit(user=None, headers={"Authorization": "Bearer cbt_wrong"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    sid = site.api_submit().json()["id"]
    bob = {"Authorization": f"Bearer {site.tokens['bob']}"}
    assert site.req("GET", f"/api/submissions/{sid}", headers=bob).status_code == 404
    assert site.req("GET", "/api/submissions", headers=bob).json() == []
    boss = {"Authorization": f"Bearer {site.tokens['boss']}"}
    assert site.req("GET", f"/api/submissions/{sid}", headers=boss).status_code == 200
    site.login("bob")
    assert site.req("GET", f"/submissions/{sid}").status_code == 404
    ada_token = site.lb.tokens(site.users["ada"].id)[0]
    r = site.req("POST", f"/account/tokens/{ada_token.id}/revoke", data={"csrf": site.csrf()})
    assert r.status_code == 404
    # revoking your own token makes it fail at once
    site.login("ada")
    r = site.req("POST", f"/account/tokens/{ada_token.id}/revoke", data={"csrf": site.csrf()}, follow_redirects=False)
    assert r.status_code == 303
    assert site.api_submit().status_code == 401
    assert site.req("GET", "/api/me", headers={"Authorization": "Bearer "}).status_code == 401
    # a page that needs a sign-in redirects to it
    site.client.cookies.clear()
    r = site.req("GET", "/submit", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_csrf_on_every_form(site):
    r = site.req("POST", "/login", data={"username": "ada", "password": "ada-password"})
    assert r.status_code == 403 and "security token" in r.text
    site.login("ada")
    for url, data in (("/account/tokens", {"name": "x"}), ("/logout", {}),
                      ("/admin/reveal/casebench-mini/test", {})):
        for token in (None, "0" * 64):
            d = dict(data, **({"csrf": token} if token else {}))
            assert site.req("POST", url, data=d).status_code == 403, url
    r = site.req("POST", "/submit", data={"csrf": "bad", "board": "casebench-mini/dev", "model_name": "m"},
                 files={"file": ("p.jsonl", VOICE.read_bytes())})
    assert r.status_code == 403
    # a CSRF token from another session does not work
    other = Sessions("test-secret", 60).csrf_token({"sid": "someone-else"})
    assert site.req("POST", "/account/tokens", data={"csrf": other}).status_code == 403
    # a non-admin cannot reveal even with a valid token
    r = site.req("POST", "/admin/reveal/casebench-mini/test", data={"csrf": site.csrf()})
    assert r.status_code == 403 and not site.lb.revealed(site.lb.board("casebench-mini/test"))
    r = site.req("POST", "/account/tokens", data={"csrf": site.csrf(), "name": "laptop"})
    assert r.status_code == 200 and re.search(r"cbt_[A-Za-z0-9_-]{20,}", r.text)


def test_rate_limit_per_token(tmp_path):
    s = Site(tmp_path, rate_limit=RateLimit(burst=2, per_minute=1))
    try:
        codes = [s.api_submit(content=b'{"id": "x"}\n').status_code for _ in range(3)]
        assert codes == [422, 422, 429]
        r = s.api_submit()
        assert r.status_code == 429 and r.json()["error"] == "rate_limited" and int(r.headers["retry-after"]) > 1
        assert s.api_submit(user="bob").status_code == 202  # another token has its own bucket
    finally:
        s.close()


def test_quotas_and_idempotency(tmp_path):
    s = Site(tmp_path, boards=[BoardConfig("casebench-mini", quota_per_day=2, quota_total=3)])
    try:
        key = {"Idempotency-Key": "k-1"}
        r1 = s.api_submit(headers=key)
        r2 = s.api_submit(headers=key)
        assert (r1.status_code, r2.status_code) == (202, 200) and r1.json()["id"] == r2.json()["id"]
        assert s.api_submit(content=b"nonsense\n").status_code == 422  # invalid: no quota used
        assert s.api_submit().status_code == 202
        r = s.api_submit()
        assert r.status_code == 429 and r.json()["error"] == "quota_exceeded" and "today" in r.json()["detail"]
        assert s.api_submit(user="bob").status_code == 202  # quotas are per user
        # the day passes: the total quota still holds
        with s.lb.db.write() as sess:
            for sub in sess.scalars(select(Submission)):
                sub.created_at = sub.created_at.replace(year=2000)
        assert s.api_submit().status_code == 202
        r = s.api_submit()
        assert r.status_code == 429 and "in all" in r.json()["detail"]
        assert s.lb.quota_left(s.users["ada"], s.lb.board("casebench-mini/dev"))["total"] == 3
    finally:
        s.close()


def test_web_form_errors_are_line_numbered(site):
    site.login("ada")
    r = site.req("POST", "/submit", data={"csrf": site.csrf(), "board": "casebench-mini/dev", "model_name": "m"},
                 files={"file": ("p.jsonl", b'{"id": "mini-0000", "label": "angy"}\n')})
    assert r.status_code == 422
    assert "p.jsonl:1: id &#39;mini-0000&#39;: field &#39;label&#39;: unknown label &#39;angy&#39;" in r.text
    r = site.req("POST", "/submit", data={"csrf": site.csrf(), "board": "casebench-mini/dev", "model_name": "m"},
                 files={"file": ("p.jsonl", VOICE.read_bytes())}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/submissions/")


# -- the queue -------------------------------------------------------------------------------------------


def test_claims_are_exclusive_and_restart_requeues(tmp_path):
    from casebench.leaderboard.worker import Worker

    cfg = make_config(tmp_path, boards=[BoardConfig("casebench-mini", quota_per_day=0)])
    lb = Leaderboard(cfg)
    user = lb.create_user("ada", "ada-password")
    tmp = cfg.data_dir / "tmp"
    for i in range(24):
        p = tmp / f"u{i}"
        p.write_bytes(VOICE.read_bytes())
        lb.accept(user, "casebench-mini/dev", p, "v.jsonl", {"model_name": f"m{i}"})
    workers = [Worker(lb, processes=0) for _ in range(4)]
    claimed: list[int] = []
    lock = threading.Lock()

    def grab(w):
        while (job := w.claim_submission()) is not None:
            with lock:
                claimed.append(job[0])

    threads = [threading.Thread(target=grab, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == list(range(1, 25))  # each exactly once
    # the server "stops" with everything running; a new start re-queues and scores each once
    w = Worker(lb, processes=0, poll_s=0.05).start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with lb.db.read() as s:
                if all(x == "done" for x in s.scalars(select(Submission.status))):
                    break
            time.sleep(0.2)
    finally:
        w.stop()
    with lb.db.read() as s:
        subs = list(s.scalars(select(Submission)))
    assert {x.status for x in subs} == {"done"} and {x.score_count for x in subs} == {1}
    assert {x.attempts for x in subs} == {2}


def test_stale_claim_cannot_record(tmp_path):
    from casebench.leaderboard.worker import Worker

    lb = Leaderboard(make_config(tmp_path))
    user = lb.create_user("ada", "ada-password")
    p = lb.config.data_dir / "tmp" / "u"
    p.write_bytes(VOICE.read_bytes())
    sub, _ = lb.accept(user, "casebench-mini/dev", p, "v.jsonl", {"model_name": "m"})
    w = Worker(lb, processes=0)
    sid, claim = w.claim_submission()
    lb.requeue(w.name)  # e.g. another server start took the job back
    sid2, claim2 = w.claim_submission()
    w._score(sid, claim)  # the old claim finishes late: dropped
    assert lb.submission(sid).status == "running"
    w._score(sid2, claim2)
    s = lb.submission(sid)
    assert s.status == "done" and s.score_count == 1


# -- CLI -------------------------------------------------------------------------------------------------


def test_cli_accounts_reveal_export(tmp_path, monkeypatch, capsys):
    from casebench.cli import main

    d = tmp_path / "data"
    monkeypatch.setenv("CASEBENCH_PASSWORD", "organiser-pw")
    assert main(["leaderboard", "create-admin", "boss", "--data-dir", str(d), "--token", "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["is_admin"] and out["token"].startswith("cbt_")
    assert main(["leaderboard", "add-user", "boss", "--data-dir", str(d)]) == 2  # exists
    assert "exists already" in capsys.readouterr().err
    monkeypatch.setenv("CASEBENCH_PASSWORD", "short")
    assert main(["leaderboard", "add-user", "ada", "--data-dir", str(d)]) == 2
    assert main(["leaderboard", "reveal", "casebench-mini", "--data-dir", str(d)]) == 0
    assert "revealed" in capsys.readouterr().out
    assert main(["leaderboard", "export", "--out", str(tmp_path / "site"), "--data-dir", str(d),
                 "-b", "casebench-mini,casebench-mini:test", "--json"]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    assert (tmp_path / "site" / "index.html").exists() and summary["results"] == 0
    monkeypatch.delenv("CASEBENCH_TOKEN", raising=False)
    assert main(["submit", str(VOICE), "-b", "casebench-mini", "--server", "http://127.0.0.1:9",
                 "--model-name", "m"]) == 2
    assert "CASEBENCH_TOKEN" in capsys.readouterr().err


def test_bounded_uploads_control_characters_and_private_files(tmp_path):
    import os
    import stat

    s = Site(tmp_path, max_upload_mb=0.05, max_uncompressed_mb=1)
    try:
        # one huge line in a small gzip: refused on its first line, before any parsing (no did-you-mean)
        r = s.api_submit(content=gzip.compress(b'{"id": "' + b"a" * 3_000_000 + b'"}\n'), name="p.jsonl.gz")
        assert r.status_code == 413 and r.json()["problems"][0]["line"] == 1 and "64 KB" in r.json()["detail"]
        r = s.api_submit(content=b'{"id": "mini-0000", "label": "' + b"x" * 500 + b'"}\n')
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "label"
        r = s.api_submit(content=b'{"id": "' + b"i" * 300 + b'", "label": "angry"}\n{"id": "x"}\n')
        assert r.status_code == 422 and r.json()["problems"][0]["line"] == 1
        # a chunked body (no Content-Length) past the limit: 413, not 500
        def body():
            yield (b'--zz\r\nContent-Disposition: form-data; name="file"; filename="p.jsonl"\r\n'
                   b"Content-Type: application/octet-stream\r\n\r\n")
            for _ in range(40):
                yield b"x" * 65536

        r = s.client.post("/api/submissions", content=body(), headers={
            "Authorization": f"Bearer {s.tokens['ada']}", "content-type": "multipart/form-data; boundary=zz"})
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        # control characters in text fields
        small = gzip.compress(VOICE.read_bytes())
        for field, value in (("model_name", "evil\x1b[31m"), ("model_revision", "v1\x00"),
                             ("description", "ok\nthen \x07bell"), ("trained_on", "IEMO\x0bCAP")):
            r = s.api_submit(content=small, name="p.jsonl.gz", **{"model_name": "m", field: value})
            assert r.status_code == 422 and r.json()["problems"][0]["field"] == field, (field, r.text)
        assert s.api_submit(content=small, name="p.jsonl.gz", model_name="m",
                            description="two\r\nlines\tand a tab").status_code == 202
        assert s.req("GET", "/api/docs").status_code == 200
        assert s.req("GET", "/api/docs/assets/swagger-ui-bundle.js").status_code == 200
        health = s.req("GET", "/healthz").json()
        assert health["ok"] and health["pool"]["processes"] == 0 and "queued" in health["queue"]
        db = s.cfg.data_dir / "leaderboard.db"
        assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(s.cfg.data_dir).st_mode) == 0o700
    finally:
        s.close()


def test_database_of_an_older_version_upgrades(tmp_path):
    """A database and upload folder made before issue 14 (schema in tests/assets/leaderboard/): the new
    columns are added, the queued submission's file moves into the database, and it is scored."""
    import sqlite3

    from casebench.leaderboard.worker import Worker

    data = tmp_path / "lb"
    (data / "uploads").mkdir(parents=True)
    con = sqlite3.connect(data / "leaderboard.db")
    con.executescript((Path(__file__).parent / "assets" / "leaderboard" / "schema-before-issue14.sql").read_text())
    con.execute("INSERT INTO users (id, username, password_hash, is_admin, created_at) VALUES "
                "(1, 'ada', 'x', 0, '2026-12-01 10:00:00')")
    con.execute("INSERT INTO submissions (id, board, user_id, status, created_at, attempts, score_count, upload_path, "
                "upload_name, upload_sha256, upload_bytes, n_lines, model_name, model_revision, model_url, "
                "trained_on, description, zero_shot) VALUES (1, 'casebench-mini/dev', 1, 'queued', "
                "'2026-12-01 10:00:00', 0, 0, 'old.jsonl', 'v.jsonl', 'sha256:x', 1, 480, 'old-model', '', '', '[]', "
                "'', 1)")
    con.commit()
    con.close()
    (data / "uploads" / "old.jsonl").write_bytes(phase_file(VOICE, "dev", tmp_path).read_bytes())
    lb = Leaderboard(make_config(tmp_path))
    assert not (data / "uploads" / "old.jsonl").exists() and lb.submission(1).upload_id is not None
    w = Worker(lb, processes=0, poll_s=0.05).start()
    try:
        deadline = time.monotonic() + 60
        while lb.submission(1).status != "done" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        w.stop()
    assert lb.submission(1).status == "done" and lb.submission(1).score_count == 1
    with pytest.raises(ServiceError, match="control character"):
        lb.create_token(1, "laptop\x1b[2J")


def test_infrastructure_failures_cost_nothing_and_come_back(tmp_path):
    from casebench.leaderboard.worker import Worker

    lb = Leaderboard(make_config(tmp_path, boards=[BoardConfig("casebench-mini", quota_total=1)]))
    user = lb.create_user("ada", "ada-password")
    p = lb.config.data_dir / "tmp" / "u"
    p.write_bytes(VOICE.read_bytes())
    sub, _ = lb.accept(user, "casebench-mini/dev", p, "v.jsonl", {"model_name": "m"})
    with lb.db.write() as s:  # as after MAX_ATTEMPTS dead scoring processes
        s.get(Submission, sub.id).status, s.get(Submission, sub.id).failure = "failed", "infra"
    assert lb.quota_left(user, lb.board("casebench-mini/dev"))["total"] == 0  # not charged
    st = lb.status_view(lb.submission(sub.id), user)
    assert "does not count against your quota" in st["error"] and "server" in st["error"]
    w = Worker(lb, processes=0, poll_s=0.05).start()  # a (re)start puts it back in the queue
    try:
        deadline = time.monotonic() + 60
        while lb.submission(sub.id).status != "done" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        w.stop()
    done = lb.submission(sub.id)
    assert done.status == "done" and done.score_count == 1 and done.failure is None


def _workspace_benchmark(tmp_path):
    """casebench-mini's gold and spec, recorded as published from a small workspace (its lineage sidecar)."""
    import json

    import yaml

    from casebench.workspace import Workspace, lineage, lineage_path

    ws = Workspace.create(tmp_path / "ws", "demo")
    ws.write_table("labels", [{"clip_id": "c1", "acoustic_label": "sad"}])
    ws.write_table("splits", [{"clip_id": "c1", "split": "test"}], built_from=ws.versions(["clips", "labels"]))
    folder = tmp_path / "bench"
    folder.mkdir()
    gold = folder / "gold.csv"
    gold.write_bytes(MINI.gold_path.read_bytes())
    spec = yaml.safe_load(MINI.spec_path.read_text())
    spec.update(name="mini-ws", gold="gold.csv", group_by=["gender"])
    (folder / "bench.yaml").write_text(yaml.safe_dump(spec))

    def publish():  # what `casebench publish` records beside the gold
        rec = lineage(ws, ["labels", "splits"], step="publish", command=f"casebench publish {ws.root} OUT")
        lineage_path(gold).write_text(json.dumps([rec]))

    publish()
    return ws, folder / "bench.yaml", publish


def test_a_board_whose_gold_goes_stale_while_served_says_so(tmp_path, monkeypatch):
    from casebench.leaderboard import service

    monkeypatch.setattr(service, "STALE_CHECK_S", 0.0)  # check on every request
    ws, spec, publish = _workspace_benchmark(tmp_path)
    site = Site(tmp_path, boards=[BoardConfig(str(spec), quota_per_day=0)])
    try:
        first = site.wait(site.api_submit(benchmark="mini-ws", model_name="m1").json()["id"])
        assert first["status"] == "done"
        api = site.req("GET", "/api/boards/mini-ws/dev").json()
        assert api["board"]["stale"] == [] and 'id="stale-notice"' not in site.req("GET", "/b/mini-ws/dev").text
        # the spec's group_by: the groups' thin intervals (50 resamples) are named on the board and the page
        assert any(w.startswith("groups by 'gender': the 95% intervals of 2 of 2 groups") for w in api["warnings"])
        assert "groups by &#39;gender&#39;" in site.req("GET", "/b/mini-ws/dev").text

        # the organisers re-aggregate while the board is served: the gold no longer matches its lineage
        ws.write_table("labels", [{"clip_id": "c1", "acoustic_label": "happy"}])
        api = site.req("GET", "/api/boards/mini-ws/dev").json()
        problems = api["board"]["stale"]
        assert problems[0].startswith("labels.parquet changed after split")
        assert "re-run `casebench split <server>`" in problems[0]
        assert problems[1].startswith("labels.parquet changed after publish (gold <server> was built from")
        assert [m["stale"] for m in site.req("GET", "/api/boards").json()] == [problems]
        page = site.req("GET", "/b/mini-ws/dev").text
        assert 'id="stale-notice"' in page and "no longer matches the data it was built from" in page
        assert "stale-mark" in site.req("GET", "/").text
        # uploads are still taken and scored; the results say they were scored on a stale gold
        second = site.wait(site.api_submit(benchmark="mini-ws", model_name="m2", path=TEXT).json()["id"])
        assert second["status"] == "done"
        assert any(w.startswith("stale (--allow-stale): labels.parquet changed after split")
                   for w in second["warnings"])
        site.login("ada")
        sub_page = site.req("GET", f"/submissions/{second['id']}").text
        assert 'id="stale-notice"' in sub_page and "stale (--allow-stale)" in sub_page
        assert "groups by &#39;gender&#39;" in sub_page
        board = site.req("GET", "/api/boards/mini-ws/dev").json()
        assert any(w.startswith("stale (--allow-stale)") for w in board["warnings"])

        # the tables are hashed again only when a file the check reads changed
        import casebench.workspace

        calls = []
        real = casebench.workspace.check_benchmark
        monkeypatch.setattr(casebench.workspace, "check_benchmark", lambda *a, **kw: calls.append(1) or real(*a, **kw))
        board_cfg = site.lb.board("mini-ws/dev")
        assert site.lb.stale(board_cfg) == site.lb.stale(board_cfg) == problems and calls == []
        # re-split and re-publish: the notice goes away
        ws.write_table("splits", [{"clip_id": "c1", "split": "test"}], built_from=ws.versions(["clips", "labels"]))
        publish()
        assert site.req("GET", "/api/boards/mini-ws/dev").json()["board"]["stale"] == [] and calls
        # a workspace that cannot be read any more is reported, not raised
        (ws.root / "tables" / "labels.parquet").rename(ws.root / "tables" / "labels.parquet.bak")
        (ws.root / "tables" / "labels.parquet").mkdir()
        r = site.req("GET", "/api/boards/mini-ws/dev")
        assert r.status_code == 200 and r.json()["board"]["stale"][0].startswith("the gold's lineage could not be")
        assert site.req("GET", "/b/mini-ws/dev").status_code == 200
        # no server path leaves: the workspace is "<server>" in every page and API answer
        assert not [t for t in site.seen if str(ws.root) in t or str(tmp_path) in t]
    finally:
        site.close()


def test_scorer_warnings_reach_the_submission_page(site):
    sid = site.api_submit(model_name="voice").json()["id"]
    done = site.wait(sid)
    assert any("speaker clusters" in w for w in done["warnings"])  # mini-acted: 5 speakers in the dev phase
    site.login("ada")
    page = site.req("GET", f"/submissions/{sid}").text
    assert 'id="warnings"' in page and "speaker clusters" in page


def test_a_test_phase_keeps_per_class_recall_per_group_back(capsys):
    import json

    # issue 14: per-class views only on public phases. A spec's group_by adds per-class recall per group (and
    # recall gaps), whose supports count each class within each group: a test phase leaves them out and says so,
    # keeping the groups' headline metrics, worst group and largest gap; the redacted results still validate
    from casebench.cli import main
    from casebench.leaderboard.service import redact
    from casebench.results_model import validate

    assert main(["evaluate", str(VOICE), "-b", "casebench-mini", "--group-by", "gender", "--bootstrap", "50",
                 "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["groups"]["gender"]["groups"]["female"]["recall"] and results["groups"]["gender"]["recall_gaps"]
    shown = redact(results, BoardConfig("casebench-mini", phase="test"), "voice.jsonl")
    gender = shown["groups"]["gender"]
    assert all(g["recall"] == {} for g in gender["groups"].values()) and gender["recall_gaps"] == {}
    assert gender["worst_group"]["accuracy"]["value"] == results["groups"]["gender"]["worst_group"]["accuracy"]["value"]
    assert "groups.*.recall_gaps" in shown["redacted"] and "per_class" not in shown
    validate(shown)
    public = redact(results, BoardConfig("casebench-mini", phase="dev"), "voice.jsonl")
    assert public["groups"] == results["groups"] and "redacted" not in public
