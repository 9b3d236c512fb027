"""The ``http-request`` node type: calls another HTTP API from a workflow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from hookline import NodeError, NodeResult, NodeRun, NodeType

from hookline_http import failures
from hookline_http.clients import HostBusy, HttpClients, Session
from hookline_http.egress import EgressRefused
from hookline_http.failures import CallFailed
from hookline_http.request import SECRET_HEADERS, Outgoing, build_request, origin_of, same_origin
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

if TYPE_CHECKING:
    from hookline import NodeDefinition, WorkflowDefinition


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
    url: httpx.URL


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
                return await self._exchange(self._first_request())
        except TimeoutError:
            raise CallFailed(failures.TIMEOUT, f"no answer within {options.total:g} s", retryable=True) from None

    def _first_request(self) -> httpx.Request:
        outgoing, options = self.outgoing, self.options
        assert outgoing is not None
        timeout = httpx.Timeout(options.total, connect=options.connect, pool=options.connect)
        return self.session.client.build_request(
            outgoing.method,
            outgoing.url,
            headers=[(name, value.encode("utf-8")) for name, value in outgoing.headers],
            content=outgoing.content,
            timeout=timeout,
        )

    async def _exchange(self, request: httpx.Request) -> Exchange:
        options = self.options
        hops = 0
        while True:
            try:
                async with self.session.slots.hold(request.url.scheme, origin_of(request.url), options.connect):
                    response = await self._send(request)
                    try:
                        if response.next_request is None or options.redirects == 0:
                            content, encoded = await read_body(response, options.max_response_size, request.method)
                            return Exchange(
                                response.status_code, response_headers(response), content, encoded, request.url
                            )
                    except httpx.TransportError as exc:
                        raise self._transport_failure(exc, request) from None
                    finally:
                        await response.aclose()
            except HostBusy as exc:
                raise CallFailed(failures.HOST_BUSY, str(exc), limit=exc.limit) from None
            if hops == options.redirects:
                raise CallFailed(
                    failures.TOO_MANY_REDIRECTS,
                    f"more than {options.redirects} redirect{'s' if options.redirects > 1 else ''}",
                    location=response.headers.get("location"),
                )
            hops += 1
            request = self._redirect(request, response.next_request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.session.client.send(request, stream=True)
        except EgressRefused as exc:
            raise CallFailed(failures.EGRESS_REFUSED, str(exc), host=exc.host, address=exc.address) from None
        except httpx.TransportError as exc:
            raise self._transport_failure(exc, request) from None

    def _transport_failure(self, exc: httpx.TransportError, request: httpx.Request) -> CallFailed:
        origin = origin_of(request.url)
        if isinstance(exc, httpx.ConnectTimeout):
            message = f"could not connect to {origin} within {self.options.connect:g} s"
            return CallFailed(failures.TIMEOUT, message, retryable=True)
        if isinstance(exc, httpx.PoolTimeout):
            message = f"no free connection within {self.options.connect:g} s (HOOKLINE_HTTP_MAX_CONNECTIONS)"
            return CallFailed(failures.TIMEOUT, message, retryable=True)
        if isinstance(exc, httpx.TimeoutException):
            return CallFailed(failures.TIMEOUT, f"no answer within {self.options.total:g} s", retryable=True)
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ConnectError):
            return CallFailed(failures.CONNECT_FAILED, f"could not connect to {origin}: {detail}", retryable=True)
        return CallFailed(failures.BAD_RESPONSE, f"the exchange with {origin} failed: {detail}", retryable=True)

    def _redirect(self, request: httpx.Request, target: httpx.Request | None) -> httpx.Request:
        """The next hop, refused unless http/https without credentials; credentials dropped
        when it leaves the origin."""
        assert target is not None
        url = target.url
        if url.scheme not in ("http", "https") or not url.host:
            raise CallFailed(failures.BAD_REDIRECT, f"redirect to {str(url)[:200]!r} refused: only http and https URLs")
        if url.userinfo:
            raise CallFailed(failures.BAD_REDIRECT, "redirect to a URL holding credentials (user:password@) refused")
        if not same_origin(url, request.url):
            assert self.outgoing is not None
            for name in self.outgoing.secret_headers | SECRET_HEADERS:
                target.headers.pop(name, None)
        if target.method == "GET" and request.method != "GET":
            target.headers.pop("content-type", None)  # the body was dropped (303, or 301/302 after POST)
        return target
