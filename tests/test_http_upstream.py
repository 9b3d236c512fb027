"""A real HTTP/1.1 upstream for the HTTP Request node's tests, written on raw asyncio so that it
can misbehave on purpose: answer slowly, never, hugely, with a gzip bomb, with redirects, with
``Retry-After``, or fail a few times before answering. It counts the connections it accepts, so a
test can show that a refused request never reached it.

``Upstream`` runs in the test's event loop (``await Upstream().start()``); ``upstream_in_thread``
runs one in a thread of its own for tests that drive a ``hookline serve`` subprocess.

Paths (query parameters in brackets):

* ``/echo...`` (any path under it): 200, JSON ``{"method", "path", "headers", "body"}`` (headers only
  for HEAD); ``headers`` leaves out those that change from run to run (``user-agent``, ``host``,
  ``accept-encoding``...).
* ``/status/<code>`` [``retry_after``, ``body``]: that status, ``{"status": code}`` (no body for 204 and 304).
* ``/redirect`` [``to``, ``status`` (302)]: a redirect to ``to``; ``/redirect/<n>``: ``n`` more hops
  to ``/redirect/<n-1>``, then ``/echo``.
* ``/hang``: reads the request and never answers.
* ``/dribble``: answers headers, then one byte every 0.1 s, forever.
* ``/big`` [``size``, ``chunked``]: ``size`` bytes of ``x``, with a Content-Length unless ``chunked``.
* ``/endless``: a chunked body that never ends.
* ``/gzip-bomb`` [``size``]: ``size`` zero bytes gzip-compressed (``Content-Encoding: gzip``).
* ``/flaky/<key>`` [``fail``, ``status`` (503), ``retry_after``]: the first ``fail`` calls with that key
  answer ``status``, the next ones 200 ``{"ok": true, "calls": n}``.
* ``/body`` [``type``, ``text``, ``hex``, ``encoding``]: a body of that content type, given as text
  or as hex bytes.
* ``/cookie``: sets a cookie; ``/close``: closes the connection without answering.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

#: Request headers ``/echo`` leaves out: they change with the client's version or the port.
UNECHOED = frozenset({"host", "user-agent", "accept", "accept-encoding", "connection", "content-length"})


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))


Handler = Callable[[Received, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Upstream:
    host: str = "127.0.0.1"
    port: int = 0
    #: Connections accepted, in all; and open now.
    connections: int = 0
    open_connections: int = 0
    #: Requests read, in order.
    requests: list[Received] = field(default_factory=list)
    #: Extra routes: path -> handler, tried before the built-in ones.
    routes: dict[str, Handler] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _calls: dict[str, int] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    #: Set whenever a request arrives (tests wait on it instead of sleeping).
    _arrived: asyncio.Condition | None = None

    async def start(self) -> Upstream:
        self._arrived = asyncio.Condition()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    @property
    def base(self) -> str:
        return f"{self.host}:{self.port}"

    async def wait_for_requests(self, count: int, timeout: float = 30.0) -> None:
        """Until ``count`` requests arrived in all (a safety-net timeout only)."""
        assert self._arrived is not None
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)

    async def drop_connections(self) -> None:
        """Close every open connection (what a hanging upstream's clients then see)."""
        for writer in list(self._writers):
            writer.close()

    # --- serving ----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await _read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            assert self._arrived is not None
            async with self._arrived:
                self._arrived.notify_all()
            await self._handle(request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()

    async def _handle(self, request: Received, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path, query = request.path, request.query
        for prefix, handler in self.routes.items():
            if path.startswith(prefix):
                return await handler(request, writer)
        if path.startswith("/echo"):
            echoed = {name: value for name, value in request.headers.items() if name not in UNECHOED}
            body = request.body.decode("utf-8", "replace")
            answer = {"method": request.method, "path": request.target, "headers": echoed, "body": body}
            return await send(writer, 200, answer, head=request.method == "HEAD")
        if path.startswith("/status/"):
            headers = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
            code = int(path.rsplit("/", 1)[1])
            return await send(writer, code, query.get("body", {"status": code}), headers)
        if path == "/redirect":
            status = int(query.get("status", "302"))
            return await send(writer, status, None, {"Location": query["to"]})
        if path.startswith("/redirect/"):
            left = int(path.rsplit("/", 1)[1])
            target = f"/redirect/{left - 1}" if left > 1 else "/echo/landed"
            return await send(writer, 302, None, {"Location": target})
        if path == "/hang":
            await reader.read()  # nothing comes: until the client goes away or drop_connections()
            return None
        if path == "/dribble":
            await _head(writer, 200, {"Content-Type": "text/plain", "Content-Length": "1000000"})
            for _ in range(100_000):  # bounded: ~3 hours, far past any test's timeout
                if writer.is_closing():
                    return None
                writer.write(b".")
                await writer.drain()
                await asyncio.sleep(0.1)
            return None
        if path == "/big":
            size = int(query.get("size", "2000000"))
            if "chunked" in query:
                await _head(writer, 200, {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
                for start in range(0, size, 65536):
                    piece = b"x" * min(65536, size - start)
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
                return await writer.drain()
            return await send(writer, 200, b"x" * size, {"Content-Type": "text/plain"})
        if path == "/endless":
            await _head(writer, 200, {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
            piece = b"x" * 65536
            for _ in range(1_000_000):  # bounded: 64 GiB, which no test reads
                if writer.is_closing():
                    return None
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            return None
        if path == "/gzip-bomb":
            size = int(query.get("size", str(100 * 1024 * 1024)))
            bomb = gzip.compress(b"\0" * size, compresslevel=9)
            return await send(writer, 200, bomb, {"Content-Type": "text/plain", "Content-Encoding": "gzip"})
        if path.startswith("/flaky/"):
            key = path.rsplit("/", 1)[1]
            calls = self._calls[key] = self._calls.get(key, 0) + 1
            if calls <= int(query.get("fail", "1")):
                code = int(query.get("status", "503"))
                headers = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
                return await send(writer, code, {"error": "try again", "call": calls}, headers)
            return await send(writer, 200, {"ok": True, "calls": calls})
        if path == "/body":
            data = bytes.fromhex(query["hex"]) if "hex" in query else query.get("text", "").encode()
            headers = {"Content-Type": query["type"]} if "type" in query else {}
            if query.get("encoding") == "gzip":
                data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
            elif "encoding" in query:
                headers["Content-Encoding"] = query["encoding"]
            return await send(writer, 200, data, headers)
        if path == "/cookie":
            return await send(
                writer, 200, {"cookie": request.headers.get("cookie")}, {"Set-Cookie": "session=abc; Path=/"}
            )
        if path == "/close":
            return None
        return await send(writer, 404, {"error": "no such path", "path": path})


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Received(method, target, headers, body)


async def _head(writer: asyncio.StreamWriter, status: int, headers: dict[str, str]) -> None:
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
    lines = [f"HTTP/1.1 {status} {reason}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()


async def send(
    writer: asyncio.StreamWriter,
    status: int,
    body: object,
    headers: dict[str, str] | None = None,
    *,
    head: bool = False,
) -> None:
    """Answer with ``body``: bytes as they are, ``None`` as nothing, anything else as JSON. With
    ``head`` (the answer to a HEAD request), the headers only; ``204`` and ``304`` have no body
    either, as HTTP wants (``204`` no ``Content-Length``)."""
    headers = dict(headers or {})
    if body is None:
        data = b""
    elif isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode()
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    else:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    if status != 204:
        headers["Content-Length"] = str(len(data))
    await _head(writer, status, headers)
    if not (head or status in (204, 304)):
        writer.write(data)
    await writer.drain()


@contextmanager
def upstream_in_thread(host: str = "127.0.0.1", port: int = 0) -> Iterator[Upstream]:
    """An :class:`Upstream` serving from a thread of its own (for synchronous tests)."""
    loop = asyncio.new_event_loop()
    upstream = Upstream(host, port)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(upstream.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="upstream", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the upstream did not start")
    try:
        yield upstream
    finally:
        asyncio.run_coroutine_threadsafe(upstream.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


# --- the upstream itself -------------------------------------------------------------------------


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await Upstream().start()
    yield server
    await server.close()


async def test_the_upstream_echoes_and_counts_connections(upstream: Upstream) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(upstream.url("/echo/x?a=1"), content=b"hi", headers={"X-One": "1"})
    assert response.json() == {"method": "POST", "path": "/echo/x?a=1", "headers": {"x-one": "1"}, "body": "hi"}
    assert upstream.connections == 1 and upstream.requests[0].query == {"a": "1"}


async def test_the_upstream_fails_a_flaky_key_then_answers(upstream: Upstream) -> None:
    async with httpx.AsyncClient() as client:
        statuses = [(await client.get(upstream.url("/flaky/k?fail=2"))).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_the_upstream_runs_in_a_thread() -> None:
    with upstream_in_thread() as upstream:
        response = httpx.get(upstream.url("/status/418"))
    assert response.status_code == 418 and response.json() == {"status": 418}
