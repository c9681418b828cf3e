"""tokensmith's HTTP protocol (server/http/protocol.py) over raw sockets: requests offering ``Upgrade: h2c`` keep
their body however their bytes arrive, and request heads are bounded in size and time as they arrive.

The server is uvicorn with the protocol, in a thread, serving an app that echoes each request.
"""

from __future__ import annotations

import functools
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from tests.support.server import free_port

from tokensmith.server.http.protocol import HTTP_PROTOCOL

H2C = b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAEAAEAAAAIAAAAA\r\n"


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = b"%s %s body=%s" % (scope["method"].encode(), scope["path"].encode(), body)
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@contextmanager
def serving(**protocol_options: Any) -> Iterator[int]:
    port = free_port()
    protocol = functools.partial(HTTP_PROTOCOL, **protocol_options) if protocol_options else HTTP_PROTOCOL
    config = uvicorn.Config(
        echo_app, host="127.0.0.1", port=port, http=protocol, lifespan="off", log_level="critical", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        assert time.monotonic() < deadline, "the server did not start in time"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_answers(sock: socket.socket, count: int) -> list[bytes]:
    """The bodies of the next ``count`` responses (each framed by its Content-Length)."""
    data = b""
    answers: list[bytes] = []
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].lower()
            length = int(head.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            end = head_end + 4 + length
            if len(data) >= end:
                assert head.startswith(b"http/1.1 200"), head
                answers.append(data[head_end + 4 : end])
                data = data[end:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {answers}"
        data += chunk
    return answers


def post(path: str, body: bytes, extra: bytes = H2C) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (path.encode(), len(body), extra, body)


def post_chunked(path: str, parts: list[bytes], extra: bytes = H2C) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"
    return b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n%s\r\n%s" % (path.encode(), extra, body)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serving() as port:
        yield port


def test_an_h2c_request_keeps_its_body(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(post("/oauth2/token", b"grant_type=client_credentials"))
        assert read_answers(sock, 1) == [b"POST /oauth2/token body=grant_type=client_credentials"]


def test_an_h2c_request_sent_byte_by_byte_keeps_its_body(port: int) -> None:
    with connect(port) as sock:
        for byte in post("/oauth2/token", b"grant_type=x"):
            sock.send(bytes([byte]))
            time.sleep(0.001)
        assert read_answers(sock, 1) == [b"POST /oauth2/token body=grant_type=x"]


def test_an_h2c_head_in_two_reads_keeps_its_body(port: int) -> None:
    request = post("/a", b"one=1")
    with connect(port) as sock:
        middle = request.index(b"Upgrade") + 3
        sock.sendall(request[:middle])
        time.sleep(0.05)
        sock.sendall(request[middle:])
        assert read_answers(sock, 1) == [b"POST /a body=one=1"]


def test_three_pipelined_h2c_requests_are_each_answered_with_their_body(port: int) -> None:
    requests = post("/1", b"a=1") + post_chunked("/2", [b"b=", b"22"]) + post("/3", b"c=333")
    with connect(port) as sock:
        sock.sendall(requests)
        assert read_answers(sock, 3) == [b"POST /1 body=a=1", b"POST /2 body=b=22", b"POST /3 body=c=333"]


def test_pipelined_plain_and_h2c_requests_mix(port: int) -> None:
    requests = post("/1", b"a=1", extra=b"") + post("/2", b"b=2") + post_chunked("/3", [b"c=3"], extra=b"")
    with connect(port) as sock:
        sock.sendall(requests)
        assert read_answers(sock, 3) == [b"POST /1 body=a=1", b"POST /2 body=b=2", b"POST /3 body=c=3"]


def test_pipelined_h2c_requests_split_at_every_byte_boundary_in_two_writes(port: int) -> None:
    requests = post("/1", b"a=1") + post_chunked("/2", [b"b=2"]) + post("/3", b"c=3")
    for cut in range(0, len(requests), 7):
        with connect(port) as sock:
            sock.sendall(requests[:cut])
            time.sleep(0.005)
            sock.sendall(requests[cut:])
            assert read_answers(sock, 3) == [b"POST /1 body=a=1", b"POST /2 body=b=2", b"POST /3 body=c=3"], cut


def test_an_h2c_get_and_the_next_request_on_the_connection(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + H2C + b"\r\n")
        assert read_answers(sock, 1) == [b"GET /health body="]
        sock.sendall(post("/next", b"n=1"))
        assert read_answers(sock, 1) == [b"POST /next body=n=1"]


def resident_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def send_until_refused(sock: socket.socket, piece: bytes, *, limit: int, pause: float = 0) -> int:
    """Send ``piece`` again and again until the server closes the connection; how many bytes went out."""
    sent = 0
    while sent < limit:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return sent
        sent += len(piece)
        time.sleep(pause)
    raise AssertionError(f"the server took {sent} bytes of an unfinished head")


def test_a_head_that_never_ends_is_cut_off_and_memory_stays_bounded() -> None:
    with serving() as port, connect(port) as sock:
        before = resident_kib()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = send_until_refused(sock, b"x" * 65536, limit=60 * 1024 * 1024)
        grown_mib = (resident_kib() - before) / 1024
        assert sent < 20 * 1024 * 1024, "the server kept reading an endless head"
        assert grown_mib < 20, f"resident memory grew by {grown_mib:.0f} MiB"


def test_a_head_over_the_bound_gets_431() -> None:
    with serving(max_head_bytes=4096) as port, connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"x" * 1000)
        for _ in range(10):  # in separate reads, each a little later, until the answer comes
            time.sleep(0.02)
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(b"x" * 1000)
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 431 "), answer


def test_a_large_head_under_the_bound_and_a_body_after_it_are_served() -> None:
    with serving(max_head_bytes=4096) as port, connect(port) as sock:
        request = post("/big", b"x" * 20_000, extra=b"X-Pad: " + b"p" * 3000 + b"\r\n")
        for start in range(0, len(request), 1000):
            sock.sendall(request[start : start + 1000])
            time.sleep(0.001)
        assert read_answers(sock, 1) == [b"POST /big body=" + b"x" * 20_000]


def closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_slow_heads_and_silent_connections_are_closed_after_the_head_timeout() -> None:
    with serving(head_timeout=0.5) as port:
        slow = [connect(port) for _ in range(200)]
        silent = connect(port)
        started = time.monotonic()
        for sock in slow:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        try:
            assert all(closed_within(sock, 5) for sock in [*slow, silent])
            assert time.monotonic() - started < 5
        finally:
            for sock in [*slow, silent]:
                sock.close()


def test_a_head_trickling_in_is_closed_after_the_head_timeout() -> None:
    with serving(head_timeout=0.5) as port, connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        started = time.monotonic()
        send_until_refused(sock, b"X-A: 1\r\n", limit=1000, pause=0.05)
        assert time.monotonic() - started < 2


def test_the_head_timeout_does_not_cut_a_request_whose_head_is_complete() -> None:
    with serving(head_timeout=0.3) as port, connect(port) as sock:
        request = post("/slow-body", b"abcdef", extra=b"")
        sock.sendall(request[:-3])
        time.sleep(0.6)  # the body is late, not the head
        sock.sendall(request[-3:])
        assert read_answers(sock, 1) == [b"POST /slow-body body=abcdef"]
        time.sleep(0.1)
        sock.sendall(post("/again", b"z", extra=b""))
        assert read_answers(sock, 1) == [b"POST /again body=z"]
