"""The HTTP/1.1 messages of the opening handshake, parsed and serialized.

RFC 6455 section 4 runs the opening handshake over a small subset of HTTP/1.1
(RFC 9112, formerly RFC 7230): a ``GET`` request answered by a response. This
module handles exactly that subset and no more:

* a request is ``GET <target> HTTP/1.1`` plus headers; its body is never read,
  and a request that announces one (``Transfer-Encoding``, or a
  ``Content-Length`` other than 0) is rejected, because the bytes after the
  header block must be WebSocket frames and nothing else;
* a response is ``HTTP/1.1 <code> <reason>`` plus headers; a 101 response ends
  with its header block (frames may follow in the same buffer and are left
  alone), other responses carry a body delimited by ``Content-Length`` or by
  the end of the stream. Chunked bodies are not supported.

The parsers are generators driven by a
:class:`~anyws.sansio._buffer.StreamReader`: they ``yield`` when they need
more bytes. They raise:

* :class:`EOFError` when the stream ends early, or when a line ends in a bare
  LF instead of CRLF (treated as the end of the stream, as websockets 8.1 did);
* :class:`~anyws.exceptions.SecurityError` when a limit is exceeded (line
  length, number of headers, body size);
* :class:`ValueError` for anything else that is malformed or unsupported.

Every limit is an argument; the module constants are the defaults.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass

from ..exceptions import SecurityError
from ..version import __version__
from ._buffer import StreamReader
from .datastructures import Headers

__all__ = (
    "MAX_BODY",
    "MAX_HEADERS",
    "MAX_LINE",
    "USER_AGENT",
    "Request",
    "Response",
    "parse_request",
    "parse_response",
    "read_request",
    "read_response",
)

#: Most header lines accepted in a request or a response.
MAX_HEADERS = 256

#: Longest line accepted in a request or a response, CRLF included.
MAX_LINE = 4096

#: Largest body accepted in a non-101 response.
MAX_BODY = 2**20

#: Sent as ``User-Agent`` by clients and as ``Server`` by servers.
USER_AGENT = (
    f"Python/{sys.version_info.major}.{sys.version_info.minor} anyws/{__version__}"
)

# StreamReader.read_line, read_exact and read_to_eof: each takes a size (the
# longest line, the exact length, the largest body) and returns bytes.
_Read = Callable[[int], Generator[None, None, bytes]]

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN_RE = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")

# RFC 9110 section 5.5: field-value characters are HTAB, SP, VCHAR and
# obs-text (0x80-0xFF). The reason phrase (RFC 9112 section 4) uses the same set.
_VALUE_RE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")

# RFC 9112 section 3.2: the request target contains no whitespace or control
# characters. Bytes 0x80-0xFF are kept (decoded as surrogate escapes) because
# some clients send raw UTF-8.
_TARGET_RE = re.compile(rb"[\x21-\x7e\x80-\xff]+")

# A plain header block: printable ASCII and tabs in lines that end in CRLF.
# What every client and server sends; read_request and read_response parse
# it in one pass. Anything else (bytes beyond ASCII, control characters, a
# bare CR or LF) goes through the line-by-line parser, which reports errors.
# Every value of a plain block matches _VALUE_RE.
_PLAIN_HEAD_RE = re.compile(rb"[\t\x20-\x7e]*(?:\r\n[\t\x20-\x7e]*)*")

# _TOKEN_RE for the lines of a plain block, once decoded.
_TOKEN_STR_RE = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")

# Header names joined by ":" (not in a token), each a token; and header values
# joined by a tab, each printable ASCII and tabs. What _serialize_headers
# writes without encoding each part.
_NAMES_STR_RE = re.compile(
    r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+(?::[-!#$%&'*+.^_`|~0-9a-zA-Z]+)*"
)
_PLAIN_VALUES_STR_RE = re.compile(r"[\t\x20-\x7e]*")

# Besides 1xx (RFC 9110 section 15.2), 204 and 304 never have a body
# (sections 15.3.5 and 15.4.5).
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass
class Request:
    """An opening handshake request (RFC 6455 section 4.1).

    Attributes:
        path: the request target, for example ``/chat?room=1``. Bytes that
            are not ASCII are kept as surrogate escapes.
        headers: the request headers.
    """

    path: str
    headers: Headers

    @classmethod
    def parse(
        cls,
        read_line: _Read,
        *,
        max_line: int = MAX_LINE,
        max_num_headers: int = MAX_HEADERS,
    ) -> Generator[None, None, Request]:
        """Same as :func:`parse_request`."""
        return parse_request(
            read_line, max_line=max_line, max_num_headers=max_num_headers
        )

    def serialize(self) -> bytes:
        """Build the bytes of the request.

        Returns:
            ``GET <path> HTTP/1.1``, the headers and an empty line.

        Raises:
            ValueError: if the path or a header cannot be written without
                breaking the message (for example a value containing CR or LF).
        """
        target = _encode(self.path)
        if _TARGET_RE.fullmatch(target) is None:
            raise ValueError(f"invalid request target: {self.path!r}")
        return b"GET " + target + b" HTTP/1.1\r\n" + _serialize_headers(self.headers)


@dataclass
class Response:
    """An opening handshake response (RFC 6455 section 4.2.2).

    Attributes:
        status_code: the HTTP status code, 101 on success.
        reason_phrase: the reason phrase, for example ``Switching Protocols``.
        headers: the response headers.
        body: the response body; always empty for a 101 response.
    """

    status_code: int
    reason_phrase: str
    headers: Headers
    body: bytes = b""

    @classmethod
    def parse(
        cls,
        read_line: _Read,
        read_exact: _Read,
        read_to_eof: _Read,
        *,
        max_line: int = MAX_LINE,
        max_num_headers: int = MAX_HEADERS,
        max_body_size: int = MAX_BODY,
    ) -> Generator[None, None, Response]:
        """Same as :func:`parse_response`."""
        return parse_response(
            read_line,
            read_exact,
            read_to_eof,
            max_line=max_line,
            max_num_headers=max_num_headers,
            max_body_size=max_body_size,
        )

    def serialize(self) -> bytes:
        """Build the bytes of the response.

        Returns:
            The status line, the headers, an empty line and the body.

        Raises:
            ValueError: if the status code is not between 100 and 999, or if
                the reason phrase or a header cannot be written safely.
        """
        if not 100 <= self.status_code <= 999:
            raise ValueError(f"invalid status code: {self.status_code}")
        reason = _encode(self.reason_phrase)
        if _VALUE_RE.fullmatch(reason) is None:
            raise ValueError(f"invalid reason phrase: {self.reason_phrase!r}")
        status_line = b"HTTP/1.1 %d %s\r\n" % (self.status_code, reason)
        return status_line + _serialize_headers(self.headers) + self.body


def parse_request(
    read_line: _Read,
    *,
    max_line: int = MAX_LINE,
    max_num_headers: int = MAX_HEADERS,
) -> Generator[None, None, Request]:
    """Parse an opening handshake request; ``yield`` when more bytes are needed.

    Only the request line and the headers are consumed; whatever follows stays
    in the reader.

    Args:
        read_line: ``StreamReader.read_line`` of the reader holding the bytes.
        max_line: longest line accepted, CRLF included.
        max_num_headers: most header lines accepted.

    Returns:
        The request.

    Raises:
        EOFError: if the stream ends first, or a line ends in a bare LF.
        SecurityError: if a line is too long or there are too many headers.
        ValueError: if the request is malformed, is not ``GET ... HTTP/1.1``,
            or announces a body.
    """
    line = yield from _read_line(read_line, max_line)
    path = _parse_request_line(line)
    headers = yield from _read_headers(read_line, max_line, max_num_headers)
    return _make_request(path, headers)


def _make_request(path: str, headers: Headers) -> Request:
    """The request, unless it announces a body."""
    # A GET request has no body here: what follows the header block must be
    # WebSocket frames. A body would be taken for frames (a smuggling risk),
    # so refuse it (RFC 9112 section 6.3).
    if headers.get_all("Transfer-Encoding"):
        raise ValueError("unsupported request body: Transfer-Encoding")
    if any(value != "0" for value in headers.get_all("Content-Length")):
        raise ValueError("unsupported request body: Content-Length")
    return Request(path, headers)


def parse_response(
    read_line: _Read,
    read_exact: _Read,
    read_to_eof: _Read,
    *,
    max_line: int = MAX_LINE,
    max_num_headers: int = MAX_HEADERS,
    max_body_size: int = MAX_BODY,
) -> Generator[None, None, Response]:
    """Parse an opening handshake response; ``yield`` when more bytes are needed.

    A 101 response ends with its header block: the bytes after it (frames)
    stay in the reader. Other responses are read with their body: none for
    1xx, 204 and 304; ``Content-Length`` bytes if that header is present;
    otherwise everything up to the end of the stream.

    Args:
        read_line: ``StreamReader.read_line`` of the reader holding the bytes.
        read_exact: ``StreamReader.read_exact`` of the same reader.
        read_to_eof: ``StreamReader.read_to_eof`` of the same reader.
        max_line: longest line accepted, CRLF included.
        max_num_headers: most header lines accepted.
        max_body_size: largest body accepted.

    Returns:
        The response.

    Raises:
        EOFError: if the stream ends first, or a line ends in a bare LF.
        SecurityError: if a line is too long, there are too many headers or
            the body is too large.
        ValueError: if the response is malformed, is not HTTP/1.1, or uses
            ``Transfer-Encoding`` (chunked bodies are not supported).
    """
    line = yield from _read_line(read_line, max_line)
    status_code, reason = _parse_status_line(line)
    headers = yield from _read_headers(read_line, max_line, max_num_headers)
    body = yield from _read_body(
        status_code, headers, read_exact, read_to_eof, max_body_size
    )
    return Response(status_code, reason, headers, body)


def read_request(
    reader: StreamReader,
    *,
    max_line: int = MAX_LINE,
    max_num_headers: int = MAX_HEADERS,
) -> Generator[None, None, Request]:
    """:func:`parse_request` from a reader; faster when the request is there.

    The result, the errors and what stays in the reader are those of
    ``parse_request(reader.read_line, ...)``. When the first call finds the
    whole request in the reader's buffer, and it is plain (see
    ``_PLAIN_HEAD_RE``) and valid, it is parsed in one pass instead of line by
    line; in every other case (incomplete, malformed, unusual) the
    line-by-line parser runs from the start.
    """
    head = _split_plain_head(reader.buffer, max_line, max_num_headers)
    if head is not None:
        start, size, pairs = head
        path = _plain_request_target(start)
        if path is not None:
            del reader.buffer[:size]
            return _make_request(path, Headers(pairs))
    return (
        yield from parse_request(
            reader.read_line, max_line=max_line, max_num_headers=max_num_headers
        )
    )


def read_response(
    reader: StreamReader,
    *,
    max_line: int = MAX_LINE,
    max_num_headers: int = MAX_HEADERS,
    max_body_size: int = MAX_BODY,
) -> Generator[None, None, Response]:
    """:func:`parse_response` from a reader; faster when the head is there.

    The result, the errors and what stays in the reader are those of
    ``parse_response(reader.read_line, reader.read_exact,
    reader.read_to_eof, ...)``; see :func:`read_request` for when the status
    line and the headers are parsed in one pass.
    """
    head = _split_plain_head(reader.buffer, max_line, max_num_headers)
    if head is not None:
        start, size, pairs = head
        status = _plain_status(start)
        if status is not None:
            del reader.buffer[:size]
            status_code, reason = status
            headers = Headers(pairs)
            body = yield from _read_body(
                status_code,
                headers,
                reader.read_exact,
                reader.read_to_eof,
                max_body_size,
            )
            return Response(status_code, reason, headers, body)
    return (
        yield from parse_response(
            reader.read_line,
            reader.read_exact,
            reader.read_to_eof,
            max_line=max_line,
            max_num_headers=max_num_headers,
            max_body_size=max_body_size,
        )
    )


def _split_plain_head(
    buffer: bytearray, max_line: int, max_num_headers: int
) -> tuple[str, int, list[tuple[str, str]]] | None:
    """Split a plain header block that ``buffer`` holds whole.

    Returns:
        The start line, the size of the block (its empty line included) and
        the header pairs; ``None`` unless the block is whole, plain, and
        passes every check of the line-by-line parser (line length, number of
        headers, header names, no line folding). The start line is not
        checked. Nothing is consumed.
    """
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buffer[:end]
    if _PLAIN_HEAD_RE.fullmatch(head) is None:
        return None
    lines = head.decode("ascii").split("\r\n")
    # The line-by-line parser counts the CRLF in a line's length.
    if len(lines) > max_num_headers + 1 or max(map(len, lines)) > max_line - 2:
        return None
    pairs = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        # A folded line starts with whitespace: not a token either.
        if not sep or _TOKEN_STR_RE.fullmatch(name) is None:
            return None
        pairs.append((name, value.strip(" \t")))
    return lines[0], end + 4, pairs


def _plain_request_target(line: str) -> str | None:
    """The target of a valid ``GET <target> HTTP/1.1`` from a plain block."""
    method, _, rest = line.partition(" ")
    target, _, version = rest.partition(" ")
    # In a plain block, _TARGET_RE comes down to: not empty, no tab (no
    # space either: the partitions took the first two).
    if method == "GET" and version == "HTTP/1.1" and target and "\t" not in target:
        return target
    return None


def _plain_status(line: str) -> tuple[int, str] | None:
    """The code and reason of a valid status line from a plain block."""
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    # The reason of a plain block matches _VALUE_RE.
    if version == "HTTP/1.1" and len(code) == 3 and code.isdigit() and code[0] != "0":
        return int(code), reason
    return None


def _read_line(read_line: _Read, max_line: int) -> Generator[None, None, bytes]:
    """Read one line ending in CRLF and return it without the CRLF."""
    try:
        line = yield from read_line(max_line)
    except RuntimeError as exc:
        raise SecurityError("line too long") from exc
    # RFC 9112 section 2.2 lets a recipient accept a bare LF as a line
    # terminator; this parser doesn't, and treats it as the end of the stream.
    if not line.endswith(b"\r\n"):
        raise EOFError("line without CRLF")
    return line[:-2]


def _parse_request_line(line: bytes) -> str:
    """Check ``GET <target> HTTP/1.1`` (RFC 9112 section 3); return the target."""
    parts = line.split(b" ", 2)
    if len(parts) != 3:
        raise ValueError(f"invalid HTTP request line: {_show(line)}")
    method, target, version = parts
    if method != b"GET":
        raise ValueError(f"unsupported HTTP method; expected GET; got {_show(method)}")
    if version != b"HTTP/1.1":
        raise ValueError(
            f"unsupported protocol; expected HTTP/1.1; got {_show(version)}"
        )
    if _TARGET_RE.fullmatch(target) is None:
        raise ValueError(f"invalid request target: {_show(target)}")
    return target.decode("ascii", "surrogateescape")


def _parse_status_line(line: bytes) -> tuple[int, str]:
    """Check ``HTTP/1.1 <code> <reason>`` (RFC 9112 section 4).

    A status line without the space before an empty reason phrase is
    accepted, since RFC 9112 lets clients ignore the reason phrase.
    """
    version, _, rest = line.partition(b" ")
    if version != b"HTTP/1.1":
        raise ValueError(
            f"unsupported protocol; expected HTTP/1.1; got {_show(version)}"
        )
    code, _, reason = rest.partition(b" ")
    # bytes.isdigit() is true for ASCII digits only.
    if len(code) != 3 or not code.isdigit():
        raise ValueError(f"invalid HTTP status code: {_show(code)}")
    status_code = int(code)
    if status_code < 100:
        raise ValueError(
            f"unsupported HTTP status code; expected 100-999; got {status_code}"
        )
    if _VALUE_RE.fullmatch(reason) is None:
        raise ValueError(f"invalid HTTP reason phrase: {_show(reason)}")
    return status_code, reason.decode("ascii", "surrogateescape")


def _read_headers(
    read_line: _Read, max_line: int, max_num_headers: int
) -> Generator[None, None, Headers]:
    """Read header lines up to the empty line that ends them."""
    pairs: list[tuple[str, str]] = []
    while True:
        line = yield from _read_line(read_line, max_line)
        if not line:
            # Built in one go: Headers sizes its lists exactly.
            return Headers(pairs)
        if len(pairs) == max_num_headers:
            raise SecurityError("too many HTTP headers")
        pairs.append(_parse_header_line(line))


def _parse_header_line(line: bytes) -> tuple[str, str]:
    """Split ``name: value`` (RFC 9112 section 5) and check both parts."""
    # RFC 9112 section 5.2: obs-fold is a continuation line starting with
    # whitespace; a recipient may reject the message.
    if line[0] in b" \t":
        raise ValueError("obsolete line folding is not supported")
    name, sep, value = line.partition(b":")
    if not sep:
        raise ValueError(f"invalid HTTP header line: {_show(line)}")
    if _TOKEN_RE.fullmatch(name) is None:
        raise ValueError(f"invalid HTTP header name: {_show(name)}")
    # RFC 9112 section 5.1: optional whitespace around the value is not
    # part of it.
    value = value.strip(b" \t")
    if _VALUE_RE.fullmatch(value) is None:
        raise ValueError(f"invalid HTTP header value: {_show(value)}")
    return name.decode("ascii"), value.decode("ascii", "surrogateescape")


def _read_body(
    status_code: int,
    headers: Headers,
    read_exact: _Read,
    read_to_eof: _Read,
    max_body_size: int,
) -> Generator[None, None, bytes]:
    """Read the body of a response (RFC 9112 section 6.3)."""
    # 1xx (101 included), 204 and 304 end with the header block.
    if status_code < 200 or status_code in _NO_BODY_STATUSES:
        return b""
    if headers.get_all("Transfer-Encoding"):
        raise ValueError("unsupported transfer encoding")
    lengths = headers.get_all("Content-Length")
    if lengths:
        length = _parse_content_length(lengths, max_body_size)
        return (yield from read_exact(length))
    try:
        return (yield from read_to_eof(max_body_size))
    except RuntimeError as exc:
        raise SecurityError("body too large") from exc


def _parse_content_length(lengths: list[str], max_body_size: int) -> int:
    """Check the ``Content-Length`` values (RFC 9110 section 8.6)."""
    if len(lengths) > 1:
        raise ValueError("multiple Content-Length headers")
    value = lengths[0]
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"invalid Content-Length header: {value!r}")
    # Compare lengths first: int() of thousands of digits is slow or refused.
    digits = value.lstrip("0") or "0"
    if len(digits) > len(str(max_body_size)) or int(digits) > max_body_size:
        raise SecurityError("body too large")
    return int(digits)


def _encode(text: str) -> bytes:
    """Encode text for the wire; surrogate escapes give back their bytes."""
    return text.encode("utf-8", "surrogateescape")


def _serialize_headers(headers: Headers) -> bytes:
    """Build the header lines and the empty line that ends them."""
    pairs = list(headers.raw_items())
    names = [name for name, _ in pairs]
    values = [value for _, value in pairs]
    try:
        # Checked all at once: names joined by a character that is not in a
        # token, values by a tab, which a value may contain.
        plain = (
            _NAMES_STR_RE.fullmatch(":".join(names)) is not None
            and _PLAIN_VALUES_STR_RE.fullmatch("\t".join(values)) is not None
        )
    except TypeError:  # something else than a str: the loop below tells
        plain = False
    if plain:
        # Printable ASCII only: the text is its own encoding. (There is a
        # pair: an empty join does not match _NAMES_STR_RE.)
        text = "\r\n".join(map(": ".join, pairs))
        return (text + "\r\n\r\n").encode("ascii")
    lines = []
    for name, value in headers.raw_items():
        raw_name = _encode(name)
        if _TOKEN_RE.fullmatch(raw_name) is None:
            raise ValueError(f"invalid HTTP header name: {name!r}")
        raw_value = _encode(value)
        if _VALUE_RE.fullmatch(raw_value) is None:
            raise ValueError(f"invalid HTTP header value: {value!r}")
        lines.append(b"%s: %s\r\n" % (raw_name, raw_value))
    lines.append(b"\r\n")
    return b"".join(lines)


def _show(data: bytes) -> str:
    """Render bytes from the peer for an error message, shortened."""
    # repr() escapes control characters and bytes that aren't ASCII, so that
    # they can't garble a log line; [2:-1] drops the b'' around it.
    text = repr(data)[2:-1]
    return text if len(text) <= 64 else text[:61] + "..."
