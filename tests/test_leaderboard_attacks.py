"""The adaptive attacks of issue 14, replayed against the leaderboard, each shown to fail.

1. *Six-label confusion read*: a dev upload labels six test items, one label each, and reads them off the dev
   board's confusion matrix. Now the dev board scores only dev items (and a configuration where a public and
   a hidden board share items is refused), and a test board shows no per-item-revealing view.
2. *One-flip read*: flip one item's label and watch the score move by 1/n. Now the submitter's feedback
   comes from the Ladder (Blum & Hardt 2015) on the public part: a one-item change never moves it.
3. *Digit-coded probabilities*: code a few items' probabilities in distinct decimal places and read their
   gold distributions off a full-precision mean divergence. Now the public part's scores are rounded to what
   their CI supports (or go through the Ladder), so the coded digits never show.

Each test also computes what the attacker would have read from the unprotected number, so that the test
fails if the attack stops being a real one (e.g. a flip that does not change the raw score). docs/
leaderboard-security.md states the uploads each attack needs now."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from test_leaderboard import MINI, Site  # tests/ is on sys.path (pytest's rootdir-relative import)

from casebench.errors import ConfigError
from casebench.leaderboard.config import BoardConfig, LeaderboardConfig
from casebench.leaderboard.service import Leaderboard

GOLD = MINI.load_gold()
LABELS = list(GOLD.taxonomy.labels)
IDS = GOLD.ids.tolist()


def _lines(label_of: dict | None = None, probs_of: dict | None = None, default="angry") -> bytes:
    out = []
    for x in IDS:
        rec = {"id": x, "label": (label_of or {}).get(x, default)}
        if probs_of is not None:
            rec["probs"] = probs_of.get(x, {lab: 1 / len(LABELS) for lab in LABELS})
        out.append(orjson.dumps(rec))
    return b"\n".join(out) + b"\n"


def _shown(site: Site, content: bytes, phase="test", model="probe") -> dict:
    r = site.api_submit(content=content, name="p.jsonl", phase=phase, model_name=model)
    assert r.status_code == 202, r.text
    return site.wait(r.json()["id"])


@pytest.fixture
def boards(tmp_path):
    s = Site(tmp_path, boards=[BoardConfig("casebench-mini", quota_per_day=0),
                               BoardConfig("casebench-mini", phase="test", visibility="submitter", quota_per_day=0)])
    yield s
    s.close()


def test_overlapping_phases_are_refused(tmp_path):
    cfg = LeaderboardConfig(boards=[BoardConfig("casebench-mini", items="all"),
                                    BoardConfig("casebench-mini", phase="test", items="all")],
                            data_dir=tmp_path / "lb", secret_key="k", workers=0)
    with pytest.raises(ConfigError, match="same gold rows"):
        Leaderboard(cfg)
    cfg.boards = [BoardConfig("casebench-mini", items="corpus=mini-synth"),
                  BoardConfig("casebench-mini", phase="test")]  # mini-synth speakers are in both
    with pytest.raises(ConfigError, match=r"\d+ items, e\.g\. ids \['mini-"):
        Leaderboard(cfg)
    cfg.boards = [BoardConfig("casebench-mini"), BoardConfig("casebench-mini", phase="test")]  # the split column
    lb = Leaderboard(cfg)
    dev, test = (set(lb.gold(b).ids.tolist()) for b in lb.boards.values())
    assert len(dev) == len(test) == 240 and not dev & test


def test_six_label_confusion_read_fails(boards):
    test_items = [x for x, sp in zip(IDS, GOLD.columns["split"], strict=True) if sp == "test"]
    probe = {x: lab for x, lab in zip(test_items[:6], [lab for lab in LABELS if lab != "angry"], strict=True)}
    st = _shown(boards, _lines(probe), phase="dev")
    res = boards.req("GET", f"/api/submissions/{st['id']}/results.json").json()
    # the six test lines were dropped before scoring: the dev confusion matrix has no prediction but "angry"
    cm = np.array(res["confusion"]["all"])
    assert cm.sum() == 240 and cm[:, LABELS.index("angry")].sum() == 240
    assert res["predictions"]["n_lines"] == 240
    # and on the test board itself there is no confusion matrix or per-class table to read, for anyone
    st = _shown(boards, _lines(probe))
    assert "splits" not in st
    boards.lb.reveal("casebench-mini/test")
    res = boards.req("GET", f"/api/submissions/{st['id']}/results.json").json()
    assert not {"confusion", "per_class", "conflict_breakdown"} & set(res)
    # once revealed (full-precision headline scores for all), the phase takes no more uploads to probe with
    r = boards.api_submit(content=_lines(probe), name="p.jsonl", phase="test", model_name="late")
    assert r.status_code == 409 and "revealed" in r.json()["detail"]


def test_one_flip_read_fails(boards):
    board = boards.lb.board("casebench-mini/test")
    public = boards.lb.board_items(board).masks()["public"]
    # the attacker's best case: an item of the public part whose gold is not the base label
    target = next(i for i in np.flatnonzero(public) if LABELS[GOLD.acoustic[i]] != "angry")
    base = _shown(boards, _lines())["feedback"]
    shown, raw = {}, {}
    pub_idx = np.flatnonzero(public)
    for lab in LABELS[1:]:
        fb = _shown(boards, _lines({IDS[target]: lab}), model=f"flip-{lab}")["feedback"]
        assert fb["kind"] == "ladder" and fb["part"] == "public"
        shown[lab] = fb["shown"]
        pred = np.where(np.arange(len(IDS)) == target, LABELS.index(lab), LABELS.index("angry"))
        raw[lab] = float(np.mean(pred[pub_idx] == GOLD.acoustic[pub_idx]))
    truth = LABELS[GOLD.acoustic[target]]
    # the unprotected accuracy reads the label in six uploads: the true one is the only one that moves it
    assert max(raw, key=raw.get) == truth and raw[truth] - sorted(raw.values())[-2] == pytest.approx(1 / len(pub_idx))
    # what the submitter sees: the same number after every flip, so nothing to decode
    assert set(shown.values()) == {base["shown"]}
    assert base["moved"] and base["round"] == 1


def test_digit_coded_probabilities_fail(tmp_path):
    s = Site(tmp_path, boards=[BoardConfig("casebench-mini", phase="test", visibility="submitter", quota_per_day=0,
                                           ladder=False)])
    try:
        board = s.lb.board("casebench-mini/test")
        public = s.lb.board_items(board).masks()["public"]
        coded = list(np.flatnonzero(public)[:3])
        uniform = {lab: 1 / len(LABELS) for lab in LABELS}
        views, raws = [], []
        # the attack: item j's probabilities lean towards class c by 10^-(2j+2), so the mean divergence's
        # digits at 10^-(2j+2) would carry item j's gold; one upload per coded class set
        for c in range(3):
            probs = {}
            for j, i in enumerate(coded):
                eps = 10.0 ** -(2 * j + 2)
                p = {lab: (1 - eps) / len(LABELS) for lab in LABELS}
                p[LABELS[c]] += eps
                probs[IDS[i]] = p
            fb = _shown(s, _lines(probs_of=probs), model=f"code-{c}")["feedback"]
            assert fb["kind"] == "rounded" and fb["part"] == "public"
            views.append(fb["splits"]["all"]["js"])
            # the unprotected number: the public part's mean JS at full precision
            from casebench.leaderboard.phases import item_losses

            gold_pub = s.lb.board_items(board).benchmark_of("public").load_gold()
            dist = np.tile(np.array(list(uniform.values())), (len(gold_pub), 1))
            pos = {x: k for k, x in enumerate(gold_pub.ids.tolist())}
            for i in coded:
                dist[pos[IDS[i]]] = list(probs[IDS[i]].values())
            raws.append(float(item_losses("distribution", gold_pub, {"dist": dist}).mean()))
        assert len(set(raws)) == 3  # at full precision each coding gives its own value: the channel exists
        # rounded to the CI: the coded digits are gone. The public part is drawn with a random key, so now and
        # then (about 3% of keys at steps of 0.001) a rounding boundary falls between the codings' values: the
        # views then differ by one step, one bit, never the three items' distributions (docs/leaderboard-security.md)
        step = views[0]["step"]
        assert step >= 0.001 and all(v["step"] == step and "n" not in v for v in views)
        assert max(raws) - min(raws) < step / 10
        assert max(v["value"] for v in views) - min(v["value"] for v in views) <= step + 1e-12
        assert s.req("GET", "/api/boards/casebench-mini/test").json()["rows"] == []
    finally:
        s.close()
