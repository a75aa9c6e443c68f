"""``casebench submit``: upload a predictions file to a leaderboard server.

The token comes from the environment (``CASEBENCH_TOKEN``), never from the command line (where it would
land in shell history and process lists). Each upload carries a fresh ``Idempotency-Key``: when the
connection drops or the server restarts mid-request, the client sends the same request again and the
server answers with the submission it already made instead of making a second one (so no quota is used
twice). Refusals come back as :class:`~casebench.errors.CasebenchError` with the server's reason; an invalid
file raises :class:`~casebench.errors.InputError` with the server's line-numbered problems, the same ones
``casebench evaluate`` shows.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from casebench.errors import CasebenchError, ConfigError, InputError, Problem

TOKEN_ENV = "CASEBENCH_TOKEN"


class SubmitError(CasebenchError):
    """The server refused the submission (the message is the server's reason)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"the server refused the submission ({status} {code}): {message}")
        self.status, self.code = status, code


def _refusal(r) -> CasebenchError:
    try:
        body = r.json()
    except ValueError:
        return SubmitError(r.status_code, "http_error", r.text[:300] or r.reason_phrase)
    if not isinstance(body, dict):
        return SubmitError(r.status_code, "http_error", str(body)[:300])
    code, detail = str(body.get("error", "error")), str(body.get("detail", ""))
    if body.get("problems"):
        keys = ("found", "expected", "file", "line", "id", "field", "hint")
        problems = [Problem(**{k: p.get(k) for k in keys if k in p}) if p.get("found") else Problem(str(p))
                    for p in body["problems"]]
        return InputError(problems, summary=f"{detail} ({code})")
    return SubmitError(r.status_code, code, detail)


def submit(path: str | Path, benchmark: str, server: str, *, token: str | None = None, phase: str | None = None,
           model_name: str, model_revision: str = "", model_url: str = "", parameters: int | None = None,
           trained_on: list[str] | None = None, description: str = "", wait: bool = False,
           timeout_s: float = 600.0, retries: int = 5, client=None) -> dict:
    """Upload ``path`` to ``server``; returns the server's submission status (and its scores with ``wait``
    when they are visible to you).

    Raises:
        ConfigError: no token (set CASEBENCH_TOKEN) or the file does not exist.
        InputError: the server found problems in the file (nothing queued, no quota used).
        SubmitError: any other refusal (unknown board, quota, rate limit, bad token...).
    """
    import httpx

    from casebench.predict.runner import sidecar_model

    side, _ = sidecar_model(path) if Path(path).is_file() else (None, None)
    if side:  # what `casebench predict` recorded beside the file; fields given here win
        model_name = model_name or side.get("name") or ""
        model_revision = model_revision or side.get("revision") or ""
        parameters = parameters if parameters is not None else side.get("parameters")
        trained_on = trained_on or side.get("trained_on") or []
    if not model_name:
        raise ConfigError("a model name is required (--model-name): the board shows one row per model revision")
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigError(f"no API token: set {TOKEN_ENV} (create a token on the server's /account page)")
    path = Path(path)
    if not path.is_file():
        raise InputError(Problem("file not found", file=str(path), expected="a predictions file (JSON Lines)"))
    if not server.lower().startswith(("http://", "https://")):  # httpx would retry a bare host:port for 25 s
        raise ConfigError(f"--server {server!r}: expected the leaderboard's URL, http://HOST:PORT or https://HOST")
    data = {"benchmark": benchmark, "phase": phase or "", "model_name": model_name, "model_revision": model_revision,
            "model_url": model_url, "parameters": "" if parameters is None else str(parameters),
            "trained_on": ",".join(trained_on or []), "description": description}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    own = client is None
    client = client or httpx.Client(base_url=server.rstrip("/"), timeout=httpx.Timeout(120.0, connect=10.0))
    try:
        r = None
        for attempt in range(retries + 1):
            try:
                with open(path, "rb") as f:
                    r = client.post("/api/submissions", headers=headers, data=data, files={"file": (path.name, f)})
            except httpx.TransportError as e:
                if attempt == retries:
                    raise CasebenchError(f"cannot reach the leaderboard at {server} (tried {retries + 1} times; "
                                         f"{type(e).__name__}: {e}); is the server running, and is the URL right?"
                                         ) from None
                time.sleep(min(2 ** attempt, 10))
                continue
            retry = r.status_code >= 500 or (r.status_code == 429 and _code(r) == "rate_limited")
            if retry and attempt < retries:
                time.sleep(min(float(r.headers.get("retry-after", 2 ** attempt)), 30))
                continue
            break
        if r.status_code not in (200, 202):
            raise _refusal(r)
        status = r.json()
        if wait:
            status = wait_for(client, status["id"], headers, timeout_s)
        return status
    finally:
        if own:
            client.close()


def _code(r) -> str | None:
    try:
        return r.json().get("error")
    except (ValueError, AttributeError):
        return None


def wait_for(client, sub_id: int, headers: dict, timeout_s: float) -> dict:
    """Poll a submission until it is scored (or failed); CasebenchError after ``timeout_s``."""
    import httpx

    deadline = time.monotonic() + timeout_s
    delay = 0.5
    while True:
        try:
            r = client.get(f"/api/submissions/{sub_id}", headers={"Authorization": headers["Authorization"]})
        except httpx.TransportError:
            r = None
        if r is not None:
            if r.status_code != 200:
                raise _refusal(r)
            status = r.json()
            if status["status"] in ("done", "failed"):
                return status
        if time.monotonic() > deadline:
            raise CasebenchError(f"submission {sub_id} is not scored after {timeout_s:.0f} s; check it later on "
                                 f"/submissions/{sub_id}")
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)
