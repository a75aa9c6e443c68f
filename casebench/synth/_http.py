"""The little HTTP that the OpenAI-compatible sources need: POST JSON, get bytes back (stdlib only).

Both the chat-completions text source and the ``/v1/audio/speech`` voice backend talk to servers that
follow the OpenAI REST shapes (OpenAI itself, vLLM, llama.cpp server, LocalAI, Kokoro-FastAPI, ...).
urllib is enough for one JSON request at a time and keeps ``casebench synth`` free of extra dependencies.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from casebench.errors import ConfigError


def endpoint(url: str, path: str) -> str:
    """The full endpoint URL: ``url`` as given when it already ends with ``path``, else ``url + path``.

    >>> endpoint("http://localhost:8000/v1", "/chat/completions")
    'http://localhost:8000/v1/chat/completions'
    >>> endpoint("http://h/v1/audio/speech", "/audio/speech")
    'http://h/v1/audio/speech'
    """
    url = url.rstrip("/")
    return url if url.endswith(path) else url + path


def api_key_from_env(*names: str) -> str | None:
    """The first non-empty environment variable of ``names`` (None when none is set: a local server)."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def post_json(url: str, payload: dict[str, Any], *, api_key: str | None = None,
              timeout: float = 120.0) -> tuple[bytes, str]:
    """POST ``payload`` as JSON; returns (response body, content type).

    Raises:
        ConfigError: the server cannot be reached or answers with an HTTP error (status and the start of
            the body are in the message).
    """
    headers = {"Content-Type": "application/json", "Accept": "*/*", "User-Agent": "casebench"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"), headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        body = e.read()[:300].decode("utf-8", "replace")
        raise ConfigError(f"{url}: HTTP {e.code} {e.reason}: {body}") from e
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise ConfigError(f"{url}: cannot reach the server ({reason}); expected an OpenAI-compatible "
                          "endpoint such as http://localhost:8000/v1") from e
