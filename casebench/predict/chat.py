"""What the ``audio-llm:`` and ``text-llm:`` kinds share: an OpenAI-compatible chat-completions client and
the reading of its answers into labels of a taxonomy.

**Requests** (:class:`ChatClient`). ``POST {url}/chat/completions`` with JSON (stdlib urllib: one small
request at a time needs no HTTP library). The API key comes from an environment variable (default
``CASEBENCH_LLM_API_KEY``, then ``OPENAI_API_KEY``; none for a local server) and is sent as a Bearer token,
never stored. A 429 is retried after the server's ``Retry-After`` (seconds or an HTTP date) or, without
one, after a bounded exponential backoff (``backoff_s * 2**attempt``, at most ``backoff_max_s``); 5xx
answers, timeouts and refused connections get the same backoff. A ``Retry-After`` beyond 10 minutes (a
spent daily quota) stops the run at once. After ``max_retries`` retries the run stops with a
:class:`~casebench.errors.ConfigError` naming the URL, the status and the start of the body; other 4xx
answers (bad key, unknown model) stop it at once. A client-side rate limit (``rate``, requests per second,
shared by all threads) keeps a run under a provider's quota instead of leaning on its 429s.

**Answers** (:class:`AnswerReader`). A prompt names the taxonomy's labels and asks for exactly one
(templates in ``casebench/data/predict/llm.yaml``). The answer is read as:

1. folded (Unicode NFKC, case, punctuation and spacing ignored);
2. the words that name a label: the taxonomy's labels, every label of the other shipped taxonomies that
   maps to one of them (``excited`` -> ``happy`` for iemocap4, ``fearful`` -> ``fear``), the everyday
   synonyms in ``llm.yaml`` (``sadness``, ``scared``...) mapped the same way, and ``--label-map`` entries;
   a word right after a negation (``not``, ``no``, ``never``...) does not count;
3. exactly one label named (however often) -> that label; none, or two different labels -> unparseable.

**Probabilities**. When the server returns ``logprobs`` with ``top_logprobs``, the answer position is the
first token that starts a word of the chosen label; every alternative token there that starts a word of
exactly one label adds its probability to that label. The mass on tokens that start no label word (and
on the tokens beyond the top ``k``) is *not* spread over the labels: it is measured
(``non_label_mass``, mean over items, in the metadata) and the label masses are renormalised to sum to 1.
The record's ``label`` stays the one the model wrote.

>>> reader = AnswerReader("iemocap4")
>>> [reader.parse(a).label for a in ("Sad.", "  ANGRY ", "The speaker sounds happy to me.", "excited")]
['sad', 'angry', 'happy', 'happy']
>>> [reader.parse(a).reason for a in ("Sad, or maybe angry", "I cannot tell.", "not angry")]
['names two labels: sad, angry', 'names no label of iemocap4', 'names no label of iemocap4']
"""

from __future__ import annotations

import email.utils
import functools
import json
import math
import re
import threading
import time
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from casebench import resources
from casebench.errors import ConfigError
from casebench.predict.base import Model
from casebench.taxonomy import Taxonomy, as_taxonomy, get_taxonomy, list_taxonomies

DEFAULT_KEY_ENV = ("CASEBENCH_LLM_API_KEY", "OPENAI_API_KEY")
NEGATIONS = ("not", "no", "never", "nor", "isn t", "isnt", "doesn t", "without", "hardly")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 600.0  # a longer Retry-After (a daily quota) stops the run rather than sleeping for hours


@functools.cache
def llm_data() -> dict:
    """The prompts and synonyms shipped in ``casebench/data/predict/llm.yaml``."""
    return yaml.safe_load(resources.read_text("data/predict/llm.yaml"))


def prompt_for(kind: str, taxonomy: str | Taxonomy) -> dict[str, str]:
    """The ``system``/``user`` templates of ``kind`` (``audio-llm``/``text-llm``) for ``taxonomy``, with
    ``{labels}`` filled in (``{transcript}`` is left for the caller).

    >>> prompt_for("audio-llm", "iemocap4")["user"].endswith("angry, happy, neutral, sad.")
    True
    """
    tax = as_taxonomy(taxonomy)
    prompts = llm_data()["prompts"]
    template = {**prompts[kind], **((prompts.get("taxonomies") or {}).get(tax.name, {}).get(kind) or {})}
    labels = ", ".join(tax.labels)
    return {k: v.replace("{labels}", labels) for k, v in template.items()}


def fold(text: str) -> str:
    """NFKC, case-folded, letters and digits only, single spaces.

    >>> fold("  It's SAD!! ")
    'it s sad'
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w]|_", " ", text).split())


# --------------------------------------------------------------------------------------------------
# Reading answers


@dataclass(frozen=True)
class Answer:
    """A model's answer read into a label (None when unparseable, with the reason)."""

    text: str
    label: str | None
    reason: str | None = None


class AnswerReader:
    """Reads chat answers into labels of ``taxonomy`` (see the module docstring for the rules).

    Args:
        taxonomy: the benchmark's taxonomy.
        label_map: extra words (model label -> taxonomy label or None to ignore the word), e.g. from
            ``--label-map``; they override the built-in synonyms.
    """

    def __init__(self, taxonomy: str | Taxonomy, label_map: Mapping[str, str | None] | None = None):
        self.taxonomy = tax = as_taxonomy(taxonomy)
        words: dict[str, str | None] = {}
        clash: set[str] = set()

        def add(word: str, label: str | None) -> None:
            w = fold(word)
            if not w or label is None:
                return
            if words.get(w, label) != label:
                clash.add(w)  # a word two taxonomies send to different labels names neither
            words[w] = label

        for name in list_taxonomies():
            if name == tax.name:
                continue
            try:
                table = get_taxonomy(name).mapping_to(tax.name)
            except ConfigError:
                continue
            for src, dst in table.items():
                add(src, dst)
        try:
            ekman = get_taxonomy("ekman7").mapping_to(tax.name)
        except ConfigError:
            ekman = {}
        for label, synonyms in (llm_data().get("synonyms") or {}).items():
            for s in synonyms:
                add(s, ekman.get(label))
        for w in clash:
            words.pop(w, None)
        for label in tax.labels:
            words[fold(label)] = label
        for src, dst in (label_map or {}).items():
            if dst is not None and dst not in tax.index:
                raise ConfigError(f"label map: {src!r} -> {dst!r}, which is not a label of {tax.name} "
                                  f"{list(tax.labels)}")
            words[fold(src)] = dst
        self.words = {w: lab for w, lab in words.items() if lab is not None}
        alternatives = "|".join(re.escape(w) for w in sorted(self.words, key=len, reverse=True))
        negation = "|".join(re.escape(n) for n in NEGATIONS)
        self._pattern = re.compile(rf"(?:\b({negation}) )?\b({alternatives})\b")
        self._starts = {lab: tuple(w for w, x in self.words.items() if x == lab) for lab in tax.labels}

    def parse(self, text: str | None) -> Answer:
        """The label ``text`` names, or an unparseable :class:`Answer` saying why."""
        raw = text or ""
        folded = fold(raw)
        if not folded:
            return Answer(raw, None, "empty answer")
        found = []
        for m in self._pattern.finditer(folded):
            if m.group(1) is None:
                label = self.words[m.group(2)]
                if label not in found:
                    found.append(label)
        if len(found) == 1:
            return Answer(raw, found[0])
        if not found:
            return Answer(raw, None, f"names no label of {self.taxonomy.name}")
        return Answer(raw, None, f"names {'two' if len(found) == 2 else len(found)} labels: {', '.join(found)}")

    def token_label(self, token: str) -> str | None:
        """The one label a token can start (``"Ne"`` -> ``neutral``), or None (no label, or several)."""
        t = fold(token)
        if not t or (len(t) < 2 and t not in self.words):
            return None
        hits = {lab for lab, words in self._starts.items() if any(w.startswith(t) for w in words)}
        return hits.pop() if len(hits) == 1 else None

    def probs(self, logprobs: Any, label: str) -> tuple[list[float] | None, float | None]:
        """Label probabilities (taxonomy order, summing to 1) and the non-label mass, from a chat
        completion's ``choices[0].logprobs``; ``(None, None)`` when it has no usable token position."""
        content = (logprobs or {}).get("content") if isinstance(logprobs, Mapping) else None
        if not isinstance(content, list):
            return None, None
        for entry in content:
            if not isinstance(entry, Mapping) or self.token_label(str(entry.get("token", ""))) != label:
                continue
            top = entry.get("top_logprobs") or [entry]
            mass = dict.fromkeys(self.taxonomy.labels, 0.0)
            seen: set[str] = set()
            for cand in top:
                token, lp = cand.get("token"), cand.get("logprob")
                if not isinstance(token, str) or not isinstance(lp, (int, float)) or token in seen:
                    continue
                seen.add(token)
                lab = self.token_label(token)
                if lab is not None and math.isfinite(lp):
                    mass[lab] += math.exp(lp)
            total = sum(mass.values())
            if total <= 0:
                return None, None
            return [mass[lab] / total for lab in self.taxonomy.labels], max(0.0, 1.0 - total)
        return None, None


# --------------------------------------------------------------------------------------------------
# Requests


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date), or None.

    >>> retry_after_s("3"), retry_after_s("soon"), retry_after_s(None)
    (3.0, None, None)
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RateLimiter:
    """At most ``rate`` acquisitions per second across threads (evenly spaced); ``None`` = no limit."""

    def __init__(self, rate: float | None, *, clock=time.monotonic, sleep=time.sleep):
        if rate is not None and not rate > 0:
            raise ConfigError(f"rate = {rate!r}; expected requests per second > 0")
        self.interval = 0.0 if rate is None else 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)
        return start - now

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


@dataclass
class ChatSettings:
    """How to talk to the server: see :class:`ChatClient`."""

    url: str
    model: str
    api_key_env: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    rate: float | None = None
    concurrency: int = 4
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 16
    logprobs: bool = True
    top_logprobs: int = 10

    def public(self) -> dict[str, Any]:
        """The settings worth recording with the predictions (no key: only the variable's name)."""
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class ChatStats:
    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class ChatClient:
    """Chat completions with retries, backoff and a rate limit (see the module docstring)."""

    def __init__(self, settings: ChatSettings, *, sleep=time.sleep):
        import os

        self.settings = s = settings
        if not s.url.startswith(("http://", "https://")):
            raise ConfigError(f"LLM URL {s.url!r}; expected http(s)://host[:port]/v1 (an OpenAI-compatible "
                              "server), as in audio-llm:MODEL@http://localhost:8000/v1")
        if s.max_retries < 0 or s.backoff_s < 0 or s.backoff_max_s < 0 or s.concurrency < 1:
            raise ConfigError(f"bad LLM client settings {s.public()}: retries, backoff >= 0, concurrency >= 1")
        url = s.url.rstrip("/")
        self.endpoint = url if url.endswith("/chat/completions") else url + "/chat/completions"
        names = (s.api_key_env,) if s.api_key_env else DEFAULT_KEY_ENV
        self.key_env = next((n for n in names if os.environ.get(n, "").strip()), None)
        self._key = os.environ[self.key_env].strip() if self.key_env else None
        if s.api_key_env and self._key is None:
            raise ConfigError(f"the API key variable {s.api_key_env} is not set (or empty)")
        self.limiter = RateLimiter(s.rate)
        self.stats = ChatStats()
        self._lock = threading.Lock()
        self._sleep = sleep

    def __getstate__(self) -> dict:  # never pickle the key (Ray ships models to workers): re-read it there
        state = dict(self.__dict__)
        state["_key"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        import os

        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._key = os.environ.get(self.key_env, "").strip() or None if self.key_env else None

    def payload(self, messages: list[dict]) -> dict:
        s = self.settings
        body: dict[str, Any] = {"model": s.model, "messages": messages, "temperature": s.temperature,
                                "max_tokens": s.max_tokens}
        if s.seed is not None:
            body["seed"] = s.seed
        if s.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = s.top_logprobs
        return body

    def _count(self, status: str, retried: bool, waited: float = 0.0) -> None:
        with self._lock:
            self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
            self.stats.retries += retried
            self.stats.waited_s += waited

    def _post(self, body: dict) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "casebench"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        req = urllib.request.Request(self.endpoint, data=json.dumps(body).encode("utf-8"), headers=headers,
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.settings.timeout_s) as r:
                return r.status, dict(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()) if e.headers else {}, e.read()

    def complete(self, messages: list[dict]) -> dict:
        """One chat completion (the parsed JSON answer), retried as the module docstring says.

        Raises:
            ConfigError: a non-retryable HTTP error, retries used up, or an answer that is not JSON.
        """
        s = self.settings
        body = self.payload(messages)  # without logprobs once the server has refused them
        with self._lock:
            self.stats.requests += 1
        last = ""
        for attempt in range(s.max_retries + 1):
            self.limiter.acquire()
            try:
                status, headers, data = self._post(body)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                status, headers, data = 0, {}, str(getattr(e, "reason", e)).encode()
            text = data[:300].decode("utf-8", "replace")
            if status == 200:
                self._count("200", False)
                try:
                    return json.loads(data)
                except ValueError:
                    raise ConfigError(f"{self.endpoint}: the answer is not JSON ({text!r}); expected an "
                                      "OpenAI chat completion") from None
            if status == 400 and body.get("logprobs") and "logprob" in text.lower():
                # a server without logprobs: ask again without them (once; noted in the metadata)
                body = {k: v for k, v in body.items() if k not in ("logprobs", "top_logprobs")}
                with self._lock:
                    if s.logprobs:  # requests in flight on other threads may be refused too: one note
                        self.stats.notes.append(f"the server refused logprobs ({text[:120]!r}): labels only")
                    s.logprobs = False
                continue
            last = f"HTTP {status}: {text}" if status else f"cannot reach the server ({text})"
            if status and status not in RETRY_STATUSES:
                hint = (f"; check the API key (read from {self.key_env or ' or '.join(DEFAULT_KEY_ENV)})"
                        if status in (401, 403) else "")
                raise ConfigError(f"{self.endpoint}: {last}{hint}")
            if attempt == s.max_retries:
                break
            wait = retry_after_s(headers.get("Retry-After") or headers.get("retry-after")) if status == 429 else None
            if wait is None:
                wait = min(s.backoff_s * 2 ** attempt, s.backoff_max_s)
            elif wait > MAX_RETRY_AFTER_S:
                raise ConfigError(f"{self.endpoint}: HTTP 429, and the server asks to wait {wait:.0f} s (Retry-After); "
                                  "the predictions made so far are kept: re-run later to resume")
            self._count(str(status or "connection"), True, wait)
            self._sleep(wait)
        raise ConfigError(f"{self.endpoint}: still failing after {s.max_retries + 1} attempts ({last}); "
                          "the predictions made so far are kept: re-run later to resume")


def answer_text(response: Mapping) -> tuple[str | None, Any]:
    """The first choice's message text and its ``logprobs`` (None, None when the shape is not a chat
    completion: counted as unparseable by the caller)."""
    try:
        choice = response["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None, None
    if isinstance(content, list):  # content parts: keep the text ones
        content = " ".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return (content if isinstance(content, str) else None), choice.get("logprobs")


def run_threads(fn, items: Sequence, concurrency: int) -> list:
    """``[fn(x) for x in items]`` on up to ``concurrency`` threads, in order; the first error propagates."""
    if concurrency <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(fn, items))




# --------------------------------------------------------------------------------------------------
# The model both kinds are


_SPEC = re.compile(r"^(?P<model>[^@\s]+)@(?P<url>https?://[^#\s]+)(?:#(?P<options>.*))?$")
_SETTING_TYPES = {"api_key_env": str, "timeout_s": float, "max_retries": int, "backoff_s": float,
                  "backoff_max_s": float, "rate": float, "concurrency": int, "temperature": float, "seed": int,
                  "max_tokens": int, "logprobs": bool, "top_logprobs": int}
_GENERIC_OPTIONS = ("batch_size",)  # options every kind is given (casebench.predict.predict)


def _typed(key: str, value: Any, where: str) -> Any:
    kind = _SETTING_TYPES[key]
    if value is None or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    text = str(value).strip()
    try:
        if kind is bool:
            if text.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError
            return text.lower() in ("1", "true", "yes", "on")
        if text.lower() in ("none", "null", "") and key in ("rate", "seed", "api_key_env"):
            return None
        return kind(text)
    except ValueError:
        raise ConfigError(f"{where}: option {key}={value!r}; expected {kind.__name__}") from None


def chat_settings(kind: str, spec: str, options: Mapping[str, Any] | None = None) -> ChatSettings:
    """Settings from ``MODEL@URL[#key=value&...]`` and the run's options (the fragment is never sent).

    >>> s = chat_settings("text-llm", "llama3@http://localhost:8000/v1#rate=2&concurrency=8")
    >>> s.model, s.url, s.rate, s.concurrency
    ('llama3', 'http://localhost:8000/v1', 2.0, 8)
    """
    m = _SPEC.match(spec.strip())
    if m is None:
        raise ConfigError(f"{kind}:{spec}: expected {kind}:MODEL@URL (an OpenAI-compatible server), e.g. "
                          f"{kind}:qwen2-audio-7b@http://localhost:8000/v1; options after '#', e.g. "
                          "#rate=2&concurrency=4")
    pairs: dict[str, Any] = {}
    for part in (m.group("options") or "").split("&"):
        if part.strip():
            key, sep, value = part.partition("=")
            if not sep:
                raise ConfigError(f"{kind}:{spec}: option {part!r}; expected key=value")
            pairs[key.strip()] = value
    pairs.update({k: v for k, v in (options or {}).items() if k not in _GENERIC_OPTIONS})
    unknown = sorted(set(pairs) - set(_SETTING_TYPES))
    if unknown:
        from casebench.errors import did_you_mean

        hint = did_you_mean(unknown[0], _SETTING_TYPES)
        raise ConfigError(f"{kind}:{spec}: unknown option {unknown[0]!r}; expected some of {sorted(_SETTING_TYPES)}"
                          + (f" ({hint})" if hint else ""))
    typed = {k: _typed(k, v, f"{kind}:{spec}") for k, v in pairs.items()}
    return ChatSettings(url=m.group("url"), model=m.group("model"), **typed)


class ChatModel(Model):
    """A model behind an OpenAI-compatible chat API; a kind says what a clip's message is
    (:meth:`user_content`). Unparseable answers become *abstentions*: see :meth:`predict_batch`."""

    kind = ""
    uses_label_map = True

    def __init__(self, spec: str, context):
        super().__init__(spec, context)
        self.settings = chat_settings(self.kind, spec, context.options)
        self.reader = AnswerReader(context.benchmark.taxonomy, context.label_map)
        self.prompt = prompt_for(self.kind, context.benchmark.taxonomy)
        self.client = ChatClient(self.settings)
        self.n_answers = 0
        self.n_unparseable = 0
        self.n_with_probs = 0
        self.non_label_mass: list[float] = []
        self.served_model: str | None = None
        self.fingerprints: set[str] = set()
        self._stats_lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.settings.model}"

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_stats_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._stats_lock = threading.Lock()

    def user_content(self, item) -> list[dict] | str:
        """The user message's content for one clip."""
        raise NotImplementedError

    def messages(self, item) -> list[dict]:
        return [{"role": "system", "content": self.prompt["system"]},
                {"role": "user", "content": self.user_content(item)}]

    def predict_batch(self, items):
        """One record per item: ``{"id", "label"[, "probs"]}``, or for an answer that names no single label
        ``{"id", "abstain": reason, "answer": text}``: the runner keeps abstentions out of the predictions
        file (in ``<out>.abstained.jsonl``) and counts them, and evaluate scores them as wrong with
        ``--allow-missing``."""
        return run_threads(self._predict_one, list(items), self.settings.concurrency)

    def _predict_one(self, item) -> dict:
        response = self.client.complete(self.messages(item))
        text, logprobs = answer_text(response)
        answer = self.reader.parse(text) if text is not None else Answer("", None, "not a chat completion "
                                                                              f"({json.dumps(response)[:160]})")
        with self._stats_lock:
            self.n_answers += 1
            if isinstance(response, Mapping):
                self.served_model = response.get("model") or self.served_model
                if response.get("system_fingerprint"):
                    self.fingerprints.add(str(response["system_fingerprint"]))
            if answer.label is None:
                self.n_unparseable += 1
        if answer.label is None:
            return {"id": item.id, "abstain": answer.reason, "answer": answer.text[:500]}
        record: dict[str, Any] = {"id": item.id, "label": answer.label}
        probs, non_label = self.reader.probs(logprobs, answer.label)
        if probs is not None:
            labels = self.reader.taxonomy.labels
            rounded = [round(p, 7) for p in probs]
            top = max(range(len(rounded)), key=rounded.__getitem__)
            rounded[top] = round(rounded[top] + 1.0 - sum(rounded), 7)  # the row sums to 1 after rounding
            record["probs"] = dict(zip(labels, rounded, strict=True))
            with self._stats_lock:
                self.n_with_probs += 1
                self.non_label_mass.append(non_label)
        return record

    def metadata(self) -> dict:
        s = self.settings
        stats = self.client.stats
        notes = list(stats.notes)
        if self.n_unparseable:
            notes.append(f"{self.n_unparseable} of {self.n_answers} answers named no single label: abstentions, "
                         "not in the predictions file (evaluate --allow-missing scores them as wrong)")
        mass = (sum(self.non_label_mass) / len(self.non_label_mass)) if self.non_label_mass else None
        return {
            "name": self.name, "revision": self.served_model or s.model, "url": s.url, "parameters": None,
            "trained_on": [],
            "description": f"{s.model} behind an OpenAI-compatible chat API at {s.url}, asked: "
                           f"{self.prompt['user'][:200]}",
            "prompt": self.prompt, "settings": {k: v for k, v in s.public().items() if k != "url"},
            "api_key_from": self.client.key_env, "system_fingerprints": sorted(self.fingerprints),
            "n_answers": self.n_answers, "n_unparseable": self.n_unparseable, "n_with_probs": self.n_with_probs,
            "mean_non_label_mass": None if mass is None else round(mass, 6),
            "requests": stats.requests, "retries": stats.retries, "retry_wait_s": round(stats.waited_s, 3),
            "statuses": dict(stats.statuses), "notes": notes,
        }
