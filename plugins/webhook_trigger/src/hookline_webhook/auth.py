"""HTTP Basic authentication of callers, parsed here rather than with Sanic's
``request.credentials`` (which mishandles a ':' inside the password and a lower-case scheme)."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from typing import Any, Mapping


class MisconfiguredSecret(Exception):
    """A credential refers to an environment variable that is not set on this server."""


def resolve_secret(value: Any) -> str:
    """A secret from the config: the value itself, or ``{"env": NAME}`` read now, so that a
    changed variable takes effect without saving the workflow again."""
    if isinstance(value, str):
        return value
    name = value["env"]
    resolved = os.environ.get(name)
    if not resolved:
        raise MisconfiguredSecret(f"environment variable {name} is not set")
    return resolved


def parse_basic(header: str | None) -> tuple[bytes, bytes] | None:
    """``Authorization: Basic base64(user:password)`` -> (user, password) as bytes; ``None`` for
    anything else (missing, another scheme, bad base64, no colon). The password may hold ':'."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    username, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return username, password


def basic_matches(header: str | None, basic: Mapping[str, Any]) -> bool:
    """Both fields compared in constant time, always both (no early exit on the username)."""
    expected_user = resolve_secret(basic["username"]).encode()
    expected_password = resolve_secret(basic["password"]).encode()
    given = parse_basic(header)
    user, password = given if given is not None else (b"", b"")
    user_ok = hmac.compare_digest(user, expected_user)
    password_ok = hmac.compare_digest(password, expected_password)
    return given is not None and user_ok and password_ok


def header_matches(value: str | None, expected: Any) -> bool:
    """A header's value against one secret or several (rotation), each compared in constant
    time, all of them (no early exit)."""
    given = (value or "").strip().encode("utf-8", "surrogateescape")
    matched = False
    for secret in expected if isinstance(expected, list) else [expected]:
        matched |= hmac.compare_digest(given, resolve_secret(secret).encode("utf-8"))
    return bool(value) and matched
