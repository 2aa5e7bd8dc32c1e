"""The anyws exception tree.

The names, the hierarchy and the messages are those of websockets 8.1, so that
``except`` clauses written for it keep working::

    Exception
    └── WebSocketException
        ├── ConnectionClosed
        │   ├── ConnectionClosedError
        │   └── ConnectionClosedOK
        ├── InvalidHandshake
        │   ├── SecurityError
        │   ├── InvalidMessage
        │   ├── InvalidHeader
        │   │   ├── InvalidHeaderFormat
        │   │   ├── InvalidHeaderValue
        │   │   ├── InvalidOrigin
        │   │   └── InvalidUpgrade
        │   ├── InvalidStatusCode
        │   ├── NegotiationError
        │   │   ├── DuplicateParameter
        │   │   ├── InvalidParameterName
        │   │   └── InvalidParameterValue
        │   ├── AbortHandshake
        │   └── RedirectHandshake
        ├── InvalidState          (also an AssertionError)
        ├── InvalidURI
        ├── PayloadTooBig
        ├── ProtocolError         (alias: WebSocketProtocolError)
        └── ConcurrencyError      (also a RuntimeError)

This module imports nothing from the I/O world: the sans-I/O core uses it.
"""

from __future__ import annotations

import http
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sansio.datastructures import HeadersLike

__all__ = (
    "AbortHandshake",
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DuplicateParameter",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidMessage",
    "InvalidOrigin",
    "InvalidParameterName",
    "InvalidParameterValue",
    "InvalidState",
    "InvalidStatusCode",
    "InvalidURI",
    "InvalidUpgrade",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "RedirectHandshake",
    "SecurityError",
    "WebSocketException",
    "WebSocketProtocolError",
)


CLOSE_CODE_EXPLANATIONS: dict[int, str] = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported type",
    1005: "no status code [internal]",
    1006: "connection closed abnormally [internal]",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1010: "extension required",
    1011: "unexpected error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS failure [internal]",
}

#: Close codes that end a connection normally (``ConnectionClosedOK``).
#: 1005 is here by decision: browsers send an empty close frame from ``close()``.
OK_CLOSE_CODES = frozenset({1000, 1001, 1005})


def format_close(code: int, reason: str | None) -> str:
    """Describe a close code and reason for people, as 8.1 does.

    Args:
        code: the close code.
        reason: the close reason; ``None`` or ``""`` means no reason.

    Returns:
        For example ``code = 1000 (OK), no reason``.
    """
    if 3000 <= code < 4000:
        explanation = "registered"
    elif 4000 <= code < 5000:
        explanation = "private use"
    else:
        explanation = CLOSE_CODE_EXPLANATIONS.get(code, "unknown")
    result = f"code = {code} ({explanation}), "
    result += f"reason = {reason}" if reason else "no reason"
    return result


class WebSocketException(Exception):
    """Base class of every exception that anyws defines."""


class ConnectionClosed(WebSocketException):
    """Raised when using a connection that is closing or closed.

    Attributes:
        code: the close code recorded locally (1006 when no close frame came).
        reason: the close reason recorded locally.
        rcvd: the close frame received (``code`` and ``reason``), or ``None``.
        sent: the close frame sent (``code`` and ``reason``), or ``None``.
    """

    def __init__(
        self,
        code: int,
        reason: str,
        *,
        rcvd: Any = None,
        sent: Any = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.rcvd = rcvd
        self.sent = sent
        super().__init__(format_close(code, reason))


class ConnectionClosedError(ConnectionClosed):
    """Raised when a connection ended with a code other than 1000, 1001 or 1005."""


class ConnectionClosedOK(ConnectionClosed):
    """Raised when a connection ended normally (1000, 1001 or 1005)."""


class InvalidHandshake(WebSocketException):
    """Raised when the opening handshake fails."""


class SecurityError(InvalidHandshake):
    """Raised when a handshake request or response breaks a security rule."""


class InvalidMessage(InvalidHandshake):
    """Raised when a handshake request or response cannot be parsed."""


class InvalidHeader(InvalidHandshake):
    """Raised when an HTTP header is missing, repeated or invalid."""

    def __init__(self, name: str, value: str | None = None) -> None:
        self.name = name
        self.value = value
        if value is None:
            message = f"missing {name} header"
        elif value == "":
            message = f"empty {name} header"
        else:
            message = f"invalid {name} header: {value}"
        super().__init__(message)


class InvalidHeaderFormat(InvalidHeader):
    """Raised when an HTTP header does not match its grammar."""

    def __init__(self, name: str, error: str, header: str, pos: int) -> None:
        self.error = error
        super().__init__(name, f"{error} at {pos} in {header}")


class InvalidHeaderValue(InvalidHeader):
    """Raised when an HTTP header has a value that is not acceptable."""


class InvalidOrigin(InvalidHeader):
    """Raised when the Origin header is not allowed (the server answers 403)."""

    def __init__(self, origin: str | None) -> None:
        super().__init__("Origin", origin)


class InvalidUpgrade(InvalidHeader):
    """Raised when Connection or Upgrade is wrong (the server answers 426)."""


class InvalidStatusCode(InvalidHandshake):
    """Raised when a server answers with a status other than 101 or a redirect."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        super().__init__(f"server rejected WebSocket connection: HTTP {status_code}")


class NegotiationError(InvalidHandshake):
    """Raised when negotiating an extension or a subprotocol fails."""


class DuplicateParameter(NegotiationError):
    """Raised when an extension parameter is repeated."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"duplicate parameter: {name}")


class InvalidParameterName(NegotiationError):
    """Raised when an extension parameter has an unknown name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"invalid parameter name: {name}")


class InvalidParameterValue(NegotiationError):
    """Raised when an extension parameter has an invalid value."""

    def __init__(self, name: str, value: str | None) -> None:
        self.name = name
        self.value = value
        if value is None:
            message = f"missing value for parameter {name}"
        elif value == "":
            message = f"empty value for parameter {name}"
        else:
            message = f"invalid value for parameter {name}: {value}"
        super().__init__(message)


class AbortHandshake(InvalidHandshake):
    """Carries the HTTP response that ``process_request`` chose to send."""

    def __init__(
        self,
        status: http.HTTPStatus | int,
        headers: HeadersLike,
        body: bytes = b"",
    ) -> None:
        from .sansio.datastructures import Headers

        self.status = http.HTTPStatus(status)
        self.headers = Headers(headers)
        self.body = body
        super().__init__(
            f"HTTP {self.status:d}, {len(self.headers)} headers, {len(body)} bytes"
        )


class RedirectHandshake(InvalidHandshake):
    """Signals a redirect inside ``connect``; users never see it."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        super().__init__(f"redirect to {uri}")


class InvalidState(WebSocketException, AssertionError):
    """Raised when an operation is impossible in the connection's state."""


class InvalidURI(WebSocketException):
    """Raised when a WebSocket URI is not valid."""

    def __init__(self, uri: str, msg: str | None = None) -> None:
        self.uri = uri
        self.msg = msg
        super().__init__(f"{uri} isn't a valid URI")


class PayloadTooBig(WebSocketException):
    """A frame or message went over ``max_size`` (close code 1009)."""


class ProtocolError(WebSocketException):
    """The peer broke the protocol (close code 1002), or a close code is invalid."""


WebSocketProtocolError = ProtocolError


class ConcurrencyError(WebSocketException, RuntimeError):
    """Raised when two tasks call ``recv`` (or another exclusive call) at once."""
