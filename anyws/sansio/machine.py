"""The WebSocket connection state machine, without I/O (RFC 6455).

Invariants (the I/O layer relies on each of them):

* ``receive_data`` and ``receive_eof`` never raise because of what the peer
  sent. Bad input records the cause in ``parser_exc`` (or ``handshake_exc``
  during the opening handshake), queues the close frame with the right code
  (1002, 1007, 1009, 1011) and stops parsing.
* ``data_to_send()`` returns the bytes to write, in order; an empty ``b""``
  item means "half-close the stream now" (send EOF) and is always last.
* State goes CONNECTING -> OPEN -> CLOSING -> CLOSED, or straight to CLOSED
  from any state when the stream ends. It never goes back.
* Once a close frame has been sent, no frame is ever sent again.
* The server closes TCP first: it queues EOF after the closing handshake, or
  after failing; the client queues EOF only after it received EOF.
* ``close_code`` / ``close_reason`` are ``None`` until the state is CLOSED;
  then they are the received close frame's (1005 and "" for an empty one), or
  1006 and "" when no close frame arrived.

How it works: one parser generator per machine reads a
:class:`~anyws.sansio._buffer.StreamReader`. ``receive_data`` appends to the
reader and advances the generator, which runs until it needs more bytes. The
generator parses the handshake (subclasses), then frames, then discards
whatever comes after the closing handshake or a failure. Stopping to read is
done by swapping the generator for the discarding one.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING

from ..exceptions import (
    OK_CLOSE_CODES,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidMessage,
    InvalidState,
    PayloadTooBig,
    ProtocolError,
)
from ._buffer import BIG, StreamReader
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
from .http11 import read_request, read_response
from .utf8 import Utf8Validator

if TYPE_CHECKING:
    from .extensions.base import Extension
    from .http11 import Request, Response

__all__ = ("ClientMachine", "Machine", "ServerMachine", "Side", "State")

# The first header byte holds FIN, RSV1-3 and the opcode (RFC 6455, 5.2).
# Control opcodes are 0x8-0xF, so this bit tells a control frame apart.
_CONTROL_BIT = 0x08

_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_CONT = Opcode.CONT
_PING = Opcode.PING
_PONG = Opcode.PONG
_CLOSE = Opcode.CLOSE


# DECISIONS.md: the protocol logger is ``anyws.protocol``. Looked up once:
# logging.getLogger takes a lock, and a server creates a machine per
# connection.
_LOGGER = logging.getLogger("anyws.protocol")


class State(enum.IntEnum):
    """Connection state (the 8.1 ``websockets.protocol.State``)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class Side(enum.Enum):
    """Which end of the connection this is."""

    SERVER = "server"
    CLIENT = "client"


class Machine:
    """State shared by both sides.

    Args:
        side: SERVER or CLIENT (sets masking and who closes TCP first).
        state: the initial state; OPEN to skip the opening handshake.
        max_size: largest incoming message, after decompression; ``None``
            for no limit. May be changed later; it applies to the next frame.
        extensions: extensions in use, when starting OPEN.
        max_line: longest handshake line, CRLF included.
        max_num_headers: most handshake header lines.
        max_body_size: largest body of a non-101 handshake response.
        logger: where DEBUG lines about frames and states go.

    Attributes:
        side: the side given.
        state: the current state.
        max_size: the limit on incoming messages (see above).
        extensions: the extensions in use, in negotiation order.
        close_rcvd: the close frame received, if any.
        close_sent: the close frame sent, if any; ``Close(1005, "")`` for an
            empty one.
        close_rcvd_then_sent: once both close frames went through, whether
            the peer's came first (we echoed it); ``None`` until then.
        parser_exc: why reading stopped early: the peer's protocol error, an
            ``EOFError`` when the stream ended inside a frame, or an
            unexpected error; ``None`` otherwise.
        handshake_exc: why the opening handshake could not be parsed.
        eof_sent: whether EOF (``b""``) was queued.
        logger: the logger given, or ``anyws.protocol``.
        debug: whether ``logger`` logs DEBUG lines, checked once at creation.
    """

    side: Side
    state: State
    max_size: int | None
    extensions: list[Extension]
    close_rcvd: Close | None
    close_sent: Close | None
    close_rcvd_then_sent: bool | None
    parser_exc: BaseException | None
    handshake_exc: BaseException | None
    eof_sent: bool

    def __init__(
        self,
        side: Side,
        *,
        state: State = State.OPEN,
        max_size: int | None = 2**20,
        extensions: Sequence[Extension] | None = None,
        max_line: int = 4096,
        max_num_headers: int = 256,
        max_body_size: int = 2**20,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self.side = side
        self.state = state
        self.max_size = max_size
        self.extensions = list(extensions) if extensions else []
        self.close_rcvd = None
        self.close_sent = None
        self.close_rcvd_then_sent = None
        self.parser_exc = None
        self.handshake_exc = None
        self.eof_sent = False
        # DECISIONS.md: the protocol logger is ``anyws.protocol``.
        self.logger = logger or _LOGGER
        self.debug = self.logger.isEnabledFor(logging.DEBUG)

        self._max_line = max_line
        self._max_num_headers = max_num_headers
        self._max_body_size = max_body_size
        # RFC 6455, 5.3: the client masks what it sends; the server expects
        # masked frames.
        self._mask_out = side is Side.CLIENT
        # True once the handshake ended without opening (non-101 response).
        self._rejected = False

        self._events: list[Event] = []
        self._writes: list[bytes] = []
        # Payloads of the pings waiting for a pong, oldest first (dicts keep
        # insertion order).
        self._pings: dict[bytes, None] = {}
        # Whether a fragmented message is being sent.
        self._sending_fragments = False

        # The fragmented message being received: its opcode (None when there
        # is none), its size so far in bytes, and its pieces.
        self._msg_opcode: Opcode | None = None
        self._msg_size = 0
        self._text_parts: list[str] = []
        self._binary_parts: list[bytes] = []
        self._utf8 = Utf8Validator()

        self._reader = StreamReader()
        self._parser = self._run_parser()

    # -- receiving ---------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes received from the network. Never raises for bad input.

        Bytes fed after :meth:`receive_eof` are ignored.
        """
        reader = self._reader
        if reader.eof:
            return
        reader.feed_data(data)
        next(self._parser)

    def receive_eof(self) -> None:
        """Feed the end of the stream. State becomes CLOSED.

        If the stream ends inside a frame, ``parser_exc`` is an ``EOFError``.
        EOF is queued in return unless it was sent already. A second call
        does nothing.
        """
        reader = self._reader
        if reader.eof:
            return
        if self.debug:
            self.logger.debug("< EOF")
        reader.feed_eof()
        next(self._parser)
        # RFC 6455, 7.1.1: never keep writing once the peer closed TCP.
        self._send_eof()
        self._set_state(State.CLOSED)

    def events_received(self) -> list[Event]:
        """Return the events parsed since the last call, and forget them."""
        events, self._events = self._events, []
        return events

    # -- sending -----------------------------------------------------------

    def send_text(self, data: str | bytes, fin: bool = True) -> None:
        """Queue a text frame (``str`` is UTF-8 encoded; ``bytes`` must be UTF-8).

        Raises:
            InvalidState: unless OPEN.
            ProtocolError: while a fragmented message is being sent.
        """
        self._check_new_message()
        if isinstance(data, str):
            data = data.encode()
        self._send_frame(Frame(fin, _TEXT, data))
        self._sending_fragments = not fin

    def send_binary(
        self, data: bytes | bytearray | memoryview, fin: bool = True
    ) -> None:
        """Queue a binary frame. Same errors as :meth:`send_text`."""
        self._check_new_message()
        if not isinstance(data, bytes):
            data = bytes(data)
        self._send_frame(Frame(fin, _BINARY, data))
        self._sending_fragments = not fin

    def send_continuation(
        self, data: str | bytes | bytearray | memoryview, fin: bool
    ) -> None:
        """Queue a continuation frame of the message being sent.

        Raises:
            InvalidState: unless OPEN.
            ProtocolError: if no fragmented message is being sent.
        """
        self._check_open()
        if not self._sending_fragments:
            raise ProtocolError("no fragmented message is being sent")
        if isinstance(data, str):
            data = data.encode()
        elif not isinstance(data, bytes):
            data = bytes(data)
        self._send_frame(Frame(fin, _CONT, data))
        self._sending_fragments = not fin

    def send_ping(self, data: bytes) -> None:
        """Queue a ping and remember it until a pong acknowledges it.

        Raises:
            InvalidState: unless OPEN.
            ValueError: ``already waiting for a pong with the same data``.
            ProtocolError: payload over 125 bytes.
        """
        self._check_open()
        # bytes, not bytearray: the payload is a dict key.
        data = bytes(data)
        if data in self._pings:
            raise ValueError("already waiting for a pong with the same data")
        # Serializing checks the length; the ping is recorded once queued.
        self._send_frame(Frame(True, _PING, data))
        self._pings[data] = None

    def send_pong(self, data: bytes) -> None:
        """Queue an unsolicited pong. Raises InvalidState unless OPEN.

        Raises:
            InvalidState: unless OPEN.
            ProtocolError: payload over 125 bytes.
        """
        self._check_open()
        self._send_frame(Frame(True, _PONG, bytes(data)))

    def send_close(self, code: int | None = None, reason: str = "") -> None:
        """Start the closing handshake: queue a close frame; state CLOSING.

        ``code=None`` sends an empty close frame (recorded as 1005).

        Raises:
            InvalidState: unless OPEN.
            ProtocolError: ``invalid status code`` for a code that may not be
                sent, or a reason longer than 123 bytes once encoded, or a
                reason without a code.
        """
        self._check_open()
        if code is None:
            # RFC 6455, 5.5.1: a reason can only follow a code.
            if reason:
                raise ProtocolError("cannot send a close reason without a code")
            close = Close(int(CloseCode.NO_STATUS_RCVD), "")
            payload = b""
        else:
            close = Close(int(code), reason)
            payload = close.serialize()
        self._send_frame(Frame(True, _CLOSE, payload))
        self.close_sent = close
        self._set_state(State.CLOSING)

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection: stop reading, send a close frame if still OPEN.

        With code 1006 no frame is sent. The server then queues EOF.
        Does nothing once CLOSED. Otherwise the state becomes CLOSING.

        Raises:
            ProtocolError: if a frame must be sent and ``code`` may not be
                sent or ``reason`` is over 123 bytes; nothing changes then.
        """
        if self.state is State.CLOSED:
            return
        if self.debug:
            self.logger.debug("! failing connection with code %d", code)
        # RFC 6455, 7.1.7: send a close frame if none went out yet, but do
        # not wait for the answer.
        if self.state is State.OPEN and code != CloseCode.ABNORMAL_CLOSURE:
            close = Close(int(code), reason)
            self._send_frame(Frame(True, _CLOSE, close.serialize()))
            self.close_sent = close
        self._set_state(State.CLOSING)
        self._stop_reading()
        if self.side is Side.SERVER:
            self._send_eof()

    def data_to_send(self) -> list[bytes]:
        """Return the bytes to write since the last call, and forget them.

        An empty ``b""`` item means: half-close the stream (send EOF).
        """
        writes, self._writes = self._writes, []
        return writes

    def close_expected(self) -> bool:
        """Whether the I/O layer should now expect the stream to end soon.

        True once a close frame was sent or received, or the connection
        failed, or the handshake ended without opening: the I/O layer then
        bounds its wait for EOF by the close timeout.
        """
        return (
            self.state >= State.CLOSING
            or self._rejected
            or self.parser_exc is not None
            or self.handshake_exc is not None
        )

    @property
    def pending_pings(self) -> tuple[bytes, ...]:
        """Payloads of the pings still waiting for a pong, oldest first."""
        return tuple(self._pings)

    # -- outcome -----------------------------------------------------------

    @property
    def close_code(self) -> int | None:
        """Received close code; 1005 for an empty frame; 1006 for none.

        ``None`` until the state is CLOSED.
        """
        if self.state is not State.CLOSED:
            return None
        if self.close_rcvd is None:
            return int(CloseCode.ABNORMAL_CLOSURE)
        return self.close_rcvd.code

    @property
    def close_reason(self) -> str | None:
        """Received close reason; ``None`` until the state is CLOSED."""
        if self.state is not State.CLOSED:
            return None
        if self.close_rcvd is None:
            return ""
        return self.close_rcvd.reason

    def close_exc(self) -> ConnectionClosed:
        """Build (not raise) the ``ConnectionClosed`` for the final outcome.

        ``ConnectionClosedOK`` for 1000, 1001 and 1005, else
        ``ConnectionClosedError``; with ``rcvd`` and ``sent``. Before CLOSED
        it reports 1006. Its ``__cause__`` is ``parser_exc``.
        """
        code = self.close_code
        reason = self.close_reason
        if code is None or reason is None:
            code, reason = int(CloseCode.ABNORMAL_CLOSURE), ""
        exc_type = (
            ConnectionClosedOK if code in OK_CLOSE_CODES else ConnectionClosedError
        )
        exc: ConnectionClosed = exc_type(
            code, reason, rcvd=self.close_rcvd, sent=self.close_sent
        )
        exc.__cause__ = self.parser_exc
        return exc

    # -- private: sending --------------------------------------------------

    def _check_open(self) -> None:
        """Refuse to send a frame unless the state is OPEN."""
        if self.state is not State.OPEN:
            raise InvalidState(
                f"cannot send a frame: the connection is {self.state.name}"
            )

    def _check_new_message(self) -> None:
        """Refuse to start a message unless OPEN and between messages."""
        self._check_open()
        # RFC 6455, 5.4: the frames of two data messages never interleave.
        if self._sending_fragments:
            raise ProtocolError("a fragmented message is being sent")

    def _send_frame(self, frame: Frame) -> None:
        """Serialize a frame and queue its bytes."""
        header, payload = frame.serialize_parts(
            mask=self._mask_out, extensions=self.extensions
        )
        if self.debug:
            self.logger.debug("> %s", frame)
        if len(payload) < BIG:
            self._writes.append(header + payload)
        else:  # not worth copying to join them
            self._writes.append(header)
            self._writes.append(payload)

    def _send_eof(self) -> None:
        """Queue EOF, once."""
        if not self.eof_sent:
            if self.debug:
                self.logger.debug("> EOF")
            self._writes.append(b"")
            self.eof_sent = True

    def _set_state(self, state: State) -> None:
        """Change the state, logging it."""
        self.state = state
        if self.debug:
            self.logger.debug("= connection is %s", state.name)

    # -- private: parsing --------------------------------------------------

    def _run_parser(self) -> Generator[None, None, None]:
        """The parser: handshake, then frames, then discard the rest."""
        if self.state is not State.CONNECTING or (yield from self._parse_handshake()):
            yield from self._parse_frames()
        yield from self._discard()

    def _parse_handshake(self) -> Generator[None, None, bool]:
        """Wait until the connection leaves CONNECTING.

        Subclasses first parse their side of the handshake.

        Returns:
            Whether frames may follow; ``False`` after a handshake error.
        """
        while self.state is State.CONNECTING:
            yield
        return True

    def _handshake_failed(self, message: str, cause: Exception) -> None:
        """Record why the handshake message could not be parsed."""
        if self.debug:
            self.logger.debug("! %s: %r", message, cause)
        exc = InvalidMessage(message)
        exc.__cause__ = cause
        self.handshake_exc = exc

    def _discard(self) -> Generator[None, None, None]:
        """Drop every byte received from now on."""
        reader = self._reader
        while True:
            reader.discard()
            yield

    def _stop_reading(self) -> None:
        """Stop parsing: drop the buffer, the partial message and the parser."""
        self._parser = self._discard()
        self._reader.discard()
        self._drop_message()

    def _parse_frames(self) -> Generator[None, None, None]:
        """Read frames; turn errors from the peer into the right close code."""
        try:
            yield from self._read_frames()
        except ProtocolError as exc:
            self._parser_failed(CloseCode.PROTOCOL_ERROR, exc)
        except UnicodeDecodeError as exc:
            self._parser_failed(CloseCode.INVALID_DATA, exc)
        except PayloadTooBig as exc:
            self._parser_failed(CloseCode.MESSAGE_TOO_BIG, exc)
        except EOFError as exc:
            # The stream ended inside a frame: no close frame can follow, and
            # receive_eof() closes the connection (1006).
            if self.debug:
                self.logger.debug("! stream ended inside a frame")
            self.parser_exc = exc
        except Exception as exc:
            self.logger.error("Error in data transfer", exc_info=True)
            self._parser_failed(CloseCode.INTERNAL_ERROR, exc)

    def _parser_failed(self, code: int, exc: Exception) -> None:
        """Record the peer's error and fail the connection with ``code``."""
        if self.debug:
            self.logger.debug("! %s: %s", type(exc).__name__, exc)
        self.parser_exc = exc
        self.fail(code)

    def _read_frames(self) -> Generator[None, None, None]:
        """Parse frames until a close frame arrives or the stream ends.

        This is the hot path: data frames that are whole messages are handled
        inline; everything else goes to a helper.
        """
        reader = self._reader
        read_exact = reader.read_exact
        parse = Frame.parse
        mask = self.side is Side.SERVER
        debug = self.debug
        while True:
            # Wait for the next frame; an end of stream here is clean.
            while not reader.buffer:
                if reader.eof:
                    return
                yield
            max_size = self.max_size
            if max_size is not None:
                if reader.buffer[0] & _CONTROL_BIT:
                    # Control frames are not part of messages: they are
                    # bounded by 125 bytes (RFC 6455, 5.5), not by max_size.
                    max_size = None
                elif self._msg_opcode is not None:
                    # max_size bounds the whole message: allow what remains,
                    # so an oversized fragment is refused from its header.
                    max_size -= self._msg_size
            frame = yield from parse(
                read_exact, mask=mask, max_size=max_size, extensions=self.extensions
            )
            if debug:
                self.logger.debug("< %s", frame)
            opcode = frame.opcode
            if opcode is _TEXT or opcode is _BINARY:
                if self._msg_opcode is not None:
                    # RFC 6455, 5.4: fragments of two messages never mix.
                    raise ProtocolError(
                        f"expected a continuation frame, got {opcode.name}"
                    )
                if not frame.fin:
                    self._start_message(frame)
                elif opcode is _TEXT:
                    self._events.append(Message(frame.data.decode()))
                else:
                    self._events.append(Message(frame.data))
            elif opcode is _CONT:
                self._continue_message(frame)
            elif opcode is _PING:
                self._receive_ping(frame)
            elif opcode is _PONG:
                self._receive_pong(frame)
            else:
                # Frame.parse only returns known opcodes: this is CLOSE.
                self._receive_close(frame)
                return

    def _start_message(self, frame: Frame) -> None:
        """Handle the first frame of a fragmented message (RFC 6455, 5.4)."""
        self._msg_opcode = frame.opcode
        self._msg_size = len(frame.data)
        if frame.opcode is _TEXT:
            self._utf8.reset()
            self._text_parts.append(self._utf8.decode(frame.data))
        else:
            self._binary_parts.append(frame.data)

    def _continue_message(self, frame: Frame) -> None:
        """Handle a continuation frame; emit the message after the last one."""
        if self._msg_opcode is None:
            raise ProtocolError("unexpected continuation frame")
        self._msg_size += len(frame.data)
        data: str | bytes
        if self._msg_opcode is _TEXT:
            # RFC 6455, 8.1: fail as soon as the text cannot be valid UTF-8.
            self._text_parts.append(self._utf8.decode(frame.data, frame.fin))
            if not frame.fin:
                return
            data = "".join(self._text_parts)
        else:
            self._binary_parts.append(frame.data)
            if not frame.fin:
                return
            data = b"".join(self._binary_parts)
        self._drop_message()
        self._events.append(Message(data))

    def _drop_message(self) -> None:
        """Forget the fragmented message being received, if any."""
        self._msg_opcode = None
        self._msg_size = 0
        self._text_parts = []
        self._binary_parts = []

    def _receive_ping(self, frame: Frame) -> None:
        """Answer a ping with a pong carrying the same payload (RFC 6455, 5.5.2)."""
        if self.state is State.OPEN:
            self._send_frame(Frame(True, _PONG, frame.data))
            self._events.append(PingReceived(frame.data))
        elif self.debug:
            # Our close frame is out: no frame may follow it (RFC 6455, 5.5.1).
            self.logger.debug("! ignoring ping received while %s", self.state.name)

    def _receive_pong(self, frame: Frame) -> None:
        """Acknowledge the matching ping and every ping sent before it."""
        data = frame.data
        pings = self._pings
        acknowledged: tuple[bytes, ...] = ()
        if data in pings:
            # A peer may answer only the latest of several pings.
            payloads = list(pings)
            acknowledged = tuple(payloads[: payloads.index(data) + 1])
            for payload in acknowledged:
                del pings[payload]
        if self.debug:
            self.logger.debug("- pong acknowledges %d ping(s)", len(acknowledged))
        self._events.append(PongReceived(data, acknowledged))

    def _receive_close(self, frame: Frame) -> None:
        """Record the peer's close frame, echo it if needed, stop reading."""
        close = Close.parse(frame.data)
        self._events.append(CloseReceived(close.code, close.reason))
        self.close_rcvd = close
        # RFC 6455, 5.5.1: a partial message is abandoned.
        self._drop_message()
        if self.state is State.OPEN:
            # RFC 6455, 5.5.1: answer with a close frame; echoing the exact
            # payload keeps the peer's code and reason.
            self._send_frame(Frame(True, _CLOSE, frame.data))
            self.close_sent = close
            self.close_rcvd_then_sent = True
            self._set_state(State.CLOSING)
        elif self.close_sent is not None:
            self.close_rcvd_then_sent = False
        # RFC 6455, 7.1.1: the server closes the TCP connection first.
        if self.side is Side.SERVER:
            self._send_eof()


class ServerMachine(Machine):
    """Server side. Starts CONNECTING and parses the handshake request.

    After ``receive_data`` the events may hold one ``RequestReceived``. If the
    request is malformed, ``handshake_exc`` is set instead (an
    ``InvalidMessage`` chained from the cause; an ``EOFError`` cause means
    the client left before sending a whole request).
    """

    def __init__(self, *, state: State = State.CONNECTING, **kwargs: object) -> None:
        # The keyword arguments are Machine's; mypy cannot match **object.
        super().__init__(Side.SERVER, state=state, **kwargs)  # type: ignore[arg-type]

    def send_response(
        self, response: Response, extensions: Sequence[Extension] = ()
    ) -> None:
        """Queue the handshake response.

        101: state OPEN, ``extensions`` are used from the next frame on, and
        frames already buffered are parsed. Anything else: the response (with
        its body) then EOF are queued and the state is CLOSED... once EOF is
        received; ``close_expected()`` is true.

        Once EOF was received (state CLOSED) this does nothing: the client is
        gone.

        Raises:
            InvalidState: if a response was sent already or the connection
                failed.
            ValueError: if the response cannot be serialized.
        """
        if self.state is State.CLOSED:
            return
        if self.state is not State.CONNECTING or self._rejected:
            raise InvalidState(
                f"cannot send a response: the connection is {self.state.name}"
            )
        data = response.serialize()
        if self.debug:
            self.logger.debug("> HTTP/1.1 %d", response.status_code)
        self._writes.append(data)
        if response.status_code == 101:
            self.extensions = list(extensions)
            self._set_state(State.OPEN)
            next(self._parser)
        else:
            self._rejected = True
            self._stop_reading()
            self._send_eof()

    def _parse_handshake(self) -> Generator[None, None, bool]:
        """Parse the request, then wait for :meth:`send_response`."""
        reader = self._reader
        try:
            request = yield from read_request(
                reader,
                max_line=self._max_line,
                max_num_headers=self._max_num_headers,
            )
        except Exception as exc:
            self._handshake_failed("did not receive a valid HTTP request", exc)
            return False
        if self.debug:
            self.logger.debug("< GET %s HTTP/1.1", request.path)
        self._events.append(RequestReceived(request))
        return (yield from super()._parse_handshake())


class ClientMachine(Machine):
    """Client side. Starts CONNECTING and parses the handshake response.

    After ``send_request`` and ``receive_data`` the events may hold one
    ``ResponseReceived`` (its body read for non-101 statuses). A malformed
    response sets ``handshake_exc`` instead.
    """

    def __init__(self, *, state: State = State.CONNECTING, **kwargs: object) -> None:
        # The keyword arguments are Machine's; mypy cannot match **object.
        super().__init__(Side.CLIENT, state=state, **kwargs)  # type: ignore[arg-type]

    def send_request(self, request: Request) -> None:
        """Queue the handshake request.

        Raises:
            InvalidState: unless CONNECTING.
            ValueError: if the request cannot be serialized.
        """
        if self.state is not State.CONNECTING:
            raise InvalidState(
                f"cannot send a request: the connection is {self.state.name}"
            )
        data = request.serialize()
        if self.debug:
            self.logger.debug("> GET %s HTTP/1.1", request.path)
        self._writes.append(data)

    def open(self, extensions: Sequence[Extension] = ()) -> None:
        """Accept the 101 response: state OPEN, and parse buffered frames.

        If EOF was received already (state CLOSED), the frames that arrived
        with the response are still parsed, and the state stays CLOSED.

        Raises:
            InvalidState: if the connection is OPEN or CLOSING.
        """
        if self.state is State.OPEN or self.state is State.CLOSING:
            raise InvalidState(f"cannot open: the connection is {self.state.name}")
        self.extensions = list(extensions)
        if self.state is State.CONNECTING:
            self._set_state(State.OPEN)
        next(self._parser)

    def _parse_handshake(self) -> Generator[None, None, bool]:
        """Parse the response, then wait for :meth:`open`."""
        reader = self._reader
        try:
            response = yield from read_response(
                reader,
                max_line=self._max_line,
                max_num_headers=self._max_num_headers,
                max_body_size=self._max_body_size,
            )
        except Exception as exc:
            self._handshake_failed("did not receive a valid HTTP response", exc)
            return False
        if self.debug:
            self.logger.debug(
                "< HTTP/1.1 %d %s", response.status_code, response.reason_phrase
            )
        if response.status_code != 101:
            self._rejected = True
        self._events.append(ResponseReceived(response))
        return (yield from super()._parse_handshake())
