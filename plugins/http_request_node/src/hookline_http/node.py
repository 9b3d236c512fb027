"""The ``http-request`` node type: calls another HTTP API from a workflow."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
from hookline import NodeError, NodeResult, NodeRun, NodeType

from hookline_http import failures, network
from hookline_http.clients import HostBusy, HttpClients, PoolBusy, Session
from hookline_http.egress import EgressRefused
from hookline_http.failures import CallFailed
from hookline_http.request import Outgoing, build_request
from hookline_http.response import body_text, body_value, read_body, response_headers
from hookline_http.retry import RetryPolicy, fails_job, retry_after
from hookline_http.schema import (
    CONFIG_SCHEMA,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_TOTAL_TIMEOUT,
    UI_HINTS,
    config_problems,
)
from hookline_http.urls import origin_of, redirect_url, same_origin

if TYPE_CHECKING:
    from hookline import NodeDefinition, WorkflowDefinition
    from yarl import URL

#: The statuses whose ``Location`` is followed (when ``redirects`` allows).
REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class CallOptions:
    """How a call is made, from the rendered config, defaults filled in."""

    connect: float = DEFAULT_CONNECT_TIMEOUT
    total: float = DEFAULT_TOTAL_TIMEOUT
    redirects: int = 0
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE
    response_format: str = "auto"
    fail_on_status: bool | tuple[int | str, ...] = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CallOptions:
        timeout = config.get("timeout") or {}
        total = timeout.get("total", cls.total)
        fail_on_status = config.get("fail_on_status", True)
        return cls(
            connect=min(timeout.get("connect", cls.connect), total),
            total=total,
            redirects=config.get("redirects", cls.redirects),
            max_response_size=config.get("max_response_size", cls.max_response_size),
            response_format=config.get("response_format", cls.response_format),
            fail_on_status=fail_on_status if isinstance(fail_on_status, bool) else tuple(fail_on_status),
            retry=RetryPolicy.from_config(config.get("retry")),
        )


@dataclass
class Exchange:
    """The response an attempt got, body read."""

    status: int
    headers: dict[str, str]
    content: bytes
    encoded: bool
    url: URL


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class HttpRequestNode(NodeType):
    """Calls an HTTP API; the result is ``{"status", "headers", "body", "url", "attempts",
    "ms", "request"}`` (and ``"body_encoding": "base64"`` for a body that is not text).

    Registered bound to one host's :class:`~hookline_http.clients.HttpClients` with
    :meth:`using`: the client, its connection pool and the per-upstream limits belong to the
    host, not to the module.
    """

    name = "http-request"
    title = "HTTP Request: call another HTTP API"
    config_schema: ClassVar[Mapping[str, Any]] = CONFIG_SCHEMA
    ui_hints: ClassVar[Mapping[str, Mapping[str, Any]]] = UI_HINTS
    clients: ClassVar[HttpClients | None] = None

    @classmethod
    def using(cls, clients: HttpClients) -> type[HttpRequestNode]:
        """A subclass bound to ``clients`` (one host's HTTP state)."""
        attributes = {"clients": clients, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
        return type(cls.__name__, (cls,), attributes)

    @classmethod
    def check(cls, node: NodeDefinition, workflow: WorkflowDefinition) -> Iterable[str]:
        return config_problems(node.config)

    async def execute(self, run: NodeRun) -> NodeResult:
        clients = type(self).clients
        if clients is None:
            raise RuntimeError("HttpRequestNode is not bound to a host: register HttpRequestNode.using(clients)")
        call = Call(clients.session(), run.config, self.config)
        return NodeResult(result=await call.run())


class Call:
    """One run of the node: its attempts, each following redirects, and the result."""

    def __init__(self, session: Session, config: Mapping[str, Any], raw_config: Mapping[str, Any]) -> None:
        self.session = session
        self.config = config
        self.raw_config = raw_config
        self.options = CallOptions.from_config(config)
        # Connecting (resolving the name, connecting, TLS) within `connect`; the rest within
        # `total`, which _attempt bounds itself, every hop included.
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=self.options.connect, sock_connect=self.options.connect
        )
        self.attempts: list[dict[str, Any]] = []
        self.outgoing: Outgoing | None = None

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        try:
            self.outgoing = build_request(self.config, self.raw_config)
            exchange, note = await self._attempts()
        except CallFailed as exc:
            details = {**exc.details, "attempts": self.attempts}
            if self.outgoing is not None:
                details.setdefault("url", str(self.outgoing.url))
            raise NodeError(exc.message, error=exc.code, **details) from None
        content_type = exchange.headers.get("content-type", "")
        options = self.options
        if fails_job(exchange.status, options.fail_on_status):
            body, _ = body_value(exchange.content, content_type, "text", exchange.encoded)
            message = f"upstream answered {exchange.status}" + (f" and {note}" if note else "")
            raise NodeError(
                message,
                error=failures.UPSTREAM_STATUS,
                status=exchange.status,
                body=body_text(body),
                attempts=self.attempts,
                url=str(exchange.url),
            )
        try:
            body, encoding = body_value(exchange.content, content_type, options.response_format, exchange.encoded)
        except CallFailed as exc:
            raise NodeError(
                exc.message, error=exc.code, status=exchange.status, attempts=self.attempts, url=str(exchange.url)
            ) from None
        result: dict[str, Any] = {
            "status": exchange.status,
            "headers": exchange.headers,
            "body": body,
            "url": str(exchange.url),
            "attempts": self.attempts,
            "ms": _ms(time.monotonic() - started),
            "request": self.outgoing.record() if self.outgoing else None,
        }
        if encoding is not None:
            result["body_encoding"] = encoding
        return result

    async def _attempts(self) -> tuple[Exchange, str | None]:
        """Attempt the call as ``retry`` allows; the last response and, when retrying stopped
        early because the upstream asked to wait too long, why."""
        retry = self.options.retry
        delay = 0.0
        for number in range(1, retry.attempts + 1):
            if delay:
                await asyncio.sleep(delay)
            record: dict[str, Any] = {"attempt": number, "status": None}
            self.attempts.append(record)
            started = time.monotonic()
            try:
                exchange = await self._attempt()
            except CallFailed as exc:
                record.update(error=exc.message, ms=_ms(time.monotonic() - started), waited_ms=_ms(delay))
                if not exc.retryable or number == retry.attempts:
                    raise
                delay = retry.delay(number)
                continue
            record.update(status=exchange.status, ms=_ms(time.monotonic() - started), waited_ms=_ms(delay))
            if number == retry.attempts or not retry.retries_status(exchange.status):
                return exchange, None
            asked = retry_after(exchange.headers.get("retry-after"))
            if asked is not None and asked > retry.max_delay:
                note = f"asked to retry after {asked:g} s, longer than retry.max_delay ({retry.max_delay:g} s)"
                record.update(retry_after=int(asked) if asked.is_integer() else asked, note=f"not retried: {note}")
                return exchange, note
            delay = asked if asked is not None else retry.delay(number)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(self) -> Exchange:
        """One attempt: send, follow redirects as allowed, read the body, within ``total``."""
        options = self.options
        assert self.outgoing is not None
        try:
            async with asyncio.timeout(options.total):
                return await self._exchange(self.outgoing)
        except TimeoutError:
            raise CallFailed(failures.TIMEOUT, f"no answer within {options.total:g} s", retryable=True) from None

    async def _exchange(self, hop: Outgoing) -> Exchange:
        """Send ``hop`` and the redirects after it, each in a slot of its upstream."""
        options = self.options
        hops = 0
        while True:
            try:
                async with self.session.slots.hold(hop.url.scheme, origin_of(hop.url), options.connect):
                    response = await self._send(hop)
                    try:
                        followed = options.redirects and response.status in REDIRECTS
                        location = response.headers.get("Location") if followed else None
                        if location is None:
                            content, encoded = await read_body(response, options.max_response_size, hop.method)
                            return Exchange(response.status, response_headers(response), content, encoded, hop.url)
                    except (aiohttp.ClientError, OSError) as exc:
                        raise self._broken(exc, hop) from None
                    finally:
                        response.release()  # to the pool if the body was read to its end, else closed
            except HostBusy as exc:
                raise CallFailed(failures.HOST_BUSY, str(exc), limit=exc.limit) from None
            except PoolBusy as exc:
                raise CallFailed(failures.TIMEOUT, str(exc), retryable=True) from None
            if hops == options.redirects:
                raise CallFailed(
                    failures.TOO_MANY_REDIRECTS,
                    f"more than {options.redirects} redirect{'s' if options.redirects > 1 else ''}",
                    location=location,
                )
            hops += 1
            assert location is not None  # a redirect to follow, or the block returned
            hop = self._redirect(hop, response.status, location)

    async def _send(self, hop: Outgoing) -> aiohttp.ClientResponse:
        """``hop``'s response, its body not read yet."""
        origin = origin_of(hop.url)
        try:
            route = await network.route(self.session.policy, hop.url)
            headers = hop.headers if route.host_header is None else [*hop.headers, ("Host", route.host_header)]
            return await self.session.client.request(
                hop.method,
                route.url,
                headers=headers,
                data=hop.content,
                allow_redirects=False,  # followed here, one hop at a time, each one through the guard
                timeout=self.timeout,
                server_hostname=route.server_hostname,
            )
        except EgressRefused as exc:
            raise self._refused(exc, hop) from None
        except aiohttp.ClientConnectorError as exc:  # resolving, connecting, TLS
            if isinstance(exc.os_error, EgressRefused):
                raise self._refused(exc.os_error, hop) from None
            message = f"could not connect to {origin}: {_connect_problem(exc)}"
            raise CallFailed(failures.CONNECT_FAILED, message, retryable=True) from None
        except aiohttp.ConnectionTimeoutError:
            message = f"could not connect to {origin} within {self.options.connect:g} s"
            raise CallFailed(failures.TIMEOUT, message, retryable=True) from None
        except aiohttp.ClientError as exc:
            raise self._broken(exc, hop) from None
        except OSError as exc:  # a numeric host that spells no address (route)
            message = f"could not connect to {origin}: {exc}"
            raise CallFailed(failures.CONNECT_FAILED, message, retryable=True) from None

    def _refused(self, exc: EgressRefused, hop: Outgoing) -> CallFailed:
        # Named after the URL's host, whichever step of the guard refused the address.
        refused = EgressRefused(hop.url.raw_host or exc.host, exc.address, exc.kind)
        return CallFailed(failures.EGRESS_REFUSED, str(refused), host=refused.host, address=refused.address)

    def _broken(self, exc: BaseException, hop: Outgoing) -> CallFailed:
        """The exchange failed once connected: the upstream closed the connection, broke HTTP."""
        detail = str(exc) or type(exc).__name__
        return CallFailed(
            failures.BAD_RESPONSE, f"the exchange with {origin_of(hop.url)} failed: {detail}", retryable=True
        )

    def _redirect(self, hop: Outgoing, status: int, location: str) -> Outgoing:
        """The hop ``location`` asks for after ``hop``: refused unless http/https without
        credentials; the method (and body) the status asks for; credentials dropped when it
        leaves the origin."""
        try:
            url = redirect_url(hop.url, location)
        except ValueError as exc:
            raise CallFailed(failures.BAD_REDIRECT, str(exc)) from None
        method, headers, content = hop.method, hop.headers, hop.content
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, content = "GET", None
            headers = [(name, value) for name, value in headers if name.lower() != "content-type"]  # the body's
        if not same_origin(url, hop.url):
            headers = [(name, value) for name, value in headers if name.lower() not in hop.secret_headers]
        return replace(hop, method=method, url=url, headers=headers, content=content)


def _connect_problem(exc: aiohttp.ClientConnectorError) -> str:
    """What went wrong connecting, in words that do not change with the library or the address:
    ``connection refused``, ``network is unreachable``, a resolver's or a TLS library's message."""
    cause = exc.os_error
    if cause.errno and not isinstance(exc, aiohttp.ClientSSLError):
        text = os.strerror(cause.errno)
        return text[:1].lower() + text[1:]
    return str(cause) or type(cause).__name__
