"""``openai``: an OpenAI-compatible ``POST /v1/audio/speech`` endpoint with emotion instructions.

Each clip is one request ``{model, input, voice, instructions, response_format: "wav"}``; the
instructions ask for the intended acoustic emotion whatever the words say (gpt-4o-mini-tts follows
them; servers that ignore ``instructions`` give neutral speech, which the QC and annotation steps reveal).
The API key comes from ``CASEBENCH_TTS_API_KEY`` or ``OPENAI_API_KEY`` (none for a local server) and is
never stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from casebench.errors import ConfigError, InputError, Problem
from casebench.synth.backends.base import Backend

#: Instructions template; ``{emotion}`` is the intended acoustic emotion (an adjective where known).
INSTRUCTIONS = ("Speak in a {emotion} tone. Your voice must sound clearly {emotion}, whatever the words "
                "say; do not adapt the tone to the meaning of the sentence.")
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

    def __init__(self, url: str | None = None, model: str | None = None, *, api_key: str | None = None,
                 instructions: str = INSTRUCTIONS, timeout: float = 120.0, language: str = "en"):
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

    def config(self) -> dict[str, Any]:
        return {"backend": self.name, "url": self.url, "model": self.model, "instructions": self.instructions}

    def request(self, text: str, emotion: str, voice: str) -> dict[str, Any]:
        """The JSON body for one clip."""
        return {"model": self.model, "input": text, "voice": voice, "response_format": "wav",
                "instructions": self.instructions.format(emotion=TONES.get(emotion, emotion))}

    def params(self, emotion: str, voice: str) -> dict[str, Any]:
        body = self.request("", emotion, voice)
        return {"url": self.url, **{k: v for k, v in body.items() if k != "input"}}

    def synthesize(self, text: str, emotion: str, voice: str, out: Path) -> Path:
        from casebench.synth._http import post_json

        body, ctype = post_json(self.url, self.request(text, emotion, voice), api_key=self.api_key,
                                timeout=self.timeout)
        if not body or ctype.startswith(("application/json", "text/")):
            raise InputError(Problem(f"{self.url} answered {ctype or 'nothing'} ({body[:200]!r})",
                                     expected="audio bytes (response_format wav)"))
        suffix = ".mp3" if "mpeg" in ctype else ".wav"
        out = Path(out).with_suffix(suffix)
        out.write_bytes(body)
        return out
