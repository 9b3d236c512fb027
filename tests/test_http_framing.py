"""Strict HTTP/1.1 framing (RFC 9112), through a real ``hookline serve`` on 127.0.0.1 and raw
sockets: a body that stalls is answered 408 and its connection closed, lax chunked encoding and
bad ``Host`` or header names are refused with 400 and the connection closed, and nothing sent
after a refused request on the same connection is ever run (request smuggling)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hookline.testing import HooklineServer

#: Small, so that the stall tests are quick (the idle timer is checked every TIMEOUT/2 s).
TIMEOUT = 1
ECHO = [{"key": "echo", "type": "response", "config": {"body": {"got": "{{ $context.raw_body }}"}}}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HooklineServer]:
    root = tmp_path_factory.mktemp("framing-server")
    folder = root / "workflows"
    folder.mkdir()
    definition = {"key": "echo", "sync": True, "trigger": {"type": "webhook"}, "nodes": ECHO}
    (folder / "echo.json").write_text(json.dumps(definition))
    process = HooklineServer(
        f"sqlite://{root / 'framing.db'}", workflows=folder, cwd=root, env={"SANIC_REQUEST_TIMEOUT": str(TIMEOUT)}
    )
    process.start(root / "server.log")
    yield process
    process.stop()


def exchange(
    server: HooklineServer, data: bytes, *, wait: float = 10
) -> tuple[list[tuple[int, dict[str, str], bytes]], float]:
    """Send ``data`` and say nothing more; the answers the server sent before it closed the
    connection, and when it closed (a server that keeps it open fails the test at ``wait``)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        sock.sendall(data)
        started = time.monotonic()
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pytest.fail(f"the connection was still open after {wait} s; received {received!r}")
        return parse_answers(received), time.monotonic() - started


def parse_answers(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """HTTP/1.1 answers one after another (Content-Length framed, as Hookline's are)."""
    answers = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "0"))
        answers.append((int(status_line.split()[1]), headers, rest[:length]))
        data = rest[length:]
    return answers


def executions(server: HooklineServer) -> int:
    page = httpx.get(
        f"{server.base_url}/api/executions", params={"workflow": "echo", "limit": 500}, headers=server.auth
    )
    return len(page.json()["items"])


HEAD = b"POST /api/webhooks/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
#: A second request, pipelined after a refused one: it must never run.
SMUGGLED = b"POST /api/webhooks/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 8\r\n\r\nsmuggled"


def body_of(answer: tuple[int, dict[str, str], bytes]) -> Any:
    return json.loads(answer[2])


# --- what must keep working --------------------------------------------------------------------


@pytest.mark.server
def test_well_formed_chunked_bodies_and_pipelined_requests_are_served(server: HooklineServer) -> None:
    body = b'3;name=value\r\nabc\r\n2; quoted="a;b"\r\nde\r\n0\r\n\r\n'  # extensions are allowed
    close = b"POST /api/webhooks/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nfg"
    answers, _ = exchange(server, CHUNKED + body + close)
    assert [answer[0] for answer in answers] == [200, 200]
    assert body_of(answers[0]) == {"got": "abcde"} and body_of(answers[1]) == {"got": "fg"}
    assert answers[0][1]["connection"] == "keep-alive" and answers[1][1]["connection"] == "close"


@pytest.mark.server
def test_http_1_0_needs_no_host(server: HooklineServer) -> None:
    answers, _ = exchange(server, b"POST /api/webhooks/echo HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
    assert [answer[0] for answer in answers] == [200] and body_of(answers[0]) == {"got": "hi"}


# --- stalls: 408 and the connection closed -------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(HEAD + b"Content-Length: 100\r\n\r\nabc", id="content-length"),
        pytest.param(CHUNKED + b"3\r\nabc\r\n", id="chunked-between-chunks"),
        pytest.param(CHUNKED + b"3\r\nab", id="chunked-mid-chunk"),
        pytest.param(CHUNKED + b"3\r\nabc\r\n1", id="chunked-mid-size-line"),
        pytest.param(CHUNKED + b"3\r\nabc\r\n0\r\n", id="chunked-before-the-last-crlf"),
    ],
)
def test_a_stalled_body_is_answered_408_and_its_connection_closed(server: HooklineServer, sent: bytes) -> None:
    before = executions(server)
    answers, after = exchange(server, sent)
    assert [answer[0] for answer in answers] == [408], answers
    headers = answers[0][1]
    assert headers["connection"] == "close" and body_of(answers[0])["error"] == "request_timeout"
    assert after < TIMEOUT + 3
    assert executions(server) == before


@pytest.mark.server
def test_nothing_sent_after_a_stall_runs_on_that_connection(server: HooklineServer) -> None:
    """The issue's case: the body stalls, a 408 comes back, then the sender ends the body and
    sends a second request on the same connection. The connection is closed: neither runs."""
    before = executions(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(CHUNKED + b"3\r\nabc\r\n")
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 408")
        try:
            sock.sendall(b"0\r\n\r\n" + SMUGGLED)
            while sock.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed: what we want
    assert executions(server) == before


# --- lax chunked encoding: 400 and the connection closed -----------------------------------------


@pytest.mark.server
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"3\r\nabcXX0\r\n\r\n", id="data-not-followed-by-crlf"),
        pytest.param(b"3\r\nabc;;0\r\n\r\n", id="data-followed-by-semicolons"),
        pytest.param(b"3\r\nabc\n0\r\n\r\n", id="data-followed-by-a-bare-lf"),
        pytest.param(b"0x3\r\nabc\r\n0\r\n\r\n", id="size-with-0x"),
        pytest.param(b" 3\r\nabc\r\n0\r\n\r\n", id="size-with-leading-space"),
        pytest.param(b"3 x\r\nabc\r\n0\r\n\r\n", id="size-with-junk"),
        pytest.param(b"+3\r\nabc\r\n0\r\n\r\n", id="size-with-sign"),
        pytest.param(b"\r\nabc\r\n0\r\n\r\n", id="empty-size"),
        pytest.param(b"3;a b\r\nabc\r\n0\r\n\r\n", id="bad-extension"),
        pytest.param(b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n", id="trailer"),
        pytest.param(b"10000000000000000\r\n", id="size-too-long"),
    ],
)
def test_lax_chunked_encoding_is_refused_and_the_connection_closed(server: HooklineServer, body: bytes) -> None:
    before = executions(server)
    answers, _ = exchange(server, CHUNKED + body + SMUGGLED)
    assert [answer[0] for answer in answers] == [400], answers
    assert answers[0][1]["connection"] == "close"
    assert body_of(answers[0])["error"] == "bad_request" and "chunked" in body_of(answers[0])["message"]
    assert executions(server) == before


@pytest.mark.server
def test_the_management_api_gets_the_same_framing(server: HooklineServer) -> None:
    head = (
        b"POST /api/workflows HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: " + server.auth["Authorization"].encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    definition = json.dumps({"key": "smuggled", "trigger": {"type": "webhook"}, "nodes": []}).encode()
    answers, _ = exchange(server, head + b"%x\r\n%sXX0\r\n\r\n" % (len(definition), definition))
    assert [answer[0] for answer in answers] == [400] and answers[0][1]["connection"] == "close"
    assert httpx.get(f"{server.base_url}/api/workflows/smuggled", headers=server.auth).status_code == 404


# --- the header section: Host and field names ----------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize(
    ("head", "message"),
    [
        pytest.param(b"POST /api/webhooks/echo HTTP/1.1\r\n", "needs a Host header", id="no-host"),
        pytest.param(HEAD + b"Host: 127.0.0.1\r\n", "more than one Host", id="two-hosts"),
        pytest.param(HEAD.replace(b"127.0.0.1", b"a b"), "invalid Host", id="host-with-space"),
        pytest.param(HEAD.replace(b"127.0.0.1", b"evil.example/x"), "invalid Host", id="host-with-slash"),
        pytest.param(HEAD.replace(b"127.0.0.1", b"evil@example"), "invalid Host", id="host-with-userinfo"),
        pytest.param(HEAD + b"Transfer-Encoding : chunked\r\n", "invalid header name", id="space-before-colon"),
        pytest.param(HEAD + b" X-Folded: yes\r\n", "invalid header name", id="obsolete-line-folding"),
        pytest.param(HEAD + "X-\u212a: 1\r\n".encode(), "invalid header name", id="kelvin-sign-lower-cases-to-k"),
        pytest.param(
            HEAD.replace(b"Content-Type", "Content-Typ\u00e9".encode()), "invalid header name", id="non-ascii-name"
        ),
    ],
)
def test_a_bad_header_section_is_refused_and_the_connection_closed(
    server: HooklineServer, head: bytes, message: str
) -> None:
    before = executions(server)
    answers, _ = exchange(server, head + b"Content-Length: 2\r\n\r\nhi" + SMUGGLED)
    assert [answer[0] for answer in answers] == [400], answers
    assert answers[0][1]["connection"] == "close"
    assert message in body_of(answers[0])["message"]
    assert executions(server) == before


@pytest.mark.server
@pytest.mark.parametrize(
    "host", [b"127.0.0.1:8000", b"[::1]:8000", b"hooks.example.com", b"xn--bcher-kva.example", b""]
)
def test_valid_hosts_are_served(server: HooklineServer, host: bytes) -> None:
    head = (
        b"POST /api/webhooks/echo HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    )
    answers, _ = exchange(server, head)
    assert [answer[0] for answer in answers] == [200], answers


@pytest.mark.server
def test_a_content_length_of_other_digits_is_refused(server: HooklineServer) -> None:
    before = executions(server)
    answers, _ = exchange(server, HEAD + "Content-Length: \u0662\r\n\r\nhi".encode() + SMUGGLED)  # Arabic-Indic 2
    assert [answer[0] for answer in answers] == [400], answers
    assert "invalid Content-Length" in body_of(answers[0])["message"]
    assert executions(server) == before


@pytest.mark.server
def test_http_1_0_with_transfer_encoding_is_answered_then_closed(server: HooklineServer) -> None:
    """RFC 9112 §6.1: faulty framing; the request is served, the connection not kept."""
    head = b"POST /api/webhooks/echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
    answers, _ = exchange(server, head + b"2\r\nhi\r\n0\r\n\r\n" + SMUGGLED)
    assert [answer[0] for answer in answers] == [200], answers
    assert answers[0][1]["connection"] == "close"
