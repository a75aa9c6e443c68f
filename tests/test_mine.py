"""casebench.mine + casebench.text_emotion: natural conflicts mined from imported corpus trees
(casebench.corpora.testing) with known transcripts; the lexicon over every shipped taxonomy; the llm source
against a local OpenAI-compatible chat server (errors included); the ratings source; the CLI."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from casebench.cli import main
from casebench.corpora import CORPORA, import_corpus
from casebench.corpora.testing import make_crema_d, make_emis, make_iemocap, make_ravdess
from casebench.errors import ConfigError, InputError
from casebench.mine import conflict_tag, mine_conflicts, tag_clips
from casebench.taxonomy import get_taxonomy, list_taxonomies
from casebench.testing import JsonApiHandler, local_http_server
from casebench.text_emotion import WordsLabel, lexicon_for, lexicon_label
from casebench.workspace import Workspace

# Known transcripts for the IEMOCAP tree's labelled utterances, and the tag each must get in ekman7
# (the tree's voice labels: F000 neu, M000 exc -> happy, Ses02 F000 ang, M003 hap, M004 sur).
KNOWN = {
    "Ses01F_impro01_F000": ("I am so furious, you lied to me again", "words-only emotion"),
    "Ses01F_impro01_M000": ("My grandmother died and I cried at the funeral", "conflict"),
    "Ses02M_script01_2_F000": ("This is unacceptable, how dare you", "congruent"),
    "Ses02M_script01_2_M003": ("The meeting is at noon on Tuesday", "voice-only emotion"),
    "Ses02M_script01_2_M004": ("I hate this stupid broken printer", "conflict"),
}


def _iemocap_with_transcripts(root):
    rel = make_iemocap(root / "IEMOCAP")
    for path in rel.glob("Session*/dialog/transcriptions/*.txt"):
        lines = []
        for line in path.read_text("utf-8").splitlines():
            utt = line.split(" ", 1)[0]
            if utt in KNOWN:
                line = re.sub(r": .*$", f": {KNOWN[utt][0]}", line)
            lines.append(line)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rel


@pytest.fixture()
def iemocap_ws(tmp_path):
    import_corpus("iemocap", _iemocap_with_transcripts(tmp_path), tmp_path / "iemocap-ws", taxonomy="ekman7")
    return Workspace.open(tmp_path / "iemocap-ws")


def test_conflict_tags_from_known_transcripts(iemocap_ws):
    report = mine_conflicts(iemocap_ws, text_emotion="lexicon")
    labels = iemocap_ws.read_df("labels").set_index("clip_id")
    for utt, (_, tag) in KNOWN.items():
        row = labels.loc[f"iemocap-{utt}"]
        assert row.meta_conflict_tag == tag, (utt, row.meta_words_emotion, row.meta_words_evidence)
        assert row.is_conflict == (tag == "conflict")
    m000 = labels.loc["iemocap-Ses01F_impro01_M000"]
    assert m000.conflict_type == "happy-voice/sad-words" and m000.semantic_label == "sad"
    assert 0.4 <= m000.meta_conflict_confidence <= 1 and m000.meta_words_evidence == "matches sad 3"
    assert report["tags"]["conflict"] == 2 and report["n_conflict"] == 2
    assert report["conflict_types"] == {"happy-voice/sad-words": 1, "surprise-voice/angry-words": 1}
    assert report["texts"].startswith("transcripts (corpus:iemocap)")
    assert "not derived from the NRC" in report["words"]["about"]
    # a higher bar leaves the weaker calls undecided instead of guessing
    strict = mine_conflicts(iemocap_ws, text_emotion="lexicon", min_confidence=0.7)
    assert strict["n_conflict"] == 1
    labels = iemocap_ws.read_df("labels").set_index("clip_id")
    assert pd.isna(labels.loc["iemocap-Ses02M_script01_2_M004", "is_conflict"])


def test_the_english_lexicon_leaves_other_languages_undetermined(iemocap_ws):
    """The lexicon found no English word in a Mandarin transcript and called its words neutral: a happy voice
    over Chinese words about anything was tagged "voice-only emotion" (decided, not a conflict)."""
    cid = "iemocap-Ses02M_script01_2_M003"
    clips = iemocap_ws.read_df("clips")
    clips["language"] = ["zh" if c == cid else "en" for c in clips["clip_id"]]
    iemocap_ws.write_table("clips", clips)
    tx = iemocap_ws.read_df("transcripts")
    tx.loc[tx["clip_id"] == cid, "text"] = "我的奶奶去世了，我在葬礼上哭了"  # sad words under a happy voice
    iemocap_ws.write_table("transcripts", tx)
    report = mine_conflicts(iemocap_ws, text_emotion="lexicon")
    row = iemocap_ws.read_df("labels").set_index("clip_id").loc[cid]
    assert row.meta_conflict_tag == "undetermined" and pd.isna(row.is_conflict)
    assert row.meta_words_evidence.startswith("not English (zh)")
    assert any("1 clip(s) are not in English ({'zh': 1})" in n and "llm:MODEL@URL" in n for n in report["notes"])
    assert report["tags"]["conflict"] == 2  # the English clips are tagged as before


@pytest.mark.parametrize("corpus, make", [("crema-d", make_crema_d), ("ravdess", make_ravdess)])
def test_fixed_sentence_corpora_are_voice_only_not_conflict(tmp_path, corpus, make):
    assert CORPORA[corpus].FIXED_SENTENCES
    import_corpus(corpus, make(tmp_path / corpus), tmp_path / "ws", taxonomy="ekman7")
    ws = Workspace.open(tmp_path / "ws")
    report = mine_conflicts(ws)
    labels = ws.read_df("labels")
    assert report["fixed_sentences"] and report["n_conflict"] == 0 and report["tags"]["conflict"] == 0
    emotional = labels.acoustic_label != "neutral"
    assert (labels.loc[emotional, "meta_conflict_tag"] == "voice-only emotion").all()
    assert (labels.loc[~emotional, "meta_conflict_tag"] == "no emotion").all()
    assert (labels.semantic_label == "neutral").all() and not labels.is_conflict.any()


def test_corpus_words_labels_are_kept_and_compared(tmp_path):
    import_corpus("emis", make_emis(tmp_path / "emis"), tmp_path / "ws", taxonomy="ekman7")
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(InputError, match="no clip has a text"):
        mine_conflicts(ws)  # EMIS file names carry no text: transcribe first
    before = ws.read_df("labels").set_index("clip_id")
    clips = ws.read_df("clips")
    text = "I miss her so much, I cried all night"
    ws.write_table("transcripts", pd.DataFrame({"clip_id": clips.clip_id, "text": text}))
    report = mine_conflicts(ws)
    after = ws.read_df("labels").set_index("clip_id")
    assert (after.semantic_label.fillna("-") == before.semantic_label.fillna("-")).all()  # the corpus's own kept
    assert (after.meta_words_emotion == "sad").all()
    agree = report["agreement_with_corpus_words_labels"]
    assert agree["n"] == int(before.semantic_label.notna().sum())
    assert agree["share_equal"] == round(float((before.semantic_label.dropna() == "sad").mean()), 4)


def test_lexicon_covers_every_shipped_taxonomy():
    for name in list_taxonomies():
        lex = lexicon_for(name)
        assert lex.classes == get_taxonomy(name).labels
        empty = [c for c, e in lex.entries.items() if not e and c != "neutral"]
        assert not empty, (name, empty)
    plutchik = lexicon_for("plutchik32")
    assert lexicon_label(plutchik, "I was furious, absolutely livid").label == "rage"
    assert lexicon_label(plutchik, "I was angry and mad").label == "anger"
    assert lexicon_label(plutchik, "The bus leaves at ten").label is None  # no neutral class: undetermined
    assert lexicon_label(lexicon_for("iemocap9"), "I'm so fed up, nothing works").label == "frustrated"
    assert lexicon_label(lexicon_for("ravdess8"), "Relax, everything is peaceful").label == "calm"
    assert lexicon_label(lexicon_for("msp8"), "What a pathetic loser").label == "contempt"


def test_tag_core():
    assert conflict_tag("angry", "sad", neutral=None) == "conflict"
    out = tag_clips({"a": "angry", "b": "angry"}, {"a": WordsLabel("sad", 0.9), "b": WordsLabel("sad", 0.3)},
                    {"a": 0.5, "b": 1.0})
    assert out["a"] == {"tag": "conflict", "confidence": 0.45, "is_conflict": True,
                        "conflict_type": "angry-voice/sad-words"}
    assert out["b"]["is_conflict"] is None and out["b"]["tag"] == "conflict"


# ----- llm: a local OpenAI-compatible chat server


class _Chat(JsonApiHandler):
    requests: list = []

    def do_POST(self):
        body = self.read_json()
        self.requests.append(body)
        if body["model"] == "down":
            code, out = 503, {"error": {"message": "overloaded"}}
        else:
            text = re.search(r'Utterance: "(.*)"', body["messages"][-1]["content"]).group(1)
            emotion = ("jealous" if "printer" in text and body["model"] == "odd" else "sad" if "died" in text
                       else "angry" if "furious" in text or "hate" in text or "unacceptable" in text
                       else "neutral")
            content = f'Here you go: {{"emotion": "{emotion}", "confidence": 0.9}}'
            code, out = 200, {"choices": [{"message": {"role": "assistant", "content": content}}]}
        self.send(code, out)


@pytest.fixture()
def chat_server():
    _Chat.requests = []
    with local_http_server(_Chat) as url:
        yield f"{url}/v1", _Chat.requests


def test_llm_source_labels_words_resumes_and_reports_errors(iemocap_ws, chat_server, capsys):
    url, requests = chat_server
    report = mine_conflicts(iemocap_ws, text_emotion=f"llm:judge@{url}")
    assert len(requests) == len(KNOWN)
    assert requests[0]["temperature"] == 0.0 and requests[0]["messages"][0]["content"].startswith("You label")
    labels = iemocap_ws.read_df("labels").set_index("clip_id")
    assert labels.loc["iemocap-Ses01F_impro01_M000", "meta_conflict_tag"] == "conflict"
    assert labels.loc["iemocap-Ses02M_script01_2_M004", "meta_conflict_tag"] == "conflict"
    assert report["words"]["model"] == "judge"
    mine_conflicts(iemocap_ws, text_emotion=f"llm:judge@{url}")
    assert len(requests) == len(KNOWN)  # answers are journalled: nothing asked twice
    with pytest.raises(InputError, match="'jealous' is not in the taxonomy") as e:
        mine_conflicts(iemocap_ws, text_emotion=f"llm:odd@{url}")
    assert "iemocap-Ses02M_script01_2_M004" in str(e.value)
    with pytest.raises(ConfigError, match="HTTP 503"):
        mine_conflicts(iemocap_ws, text_emotion=f"llm:down@{url}")
    with pytest.raises(ConfigError, match="llm:MODEL@URL"):
        mine_conflicts(iemocap_ws, text_emotion="llm:judge")
    assert main(["mine-conflicts", str(iemocap_ws.root), "--text-emotion", "lexicn"]) == 2
    assert "did you mean 'lexicon'" in capsys.readouterr().err


def test_ratings_source_and_cli_json(iemocap_ws, capsys):
    rows = []
    for i, (utt, (_, _)) in enumerate(KNOWN.items()):
        for r, value in enumerate(["sad", "sad", "angry"] if i == 1 else ["neutral"] * 3):
            rows.append({"annotation_id": f"a{i}{r}", "clip_id": f"iemocap-{utt}", "rater_id": f"r{r}",
                         "dimension": "semantic_emotion", "value": value})
    iemocap_ws.write_table("annotations", pd.DataFrame(rows))
    assert main(["mine-conflicts", str(iemocap_ws.root), "--text-emotion", "ratings", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tags"]["conflict"] == 1 and report["conflict_types"] == {"happy-voice/sad-words": 1}
    assert report["tags"]["voice-only emotion"] == 3 and report["tags"]["no emotion"] == 1


def test_mined_tags_reach_a_cross_corpus_benchmark(tmp_path, iemocap_ws):
    """benchmark-from carries the curated tags: CREMA-D's voice-only clips are no conflict items, while the
    conflicts mined from IEMOCAP's words are."""
    from casebench.benchmarks import read_gold
    from casebench.crosscorpus import benchmark_from

    import_corpus("crema-d", make_crema_d(tmp_path / "crema"), tmp_path / "crema-ws", taxonomy="ekman7")
    mine_conflicts(tmp_path / "crema-ws")
    mine_conflicts(iemocap_ws)
    out = tmp_path / "bench"
    benchmark_from([tmp_path / "crema-ws", iemocap_ws.root], out, taxonomy="ekman7")
    gold = read_gold(out / "gold.csv", "ekman7")
    ids = list(gold.ids)
    conflict = {i for i, c in zip(ids, gold.is_conflict, strict=True) if c}
    assert conflict == {"iemocap-Ses01F_impro01_M000", "iemocap-Ses02M_script01_2_M004"}
    crema = [i for i in ids if i.startswith("crema-d-")]
    assert crema and not any(gold.is_conflict[ids.index(i)] for i in crema)
    # without the tags, voice != words would have made every emotional CREMA-D clip a "conflict"
    assert sum(gold.is_conflict_raw[ids.index(i)] for i in crema) > 0
