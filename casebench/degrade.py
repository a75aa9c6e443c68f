"""Degraded copies of a workspace's test clips: noise at set SNRs, reverberation, codecs, level and clipping.

A *condition* is a short name that says what was done (it must be a Hub-safe word: letters, digits, ``_``):

====================  ==========================================================================================
``snr<N>[_<colour>]``  additive noise at N dB SNR (``snrm5`` = -5 dB); colour ``white`` (default), ``pink``,
                       ``brown`` (generated here) or ``noise`` (a random excerpt of a file under ``noise_dir``,
                       e.g. MUSAN's ``noise/`` folder, never downloaded)
``rt<MS>``             reverberation by a synthetic room impulse response with RT60 = MS milliseconds
                       (exponentially decaying Gaussian noise after a unit direct path)
``rir``                reverberation by a real impulse response picked from ``rir_dir``
``mp3_<K>k``           MP3 round trip through ffmpeg/libmp3lame at K kbit/s
``opus<K>k``           Opus round trip through ffmpeg/libopus at K kbit/s
``nb8k``               telephone narrow band: resample to 8 kHz, Opus at 12 kbit/s, back to 16 kHz. It stands in
                       for AMR-NB, which this ffmpeg build cannot encode (no libopencore-amrnb).
``gain<N>``            level change of N dB (``gainm20`` = -20 dB), then clipped to full scale like any file
``clip<N>``            overdrive: N dB of gain, hard clipping at full scale, gain taken back off
====================  ==========================================================================================

SNR is the ratio of mean powers over the whole clip, ``10 log10(sum(s^2) / sum(n^2))``; a mixture whose peak
would exceed full scale is scaled down as a whole (both parts, so the SNR stays) and that is noted.

Ids and splits: the copy of clip ``c`` under condition ``snr5`` has clip_id ``c@snr5`` (:func:`degraded_id`;
:func:`source_of` splits it back at the last ``@``) and split ``test.snr5`` (:func:`split_name`). The Hub
allows only ``\\w+(\\.\\w+)*`` as split names, so ``test@snr5`` cannot be published; the dot is the one
separator it accepts. Randomness (noise, impulse responses, file picks) comes from a generator seeded by
``(seed, condition, clip_id)``, so a clip's copy does not depend on which other clips or conditions were run.

The pure functions take and return float32 arrays; :func:`degrade` is the workspace step: it writes
``audio/degraded/<condition>/<clip_id>.flac``, adds rows to ``clips`` (with ``meta_condition`` and
``meta_source_clip``), ``splits`` and, copied from the source clip, ``labels``; it records ``[degrade]`` in
casebench.toml. Each condition is a resumable :class:`~casebench.workspace.StepJournal`.

>>> rng = np.random.default_rng(0)
>>> s = (0.1 * np.sin(np.arange(16000) / 3)).astype(np.float32)
>>> y = add_noise(s, 10.0, rng=rng)
>>> round(snr_db(s, y - s), 1)
10.0
>>> parse_condition("snr5_pink").kind, parse_condition("snrm5").params["snr_db"]
('noise', -5.0)
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from casebench.errors import ConfigError, InputError, MissingDependencyError, Problem

SR = 16000
SEP = "@"
NOISE_COLOURS = ("white", "pink", "brown", "noise")
CODECS = {"mp3": ("libmp3lame", "mp3"), "opus": ("libopus", "ogg")}
#: Default conditions of ``casebench degrade`` without ``--conditions``.
DEFAULT_CONDITIONS = ("snr0", "snr5", "snr10", "snr20", "rt600", "opus16k", "nb8k")
_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")

_PATTERNS = [
    (re.compile(r"snr(m?)(\d+)(?:_(white|pink|brown|noise))?"), "noise"),
    (re.compile(r"rt(\d+)"), "reverb"),
    (re.compile(r"rir"), "rir"),
    (re.compile(r"mp3_(\d+)k"), "mp3"),
    (re.compile(r"opus(\d+)k"), "opus"),
    (re.compile(r"nb8k"), "narrowband"),
    (re.compile(r"gain(m?)(\d+)"), "gain"),
    (re.compile(r"clip(\d+)"), "clip"),
]


@dataclass(frozen=True)
class Condition:
    """A parsed condition name: ``kind`` and its ``params`` (JSON-ready)."""

    name: str
    kind: str
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, **self.params}


def parse_condition(name: str) -> Condition:
    """Parse a condition name (see the module docstring); ConfigError with the grammar for a bad one.

    >>> parse_condition("opus16k").params
    {'bitrate_kbps': 16}
    """
    name = str(name).strip()
    for pattern, kind in _PATTERNS:
        m = pattern.fullmatch(name)
        if not m:
            continue
        if kind == "noise":
            snr = float(m.group(2)) * (-1 if m.group(1) else 1)
            return Condition(name, kind, {"snr_db": snr, "noise": m.group(3) or "white"})
        if kind == "reverb":
            return Condition(name, kind, {"rt60_s": int(m.group(1)) / 1000})
        if kind in ("mp3", "opus"):
            return Condition(name, kind, {"bitrate_kbps": int(m.group(1))})
        if kind == "narrowband":
            return Condition(name, kind, {"sample_rate": 8000, "codec": "opus", "bitrate_kbps": 12,
                                          "note": "AMR-NB emulated: 8 kHz + Opus 12 kbit/s (no AMR encoder)"})
        if kind == "gain":
            return Condition(name, kind, {"gain_db": float(m.group(2)) * (-1 if m.group(1) else 1)})
        if kind == "clip":
            return Condition(name, kind, {"drive_db": float(m.group(1))})
        return Condition(name, kind, {})
    raise ConfigError(f"degradation condition {name!r}; expected snr<N>[_white|_pink|_brown|_noise] (snrm5 = -5 dB), "
                      "rt<ms>, rir, mp3_<k>k, opus<k>k, nb8k, gain<N>/gainm<N>, clip<dB>")


def parse_conditions(text: str | Sequence[str]) -> list[Condition]:
    """Comma-separated (or listed) condition names, parsed; every bad name is reported at once."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if str(n).strip()]
    if not names:
        raise ConfigError("no degradation condition given; expected e.g. snr5,snr10,rt600,opus16k")
    out, bad = [], []
    for n in names:
        try:
            out.append(parse_condition(n))
        except ConfigError as e:
            bad.append(Problem(str(e), field="conditions"))
    if bad:
        raise InputError(bad, summary=f"{len(bad)} bad degradation condition(s)")
    if len({c.name for c in out}) < len(out):
        raise ConfigError(f"conditions {names} name one condition twice")
    return out


def degraded_id(clip_id: str, condition: str) -> str:
    """The clip_id of ``clip_id``'s copy under ``condition``.

    >>> degraded_id("c-1", "snr5"), source_of("c-1@snr5"), source_of("c-1")
    ('c-1@snr5', 'c-1', 'c-1')
    """
    return f"{clip_id}{SEP}{condition}"


def source_of(item_id: str) -> str:
    """The source clip id of a degraded id (the id itself when it has no condition)."""
    return str(item_id).rsplit(SEP, 1)[0]


def condition_of(item_id: str) -> str | None:
    """The condition of a degraded id, or None for a clean one."""
    parts = str(item_id).rsplit(SEP, 1)
    return parts[1] if len(parts) == 2 else None


def split_name(base: str, condition: str) -> str:
    """The split of the copies of split ``base`` under ``condition`` (``test.snr5``; Hub-safe)."""
    return f"{base}.{condition}"


def rng_for(seed: int, condition: str, clip_id: str) -> np.random.Generator:
    """The generator of one clip under one condition (independent of run order)."""
    digest = hashlib.sha256(f"{condition}/{clip_id}".encode()).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


# --------------------------------------------------------------------------------------------------
# Pure signal functions


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """10 log10 of the power ratio of ``signal`` to ``noise`` (whole arrays)."""
    s = float(np.sum(np.asarray(signal, dtype=np.float64) ** 2))
    n = float(np.sum(np.asarray(noise, dtype=np.float64) ** 2))
    return float("inf") if n == 0 else float(10 * np.log10(s / n))


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian noise with a power spectrum of 1 (white), 1/f (pink) or 1/f^2 (brown).

    Shaped in the frequency domain (the DC bin is zeroed).

    >>> x = coloured_noise(16000, "pink", np.random.default_rng(0))
    >>> x.shape, round(float(x.std()), 3)
    ((16000,), 1.0)
    """
    if colour not in ("white", "pink", "brown"):
        raise ConfigError(f"noise colour {colour!r}; expected white, pink or brown")
    white = rng.standard_normal(n)
    if colour != "white":
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        f[0] = np.inf
        spec *= f ** (-0.5 if colour == "pink" else -1.0)
        white = np.fft.irfft(spec, n)
    white = white - white.mean()
    return (white / (white.std() or 1.0)).astype(np.float32)


def add_noise(x: np.ndarray, snr: float, *, rng: np.random.Generator, colour: str = "white",
              noise: np.ndarray | None = None, notes: list[str] | None = None) -> np.ndarray:
    """``x`` plus noise scaled to ``snr`` dB (power ratio over the clip).

    ``noise`` (a recording) is used from a random offset, looped when shorter than ``x``; otherwise noise of
    ``colour`` is generated. The mixture is scaled down as a whole when its peak would exceed 0.99.
    """
    x = np.asarray(x, dtype=np.float32)
    if noise is None:
        n = coloured_noise(len(x), colour, rng)
    else:
        noise = np.asarray(noise, dtype=np.float32)
        if not len(noise) or not np.any(noise):
            raise InputError(Problem("noise recording is empty or silent", expected="audible noise"))
        reps = int(np.ceil(len(x) / len(noise))) + 1
        looped = np.tile(noise, reps)
        start = int(rng.integers(0, len(noise)))
        n = looped[start:start + len(x)].astype(np.float64)
    ps = float(np.mean(np.asarray(x, dtype=np.float64) ** 2))
    pn = float(np.mean(np.asarray(n, dtype=np.float64) ** 2))
    if ps == 0:
        raise InputError(Problem("silent clip: an SNR is undefined", expected="a clip with signal"))
    y = x + (n * np.sqrt(ps / (pn * 10 ** (snr / 10)))).astype(np.float32)
    peak = float(np.max(np.abs(y)))
    if peak > 0.99:
        y *= np.float32(0.99 / peak)
        if notes is not None:
            notes.append(f"mixture scaled by {20 * np.log10(0.99 / peak):+.1f} dB to avoid clipping")
    return y.astype(np.float32)


def synthetic_rir(rt60: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A room impulse response: a unit direct path, then Gaussian noise decaying by 60 dB in ``rt60`` s.

    Energy falls as ``exp(-13.8 t / rt60)`` (amplitude ``exp(-6.9 t / rt60)``), the Sabine-style model of a
    diffuse tail (Schroeder 1962); length ``rt60`` seconds.

    >>> h = synthetic_rir(0.3, 16000, np.random.default_rng(0))
    >>> h.shape, float(h[0])
    ((4800,), 1.0)
    """
    if rt60 <= 0:
        raise ConfigError(f"RT60 {rt60} s; expected a positive time")
    n = max(2, int(rt60 * sr))
    t = np.arange(n) / sr
    h = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * 0.1
    h[0] = 1.0
    return h.astype(np.float32)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``rir``, cut to ``x``'s length and scaled back to ``x``'s RMS level."""
    from scipy.signal import fftconvolve

    x = np.asarray(x, dtype=np.float32)
    rir = np.asarray(rir, dtype=np.float64)
    start = int(np.argmax(np.abs(rir)))  # align on the direct path, so the copy is not delayed
    y = fftconvolve(x.astype(np.float64), rir[start:])[: len(x)]
    rx, ry = np.sqrt(np.mean(x.astype(np.float64) ** 2)), np.sqrt(np.mean(y ** 2))
    if ry > 0:
        y *= rx / ry
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 0.99:
        y *= 0.99 / peak
    return y.astype(np.float32)


def change_level(x: np.ndarray, gain_db: float) -> np.ndarray:
    """``x`` times ``gain_db`` dB, clipped to [-1, 1] as a file would be.

    >>> [round(v, 2) for v in change_level(np.array([0.1, 0.8], np.float32), 6.0).tolist()]
    [0.2, 1.0]
    """
    return np.clip(np.asarray(x, dtype=np.float32) * np.float32(10 ** (gain_db / 20)), -1.0, 1.0)


def overdrive(x: np.ndarray, drive_db: float) -> np.ndarray:
    """Hard clipping: ``drive_db`` dB of gain, clip at full scale, the gain taken back off."""
    g = np.float32(10 ** (drive_db / 20))
    return (np.clip(np.asarray(x, dtype=np.float32) * g, -1.0, 1.0) / g).astype(np.float32)


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise MissingDependencyError("codec conditions need ffmpeg (install the Debian package ffmpeg)")
    return exe


def codec_roundtrip(x: np.ndarray, sr: int, codec: str, bitrate_kbps: int, *,
                    codec_sr: int | None = None) -> np.ndarray:
    """Encode ``x`` with ffmpeg (``mp3`` or ``opus``) at ``bitrate_kbps`` and decode it back to ``sr``.

    With ``codec_sr`` the signal is first resampled to that rate (8000 for narrow band) and back after
    decoding. The result has ``x``'s length exactly (codec delay and padding trimmed/zero-padded at the end).
    """
    import soundfile as sf

    from casebench.audio import decode, resample, to_mono

    if codec not in CODECS:
        raise ConfigError(f"codec {codec!r}; expected one of {sorted(CODECS)}")
    encoder, fmt = CODECS[codec]
    x = np.asarray(x, dtype=np.float32)
    rate = codec_sr or sr
    y = resample(x, sr, rate)
    with tempfile.TemporaryDirectory(prefix="casebench-codec-") as tmp:
        src, enc = Path(tmp) / "in.wav", Path(tmp) / f"enc.{fmt}"
        sf.write(str(src), y, rate, subtype="FLOAT")
        cmd = [_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(src), "-c:a", encoder,
               "-b:a", f"{bitrate_kbps}k", str(enc)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            msg = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise MissingDependencyError(f"ffmpeg could not encode {codec} at {bitrate_kbps} kbit/s: {msg}")
        data, got_sr = decode(enc)
    z = resample(to_mono(data), got_sr, sr)
    if len(z) >= len(x):
        return z[: len(x)].astype(np.float32)
    return np.concatenate([z, np.zeros(len(x) - len(z), np.float32)])


def _audio_files(folder: str | Path | None, what: str) -> list[Path]:
    if folder is None:
        raise ConfigError(f"this condition needs {what}; pass --{what.replace('_', '-')} FOLDER")
    root = Path(folder).expanduser()
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise InputError(Problem("no audio files", file=str(root), expected=f"{what}: a folder of wav/flac files"))
    return files


def _load(path: Path, sr: int) -> np.ndarray:
    from casebench.audio import decode, resample, to_mono

    data, got = decode(path)
    return resample(to_mono(data), got, sr)


def apply_condition(x: np.ndarray, sr: int, cond: Condition, rng: np.random.Generator, *,
                    noise_files: Sequence[Path] = (), rir_files: Sequence[Path] = (),
                    notes: list[str] | None = None) -> np.ndarray:
    """Apply one condition to a mono clip; returns the degraded clip, same length and rate."""
    p = cond.params
    if cond.kind == "noise":
        recording = None
        if p["noise"] == "noise":
            if not noise_files:
                raise ConfigError(f"condition {cond.name} needs a noise folder (noise_dir / --noise-dir)")
            pick = noise_files[int(rng.integers(0, len(noise_files)))]
            recording = _load(pick, sr)
            if notes is not None:
                notes.append(f"noise {pick.name}")
        return add_noise(x, p["snr_db"], rng=rng, colour="white" if recording is not None else p["noise"],
                         noise=recording, notes=notes)
    if cond.kind == "reverb":
        return reverberate(x, synthetic_rir(p["rt60_s"], sr, rng))
    if cond.kind == "rir":
        if not rir_files:
            raise ConfigError(f"condition {cond.name} needs an impulse response folder (rir_dir / --rir-dir)")
        pick = rir_files[int(rng.integers(0, len(rir_files)))]
        if notes is not None:
            notes.append(f"rir {pick.name}")
        return reverberate(x, _load(pick, sr))
    if cond.kind in ("mp3", "opus"):
        return codec_roundtrip(x, sr, cond.kind, p["bitrate_kbps"])
    if cond.kind == "narrowband":
        return codec_roundtrip(x, sr, p["codec"], p["bitrate_kbps"], codec_sr=p["sample_rate"])
    if cond.kind == "gain":
        return change_level(x, p["gain_db"])
    if cond.kind == "clip":
        return overdrive(x, p["drive_db"])
    raise ConfigError(f"condition kind {cond.kind!r} has no implementation")  # pragma: no cover


# --------------------------------------------------------------------------------------------------
# The workspace step


def card_section(workspace: Any) -> dict | None:
    """What the data card shows about the degraded splits: the ``[degrade]`` section, or None."""
    sec = workspace.section("degrade") if hasattr(workspace, "section") else {}
    if not sec:
        return None
    return {"title": "Degraded test conditions", "seed": sec.get("seed"), "source_split": sec.get("source_split"),
            "id_scheme": sec.get("id_scheme"), "conditions": list(sec.get("conditions", [])),
            "noise_dir": sec.get("noise_dir"), "rir_dir": sec.get("rir_dir")}


def degrade(workspace: Any, conditions: str | Sequence[str] = DEFAULT_CONDITIONS, *, seed: int = 0,
            source_split: str = "test", noise_dir: str | Path | None = None, rir_dir: str | Path | None = None,
            batch: int = 32, progress: bool = False) -> dict:
    """Build the degraded copies of ``source_split``'s clips under every condition (see the module docstring).

    Resumable: a re-run skips the copies already made under the same condition, seed and folders. The
    ``splits`` and ``labels`` rows of the copies are re-synced from the source clips on every run (run it
    again after re-splitting or re-aggregating: ``split`` leaves copies out, ``aggregate`` drops their labels).
    One source split per workspace: copies whose source clip is no longer in ``source_split`` are removed.

    Returns:
        Summary: per condition the split name, clips made now, clips reused, notes; the ``[degrade]`` config.

    Raises:
        ConfigError: a bad condition, a missing noise/RIR folder; InputError: no splits table or no clip in
        ``source_split``, unreadable audio.
    """
    import pandas as pd

    from casebench.audio import decode, duration_s, to_mono, write_audio
    from casebench.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    ws.check_writable("audio")  # before any audio is read or made
    conds = parse_conditions(conditions)
    if not ws.has_table("splits"):
        raise InputError(Problem("table not found", file=str(ws.table_path("splits")),
                                 expected="a splits table: run `casebench split` first"))
    clips = ws.read_df("clips")
    splits = ws.read_df("splits")
    clean_splits = splits[~splits["clip_id"].astype(str).str.contains(SEP, regex=False)]
    ids = clean_splits.loc[clean_splits["split"] == source_split, "clip_id"].astype(str).tolist()
    if not ids:
        raise InputError(Problem(f"no clip in split {source_split!r}", file=str(ws.table_path("splits")),
                                 expected=f"clips in one of {sorted(set(clean_splits['split']))}"))
    noise_files = _audio_files(noise_dir, "noise_dir") if any(
        c.kind == "noise" and c.params["noise"] == "noise" for c in conds) else []
    rir_files = _audio_files(rir_dir, "rir_dir") if any(c.kind == "rir" for c in conds) else []
    by_id = clips.set_index(clips["clip_id"].astype(str))
    base_cols = [c for c in clips.columns if not c.startswith(("qc_", "meta_"))]
    from casebench.progress import progress_bar

    summary: dict[str, Any] = {"conditions": {}}
    all_rows = []
    with progress_bar(len(ids) * len(conds), "degrading", enabled=progress) as advance:
        for cond in conds:
            config = {"condition": cond.to_dict(), "seed": seed,
                      "noise_files": [str(p) for p in noise_files] if cond.params.get("noise") == "noise" else None,
                      "rir_files": [str(p) for p in rir_files] if cond.kind == "rir" else None}
            journal = ws.resumable(f"degrade-{cond.name}", config, table="clips")
            done = journal.done_ids()
            todo = [c for c in ids if degraded_id(c, cond.name) not in done]
            notes_all: list[str] = []
            for start in range(0, len(todo), batch):
                rows = []
                for cid in todo[start:start + batch]:
                    src = by_id.loc[cid]
                    data, sr = decode(ws.resolve(src["path"]))
                    x = to_mono(data)
                    notes: list[str] = []
                    y = apply_condition(x, sr, cond, rng_for(seed, cond.name, cid), noise_files=noise_files,
                                        rir_files=rir_files, notes=notes)
                    new_id = degraded_id(cid, cond.name)
                    rel = f"audio/degraded/{cond.name}/{cid}.flac"
                    sha = write_audio(ws.resolve(rel), y, sr, "flac")
                    row = {c: src[c] for c in base_cols}
                    row.update(clip_id=new_id, path=rel, sha256=sha, sample_rate=sr, duration_s=duration_s(y, sr),
                               meta_condition=cond.name, meta_source_clip=cid)
                    rows.append({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()})
                    notes_all += [f"{cid}: {n}" for n in notes]
                    advance()
                journal.write(pd.DataFrame(rows))
            made = journal.rows().to_pandas()
            made = made[made["clip_id"].map(source_of).isin(set(ids))]
            all_rows.append(made)
            summary["conditions"][cond.name] = {"split": split_name(source_split, cond.name),
                                                "made": len(todo), "reused": len(ids) - len(todo),
                                                "notes": notes_all[:20], **cond.to_dict()}
    # clips: replace the degraded rows (they follow the clean ones), keeping clean rows untouched; copies of
    # clips no longer in the source split (after a re-split) are removed with their split and label rows
    made = pd.concat(all_rows, ignore_index=True)
    clips = ws.read_df("clips")
    stale = set()
    if "meta_source_clip" in clips.columns:
        old = clips[clips["meta_source_clip"].notna()]
        stale = set(old.loc[~old["meta_source_clip"].astype(str).isin(set(ids)), "clip_id"].astype(str))
        splits = splits[~splits["clip_id"].astype(str).isin(stale)]
    keep = clips[~clips["clip_id"].astype(str).isin(set(made["clip_id"]) | stale)]
    # staleness (workspace.stale_problems): copies follow their sources, so splits that were up to date with
    # the clips and labels stay so; stale ones keep their old record (and stay stale)
    from casebench.workspace import stale_problems

    splits_record = ws.built_from("splits")
    splits_fresh = splits_record is not None and not stale_problems(ws, {"splits": None})
    labels_record = ws.built_from("labels")
    ws.write_table("clips", pd.concat([keep, made], ignore_index=True))
    # splits: one row per copy, in the condition's split
    sp = splits[~splits["clip_id"].astype(str).isin(set(made["clip_id"]))]
    new_sp = pd.DataFrame({"clip_id": made["clip_id"], "split": [split_name(source_split, condition_of(c))
                                                                  for c in made["clip_id"]], "fold": None})
    # labels: the copy carries its source clip's labels
    n_labels = 0
    if ws.has_table("labels"):
        labels = ws.read_df("labels")
        clean = labels[~labels["clip_id"].astype(str).isin(set(made["clip_id"]) | stale)]
        src_labels = clean.set_index(clean["clip_id"].astype(str))
        copies = []
        for new_id, src in zip(made["clip_id"], made["meta_source_clip"], strict=True):
            if src in src_labels.index:
                r = src_labels.loc[src].to_dict()
                r["clip_id"] = new_id
                copies.append(r)
        if copies:
            ws.write_table("labels", pd.concat([clean, pd.DataFrame(copies)], ignore_index=True),
                           built_from=labels_record)
        n_labels = len(copies)
    ws.write_table("splits", pd.concat([sp, new_sp], ignore_index=True),
                   built_from=ws.versions(["clips", "labels"]) if splits_fresh else splits_record)
    section = {"seed": seed, "source_split": source_split,
               "id_scheme": f"<clip_id>{SEP}<condition>; split {source_split}.<condition>",
               "audio": "audio/degraded/<condition>/<clip_id>.flac",
               "conditions": [c for c in ws.section("degrade").get("conditions", [])
                              if c.get("name") not in {x.name for x in conds}] + [c.to_dict() for c in conds],
               "noise_dir": str(noise_dir) if noise_dir else None, "rir_dir": str(rir_dir) if rir_dir else None}
    ws.set_section("degrade", section)
    summary.update(config=section, n_clips=len(ids), n_copies=len(made), n_labels_copied=n_labels,
                   n_stale_removed=len(stale))
    return summary
