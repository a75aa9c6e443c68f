"""``text-llm:MODEL@URL``: a text language model given only the transcript, a semantic-only reference system.

It never hears the voice: the words are all it has. On conflict clips (the voice's emotion is not the
words') it should follow the words, so its accuracy there and its ``text_following_rate`` show what a
system that reads instead of listens scores, the other end from an acoustic model such as eGeMAPS.

The transcript is the clip's ``text`` (a benchmark table's ``text``/``transcript`` column, or the
workspace's transcripts table, as :mod:`casebench.predict.sources` finds it); a clip without one is an
error naming it. The prompt, answer reading, probabilities, retries, rate limit, API key and unparseable
answers are those of :mod:`casebench.predict.chat`::

    casebench predict 'text-llm:llama3.1@http://localhost:11434/v1' --benchmark casebench-audio-mini \\
        --out text-llm.jsonl
"""

from __future__ import annotations

from casebench.errors import InputError, Problem
from casebench.predict.chat import ChatModel


class TextLLM(ChatModel):
    """A text language model asked, per transcript, which label the speaker expresses."""

    kind = "text-llm"

    def user_content(self, item) -> str:
        if not (item.text or "").strip():
            raise InputError(Problem("no transcript", id=item.id, file=item.path, field="text",
                                     expected="a 'text' column in the benchmark table, or a workspace with "
                                              "transcripts (casebench transcribe)"))
        return self.prompt["user"].replace("{transcript}", item.text.strip())


MODEL = TextLLM
