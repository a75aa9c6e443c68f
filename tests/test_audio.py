"""casebench.audio: decoding (soundfile and ffmpeg), 16 kHz mono, EBU R128 loudness, hashes, QC measures."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from casebench import audio
from casebench.errors import InputError

SR = 16000


def tone(seconds: float, sr: int = SR, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(sr: int = SR, seed: int = 0) -> np.ndarray:
    """Bursts of tone ("syllables") between pauses with a faint noise floor at about -70 dBFS."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(6):
        parts += [tone(0.25, sr, freq=150 + 50 * rng.random()), np.zeros(int(0.15 * sr), np.float32)]
    x = np.concatenate(parts)
    return x + rng.normal(0, 3e-4, len(x)).astype(np.float32)


# ----- pure measures


def test_clipping_ratio_counts_full_scale_samples_in_all_channels():
    x = np.array([[0.1, 1.0], [-1.0, 0.2], [0.5, 0.5], [0.9995, 0.0]])
    assert audio.clipping_ratio(x) == pytest.approx(3 / 8)
    assert audio.clipping_ratio(np.zeros(0)) == 0.0


def test_silence_ratio_and_snr_tell_speech_from_silence_and_noise():
    x = speechlike()
    assert 0.2 < audio.silence_ratio(x, SR) < 0.5
    assert audio.snr_estimate_db(x, SR) > 40
    assert audio.silence_ratio(np.zeros(SR), SR) == 1.0
    assert audio.snr_estimate_db(np.zeros(SR), SR) == 0.0
    noise = np.random.default_rng(1).normal(0, 0.1, SR)
    assert audio.snr_estimate_db(noise, SR) < 3
    assert audio.silence_ratio(noise, SR) == 0.0


def test_frame_levels_handle_short_and_empty_signals():
    assert audio.frame_levels_db(np.zeros(0), SR).tolist() == [audio.FLOOR_DB]
    assert len(audio.frame_levels_db(np.ones(10), SR)) == 1
    assert audio.frame_levels_db(np.ones(10), SR)[0] == pytest.approx(0.0)


def test_duration_and_qc_measures():
    x = tone(1.5)
    m = audio.qc_measures(x, x, SR)
    assert m["duration_s"] == pytest.approx(1.5)
    assert set(m) == {"duration_s", "qc_clipping_ratio", "qc_silence_ratio", "qc_snr_db"}


# ----- conversion and loudness


def test_prepare_makes_16k_mono_at_target_loudness():
    stereo = np.stack([tone(2.0, 44100, amp=0.05), tone(2.0, 44100, amp=0.05)], axis=1)
    p = audio.prepare(stereo, 44100)
    assert p.sample_rate == SR and p.samples.ndim == 1 and len(p.samples) == 2 * SR
    assert p.samples.dtype == np.float32
    assert audio.loudness_lufs(p.samples, SR) == pytest.approx(audio.TARGET_LUFS, abs=0.2)
    assert p.loudness_in is not None and p.gain_db > 0 and p.notes == []


def test_prepare_keeps_a_designed_offset_and_limits_peaks():
    x = tone(2.0, amp=0.05)
    louder = audio.prepare(x, SR, offset_db=4.0)
    assert audio.loudness_lufs(louder.samples, SR) == pytest.approx(-19.0, abs=0.2)
    limited = audio.prepare(x, SR, target_lufs=-1.0)
    assert np.max(np.abs(limited.samples)) <= audio.PEAK_CEILING + 1e-6
    assert any("gain limited" in n for n in limited.notes)


def test_short_or_silent_clips_keep_their_level_with_a_note():
    short = tone(0.3)
    p = audio.prepare(short, SR)
    assert np.array_equal(p.samples, short) and p.loudness_in is None
    assert "shorter than 0.4 s" in p.notes[0]
    silent = audio.prepare(np.zeros(SR, np.float32), SR)
    assert "silent" in silent.notes[0]
    kept = audio.prepare(tone(1.0), SR, target_lufs=None)
    assert kept.gain_db == 0.0 and kept.notes == ["loudness kept as given"]


def test_to_mono_and_resample():
    assert audio.to_mono(np.ones((5, 3))).shape == (5,)
    assert audio.resample(tone(1.0, 8000), 8000).shape == (SR,)
    y = audio.resample(tone(1.0, 48000, freq=440), 48000)
    peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * SR / len(y)
    assert peak_hz == pytest.approx(440, abs=2)


# ----- files


def test_write_audio_hashes_and_pcm_hash_ignores_container(tmp_path):
    x = tone(1.0)
    sha_flac = audio.write_audio(tmp_path / "a.flac", x, SR)
    sha_wav = audio.write_audio(tmp_path / "a.wav", x, SR)
    assert sha_flac == audio.file_sha256(tmp_path / "a.flac") and sha_flac != sha_wav
    assert sf.info(str(tmp_path / "a.flac")).samplerate == SR
    a, _ = audio.decode(tmp_path / "a.flac")
    b, _ = audio.decode(tmp_path / "a.wav")
    assert audio.pcm_sha256(a[:, 0]) == audio.pcm_sha256(b[:, 0])
    with pytest.raises(InputError, match="'flac' or 'wav'"):
        audio.encode(x, SR, "mp3")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the Debian package ffmpeg")
def test_decode_uses_ffmpeg_for_m4a(tmp_path):
    src = tmp_path / "a.wav"
    sf.write(str(src), tone(1.0, 22050), 22050)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-c:a", "aac", str(tmp_path / "a.m4a")],
                   check=True)
    x, sr = audio.decode(tmp_path / "a.m4a")
    assert sr == 22050 and x.shape[1] == 1 and abs(x.shape[0] / sr - 1.0) < 0.1


def test_decode_errors_name_the_file(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF0000WAVEnot really audio" * 10)
    with pytest.raises(InputError, match="corrupt.wav") as e:
        audio.decode(bad)
    assert "unreadable audio" in e.value.problems[0].found
    with pytest.raises(InputError, match="file not found"):
        audio.decode(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0), SR)
    with pytest.raises(InputError, match="no audio samples"):
        audio.decode(empty)


def test_decode_bytes_round_trip():
    x, sr = audio.decode_bytes(audio.encode(tone(0.5), SR, "wav"))
    assert sr == SR and x.shape == (SR // 2, 1)


def test_mpg123_notes_do_not_reach_stderr(tmp_path, capfd, caplog):
    """libmpg123 prints resync notes on a damaged MP3 straight to file descriptor 2; decode() logs them instead
    (the raw lines used to break into `casebench collect`'s output)."""
    import logging

    import numpy as np
    import soundfile as sf

    from casebench.audio import decode

    x = (0.3 * np.sin(np.arange(48000) * 2 * np.pi * 220 / 16000)).astype("float32")
    good = tmp_path / "good.mp3"
    sf.write(str(good), x, 16000, format="MP3")
    raw = bytearray(good.read_bytes())
    raw[2000:2050] = np.random.default_rng(0).integers(0, 256, 50, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(bytes(raw))
    sf.read(str(bad))  # the premise: read directly, the damaged file makes libmpg123 print to fd 2
    assert "Note:" in capfd.readouterr().err
    with caplog.at_level(logging.DEBUG, logger="casebench.audio"):
        data, sr = decode(bad)
    assert sr == 16000 and data.shape[0] > 16000
    assert capfd.readouterr().err == ""
    assert any("decoder: Note:" in r.getMessage() and "bad.mp3" in r.getMessage() for r in caplog.records)
