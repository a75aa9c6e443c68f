"""``command``: any TTS program, run once per clip from a command template (no shell involved).

The template names the program and its arguments with placeholders ``{text}``, ``{emotion}``, ``{voice}``
and ``{out}`` (the file to write, ``.wav``; any format :func:`casebench.audio.decode` reads is fine)::

    casebench synth ws --backend command --tts-cmd 'mytts --emotion {emotion} --text {text} --out {out}'

Reference-prompted systems (``synth --reference-from``) also get ``{ref_audio}`` (the reference clip as a
WAV file), ``{ref_text}`` (what it says; may be empty) and ``{language}``; tools that take an output folder
and a file name rather than a path get ``{out_dir}`` and ``{out_name}``. Recipes for F5-TTS and XTTS are
in docs/reference-synthesis.md::

    --tts-cmd 'f5-tts_infer-cli --ref_audio {ref_audio} --ref_text {ref_text} --gen_text {text}
               --output_dir {out_dir} --output_file {out_name}'

The template is split like a shell would (:func:`shlex.split`) *before* the placeholders are filled,
and the program runs without a shell, so a sentence with quotes, ``;`` or ``$`` reaches it as one argument.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, ClassVar

from casebench.errors import ConfigError, InputError, Problem
from casebench.synth.backends.base import Backend

PLACEHOLDERS = ("text", "emotion", "voice", "out", "out_dir", "out_name", "ref_audio", "ref_text", "language")
#: Placeholders that only a reference-prompted run can fill.
REFERENCE_PLACEHOLDERS = ("ref_audio", "ref_text")
_FIELD = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


class CommandBackend(Backend):
    """A user's TTS program, called per clip from a template with {text} {emotion} {voice} {out}."""

    name: ClassVar[str] = "command"
    accepts_reference: ClassVar[bool] = True
    description: ClassVar[str] = "Any TTS program run per clip from a command template (--tts-cmd)."
    licence_note: ClassVar[str] = "Depends on the program and its voices; record their licences in the card."

    def __init__(self, command: str | None = None, timeout: float = 300.0, language: str = "en"):
        if not command:
            raise ConfigError("the command backend needs --tts-cmd, e.g. "
                              "'mytts --emotion {emotion} --text {text} --out {out}'")
        try:
            self.argv = shlex.split(command)
        except ValueError as e:
            raise ConfigError(f"--tts-cmd {command!r}: {e}") from e
        if not self.argv:
            raise ConfigError("--tts-cmd is empty")
        used = {m.group(1) for tok in self.argv for m in _FIELD.finditer(tok)}
        self.used = used
        missing = [p for p in ("text",) if p not in used] + ([] if "out" in used or {"out_dir", "out_name"} <= used
                                                             else ["out"])
        if missing:
            raise ConfigError(f"--tts-cmd {command!r} has no {', '.join('{' + p + '}' for p in missing)}; "
                              f"expected placeholders among {['{' + p + '}' for p in PLACEHOLDERS]}")
        self.command = command
        self.timeout = timeout
        self.language = language

    def config(self) -> dict[str, Any]:
        return {"backend": self.name, "command": self.command}

    def check_reference(self, with_reference: bool) -> None:
        if with_reference and "ref_audio" not in self.used:
            raise ConfigError(f"--tts-cmd {self.command!r} has no {{ref_audio}}: with --reference-from the "
                              "program must be given the reference clip (and usually {ref_text})")
        if not with_reference and self.used & set(REFERENCE_PLACEHOLDERS):
            raise ConfigError(f"--tts-cmd {self.command!r} uses {{ref_audio}}/{{ref_text}}: pass "
                              "--reference-from WORKSPACE (an imported acted corpus) to fill them")

    def params(self, emotion: str, voice: str) -> dict[str, Any]:
        return {"voice": voice, "emotion": emotion, "command": self.command}

    def argv_for(self, text: str, emotion: str, voice: str, out: Path, reference=None) -> list[str]:
        """The argument list for one clip (placeholders filled in each already-split token)."""
        out = Path(out)
        values = {"text": text, "emotion": emotion, "voice": voice, "out": str(out), "out_dir": str(out.parent),
                  "out_name": out.name, "language": self.language,
                  "ref_audio": reference.audio if reference is not None else "",
                  "ref_text": reference.text if reference is not None else ""}
        return [_FIELD.sub(lambda m: values[m.group(1)], tok) for tok in self.argv]

    def synthesize(self, text: str, emotion: str, voice: str, out: Path, *, reference=None) -> Path:
        out = Path(out).with_suffix(".wav")
        argv = self.argv_for(text, emotion, voice, out, reference)
        if shutil.which(argv[0]) is None:
            raise ConfigError(f"--tts-cmd: program {argv[0]!r} not found (not on PATH, not executable)")
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            raise InputError(Problem(f"--tts-cmd timed out after {self.timeout:g} s")) from e
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            raise InputError(Problem(f"--tts-cmd exited with code {proc.returncode}: {tail}",
                                     expected="exit code 0 and an audio file at {out}"))
        if not out.is_file() or out.stat().st_size == 0:
            raise InputError(Problem(f"--tts-cmd wrote no audio to {out}", expected="an audio file at {out}"))
        return out
