"""Events that the sans-I/O core hands to the I/O layer.

``Machine.events_received()`` returns a list of these, in the order the peer
sent them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .http11 import Request, Response

__all__ = (
    "CloseReceived",
    "Event",
    "Message",
    "PingReceived",
    "PongReceived",
    "RequestReceived",
    "ResponseReceived",
)


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """Server side: the opening handshake request arrived (state CONNECTING)."""

    request: Request


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """Client side: the opening handshake response arrived (state CONNECTING)."""

    response: Response


@dataclass(frozen=True, slots=True)
class Message:
    """A whole data message: ``str`` for text, ``bytes`` for binary."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class PingReceived:
    """A ping arrived; the core has already queued the pong that answers it."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    """A pong arrived.

    Attributes:
        data: its payload.
        acknowledged: payloads of the pings it acknowledges, oldest first: the
            ping with the same payload and every ping sent before it. Empty
            when the pong matches no ping still waiting.
    """

    data: bytes
    acknowledged: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """A close frame arrived (code 1005 and reason "" for an empty one)."""

    code: int
    reason: str


Event = (
    RequestReceived
    | ResponseReceived
    | Message
    | PingReceived
    | PongReceived
    | CloseReceived
)
