"""Server secrets: random keys generated once per database and shared by every process that
uses it, for plugins that sign what they hand out (the webhook's status URLs)."""

from __future__ import annotations

import secrets

from tortoise.exceptions import IntegrityError

from hookline.storage.models import Setting


async def server_secret(name: str) -> bytes:
    """The 32-byte secret ``name`` of this database, made on first use. Every process sharing the
    database gets the same one; read it once and keep it (it never changes)."""
    key = f"secret:{name}"
    setting = await Setting.filter(key=key).first()
    if setting is None:
        try:
            setting = await Setting.create(key=key, value=secrets.token_hex(32))
        except IntegrityError:  # another process made it first: use theirs
            setting = await Setting.get(key=key)
    return bytes.fromhex(setting.value)
