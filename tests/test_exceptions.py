"""The exception tree keeps the websockets 8.1 names, hierarchy and messages."""

from __future__ import annotations

import http

import pytest

from anyws import exceptions as exc
from anyws.sansio.datastructures import Headers
from anyws.sansio.frames import Close


@pytest.mark.parametrize(
    ("code", "reason", "text"),
    [
        (1000, "", "code = 1000 (OK), no reason"),
        (1001, "bye", "code = 1001 (going away), reason = bye"),
        (1005, None, "code = 1005 (no status code [internal]), no reason"),
        (1006, "", "code = 1006 (connection closed abnormally [internal]), no reason"),
        (1012, "", "code = 1012 (service restart), no reason"),
        (3000, "", "code = 3000 (registered), no reason"),
        (3999, "x", "code = 3999 (registered), reason = x"),
        (4000, "", "code = 4000 (private use), no reason"),
        (4999, "", "code = 4999 (private use), no reason"),
        (1004, "", "code = 1004 (unknown), no reason"),
        (5000, "", "code = 5000 (unknown), no reason"),
        (2999, "", "code = 2999 (unknown), no reason"),
    ],
)
def test_format_close(code: int, reason: str | None, text: str) -> None:
    assert exc.format_close(code, reason) == text


def test_connection_closed_attributes() -> None:
    rcvd, sent = Close(1000, "done"), Close(1000, "done")
    error = exc.ConnectionClosedOK(1000, "done", rcvd=rcvd, sent=sent)
    assert (error.code, error.reason) == (1000, "done")
    assert error.rcvd is rcvd and error.sent is sent
    assert str(error) == "code = 1000 (OK), reason = done"
    plain = exc.ConnectionClosedError(1006, "")
    assert plain.rcvd is None and plain.sent is None
    assert isinstance(plain, exc.ConnectionClosed)


def test_hierarchy() -> None:
    assert issubclass(exc.WebSocketException, Exception)
    for name in ("ConnectionClosedOK", "ConnectionClosedError"):
        assert issubclass(getattr(exc, name), exc.ConnectionClosed)
    for name in (
        "SecurityError",
        "InvalidMessage",
        "InvalidHeader",
        "InvalidStatusCode",
        "NegotiationError",
        "AbortHandshake",
        "RedirectHandshake",
    ):
        assert issubclass(getattr(exc, name), exc.InvalidHandshake)
    for name in ("InvalidHeaderFormat", "InvalidHeaderValue", "InvalidOrigin"):
        assert issubclass(getattr(exc, name), exc.InvalidHeader)
    assert issubclass(exc.InvalidUpgrade, exc.InvalidHeader)
    for name in ("DuplicateParameter", "InvalidParameterName", "InvalidParameterValue"):
        assert issubclass(getattr(exc, name), exc.NegotiationError)
    assert issubclass(exc.InvalidState, AssertionError)
    assert issubclass(exc.ConcurrencyError, RuntimeError)
    assert issubclass(exc.ConcurrencyError, exc.WebSocketException)
    assert exc.WebSocketProtocolError is exc.ProtocolError


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (exc.InvalidHeader("Host"), "missing Host header"),
        (exc.InvalidHeader("Host", ""), "empty Host header"),
        (exc.InvalidHeader("Host", "x y"), "invalid Host header: x y"),
        (
            exc.InvalidHeaderFormat("Upgrade", "expected token", "a b", 1),
            "invalid Upgrade header: expected token at 1 in a b",
        ),
        (
            exc.InvalidHeaderValue("Sec-WebSocket-Version", "42"),
            "invalid Sec-WebSocket-Version header: 42",
        ),
        (exc.InvalidOrigin("http://x"), "invalid Origin header: http://x"),
        (exc.InvalidOrigin(None), "missing Origin header"),
        (exc.InvalidUpgrade("Upgrade", "h2c"), "invalid Upgrade header: h2c"),
        (
            exc.InvalidStatusCode(403),
            "server rejected WebSocket connection: HTTP 403",
        ),
        (exc.DuplicateParameter("a"), "duplicate parameter: a"),
        (exc.InvalidParameterName("a"), "invalid parameter name: a"),
        (exc.InvalidParameterValue("a", None), "missing value for parameter a"),
        (exc.InvalidParameterValue("a", ""), "empty value for parameter a"),
        (exc.InvalidParameterValue("a", "3"), "invalid value for parameter a: 3"),
        (exc.RedirectHandshake("ws://x/"), "redirect to ws://x/"),
        (exc.InvalidURI("http://x/"), "http://x/ isn't a valid URI"),
    ],
)
def test_messages(error: Exception, text: str) -> None:
    assert str(error) == text


def test_attributes() -> None:
    assert exc.InvalidStatusCode(404).status_code == 404
    origin = exc.InvalidOrigin("o")
    assert (origin.name, origin.value) == ("Origin", "o")
    header_format = exc.InvalidHeaderFormat("X", "bad", "v", 0)
    assert (header_format.name, header_format.error) == ("X", "bad")
    uri = exc.InvalidURI("x", "no scheme")
    assert (uri.uri, uri.msg) == ("x", "no scheme")


def test_abort_handshake() -> None:
    error = exc.AbortHandshake(403, [("A", "1"), ("B", "2")], b"no")
    assert error.status is http.HTTPStatus.FORBIDDEN
    assert error.headers == Headers([("A", "1"), ("B", "2")])
    assert error.body == b"no"
    assert str(error) == "HTTP 403, 2 headers, 2 bytes"
    assert exc.AbortHandshake(http.HTTPStatus.OK, {}).body == b""
