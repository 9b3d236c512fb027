"""What the HTTP Request nodes of one host share: one HTTP client (one connection pool) per
server process, and the count of requests in flight to each upstream.

Built for each host in ``register_node_types`` and bound into the node type, never kept in a
module global: two hosts in one process (tests) each get their own. The client is made on the
first request, in the running event loop, and closed by the plugin's ``shutdown`` hook.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import httpx

from hookline_http.network import GuardedTransport
from hookline_http.settings import MAX_PER_HOST_VARIABLE, HttpSettings


def _user_agent() -> str:
    try:
        return f"hookline-http/{version('hookline-http')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "hookline-http"


USER_AGENT = _user_agent()


class HostBusy(Exception):
    """Every slot for an upstream stayed taken for as long as the request could wait."""

    def __init__(self, origin: str, limit: int) -> None:
        self.origin = origin
        self.limit = limit
        super().__init__(f"{limit} requests to {origin} are already in flight ({MAX_PER_HOST_VARIABLE})")


@dataclass
class _Slot:
    semaphore: asyncio.Semaphore
    users: int = 0


@dataclass
class HostSlots:
    """At most ``size`` requests in flight per upstream origin. A slow upstream then holds
    ``size`` of the server's run slots at most, whatever the number of workflows calling it."""

    size: int
    _slots: dict[str, _Slot] = field(default_factory=dict)

    @asynccontextmanager
    async def hold(self, scheme: str, origin: str, wait: float) -> AsyncIterator[None]:
        """Take a slot for the upstream ``scheme://origin`` (``origin`` is ``host:port``) for the
        block, waiting ``wait`` seconds at most (:class:`HostBusy` then)."""
        key = f"{scheme}://{origin}"
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(asyncio.Semaphore(self.size))
        slot.users += 1
        try:
            try:
                async with asyncio.timeout(wait):
                    await slot.semaphore.acquire()
            except TimeoutError:
                raise HostBusy(origin, self.size) from None
            try:
                yield
            finally:
                slot.semaphore.release()
        finally:
            slot.users -= 1
            if slot.users == 0:  # nobody holds or waits: forget the upstream
                del self._slots[key]


@dataclass
class Session:
    """The client and slots of one event loop."""

    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    slots: HostSlots


def _no_cookies() -> http.cookiejar.CookieJar:
    # The client is shared by every workflow: a cookie one upstream sets must never be sent by
    # another workflow's request. A policy that admits no domain keeps the jar empty. (A jar, not
    # httpx.Cookies: the client copies those into a jar of its own, without the policy.)
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class HttpClients:
    """The HTTP state of one host: its settings, and the session of the running event loop."""

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self._session: Session | None = None

    def session(self) -> Session:
        """The session of the running event loop, made on first use. A process runs one loop
        (the server's); a new loop (another ``asyncio.run``) gets a new session."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.loop is not loop:
            client = httpx.AsyncClient(
                transport=GuardedTransport(self.settings.policy, max_connections=self.settings.max_connections),
                trust_env=False,  # no proxy and no .netrc from the environment: the guard checks the destination
                follow_redirects=False,  # followed one hop at a time by the node
                cookies=_no_cookies(),
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
                timeout=None,  # each request carries its own
            )
            self._session = Session(loop, client, HostSlots(self.settings.max_per_host))
        return self._session

    @property
    def open(self) -> bool:
        """Whether a client is open (made by a request, not closed since)."""
        return self._session is not None and not self._session.client.is_closed

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and session.loop is asyncio.get_running_loop():
            await session.client.aclose()
