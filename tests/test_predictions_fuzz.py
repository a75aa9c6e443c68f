"""Fuzz test of the predictions parser through the real command line (issue 13): 3,000 seeded mutations of a
valid predictions file go through ``casebench evaluate`` (``casebench.cli.main`` in-process, plus a few real
subprocesses). For every file: no traceback (exit code 0 or 2 only); a refusal names the file, and the line
the reference validator below finds first; an accepted file is one the reference accepts, and scores the
accuracy and RMSE the reference computes.

The reference validator is written here from the format's documentation (docs/scoring.md and the
``casebench.predictions`` docstring), with the standard library's ``json`` and nothing of casebench: simple
enough to check by reading.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from casebench.cli import main
from casebench.taxonomy import get_taxonomy

LABELS = list(get_taxonomy("ekman7").labels)
DIMS = ("valence", "arousal", "dominance")
FIELDS = ("label", "probs", "distribution", *DIMS)
N_ITEMS = 12
N_CASES = int(__import__("os").environ.get("FUZZ_CASES", 3000))
SUM_TOL = 1e-3


# -- the reference validator ---------------------------------------------------------------------------------


class _Bad(Exception):
    pass


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _Bad("duplicate key")
    return dict(pairs)


def _no_constants(name):
    raise _Bad(f"{name} is not JSON")


def _strings_are_unicode(v) -> bool:
    """JSON allows the escape of a lone surrogate; a Unicode string cannot hold one (nor can UTF-8)."""
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(x, dict):
            stack += [*x.keys(), *x.values()]
        elif isinstance(x, list):
            stack += x
    return True


def _number(v) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _row(v) -> list[float] | None:
    """A probs/distribution object as a row in taxonomy order, divided by its sum; None when invalid."""
    if type(v) is not dict or any(k not in LABELS or not _number(x) or x < 0 for k, x in v.items()):
        return None
    row = [float(v.get(label, 0.0)) for label in LABELS]
    total = sum(row)
    if total == 0 or abs(total - 1) > SUM_TOL:
        return None
    return [x / total for x in row]


def reference(data: bytes, gold_ids: list[str]):
    """``("ok", {id: object})`` or ``("bad", first bad line)`` (0 for a file-level problem); ``("edge", None)``
    for a row summing within 1e-9 of the tolerance, where the last bit of rounding decides."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    bad: list[int] = []
    objects: dict[str, tuple[int, dict]] = {}
    edge = False
    for n, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        except (UnicodeDecodeError, ValueError, RecursionError, _Bad):
            bad.append(n)
            continue
        if type(obj) is not dict or not _strings_are_unicode(obj) or set(obj) - {"id", *FIELDS}:
            bad.append(n)
            continue
        oid = obj.get("id")
        if type(oid) is not str or oid not in gold_ids or oid in objects or not set(obj) & set(FIELDS):
            bad.append(n)
            continue
        ok = ("label" not in obj or obj["label"] in LABELS) and all(_number(obj[d]) for d in DIMS if d in obj)
        for f in ("probs", "distribution"):
            if f in obj:
                ok &= _row(obj[f]) is not None
                if type(obj[f]) is dict and all(_number(x) for x in obj[f].values()):
                    edge |= abs(abs(sum(float(obj[f].get(k, 0.0)) for k in LABELS) - 1) - SUM_TOL) < 1e-9
        if not ok:
            bad.append(n)
            continue
        objects[oid] = (n, obj)
    if edge:
        return "edge", None
    if bad:
        return "bad", bad[0]
    if set(objects) != set(gold_ids):
        return "bad", 0
    # a task is scored when any line carries its fields; then every line must
    needs = {"categorical": ("label", "probs"), "distribution": ("distribution", "probs"), "dimensional": DIMS}
    uncovered = []
    for fields in needs.values():
        if any(f in o for _, o in objects.values() for f in fields):
            full = all if fields is DIMS else any
            uncovered += [n for n, o in objects.values() if not full(f in o for f in fields)]
    if uncovered:
        return "bad", min(uncovered)
    return "ok", {k: o for k, (_, o) in objects.items()}


def reference_scores(objects: dict[str, dict], gold: pd.DataFrame) -> dict:
    """Accuracy (label, else the first argmax of probs) and RMSE (mean over dimensions), over all items."""
    out = {}
    if any("label" in o or "probs" in o for o in objects.values()):
        hits = []
        for gid, truth in zip(gold["id"], gold["acoustic_label"], strict=True):
            o = objects[gid]
            if "label" in o:
                pred = o["label"]
            else:
                row = _row(o["probs"])
                pred = LABELS[row.index(max(row))]
            hits.append(pred == truth)
        out["accuracy"] = sum(hits) / len(hits)
    if any(d in o for o in objects.values() for d in DIMS):
        per_dim = []
        for d in DIMS:
            errors = [(objects[gid][d] - g) ** 2 for gid, g in zip(gold["id"], gold[d], strict=True)]
            per_dim.append(math.sqrt(sum(errors) / len(errors)))
        out["rmse"] = sum(per_dim) / len(per_dim)
    return out


# -- the mutations -------------------------------------------------------------------------------------------


def _dumps(obj, rng: random.Random) -> bytes:
    seps = rng.choice([(", ", ": "), (",", ":"), (" , ", " : ")])  # spaced colons are valid JSON
    return json.dumps(obj, separators=seps).encode()


def _some_line(lines: list[bytes], rng: random.Random) -> int:
    return rng.randrange(len(lines)) if lines else 0


def mutate(lines: list[bytes], rng: random.Random) -> list[bytes]:  # noqa: C901 - one branch per mutation
    """One mutation of a file given as its lines (without line ends)."""
    lines = list(lines)
    if not lines:
        return [b'{"id": "x"}']
    i = _some_line(lines, rng)
    kind = rng.randrange(22)
    try:
        obj = json.loads(lines[i])
    except (ValueError, RecursionError):
        obj = None
    if kind == 0:
        del lines[i]
    elif kind == 1:
        lines.insert(i, lines[i])
    elif kind == 2:
        j = _some_line(lines, rng)
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == 3:
        lines[i] += rng.choice([b"", b" "]) + lines[_some_line(lines, rng)]
    elif kind == 4 and isinstance(obj, dict):  # a key given twice, at the top or inside probs
        key = rng.choice(["id", "label", "probs", "valence", "zz"])
        text = lines[i]
        if rng.random() < 0.5 and b'"probs": {' in text:
            text = text.replace(b'"probs": {', b'"probs": {"' + rng.choice(LABELS).encode() + b'": 0.5, ', 1)
        else:
            text = b"{" + json.dumps(key).encode() + b": " + json.dumps(rng.choice(["sad", 1, None])).encode() \
                + b", " + text[1:]
        lines[i] = text
    elif kind == 5:  # an invalid UTF-8 byte, inside the id or anywhere
        bad = rng.choice([b"\xff", b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xe2\x82"])
        if b'"mini-' in lines[i] and rng.random() < 0.7:
            lines[i] = lines[i].replace(b'"mini-', b'"mini-' + bad, 1)
        else:
            p = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:p] + bad + lines[i][p:]
    elif kind == 6 and isinstance(obj, dict):  # a value nested deep
        depth = rng.choice([2, 40, 300, 1100])
        obj[rng.choice(["label", "valence", "probs", "id"])] = "@DEEP@"
        lines[i] = _dumps(obj, rng).replace(b'"@DEEP@"', b"[" * depth + b"]" * depth)
    elif kind == 7 and isinstance(obj, dict):  # mixed lines: keep only some fields
        keep = rng.choice([("label",), ("probs",), DIMS, ("label", *DIMS), ("distribution",), ("valence",)])
        lines[i] = _dumps({"id": obj.get("id"), **{k: obj[k] for k in keep if k in obj}}, rng)
    elif kind == 8 and isinstance(obj, dict):
        obj["label"] = rng.choice(["Sad", "angy", "sad ", 3, True, None, "", ["sad"], {"sad": 1}, "neutral"])
        lines[i] = _dumps(obj, rng)
    elif kind == 9:  # round every line's probabilities (4 decimals: accepted; 2 or 1: mostly refused)
        decimals = rng.choice([4, 4, 2, 1])
        for j, raw in enumerate(lines):
            try:
                o = json.loads(raw)
                o["probs"] = {k: round(v, decimals) for k, v in o["probs"].items()}
                lines[j] = _dumps(o, rng)
            except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
                pass
    elif kind == 10 and isinstance(obj, dict) and isinstance(obj.get("probs"), dict):
        label = rng.choice(LABELS)
        obj["probs"][label] = rng.choice([-0.1, "0.1", True, None, 1e309, 0, 2, [0.1]])
        text = _dumps(obj, rng)
        lines[i] = text.replace(b"Infinity", rng.choice([b"Infinity", b"NaN", b"1e999"]))
    elif kind == 11:  # random bytes changed, inserted or deleted
        text = bytearray(lines[i])
        for _ in range(rng.randint(1, 3)):
            p = rng.randrange(len(text) + 1)
            op = rng.randrange(3)
            if op == 0 and p < len(text):
                text[p] = rng.randrange(256)
            elif op == 1:
                text[p:p] = bytes([rng.randrange(256)])
            elif p < len(text):
                del text[p]
        lines[i] = bytes(text)
    elif kind == 12:  # cut the file short
        flat = b"\n".join(lines)
        return flat[:rng.randrange(len(flat) + 1)].split(b"\n")
    elif kind == 13:  # line ends and blank lines (valid)
        lines[i] += rng.choice([b"\r", b"\n", b"\n   ", b"\n\t\n"])
    elif kind == 14 and isinstance(obj, dict):
        obj[rng.choice(["lable", "clip_id", "model", "split", "ID", "scores"])] = "x"
        lines[i] = _dumps(obj, rng)
    elif kind == 15 and isinstance(obj, dict):
        obj["id"] = rng.choice([str(obj.get("id")).upper(), "mini-9999", "", " ", 7, None, f"{obj.get('id')}.wav"])
        lines[i] = _dumps(obj, rng)
    elif kind == 16 and isinstance(obj, dict):
        obj[rng.choice(FIELDS)] = None
        lines[i] = _dumps(obj, rng)
    elif kind == 17 and isinstance(obj, dict):  # the same object, written another way (valid)
        lines[i] = _dumps(obj, rng)
    elif kind == 18 and isinstance(obj, dict):
        obj.pop(rng.choice(list(obj)))
        lines[i] = _dumps(obj, rng)
    elif kind == 19:
        lines.insert(i, rng.choice([b" ", b"", b"{}", b"[]", b'"mini-0000"', b'{"model": "x", "version": 2}']))
    elif kind == 20 and isinstance(obj, dict) and isinstance(obj.get("probs"), dict):  # a sum off 1 a little
        obj["probs"][rng.choice(LABELS)] = obj["probs"].get(LABELS[0], 0) + rng.choice([0.0004, 0.002, -0.0003])
        lines[i] = _dumps(obj, rng)
    elif kind == 21 and isinstance(obj, dict):  # escapes: the same string written with \u escapes (valid)
        lines[i] = _dumps(obj, rng).replace(b"mini-", b"mini\\u002d", 1).replace(b'"sad"', b'"s\\u0061d"', 1)
    return lines


def mutated(base: list[bytes], seed: int) -> bytes:
    rng = random.Random(seed)
    lines = base
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        lines = mutate(lines, rng)
    data = b"\n".join(lines) + (b"\n" if rng.random() < 0.8 else b"")
    if rng.random() < 0.05:
        data = b"\xef\xbb\xbf" + data
    return data


# -- the benchmark and the run -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The first 12 items of casebench-mini as a benchmark of its own, and the voice model's lines for them."""
    from casebench.benchmarks import get_benchmark

    mini = get_benchmark("casebench-mini")
    root = tmp_path_factory.mktemp("fuzz")
    gold = pd.read_csv(mini.gold_path).head(N_ITEMS)
    gold.to_csv(root / "gold.csv", index=False)
    spec = {"name": "fuzz", "version": "1", "taxonomy": "ekman7", "gold": "gold.csv",
            "tasks": [{"name": "emotion", "kind": "categorical", "main_metric": "macro_f1"},
                      {"name": "distribution", "kind": "distribution", "main_metric": "js"},
                      {"name": "dimensional", "kind": "dimensional", "main_metric": "ccc"}],
            "splits": ["all", "conflict", "congruent"]}
    (root / "fuzz.yaml").write_text(yaml.safe_dump(spec))
    lines = (mini.gold_path.parent / "examples" / "voice-model.jsonl").read_bytes().splitlines()[:N_ITEMS]
    assert [json.loads(x)["id"] for x in lines] == gold["id"].tolist()
    return root, gold, lines


def run_cli(path: Path, spec: Path, capsys) -> tuple[int, dict]:
    rc = main(["evaluate", str(path), "--benchmark", str(spec), "--bootstrap", "0", "--json"])
    out = capsys.readouterr()
    return rc, json.loads(out.out) if out.out.strip() else {"stderr": out.err}


def check(data: bytes, path: Path, rc: int, out: dict, gold: pd.DataFrame, counts: dict) -> None:
    verdict, detail = reference(data, gold["id"].tolist())
    counts[verdict] = counts.get(verdict, 0) + 1
    assert rc in (0, 2), rc
    if verdict == "edge":
        return
    if verdict == "bad":
        assert rc == 2, f"accepted a file the reference refuses (line {detail})"
        problems = out["problems"]
        assert all(p["file"] == str(path) for p in problems), problems
        named = sorted(p["line"] for p in problems if p.get("line") is not None)
        if detail:  # the reference's first bad line is named, and no line before it
            assert named and named[0] == detail, (detail, problems[:5])
        else:  # file-level (missing items): named without a line
            assert not named and problems, problems
        return
    assert rc == 0, f"refused a file the reference accepts: {out}"
    expected = reference_scores(detail, gold)
    for metric, value in expected.items():
        got = out["splits"]["all"][metric]["value"]
        big = metric == "rmse" and any(abs(o.get(d, 0)) > 1e6 for o in detail.values() for d in DIMS)
        if not big:  # moments of huge values lose precision; the verdict above still holds
            assert got == pytest.approx(value, rel=1e-9, abs=1e-12), (metric, got, value)


@pytest.mark.slow  # about a minute: 3,000 evaluate runs
def test_3000_seeded_mutations_through_the_cli(bench, tmp_path, capsys):
    root, gold, base = bench
    spec = root / "fuzz.yaml"
    counts: dict[str, int] = {}
    for seed in range(N_CASES):
        data = mutated(base, seed)
        path = tmp_path / f"p{seed % 10}.jsonl"
        path.write_bytes(data)
        rc, out = run_cli(path, spec, capsys)
        try:
            check(data, path, rc, out, gold, counts)
        except AssertionError as e:
            raise AssertionError(f"seed {seed}: {e}\nfile: {data[:2000]!r}") from None
    # the mutations reach both verdicts (and the edge of the tolerance stays rare)
    assert counts["ok"] > 300 and counts["bad"] > 1500 and counts.get("edge", 0) < 30, counts


def test_the_unmutated_file_scores_as_the_reference_says(bench, tmp_path, capsys):
    root, gold, base = bench
    path = tmp_path / "p.jsonl"
    data = b"\n".join(base) + b"\n"
    path.write_bytes(data)
    rc, out = run_cli(path, root / "fuzz.yaml", capsys)
    counts: dict[str, int] = {}
    check(data, path, rc, out, gold, counts)
    assert counts == {"ok": 1}


@pytest.mark.parametrize("seed", [3, 4, 5, 6, 7, 9])  # two objects, duplicate key, bad UTF-8, deep, mixed, rounded
def test_real_processes(bench, tmp_path, seed):
    """A few mutations through a real `python -m casebench evaluate` process: exit 0 or 2, never a
    traceback, and the same verdict as the reference."""
    root, gold, base = bench
    rng = random.Random(seed)
    data = b"\n".join(mutate(base, _Forced(rng, seed))) + b"\n"
    path = tmp_path / "p.jsonl"
    path.write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "casebench", "evaluate", str(path), "--benchmark",
                           str(root / "fuzz.yaml"), "--bootstrap", "0", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout) if proc.stdout.strip() else {}
    counts: dict[str, int] = {}
    check(data, path, proc.returncode, out, gold, counts)


class _Forced(random.Random):
    """A Random whose first ``randrange(22)`` (the mutation kind) returns ``kind``."""

    def __init__(self, rng: random.Random, kind: int):
        super().__init__(rng.random())
        self._kind = kind

    def randrange(self, *args, **kwargs):
        if args == (22,) and self._kind is not None:
            kind, self._kind = self._kind, None
            return kind
        return super().randrange(*args, **kwargs)


def test_reference_validator_agrees_with_the_documented_examples():
    """The reference itself, on a few hand-written lines (so that a bug there cannot hide one in casebench)."""
    ids = ["a", "b"]
    ok = b'{"id": "a", "label": "sad"}\n{"id": "b", "label": "happy"}\n'
    assert reference(ok, ids)[0] == "ok"
    assert reference(ok.replace(b'"sad"}', b'"sad", "label": "sad"}'), ids) == ("bad", 1)
    assert reference(ok.replace(b"}\n{", b"}{"), ids) == ("bad", 1)
    assert reference(ok.replace(b'"b"', b'"\xff"'), ids) == ("bad", 2)
    assert reference(b'{"id": "a", "probs": {"sad": 0.5, "happy": 0.5004}}\n{"id": "b", "label": "sad"}', ids) == \
        ("bad", 2)  # the second line has no probs: the distribution task is scored and uncovered
    assert reference(b'{"id": "a", "probs": {"sad": 0.5, "happy": 0.5004}}\n{"id": "b", "probs": {"sad": 1}}',
                     ids)[0] == "ok"
    assert reference(b'{"id": "a", "probs": {"sad": 0.5, "happy": 0.502}}\n{"id": "b", "probs": {"sad": 1}}',
                     ids) == ("bad", 1)
    assert reference(b'{"id": "a", "label": "sad"}\n', ids) == ("bad", 0)
    assert reference(b'{"id": "a", "valence": 1e999, "label": "sad"}\n', ids) == ("bad", 1)
    assert np.isclose(reference_scores({"a": {"probs": {"sad": 0.5, "happy": 0.5}}, "b": {"label": "sad"}},
                                       pd.DataFrame({"id": ids, "acoustic_label": ["happy", "sad"]}))["accuracy"],
                      1.0)
