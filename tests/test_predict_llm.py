"""The audio-llm: and text-llm: kinds of casebench predict, against a chat-completions server on 127.0.0.1.

The server is a real HTTP server started here that speaks the OpenAI chat-completions protocol (request and
answer shapes as in https://platform.openai.com/docs/api-reference/chat: ``input_audio`` content parts,
``logprobs``/``top_logprobs``, 429 with ``Retry-After``); each test scripts what it answers.
"""

from __future__ import annotations

import base64
import io
import json
import math
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from casebench.benchmarks import get_benchmark
from casebench.errors import ConfigError
from casebench.predict.chat import AnswerReader, ChatClient, ChatSettings, RateLimiter, chat_settings, retry_after_s
from casebench.testing import JsonApiHandler

BENCH = "casebench-audio-mini"


def completion(text, logprobs=None, model="test-model"):
    """A chat completion as the OpenAI API returns it."""
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
            "system_fingerprint": "fp_test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": logprobs,
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}


class ChatServer:
    """A chat-completions server; ``answer(body, n)`` returns (status, headers, JSON object or raw bytes)."""

    def __init__(self, answer):
        self.answer = answer
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(JsonApiHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.read_json()
                with server.lock:
                    n = len(server.requests)
                    server.requests.append(body)
                    server.headers.append(dict(self.headers.items()))
                if self.path != "/v1/chat/completions":
                    status, headers, payload = 404, {}, {"error": {"message": f"no route {self.path}"}}
                else:
                    status, headers, payload = server.answer(body, n)
                self.send(status, payload, headers=headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def heard(body) -> tuple[np.ndarray, int]:
    """The audio of a request's input_audio part, decoded as the server would."""
    import soundfile as sf

    parts = body["messages"][-1]["content"]
    audio = next(p["input_audio"] for p in parts if p["type"] == "input_audio")
    assert audio["format"] == "wav"
    return sf.read(io.BytesIO(base64.b64decode(audio["data"])), dtype="float32")


def transcript(body) -> str:
    content = body["messages"][-1]["content"]
    return content.split('"')[1]


def tables():
    b = get_benchmark(BENCH)
    return b, pd.read_csv(b.gold_path)


def quick(**extra):
    return {"backoff_s": 0.001, "backoff_max_s": 0.01, "max_retries": 2, **extra}


def test_audio_llm_sends_the_clips_audio_and_reads_answers_evaluate_accepts(tmp_path, monkeypatch):
    import soundfile as sf

    from casebench.evaluate import evaluate
    from casebench.predict import predict
    from casebench.predict.runner import sidecar_path

    bench, gold = tables()
    styles = ["{}", "{}.", "The speaker sounds {} to me.", "  {}!  "]

    def by_length(seconds: float) -> str:
        return ["angry", "happy", "neutral", "sad"][min(3, int(seconds // 1.2))]

    def answer(body, n):
        x, sr = heard(body)
        assert sr == 16000 and x.ndim == 1 and body["model"] == "my-audio-model"
        assert "angry, happy, neutral, sad" in body["messages"][-1]["content"][0]["text"]
        label = by_length(len(x) / sr)
        return 200, {}, completion(styles[n % 4].format(label.upper() if n % 3 else label))

    monkeypatch.setenv("MY_LLM_KEY", "sk-secret-test")
    out = tmp_path / "audio-llm.jsonl"
    with ChatServer(answer) as srv:
        report = predict(f"audio-llm:my-audio-model@{srv.url}#api_key_env=MY_LLM_KEY&concurrency=3", BENCH, out,
                         batch_size=8, options={"rate": 1000})
    assert report["n_predicted"] == len(gold) == len(srv.requests)
    assert {h["Authorization"] for h in srv.headers} == {"Bearer sk-secret-test"}
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == gold.id.tolist()  # the runner's order, whatever the threads did
    data = bench.gold_path.parent
    expected = [by_length(sf.info(data / p).duration) for p in gold.path]
    assert [r["label"] for r in lines] == expected  # each clip's own audio reached the server intact
    meta = json.loads(sidecar_path(out).read_text())
    assert "sk-secret-test" not in sidecar_path(out).read_text()
    assert meta["model"]["n_unparseable"] == 0 and meta["model"]["api_key_from"] == "MY_LLM_KEY"
    assert meta["model"]["revision"] == "test-model" and meta["model"]["name"] == "audio-llm:my-audio-model"
    results = evaluate(out, bench, n_boot=50, seed=0)
    assert results["splits"]["all"]["accuracy"]["value"] == pytest.approx(
        np.mean(np.array(expected) == gold.acoustic_label.to_numpy()))


def test_text_llm_sends_the_transcript_and_counts_unparseable_answers(tmp_path):
    from casebench.evaluate import evaluate
    from casebench.predict import predict
    from casebench.predict.runner import sidecar_path

    bench, gold = tables()
    words = dict(zip(gold.text, gold.semantic_label, strict=False))  # a sentence has one words-emotion
    texts = list(dict.fromkeys(gold.text))
    malformed = dict(zip(texts[:5], ["", "sad, or maybe angry", "I cannot tell.", None, "It is not angry."],
                         strict=True))
    bad_ids = set(gold.id[gold.text.isin(malformed)])

    def answer(body, n):
        assert "input_audio" not in json.dumps(body)
        said = transcript(body)
        if said in malformed:
            if malformed[said] is None:
                return 200, {}, {"object": "chat.completion", "choices": []}  # JSON, but no answer in it
            return 200, {}, completion(malformed[said])
        return 200, {}, completion(f"Emotion: {words[said]}")

    out = tmp_path / "text-llm.jsonl"
    with ChatServer(answer) as srv:
        report = predict(f"text-llm:reader@{srv.url}", BENCH, out, batch_size=16, options=quick())
        asked = len(srv.requests)
        again = predict(f"text-llm:reader@{srv.url}", BENCH, out, batch_size=16, options=quick())
        assert len(srv.requests) == asked == len(gold)  # a re-run asks nothing again (abstentions included)
    assert report["n_abstained"] == len(bad_ids) > 5 and again["n_predicted"] == again["n_abstained"] == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert {r["id"] for r in lines} == set(gold.id) - bad_ids  # unparseable answers never become a label
    abstained = [json.loads(x) for x in Path(report["abstained_file"]).read_text("utf-8").splitlines()]
    assert {r["id"] for r in abstained} == bad_ids
    assert {r["abstain"] for r in abstained} == {"empty answer", "names two labels: sad, angry",
                                                 "names no label of iemocap4"} | {
        r["abstain"] for r in abstained if r["abstain"].startswith("not a chat completion")}
    side = json.loads(sidecar_path(out).read_text())
    assert side["abstained"]["n"] == len(bad_ids) and side["predictions"]["n_lines"] == len(lines)
    meta = side["model"]
    assert meta["n_unparseable"] == len(bad_ids) and any("abstentions" in n for n in meta["notes"])
    with pytest.raises(Exception, match="allow-missing"):
        evaluate(out, bench, n_boot=20, seed=0)
    results = evaluate(out, bench, n_boot=50, seed=0, allow_missing=True)
    conflict = results["splits"]["conflict"]
    answered_conflict = gold[gold.is_conflict & ~gold.id.isin(bad_ids)]
    assert conflict["text_following_rate"]["value"] == pytest.approx(
        len(answered_conflict) / int(gold.is_conflict.sum()))  # follows the words wherever it answered


def test_429_then_success_honours_retry_after_and_500_then_success_backs_off():
    waits: list[float] = []
    plan = iter([(429, {"Retry-After": "2"}, {"error": "slow down"}), (200, {}, completion("sad")),
                 (500, {}, {"error": "boom"}), (503, {}, {"error": "busy"}), (200, {}, completion("happy"))])
    with ChatServer(lambda body, n: next(plan)) as srv:
        client = ChatClient(ChatSettings(url=srv.url, model="m", backoff_s=0.5, backoff_max_s=30), sleep=waits.append)
        first = client.complete([{"role": "user", "content": "hi"}])
        second = client.complete([{"role": "user", "content": "hi"}])
    assert first["choices"][0]["message"]["content"] == "sad" and second["choices"][0]["message"]["content"] == "happy"
    assert waits == [2.0, 0.5, 1.0]  # Retry-After as given; then 0.5 * 2**attempt
    assert client.stats.retries == 3 and client.stats.statuses == {"429": 1, "500": 1, "503": 1, "200": 2}


def test_retry_after_http_date_and_bounded_backoff():
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    waits: list[float] = []
    with ChatServer(lambda body, n: (502, {}, {"error": "bad gateway"})) as srv:
        client = ChatClient(ChatSettings(url=srv.url, model="m", max_retries=6, backoff_s=1, backoff_max_s=8),
                            sleep=waits.append)
        with pytest.raises(ConfigError, match=r"still failing after 7 attempts \(HTTP 502"):
            client.complete([{"role": "user", "content": "hi"}])
    assert waits == [1, 2, 4, 8, 8, 8]


def test_persistent_500_stops_the_run_with_a_clear_error_and_keeps_what_was_done(tmp_path):
    from casebench.cli import main

    def answer(body, n):
        return (200, {}, completion("neutral")) if n < 4 else (500, {}, {"error": {"message": "model crashed"}})

    out = tmp_path / "p.jsonl"
    with ChatServer(answer) as srv:
        spec = f"text-llm:m@{srv.url}#max_retries=2&backoff_s=0.001"
        with pytest.raises(ConfigError, match=r"/v1/chat/completions: still failing after 3 attempts \(HTTP 500: .*"
                                              r"model crashed.*re-run later to resume"):
            from casebench.predict import predict

            predict(spec, BENCH, out, batch_size=4)
        assert len(out.read_text().splitlines()) == 4  # the first batch is kept
        assert main(["predict", spec, "--benchmark", BENCH, "--out", str(out), "--batch-size", "4"]) == 2


def test_other_http_errors_stop_at_once_and_name_the_key_variable(monkeypatch):
    monkeypatch.delenv("CASEBENCH_LLM_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with ChatServer(lambda body, n: (401, {}, {"error": {"message": "invalid api key"}})) as srv:
        client = ChatClient(ChatSettings(url=srv.url, model="m"), sleep=lambda s: pytest.fail("retried a 401"))
        with pytest.raises(ConfigError, match="HTTP 401.*invalid api key.*check the API key.*OPENAI_API_KEY"):
            client.complete([{"role": "user", "content": "hi"}])
        assert len(srv.requests) == 1


def test_logprobs_become_label_probabilities(tmp_path):
    from casebench.predict import predict
    from casebench.predict.runner import sidecar_path

    top = [{"token": "Sad", "logprob": -0.2}, {"token": " sad", "logprob": -2.5}, {"token": "Ang", "logprob": -3.0},
           {"token": "The", "logprob": -3.5}, {"token": "neutral", "logprob": -4.0}, {"token": "s", "logprob": -6.0}]
    logprobs = {"content": [{"token": "Sad", "logprob": -0.2, "top_logprobs": top},
                            {"token": ".", "logprob": -0.01, "top_logprobs": []}]}

    def answer(body, n):
        assert body["logprobs"] is True and body["top_logprobs"] == 10 and body["temperature"] == 0
        return 200, {}, completion("Sad.", logprobs)

    out = tmp_path / "p.jsonl"
    with ChatServer(answer) as srv:
        predict(f"audio-llm:m@{srv.url}", BENCH, out, split="conflict", options=quick())
    line = json.loads(out.read_text().splitlines()[0])
    sad, angry, neutral = math.exp(-0.2) + math.exp(-2.5), math.exp(-3.0), math.exp(-4.0)
    total = sad + angry + neutral  # "The" names no label; "s" is one letter that starts nothing unique
    assert line["label"] == "sad"
    assert line["probs"] == pytest.approx({"angry": angry / total, "happy": 0.0, "neutral": neutral / total,
                                           "sad": sad / total}, abs=1e-6)
    assert sum(line["probs"].values()) == pytest.approx(1, abs=1e-9)
    meta = json.loads(sidecar_path(out).read_text())["model"]
    assert meta["n_with_probs"] == 48 and meta["mean_non_label_mass"] == pytest.approx(1 - total, abs=1e-6)


def test_a_server_without_logprobs_is_asked_again_without_them(tmp_path):
    from casebench.predict import predict
    from casebench.predict.runner import sidecar_path

    def answer(body, n):
        if body.get("logprobs"):
            return 400, {}, {"error": {"message": "logprobs is not supported for this model"}}
        return 200, {}, completion("happy")

    out = tmp_path / "p.jsonl"
    with ChatServer(answer) as srv:
        predict(f"audio-llm:m@{srv.url}", BENCH, out, split="congruent", batch_size=48,
                options=quick(concurrency=1))
        assert sum(bool(b.get("logprobs")) for b in srv.requests) == 1  # refused once, then never asked again
    assert all(set(json.loads(x)) == {"id", "label"} for x in out.read_text().splitlines())
    notes = json.loads(sidecar_path(out).read_text())["model"]["notes"]
    assert sum("refused logprobs" in n for n in notes) == 1


def test_answer_reader():
    r = AnswerReader("iemocap4")
    cases = {"sad": "sad", "SAD.": "sad", "**Angry**": "angry", "I'd say: neutral": "neutral", "excited": "happy",
             "Sadness.": "sad", "The voice sounds happy, not angry.": "happy", "calm": "neutral",
             "no emotion": "neutral", "surprised": None, "sad... no wait, happy": None, "": None, "not sad": None}
    assert {a: r.parse(a).label for a in cases} == cases
    e = AnswerReader("ekman7")
    assert [e.parse(a).label for a in ("fearful", "joy", "Disgusted", "surprised!")] == \
        ["fear", "happy", "disgust", "surprise"]
    custom = AnswerReader("iemocap4", {"content": "happy", "calm": None})
    assert custom.parse("content").label == "happy" and custom.parse("calm").label is None
    with pytest.raises(ConfigError, match="not a label of iemocap4"):
        AnswerReader("iemocap4", {"content": "joyful"})


def test_rate_limit_spaces_requests_evenly():
    clock = [0.0]
    waits: list[float] = []

    def sleep(s):
        waits.append(round(s, 6))
        clock[0] += s

    limiter = RateLimiter(4.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(3):
        limiter.acquire()
    clock[0] += 2.0
    limiter.acquire()
    assert waits == [0.25, 0.25]  # 4 per second: 0, 0.25, 0.5; then idle, so no wait
    with pytest.raises(ConfigError, match="rate"):
        RateLimiter(0)


def test_spec_and_option_errors():
    with pytest.raises(ConfigError, match="expected audio-llm:MODEL@URL"):
        chat_settings("audio-llm", "just-a-model")
    with pytest.raises(ConfigError, match="unknown option 'rat'.*did you mean 'rate'"):
        chat_settings("audio-llm", "m@http://h/v1#rat=2")
    with pytest.raises(ConfigError, match="concurrency='many'; expected int"):
        chat_settings("text-llm", "m@http://h/v1", {"concurrency": "many"})
    s = chat_settings("text-llm", "m@https://api.example.com/v1#logprobs=false&seed=none")
    assert s.logprobs is False and s.seed is None and s.url == "https://api.example.com/v1"
