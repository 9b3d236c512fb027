"""The egress guard's place in the HTTP stack: the step that turns a host name into a connection.

httpx hands requests to an httpcore connection pool, which asks its *network backend* to
``connect_tcp(host, port)``. :class:`GuardedBackend` is that backend: it resolves the name
itself, judges every address with the :class:`~hookline_http.egress.EgressPolicy`, and connects
to an admitted address, never to the name. So the address checked is the address connected to
(a second DNS answer cannot differ: there is no second lookup), every redirect hop and every new
pooled connection is checked, and TLS still verifies the certificate against the host name
(httpcore passes the URL's host to ``start_tls`` for SNI and the certificate check).

:class:`GuardedTransport` is the small httpx transport around that pool. There is no proxy
(a proxy would be the only address checked) and no Unix socket.
"""

from __future__ import annotations

import asyncio
import socket
import typing
from collections.abc import AsyncIterator, Iterable

import httpcore
import httpx

from hookline_http.egress import EgressPolicy, EgressRefused, parse_address

#: httpcore's exceptions and the httpx ones they become, most specific first.
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.ProxyError, httpx.ProxyError),
)


def _as_httpx(exc: Exception) -> Exception:
    for source, target in _EXCEPTIONS:
        if isinstance(exc, source):
            return target(str(exc))
    return exc


def is_loopback_name(host: str) -> bool:
    """``localhost`` and names under it, with or without the final dot: loopback by definition
    (RFC 6761), answered here rather than asked of a DNS server that might say otherwise."""
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses ``policy`` admits."""

    def __init__(self, policy: EgressPolicy, backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self._backend = backend or httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``, in the resolver's order, without repeats."""
        if parse_address(host) is None and is_loopback_name(host):
            return ["127.0.0.1", "::1"]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve the host name {host!r}: {exc.strerror}") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"could not resolve the host name {host!r} in time") from None
        admitted = []
        refused: tuple[str, str] | None = None
        for text in addresses:
            address = parse_address(text)
            kind = "not an IP address" if address is None else self.policy.refusal(address)
            if kind is None:
                admitted.append(text)
            elif refused is None:
                refused = (text, kind)
        if not admitted:
            if refused is None:
                raise httpcore.ConnectError(f"the host name {host!r} resolves to no address")
            raise EgressRefused(host, *refused)
        failure: Exception | None = None
        for address in admitted:  # each one vetted; the next on a refused or unreachable one
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout=remaining, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[typing.Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not supported by the HTTP Request node")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except Exception as exc:
            mapped = _as_httpx(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool whose every connection is vetted by ``policy``."""

    def __init__(self, policy: EgressPolicy, *, max_connections: int) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            # trust_env=False: SSL_CERT_FILE and friends are not read; certifi's CAs are used.
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core_request)
        except Exception as exc:
            mapped = _as_httpx(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        assert isinstance(response.stream, typing.AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
