"""Shared audio I/O and quality measures: decode, 16 kHz mono, EBU R128 loudness, FLAC/WAV, hashes, QC.

Every clip that enters a workspace (``synth`` or ``collect``) goes through :func:`prepare`: mixed down to
mono, resampled to :data:`TARGET_SR` with soxr, and loudness-normalised to :data:`TARGET_LUFS` (EBU R128
integrated loudness, measured with pyloudnorm). Clips too short to measure (under one 400 ms gating block)
or silent keep their level, and the reason is returned as a note: nothing is changed silently.

Decoding tries soundfile first (wav, flac, ogg, mp3 with libsndfile >= 1.1) and falls back to an ``ffmpeg``
subprocess for anything it cannot read (m4a/aac, opus in mp4, ...). A file neither can read raises
:class:`~casebench.errors.InputError` naming the file and the decoder's complaint.

The quality measures are pure functions on arrays:

>>> import numpy as np
>>> sr = 16000
>>> x = np.zeros(sr, dtype=np.float32); x[4000:12000] = 0.3 * np.sin(np.arange(8000) / 5)
>>> round(duration_s(x, sr), 2), round(silence_ratio(x, sr), 1), clipping_ratio(x)
(1.0, 0.5, 0.0)
>>> snr_estimate_db(x, sr) > 60
True
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from casebench.errors import InputError, MissingDependencyError, Problem

log = logging.getLogger(__name__)

#: Sample rate of every clip in a workspace.
TARGET_SR = 16000
#: Default loudness target (EBU R128 broadcast level).
TARGET_LUFS = -23.0
#: Peak ceiling after loudness gain; louder peaks are limited by lowering the gain (with a note).
PEAK_CEILING = 0.99
#: Extensions ``collect`` picks up from a folder.
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".wma", ".aiff",
                    ".aif")
#: Extensions sent straight to ffmpeg (libsndfile cannot read these containers).
FFMPEG_ONLY = (".m4a", ".aac", ".mp4", ".wma", ".webm")
#: Shortest signal pyloudnorm can measure: one gating block of 400 ms.
LOUDNESS_BLOCK_S = 0.4
#: Level floor for frame energies (dBFS); digital silence reads as this, not -inf.
FLOOR_DB = -120.0


@dataclass
class Prepared:
    """A clip ready to store: mono float32 samples at ``sample_rate``, and what was done to it."""

    samples: np.ndarray
    sample_rate: int
    loudness_in: float | None = None   # integrated loudness before the gain (LUFS); None if unmeasurable
    gain_db: float = 0.0
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Decoding


def _ffmpeg_decode(path: Path) -> tuple[np.ndarray, int]:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise MissingDependencyError(f"{path}: soundfile cannot read this file and ffmpeg is not installed "
                                     "(install the Debian package ffmpeg)")
    with tempfile.TemporaryDirectory(prefix="casebench-ffmpeg-") as tmp:
        out = Path(tmp) / "decoded.wav"
        try:
            proc = subprocess.run([exe, "-nostdin", "-hide_banner", "-v", "error", "-i", str(path), "-vn",
                                   "-acodec", "pcm_f32le", "-f", "wav", str(out)],
                                  capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired as e:
            raise InputError(Problem("unreadable audio (ffmpeg took more than 10 minutes)", file=str(path),
                                     expected="a wav, flac, mp3, ogg or m4a file")) from e
        if proc.returncode != 0 or not out.is_file():
            msg = (proc.stderr.strip().splitlines() or ["no output"])[-1].replace(f"{path}: ", "")
            raise InputError(Problem(f"unreadable audio (ffmpeg: {msg})", file=str(path),
                                     expected="a wav, flac, mp3, ogg or m4a file"))
        import soundfile as sf

        data, sr = sf.read(str(out), dtype="float32", always_2d=True)
    return data, int(sr)


#: Extensions libsndfile decodes with libmpg123, which prints its notes ("Note: Illegal Audio-MPEG-Header ...",
#: "Warning: Xing stream size off ...") straight to file descriptor 2.
MPG123_EXTENSIONS = (".mp3", ".mp2", ".mpga")


@contextlib.contextmanager
def _c_stderr_to_log(path: Path) -> Iterator[None]:
    """Send what C libraries write to file descriptor 2 during the block to the debug log, tagged with ``path``,
    so that a decoder's raw lines do not break into the user's output (a progress bar drawing meanwhile loses
    at most one frame)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 (an embedded interpreter): nothing to catch
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    log.debug("%s: decoder: %s", path, line.strip())


def decode(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 samples of shape (frames, channels) and its sample rate.

    soundfile first; ffmpeg for :data:`FFMPEG_ONLY` containers and for anything soundfile rejects.

    Raises:
        InputError: the file is missing, neither decoder can read it, or it holds no finite samples.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise InputError(Problem("file not found", file=str(path), expected="an audio file"))
    data = None
    if path.suffix.lower() not in FFMPEG_ONLY:
        quiet = _c_stderr_to_log(path) if path.suffix.lower() in MPG123_EXTENSIONS else contextlib.nullcontext()
        try:
            with quiet:
                data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
            data = None  # not a format libsndfile knows (or a damaged header): let ffmpeg try
    if data is None:
        data, sr = _ffmpeg_decode(path)
    if data.shape[0] == 0:
        raise InputError(Problem("no audio samples", file=str(path), expected="a non-empty recording"))
    if not np.isfinite(data).all():
        raise InputError(Problem("samples that are NaN or infinite", file=str(path),
                                 expected="finite PCM samples"))
    return data, int(sr)


def decode_bytes(data: bytes, suffix: str = ".wav") -> tuple[np.ndarray, int]:
    """:func:`decode` for audio held in memory (an HTTP response body, say)."""
    with tempfile.TemporaryDirectory(prefix="casebench-audio-") as tmp:
        path = Path(tmp) / f"audio{suffix}"
        path.write_bytes(data)
        return decode(path)


# --------------------------------------------------------------------------------------------------
# Conversion and loudness


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array; a 1-D array is returned as float32.

    >>> to_mono(np.array([[1.0, 0.0], [0.5, 0.5]])).tolist()
    [0.5, 0.5]
    """
    x = np.asarray(x, dtype=np.float32)
    return x if x.ndim == 1 else x.mean(axis=1, dtype=np.float32)


def resample(x: np.ndarray, sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    """Resample a mono signal with soxr (high quality); a no-op when the rates match.

    >>> resample(np.zeros(44100, dtype=np.float32), 44100).shape
    (16000,)
    """
    if sr == target_sr:
        return np.asarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float32), sr, target_sr, quality="HQ").astype(np.float32)


def loudness_lufs(x: np.ndarray, sr: int) -> float | None:
    """EBU R128 integrated loudness (LUFS) of a mono signal; None when shorter than one 400 ms block,
    ``-inf`` when silent."""
    if len(x) < int(LOUDNESS_BLOCK_S * sr) + 1:
        return None
    import pyloudnorm

    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        warnings.simplefilter("ignore")
        return float(pyloudnorm.Meter(sr).integrated_loudness(np.asarray(x, dtype=np.float64)))


def normalize_loudness(x: np.ndarray, sr: int, target_lufs: float = TARGET_LUFS, *, offset_db: float = 0.0,
                       peak: float = PEAK_CEILING) -> tuple[np.ndarray, float | None, float, list[str]]:
    """Scale ``x`` to ``target_lufs + offset_db``; returns (samples, loudness in, gain dB, notes).

    The gain is lowered when it would push a peak above ``peak`` (noted). A clip too short or too quiet
    to measure keeps its level (noted). ``offset_db`` lets a caller keep a designed loudness difference,
    e.g. synth's louder angry profile.
    """
    notes: list[str] = []
    loud = loudness_lufs(x, sr)
    if loud is None:
        return x, None, 0.0, [f"loudness not normalised: clip shorter than {LOUDNESS_BLOCK_S:g} s"]
    if not np.isfinite(loud):
        return x, None, 0.0, ["loudness not normalised: clip is silent (below the R128 gate)"]
    gain_db = target_lufs + offset_db - loud
    top = float(np.max(np.abs(x))) if len(x) else 0.0
    if top > 0 and top * 10 ** (gain_db / 20) > peak:
        limited = 20 * np.log10(peak / top)
        notes.append(f"gain limited from {gain_db:+.1f} dB to {limited:+.1f} dB to keep peaks under {peak}")
        gain_db = float(limited)
    return (x * np.float32(10 ** (gain_db / 20))).astype(np.float32), loud, float(gain_db), notes


def prepare(x: np.ndarray, sr: int, *, target_sr: int = TARGET_SR, target_lufs: float | None = TARGET_LUFS,
            offset_db: float = 0.0) -> Prepared:
    """Mono, ``target_sr``, loudness-normalised (unless ``target_lufs`` is None): the workspace format.

    >>> p = prepare(np.zeros((8000, 2), dtype=np.float32), 8000)
    >>> p.sample_rate, p.samples.shape, p.notes
    (16000, (16000,), ['loudness not normalised: clip is silent (below the R128 gate)'])
    """
    y = resample(to_mono(x), sr, target_sr)
    if target_lufs is None:
        return Prepared(y, target_sr, loudness_lufs(y, target_sr), 0.0, ["loudness kept as given"])
    y, loud, gain, notes = normalize_loudness(y, target_sr, target_lufs, offset_db=offset_db)
    return Prepared(y, target_sr, loud, gain, notes)


# --------------------------------------------------------------------------------------------------
# Writing and hashing


def encode(x: np.ndarray, sr: int, fmt: str = "flac") -> bytes:
    """Encode a mono signal as 16-bit FLAC or WAV bytes (samples clipped to [-1, 1])."""
    import soundfile as sf

    fmt = fmt.lower()
    if fmt not in ("flac", "wav"):
        raise InputError(Problem(f"audio format {fmt!r}", expected="'flac' or 'wav'"))
    buf = io.BytesIO()
    # Quantise here rather than in libsndfile, whose float->int16 scaling differs between WAV and FLAC:
    # this way the same signal gives the same samples in either format.
    pcm = np.round(np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0) * 32767).astype(np.int16)
    sf.write(buf, pcm, sr, format=fmt.upper(), subtype="PCM_16")
    return buf.getvalue()


def write_audio(path: str | os.PathLike, x: np.ndarray, sr: int, fmt: str | None = None) -> str:
    """Write ``x`` atomically as FLAC/WAV (format from ``fmt`` or the suffix); returns the file's sha256."""
    from casebench.workspace import atomic_write_bytes

    path = Path(path)
    data = encode(x, sr, fmt or path.suffix.lstrip(".") or "flac")
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pcm_sha256(x: np.ndarray) -> str:
    """sha256 of a signal quantised to 16-bit PCM: the same audio stored as WAV or FLAC hashes the same.

    >>> pcm_sha256(np.zeros(4)) == pcm_sha256(np.zeros(4, dtype=np.float32))
    True
    """
    q = np.round(np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0) * 32767).astype("<i2")
    return hashlib.sha256(q.tobytes()).hexdigest()


# --------------------------------------------------------------------------------------------------
# Quality measures (pure)


def duration_s(x: np.ndarray, sr: int) -> float:
    """Length in seconds (frames / rate)."""
    return float(np.asarray(x).shape[0]) / sr


def clipping_ratio(x: np.ndarray, threshold: float = 0.999) -> float:
    """Share of samples (all channels) at or above ``threshold`` of full scale, measured before any gain.

    >>> clipping_ratio(np.array([0.1, 1.0, -1.0, 0.5]))
    0.5
    """
    x = np.asarray(x)
    return float(np.mean(np.abs(x) >= threshold)) if x.size else 0.0


def frame_levels_db(x: np.ndarray, sr: int, frame_ms: float = 25.0, hop_ms: float = 10.0) -> np.ndarray:
    """RMS level (dBFS, floored at :data:`FLOOR_DB`) of overlapping frames of a mono signal.

    A signal shorter than one frame is one frame.
    """
    x = np.asarray(x, dtype=np.float64)
    frame = max(1, int(sr * frame_ms / 1000))
    hop = max(1, int(sr * hop_ms / 1000))
    if len(x) <= frame:
        frames = x[None, :] if len(x) else np.zeros((1, 1))
    else:
        frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]
    rms = np.sqrt(np.mean(frames**2, axis=1))
    with np.errstate(divide="ignore"):
        return np.maximum(20 * np.log10(rms), FLOOR_DB)


def silence_ratio(x: np.ndarray, sr: int, threshold_db: float = -50.0) -> float:
    """Share of 25 ms frames whose RMS level is below ``threshold_db`` dBFS.

    Meant for loudness-normalised audio (-23 LUFS), where -50 dBFS is well below speech and above the
    noise floor of a quiet room.
    """
    return float(np.mean(frame_levels_db(x, sr) < threshold_db))


def snr_estimate_db(x: np.ndarray, sr: int, noise_pct: float = 10.0, signal_pct: float = 90.0) -> float:
    """Rough SNR (dB): the ``signal_pct`` percentile of frame levels minus the ``noise_pct`` percentile.

    Speech alternates loud syllables and pauses that show the noise floor, so the spread of frame levels
    tracks the SNR; a steady noise has a spread of a few dB. Crude (it reads a clip without pauses as
    noisy) but needs no model; digital silence counts at :data:`FLOOR_DB`.

    >>> rng = np.random.default_rng(0)
    >>> snr_estimate_db(rng.normal(0, 0.1, 16000), 16000) < 3
    True
    """
    levels = frame_levels_db(x, sr)
    return float(np.percentile(levels, signal_pct) - np.percentile(levels, noise_pct))


def qc_measures(source: np.ndarray, prepared: np.ndarray, sr: int) -> dict[str, float]:
    """The QC columns of a clip: duration, clipping (of the ``source`` samples, before any gain),
    silence ratio and SNR estimate (of the ``prepared`` samples at ``sr``)."""
    return {"duration_s": duration_s(prepared, sr), "qc_clipping_ratio": clipping_ratio(source),
            "qc_silence_ratio": silence_ratio(prepared, sr), "qc_snr_db": snr_estimate_db(prepared, sr)}
