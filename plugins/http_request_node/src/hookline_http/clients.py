"""What the HTTP Request nodes of one host share: one HTTP client (one connection pool) per
server process, and the count of requests in flight to each upstream and in all.

Built for each host in ``register_node_types`` and bound into the node type, never kept in a
module global: two hosts in one process (tests) each get their own. The client is made on the
first request, in the running event loop, and closed by the plugin's ``shutdown`` hook.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import aiohttp
import certifi

from hookline_http.egress import EgressPolicy
from hookline_http.network import GuardedResolver, guarded_socket_factory
from hookline_http.settings import MAX_CONNECTIONS_VARIABLE, MAX_PER_HOST_VARIABLE, HttpSettings


def _user_agent() -> str:
    try:
        return f"hookline-http/{version('hookline-http')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "hookline-http"


USER_AGENT = _user_agent()
#: Idle connections are kept this long for reuse.
KEEPALIVE_SECONDS = 5.0
#: The longest response header line read (aiohttp's default is 8190 bytes; upstreams do send
#: longer Content-Security-Policy and Set-Cookie headers).
MAX_HEADER_LINE = 16 * 1024


class HostBusy(Exception):
    """Every slot for an upstream stayed taken for as long as the request could wait."""

    def __init__(self, origin: str, limit: int) -> None:
        self.origin = origin
        self.limit = limit
        super().__init__(f"{limit} requests to {origin} are already in flight ({MAX_PER_HOST_VARIABLE})")


class PoolBusy(Exception):
    """Every connection of the pool stayed in use for as long as the request could wait."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"no free connection within {wait:g} s ({MAX_CONNECTIONS_VARIABLE})")


class ConnectionLost(aiohttp.ClientConnectionError):
    """The connection broke during an exchange (aiohttp's own error is the ``__cause__``)."""


async def _no_resend(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
    # aiohttp sends a GET, PUT or DELETE again, once, by itself, when the connection breaks before
    # the answer, even on a new connection. Whether a call is tried again is the node's `retry`
    # to decide (each attempt recorded), so that error becomes one aiohttp does not resend on.
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise  # never resent; the node reads the error it wraps
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise ConnectionLost(str(exc) or type(exc).__name__) from exc


async def _take(semaphore: asyncio.Semaphore, wait: float) -> bool:
    """Acquire ``semaphore`` within ``wait`` seconds; whether it was."""
    if not semaphore.locked():
        await semaphore.acquire()  # free: returns at once, no timer to arm
        return True
    try:
        async with asyncio.timeout(wait):
            await semaphore.acquire()
    except TimeoutError:
        return False
    return True


@dataclass
class _Slot:
    semaphore: asyncio.Semaphore
    users: int = 0


@dataclass
class HostSlots:
    """At most ``size`` requests in flight per upstream origin, ``connections`` in all. A slow
    upstream then holds ``size`` of the server's run slots at most, whatever the number of
    workflows calling it; and as each request in flight holds one connection, a request that
    finds the pool full is told so after its wait."""

    size: int
    connections: int
    _slots: dict[str, _Slot] = field(default_factory=dict)
    _pool: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._pool = asyncio.Semaphore(self.connections)

    @asynccontextmanager
    async def hold(self, scheme: str, origin: str, wait: float) -> AsyncIterator[None]:
        """Take a slot for the upstream ``scheme://origin`` (``origin`` is ``host:port``), then
        one of the pool, for the block, waiting ``wait`` seconds at most for each
        (:class:`HostBusy`, :class:`PoolBusy` then)."""
        key = f"{scheme}://{origin}"
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(asyncio.Semaphore(self.size))
        slot.users += 1
        try:
            if not await _take(slot.semaphore, wait):
                raise HostBusy(origin, self.size)
            try:
                if not await _take(self._pool, wait):
                    raise PoolBusy(wait)
                try:
                    yield
                finally:
                    self._pool.release()
            finally:
                slot.semaphore.release()
        finally:
            slot.users -= 1
            if slot.users == 0:  # nobody holds or waits: forget the upstream
                del self._slots[key]


@dataclass
class Session:
    """The client, slots and egress policy of one event loop."""

    loop: asyncio.AbstractEventLoop
    client: aiohttp.ClientSession
    slots: HostSlots
    policy: EgressPolicy


def _client(settings: HttpSettings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections,
        limit_per_host=0,  # HostSlots bounds each upstream, and says so when it is full
        resolver=GuardedResolver(settings.policy),
        socket_factory=guarded_socket_factory(settings.policy),
        use_dns_cache=False,  # each new connection resolves the name again, and judges its addresses again
        # certifi's authorities, whatever the machine holds; SSL_CERT_FILE and SSL_CERT_DIR are not read.
        ssl=ssl.create_default_context(cafile=certifi.where()),
        keepalive_timeout=KEEPALIVE_SECONDS,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # The client is shared by every workflow: a cookie one upstream sets must never be sent by
        # another workflow's request.
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        skip_auto_headers=("Content-Type",),  # a body's type is the node's to set, never application/octet-stream
        auto_decompress=False,  # response.read_body decompresses, within max_response_size
        trust_env=False,  # no proxy and no .netrc from the environment: the guard checks the destination
        timeout=aiohttp.ClientTimeout(total=None),  # each request carries its own
        middlewares=(_no_resend,),
        max_line_size=MAX_HEADER_LINE,
        max_field_size=MAX_HEADER_LINE,
    )


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
            slots = HostSlots(self.settings.max_per_host, self.settings.max_connections)
            self._session = Session(loop, _client(self.settings), slots, self.settings.policy)
        return self._session

    @property
    def open(self) -> bool:
        """Whether a client is open (made by a request, not closed since)."""
        return self._session is not None and not self._session.client.closed

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and session.loop is asyncio.get_running_loop():
            await session.client.close()
