"""Tests for anyws.sansio.http11: handshake requests and responses."""

from __future__ import annotations

import gc
import re
import sys
import tracemalloc
from collections.abc import Generator, Sequence
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyws.exceptions import SecurityError
from anyws.sansio._buffer import StreamReader
from anyws.sansio.datastructures import Headers
from anyws.sansio.http11 import (
    MAX_BODY,
    MAX_HEADERS,
    MAX_LINE,
    USER_AGENT,
    Request,
    Response,
    parse_request,
    parse_response,
    read_request,
    read_response,
)
from anyws.version import __version__

T = TypeVar("T")

REQUEST = (
    b"GET /chat?room=1 HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)

RESPONSE_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"\r\n"
)

# An unmasked text frame "Hello" (RFC 6455 section 5.7) sent right after a 101.
FRAME = b"\x81\x05Hello"


def drive(
    gen: Generator[None, None, T],
    reader: StreamReader,
    chunks: Sequence[bytes],
    *,
    eof: bool = True,
) -> tuple[T, bytes]:
    """Feed chunks one at a time to a parser, then EOF if asked.

    Returns the parser's result and the bytes it left: those still in the
    reader plus the chunks it never needed.
    """
    pending = list(chunks)
    try:
        next(gen)
        while pending:
            reader.feed_data(pending.pop(0))
            next(gen)
        if eof:
            reader.feed_eof()
            next(gen)
    except StopIteration as exc:
        return exc.value, bytes(reader.buffer) + b"".join(pending)
    raise AssertionError("the parser wants more bytes")


def request(data: bytes, *chunks: bytes, eof: bool = True, **kwargs: Any) -> Request:
    reader = StreamReader()
    gen = parse_request(reader.read_line, **kwargs)
    return drive(gen, reader, (data, *chunks), eof=eof)[0]


def response(data: bytes, eof: bool = True, **kwargs: Any) -> Response:
    return response_and_rest(data, eof=eof, **kwargs)[0]


def response_and_rest(
    data: bytes, eof: bool = True, **kwargs: Any
) -> tuple[Response, bytes]:
    reader = StreamReader()
    gen = parse_response(
        reader.read_line, reader.read_exact, reader.read_to_eof, **kwargs
    )
    return drive(gen, reader, [data], eof=eof)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (taken modulo its length + 1)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


# Constants.


def test_limits() -> None:
    assert (MAX_HEADERS, MAX_LINE, MAX_BODY) == (256, 4096, 1024 * 1024)


def test_user_agent() -> None:
    major, minor = sys.version_info[:2]
    assert USER_AGENT == f"Python/{major}.{minor} anyws/{__version__}"


# Requests.


def test_parse_request() -> None:
    req = request(REQUEST)
    assert req.path == "/chat?room=1"
    assert list(req.headers.raw_items()) == [
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ]
    assert req.headers["sec-websocket-version"] == "13"


def test_parse_request_leaves_following_bytes() -> None:
    reader = StreamReader()
    reader.feed_data(REQUEST + FRAME)
    req, rest = drive(parse_request(reader.read_line), reader, [], eof=False)
    assert req.path == "/chat?room=1"
    assert rest == FRAME


def test_parse_request_waits_for_more_bytes() -> None:
    reader = StreamReader()
    gen = parse_request(reader.read_line)
    next(gen)
    reader.feed_data(REQUEST[:-1])
    next(gen)  # still waiting: the final LF is missing
    reader.feed_data(REQUEST[-1:])
    with pytest.raises(StopIteration) as info:
        next(gen)
    assert info.value.value == request(REQUEST)


def test_request_parse_classmethod() -> None:
    reader = StreamReader()
    reader.feed_data(REQUEST)
    gen = Request.parse(reader.read_line, max_line=100, max_num_headers=5)
    assert drive(gen, reader, [])[0] == request(REQUEST)
    reader = StreamReader()
    reader.feed_data(REQUEST)
    with pytest.raises(SecurityError, match="too many HTTP headers"):
        drive(Request.parse(reader.read_line, max_num_headers=4), reader, [])


def test_parse_request_header_values() -> None:
    req = request(
        b"GET / HTTP/1.1\r\n"
        b"Spaces:  \t padded value \t \r\n"
        b"Empty:\r\n"
        b"Blank:   \r\n"
        b"Colon: a:b: c\r\n"
        b"High: caf\xc3\xa9\r\n"
        b"x-LOWER: v\r\n"
        b"\r\n"
    )
    assert list(req.headers.raw_items()) == [
        ("Spaces", "padded value"),
        ("Empty", ""),
        ("Blank", ""),
        ("Colon", "a:b: c"),
        ("High", "caf\udcc3\udca9"),
        ("x-LOWER", "v"),
    ]


def test_parse_request_repeated_headers() -> None:
    req = request(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\na: 3\r\n\r\n")
    assert req.headers.get_all("A") == ["1", "3"]
    assert list(req.headers.raw_items()) == [("A", "1"), ("B", "2"), ("a", "3")]


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"/", "/"),
        (b"*", "*"),
        (b"http://example.com/a?b", "http://example.com/a?b"),
        (b"/%C3%A9?x=%20", "/%C3%A9?x=%20"),
        (b"/caf\xc3\xa9", "/caf\udcc3\udca9"),
    ],
)
def test_parse_request_targets(target: bytes, path: str) -> None:
    assert request(b"GET " + target + b" HTTP/1.1\r\n\r\n").path == path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"POST / HTTP/1.1", "unsupported HTTP method; expected GET; got POST"),
        (b"get / HTTP/1.1", "unsupported HTTP method; expected GET; got get"),
        (b"GET / HTTP/1.0", "unsupported protocol; expected HTTP/1.1; got HTTP/1.0"),
        (b"GET / http/1.1", "unsupported protocol; expected HTTP/1.1; got http/1.1"),
        (
            b"GET /a b HTTP/1.1",
            "unsupported protocol; expected HTTP/1.1; got b HTTP/1.1",
        ),
        (b"GET / HTTP/1.1 ", "unsupported protocol; expected HTTP/1.1; got HTTP/1.1 "),
        (b"GET /", "invalid HTTP request line: GET /"),
        (b"GET", "invalid HTTP request line: GET"),
        (b"", "invalid HTTP request line: "),
        (b"GET  HTTP/1.1", "invalid request target: "),
        (
            b"GET  / HTTP/1.1",
            "unsupported protocol; expected HTTP/1.1; got / HTTP/1.1",
        ),
        (b"GET /\x00 HTTP/1.1", "invalid request target: /\\x00"),
        (b"GET /\t HTTP/1.1", "invalid request target: /\\t"),
        (b"GET /\r HTTP/1.1", "invalid request target: /\\r"),
        (b"GET /\x7f HTTP/1.1", "invalid request target: /\\x7f"),
        (b"\xffGET / HTTP/1.1", "unsupported HTTP method; expected GET; got \\xffGET"),
    ],
)
def test_parse_request_bad_request_line(line: bytes, message: str) -> None:
    with pytest.raises(ValueError) as info:
        request(line + b"\r\nHost: a\r\n\r\n")
    assert str(info.value) == message
    assert type(info.value) is ValueError


def test_parse_request_error_messages_are_short() -> None:
    with pytest.raises(ValueError) as info:
        request(b"GET " + b"/" * 1000 + b"\r\n\r\n")
    assert str(info.value) == "invalid HTTP request line: GET " + "/" * 57 + "..."


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"Host", "invalid HTTP header line: Host"),
        (b"Host : a", "invalid HTTP header name: Host "),
        (b": a", "invalid HTTP header name: "),
        (b"Ho(st: a", "invalid HTTP header name: Ho(st"),
        (b"Ho/st: a", "invalid HTTP header name: Ho/st"),
        (b"H\xc3\xa9: a", "invalid HTTP header name: H\\xc3\\xa9"),
        (b" Host: a", "obsolete line folding is not supported"),
        (b"\tHost: a", "obsolete line folding is not supported"),
        (b"Host: a\x00b", "invalid HTTP header value: a\\x00b"),
        (b"Host: a\x7fb", "invalid HTTP header value: a\\x7fb"),
        (b"Host: a\rb", "invalid HTTP header value: a\\rb"),
        (b"Host: a\x0bb", "invalid HTTP header value: a\\x0bb"),
    ],
)
def test_parse_request_bad_header(line: bytes, message: str) -> None:
    with pytest.raises(ValueError) as info:
        request(b"GET / HTTP/1.1\r\nA: 1\r\n" + line + b"\r\n\r\n")
    assert str(info.value) == message


def test_parse_request_rejects_folded_header_after_header() -> None:
    with pytest.raises(ValueError, match="obsolete line folding"):
        request(b"GET / HTTP/1.1\r\nA: 1\r\n  continued\r\n\r\n")


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\n",
        b"GET / HTTP/1.1\r\n\n",
    ],
)
def test_parse_request_bare_lf_is_end_of_stream(data: bytes) -> None:
    with pytest.raises(EOFError, match="line without CRLF"):
        request(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GET / HTTP/1.1",
        b"GET / HTTP/1.1\r",
        b"GET / HTTP/1.1\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r",
    ],
)
def test_parse_request_eof(data: bytes) -> None:
    with pytest.raises(EOFError):
        request(data)


def test_parse_request_max_line() -> None:
    # 4096 bytes, CRLF included, is the longest line accepted.
    name = b"X-Long: "
    ok = name + b"a" * (MAX_LINE - len(name) - 2)
    req = request(b"GET / HTTP/1.1\r\n" + ok + b"\r\n\r\n")
    assert len(req.headers["X-Long"]) == MAX_LINE - len(name) - 2
    with pytest.raises(SecurityError, match="line too long") as info:
        request(b"GET / HTTP/1.1\r\n" + ok + b"a\r\n\r\n")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_parse_request_max_line_request_line() -> None:
    line = b"GET /" + b"a" * (MAX_LINE - 16) + b" HTTP/1.1\r\n"
    assert len(line) == MAX_LINE
    assert request(line + b"\r\n").path == "/" + "a" * (MAX_LINE - 16)
    with pytest.raises(SecurityError, match="line too long"):
        request(b"GET /a" + line[5:] + b"\r\n")


def test_parse_request_line_too_long_without_end() -> None:
    # No LF at all: fails as soon as more than max_line bytes are buffered,
    # without waiting for the end of the stream.
    with pytest.raises(SecurityError, match="line too long"):
        request(b"GET /" + b"a" * 100, eof=False, max_line=100)


def test_parse_request_custom_max_line() -> None:
    assert request(b"GET / HTTP/1.1\r\n\r\n", max_line=16).path == "/"
    with pytest.raises(SecurityError, match="line too long"):
        request(b"GET / HTTP/1.1\r\n\r\n", max_line=15)


def test_parse_request_max_headers() -> None:
    lines = b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(MAX_HEADERS))
    req = request(b"GET / HTTP/1.1\r\n" + lines + b"\r\n")
    assert len(list(req.headers.raw_items())) == MAX_HEADERS
    with pytest.raises(SecurityError, match="too many HTTP headers"):
        request(b"GET / HTTP/1.1\r\n" + lines + b"X-Last: 1\r\n\r\n")


def test_parse_request_custom_max_headers() -> None:
    assert request(b"GET / HTTP/1.1\r\n\r\n", max_num_headers=0).path == "/"
    with pytest.raises(SecurityError, match="too many HTTP headers"):
        request(b"GET / HTTP/1.1\r\nA: 1\r\n\r\n", max_num_headers=0)


def test_parse_request_content_length_zero() -> None:
    req = request(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert req.headers["Content-Length"] == "0"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"Content-Length: 5", "unsupported request body: Content-Length"),
        (b"Content-Length: 00", "unsupported request body: Content-Length"),
        (b"Content-Length: x", "unsupported request body: Content-Length"),
        (
            b"Content-Length: 0\r\nContent-Length: 1",
            "unsupported request body: Content-Length",
        ),
        (b"Transfer-Encoding: chunked", "unsupported request body: Transfer-Encoding"),
        (b"transfer-encoding: identity", "unsupported request body: Transfer-Encoding"),
    ],
)
def test_parse_request_rejects_body(header: bytes, message: str) -> None:
    with pytest.raises(ValueError) as info:
        request(b"GET / HTTP/1.1\r\n" + header + b"\r\n\r\nhello")
    assert str(info.value) == message


def test_serialize_request() -> None:
    headers = Headers([("Host", "example.com"), ("Upgrade", "websocket")])
    headers["X-Repeated"] = "1"
    headers["X-Repeated"] = "2"
    assert Request("/path?q", headers).serialize() == (
        b"GET /path?q HTTP/1.1\r\n"
        b"Host: example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"X-Repeated: 1\r\n"
        b"X-Repeated: 2\r\n"
        b"\r\n"
    )


def test_serialize_request_without_headers() -> None:
    assert Request("/", Headers()).serialize() == b"GET / HTTP/1.1\r\n\r\n"


def test_serialize_request_round_trip() -> None:
    req = request(REQUEST)
    assert req.serialize() == REQUEST
    assert request(req.serialize()) == req


def test_serialize_request_non_ascii() -> None:
    # Surrogate escapes give back the bytes that were parsed; other non-ASCII
    # text is written as UTF-8.
    req = Request("/caf\udcc3\udca9", Headers([("X", "caf\udcc3\udca9 café")]))
    data = req.serialize()
    assert data == b"GET /caf\xc3\xa9 HTTP/1.1\r\nX: caf\xc3\xa9 caf\xc3\xa9\r\n\r\n"
    assert request(data) == Request(
        "/caf\udcc3\udca9", Headers([("X", "caf\udcc3\udca9 caf\udcc3\udca9")])
    )


@pytest.mark.parametrize(
    ("path", "headers", "message"),
    [
        ("", [], "invalid request target: ''"),
        ("/a b", [], "invalid request target: '/a b'"),
        ("/\r\nX: y", [], "invalid request target: '/\\r\\nX: y'"),
        ("/", [("X", "a\r\nInjected: 1")], "invalid HTTP header value: "),
        ("/", [("X", "a\nb")], "invalid HTTP header value: "),
        ("/", [("X", "a\x00")], "invalid HTTP header value: "),
        ("/", [("X Y", "a")], "invalid HTTP header name: 'X Y'"),
        ("/", [("", "a")], "invalid HTTP header name: ''"),
        ("/", [("X:", "a")], "invalid HTTP header name: 'X:'"),
        ("/", [("é", "a")], "invalid HTTP header name: 'é'"),
    ],
)
def test_serialize_request_rejects_injection(
    path: str, headers: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        Request(path, Headers(headers)).serialize()


def test_serialize_request_rejects_lone_surrogate() -> None:
    with pytest.raises(ValueError):  # UnicodeEncodeError
        Request("/\ud800", Headers()).serialize()


# Responses.


def test_parse_response_101_leaves_frames() -> None:
    resp, rest = response_and_rest(RESPONSE_101 + FRAME, eof=False)
    assert resp.status_code == 101
    assert resp.reason_phrase == "Switching Protocols"
    assert resp.headers["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert resp.body == b""
    assert rest == FRAME


def test_parse_response_101_ignores_body_headers() -> None:
    data = (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Content-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"\r\n"
    )
    resp, rest = response_and_rest(data + FRAME, eof=False)
    assert resp.body == b""
    assert rest == FRAME


def test_response_parse_classmethod() -> None:
    data = b"HTTP/1.1 200 OK\r\n\r\n0123456789"
    reader = StreamReader()
    reader.feed_data(data)
    gen = Response.parse(
        reader.read_line,
        reader.read_exact,
        reader.read_to_eof,
        max_line=100,
        max_num_headers=5,
        max_body_size=10,
    )
    assert drive(gen, reader, [])[0] == Response(200, "OK", Headers(), b"0123456789")
    reader = StreamReader()
    reader.feed_data(data)
    gen = Response.parse(
        reader.read_line, reader.read_exact, reader.read_to_eof, max_body_size=9
    )
    with pytest.raises(SecurityError, match="body too large"):
        drive(gen, reader, [])


@pytest.mark.parametrize(
    ("line", "code", "reason"),
    [
        (b"HTTP/1.1 101 Switching Protocols", 101, "Switching Protocols"),
        (b"HTTP/1.1 100 Continue", 100, "Continue"),
        (b"HTTP/1.1 999 Whatever", 999, "Whatever"),
        (b"HTTP/1.1 404 ", 404, ""),
        (b"HTTP/1.1 404", 404, ""),
        (b"HTTP/1.1 500 a  b\tc ", 500, "a  b\tc "),
        (b"HTTP/1.1 200 caf\xc3\xa9", 200, "caf\udcc3\udca9"),
        (b"HTTP/1.1 200 \xff", 200, "\udcff"),
    ],
)
def test_parse_response_status_line(line: bytes, code: int, reason: str) -> None:
    resp = response(line + b"\r\nContent-Length: 0\r\n\r\n")
    assert (resp.status_code, resp.reason_phrase) == (code, reason)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"HTTP/1.0 101 OK", "unsupported protocol; expected HTTP/1.1; got HTTP/1.0"),
        (b"HTTP/2 101 OK", "unsupported protocol; expected HTTP/1.1; got HTTP/2"),
        (b"http/1.1 101 OK", "unsupported protocol; expected HTTP/1.1; got http/1.1"),
        (b"ICY 200 OK", "unsupported protocol; expected HTTP/1.1; got ICY"),
        (b"", "unsupported protocol; expected HTTP/1.1; got "),
        (b"HTTP/1.1", "invalid HTTP status code: "),
        (b"HTTP/1.1  101 OK", "invalid HTTP status code: "),
        (b"HTTP/1.1 1O1 OK", "invalid HTTP status code: 1O1"),
        (b"HTTP/1.1 10 OK", "invalid HTTP status code: 10"),
        (b"HTTP/1.1 1000 OK", "invalid HTTP status code: 1000"),
        (b"HTTP/1.1 +10 OK", "invalid HTTP status code: +10"),
        (b"HTTP/1.1 \xd9\xa1\xd9 OK", "invalid HTTP status code: \\xd9\\xa1\\xd9"),
        (
            b"HTTP/1.1 099 OK",
            "unsupported HTTP status code; expected 100-999; got 99",
        ),
        (b"HTTP/1.1 000 OK", "unsupported HTTP status code; expected 100-999; got 0"),
        (b"HTTP/1.1 101 O\x00K", "invalid HTTP reason phrase: O\\x00K"),
        (b"HTTP/1.1 101 O\x7fK", "invalid HTTP reason phrase: O\\x7fK"),
        (b"HTTP/1.1 101 O\rK", "invalid HTTP reason phrase: O\\rK"),
    ],
)
def test_parse_response_bad_status_line(line: bytes, message: str) -> None:
    with pytest.raises(ValueError) as info:
        response(line + b"\r\n\r\n")
    assert str(info.value) == message
    assert type(info.value) is ValueError


def test_parse_response_bad_header() -> None:
    with pytest.raises(ValueError, match="invalid HTTP header name: Bad Name"):
        response(b"HTTP/1.1 101 OK\r\nBad Name: x\r\n\r\n")
    with pytest.raises(ValueError, match="obsolete line folding"):
        response(b"HTTP/1.1 101 OK\r\nA: x\r\n y\r\n\r\n")


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 101 OK\n\r\n",
        b"HTTP/1.1 101 OK\r\nUpgrade: websocket\n\r\n",
        b"HTTP/1.1 101 OK\r\n\n",
    ],
)
def test_parse_response_bare_lf_is_end_of_stream(data: bytes) -> None:
    with pytest.raises(EOFError, match="line without CRLF"):
        response(data)


@pytest.mark.parametrize(
    "data", [b"", b"HTTP/1.1 101 OK", b"HTTP/1.1 101 OK\r\n", b"HTTP/1.1 101 OK\r\n\r"]
)
def test_parse_response_eof(data: bytes) -> None:
    with pytest.raises(EOFError):
        response(data)


def test_parse_response_max_line() -> None:
    name = b"X-Long: "
    ok = name + b"a" * (MAX_LINE - len(name) - 2)
    resp = response(b"HTTP/1.1 101 OK\r\n" + ok + b"\r\n\r\n")
    assert len(resp.headers["X-Long"]) == MAX_LINE - len(name) - 2
    with pytest.raises(SecurityError, match="line too long"):
        response(b"HTTP/1.1 101 OK\r\n" + ok + b"a\r\n\r\n")
    with pytest.raises(SecurityError, match="line too long"):
        response(b"HTTP/1.1 101 OK\r\n\r\n", max_line=16)
    assert response(b"HTTP/1.1 101 OK\r\n\r\n", max_line=17).status_code == 101


def test_parse_response_max_headers() -> None:
    lines = b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(MAX_HEADERS))
    resp = response(b"HTTP/1.1 101 OK\r\n" + lines + b"\r\n")
    assert len(list(resp.headers.raw_items())) == MAX_HEADERS
    with pytest.raises(SecurityError, match="too many HTTP headers"):
        response(b"HTTP/1.1 101 OK\r\n" + lines + b"X-Last: 1\r\n\r\n")
    with pytest.raises(SecurityError, match="too many HTTP headers"):
        response(b"HTTP/1.1 101 OK\r\nA: 1\r\nB: 2\r\n\r\n", max_num_headers=1)


def test_parse_response_content_length() -> None:
    data = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nhello"
    resp, rest = response_and_rest(data + b"extra", eof=False)
    assert resp == Response(
        403, "Forbidden", Headers([("Content-Length", "5")]), b"hello"
    )
    assert rest == b"extra"


@pytest.mark.parametrize(
    ("value", "body"),
    [(b"0", b""), (b"000", b""), (b"0003", b"abc"), (b" 3\t", b"abc")],
)
def test_parse_response_content_length_values(value: bytes, body: bytes) -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\n"
    resp, rest = response_and_rest(data + b"abcdef", eof=False)
    assert resp.body == body
    assert rest == b"abcdef"[len(body) :]


def test_parse_response_content_length_limit() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
    assert response(data % MAX_BODY + b"a" * MAX_BODY).body == b"a" * MAX_BODY
    with pytest.raises(SecurityError, match="body too large"):
        response(data % (MAX_BODY + 1) + b"a" * (MAX_BODY + 1))
    assert response(data % 3 + b"abc", max_body_size=3).body == b"abc"
    with pytest.raises(SecurityError, match="body too large"):
        response(data % 4 + b"abcd", max_body_size=3)


def test_parse_response_content_length_huge() -> None:
    # Rejected before being converted, and without waiting for the body.
    data = b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 4000 + b"\r\n\r\n"
    with pytest.raises(SecurityError, match="body too large"):
        response(data, eof=False)
    data = b"HTTP/1.1 200 OK\r\nContent-Length: " + b"0" * 4000 + b"1\r\n\r\nx"
    assert response(data).body == b"x"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (b"Content-Length: -1", "invalid Content-Length header: '-1'"),
        (b"Content-Length: +1", "invalid Content-Length header: '+1'"),
        (b"Content-Length: 1 1", "invalid Content-Length header: '1 1'"),
        (b"Content-Length: 1, 1", "invalid Content-Length header: '1, 1'"),
        (b"Content-Length: 0x1", "invalid Content-Length header: '0x1'"),
        (b"Content-Length:", "invalid Content-Length header: ''"),
        (b"Content-Length: \xd9\xa3", "invalid Content-Length header: "),
        (
            b"Content-Length: 1\r\nContent-Length: 1",
            "multiple Content-Length headers",
        ),
        (b"Transfer-Encoding: chunked", "unsupported transfer encoding"),
        (
            b"Transfer-Encoding: chunked\r\nContent-Length: 3",
            "unsupported transfer encoding",
        ),
    ],
)
def test_parse_response_bad_body_headers(headers: bytes, message: str) -> None:
    data = b"HTTP/1.1 200 OK\r\n" + headers + b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    with pytest.raises(ValueError) as info:
        response(data)
    assert str(info.value).startswith(message)
    assert type(info.value) is ValueError


def test_parse_response_content_length_eof() -> None:
    with pytest.raises(EOFError):
        response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")


def test_parse_response_body_to_eof() -> None:
    reader = StreamReader()
    gen = parse_response(reader.read_line, reader.read_exact, reader.read_to_eof)
    resp, rest = drive(
        gen, reader, [b"HTTP/1.1 500 Oops\r\n\r\n", b"first, ", b"second"]
    )
    assert resp.body == b"first, second"
    assert rest == b""


def test_parse_response_body_to_eof_limit() -> None:
    data = b"HTTP/1.1 200 OK\r\n\r\n"
    assert response(data + b"abc", max_body_size=3).body == b"abc"
    with pytest.raises(SecurityError, match="body too large") as info:
        response(data + b"abcd", max_body_size=3)
    assert isinstance(info.value.__cause__, RuntimeError)
    # Fails as soon as too much is buffered, without waiting for the end.
    with pytest.raises(SecurityError, match="body too large"):
        response(data + b"abcd", eof=False, max_body_size=3)


@pytest.mark.parametrize("code", [100, 102, 103, 199, 204, 304])
def test_parse_response_without_body(code: int) -> None:
    data = b"HTTP/1.1 %d X\r\nContent-Length: 3\r\n\r\n" % code
    resp, rest = response_and_rest(data + b"abc", eof=False)
    assert (resp.status_code, resp.body) == (code, b"")
    assert rest == b"abc"


def test_serialize_response() -> None:
    headers = Headers([("Upgrade", "websocket"), ("Connection", "Upgrade")])
    assert Response(101, "Switching Protocols", headers).serialize() == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"\r\n"
    )


def test_serialize_response_with_body() -> None:
    headers = Headers([("Content-Length", "6")])
    resp = Response(400, "Bad Request", headers, b"Oops.\n")
    data = resp.serialize()
    assert data == b"HTTP/1.1 400 Bad Request\r\nContent-Length: 6\r\n\r\nOops.\n"
    assert response(data) == resp


def test_serialize_response_empty_reason() -> None:
    assert Response(599, "", Headers()).serialize() == b"HTTP/1.1 599 \r\n\r\n"


@pytest.mark.parametrize(
    ("code", "reason", "headers", "message"),
    [
        (99, "OK", [], "invalid status code: 99"),
        (1000, "OK", [], "invalid status code: 1000"),
        (200, "O\r\nK", [], "invalid reason phrase: 'O\\r\\nK'"),
        (200, "O\x00K", [], "invalid reason phrase: 'O\\x00K'"),
        (200, "OK", [("X", "\r\n")], "invalid HTTP header value: '\\r\\n'"),
        (200, "OK", [("X Y", "1")], "invalid HTTP header name: 'X Y'"),
    ],
)
def test_serialize_response_errors(
    code: int, reason: str, headers: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        Response(code, reason, Headers(headers)).serialize()
    assert str(info.value) == message


# Property-based tests.

TOKEN_CHARS = (
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=20)
value_bytes = st.binary(max_size=40).map(
    lambda raw: bytes(b for b in raw if b == 9 or 32 <= b != 127).strip(b" \t")
)
values = value_bytes.map(lambda raw: raw.decode("ascii", "surrogateescape"))
targets = st.binary(min_size=1, max_size=40).map(
    lambda raw: bytes(b if 32 < b != 127 else 47 for b in raw).decode(
        "ascii", "surrogateescape"
    )
)
header_lists = st.lists(st.tuples(tokens, values), max_size=10)


def without_framing(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop the headers that announce a body, should the example draw them."""
    framing = {"content-length", "transfer-encoding"}
    return [(name, value) for name, value in pairs if name.lower() not in framing]


@given(path=targets, pairs=header_lists)
def test_request_round_trip(path: str, pairs: list[tuple[str, str]]) -> None:
    req = Request(path, Headers(without_framing(pairs)))
    assert request(req.serialize()) == req


@given(
    code=st.integers(100, 999),
    reason=values,
    pairs=header_lists,
    body=st.binary(max_size=50),
)
def test_response_round_trip(
    code: int, reason: str, pairs: list[tuple[str, str]], body: bytes
) -> None:
    headers = Headers(without_framing(pairs))
    has_body = code >= 200 and code not in (204, 304)
    if has_body:
        headers["Content-Length"] = str(len(body))
    else:
        body = b""
    resp = Response(code, reason, headers, body)
    assert response(resp.serialize(), eof=False) == resp


@given(cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_request_in_chunks(cuts: list[int]) -> None:
    data = REQUEST + FRAME
    reader = StreamReader()
    gen = parse_request(reader.read_line)
    req, rest = drive(gen, reader, split(data, cuts), eof=False)
    assert req == request(REQUEST)
    assert rest == FRAME


def test_request_one_byte_at_a_time() -> None:
    reader = StreamReader()
    gen = parse_request(reader.read_line)
    chunks = [REQUEST[i : i + 1] for i in range(len(REQUEST))]
    assert drive(gen, reader, chunks, eof=False) == (request(REQUEST), b"")


@given(
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    data=st.sampled_from(
        [
            RESPONSE_101 + FRAME,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcdef",
            b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\n\r\nbody until EOF",
            b"HTTP/1.1 304 Not Modified\r\n\r\nabcdef",
        ]
    ),
)
def test_response_in_chunks(cuts: list[int], data: bytes) -> None:
    reader = StreamReader()
    gen = parse_response(reader.read_line, reader.read_exact, reader.read_to_eof)
    in_chunks = drive(gen, reader, split(data, cuts))
    reader = StreamReader()
    gen = parse_response(reader.read_line, reader.read_exact, reader.read_to_eof)
    assert in_chunks == drive(gen, reader, [data])


def test_response_one_byte_at_a_time() -> None:
    reader = StreamReader()
    gen = parse_response(reader.read_line, reader.read_exact, reader.read_to_eof)
    chunks = [RESPONSE_101[i : i + 1] for i in range(len(RESPONSE_101))]
    resp, rest = drive(gen, reader, chunks, eof=False)
    assert resp == response(RESPONSE_101)
    assert rest == b""


# What a connection keeps: the parsed headers, for as long as it is open.


def test_parse_request_shares_header_names() -> None:
    first = request(REQUEST).headers
    second = request(REQUEST.replace(b"server.example", b"other.example")).headers
    for (name, _), (other, _) in zip(
        first.raw_items(), second.raw_items(), strict=True
    ):
        assert name is other


@pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="tracemalloc is CPython's"
)
@pytest.mark.parametrize("one_pass", [False, True])
def test_parse_request_headers_are_small(one_pass: bool) -> None:
    # The request of benchmarks/memprofile.py, with a fresh key each time, as
    # from many clients. Its headers took about 1.9 KB when Headers kept a
    # dict of lists and a list of tuples; about 350 bytes now (the Headers,
    # two lists and the key; names and the other values are shared).
    count = 200
    data = [
        REQUEST.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"%022d==" % index)
        for index in range(count)
    ]
    parse = read_whole if one_pass else request
    parse(data[0])  # build the shared strings before measuring
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [parse(raw).headers for raw in data]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_request = (after - before - sys.getsizeof(kept)) / count
    assert per_request < 500, per_request
    assert kept[7]["Sec-WebSocket-Key"] == f"{7:022d}=="


# read_request and read_response: the same parsers, given the reader, with a
# one-pass path for a message already buffered whole.


def read_outcome(
    gen: Generator[None, None, T], reader: StreamReader, *rest: bytes
) -> tuple[str, object, bytes]:
    """Run a parser started on a reader that holds a message already; feed
    ``rest``, then EOF. Returns what it gave (or raised) and the bytes left."""
    pending = list(rest)
    try:
        next(gen)
        while pending:
            reader.feed_data(pending.pop(0))
            next(gen)
        reader.feed_eof()
        next(gen)
    except StopIteration as exc:
        return "result", exc.value, bytes(reader.buffer) + b"".join(pending)
    except (ValueError, SecurityError, EOFError) as exc:
        return type(exc).__name__, str(exc), bytes(reader.buffer)
    raise AssertionError("the parser waits after the end of the stream")


def request_outcomes(
    data: bytes, *rest: bytes, **kwargs: Any
) -> tuple[tuple[str, object, bytes], tuple[str, object, bytes]]:
    """What read_request and parse_request make of the same bytes."""
    outcomes = []
    for fast in (True, False):
        reader = StreamReader()
        reader.feed_data(data)
        gen = (
            read_request(reader, **kwargs)
            if fast
            else parse_request(reader.read_line, **kwargs)
        )
        outcomes.append(read_outcome(gen, reader, *rest))
    return outcomes[0], outcomes[1]


def response_outcomes(
    data: bytes, *rest: bytes, **kwargs: Any
) -> tuple[tuple[str, object, bytes], tuple[str, object, bytes]]:
    """What read_response and parse_response make of the same bytes."""
    outcomes = []
    for fast in (True, False):
        reader = StreamReader()
        reader.feed_data(data)
        gen = (
            read_response(reader, **kwargs)
            if fast
            else parse_response(
                reader.read_line, reader.read_exact, reader.read_to_eof, **kwargs
            )
        )
        outcomes.append(read_outcome(gen, reader, *rest))
    return outcomes[0], outcomes[1]


def read_whole(data: bytes) -> Request:
    """read_request of a request buffered whole, as a server gets it."""
    reader = StreamReader()
    reader.feed_data(data)
    return drive(read_request(reader), reader, [])[0]


def test_read_request_in_one_pass() -> None:
    reader = StreamReader()
    reader.feed_data(REQUEST + FRAME)
    with pytest.raises(StopIteration) as exc_info:
        next(read_request(reader))  # no yield: the request was all there
    assert exc_info.value.value == request(REQUEST)
    assert exc_info.value.value.path == "/chat?room=1"
    assert bytes(reader.buffer) == FRAME


def test_read_response_in_one_pass() -> None:
    reader = StreamReader()
    reader.feed_data(RESPONSE_101 + FRAME)
    with pytest.raises(StopIteration) as exc_info:
        next(read_response(reader))
    assert exc_info.value.value == response(RESPONSE_101)
    assert bytes(reader.buffer) == FRAME


@pytest.mark.parametrize(
    "data",
    [
        REQUEST,
        REQUEST + FRAME,
        b"GET / HTTP/1.1\r\n\r\n",  # no headers
        b"GET / HTTP/1.1\r\nX:\r\nY: \t a b \t\r\n\r\n",  # empty and padded values
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",  # repeated
        b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",  # not ASCII: line by line
        b"GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        # Malformed: the line-by-line parser reports the error.
        b"POST / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET /\t HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1 x\r\n\r\n",
        b"GET\r\n\r\n",
        b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
        b"GET / HTTP/1.1\r\n: empty name\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",  # bare CR
        b"GET / HTTP/1.1\nHost: a\r\n\r\n",  # bare LF
        b"GET / HTTP/1.1\r\nHost: a\n\r\n\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        # Incomplete: read line by line as the rest arrives.
        REQUEST[:40],
        b"GET / HTTP/1.1\r\nHost: a\r\n",
    ],
)
def test_read_request_same_as_parse_request(data: bytes) -> None:
    fast, slow = request_outcomes(data)
    assert fast == slow


# The longest line of REQUEST, CRLF included: that of the key.
LONGEST = len(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


@pytest.mark.parametrize(
    ("max_line", "max_num_headers", "fits"),
    [(LONGEST, 5, True), (LONGEST - 1, 5, False), (LONGEST, 4, False)],
)
def test_read_request_limits_same_as_parse_request(
    max_line: int, max_num_headers: int, fits: bool
) -> None:
    fast, slow = request_outcomes(
        REQUEST, max_line=max_line, max_num_headers=max_num_headers
    )
    assert fast == slow
    assert (fast[0] == "result") is fits


def test_read_request_in_pieces() -> None:
    fast, slow = request_outcomes(REQUEST[:40], REQUEST[40:] + FRAME)
    assert fast == slow
    assert fast[0] == "result"
    assert fast[2] == FRAME


@pytest.mark.parametrize(
    "data",
    [
        RESPONSE_101,
        RESPONSE_101 + FRAME,
        b"HTTP/1.1 101\r\n\r\n",  # no reason phrase
        b"HTTP/1.1 101 \r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
        b"HTTP/1.1 403 Forbidden\r\n\r\nto the end",
        b"HTTP/1.1 204 No Content\r\n\r\nrest",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 101 Switching\xff\r\n\r\n",  # not ASCII: line by line
        b"HTTP/1.1 099 x\r\n\r\n",
        b"HTTP/1.1 1x1 x\r\n\r\n",
        b"HTTP/1.1 1011 x\r\n\r\n",
        b"HTTP/1.0 101 x\r\n\r\n",
        b"HTTP/1.1 101 x\r\nBad Name: 1\r\n\r\n",
        b"HTTP/1.1 101 x\r\nX: a\r\n folded\r\n\r\n",
        RESPONSE_101[:30],
    ],
)
def test_read_response_same_as_parse_response(data: bytes) -> None:
    fast, slow = response_outcomes(data)
    assert fast == slow


def test_read_response_body_limit_same_as_parse_response() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    fast, slow = response_outcomes(data, max_body_size=4)
    assert fast == slow == ("SecurityError", "body too large", b"hello")


def test_serialize_refuses_values_that_are_not_text() -> None:
    # Headers hold str; anything else is refused as it always was, by the
    # encoding of each value.
    headers = Headers([("X", 1)])  # type: ignore[list-item]
    with pytest.raises(AttributeError):
        Response(101, "Switching Protocols", headers).serialize()


def test_serialize_plain_and_encoded_headers_agree() -> None:
    plain = Headers([("A", "1"), ("B", "x\ty"), ("C", "")])
    # A value beyond ASCII goes through the encoding of each pair.
    encoded = Headers([("A", "1"), ("B", "x\ty"), ("C", "é")])
    assert Response(101, "X", plain).serialize() == (
        b"HTTP/1.1 101 X\r\nA: 1\r\nB: x\ty\r\nC: \r\n\r\n"
    )
    assert Response(101, "X", encoded).serialize() == (
        b"HTTP/1.1 101 X\r\nA: 1\r\nB: x\ty\r\nC: \xc3\xa9\r\n\r\n"
    )
