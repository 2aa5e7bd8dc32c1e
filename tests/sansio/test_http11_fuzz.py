"""Fuzz tests for anyws.sansio.http11.

Whatever the peer sends, in whatever chunks, the parsers return a message or
raise one of the documented exceptions; they never buffer more than their
limits allow; and what they accept can be written back and read the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from typing import NamedTuple, TypeVar

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from anyws.exceptions import SecurityError
from anyws.sansio._buffer import StreamReader
from anyws.sansio.http11 import (
    MAX_BODY,
    MAX_HEADERS,
    MAX_LINE,
    Request,
    Response,
    parse_request,
    parse_response,
    read_request,
    read_response,
)

T = TypeVar("T")

# The exceptions that http11 documents, exactly (subclasses such as
# UnicodeDecodeError would be a bug: every decoding uses surrogateescape).
DOCUMENTED = (ValueError, SecurityError, EOFError)

FUZZ = settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class Limits(NamedTuple):
    max_line: int
    max_num_headers: int
    max_body_size: int


# Each strategy below is a single draw (a sampled_from over a list whose
# repeated items weigh more), which keeps 10,000 examples fast.
limits = st.sampled_from(
    [
        Limits(max_line, max_num_headers, max_body_size)
        # The defaults come first: Hypothesis draws the first items more often.
        for max_line in (*[MAX_LINE] * 6, 16, 40)
        for max_num_headers in (*[MAX_HEADERS] * 6, 0, 2)
        for max_body_size in (*[MAX_BODY] * 6, 0, 10)
    ]
)

# What the generated messages are built from: mostly valid pieces, and pieces
# that break one rule each, so that both outcomes are frequent.
TERMINATORS = [b"\r\n"] * 20 + [b"\n", b"\r", b""]
REQUEST_LINES = [
    b"GET / HTTP/1.1",
    b"GET /chat?x=1 HTTP/1.1",
    b"GET /caf\xc3\xa9 HTTP/1.1",
] * 8 + [
    b"POST / HTTP/1.1",
    b"GET / HTTP/1.0",
    b"GET  / HTTP/1.1",
    b"GET /\x00 HTTP/1.1",
    b"GET",
    b"",
]
STATUS_LINES = [
    b"HTTP/1.1 101 Switching Protocols",
    b"HTTP/1.1 200 OK",
    b"HTTP/1.1 204 No Content",
    b"HTTP/1.1 304 Not Modified",
    b"HTTP/1.1 100 Continue",
    b"HTTP/1.1 404",
    b"HTTP/1.1 500 \xff\t",
] * 4 + [
    b"HTTP/1.1 099 x",
    b"HTTP/1.1 1x1 x",
    b"HTTP/1.0 101 OK",
    b"HTTP/1.1 101 O\x00K",
    b"",
]
GOOD_NAMES = [
    b"Host",
    b"Upgrade",
    b"Connection",
    b"Sec-WebSocket-Accept",
    b"X",
    b"x-y",
    b"Date",
    b"Server",
    b"Content-Length",
    b"transfer-encoding",
]
BAD_NAMES = [b"Bad Name", b"", b" Folded", b"\tFolded", b"\xffName"]
GOOD_SEPARATORS = [b": ", b":", b":\t "]
BAD_SEPARATORS = [b" : ", b""]
GOOD_VALUES = [
    b"",
    b"0",
    b"3",
    b"0003",
    b"-1",
    b"1, 1",
    b"99999999999999999999999",
    b"chunked",
    b"websocket",
    b" padded \t",
    b"\x80\xff",
    b"\xd9\xa3",
]
BAD_VALUES = [b"a\x00b", b"\x7f"]
GOOD_LINES = [
    name + sep + value
    for name in GOOD_NAMES
    for sep in GOOD_SEPARATORS
    for value in GOOD_VALUES
]
BAD_LINES = [
    name + sep + value
    for name in GOOD_NAMES + BAD_NAMES
    for sep in GOOD_SEPARATORS + BAD_SEPARATORS
    for value in GOOD_VALUES + BAD_VALUES
    if name in BAD_NAMES or sep in BAD_SEPARATORS or value in BAD_VALUES
]
# About nine valid header lines for one invalid line.
HEADER_LINES = GOOD_LINES * (9 * len(BAD_LINES) // len(GOOD_LINES)) + BAD_LINES


def messages(first_lines: list[bytes]) -> st.SearchStrategy[bytes]:
    """A start line, header lines and a body, with odd pieces here and there."""
    line = st.tuples(st.sampled_from(HEADER_LINES), st.sampled_from(TERMINATORS))
    return st.tuples(
        st.sampled_from(first_lines),
        st.sampled_from(TERMINATORS),
        st.lists(line, max_size=6),
        st.sampled_from(TERMINATORS),
        st.binary(max_size=20),
    ).map(
        lambda parts: (
            parts[0]
            + parts[1]
            + b"".join(header + end for header, end in parts[2])
            + parts[3]
            + parts[4]
        )
    )


def mutate(data: bytes, edits: bytes) -> bytes:
    """Apply edits to a message: each 4 bytes of ``edits`` say where (2 bytes),
    what (insert, delete, replace or repeat) and with which byte or length.

    Packing the edits in one ``binary`` draw keeps the fuzzer fast.
    """
    result = bytearray(data)
    for i in range(0, len(edits) - 3, 4):
        position = int.from_bytes(edits[i : i + 2], "big") % (len(result) + 1)
        operation, argument = edits[i + 2] % 4, edits[i + 3]
        if operation == 0:  # insert
            result[position:position] = bytes([argument])
        elif operation == 1:  # delete
            del result[position : position + argument % 8 + 1]
        elif operation == 2:  # replace
            result[position : position + 1] = bytes([argument])
        else:  # repeat
            result[position:position] = result[position : position + argument % 40]
    return bytes(result)


def mutated(base: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A message with a few bytes inserted, deleted, replaced or repeated."""
    edits = st.binary(min_size=4, max_size=16)
    return st.tuples(base, edits).map(lambda args: mutate(*args))


def flooded(first_lines: list[bytes]) -> st.SearchStrategy[bytes]:
    """A long header line, or many header lines, to reach the limits."""
    return st.tuples(
        st.sampled_from(first_lines),
        st.sampled_from([b"a", b"y\r\nX: ", b"\t"]),
        st.integers(0, 300),
    ).map(lambda a: a[0] + b"\r\nX: " + a[1] * a[2] + b"\r\n\r\nbody")


def inputs(first_lines: list[bytes]) -> st.SearchStrategy[bytes]:
    structured = messages(first_lines)
    return st.one_of(
        st.binary(max_size=200),
        structured,
        structured,
        mutated(structured),
        flooded(first_lines),
    )


# How the bytes arrive: one at a time, in small pieces, or all at once.
chunk_sizes = st.sampled_from([1, 2, 3, 5, 16, 100, 10**6])


def split(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def run(
    gen: Generator[None, None, T],
    reader: StreamReader,
    chunks: list[bytes],
    bound: int,
) -> tuple[T, bytes] | None:
    """Feed the chunks then EOF; return the result and the bytes left unread
    (in the reader or never fed), or None after an error.

    Whenever the parser waits for more bytes, the reader holds at most
    ``bound`` bytes, whatever the size of the input.
    """
    pending = list(chunks)
    try:
        next(gen)
        while pending:
            assert len(reader.buffer) <= bound
            reader.feed_data(pending.pop(0))
            next(gen)
        assert len(reader.buffer) <= bound
        reader.feed_eof()
        next(gen)
    except StopIteration as exc:
        event("parsed")  # --hypothesis-show-statistics shows the outcomes
        return exc.value, bytes(reader.buffer) + b"".join(pending)
    except DOCUMENTED as exc:
        assert type(exc) in DOCUMENTED, repr(exc)
        kind = re.sub(r"\d+", "N", str(exc).split(":")[0].split(";")[0])
        event(f"{type(exc).__name__}: {kind}")
        return None
    raise AssertionError("the parser waits after the end of the stream")


def reparse(
    data: bytes, parse: Callable[[StreamReader], Generator[None, None, T]]
) -> T:
    """Parse well-formed bytes in one go, with generous limits."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    gen = parse(reader)
    try:
        next(gen)
    except StopIteration as exc:
        result: T = exc.value
        return result
    raise AssertionError("the parser waits after the end of the stream")


def big_request(reader: StreamReader) -> Generator[None, None, Request]:
    return parse_request(reader.read_line, max_line=10**6, max_num_headers=10**6)


def big_response(reader: StreamReader) -> Generator[None, None, Response]:
    return parse_response(
        reader.read_line,
        reader.read_exact,
        reader.read_to_eof,
        max_line=10**6,
        max_num_headers=10**6,
        max_body_size=10**6,
    )


def check_request(data: bytes, size: int, limit: Limits) -> None:
    reader = StreamReader()
    gen = parse_request(
        reader.read_line,
        max_line=limit.max_line,
        max_num_headers=limit.max_num_headers,
    )
    outcome = run(gen, reader, split(data, size), limit.max_line)
    if outcome is None:
        return
    req, rest = outcome
    # Only the request line and the headers were consumed.
    assert rest == data[data.index(b"\r\n\r\n") + 4 :]
    assert len(list(req.headers.raw_items())) <= limit.max_num_headers
    # What was accepted can be written back, and reads the same.
    assert reparse(req.serialize(), big_request) == req


def check_response(data: bytes, size: int, limit: Limits) -> None:
    reader = StreamReader()
    gen = parse_response(
        reader.read_line,
        reader.read_exact,
        reader.read_to_eof,
        max_line=limit.max_line,
        max_num_headers=limit.max_num_headers,
        max_body_size=limit.max_body_size,
    )
    bound = max(limit.max_line, limit.max_body_size)
    outcome = run(gen, reader, split(data, size), bound)
    if outcome is None:
        return
    resp, rest = outcome
    assert 100 <= resp.status_code <= 999
    assert len(list(resp.headers.raw_items())) <= limit.max_num_headers
    assert len(resp.body) <= limit.max_body_size
    if resp.status_code < 200 or resp.status_code in (204, 304):
        # Nothing after the header block is consumed: for a 101, the
        # WebSocket frames that follow stay in the reader.
        assert resp.body == b""
    # The body, if any, is what follows the header block.
    body_start = data.index(b"\r\n\r\n") + 4
    assert data[body_start:] == resp.body + rest
    assert reparse(resp.serialize(), big_response) == resp


# One test for both parsers, so that 10,000 examples fit in a few seconds.
cases = st.one_of(
    st.tuples(st.just(check_request), inputs(REQUEST_LINES)),
    st.tuples(st.just(check_response), inputs(STATUS_LINES)),
)


@FUZZ
@given(case=cases, size=chunk_sizes, limit=limits)
def test_fuzz_parsers(
    case: tuple[Callable[[bytes, int, Limits], None], bytes],
    size: int,
    limit: Limits,
) -> None:
    check, data = case
    check(data, size, limit)


# read_request and read_response parse a message that is already buffered
# whole in one pass: whatever the bytes, they must give what the line-by-line
# parsers give (the same message, or the same error), and leave the same
# bytes in the reader.

Outcome = tuple[str, object, bytes]


def outcome(
    start: Callable[[StreamReader], Generator[None, None, T]], chunks: list[bytes]
) -> Outcome:
    """Feed the first chunk, start the parser, feed the others, then EOF."""
    reader = StreamReader()
    pending = list(chunks)
    if pending:
        reader.feed_data(pending.pop(0))
    gen = start(reader)
    try:
        next(gen)
        while pending:
            reader.feed_data(pending.pop(0))
            next(gen)
        reader.feed_eof()
        next(gen)
    except StopIteration as exc:
        return "result", exc.value, bytes(reader.buffer) + b"".join(pending)
    except DOCUMENTED as exc:
        return type(exc).__name__, str(exc), b""
    raise AssertionError("the parser waits after the end of the stream")


def compare_requests(data: bytes, size: int, limit: Limits) -> None:
    chunks = split(data, size)
    fast = outcome(
        lambda reader: read_request(
            reader, max_line=limit.max_line, max_num_headers=limit.max_num_headers
        ),
        chunks,
    )
    slow = outcome(
        lambda reader: parse_request(
            reader.read_line,
            max_line=limit.max_line,
            max_num_headers=limit.max_num_headers,
        ),
        chunks,
    )
    assert fast == slow


def compare_responses(data: bytes, size: int, limit: Limits) -> None:
    chunks = split(data, size)
    fast = outcome(
        lambda reader: read_response(
            reader,
            max_line=limit.max_line,
            max_num_headers=limit.max_num_headers,
            max_body_size=limit.max_body_size,
        ),
        chunks,
    )
    slow = outcome(
        lambda reader: parse_response(
            reader.read_line,
            reader.read_exact,
            reader.read_to_eof,
            max_line=limit.max_line,
            max_num_headers=limit.max_num_headers,
            max_body_size=limit.max_body_size,
        ),
        chunks,
    )
    assert fast == slow


comparisons = st.one_of(
    st.tuples(st.just(compare_requests), inputs(REQUEST_LINES)),
    st.tuples(st.just(compare_responses), inputs(STATUS_LINES)),
)


@settings(FUZZ, max_examples=4000)
@given(case=comparisons, size=st.sampled_from([10**6, 10**6, 10**6, 16]), limit=limits)
def test_fuzz_one_pass_matches_line_by_line(
    case: tuple[Callable[[bytes, int, Limits], None], bytes],
    size: int,
    limit: Limits,
) -> None:
    compare, data = case
    compare(data, size, limit)
