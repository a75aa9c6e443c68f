"""Tests for casebench.predictions: every malformed input gives an InputError naming file, line, id and field;
well-formed inputs (gzip, CRLF, BOM, probs-only, renormalised) come back aligned to gold order; random and
mutated files never raise anything but InputError, and the fast (column-wise) path agrees with the per-line
path."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from contextlib import ExitStack
from unittest import mock

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casebench import predictions as P
from casebench.benchmarks import Gold
from casebench.errors import MAX_SHOWN, ConfigError, InputError
from casebench.predictions import Predictions, parse_predictions
from casebench.taxonomy import get_taxonomy

TAX = get_taxonomy("ekman7")
IDS = ["case-0001", "case-0002", "case-0003", "case-0004"]


def make_gold(ids=IDS) -> Gold:
    return Gold(ids=np.array(ids, dtype=object), taxonomy=TAX,
                acoustic=np.arange(len(ids), dtype=np.int64) % len(TAX))


@pytest.fixture
def gold() -> Gold:
    return make_gold()


def write(tmp_path, content, name="preds.jsonl"):
    path = tmp_path / name
    # surrogateescape: "\udc80" in a test string stands for the (invalid UTF-8) byte 0x80
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogateescape"))
    return path


def lines(*objs) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs)


A = '{"id": "case-0001", "label": "angry"}'
B = '{"id": "case-0002", "label": "sad"}'


# -- bad inputs: (case, file text, kwargs, line, id, field, fragments of the message) ---------------------

BAD = [
    ("invalid json", lines(A, '{"id": "case-0002", "label": "sad"'), {}, 2, None, None, ["invalid JSON"]),
    ("not an object", lines(A, '["case-0002", "sad"]'), {}, 2, None, None, ["a list", "JSON object"]),
    ("a string line", lines(A, '"case-0002"'), {}, 2, None, None, ["the string 'case-0002'"]),
    ("header line", lines('{"model": "wav2vec2", "benchmark": "casebench-mini"}', A), {}, 1, None, None,
     ["looks like a header"]),
    ("header with id", lines('{"id": "run-1", "model": "x"}', A), {}, 1, None, None, ["looks like a header"]),
    ("model key on a prediction line", lines('{"id": "case-0001", "label": "sad", "model": "x"}'), {}, 1,
     "case-0001", "model", ["unknown key 'model'", "metadata"]),
    ("header, no known key", lines(A, '{"foo": 1}'), {}, 2, None, None, ["looks like a header"]),
    ("missing id", lines(A, '{"label": "sad"}'), {}, 2, None, "id", ["no 'id'"]),
    ("id is a number", lines(A, '{"id": 2, "label": "sad"}'), {}, 2, None, "id", ["the number 2", "string"]),
    ("id is null", lines(A, '{"id": null, "label": "sad"}'), {}, 2, None, "id", ["null"]),
    ("empty id", lines(A, '{"id": "", "label": "sad"}'), {}, 2, None, "id", ["empty id"]),
    ("blank id", lines(A, '{"id": "  ", "label": "sad"}'), {}, 2, None, "id", ["blank id"]),
    ("unknown id", lines(A, '{"id": "case-9999", "label": "sad"}'), {}, 2, "case-9999", "id", ["unknown id"]),
    ("unknown id, case", lines(A, '{"id": "CASE-0002", "label": "sad"}'), {}, 2, "CASE-0002", "id",
     ["unknown id", "did you mean 'case-0002'"]),
    ("unknown id, suffix", lines(A, '{"id": "audio/case-0002.wav", "label": "sad"}'), {}, 2,
     "audio/case-0002.wav", "id", ["did you mean 'case-0002'"]),
    ("unknown id, typo", lines(A, '{"id": "case-00002", "label": "sad"}'), {}, 2, "case-00002", "id",
     ["did you mean 'case-0002'"]),
    ("duplicate id", lines(A, B, '{"id": "case-0001", "label": "sad"}'), {}, 3, "case-0001", "id",
     ["duplicate id", "line 1"]),
    ("unknown label", lines(A, '{"id": "case-0002", "label": "angy"}'), {}, 2, "case-0002", "label",
     ["unknown label 'angy'", "did you mean 'angry'"]),
    ("label case", lines(A, '{"id": "case-0002", "label": "Sad"}'), {}, 2, "case-0002", "label",
     ["unknown label 'Sad'", "lower-case", "'sad'"]),
    ("label is an index", lines(A, '{"id": "case-0002", "label": 5}'), {}, 2, "case-0002", "label",
     ["the number 5", "'sad'"]),
    ("label is a bool", lines(A, '{"id": "case-0002", "label": true}'), {}, 2, "case-0002", "label",
     ["true (a boolean)"]),
    ("label is null", lines(A, '{"id": "case-0002", "label": null}'), {}, 2, "case-0002", "label",
     ["null", "omit the key"]),
    ("label is a list", lines(A, '{"id": "case-0002", "label": ["sad"]}'), {}, 2, "case-0002", "label",
     ["a list"]),
    ("unknown key typo", lines(A, '{"id": "case-0002", "lable": "sad"}'), {}, 2, "case-0002", "lable",
     ["unknown key 'lable'", "did you mean 'label'"]),
    ("unknown key alias", lines(A, '{"id": "case-0002", "label": "sad", "clip_id": "x"}'), {}, 2, "case-0002",
     "clip_id", ["unknown key 'clip_id'", "goes in 'id'"]),
    ("unknown key extra", lines(A, '{"id": "case-0002", "label": "sad", "split": "test"}'), {}, 2,
     "case-0002", "split", ["unknown key 'split'"]),
    ("ID upper-case", lines(A, '{"ID": "case-0002", "label": "sad"}'), {}, 2, None, "ID",
     ["unknown key 'ID'", "did you mean 'id'"]),
    ("no prediction", lines(A, '{"id": "case-0002"}'), {}, 2, "case-0002", None, ["no prediction"]),
    ("probs not an object", lines(A, '{"id": "case-0002", "probs": [0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2]}'), {},
     2, "case-0002", "probs", ["a list", "ambiguous"]),
    ("probs a string", lines(A, '{"id": "case-0002", "probs": "sad"}'), {}, 2, "case-0002", "probs",
     ["the string 'sad'"]),
    ("probs value a string", lines(A, '{"id": "case-0002", "probs": {"sad": "1.0"}}'), {}, 2, "case-0002",
     "probs.sad", ["the string '1.0'", "without quotes"]),
    ("probs value a bool", lines(A, '{"id": "case-0002", "probs": {"sad": true}}'), {}, 2, "case-0002",
     "probs.sad", ["true (a boolean)", "a number"]),
    ("probs negative", lines(A, '{"id": "case-0002", "probs": {"sad": 1.2, "angry": -0.2}}'), {}, 2,
     "case-0002", "probs", ["negative", "'angry': -0.2"]),
    ("probs sum", lines(A, '{"id": "case-0002", "probs": {"sad": 0.5, "angry": 0.4}}'), {}, 2, "case-0002",
     "probs", ["sum to 0.9", "--renormalize"]),
    ("probs sum just off", lines(A, '{"id": "case-0002", "probs": {"sad": 0.5, "angry": 0.5011}}'), {}, 2,
     "case-0002", "probs", ["sum to 1.0011", "within 0.001"]),
    ("duplicate key", lines(A, '{"id": "case-0002", "label": "sad", "label": "happy"}'), {}, 2, "case-0002",
     "label", ["duplicate key 'label'", "2 times"]),
    ("duplicate nested key", lines(A, '{"id": "case-0002", "probs": {"sad": 0.5, "sad": 0.5}}'), {}, 2,
     "case-0002", "probs.sad", ["duplicate key 'sad'"]),
    ("duplicate key, spaced colon", lines(A, '{"id" : "case-0002", "label" : "sad", "label" :"sad"}'), {}, 2,
     "case-0002", "label", ["duplicate key 'label'"]),
    ("nested 300 deep", lines(A, '{"id": "case-0002", "valence": ' + "[" * 300 + "]" * 300 + "}"), {}, 2,
     "case-0002", "valence", ["a list [[[", "a number"]),
    ("invalid UTF-8 in an id", lines(A) + '{"id": "case-\udc800002", "label": "sad"}\n', {}, 2, None, None,
     ["not valid UTF-8"]),
    ("probs zero", lines(A, '{"id": "case-0002", "probs": {"sad": 0}}'), {"renormalize": True}, 2,
     "case-0002", "probs", ["sum to 0", "cannot be renormalised"]),
    ("probs empty", lines(A, '{"id": "case-0002", "probs": {}}'), {}, 2, "case-0002", "probs", ["sum to 0"]),
    ("probs unknown label", lines(A, '{"id": "case-0002", "probs": {"sad": 0.5, "angy": 0.5}}'), {}, 2,
     "case-0002", "probs", ["unknown label 'angy'", "did you mean 'angry'"]),
    ("distribution sum", lines(A, '{"id": "case-0002", "distribution": {"sad": 0.6, "happy": 0.6}}'), {}, 2,
     "case-0002", "distribution", ["shares sum to 1.2", "--renormalize"]),
    ("distribution null", lines(A, '{"id": "case-0002", "distribution": null}'), {}, 2, "case-0002",
     "distribution", ["null"]),
    ("valence a string", lines(A, '{"id": "case-0002", "valence": "3.1"}'), {}, 2, "case-0002", "valence",
     ["the string '3.1'", "without quotes"]),
    ("arousal a bool", lines(A, '{"id": "case-0002", "arousal": false}'), {}, 2, "case-0002", "arousal",
     ["false (a boolean)", "a number"]),
    ("dominance null", lines(A, '{"id": "case-0002", "dominance": null}'), {}, 2, "case-0002", "dominance",
     ["null"]),
    ("python quotes", lines(A, "{'id': 'case-0002', 'label': 'sad'}"), {}, 2, None, None,
     ["invalid JSON", "double quotes"]),
    ("NaN", lines(A, '{"id": "case-0002", "valence": NaN}'), {}, 2, None, None, ["invalid JSON", "NaN"]),
    ("infinity", lines(A, '{"id": "case-0002", "valence": 1e999}'), {}, 2, None, None, ["infinity"]),
    ("two objects", lines(A, B + B), {}, 2, None, None, ["invalid JSON", "own line"]),
    ("required label", lines(A, '{"id": "case-0002", "distribution": {"sad": 1}}'), {"require": ["label"]},
     2, "case-0002", "label", ["no 'label'", "'probs'"]),
    ("required dims", lines('{"id": "case-0001", "valence": 1, "arousal": 2, "dominance": 3}',
                            '{"id": "case-0002", "valence": 1, "arousal": 2}'),
     {"require": ["valence", "arousal", "dominance"]}, 2, "case-0002", "dominance", ["no 'dominance'"]),
    ("required distribution", lines('{"id": "case-0001", "label": "sad"}'), {"require": ["distribution"]},
     1, "case-0001", "distribution", ["no 'distribution'", "'probs'"]),
]


@pytest.mark.parametrize(("content", "kwargs", "line", "id_", "field", "fragments"),
                         [pytest.param(*c[1:], id=c[0]) for c in BAD])
def test_bad_input_names_line_id_and_field(tmp_path, gold, content, kwargs, line, id_, field, fragments):
    path = write(tmp_path, content)
    with pytest.raises(InputError) as info:
        parse_predictions(path, gold, allow_missing=True, **kwargs)
    err = info.value
    hits = [p for p in err.problems if p.line == line and p.field == field]
    assert hits, f"no problem on line {line}, field {field}:\n{err}"
    p = hits[0]
    assert p.id == id_
    assert p.file == str(path)
    text = str(p)
    assert text.startswith(f"{path}:{line}: ")
    if id_ is not None:
        assert f"id {id_!r}" in text
    if field is not None:
        assert f"field {field!r}" in text
    for fragment in fragments:
        assert fragment in text, text
    assert f"{path}:{line}" in str(err)


def test_non_utf8_bytes_name_the_line(tmp_path, gold):
    path = write(tmp_path, (A + "\n").encode() + b'{"id": "case-0002", "label": "s\xe4d"}\n')
    with pytest.raises(InputError) as info:
        parse_predictions(path, gold, allow_missing=True)
    [p] = info.value.problems
    assert p.line == 2 and "not valid UTF-8" in p.found and "b'\\xe4d\"}'" in p.found


def test_all_problems_are_collected_in_line_order(tmp_path, gold):
    path = write(tmp_path, lines('{"id": "case-0001", "label": "angy"}', "not json",
                                 '{"id": "case-0002", "lable": "sad"}', '{"id": "case-0002", "label": 3}'))
    with pytest.raises(InputError) as info:
        parse_predictions(path, gold)
    probs_ = info.value.problems
    # line 1 label, line 2 JSON, line 3 key, line 4 duplicate + label, and the missing ids (no line)
    assert [p.line for p in probs_] == [None, 1, 2, 3, 4, 4]
    assert "have no line" in probs_[0].found
    assert str(info.value).startswith(f"6 problems in predictions file {path}:")


def test_only_max_shown_are_rendered_but_all_counted(tmp_path):
    ids = [f"c{i}" for i in range(50)]
    path = write(tmp_path, lines(*({"id": i, "label": "angy"} for i in ids)))
    with pytest.raises(InputError) as info:
        parse_predictions(path, make_gold(ids))
    err = info.value
    assert len(err.problems) == 50
    text = str(err)
    assert text.startswith("50 problems")
    assert text.count("unknown label") == MAX_SHOWN
    assert f"and {50 - MAX_SHOWN} more (50 in all)" in text


def test_problem_cap_keeps_the_count(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "MAX_PROBLEMS", 5)
    ids = [f"c{i}" for i in range(12)]
    path = write(tmp_path, lines(*({"id": i, "label": "x"} for i in ids)))
    with pytest.raises(InputError) as info:
        parse_predictions(path, make_gold(ids))
    assert len(info.value.problems) == 5
    assert str(info.value).startswith("12 problems in predictions file")
    assert "first 5 are kept" in str(info.value)


# -- file-level problems -------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "fragment"), [
    pytest.param(b"", "empty file", id="empty"),
    pytest.param(b"\n  \n\r\n", "empty file", id="blank lines only"),
    pytest.param(gzip.compress(b""), "empty file", id="empty gzip"),
    pytest.param(gzip.compress(lines(A, B).encode())[:-12], "truncated or corrupt gzip", id="truncated gzip"),
    pytest.param(b"\x1f\x8b\x08\x00garbage", "truncated or corrupt gzip", id="corrupt gzip"),
    pytest.param(b"PK\x03\x04rest", "zip archive", id="zip"),
    pytest.param(lines(A).encode("utf-16"), "UTF-16", id="utf-16"),
])
def test_bad_files(tmp_path, gold, content, fragment):
    path = write(tmp_path, content)
    with pytest.raises(InputError) as info:
        parse_predictions(path, gold)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_suggests_a_neighbour(tmp_path, gold):
    write(tmp_path, lines(A), name="predictions.jsonl")
    with pytest.raises(InputError) as info:
        parse_predictions(tmp_path / "prediction.jsonl", gold)
    assert "file not found" in str(info.value)
    assert "did you mean 'predictions.jsonl'" in str(info.value)


def test_directory(tmp_path, gold):
    with pytest.raises(InputError, match="is a directory"):
        parse_predictions(tmp_path, gold)


def test_unknown_required_field(tmp_path, gold):
    path = write(tmp_path, lines(A))
    with pytest.raises(ConfigError, match="did you mean 'valence'"):
        parse_predictions(path, gold, require=["valance"])


def test_wrong_benchmark_says_so(tmp_path, gold):
    path = write(tmp_path, lines('{"id": "msp-1", "label": "sad"}', '{"id": "msp-2", "label": "sad"}'))
    with pytest.raises(InputError) as info:
        parse_predictions(path, gold)
    assert "none of the 2 ids matches a gold id" in str(info.value)


# -- missing ids ---------------------------------------------------------------------------------------


def test_required_field_absent_from_every_line_is_one_problem(tmp_path, gold):
    path = write(tmp_path, GOOD)
    with pytest.raises(InputError) as info:
        parse_predictions(path, gold, require=["label", "valence"])
    [p] = info.value.problems
    assert p.line is None and p.field == "valence" and "none of the 4 lines has 'valence'" in p.found


def test_large_file_hash_and_order(tmp_path):
    ids = [f"utt-{i:06d}" for i in range(40_000)]  # > 1 MiB: the hash runs in a thread
    body = lines(*({"id": i, "label": TAX.labels[k % 7]} for k, i in enumerate(ids)))
    for name, raw in [("big.jsonl", body.encode()), ("big.jsonl.gz", gzip.compress(body.encode()))]:
        path = write(tmp_path, raw, name)
        preds = parse_predictions(path, make_gold(ids))
        assert preds.sha256 == "sha256:" + hashlib.sha256(raw).hexdigest()
        assert preds.label.tolist() == [k % 7 for k in range(len(ids))]
        assert preds.n_lines == len(ids)


def test_missing_ids_are_an_error_by_default(tmp_path, gold):
    path = write(tmp_path, lines(A, B))
    with pytest.raises(InputError) as info:
        parse_predictions(path, gold)
    [p] = info.value.problems
    assert "2 of 4 gold item(s) have no line: ['case-0003', 'case-0004']" in p.found
    assert "--allow-missing" in str(p)


def test_missing_ids_list_first_20_and_count(tmp_path):
    ids = [f"c{i:03d}" for i in range(30)]
    path = write(tmp_path, lines({"id": "c000", "label": "sad"}))
    with pytest.raises(InputError) as info:
        parse_predictions(path, make_gold(ids))
    [p] = info.value.problems
    assert "29 of 30" in p.found and "'c020'" in p.found and "'c021'" not in p.found
    assert "and 9 more" in p.found


def test_allow_missing_records_them(tmp_path, gold):
    path = write(tmp_path, lines(B, '{"id": "case-0004", "label": "happy"}'))
    preds = parse_predictions(path, gold, allow_missing=True)
    assert preds.missing_ids == ["case-0001", "case-0003"]
    assert preds.present.tolist() == [False, True, False, True]
    assert preds.label.tolist() == [-1, 5, -1, 3]
    assert any("2 of 4 gold item(s) have no line" in n for n in preds.notes)


# -- good inputs ---------------------------------------------------------------------------------------

GOOD = lines(A, B, '{"id": "case-0003", "label": "happy"}', '{"id": "case-0004", "label": "neutral"}')


def check_good(preds: Predictions, raw: bytes):
    assert preds.label.tolist() == [0, 5, 3, 4]
    assert preds.present.all() and preds.missing_ids == []
    assert preds.probs is None and preds.distribution is None and preds.vad == {}
    assert preds.n_lines == 4
    assert preds.sha256 == "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("name", ["p.jsonl.gz", "p.jsonl", "p.gzip"])
def test_gzip_detected_by_magic(tmp_path, gold, name):
    raw = gzip.compress(GOOD.encode())
    preds = parse_predictions(write(tmp_path, raw, name), gold)
    check_good(preds, raw)
    assert preds.notes == []


def test_plain_file_named_gz_is_read_with_a_note(tmp_path, gold):
    preds = parse_predictions(write(tmp_path, GOOD, "p.jsonl.gz"), gold)
    check_good(preds, GOOD.encode())
    assert any("not gzip-compressed" in n for n in preds.notes)


def test_crlf_bom_blank_lines(tmp_path, gold):
    raw = b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n\r\n  \t\r\n").encode()
    preds = parse_predictions(write(tmp_path, raw), gold)
    check_good(preds, raw)
    assert preds.notes == ["stripped a UTF-8 byte-order mark at the start of the file"]


def test_error_line_numbers_count_blank_lines_and_crlf(tmp_path, gold):
    path = write(tmp_path, f"{A}\r\n\r\n{{\"id\": \"case-0002\", \"label\": \"x\"}}\r\n")
    with pytest.raises(InputError) as info:
        parse_predictions(path, gold, allow_missing=True)
    assert [p.line for p in info.value.problems] == [3]


def test_any_order_is_aligned_to_gold(tmp_path, gold):
    path = write(tmp_path, "".join(reversed(GOOD.splitlines(keepends=True))))
    check_good(parse_predictions(path, gold), path.read_bytes())


def test_probs_give_label_and_distribution(tmp_path, gold):
    text = lines(
        {"id": "case-0001", "probs": {"angry": 0.5, "sad": 0.5}},  # tie -> first in taxonomy order
        {"id": "case-0002", "probs": {"happy": 0.7, "sad": 0.3}, "label": "sad"},  # given label is kept
        {"id": "case-0003", "probs": {"fear": 1}, "distribution": {"fear": 0.5, "sad": 0.5}},
        {"id": "case-0004", "label": "neutral"},
    )
    preds = parse_predictions(write(tmp_path, text), gold)
    assert preds.label.tolist() == [0, 5, 2, 4]
    k = len(TAX)
    assert preds.probs.shape == (4, k)
    assert preds.probs[0].tolist() == [0.5, 0, 0, 0, 0, 0.5, 0]
    assert np.isnan(preds.probs[3]).all()
    assert preds.distribution[0].tolist() == preds.probs[0].tolist()
    assert preds.distribution[2].tolist() == [0, 0, 0.5, 0, 0, 0.5, 0]
    assert np.isnan(preds.distribution[3]).all()
    assert sorted(preds.notes) == sorted([
        "1 line(s) give a label other than the argmax of their probs; the given label is kept",
        "label = argmax of probs for 2 line(s) without a label (ties -> first in taxonomy order)",
        "used probs as the distribution for 2 line(s) without a distribution",
    ])


def test_probs_satisfy_label_and_distribution_requirements(tmp_path, gold):
    text = lines(*({"id": i, "probs": {"sad": 1.0}} for i in IDS))
    preds = parse_predictions(write(tmp_path, text), gold, require=["label", "distribution"])
    assert preds.label.tolist() == [5] * 4


def test_renormalize(tmp_path, gold):
    text = lines(
        {"id": "case-0001", "probs": {"angry": 2, "sad": 2}},
        {"id": "case-0002", "probs": {"sad": 1}},
        {"id": "case-0003", "probs": {"sad": 0.33333, "happy": 0.33333, "fear": 0.33333}},  # within 1e-3
        {"id": "case-0004", "distribution": {"sad": 0.5, "happy": 0.25}},
    )
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        parse_predictions(path, gold)
    assert [p.line for p in info.value.problems] == [1, 4]
    preds = parse_predictions(path, gold, renormalize=True)
    assert preds.probs[0].tolist() == [0.5, 0, 0, 0, 0, 0.5, 0]
    assert preds.probs[2].sum() == pytest.approx(1, abs=1e-15)
    assert preds.distribution[3].tolist() == pytest.approx([0, 0, 0, 1 / 3, 0, 2 / 3, 0])
    assert preds.notes[:3] == [
        "renormalised 1 probs row(s) whose sum was off 1 by more than 0.001 (sums from 4 to 4)",
        "rescaled 1 probs row(s) summing to 1 within 0.001 (sums from 0.99999 to 0.99999)",
        "renormalised 1 distribution row(s) whose sum was off 1 by more than 0.001 (sums from 0.75 to 0.75)"]


def rounded_file(n: int, decimals: int, seed: int = 0) -> tuple[str, list[str], np.ndarray]:
    """n lines of 7-class probabilities rounded to ``decimals``, as a model writes them; (text, ids, the
    rounded values as written)."""
    rng = np.random.default_rng(seed)
    p = np.round(rng.dirichlet(np.ones(len(TAX)), size=n), decimals)
    ids = [f"utt-{i:05d}" for i in range(n)]
    text = lines(*({"id": i, "probs": dict(zip(TAX.labels, row.tolist(), strict=True))}
                   for i, row in zip(ids, p, strict=True)))
    return text, ids, p


@pytest.mark.parametrize("renormalize", [False, True])
def test_probabilities_rounded_to_4_decimals_are_accepted_and_rescaled_on_the_arrow_path(
        tmp_path, monkeypatch, renormalize):
    text, ids, p = rounded_file(2000, 4)
    sums = p.sum(1)
    assert 0 < np.abs(sums - 1).max() <= 1e-3  # rounding moved the sums, within the tolerance
    gold = make_gold(ids)
    path = write(tmp_path, text)
    assert P._parse_columnar(path.read_bytes(), gold, (), renormalize) is not None  # the fast path takes it
    fast, slow = _both_paths(path, gold, monkeypatch, renormalize=renormalize)
    assert same(fast, slow)
    np.testing.assert_allclose(fast.probs, p / sums[:, None], rtol=0, atol=1e-15)
    np.testing.assert_allclose(fast.probs.sum(1), 1, rtol=0, atol=1e-12)
    n_near = int((np.abs(sums - 1) > P.NOTE_TOL).sum())
    assert f"rescaled {n_near} probs row(s) summing to 1 within 0.001" in fast.notes[0]


def test_renormalize_stays_on_the_arrow_path(tmp_path, monkeypatch):
    text, ids, p = rounded_file(500, 2)  # 2 decimals: sums off by up to 0.035
    gold = make_gold(ids)
    path = write(tmp_path, text)
    with pytest.raises(InputError, match="--renormalize"):
        parse_predictions(path, gold)
    assert P._parse_columnar(path.read_bytes(), gold, (), False) is None
    assert P._parse_columnar(path.read_bytes(), gold, (), True) is not None
    fast, slow = _both_paths(path, gold, monkeypatch, renormalize=True)
    assert same(fast, slow)
    np.testing.assert_allclose(fast.probs, p / p.sum(1)[:, None], rtol=0, atol=1e-15)
    assert fast.notes[0].startswith("renormalised ")


def test_vad(tmp_path, gold):
    text = lines({"id": "case-0001", "valence": 3.1, "arousal": 4, "dominance": 2.2},
                 {"id": "case-0002", "valence": -1, "arousal": 0.5, "dominance": 0},
                 {"id": "case-0003", "valence": 1e300, "arousal": 0, "dominance": 0},
                 {"id": "case-0004", "label": "sad"})
    with pytest.raises(InputError, match="no 'valence'"):  # line 4 has none
        parse_predictions(write(tmp_path, text), gold, require=["valence"])
    preds = parse_predictions(write(tmp_path, text), gold)
    assert preds.vad["valence"][:3].tolist() == [3.1, -1.0, 1e300]
    assert np.isnan(preds.vad["valence"][3])
    assert preds.vad["arousal"].dtype == np.float64
    assert preds.label.tolist() == [-1, -1, -1, 5]
    assert set(preds.vad) == {"valence", "arousal", "dominance"}


def test_label_only_file_has_no_other_arrays(tmp_path, gold):
    preds = parse_predictions(write(tmp_path, GOOD), gold)
    assert preds.label.dtype == np.int64 and preds.present.dtype == bool


def test_distribution_only(tmp_path, gold):
    text = lines(*({"id": i, "distribution": {"sad": 0.25, "happy": 0.75}} for i in IDS))
    preds = parse_predictions(write(tmp_path, text), gold, require=["distribution"])
    assert preds.label is None and preds.probs is None
    assert preds.distribution[:, 3].tolist() == [0.75] * 4


# -- fast path == per-line path; never anything but InputError -----------------------------------------


PATHS = ("arrow", "orjson", "slow")
"""The parser's three paths: Arrow's reader (clean files), orjson objects checked column-wise, and per line.
``run`` switches off every path faster than the one named, so the one named (or a slower one) decides."""


def run(path, gold, slow: bool | str, **kw):
    """parse_predictions result or error text, with the paths faster than ``slow`` switched off (True:
    every fast path; False: none)."""
    mode = {True: "slow", False: "arrow"}.get(slow, slow)
    with ExitStack() as stack:
        if mode != "arrow":
            stack.enter_context(mock.patch.object(P, "_parse_columnar", lambda *a, **k: None))
        if mode == "slow":
            stack.enter_context(mock.patch.object(P, "_parse_fast", lambda lines: (None, None)))
            stack.enter_context(mock.patch.object(P, "_structure_fast", lambda objs, linenos: None))
            stack.enter_context(mock.patch.object(P, "_match_ids", P._match_ids_slow))
        try:
            return parse_predictions(path, gold, **kw)
        except InputError as e:
            return str(e)


def same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    arrays = ("label", "probs", "distribution", "present", "line")
    return (all((getattr(a, k) is None) == (getattr(b, k) is None) for k in arrays)
            and all(np.array_equal(getattr(a, k), getattr(b, k), equal_nan=True)
                    for k in arrays if getattr(a, k) is not None)
            and a.vad.keys() == b.vad.keys()
            and all(np.array_equal(a.vad[d], b.vad[d], equal_nan=True) for d in a.vad)
            and all(getattr(a, k) == getattr(b, k) for k in ("sha256", "n_lines", "missing_ids", "notes")))


SMALL_GOLD = make_gold(["a", "b", "c", "d", "e"])
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10), st.floats(-2, 2, allow_nan=False),
                         st.sampled_from(["a", "b", "sad", "Sad", "angy", "", "x" * 70, 'q":', "\\"]))
json_values = st.recursive(
    json_scalars,
    lambda c: st.one_of(st.lists(c, max_size=3),
                        st.dictionaries(st.sampled_from((*TAX.labels, "zz")), c, max_size=3)),
    max_leaves=6)
valid_probs = st.one_of(
    st.sampled_from(TAX.labels).map(lambda x: {x: 1.0}),
    st.lists(st.sampled_from(TAX.labels), min_size=2, max_size=2, unique=True).map(
        lambda xs: {xs[0]: 0.25, xs[1]: 0.75}),
    st.just(dict.fromkeys(TAX.labels, 1 / 7)),
    st.just(dict.fromkeys(TAX.labels, 0.1429)),  # rounded to 4 decimals: sums to 1.0003, accepted
    st.just(dict.fromkeys(TAX.labels[:3], 0.333)))  # sums to 0.999, at the edge of the tolerance
prob_objects = st.one_of(valid_probs, valid_probs, st.dictionaries(
    st.sampled_from(TAX.labels), st.sampled_from([0, 0.25, 0.5, 1, -0.5, 0.1, 0.2502, 0.249]), max_size=4))
valid_fields = st.fixed_dictionaries(
    {}, optional={"label": st.sampled_from(TAX.labels), "probs": prob_objects, "distribution": prob_objects,
                  "valence": st.floats(-5, 5), "arousal": st.integers(1, 7), "dominance": st.floats(0, 1)})

MUTATIONS = ("none", "drop key", "add key", "replace object", "insert bytes", "cut line", "two objects",
             "duplicate key", "duplicate nested key", "bad UTF-8 in id", "nested deep", "spaced colons",
             "escaped quote in id", "whitespace line")
"""The mutation classes of :func:`mutated_files`; each has a hand-written case in
``test_each_mutation_class_gets_one_verdict``."""


def mutate_line(draw, obj: dict, kind: str) -> bytes:
    """One JSON line from ``obj`` with one mutation of class ``kind``."""
    if kind == "drop key":
        obj.pop(draw(st.sampled_from(sorted(obj))))
    elif kind == "add key":
        key = draw(st.sampled_from(["lable", "id", "label", "probs", "valence", "model", "ID"]))
        obj[key] = draw(json_values)
    elif kind == "replace object":
        obj = draw(json_values)
    elif kind == "bad UTF-8 in id" and type(obj) is dict and type(obj.get("id")) is str:
        return orjson.dumps(obj).replace(obj["id"].encode(), obj["id"].encode() + draw(
            st.sampled_from([b"\xff", b"\x80", b"\xc3", b"\xed\xa0\x80"])), 1)
    elif kind == "nested deep":
        depth = draw(st.sampled_from([3, 300, 1100]))
        obj[draw(st.sampled_from(["label", "valence", "probs", "zz"]))] = "@DEEP@"
        return orjson.dumps(obj).replace(b'"@DEEP@"', b"[" * depth + b"]" * depth)
    elif kind == "escaped quote in id" and "id" in obj:
        obj["id"] = str(obj["id"]) + '\":'
    line = orjson.dumps(obj)
    if kind == "insert bytes" and line:
        i = draw(st.integers(0, len(line)))
        line = line[:i] + draw(st.binary(max_size=3)) + line[i:]
    elif kind == "cut line":
        line = line[:draw(st.integers(0, len(line)))]
    elif kind == "two objects":
        line += draw(st.sampled_from([b"", b" "])) + orjson.dumps(draw(valid_fields) | {"id": "a"})
    elif kind == "duplicate key" and line.startswith(b"{") and len(line) > 2:
        key = draw(st.sampled_from(["id", "label", "probs", "valence"]))
        line = b"{" + orjson.dumps(key) + b":" + orjson.dumps(draw(json_values)) + b"," + line[1:]
    elif kind == "duplicate nested key" and b'"probs":{"' in line:
        label = draw(st.sampled_from(TAX.labels)).encode()
        line = line.replace(b'"probs":{', b'"probs":{"' + label + b'":0.5,', 1)
    elif kind == "spaced colons":
        line = line.replace(b'":', b'" :')
    return line


@st.composite
def mutated_files(draw) -> bytes:
    """JSON lines built from valid objects (ids of SMALL_GOLD, any order, some left out), a few of them
    mutated (one of :data:`MUTATIONS` each). Half of the files start clean (every id once, one key set,
    LF line ends) so that Arrow's path is tried on them, and get at most one mutation."""
    clean = draw(st.booleans())
    ids = draw(st.permutations(SMALL_GOLD.ids.tolist()))
    if not clean:
        ids = ids[:draw(st.integers(0, 5))]
        if ids and draw(st.integers(0, 4)) == 0:
            ids.insert(draw(st.integers(0, len(ids))), draw(st.sampled_from(ids)))  # a duplicate
    shared = draw(valid_fields)  # most files repeat one key set (the fast path), some vary it
    if not shared:
        shared = {"label": "sad"}
    target = draw(st.integers(0, len(ids) - 1)) if ids else -1
    out = []
    for r, id_ in enumerate(ids):
        obj = {"id": id_, **(dict(shared) if clean or draw(st.booleans()) else draw(valid_fields))}
        if len(obj) == 1:
            obj["label"] = "sad"
        if clean:
            kind = draw(st.sampled_from(MUTATIONS)) if r == target else "none"
            out.append(mutate_line(draw, obj, kind) + (b" \n" if kind == "whitespace line" else b"") + b"\n")
        else:
            kind = draw(st.sampled_from(MUTATIONS + ("none",) * 8))
            out.append(mutate_line(draw, obj, kind)
                       + draw(st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\n \n"])))
    data = b"".join(out)
    if clean and data and draw(st.booleans()):
        data = data[:-1]  # no final newline
    if not clean and draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 3)) == 0:
        data = gzip.compress(data)
        if not clean and draw(st.booleans()):
            data = data[:draw(st.integers(0, len(data)))]
    return data


SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes_give_input_error_or_predictions(tmp_path, data):
    path = write(tmp_path, data)
    try:
        result = parse_predictions(path, SMALL_GOLD, allow_missing=True)
    except InputError:
        return
    assert isinstance(result, Predictions)


@SETTINGS
@given(data=mutated_files(), renormalize=st.booleans(), allow_missing=st.booleans(),
       require=st.sampled_from([(), ("label",), ("distribution",), ("valence", "arousal", "dominance")]))
def test_mutated_files_all_paths_agree(tmp_path, data, renormalize, allow_missing, require):
    """One verdict: Arrow, orjson-columnwise and per-line give the same result or the same error text."""
    path = write(tmp_path, data)
    kw = {"renormalize": renormalize, "allow_missing": allow_missing, "require": require}
    results = [run(path, SMALL_GOLD, mode, **kw) for mode in PATHS]
    assert same(results[0], results[2]) and same(results[1], results[2]), results
    fast = results[0]
    if not isinstance(fast, str):
        assert fast.label is None or fast.label.shape == (5,)
        assert fast.present.sum() + len(fast.missing_ids) == 5
        assert (fast.line[fast.present] > 0).all() and (fast.line[~fast.present] == 0).all()


@SETTINGS
@given(order=st.permutations(range(5)), with_probs=st.booleans())
def test_valid_files_in_any_order(tmp_path, order, with_probs):
    ids = SMALL_GOLD.ids.tolist()
    objs = [{"id": ids[i], "label": TAX.labels[i]} for i in order]
    if with_probs:
        for o in objs:
            o["probs"] = {o["label"]: 1.0}
    path = write(tmp_path, lines(*objs))
    preds = parse_predictions(path, SMALL_GOLD, require=["label"])
    assert preds.label.tolist() == [0, 1, 2, 3, 4]
    assert same(preds, run(path, SMALL_GOLD, True, require=["label"]))


# -- the columnar (Arrow) path must agree with the line-by-line path ------------------------------------


def _both_paths(path, gold, monkeypatch, **kw):
    import casebench.predictions as P

    fast = P.parse_predictions(path, gold, **kw)
    with monkeypatch.context() as m:
        m.setattr(P, "_parse_columnar", lambda *a, **k: None)
        slow = P.parse_predictions(path, gold, **kw)
    return fast, slow


@pytest.mark.parametrize("shuffle", [False, True])
def test_columnar_path_equals_line_path(tmp_path, monkeypatch, shuffle):
    import casebench.predictions as P
    from casebench.benchmarks import get_benchmark

    bench = get_benchmark("casebench-mini")
    gold = bench.load_gold()
    lines = (bench.gold_path.parent / "examples" / "voice-model.jsonl").read_text().splitlines()
    if shuffle:
        np.random.default_rng(0).shuffle(lines)
    p = tmp_path / "p.jsonl"
    p.write_text("\n".join(lines) + "\n")
    assert P._parse_columnar(p.read_bytes(), gold, ()) is not None  # the clean file does take the Arrow path
    fast, slow = _both_paths(p, gold, monkeypatch)
    for name in ("label", "probs", "distribution", "present"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
    assert fast.vad.keys() == slow.vad.keys()
    for d in fast.vad:
        np.testing.assert_array_equal(fast.vad[d], slow.vad[d])
    assert fast.notes == slow.notes and fast.sha256 == slow.sha256 and fast.n_lines == slow.n_lines


@pytest.mark.parametrize("mutate", [
    lambda s: s.replace('"label": "sad"', '"label": "Sad"', 1),                      # unknown label
    lambda s: s.replace('"valence": ', '"valence": NaN, "x": ', 1),                  # Arrow accepts NaN
    lambda s: s.replace("}\n", "}{\"id\": \"mini-0000\", \"label\": \"sad\"}\n", 1),  # two objects on a line
    lambda s: s.replace('"angry": ', '"angry": -', 1),                               # negative probability
    lambda s: s.replace("\n", "\n\n", 1),                                            # a blank line
    lambda s: s.replace('"label": "sad"', '"label": null', 1),                       # null
])
def test_columnar_path_steps_aside_for_anything_unusual(tmp_path, mutate):
    import casebench.predictions as P
    from casebench.benchmarks import get_benchmark

    bench = get_benchmark("casebench-mini")
    gold = bench.load_gold()
    text = (bench.gold_path.parent / "examples" / "voice-model.jsonl").read_text()
    p = tmp_path / "p.jsonl"
    p.write_text(mutate(text))
    assert P._parse_columnar(p.read_bytes(), gold, ()) is None


def _mini():
    from casebench.benchmarks import get_benchmark

    bench = get_benchmark("casebench-mini")
    return bench.load_gold(), (bench.gold_path.parent / "examples" / "voice-model.jsonl").read_bytes()


def _mixed(text: bytes) -> bytes:
    """Lines in turn with only a label, only a distribution, only V/A/D."""
    out = []
    for i, raw in enumerate(text.splitlines()):
        o = orjson.loads(raw)
        keep = [("label",), ("probs",), ("valence", "arousal", "dominance")][i % 3]
        out.append(orjson.dumps({"id": o["id"], **{k: o[k] for k in keep}}))
    return b"\n".join(out) + b"\n"


# (mutation class, mutate the mini benchmark's voice-model file, line named, fragment of the message)
ONE_VERDICT = [
    ("two objects", lambda t: t.replace(b"}\n", b'} {"id": "mini-0000", "label": "sad"}\n', 1), 1,
     "own line"),
    ("two objects and a blank line", lambda t: t.replace(b"}\n", b'}{"id": "mini-0000", "label": "sad"}\n \n', 1),
     1, "own line"),
    ("duplicate key", lambda t: t.replace(b'"label": ', b'"label": "sad", "label": ', 1), 1,
     "field 'label': duplicate key 'label'"),
    ("duplicate key on every line", lambda t: t.replace(b'"label": ', b'"label": "sad", "label": '), 1,
     "duplicate key 'label'"),
    ("duplicate nested key", lambda t: t.replace(b'"sad": ', b'"sad": 0.5, "sad": ', 1), 1,
     "field 'probs.sad': duplicate key 'sad'"),
    ("bad UTF-8 in id", lambda t: t.replace(b'"mini-0007"', b'"mini-\xff0007"', 1), 8, "not valid UTF-8"),
    ("nested 300 deep", lambda t: t.replace(b'"valence": 4.66', b'"valence": ' + b"[" * 300 + b"]" * 300, 1), 1,
     "field 'valence': a list [[[["),
    ("nested 2000 deep", lambda t: t.replace(b'"valence": 4.66', b'"valence": ' + b"[" * 2000 + b"]" * 2000, 1),
     1, "invalid JSON"),
    ("mixed label, distribution and V/A/D lines", _mixed, 1, "no prediction for the distribution task"),
]


@pytest.mark.parametrize(("mutate", "line", "fragment"), [pytest.param(*c[1:], id=c[0]) for c in ONE_VERDICT])
def test_each_mutation_class_gets_one_verdict(tmp_path, mutate, line, fragment):
    """Each mutation class of the issue: Arrow's path declines it, all three paths give the same error, and
    the error names the line (through ``evaluate`` for the mixed file, whose fields are each valid)."""
    from casebench.benchmarks import get_benchmark
    from casebench.evaluate import evaluate

    gold, text = _mini()
    data = mutate(text)
    path = write(tmp_path, data)
    assert P._parse_columnar(data, gold, ()) is None
    results = [run(path, gold, mode) for mode in PATHS]
    assert same(results[0], results[1]) and same(results[1], results[2])
    if isinstance(results[0], str):
        message = results[0]
    else:  # every line is valid on its own: the scored tasks need fields some lines lack
        with pytest.raises(InputError) as info:
            evaluate(path, get_benchmark("casebench-mini"), n_boot=0, with_baselines=False)
        message = str(info.value)
    named = [m for m in message.splitlines() if re.match(rf"  {re.escape(str(path))}:\d+: ", m)]
    assert named[0].startswith(f"  {path}:{line}: ") and fragment in named[0], message
