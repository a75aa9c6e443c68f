"""``openai``: an OpenAI-compatible ``POST /v1/audio/speech`` endpoint with emotion instructions.

Each clip is one request ``{model, input, voice, instructions, response_format: "wav"}``; the
instructions ask for the intended acoustic emotion whatever the words say (gpt-4o-mini-tts follows
them; servers that ignore ``instructions`` give neutral speech, which the QC and annotation steps reveal).
The API key comes from ``CASEBENCH_TTS_API_KEY`` or ``OPENAI_API_KEY`` (none for a local server) and is
never stored.

Servers that clone a reference voice take it in fields of their own; ``--tts-body`` adds such fields to
every request as a JSON object whose string values may hold ``{ref_audio}`` (the reference WAV's path, for
a server on the same machine), ``{ref_audio_b64}`` (its bytes, base64), ``{ref_text}``, ``{emotion}``,
``{voice}`` and ``{language}``, e.g. ``--tts-body '{"ref_audio": "{ref_audio_b64}", "ref_text": "{ref_text}"}'``
(see docs/reference-synthesis.md).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any, ClassVar

from casebench.errors import ConfigError, InputError, Problem
from casebench.synth.backends.base import Backend

#: Instructions template; ``{emotion}`` is the intended acoustic emotion (an adjective where known).
INSTRUCTIONS = ("Speak in a {emotion} tone. Your voice must sound clearly {emotion}, whatever the words "
                "say; do not adapt the tone to the meaning of the sentence.")
#: Placeholders of ``--tts-body`` values.
BODY_PLACEHOLDERS = ("ref_audio", "ref_audio_b64", "ref_text", "emotion", "voice", "language")
_FIELD = re.compile(r"\{(" + "|".join(BODY_PLACEHOLDERS) + r")\}")
TONES = {"angry": "angry", "disgust": "disgusted", "fear": "fearful", "happy": "happy", "neutral": "neutral",
         "sad": "sad", "surprise": "surprised"}


class OpenAISpeechBackend(Backend):
    """An OpenAI-compatible /v1/audio/speech server asked for each clip's emotion in ``instructions``."""

    name: ClassVar[str] = "openai"
    description: ClassVar[str] = ("OpenAI-compatible /v1/audio/speech (OpenAI gpt-4o-mini-tts, "
                                  "Kokoro-FastAPI, LocalAI, ...) with emotion instructions.")
    licence_note: ClassVar[str] = ("Governed by the provider's terms for generated audio; check before "
                                   "publishing.")
    default_voices: ClassVar[tuple[str, ...]] = ("alloy", "nova")
    accepts_reference: ClassVar[bool] = True

    def __init__(self, url: str | None = None, model: str | None = None, *, api_key: str | None = None,
                 instructions: str = INSTRUCTIONS, timeout: float = 120.0, language: str = "en",
                 body: str | dict[str, Any] | None = None):
        if not url or not model:
            raise ConfigError("the openai backend needs --tts-url (e.g. http://localhost:8880/v1) and "
                              "--tts-model")
        from casebench.synth._http import api_key_from_env, endpoint

        self.url = endpoint(url, "/audio/speech")
        self.model = model
        self.api_key = api_key if api_key is not None else api_key_from_env("CASEBENCH_TTS_API_KEY",
                                                                            "OPENAI_API_KEY")
        self.instructions = instructions
        self.timeout = timeout
        self.language = language
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError as e:
                raise ConfigError(f"--tts-body {body!r} is not JSON ({e}); expected an object such as "
                                  '{"ref_audio": "{ref_audio_b64}", "ref_text": "{ref_text}"}') from e
        if body is not None and not isinstance(body, dict):
            raise ConfigError(f"--tts-body must be a JSON object, not {type(body).__name__}")
        self.body = dict(body or {})
        self.used = {m.group(1) for v in self.body.values() if isinstance(v, str) for m in _FIELD.finditer(v)}

    def check_reference(self, with_reference: bool) -> None:
        refs = self.used & {"ref_audio", "ref_audio_b64", "ref_text"}
        if with_reference and not refs & {"ref_audio", "ref_audio_b64"}:
            raise ConfigError("with --reference-from the openai backend needs --tts-body naming the server's "
                              'reference fields, e.g. \'{"ref_audio": "{ref_audio_b64}", "ref_text": "{ref_text}"}\'')
        if not with_reference and refs:
            raise ConfigError(f"--tts-body uses {sorted(refs)}: pass --reference-from WORKSPACE to fill them")

    def config(self) -> dict[str, Any]:
        out = {"backend": self.name, "url": self.url, "model": self.model, "instructions": self.instructions}
        if self.body:
            out["body"] = self.body
        return out

    def request(self, text: str, emotion: str, voice: str, reference=None) -> dict[str, Any]:
        """The JSON body for one clip (``--tts-body`` fields filled; a reference's audio read when asked)."""
        body = {"model": self.model, "input": text, "voice": voice, "response_format": "wav",
                "instructions": self.instructions.format(emotion=TONES.get(emotion, emotion))}
        if self.body:
            values = {"emotion": emotion, "voice": voice, "language": self.language,
                      "ref_audio": reference.audio if reference is not None else "",
                      "ref_text": reference.text if reference is not None else ""}
            if reference is not None and "ref_audio_b64" in self.used:
                values["ref_audio_b64"] = base64.b64encode(Path(reference.audio).read_bytes()).decode("ascii")
            else:
                values["ref_audio_b64"] = ""
            for key, value in self.body.items():
                body[key] = _FIELD.sub(lambda m: values[m.group(1)], value) if isinstance(value, str) else value
        return body

    def params(self, emotion: str, voice: str) -> dict[str, Any]:
        body = self.request("", emotion, voice)
        return {"url": self.url, **{k: v for k, v in body.items() if k != "input"}}

    def synthesize(self, text: str, emotion: str, voice: str, out: Path, *, reference=None) -> Path:
        from casebench.synth._http import post_json

        body, ctype = post_json(self.url, self.request(text, emotion, voice, reference), api_key=self.api_key,
                                timeout=self.timeout)
        if not body or ctype.startswith(("application/json", "text/")):
            raise InputError(Problem(f"{self.url} answered {ctype or 'nothing'} ({body[:200]!r})",
                                     expected="audio bytes (response_format wav)"))
        suffix = ".mp3" if "mpeg" in ctype else ".wav"
        out = Path(out).with_suffix(suffix)
        out.write_bytes(body)
        return out
