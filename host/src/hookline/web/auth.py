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
from typing import TYPE_CHECKING, Iterable

from sanic import Blueprint, HTTPResponse, Request

from hookline.storage import keys as stored
from hookline.web.errors import error_response

if TYPE_CHECKING:
    from hookline.host import Host

TOKEN_SETTING = "api_token_sha256"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def ensure_api_token(configured: str | None) -> str | None:
    """Make sure a token exists. Returns a newly generated one (to print once), else ``None``."""
    if configured or await stored.value_of(TOKEN_SETTING) is not None:
        return None
    token = secrets.token_urlsafe(32)
    # Another process starting at the same time may store its token first: then that one holds.
    return token if await stored.add(TOKEN_SETTING, _hash(token)) else None


async def rotate_api_token() -> str:
    """Replace the stored token with a new one and return it."""
    token = secrets.token_urlsafe(32)
    await stored.put(TOKEN_SETTING, _hash(token))
    return token


class TokenVerifier:
    """Checks ``Authorization: Bearer ...`` in constant time. The stored hash is cached for at
    most a second, so a rotation (by any process) takes effect within a second."""

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
        if time.monotonic() - self._loaded_at >= 1.0 or self._stored_hash is None:
            self._stored_hash = await stored.value_of(TOKEN_SETTING)
            self._loaded_at = time.monotonic()
        return self._stored_hash is not None and hmac.compare_digest(_hash(token), self._stored_hash)


def require_token(blueprint: Blueprint, host: Host, *, public: Iterable[str] = ()) -> None:
    """Make every route of ``blueprint`` (except the paths in ``public``) need the management
    API token: what a plugin adding admin routes calls."""
    verifier = TokenVerifier(host.settings.api_token)
    open_paths = frozenset(public)
    # For /openapi.json: these routes need the bearer token, but for the public paths.
    blueprint.ctx.hookline_token_required = True
    blueprint.ctx.hookline_public_paths = open_paths

    @blueprint.on_request
    async def check_token(request: Request) -> HTTPResponse | None:
        if request.path in open_paths or await verifier.verify(request.headers.get("authorization")):
            return None
        return error_response(
            401,
            "unauthorized",
            "this API needs 'Authorization: Bearer <token>' with the server's API token "
            "(HOOKLINE_API_TOKEN, or the token printed by the first 'hookline serve')",
            headers={"WWW-Authenticate": 'Bearer realm="hookline"'},
        )
