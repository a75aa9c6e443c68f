"""Word error rate of transcripts against the text that was meant to be spoken, after one text normaliser.

WER = (S + D + I) / N: substitutions, deletions and insertions of the minimal word alignment of hypothesis
to reference, over the N reference words (jiwer computes the alignment). A corpus WER is the same ratio
over all clips pooled (errors summed, reference words summed), not the mean of per-clip WERs, so long
clips weigh by their length.

Both sides go through :func:`normalize_text` first, so that what the ear cannot tell apart is not counted
as an error:

1. Unicode NFKC, lower case; curly quotes as straight ones.
2. Digit groups lose their thousands commas (``1,000`` → ``1000``); ``%`` becomes `` percent``.
3. Simple numbers become words: integers below one billion (``12`` → ``twelve``, ``2024`` → ``two thousand
   twenty four``), decimals (``3.5`` → ``three point five``), and ordinals ``1st 2nd 3rd 4th``. Whisper
   writes ``12 years`` for a speaker who said "twelve years".
4. Apostrophes are removed inside words (``don't`` → ``dont``, ``o'clock`` → ``oclock``); every other
   punctuation mark and symbol becomes a space (``well-being`` → ``well being``).
5. Whitespace is collapsed and stripped.

Not normalised (counted as errors): spelling variants (``cancelled``/``canceled``), contractions versus full
forms (``I'm``/``I am``), years read as pairs ("nineteen ninety", written ``1990``), currency.

>>> normalize_text("We won after 12 years -- didn't we?")
'we won after twelve years didnt we'
>>> round(wer("The meeting starts at ten o'clock.", "the meeting starts at 10 o'clock"), 3)
0.0
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((1_000_000, "million"), (1_000, "thousand"), (100, "hundred"))
_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
             "nine": "ninth", "twelve": "twelfth"}

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u02bc": "'", "`": "'"})
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NUMBER = re.compile(r"(?<![\w.])(\d+)(?:\.(\d+))?(st|nd|rd|th)?(?![\w])")
_APOSTROPHE = re.compile(r"(?<=\w)'(?=\w)")
_NON_WORD = re.compile(r"[^\w]+|_")


def number_to_words(n: int) -> str:
    """English words for a non-negative integer below one billion, without "and" or hyphens.

    Written by hand (a dozen lines) rather than adding a dependency such as num2words for it.

    >>> number_to_words(0), number_to_words(42), number_to_words(1905), number_to_words(3_000_017)
    ('zero', 'forty two', 'one thousand nine hundred five', 'three million seventeen')
    """
    if not 0 <= n < 1_000_000_000:
        raise ValueError(f"number_to_words takes 0 <= n < 1e9, not {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in _SCALES:
        if n >= size:
            head, rest = divmod(n, size)
            return f"{number_to_words(head)} {name}" + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")  # pragma: no cover


def _ordinal(words: str) -> str:
    *head, last = words.split(" ")
    if last in _ORDINALS:
        last = _ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def _spell_number(m: re.Match) -> str:
    whole, frac, suffix = m.group(1), m.group(2), m.group(3)
    if len(whole) > 9 or (whole.startswith("0") and len(whole) > 1):
        return m.group(0)  # phone numbers, codes: not "simple"; left as digits on both sides
    words = number_to_words(int(whole))
    if frac is not None:
        return f" {words} point {' '.join(_ONES[int(d)] for d in frac)} "
    if suffix:
        words = _ordinal(words)
    return f" {words} "


def normalize_text(text: str) -> str:
    """The text normaliser applied to reference and hypothesis before WER (see the module docstring).

    >>> normalize_text("  Wow, you bought me a PUPPY for my 21st birthday!  ")
    'wow you bought me a puppy for my twenty first birthday'
    >>> normalize_text("It costs 1,250.5% more")
    'it costs one thousand two hundred fifty point five percent more'
    """
    text = unicodedata.normalize("NFKC", text or "").lower().translate(_QUOTES)
    text = _THOUSANDS.sub("", text).replace("%", " percent ")
    text = _NUMBER.sub(_spell_number, text)
    text = _APOSTROPHE.sub("", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


@dataclass(frozen=True)
class WerCounts:
    """Edit counts of hypotheses against references: ``wer = (S + D + I) / N``."""

    substitutions: int
    deletions: int
    insertions: int
    n_ref_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float | None:
        """None when there are no reference words (WER is undefined then)."""
        return self.errors / self.n_ref_words if self.n_ref_words else None

    def __add__(self, other: WerCounts) -> WerCounts:
        return WerCounts(self.substitutions + other.substitutions, self.deletions + other.deletions,
                         self.insertions + other.insertions, self.n_ref_words + other.n_ref_words)

    def to_dict(self) -> dict:
        return {"wer": self.wer, "substitutions": self.substitutions, "deletions": self.deletions,
                "insertions": self.insertions, "n_ref_words": self.n_ref_words}


ZERO = WerCounts(0, 0, 0, 0)


def wer_counts(reference: str, hypothesis: str) -> WerCounts:
    """Edit counts of one normalised hypothesis against one normalised reference.

    >>> wer_counts("the old house", "the house").to_dict()
    {'wer': 0.3333333333333333, 'substitutions': 0, 'deletions': 1, 'insertions': 0, 'n_ref_words': 3}
    """
    import jiwer

    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:  # jiwer refuses an empty reference; every hypothesis word is an insertion
        return WerCounts(0, 0, len(hyp.split()), 0)
    out = jiwer.process_words(ref, hyp)
    return WerCounts(out.substitutions, out.deletions, out.insertions, len(ref.split()))


def wer(reference: str, hypothesis: str) -> float | None:
    """WER of one hypothesis after :func:`normalize_text`; None for an empty reference."""
    return wer_counts(reference, hypothesis).wer


def corpus_wer(references: Sequence[str], hypotheses: Sequence[str]) -> WerCounts:
    """Pooled edit counts over pairs (``.wer`` is total errors over total reference words).

    >>> corpus_wer(["a b c d", "e f"], ["a b c d", "e"]).wer
    0.16666666666666666
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    total = ZERO
    for r, h in zip(references, hypotheses, strict=True):
        total = total + wer_counts(r, h)
    return total
