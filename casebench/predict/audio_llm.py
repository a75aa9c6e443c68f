"""``audio-llm:MODEL@URL``: an audio language model behind an OpenAI-compatible chat-completions API.

Each clip is sent as an ``input_audio`` content part (16 kHz mono 16-bit WAV, base64) after the prompt of
the benchmark's taxonomy (``casebench/data/predict/llm.yaml``: it names the labels and asks for exactly one,
judging the voice rather than the words, since the benchmark's target is the voice's emotion). The answer is
read into a label, with probabilities when the server gives ``logprobs`` (:mod:`casebench.predict.chat`,
which also documents retries, the rate limit, the API key variable and what happens to unparseable
answers). Options go after ``#`` in the spec (never sent to the server) or in ``options=``::

    casebench predict 'audio-llm:qwen2-audio@http://localhost:8000/v1#rate=2&concurrency=4' \\
        --benchmark casebench-audio-mini --out preds.jsonl

Servers: OpenAI (``gpt-4o-audio-preview``), vLLM serving Qwen2-Audio or Ultravox, and other servers of the
same protocol.
"""

from __future__ import annotations

import base64

from casebench.predict.chat import ChatModel


class AudioLLM(ChatModel):
    """An audio language model asked, per clip, which label the speaker's voice expresses."""

    kind = "audio-llm"

    def user_content(self, item) -> list[dict]:
        from casebench.audio import encode

        wav = encode(item.audio, self.sample_rate, "wav")
        return [{"type": "text", "text": self.prompt["user"]},
                {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode("ascii"),
                                                        "format": "wav"}}]


MODEL = AudioLLM
