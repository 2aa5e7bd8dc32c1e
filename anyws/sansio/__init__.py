"""The sans-I/O WebSocket core: bytes in, events and bytes out.

For integrators who bring their own I/O: everything here is pure, with no
sockets, tasks or clocks. A server drives a :class:`ServerMachine`, a client
a :class:`ClientMachine`; feed them with ``receive_data`` / ``receive_eof``,
read ``events_received()`` and write ``data_to_send()``. The handshake
helpers in :mod:`anyws.sansio.handshake` build and check the HTTP messages.
"""

from __future__ import annotations

from .datastructures import Headers, HeadersLike, MultipleValuesError
from .events import (
    CloseReceived,
    Event,
    Message,
    PingReceived,
    PongReceived,
    RequestReceived,
    ResponseReceived,
)
from .frames import Close, CloseCode, Frame, Opcode
from .http11 import Request, Response
from .machine import ClientMachine, Machine, ServerMachine, Side, State

__all__ = (
    "ClientMachine",
    "Close",
    "CloseCode",
    "CloseReceived",
    "Event",
    "Frame",
    "Headers",
    "HeadersLike",
    "Machine",
    "Message",
    "MultipleValuesError",
    "Opcode",
    "PingReceived",
    "PongReceived",
    "Request",
    "RequestReceived",
    "Response",
    "ResponseReceived",
    "ServerMachine",
    "Side",
    "State",
)
