"""Strict HTTP/1.1 message framing (RFC 9112) on top of Sanic's parser.

Sanic 25.12 accepts a few things RFC 9112 says a server must refuse, each of which lets a front
proxy and Hookline disagree about where a request ends (request smuggling):

- chunk data not followed by CRLF (``3\\r\\nabcXX0\\r\\n\\r\\n`` is read as ``abc``): the two bytes
  after a chunk's data are skipped unread, whatever they are;
- a chunk size Python's ``int(..., 16)`` takes but the grammar does not (``0x3``, `` 3``);
- a header name with whitespace before its colon (``Transfer-Encoding : chunked`` becomes a
  header named ``transfer-encoding `` and the body is framed by Content-Length instead);
- an HTTP/1.1 request without ``Host``, with two, or with an invalid one (RFC 9112 §3.2: 400).

:class:`StrictHttp` checks each before Sanic's parser reads it, and answers ``400`` with the
connection closed. ``hookline serve`` runs with :class:`HooklineProtocol`; an app served any other
way gets Sanic's own parser (an ASGI server parses HTTP itself). docs/upstream/ holds the patch
for Sanic.
"""

from __future__ import annotations

import re

from sanic.exceptions import BadRequest
from sanic.http import Http
from sanic.server.protocols.http_protocol import HttpProtocol

#: RFC 9110 §5.6.2: a field name is a token.
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: RFC 9112 §7.1: chunk-size [ chunk-ext ]; chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ),
#: value a token or a quoted string. At most 16 hex digits (Sanic bounds the line to 64 bytes).
_CHUNK_LINE = re.compile(
    rb"[0-9A-Fa-f]{1,16}"
    rb"(?:[ \t]*;[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+"
    rb'(?:[ \t]*=[ \t]*(?:[!#$%&\'*+.^_`|~0-9A-Za-z-]+|"(?:[^"\\\r\n]|\\[^\r\n])*"))?)*'
)
#: RFC 9112 §3.2 / RFC 3986: uri-host [ ":" port ]: a bracketed IP literal or a reg-name (IPv4
#: addresses are reg-names too); empty is allowed (a target without authority).
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?")
_DIGITS = re.compile(r"[0-9]{1,18}")
#: What Sanic allows before the chunk line's CRLF.
_CHUNK_LINE_MAX = 64


class StrictHttp(Http):
    """Sanic's HTTP/1.1 connection, refusing what RFC 9112 says to refuse (see the module)."""

    __slots__ = ()

    async def http1_request_header(self) -> None:
        await super().http1_request_header()
        request = self.request
        problem = _header_problem(request.version, request.headers, request.head)
        if problem is None and request.version == "1.0" and "transfer-encoding" in request.headers:
            # RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing:
            # answered, then the connection is closed.
            self.keep_alive = False
        if problem is not None:
            # Nothing of this request can be trusted, its body's framing least: answer and close.
            self.keep_alive = False
            self.request_body = None
            raise BadRequest(problem)

    async def read(self) -> bytes | None:
        if self.request_bytes_left == 0 and self.request_body == "chunked":
            await self._check_chunk_line()
        return await super().read()

    async def _check_chunk_line(self) -> None:
        """Before Sanic parses the next chunk line: the CRLF that ends the previous chunk's data
        (Sanic keeps one before the first line too), then a chunk line by the grammar."""
        if self.expecting_continue:  # what Sanic's read() does first; the sender waits for it
            self.expecting_continue = False
            await self._send(b"HTTP/1.1 100 Continue\r\n\r\n")
        buf = self.recv_buffer
        while len(buf) < 2:
            await self._receive_more()
        if buf[:2] != b"\r\n":
            self._refuse("chunk data is not followed by CRLF")
        while (end := buf.find(b"\r\n", 2)) == -1:
            if len(buf) > _CHUNK_LINE_MAX:
                self._refuse("chunk size line too long")
            await self._receive_more()
        if not _CHUNK_LINE.fullmatch(buf, 2, end):
            self._refuse("invalid chunk size line")

    def _refuse(self, problem: str) -> None:
        self.keep_alive = False
        raise BadRequest(f"Bad chunked encoding: {problem}")


def _header_problem(version: str, headers: object, head: bytes) -> str | None:
    """What makes a request's header section invalid, or ``None``. Names are checked as sent
    (``head``: the raw request line and header lines), not as Sanic decoded and lower-cased them
    (``X-\u212a`` lower-cases to ``x-k``)."""
    for line in bytes(head).split(b"\r\n")[1:]:
        name = line.split(b":", 1)[0]
        if not _TOKEN.fullmatch(name):
            return f"invalid header name {name.decode('latin-1')!r}"
    for name, value in headers.items():  # type: ignore[attr-defined]
        if "\r" in value or "\n" in value or "\x00" in value:
            return f"invalid characters in header {name!r}"
    lengths = headers.getall("content-length", [])  # type: ignore[attr-defined]
    if lengths and not _DIGITS.fullmatch(lengths[0].strip()):  # (int() takes '٢' for 2)
        return "invalid Content-Length"
    hosts = headers.getall("host", [])  # type: ignore[attr-defined]
    if len(hosts) > 1:
        return "more than one Host header"
    if not hosts:
        return "an HTTP/1.1 request needs a Host header" if version == "1.1" else None
    if not _HOST.fullmatch(hosts[0].strip()):
        return "invalid Host header"
    return None


class HooklineProtocol(HttpProtocol):
    """Sanic's HTTP protocol with :class:`StrictHttp` framing (``app.run(protocol=...)``)."""

    HTTP_CLASS = StrictHttp
