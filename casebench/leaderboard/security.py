"""Passwords, API tokens, signed sessions, CSRF tokens and the per-token rate limit.

- Passwords: scrypt (stdlib ``hashlib.scrypt``, n=2**14, r=8, p=1, 16-byte salt), compared in constant time.
- API tokens: ``cbt_`` + 32 random bytes (URL-safe base64). Stored as SHA-256: a token carries 256 bits of
  randomness, so there is no dictionary to slow down (the reason passwords get scrypt), and a deterministic
  hash lets the server find a token by its hash in one indexed lookup (the scheme of GitHub and PyPI
  tokens). The token itself is shown once, at creation.
- Sessions: a cookie signed with itsdangerous (timestamped, so it expires) holding a random session id and
  the user id; a new session id at every sign-in and sign-out.
- CSRF: every form carries ``HMAC(secret, "csrf:" + session id)``; a POST from a form is refused unless the
  field matches the cookie's session. The JSON API takes only bearer tokens (never cookies), so a
  cross-site form cannot act through it.
- Rate limit: a token bucket per API token (or per signed-in user), in the server process's memory.

>>> h = hash_password("correct horse")
>>> verify_password("correct horse", h), verify_password("wrong", h)
(True, False)
>>> t = new_token()
>>> t.startswith("cbt_") and len(token_hash(t)) == 64
True
>>> bucket = RateLimiter(burst=2, per_minute=60)
>>> [bucket.allow("k", now=0.0)[0] for _ in range(3)]
[True, True, False]
>>> bucket.allow("k", now=1.0)[0]
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time

from itsdangerous import BadSignature, URLSafeTimedSerializer

_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
TOKEN_PREFIX = "cbt_"


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` of a password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string (constant-time compare)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


def new_token() -> str:
    """A fresh API token (shown once; store only :func:`token_hash`)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Sessions:
    """Signed, expiring session cookies and the CSRF tokens bound to them."""

    cookie = "cb_session"

    def __init__(self, secret: str, max_age_s: int):
        self.secret = secret.encode("utf-8")
        self.max_age_s = max_age_s
        self._s = URLSafeTimedSerializer(secret, salt="casebench-leaderboard-session")

    def new(self, user_id: int | None = None) -> dict:
        return {"sid": secrets.token_urlsafe(16), "uid": user_id}

    def dumps(self, session: dict) -> str:
        return self._s.dumps(session)

    def loads(self, cookie: str | None) -> dict | None:
        """The session in a cookie, or None when absent, tampered with or expired."""
        if not cookie:
            return None
        try:
            data = self._s.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            return None
        return data

    def csrf_token(self, session: dict) -> str:
        return hmac.new(self.secret, b"csrf:" + session["sid"].encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, session: dict | None, token: str | None) -> bool:
        return bool(session and token) and hmac.compare_digest(self.csrf_token(session), str(token))


class RateLimiter:
    """Token buckets keyed by a string: ``burst`` requests at once, refilled at ``per_minute`` per minute.

    In memory and per process (a restart refills the buckets); thread-safe.
    """

    def __init__(self, burst: int, per_minute: float):
        self.burst = max(1, int(burst))
        self.rate = max(per_minute, 1e-9) / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> tuple[bool, float]:
        """(allowed, seconds to wait before the next request would be allowed)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return True, 0.0
            self._buckets[key] = (tokens, now)
            return False, (1.0 - tokens) / self.rate
