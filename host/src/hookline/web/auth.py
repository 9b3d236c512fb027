"""The management API's bearer token.

``HOOKLINE_API_TOKEN`` when set; otherwise a token generated on first ``serve``, printed once,
and stored only as its SHA-256 in the database (so every process and machine sharing the
database accepts it, and a database dump does not reveal it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from hookline.storage.models import Setting

TOKEN_SETTING = "api_token_sha256"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def ensure_api_token(configured: str | None) -> str | None:
    """Make sure a token exists. Returns a newly generated one (to print once), else ``None``."""
    if configured or await Setting.exists(key=TOKEN_SETTING):
        return None
    token = secrets.token_urlsafe(32)
    await Setting.create(key=TOKEN_SETTING, value=_hash(token))
    return token


async def rotate_api_token() -> str:
    """Replace the stored token with a new one and return it."""
    token = secrets.token_urlsafe(32)
    await Setting.update_or_create(key=TOKEN_SETTING, defaults={"value": _hash(token)})
    return token


class TokenVerifier:
    """Checks ``Authorization: Bearer ...`` in constant time. The stored hash is cached and
    re-read at most once a second after a mismatch, so a rotation elsewhere takes effect."""

    def __init__(self, configured: str | None) -> None:
        self._configured = configured
        self._stored_hash: str | None = None
        self._loaded_at = 0.0

    async def verify(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        if self._configured:
            return hmac.compare_digest(token.encode(), self._configured.encode())
        presented = _hash(token)
        if self._stored_hash and hmac.compare_digest(presented, self._stored_hash):
            return True
        if time.monotonic() - self._loaded_at < 1.0 and self._stored_hash is not None:
            return False
        self._loaded_at = time.monotonic()
        setting = await Setting.filter(key=TOKEN_SETTING).first()
        self._stored_hash = setting.value if setting else None
        return self._stored_hash is not None and hmac.compare_digest(presented, self._stored_hash)
