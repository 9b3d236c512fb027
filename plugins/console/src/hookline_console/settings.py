"""The console's settings, from the environment (documented in docs/console.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from hookline import PluginError

SECURE_CHOICES = ("auto", "always", "never")


@dataclass(frozen=True)
class ConsoleSettings:
    #: ``HOOKLINE_CONSOLE_PASSWORD``: a password accepted at sign-in besides the API token.
    password: str | None = None
    #: ``HOOKLINE_CONSOLE_SESSION_HOURS``: a session ends this long after sign-in.
    session_hours: float = 8.0
    #: ``HOOKLINE_CONSOLE_SECURE_COOKIE``: ``auto`` sets ``Secure`` when the request came over
    #: TLS (as Sanic sees it: behind a proxy, with its forwarded headers trusted), ``always``
    #: (TLS ends at a proxy Sanic is not told about), ``never`` (plain HTTP on a trusted network).
    secure_cookie: str = "auto"
    #: Failed sign-ins allowed per address within ``SIGN_IN_WINDOW`` seconds.
    sign_in_attempts: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsoleSettings:
        env = os.environ if environ is None else environ
        hours_text = env.get("HOOKLINE_CONSOLE_SESSION_HOURS", "8")
        try:
            hours = float(hours_text)
        except ValueError:
            hours = -1.0
        if not 0 < hours <= 24 * 30:
            raise PluginError(f"HOOKLINE_CONSOLE_SESSION_HOURS must be a number of hours above 0, at most 720, not {hours_text!r}")
        secure = env.get("HOOKLINE_CONSOLE_SECURE_COOKIE", "auto").strip().lower() or "auto"
        if secure not in SECURE_CHOICES:
            raise PluginError(f"HOOKLINE_CONSOLE_SECURE_COOKIE must be one of {', '.join(SECURE_CHOICES)}, not {secure!r}")
        attempts_text = env.get("HOOKLINE_CONSOLE_SIGN_IN_ATTEMPTS", "5")
        if not attempts_text.isdigit() or int(attempts_text) < 1:
            raise PluginError(f"HOOKLINE_CONSOLE_SIGN_IN_ATTEMPTS must be a whole number from 1, not {attempts_text!r}")
        password = env.get("HOOKLINE_CONSOLE_PASSWORD") or None
        if password is not None and len(password) < 12:
            raise PluginError("HOOKLINE_CONSOLE_PASSWORD must be at least 12 characters (or unset: sign in with the API token)")
        return cls(password=password, session_hours=hours, secure_cookie=secure, sign_in_attempts=int(attempts_text))
