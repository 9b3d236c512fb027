"""Server secrets: random keys generated once per database and shared by every process that
uses it, for plugins that sign what they hand out (the webhook's status URLs)."""

from __future__ import annotations

import secrets

from hookline.storage import keys as stored


async def server_secret(name: str) -> bytes:
    """The 32-byte secret ``name`` of this database, made on first use. Every process sharing the
    database gets the same one; read it once and keep it (it never changes)."""
    return bytes.fromhex(await stored.setdefault(f"secret:{name}", secrets.token_hex(32)))
