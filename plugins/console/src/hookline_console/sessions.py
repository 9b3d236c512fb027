"""Signing in and out: sessions stored server-side, and the limit on failed sign-ins.

The operator signs in with the management API token (``HOOKLINE_API_TOKEN``, or the one the
first ``hookline serve`` printed) or with ``HOOKLINE_CONSOLE_PASSWORD``. A session is a random
cookie token whose SHA-256 is the row's id; it ends at ``expires_at`` or at sign-out, which
deletes the row (a copied cookie is then worth nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from hookline.web import TokenVerifier

from hookline_console.models import ConsoleSession
from hookline_console.settings import ConsoleSettings

#: Seconds over which failed sign-ins are counted, per address.
SIGN_IN_WINDOW = 300.0
#: Addresses remembered by the limiter; beyond, the oldest are forgotten.
MOST_ADDRESSES = 10_000
#: ``last_seen_at`` is written at most this often per session (seconds).
SEEN_EVERY = 60.0


@dataclass(frozen=True)
class Session:
    id: str
    csrf_token: str
    expires_at: datetime
    method: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SignInLimiter:
    """At most ``attempts`` failed sign-ins per address in ``window`` seconds (per process)."""

    def __init__(self, attempts: int, window: float = SIGN_IN_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0 when it may now."""
        failures = self._recent(address)
        if len(failures) < self.attempts:
            return 0
        return max(1, int(failures[0] + self.window - self._clock()) + 1)

    def failed(self, address: str) -> None:
        if address not in self._failures and len(self._failures) >= MOST_ADDRESSES:
            self._failures.pop(next(iter(self._failures)))
        self._recent(address).append(self._clock())

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and failures[0] <= self._clock() - self.window:
            failures.popleft()
        return failures


class SessionService:
    def __init__(self, api_token: str | None, settings: ConsoleSettings) -> None:
        self.settings = settings
        self._verifier = TokenVerifier(api_token)
        self.limiter = SignInLimiter(settings.sign_in_attempts)
        self._seen: dict[str, float] = {}

    async def check_secret(self, secret: str) -> str | None:
        """How ``secret`` signs in (``token`` or ``password``), or ``None``."""
        secret = secret.strip()
        if not secret:
            return None
        if await self._verifier.verify(f"Bearer {secret}"):
            return "token"
        password = self.settings.password
        if password is not None and hmac.compare_digest(secret.encode(), password.encode()):
            return "password"
        return None

    async def start(self, method: str, address: str) -> tuple[str, Session]:
        """A new session; returns the cookie's token (shown to nobody else) and the session."""
        now = _now()
        await ConsoleSession.filter(expires_at__lte=now).delete()
        token = secrets.token_urlsafe(32)
        row = await ConsoleSession.create(
            id=_hash(token),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + timedelta(hours=self.settings.session_hours),
            last_seen_at=now,
            address=address[:64],
            method=method,
        )
        return token, Session(row.id, row.csrf_token, row.expires_at, row.method)

    async def find(self, token: str | None) -> Session | None:
        """The live session of a cookie's token, or ``None``."""
        if not token or len(token) > 128:
            return None
        session_id = _hash(token)
        row = await ConsoleSession.filter(id=session_id, expires_at__gt=_now()).first()
        if row is None:
            return None
        if time.monotonic() - self._seen.get(session_id, float("-inf")) >= SEEN_EVERY:
            self._seen[session_id] = time.monotonic()
            if len(self._seen) > MOST_ADDRESSES:
                self._seen.clear()
            await ConsoleSession.filter(id=session_id).update(last_seen_at=_now())
        return Session(row.id, row.csrf_token, row.expires_at, row.method)

    async def end(self, session: Session) -> None:
        await ConsoleSession.filter(id=session.id).delete()
        self._seen.pop(session.id, None)


def _now() -> datetime:
    return datetime.now(timezone.utc)
