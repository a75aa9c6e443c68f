"""What every TTS backend of ``synth`` provides (see :class:`Backend`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from casebench.synth.references import Reference


class Backend(ABC):
    """A text-to-speech backend: speaks a sentence in a voice with an intended emotion, into a file.

    Subclasses set ``name``, ``description`` and ``licence_note``, and implement :meth:`synthesize`. The
    backend's settings (:meth:`config`) go into the synth config hash; the per-clip parameters
    (:meth:`params`) are stored with every clip, so a clip can be made again.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    licence_note: ClassVar[str] = ""
    default_voices: ClassVar[tuple[str, ...]] = ("default",)
    #: Whether :meth:`synthesize` can be prompted with a reference clip (``synth --reference-from``).
    accepts_reference: ClassVar[bool] = False
    language: str = "en"

    def config(self) -> dict[str, Any]:
        """Settings that change the audio (hashed into the step's config; no secrets)."""
        return {"backend": self.name}

    def params(self, emotion: str, voice: str) -> dict[str, Any]:
        """Everything that determines one clip's rendering besides its text."""
        return {"voice": voice, "emotion": emotion}

    def check_reference(self, with_reference: bool) -> None:
        """Raise ConfigError when the backend's settings do not fit (or need) reference prompting."""
        if with_reference and not self.accepts_reference:
            from casebench.errors import ConfigError

            raise ConfigError(f"the {self.name} backend cannot be prompted with a reference clip; use "
                              "--backend command (a --tts-cmd with {ref_audio}) or openai (--tts-body)")

    def check_emotions(self, emotions: list[str]) -> None:
        """Raise ConfigError when the backend cannot render one of ``emotions`` (default: any is fine)."""
        return None

    def gender(self, voice: str) -> str | None:
        """The voice's gender when the backend knows it."""
        return None

    def loudness_offset_db(self, emotion: str) -> float:
        """Designed loudness of ``emotion`` relative to neutral, kept through loudness normalisation."""
        return 0.0

    @abstractmethod
    def synthesize(self, text: str, emotion: str, voice: str, out: Path, *,
                   reference: Reference | None = None) -> Path:
        """Write speech for ``text`` to ``out`` (or a sibling with another suffix) and return its path.

        ``reference`` (reference-prompted synthesis) is the clip whose voice and manner to copy; its
        ``audio`` is a WAV file the backend may read.

        Raises:
            CasebenchError: the backend failed for this clip (the message says why).
        """
