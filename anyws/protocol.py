"""The WebSocket connection shared by clients and servers, on AnyIO.

:class:`WebSocketCommonProtocol` drives a sans-I/O state machine
(:mod:`anyws.sansio.machine`) over any :class:`anyio.abc.ByteStream`: plain
TCP, TLS or a Unix socket, on asyncio or on trio. It builds no frame itself;
it moves bytes and waits.

Invariants (each method below relies on them):

* Once the connection is OPEN, one reader task is the only one that calls
  ``stream.receive()`` and the only one that closes the stream. It runs in a
  shielded cancel scope, so that cancelling the caller's scope never cuts a
  closing handshake short; :meth:`_abort` ends it at once, and once closing
  has started every wait of it is bounded by ``close_timeout``.
* Every write happens under ``_write_lock``, and the bytes are taken from the
  machine while holding it, so they reach the stream in the order the
  machine produced them. Whoever holds the lock writes everything pending
  (its own frames and the pongs or close frames the reader queued) before it
  releases it.
* A frame is never half written and then forgotten: a write that is cancelled
  or fails leaves the stream in an unknown state, so the connection is
  aborted (RFC 6455 section 7.1.7, "fail the WebSocket connection").
* ``_closed_event`` is set only once the stream is closed and the machine is
  CLOSED; then ``close_code`` and ``close_reason`` are final.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import warnings
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn, Union

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import SocketAttribute

from ._compat import TRANSPORT_ERRORS, aclose_within, check_limits
from ._messages import MessageQueue, PingWaiter
from ._types import Data, Subprotocol
from .exceptions import ConnectionClosed, ConnectionClosedOK, InvalidState
from .sansio import http11
from .sansio.datastructures import Headers
from .sansio.events import (
    CloseReceived,
    Event,
    Message,
    PingReceived,
    PongReceived,
    RequestReceived,
    ResponseReceived,
)
from .sansio.frames import Close, prepare_ctrl
from .sansio.machine import ClientMachine, Machine, ServerMachine, State

if TYPE_CHECKING:
    from .sansio.extensions.base import Extension

__all__ = ("State", "WebSocketCommonProtocol")

logger = logging.getLogger("anyws.protocol")

#: What ``send`` accepts as one message (or as one fragment of a message).
Sendable = Union[str, bytes, bytearray, memoryview]

_BYTES_LIKE = (bytes, bytearray, memoryview)


class _WriteError(Exception):
    """Internal: writing to the stream failed; ``__cause__`` says why."""


class WebSocketCommonProtocol:
    """A WebSocket connection: what ``serve`` hands to handlers and ``connect``
    returns.

    Users do not create it directly; :func:`~anyws.serve` and
    :func:`~anyws.connect` build the :class:`~anyws.server.WebSocketServerProtocol`
    and :class:`~anyws.client.WebSocketClientProtocol` subclasses, possibly
    through ``create_protocol``.

    Args:
        ping_interval: seconds between keepalive pings; ``None`` disables them.
        ping_timeout: seconds to wait for the pong of a keepalive ping before
            failing the connection with 1011; ``None`` waits for ever.
        close_timeout: bound of each wait of the closing handshake; ``None``
            means 10 seconds.
        max_size: largest incoming message in bytes; ``None`` for no limit.
        max_queue: most received messages waiting for :meth:`recv`; when the
            queue is full the connection stops reading; ``None`` for no limit.
        read_limit: most bytes read from the stream at once.
        write_limit: most bytes written to the stream at once, when several
            frames are pending (a single frame is always written whole).
        loop: ignored (asyncio only in websockets 8.1); deprecated.
        host: the configured host, only for the deprecated ``host`` attribute.
        port: the configured port, only for the deprecated ``port`` attribute.
        secure: whether TLS is used, only for the deprecated ``secure``
            attribute.
        legacy_recv: if true, :meth:`recv` returns ``None`` instead of raising
            once the connection is closed.
        timeout: deprecated name of ``close_timeout``.

    Raises:
        ValueError: for a ``max_queue``, ``read_limit`` or ``write_limit``
            below 1.
    """

    #: ``True`` on the client side.
    is_client: bool = False
    #: ``"client"`` or ``"server"``.
    side: str = "undefined"

    def __init__(
        self,
        *,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = None,
        max_size: int | None = 2**20,
        max_queue: int | None = 2**5,
        read_limit: int = 2**16,
        write_limit: int = 2**16,
        loop: Any = None,
        host: str | None = None,
        port: int | None = None,
        secure: bool | None = None,
        legacy_recv: bool = False,
        timeout: float | None = None,
    ) -> None:
        if loop is not None:
            warnings.warn("remove loop argument", DeprecationWarning, stacklevel=2)
        if timeout is None:
            timeout = 10
        else:
            warnings.warn(
                "rename timeout to close_timeout", DeprecationWarning, stacklevel=2
            )
        if close_timeout is None:
            close_timeout = timeout
        check_limits(max_queue=max_queue, read_limit=read_limit, write_limit=write_limit)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout: float = close_timeout
        self.max_queue = max_queue
        self.read_limit = read_limit
        self.write_limit = write_limit
        self.legacy_recv = legacy_recv
        self._host = host
        self._port = port
        self._secure = secure

        #: Server: the request target received; client: the one sent.
        self.path: str = ""
        #: Server: the request headers received; client: the ones sent.
        self.request_headers: Headers = Headers()
        #: Server: the response headers sent; client: the ones received.
        self.response_headers: Headers = Headers()
        #: The negotiated subprotocol, or ``None``.
        self.subprotocol: Subprotocol | None = None
        #: The extensions in use, in order.
        self.extensions: list[Extension] = []

        self._machine: Machine = self._create_machine(max_size)
        self._stream: anyio.abc.ByteStream | None = None
        self._messages = MessageQueue()
        self._pings: dict[bytes, PingWaiter] = {}
        self._write_lock = anyio.Lock()
        self._send_lock = anyio.Lock()
        self._closed_event = anyio.Event()
        self._outbox: deque[bytes] = deque()
        self._outbox_size = 0
        # Cancel scopes need a running event loop: made in _attach().
        self._read_scope: anyio.CancelScope | None = None
        self._keepalive_scope: anyio.CancelScope | None = None
        self._wait_scope: anyio.CancelScope | None = None
        self._waiting_for_space = False
        self._poked = False
        self._close_deadline = math.inf
        self._milestone: tuple[bool, bool] | None = None
        self._reader_running = False
        self._cannot_half_close = False
        self._transport_exc: BaseException | None = None

    # -- setup, used by client.py and server.py ----------------------------

    def _create_machine(self, max_size: int | None) -> Machine:
        """Make the sans-I/O state machine of this side, CONNECTING."""
        machine_class = ClientMachine if self.is_client else ServerMachine
        # websockets 8.1 bounds handshake lines by read_limit // 2 as well.
        max_line = min(http11.MAX_LINE, max(self.read_limit // 2, 1))
        return machine_class(max_size=max_size, max_line=max_line, logger=logger)

    def _attach(self, stream: anyio.abc.ByteStream) -> None:
        """Give the connection its stream (TCP, TLS or Unix), before the
        opening handshake."""
        self._stream = stream
        self._read_scope = anyio.CancelScope()
        self._keepalive_scope = anyio.CancelScope()
        logger.debug("%s - event = connection_made", self.side)

    def _start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Start the reader and keepalive tasks of an OPEN connection."""
        self._reader_running = True
        task_group.start_soon(self._run_reader, name=f"anyws {self.side} reader")
        task_group.start_soon(self._keepalive, name=f"anyws {self.side} keepalive")

    # -- attributes ----------------------------------------------------------

    @property
    def local_address(self) -> Any:
        """Local address: ``(host, port)`` (4-tuple for IPv6), a path for Unix
        sockets, ``None`` without a socket."""
        if self._stream is None:
            return None
        return self._stream.extra(SocketAttribute.local_address, None)

    @property
    def remote_address(self) -> Any:
        """Peer address, in the same forms as :attr:`local_address`."""
        if self._stream is None:
            return None
        return self._stream.extra(SocketAttribute.remote_address, None)

    @property
    def state(self) -> State:
        """CONNECTING, OPEN, CLOSING or CLOSED (CLOSED once TCP is closed)."""
        state = self._machine.state
        if state is State.CLOSED and not self._closed_event.is_set():
            return State.CLOSING
        return state

    @property
    def open(self) -> bool:
        """Whether the connection is OPEN and its reader still runs."""
        return self._machine.state is State.OPEN and self._reader_running

    @property
    def closed(self) -> bool:
        """Whether the connection is CLOSED (its TCP connection is closed)."""
        return self._closed_event.is_set()

    @property
    def close_code(self) -> int | None:
        """The received close code (1005: empty frame; 1006: none), or
        ``None`` until the connection is closed."""
        return self._machine.close_code if self.closed else None

    @property
    def close_reason(self) -> str | None:
        """The received close reason, or ``None`` until the connection is
        closed."""
        return self._machine.close_reason if self.closed else None

    @property
    def max_size(self) -> int | None:
        """Largest incoming message; a new value applies to the next frame."""
        return self._machine.max_size

    @max_size.setter
    def max_size(self, value: int | None) -> None:
        self._machine.max_size = value

    @property
    def host(self) -> str | None:
        """Deprecated: the configured host."""
        where = "remote_address" if self.is_client else "local_address"
        warnings.warn(f"use {where}[0] instead of host", DeprecationWarning, stacklevel=2)
        return self._host

    @property
    def port(self) -> int | None:
        """Deprecated: the configured port."""
        where = "remote_address" if self.is_client else "local_address"
        warnings.warn(f"use {where}[1] instead of port", DeprecationWarning, stacklevel=2)
        return self._port

    @property
    def secure(self) -> bool | None:
        """Deprecated: whether TLS is used."""
        warnings.warn("don't use secure", DeprecationWarning, stacklevel=2)
        return self._secure

    # -- receiving -------------------------------------------------------------

    async def recv(self) -> Data:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Messages received before the connection closed are returned first.
        Cancelling ``recv`` never loses a message.

        Raises:
            ConnectionClosed: once the connection is closed and no message is
                left (``ConnectionClosedOK`` for 1000, 1001 and 1005). With
                ``legacy_recv``, ``None`` is returned instead.
            ConcurrencyError: if another task is already waiting in ``recv``.
        """
        message = await self._messages.get()
        if message is not None:
            return message
        # No message will come: wait until the close code is final.
        await self.wait_closed()
        if self.legacy_recv:
            return None  # type: ignore[return-value]  # 8.1 types recv as Data
        raise self._closed_exc()

    def __aiter__(self) -> AsyncIterator[Data]:
        """Iterate over messages; ends silently on 1000, 1001 and 1005."""
        return _MessageIterator(self)

    # -- sending ---------------------------------------------------------------

    async def send(
        self, message: Sendable | Iterable[Sendable] | AsyncIterable[Sendable]
    ) -> None:
        """Send a message.

        ``str`` goes in a text frame, bytes-like in a binary frame. An
        iterable or async iterable becomes one fragmented message: one frame
        per item, then an empty final continuation frame.

        Raises:
            ConnectionClosed: if the connection is closing or closed.
            TypeError: for any other type (a mapping included), or for items
                of mixed types (the connection is then failed with 1011).
        """
        await self._ensure_open()
        if isinstance(message, (str, *_BYTES_LIKE)):
            async with self._send_lock:
                await self._write(functools.partial(self._queue_data, message, True))
        elif isinstance(message, Mapping):
            raise TypeError("data is a dict-like object")
        elif isinstance(message, Iterable):
            await self._send_fragments(_SyncSource(message))
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(_AsyncSource(message))
        else:
            raise TypeError("data must be str, bytes-like or iterable")

    def _queue_data(self, data: Sendable, fin: bool) -> None:
        if isinstance(data, str):
            self._machine.send_text(data, fin)
        else:
            self._machine.send_binary(_contiguous(data), fin)

    async def _send_fragments(self, source: _Source) -> None:
        """Send the items of ``source`` as one fragmented message."""
        async with self._send_lock:
            first = await source.next()
            if isinstance(first, _End):
                return
            text = _fragment_kind(first)  # TypeError: nothing sent yet
            await self._write(functools.partial(self._queue_data, first, False))
            try:
                while not isinstance(item := await source.next(), _End):
                    if _fragment_kind(item, "data contains inconsistent types") != text:
                        raise TypeError("data contains inconsistent types")
                    await self._write(
                        functools.partial(self._queue_continuation, item, False)
                    )
                await self._write(functools.partial(self._queue_continuation, b"", True))
            except ConnectionClosed:
                raise
            except BaseException:
                # The message cannot be finished: the connection is unusable.
                with anyio.CancelScope(shield=True):
                    await self._fail(1011)
                raise

    def _queue_continuation(self, data: Sendable, fin: bool) -> None:
        self._machine.send_continuation(
            data if isinstance(data, str) else _contiguous(data), fin
        )

    async def ping(self, data: Sendable | None = None) -> Awaitable[None]:
        """Send a ping; return a waiter that completes when its pong arrives.

        Args:
            data: the payload; ``None`` picks 4 random bytes; ``str`` is sent
                as UTF-8.

        Returns:
            An awaitable: awaiting it returns ``None`` once the pong arrived,
            or raises :exc:`ConnectionClosed`. A pong also acknowledges every
            earlier ping still waiting.

        Raises:
            ConnectionClosed: if the connection is closing or closed.
            TypeError: for a payload of another type.
            ValueError: if a ping with the same payload awaits its pong.
        """
        await self._ensure_open()
        if data is not None:
            payload = prepare_ctrl(data)
            if payload in self._pings:
                raise ValueError("already waiting for a pong with the same data")
        else:
            payload = os.urandom(4)
            while payload in self._pings:  # pragma: no cover - 1 in 2**32
                payload = os.urandom(4)
        waiter = PingWaiter()

        def queue_ping() -> None:
            self._machine.send_ping(payload)
            # Before the write: the pong may be read before the write returns.
            self._pings[payload] = waiter

        await self._write(queue_ping)
        return waiter

    async def pong(self, data: Sendable = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat).

        Raises:
            ConnectionClosed: if the connection is closing or closed.
            TypeError: for a payload that is not ``str`` or bytes-like.
        """
        await self._ensure_open()
        payload = prepare_ctrl(data)
        await self._write(functools.partial(self._machine.send_pong, payload))

    # -- closing ---------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake and wait until TCP is closed.

        It takes at most about 4 × ``close_timeout`` on the server side and 5 ×
        on the client side, even against a silent peer. It is idempotent;
        called during a close, it waits for that close.

        Raises:
            ProtocolError: ``invalid status code`` for a code that may not be
                sent (checked before anything is sent), or a reason over 123
                bytes.
        """
        Close(code, reason).check()
        if self._stream is None:
            return
        if self._machine.state is State.OPEN:
            with anyio.move_on_after(self.close_timeout) as scope:
                try:
                    async with self._write_lock:
                        if self._machine.state is State.OPEN:
                            self._machine.send_close(code, reason)
                        await self._send_pending()
                except _WriteError:
                    pass
            if scope.cancelled_caught:
                logger.debug("%s ! timed out writing the close frame", self.side)
                self._abort()
            self._rearm()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed, whatever the cause.

        It never raises; cancelling it does not affect the connection.
        """
        await self._closed_event.wait()

    async def _fail(self, code: int, reason: str = "") -> None:
        """Fail the connection (RFC 6455 section 7.1.7).

        Send a close frame if still OPEN, without waiting for the answer; the
        reader then tears the connection down.
        """
        logger.debug(
            "%s ! failing %s WebSocket connection with code %d",
            self.side,
            self._machine.state.name,
            code,
        )
        self._machine.fail(code, reason)
        with anyio.move_on_after(self.close_timeout) as scope:
            try:
                async with self._write_lock:
                    await self._send_pending()
            except _WriteError:
                pass
        if scope.cancelled_caught:
            self._abort()
        self._rearm()

    def _abort(self) -> None:
        """Stop reading and tear the connection down now (no handshake)."""
        if self._read_scope is not None:
            self._read_scope.cancel()

    async def _close_for_exit(self, *, quick: bool) -> None:
        """Close on leaving an ``async with``; never waits past the bounds.

        Args:
            quick: the block is being cancelled: give the closing handshake
                a single ``close_timeout``, then abort.
        """
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self.close_timeout if quick else math.inf):
                await self.close()
            self._abort()
            await self.wait_closed()

    def _closed_exc(self) -> ConnectionClosed:
        """The exception describing how the connection closed."""
        exc = self._machine.close_exc()
        if exc.__cause__ is None and self._transport_exc is not None:
            exc.__cause__ = self._transport_exc
        return exc

    async def _ensure_open(self) -> None:
        """Return if OPEN; else raise as 8.1 does (waiting while CLOSING)."""
        state = self._machine.state
        if state is State.OPEN:
            return
        if state is State.CONNECTING:
            raise InvalidState("WebSocket connection isn't established yet")
        await self._raise_closed()

    async def _raise_closed(self) -> NoReturn:
        await self.wait_closed()
        raise self._closed_exc()

    # -- writing ---------------------------------------------------------------

    async def _write(self, queue_frames: Callable[[], None]) -> None:
        """Queue frames with the machine and write them, under the write lock.

        Raises:
            ConnectionClosed: if the connection is no longer OPEN, or writing
                failed (after the connection closed).
        """
        # A send cancelled before it starts must not leave half a frame.
        await anyio.lowlevel.checkpoint_if_cancelled()
        failed = False
        try:
            async with self._write_lock:
                if self._machine.state is not State.OPEN:
                    failed = True
                else:
                    try:
                        queue_frames()
                    finally:
                        await self._send_pending()
        except _WriteError:
            failed = True
        self._rearm()
        if failed:
            await self._raise_closed()

    def _take_outgoing(self) -> None:
        for chunk in self._machine.data_to_send():
            self._outbox.append(chunk)
            self._outbox_size += len(chunk)

    async def _send_pending(self) -> None:
        """Write everything pending. The caller holds ``_write_lock``."""
        assert self._stream is not None
        while True:
            self._take_outgoing()
            if not self._outbox:
                return
            if not self._outbox[0]:  # b"" asks for a half-close.
                self._outbox.popleft()
                await self._send_eof()
                continue
            await self._stream_send(self._next_chunk())

    def _next_chunk(self) -> bytes:
        """Join pending frames into one write of at most ``write_limit``
        bytes (a larger frame is written alone, whole)."""
        parts = [self._outbox.popleft()]
        size = len(parts[0])
        while (
            self._outbox
            and self._outbox[0]
            and size + len(self._outbox[0]) <= self.write_limit
        ):
            chunk = self._outbox.popleft()
            parts.append(chunk)
            size += len(chunk)
        self._outbox_size -= size
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _stream_send(self, data: bytes) -> None:
        assert self._stream is not None
        try:
            await self._stream.send(data)
        except anyio.get_cancelled_exc_class():
            # Part of a frame may be on the wire: the stream is unusable.
            self._abort()
            raise
        except TRANSPORT_ERRORS as exc:
            self._transport_failed(exc)
            raise _WriteError from exc

    async def _send_eof(self) -> None:
        assert self._stream is not None
        try:
            await self._stream.send_eof()
        except NotImplementedError:
            # TLS cannot half-close: closing the stream is the EOF.
            self._cannot_half_close = True
            self._poke_reader()
        except TRANSPORT_ERRORS as exc:
            self._transport_failed(exc)
            raise _WriteError from exc
        else:
            logger.debug("%s x half-closing TCP connection", self.side)

    def _transport_failed(self, exc: BaseException) -> None:
        if self._transport_exc is None:
            self._transport_exc = exc
        logger.debug("%s - transport error: %r", self.side, exc)
        self._abort()

    # -- the reader task -------------------------------------------------------

    async def _run_reader(self) -> None:
        """Read and dispatch until the connection ends, then tear it down."""
        assert self._read_scope is not None
        with anyio.CancelScope(shield=True):
            with self._read_scope:
                try:
                    await self._read_loop()
                except Exception:
                    logger.error("Error in data transfer", exc_info=True)
                    await self._fail(1011)
            await self._teardown()

    async def _read_loop(self) -> None:
        while True:
            self._dispatch(self._machine.events_received())
            try:
                await self._flush_from_reader()
            except _WriteError:
                return
            self._rearm()
            if self._machine.state is State.CLOSED or self._cannot_half_close:
                return
            if not await self._receive():
                return

    async def _receive(self) -> bool:
        """Read once and feed the machine.

        Returns:
            ``False`` when the closing handshake timed out: stop reading.
        """
        assert self._stream is not None
        self._poked = False
        with anyio.CancelScope(deadline=self._close_deadline) as scope:
            self._wait_scope = scope
            try:
                if not self._machine.close_expected():
                    # Backpressure: stop reading while max_queue messages wait.
                    self._waiting_for_space = True
                    await self._messages.wait_for_space(self.max_queue)
                    self._waiting_for_space = False
                data = await self._stream.receive(self.read_limit)
            except anyio.EndOfStream:
                logger.debug("%s - event = eof_received()", self.side)
                self._machine.receive_eof()
                return True
            except TRANSPORT_ERRORS as exc:
                logger.debug("%s - event = connection_lost(%r)", self.side, exc)
                self._transport_exc = exc
                self._machine.receive_eof()
                return True
            finally:
                self._wait_scope = None
                self._waiting_for_space = False
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s - event = data_received(<%d bytes>)", self.side, len(data))
            self._machine.receive_data(data)
            return True
        if self._poked:
            return True
        logger.debug("%s ! timed out waiting for TCP close", self.side)
        return False

    def _poke_reader(self) -> None:
        """Interrupt the reader's wait so that it looks at the state again."""
        if self._wait_scope is not None:
            self._poked = True
            self._wait_scope.cancel()

    def _rearm(self) -> None:
        """Start a new ``close_timeout`` at each step of the closing sequence.

        The steps: a close frame sent (or a failure), the peer's close frame
        received, EOF sent. The reader's wait is bounded by the deadline.
        """
        machine = self._machine
        if not machine.close_expected():
            return
        milestone = (machine.close_rcvd is not None, machine.eof_sent)
        if milestone == self._milestone:
            return
        self._milestone = milestone
        self._close_deadline = anyio.current_time() + self.close_timeout
        if self._wait_scope is not None:
            self._wait_scope.deadline = self._close_deadline
            if self._waiting_for_space:
                self._poke_reader()

    async def _flush_from_reader(self) -> None:
        """Write the pongs and close frames the machine queued.

        If another task holds the write lock, it writes them before releasing
        it; the reader then keeps reading, unless too much is pending.
        """
        self._take_outgoing()
        if not self._outbox:
            return
        if self._write_lock.locked() and self._outbox_size <= self.write_limit:
            return
        async with self._write_lock:
            await self._send_pending()

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Message):
                self._messages.put(event.data)
            elif isinstance(event, PongReceived):
                self._acknowledge(event)
            elif isinstance(event, PingReceived):
                logger.debug("%s - received ping, sending pong", self.side)
            elif isinstance(event, CloseReceived):
                self._messages.close()
            elif isinstance(event, (RequestReceived, ResponseReceived)):
                raise InvalidState(f"unexpected event while OPEN: {event!r}")

    def _acknowledge(self, event: PongReceived) -> None:
        if not event.acknowledged:
            logger.debug("%s - received unsolicited pong", self.side)
        for payload in event.acknowledged:
            waiter = self._pings.pop(payload, None)
            if waiter is not None:
                waiter._acknowledge()
        if len(event.acknowledged) > 1:
            logger.debug(
                "%s - acknowledged %d earlier pings", self.side, len(event.acknowledged) - 1
            )

    async def _teardown(self) -> None:
        """Close the stream, record the outcome, wake everyone. Shielded."""
        assert self._stream is not None
        logger.debug("%s x closing TCP connection", self.side)
        if not await aclose_within(self._stream, self.close_timeout):
            logger.debug("%s x aborting TCP connection", self.side)
        self._finish()

    def _finish(self) -> None:
        """Mark the connection CLOSED once its stream is closed."""
        if self._machine.state is not State.CLOSED:
            self._machine.receive_eof()
        self._reader_running = False
        self._messages.close()
        if self._pings:
            logger.debug("%s - aborting %d pending pings", self.side, len(self._pings))
            exc = self._closed_exc()
            for waiter in self._pings.values():
                waiter._abort(exc)
            self._pings.clear()
        if self._keepalive_scope is not None:
            self._keepalive_scope.cancel()
        self._closed_event.set()
        logger.debug(
            "%s x code = %s, reason = %s",
            self.side,
            self._machine.close_code,
            self._machine.close_reason or "[no reason]",
        )

    # -- keepalive -------------------------------------------------------------

    async def _keepalive(self) -> None:
        """Send a ping every ``ping_interval``; fail with 1011 without pong."""
        assert self._keepalive_scope is not None
        with self._keepalive_scope:
            if self.ping_interval is None:
                return
            try:
                while True:
                    await anyio.sleep(self.ping_interval)
                    waiter = await self.ping()
                    if self.ping_timeout is None:
                        continue
                    with anyio.move_on_after(self.ping_timeout):
                        await waiter
                        continue
                    logger.debug("%s ! timed out waiting for pong", self.side)
                    await self._fail(1011)
                    return
            except ConnectionClosed:
                pass
            except Exception:
                logger.warning("Unexpected exception in keepalive ping task", exc_info=True)

    # -- opening handshake helpers, used by client.py and server.py -------------

    async def _handshake_write(self) -> None:
        """Write what the machine queued during the opening handshake.

        Raises:
            ConnectionError: the stream is broken (chained from the cause).
        """
        try:
            async with self._write_lock:
                await self._send_pending()
        except _WriteError as exc:
            raise ConnectionError("connection lost during the opening handshake") from (
                exc.__cause__
            )

    async def _handshake_event(self) -> RequestReceived | ResponseReceived:
        """Read until the machine parsed the handshake request or response.

        Raises:
            InvalidMessage: (from the machine) it could not be parsed; its
                cause is an ``EOFError`` if the stream ended first.
            EOFError: the stream ended and the machine recorded nothing.
            Exception: a transport error (one of ``TRANSPORT_ERRORS``).
        """
        assert self._stream is not None
        eof = False
        while True:
            for event in self._machine.events_received():
                if isinstance(event, (RequestReceived, ResponseReceived)):
                    return event
            if self._machine.handshake_exc is not None:
                raise self._machine.handshake_exc
            if eof:
                raise EOFError("connection closed during the opening handshake")
            try:
                data = await self._stream.receive(self.read_limit)
            except anyio.EndOfStream:
                eof = True
                self._machine.receive_eof()
            else:
                self._machine.receive_data(data)

    async def _close_transport(self) -> None:
        """Close the stream without a closing handshake (failed opening)."""
        if self._stream is not None:
            await aclose_within(self._stream, self.close_timeout)
        self._finish()


def _contiguous(data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
    """A non-contiguous memoryview is copied, in logical order."""
    if isinstance(data, memoryview) and not data.c_contiguous:
        return data.tobytes()
    return data


def _fragment_kind(item: object, message: str = "data must be str or bytes-like") -> bool:
    """``True`` for text, ``False`` for binary; ``TypeError`` otherwise."""
    if isinstance(item, str):
        return True
    if isinstance(item, _BYTES_LIKE):
        return False
    raise TypeError(message)


class _End:
    """Marks the end of a fragment source."""


_END = _End()


class _Source:
    """The items of a fragmented message, from a sync or async iterable."""

    async def next(self) -> Sendable | _End:  # pragma: no cover - abstract
        raise NotImplementedError


class _SyncSource(_Source):
    def __init__(self, iterable: Iterable[Sendable]) -> None:
        self._iterator = iter(iterable)

    async def next(self) -> Sendable | _End:
        return next(self._iterator, _END)


class _AsyncSource(_Source):
    def __init__(self, iterable: AsyncIterable[Sendable]) -> None:
        self._iterator = aiter(iterable)

    async def next(self) -> Sendable | _End:
        return await anext(self._iterator, _END)


class _MessageIterator:
    """``async for message in ws``: stops silently on a normal closure."""

    def __init__(self, protocol: WebSocketCommonProtocol) -> None:
        self._protocol = protocol

    def __aiter__(self) -> _MessageIterator:
        return self

    async def __anext__(self) -> Data:
        try:
            message = await self._protocol.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None
        if message is None:  # legacy_recv
            raise StopAsyncIteration
        return message
