"""Is a transcription usable? Pure checks that turn Whisper's failure modes into a null text with a reason.

Whisper does not fail loudly: on speech in a language the model does not know, or on noise, it writes
something (the English-only tiny.en wrote "1-1-5-10-3-..." for Mandarin). :func:`failure_reason` returns
why a clip's text must not be trusted, or None; ``transcribe`` then stores ``text`` null and the reason in
``transcripts.failure``. The checks, in order (the thresholds are Whisper's own where it has one,
openai/whisper ``transcribe.py``):

1. ``no speech``: nothing recognised, or ``no_speech_prob`` > 0.6 with a mean word log-probability
   below -1.0 (Whisper's no_speech_threshold and logprob_threshold together, its own skip rule);
2. ``no words``: no letter at all, and no number ("... ...") or at least three ("1-1-5-10-3");
3. ``script mismatch``: the text is not written in the script of the language it was decoded in (Chinese
   or Japanese without CJK characters, a Latin-script language without Latin letters, ...);
4. ``repetition``: a stretch of 1-10 characters repeated 4+ times in a row, or a zlib compression ratio
   above 2.4 (Whisper's compression_ratio_threshold, for texts of 40+ characters);
5. ``low confidence``: mean word log-probability below -1.0 (Whisper's logprob_threshold).

>>> failure_reason("1-1-5-10-3-7-2.", "en", [0.6, 0.5, 0.4])
'no words: only digits and punctuation'
>>> failure_reason(" I am so happy today.", "en", [0.9, 0.95, 0.9, 0.8, 0.99]) is None
True
>>> failure_reason("我们一起去吃饭吧", "zh", [0.9] * 8) is None
True
>>> failure_reason(" War in one way, Warmen.", "zh", [0.9] * 5)
'script mismatch: no Han/Kana characters in a zh transcription'
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections.abc import Sequence

NO_SPEECH_PROB = 0.6
LOGPROB_THRESHOLD = -1.0
COMPRESSION_RATIO = 2.4
#: Languages written (mostly) in Han characters or Kana, and in Latin letters (Whisper codes).
CJK_LANGUAGES = frozenset({"zh", "yue", "ja"})
LATIN_LANGUAGES = frozenset({
    "af", "az", "br", "bs", "ca", "cs", "cy", "da", "de", "en", "es", "et", "eu", "fi", "fo", "fr", "gl", "ha",
    "haw", "hr", "ht", "hu", "id", "is", "it", "jw", "la", "lb", "ln", "lt", "lv", "mg", "mi", "ms", "mt", "nl",
    "nn", "no", "oc", "pl", "pt", "ro", "sk", "sl", "sn", "so", "sq", "su", "sv", "sw", "tk", "tl", "tr", "uz",
    "vi", "yo"})
_REPEAT = re.compile(r"(.{1,10}?)\1{3,}")


def _script(ch: str) -> str | None:
    """'cjk', 'latin', 'other' for a letter, None for anything else."""
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    if name.startswith(("CJK", "HIRAGANA", "KATAKANA")):
        return "cjk"
    return "latin" if name.startswith("LATIN") else "other"


def mean_logprob(probabilities: Sequence[float]) -> float | None:
    """Mean natural log of the word probabilities (None when there are none)."""
    vals = [math.log(max(float(p), 1e-10)) for p in probabilities]
    return sum(vals) / len(vals) if vals else None


def failure_reason(text: str | None, language: str | None, word_probabilities: Sequence[float],
                   no_speech_prob: float | None = None) -> str | None:
    """Why ``text`` (decoded in ``language``) is not a usable transcription, or None; see the module."""
    text = (text or "").strip()
    lp = mean_logprob(word_probabilities)
    if not text:
        return "no speech: nothing was recognised"
    if no_speech_prob is not None and no_speech_prob > NO_SPEECH_PROB and lp is not None \
            and lp < LOGPROB_THRESHOLD:
        return f"no speech: no_speech_prob {no_speech_prob:.2f} and mean word log-probability {lp:.2f}"
    scripts = [s for s in map(_script, text) if s]
    if not scripts:
        numbers = len(re.findall(r"\d+", text))
        if numbers == 0:
            return "no words: only punctuation"
        if numbers >= 3:
            return "no words: only digits and punctuation"
    elif language in CJK_LANGUAGES and scripts.count("cjk") < 0.3 * len(scripts):
        return f"script mismatch: no Han/Kana characters in a {language} transcription"
    elif language in LATIN_LANGUAGES and scripts.count("latin") < 0.5 * len(scripts):
        return f"script mismatch: not in Latin letters, for a {language} transcription"
    compact = re.sub(r"\s+", "", text)
    m = _REPEAT.search(compact)
    if m:
        return f"repetition: {m.group(1)!r} repeated {len(m.group(0)) // len(m.group(1))} times"
    raw = text.encode("utf-8")
    if len(raw) >= 40 and len(raw) / len(zlib.compress(raw)) > COMPRESSION_RATIO:
        return f"repetition: compression ratio {len(raw) / len(zlib.compress(raw)):.1f} > {COMPRESSION_RATIO}"
    if lp is not None and lp < LOGPROB_THRESHOLD:
        return f"low confidence: mean word log-probability {lp:.2f} < {LOGPROB_THRESHOLD}"
    return None


def declared_languages(value: str | None) -> list[str]:
    """The Whisper codes a ``clips.language`` value names, in order: one for ``"en"``/``"en-US"``/``"zh-Hans"``,
    several for a code-switched clip written ``"zh+en"``, ``"zh,en"`` or ``"zh-en"`` (a lower-case second
    subtag of two or three letters that is not a script or region is read as a second language; write
    regions upper case, ``pt-BR``).

    >>> declared_languages("en-US"), declared_languages("zh-en"), declared_languages("yue+en"), declared_languages(None)
    (['en'], ['zh', 'en'], ['yue', 'en'], [])
    """
    if not value:
        return []
    out: list[str] = []
    for chunk in re.split(r"[+,;/\s]+", value.strip()):
        tags = chunk.replace("_", "-").split("-")
        if not tags[0]:
            continue
        out.append(tags[0].lower())
        out += [t for t in tags[1:] if t.islower() and 2 <= len(t) <= 3]
    return list(dict.fromkeys(out))


#: The second most probable language must reach this for a clip to be flagged as code-switched.
CODE_SWITCH_PROB = 0.2


def is_code_switched(declared: Sequence[str], detected: Sequence[tuple[str, float]]) -> bool:
    """A clip is flagged code-switched when ``clips.language`` names several languages, or when Whisper's
    language detection gives its second language at least :data:`CODE_SWITCH_PROB` (a mix, or an
    uncertain detection: a flag to check, not a proof).

    >>> is_code_switched(["zh", "en"], []), is_code_switched(["zh"], [("zh", 0.62), ("en", 0.31)])
    (True, True)
    >>> is_code_switched(["en"], [("en", 0.92), ("nn", 0.02)])
    False
    """
    return len(declared) > 1 or (len(detected) > 1 and detected[1][1] >= CODE_SWITCH_PROB)
