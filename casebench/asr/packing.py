"""Packing short clips into one Whisper window, and splitting the recognised words back to the clips.

Whisper pads every input to 30 s, so a 2-s emotional clip costs as much encoder time as 30 s of speech.
:func:`plan_windows` lays clips end to end, in the order given, with ``gap_s`` of silence between them, into
windows of at most ``window_s`` seconds; the window is decoded once with word timestamps, and
:func:`split_words` gives every word to the clip whose stretch of the window holds the word's midpoint
(clip boundaries are known exactly, the silence between them is split in the middle).

A clip is *not clean*, and is decoded again on its own, when

- a word overlaps the audio of two clips (Whisper ran a word across the silence),
- a word's midpoint lies deep in a silence gap, more than ``edge_s`` from both clips (a word in silence:
  misplaced or made up, and it cannot be said whose it is); both neighbours are redone,
- it received no word at all (Whisper may skip a clip in a window; decoded alone, a truly silent clip then
  gets an empty text and its own no-speech probability),
- it received more than ``3 + 6 * duration_s`` words (faster than anyone speaks: misplaced timestamps).

Before packing, :func:`trim_silence` cuts each clip's leading and trailing silence (an energy gate), so
the silence a clip carries neither takes window room nor tempts Whisper to place words in it; word times
are mapped back to the untrimmed clip. Clips longer than ``max_clip_s`` are never packed; clips longer than
``window_s`` get a ``long`` window of their own, which the backend decodes window after window.

>>> ws = plan_windows([2.0, 3.0, 25.0, 2.5, 40.0], PackingConfig(window_s=28.0, gap_s=1.0, max_clip_s=10))
>>> for w in ws: print(w.kind, w.members, w.spans)
packed [0, 1] [(0.0, 2.0), (3.0, 6.0)]
single [2] [(0.0, 25.0)]
single [3] [(0.0, 2.5)]
long [4] [(0.0, 40.0)]
>>> w = [Word(" Hi.", 0.1, 0.5, 0.9), Word(" Go", 3.2, 3.6, 0.8), Word(" home.", 3.6, 4.0, 0.9)]
>>> [(c.clean, [x.word for x in c.words], c.words[0].start) for c in split_words(w, ws[0].spans)]
[(True, [' Hi.'], 0.1), (True, [' Go', ' home.'], 0.2)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from casebench.asr.base import SAMPLE_RATE, WINDOW_S, Word


@dataclass(frozen=True)
class PackingConfig:
    """How clips are packed (every field enters the transcribe config hash).

    Defaults, chosen on the 200 espeak-ng clips of ``bench/transcribe.py`` (2.6 s on average, tiny.en,
    beam 5): gaps of 0.3 / 0.4 / 0.5 / 0.6 / 0.8 / 1.0 s gave 22 / 23 / 23 / 24 / 30 / 38 windows (the
    larger counts include clips redone alone: 0, 0, 0, 1, 4, 11) and WER 8.3 / 9.3 / 7.3 / 8.8 / 9.6 /
    9.7 %; 0.5 s packs ~9 clips per window with no clip redone. ``edge_s`` must stay below half the gap
    for the word-in-silence check to act. 28 s (not 30) leaves Whisper's last timestamps room at the end
    of the window; clips above 10 s gain little from packing and are decoded alone.
    """

    enabled: bool = True
    window_s: float = 28.0
    gap_s: float = 0.5
    max_clip_s: float = 28.0
    edge_s: float = 0.2
    trim_db: float | None = 35.0
    trim_pad_s: float = 0.15

    def __post_init__(self):
        if not 0 < self.window_s <= WINDOW_S:
            raise ValueError(f"window_s must be in (0, {WINDOW_S}], not {self.window_s}")
        if self.gap_s < 0 or self.edge_s < 0 or self.max_clip_s <= 0 or self.trim_pad_s < 0:
            raise ValueError("gap_s, edge_s and trim_pad_s must be >= 0 and max_clip_s > 0")

    def to_dict(self) -> dict:
        return {"enabled": self.enabled, "window_s": self.window_s, "gap_s": self.gap_s,
                "max_clip_s": self.max_clip_s, "edge_s": self.edge_s, "trim_db": self.trim_db,
                "trim_pad_s": self.trim_pad_s}


def trim_silence(audio: np.ndarray, config: PackingConfig = PackingConfig(),
                 sample_rate: int = SAMPLE_RATE, frame_s: float = 0.02) -> tuple[int, int]:
    """The (start, end) samples of ``audio`` once leading and trailing silence is cut (an energy gate).

    Frames of ``frame_s`` whose RMS is more than ``config.trim_db`` dB below the loudest frame's are
    silence; the kept stretch runs from the first to the last louder frame, widened by ``trim_pad_s`` on
    each side (soft word onsets and endings stay in). ``trim_db`` None keeps the whole clip, as does an
    all-silent clip (decoded as is, its no-speech probability then says so). Pure, no I/O.

    >>> sr = 16000; x = np.zeros(3 * sr, np.float32); x[sr:2 * sr] = 0.5
    >>> trim_silence(x, PackingConfig(trim_pad_s=0.1))
    (14400, 33600)
    """
    n = audio.size
    if config.trim_db is None or n == 0:
        return 0, n
    hop = max(1, int(round(frame_s * sample_rate)))
    frames = n // hop
    if frames < 2:
        return 0, n
    rms = np.sqrt(np.mean(np.square(audio[: frames * hop].reshape(frames, hop), dtype=np.float64), axis=1))
    peak = float(rms.max())
    if peak <= 1e-6:
        return 0, n
    loud = np.flatnonzero(rms >= peak * 10 ** (-config.trim_db / 20))
    pad = int(round(config.trim_pad_s * sample_rate))
    start = max(0, int(loud[0]) * hop - pad)
    end = min(n, (int(loud[-1]) + 1) * hop + pad)
    return start, end


@dataclass
class Window:
    """Clips (indices into the planned list) laid out in one decoding window.

    ``kind`` is ``packed`` (several clips), ``single`` (one clip, at most 30 s) or ``long`` (one clip
    longer than a window). ``spans`` are the clips' (start, end) in seconds within the window.
    """

    kind: str
    members: list[int]
    spans: list[tuple[float, float]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.spans[-1][1] if self.spans else 0.0


def plan_windows(durations: Sequence[float], config: PackingConfig = PackingConfig()) -> list[Window]:
    """Greedy packing in the given order (deterministic; a window closes when the next clip does not fit).

    A packed window that ends up holding one clip is reported as ``single``.
    """
    windows: list[Window] = []
    current: Window | None = None

    def close() -> None:
        nonlocal current
        if current is not None:
            if len(current.members) == 1:
                current.kind = "single"
            windows.append(current)
            current = None

    for i, d in enumerate(durations):
        d = float(d)
        if d > config.window_s:
            close()
            windows.append(Window("long", [i], [(0.0, round(d, 6))]))
            continue
        if not config.enabled or d > config.max_clip_s:
            close()
            windows.append(Window("single", [i], [(0.0, round(d, 6))]))
            continue
        if current is not None:
            start = current.duration + config.gap_s
            if start + d <= config.window_s:
                current.members.append(i)
                current.spans.append((round(start, 6), round(start + d, 6)))
                continue
            close()
        current = Window("packed", [i], [(0.0, round(d, 6))])
    close()
    return windows


def build_window(audios: Sequence[np.ndarray], spans: Sequence[tuple[float, float]],
                 sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The window's audio: each clip placed at its span's start, silence elsewhere (float32)."""
    if len(audios) == 1:
        return np.asarray(audios[0], dtype=np.float32)
    total = int(round(spans[-1][0] * sample_rate)) + len(audios[-1])
    out = np.zeros(total, dtype=np.float32)
    for audio, (start, _) in zip(audios, spans, strict=True):
        i = int(round(start * sample_rate))
        out[i:i + len(audio)] = audio[: total - i]
    return out


@dataclass
class ClipWords:
    """Words given to one clip of a packed window (times from the clip start) and whether to trust them."""

    words: list[Word]
    segments: set[int]
    clean: bool = True
    reason: str | None = None

    def reject(self, reason: str) -> None:
        if self.clean:
            self.clean, self.reason = False, reason


def split_words(words: Sequence[Word], spans: Sequence[tuple[float, float]], *, edge_s: float = 0.2,
                segment_of: Sequence[int] | None = None) -> list[ClipWords]:
    """Give each word of a window to a clip by its timestamps (see the module docstring for the rules).

    ``segment_of[k]`` is the index of the segment word ``k`` came from (kept per clip, to take each clip's
    scores from its own segments). Returned word times are relative to their clip's start, clamped to it.
    """
    n = len(spans)
    out = [ClipWords([], set()) for _ in range(n)]
    # boundary b between clip b and b+1: the middle of the silence between them
    bounds = [(spans[b][1] + spans[b + 1][0]) / 2 for b in range(n - 1)]
    for k, w in enumerate(words):
        hit = [c for c, (s, e) in enumerate(spans) if min(w.end, e) - max(w.start, s) > 0.0]
        mid = (w.start + w.end) / 2
        c = int(np.searchsorted(bounds, mid, side="right")) if bounds else 0
        if len(hit) > 1:
            for h in hit:
                out[h].reject(f"word {w.word.strip()!r} runs across the silence between clips")
        s, e = spans[c]
        near = 0.0 if s <= mid <= e else min(abs(mid - s), abs(mid - e))
        if near > edge_s:
            neighbours = {c, c - 1 if mid < spans[c][0] else c + 1} & set(range(n))
            for h in neighbours:
                out[h].reject(f"word {w.word.strip()!r} at {mid:.2f}s lies in the silence between clips")
        out[c].words.append(w.shifted(s, limit=e - s))
        if segment_of is not None:
            out[c].segments.add(segment_of[k])
    for c, (s, e) in enumerate(spans):
        if not out[c].words:
            out[c].reject("no words were placed in the clip")
        elif len(out[c].words) > 3 + 6 * (e - s):
            out[c].reject(f"{len(out[c].words)} words in {e - s:.1f}s")
    return out
