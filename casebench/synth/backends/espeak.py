"""``espeak-ng``: formant synthesis from the Debian package, emotions as prosody profiles (the default).

espeak-ng has no emotions, so each one is rendered as a *prosody profile*: base pitch (``-p``, 0-99),
pitch range (SSML ``<prosody range>``), speaking rate (``-s``, words per minute), amplitude (``-a``,
0-200) and the gap between words (``-g``, 10 ms units). The directions follow the vocal-emotion
literature (Murray & Arnott 1993, "Toward the simulation of emotion in synthetic speech", JASA 93(2);
Scherer 2003, Speech Communication 40): anger and joy raise pitch, range, rate and intensity; sadness
lowers pitch, narrows the range and slows down; fear is fast and high; disgust slow and low.

========  =====  ========  ======  =========  ========
emotion   pitch  range     rate    amplitude  word gap
========  =====  ========  ======  =========  ========
neutral   50     medium    170     100        0
angry     58     x-high    200     170        0
disgust   30     high      130     90         1
fear      78     high      215     100        0
happy     70     x-high    185     130        0
sad       32     x-low     125     70         2
surprise  82     x-high    175     140        0
========  =====  ========  ======  =========  ========

The amplitude survives loudness normalisation as a designed offset (:meth:`loudness_offset_db`,
``20*log10(a/100)``: angry +4.6 dB, sad -3.1 dB relative to -23 LUFS). It is a crude but real acoustic
signal: a classifier can learn it, a listener hears a robot that sounds more or less agitated.

Voices are espeak-ng voice+variant names (``en-us+m3``, ``en-us+f3``, ``en-gb+m1`` ...); each voice is one
speaker. Variants ``+m1..+m7`` are male, ``+f1..+f5`` female.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar
from xml.sax.saxutils import escape

from casebench.errors import ConfigError, InputError, MissingDependencyError, Problem, did_you_mean
from casebench.synth.backends.base import Backend

RANGES = ("x-low", "low", "medium", "high", "x-high")


@dataclass(frozen=True)
class Prosody:
    """One emotion's espeak-ng settings (see the module docstring for the table and its sources)."""

    pitch: int          # -p, 0..99 (50 = the voice's own pitch)
    range: str          # SSML prosody range: x-low .. x-high
    rate: int           # -s, words per minute (espeak-ng default 175)
    amplitude: int      # -a, 0..200 (default 100)
    word_gap: int = 0   # -g, pause between words in 10 ms units

    def __post_init__(self):
        if not (0 <= self.pitch <= 99 and 80 <= self.rate <= 450 and 0 < self.amplitude <= 200
                and self.range in RANGES and 0 <= self.word_gap <= 100):
            raise ConfigError(f"prosody {self}: expected pitch 0-99, rate 80-450, amplitude 1-200, "
                              f"range one of {list(RANGES)}, word_gap 0-100")


PROFILES: dict[str, Prosody] = {
    "neutral": Prosody(pitch=50, range="medium", rate=170, amplitude=100),
    "angry": Prosody(pitch=58, range="x-high", rate=200, amplitude=170),
    "disgust": Prosody(pitch=30, range="high", rate=130, amplitude=90, word_gap=1),
    "fear": Prosody(pitch=78, range="high", rate=215, amplitude=100),
    "happy": Prosody(pitch=70, range="x-high", rate=185, amplitude=130),
    "sad": Prosody(pitch=32, range="x-low", rate=125, amplitude=70, word_gap=2),
    "surprise": Prosody(pitch=82, range="x-high", rate=175, amplitude=140),
}


@functools.cache
def espeak_version(executable: str = "espeak-ng") -> str:
    """The first line of ``espeak-ng --version`` (recorded with every clip)."""
    out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout.strip().splitlines() or ["unknown"])[0]


class EspeakBackend(Backend):
    """espeak-ng with an emotion prosody profile per clip; voices (``en-us+f3`` ...) become speakers."""

    name: ClassVar[str] = "espeak-ng"
    description: ClassVar[str] = ("Formant TTS from the Debian package espeak-ng; emotions as prosody "
                                  "profiles (pitch, pitch range, rate, amplitude, word gap).")
    licence_note: ClassVar[str] = "espeak-ng is GPL-3.0-or-later; the audio it produces is yours to license."
    default_voices: ClassVar[tuple[str, ...]] = ("en-us+m3", "en-us+f3")

    def __init__(self, profiles: dict[str, Prosody] | None = None, executable: str = "espeak-ng"):
        self.profiles = dict(PROFILES if profiles is None else profiles)
        self.executable = executable

    def _exe(self) -> str:
        exe = shutil.which(self.executable)
        if exe is None:
            raise MissingDependencyError(f"{self.executable} not found; install the Debian package espeak-ng "
                                         "(apt-get install espeak-ng) or choose another --backend")
        return exe

    def config(self) -> dict[str, Any]:
        return {"backend": self.name, "version": espeak_version(self._exe()),
                "profiles": {k: asdict(v) for k, v in sorted(self.profiles.items())}}

    def check_emotions(self, emotions: list[str]) -> None:
        missing = [e for e in emotions if e not in self.profiles]
        if missing:
            hint = did_you_mean(missing[0], self.profiles)
            raise ConfigError(f"espeak-ng has no prosody profile for {missing}; it has "
                              f"{sorted(self.profiles)}" + (f" ({hint})" if hint else "")
                              + "; pass profiles= for other taxonomies")

    def params(self, emotion: str, voice: str) -> dict[str, Any]:
        return {"voice": voice, **asdict(self.profiles[emotion]), "espeak_ng": espeak_version(self._exe())}

    def gender(self, voice: str) -> str | None:
        variant = voice.partition("+")[2].lower()
        if variant[:1] == "f" and variant[1:].isdigit():
            return "female"
        if variant[:1] == "m" and variant[1:].isdigit():
            return "male"
        return None

    def loudness_offset_db(self, emotion: str) -> float:
        return 20 * math.log10(self.profiles[emotion].amplitude / 100)

    def command(self, text: str, emotion: str, voice: str, out: Path) -> list[str]:
        """The espeak-ng argument list for one clip (SSML input carries the pitch range)."""
        p = self.profiles[emotion]
        ssml = f'<speak><prosody range="{p.range}">{escape(text)}</prosody></speak>'
        return [self._exe(), "-m", "-v", voice, "-p", str(p.pitch), "-s", str(p.rate), "-a", str(p.amplitude),
                "-g", str(p.word_gap), "-w", str(out), ssml]

    def synthesize(self, text: str, emotion: str, voice: str, out: Path, *, reference=None) -> Path:
        out = Path(out).with_suffix(".wav")
        proc = subprocess.run(self.command(text, emotion, voice, out), capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
            msg = proc.stderr.strip() or f"exit code {proc.returncode}, no audio written"
            raise InputError(Problem(f"espeak-ng failed for voice {voice!r}: {msg}", field="voice",
                                     expected="a voice listed by `espeak-ng --voices` (+variant)"))
        return out
