"""The WebSocket connection shared by clients and servers, on AnyIO.

:class:`WebSocketCommonProtocol` is the connection object that handlers
receive and ``connect`` returns. It runs unchanged on asyncio and trio; the
engine underneath (reader task, writes, closing sequence and its invariants)
is in :mod:`anyws._connection`.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import SocketAttribute

from ._asyncio_stream import NativeStream
from ._compat import check_limits
from ._connection import Connection
from ._messages import (
    AsyncSource,
    End,
    FragmentSource,
    MessageIterator,
    PingWaiter,
    Sendable,
    SyncSource,
    contiguous,
    fragment_kind,
)
from ._tasks import Spawner, TaskPool
from ._types import Data, Subprotocol
from .exceptions import ConnectionClosed
from .sansio.datastructures import Headers
from .sansio.frames import Close, prepare_ctrl
from .sansio.machine import State

if TYPE_CHECKING:
    from .sansio.extensions.base import Extension

__all__ = ("State", "WebSocketCommonProtocol")

logger = logging.getLogger("anyws.protocol")

_BYTES_LIKE = (bytes, bytearray, memoryview)
_SENDABLE = (str, *_BYTES_LIKE)


class WebSocketCommonProtocol(Connection):
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
        check_limits(
            max_queue=max_queue, read_limit=read_limit, write_limit=write_limit
        )
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

        self._init_connection(max_size)

    def _start(self, task_group: Spawner) -> None:
        """Start the reader and keepalive tasks of an OPEN connection."""
        # The handshake's write lock is free now: an idle connection keeps none.
        self._drop_idle_locks()
        self._start_reading(task_group)
        # As in 8.1, ping_interval is read once, when the connection opens:
        # without it, no keepalive task (nor its memory) at all.
        if self.ping_interval is None:
            return
        stream = self._stream
        if isinstance(task_group, TaskPool):  # a server's connection
            self._call_later = task_group.call_later
        elif isinstance(stream, NativeStream):
            self._call_later = stream._get_loop().call_later
        if self._call_later is not None:
            # No task between pings: a timer (_keepalive_ping).
            self._spawner = task_group
            self._keepalive_later(self.ping_interval, self._keepalive_ping)
        else:
            self._keepalive_scope = anyio.CancelScope()
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
        if state is State.CLOSED and not self._closed:
            return State.CLOSING
        return state

    @property
    def open(self) -> bool:
        """Whether the connection is OPEN and its reader still runs."""
        return self._machine.state is State.OPEN and self._reader_running

    @property
    def closed(self) -> bool:
        """Whether the connection is CLOSED (its TCP connection is closed)."""
        return self._closed

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
        warnings.warn(
            f"use {where}[0] instead of host", DeprecationWarning, stacklevel=2
        )
        return self._host

    @property
    def port(self) -> int | None:
        """Deprecated: the configured port."""
        where = "remote_address" if self.is_client else "local_address"
        warnings.warn(
            f"use {where}[1] instead of port", DeprecationWarning, stacklevel=2
        )
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
        if self.legacy_recv:
            await self.wait_closed()
            return None  # type: ignore[return-value]  # 8.1 types recv as Data
        # No message will come: wait until the close code is final (an
        # exception needs no checkpoint once it is: the end of every
        # ``async for`` saves a trip through the scheduler).
        await self._raise_closed()

    def __aiter__(self) -> AsyncIterator[Data]:
        """Iterate over messages; ends silently on 1000, 1001 and 1005."""
        return MessageIterator(self.recv)

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
        if isinstance(message, _SENDABLE):
            queue = functools.partial(self._queue_data, message, True)
            lock = self._send_lock_
            if lock is None or not lock.locked():
                # No fragmented message is on its way: one frame cannot cut
                # into one that starts later (those wait for the write lock).
                await self._write(queue)
            else:
                async with lock:
                    await self._write(queue)
        elif isinstance(message, Mapping):
            raise TypeError("data is a dict-like object")
        elif isinstance(message, Iterable):
            await self._send_fragments(SyncSource(message))
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(AsyncSource(message))
        else:
            raise TypeError("data must be str, bytes-like or iterable")

    def _queue_data(self, data: Sendable, fin: bool) -> None:
        if isinstance(data, str):
            self._machine.send_text(data, fin)
        else:
            self._machine.send_binary(contiguous(data), fin)

    async def _send_fragments(self, source: FragmentSource) -> None:
        """Send the items of ``source`` as one fragmented message."""
        async with self._send_lock:
            try:
                await self._send_items(source)
            finally:
                # Stopped early or not, the iterator is not used any more.
                await source.aclose()

    async def _send_items(self, source: FragmentSource) -> None:
        first = await source.next()
        if isinstance(first, End):
            return
        text = fragment_kind(first)  # TypeError: nothing sent yet
        await self._write(functools.partial(self._queue_data, first, False))
        try:
            while not isinstance(item := await source.next(), End):
                if fragment_kind(item, "data contains inconsistent types") != text:
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
            data if isinstance(data, str) else contiguous(data), fin
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
            await self._send_close_frame(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed, whatever the cause.

        It never raises; cancelling it does not affect the connection.
        """
        await self._wait_closed()

    async def _close_for_exit(self, *, quick: bool) -> None:
        """Close on leaving an ``async with``; never waits past the bounds.

        Args:
            quick: the block is being cancelled: give the closing handshake
                a single ``close_timeout``, then abort.
        """
        with anyio.CancelScope(shield=True):
            if quick:
                with anyio.move_on_after(self.close_timeout):
                    await self.close()
            else:
                await self.close()
            self._abort()
            if not self._closed:  # the quick close was cut short
                await self._wait_closed()

    # -- keepalive -------------------------------------------------------------

    # A server's connections (whose task pool has timers) and clients on
    # asyncio's own stream (the loop has) run keepalive on timers, with a
    # short task for each ping (ping() is async and may be overridden) and
    # one to fail the connection: an idle connection keeps a timer (about
    # 0.2 KiB) instead of a task (about 4 KiB). The sequence is the task's:
    # wait ping_interval, ping, wait for the pong up to ping_timeout, again.

    def _keepalive_later(self, delay: float, callback: Callable[[], None]) -> None:
        assert self._call_later is not None
        self._keepalive_timer = self._call_later(delay, callback)

    def _keepalive_ping(self) -> None:
        self._keepalive_timer = None
        if self._machine.state is not State.OPEN:  # closing: no more pings
            return
        assert self._spawner is not None
        self._spawner.start_soon(
            self._keepalive_once, name=f"anyws {self.side} keepalive"
        )

    async def _keepalive_once(self) -> None:
        """Send one keepalive ping; arm the timer for its pong."""
        try:
            waiter = await self.ping()
        except ConnectionClosed:
            return
        except Exception:
            logger.warning("Unexpected exception in keepalive ping task", exc_info=True)
            return
        assert self.ping_interval is not None
        if self._closed:  # while ping() waited: the timers are gone
            return
        if self.ping_timeout is None:
            self._keepalive_later(self.ping_interval, self._keepalive_ping)
            return
        assert isinstance(waiter, PingWaiter)
        self._keepalive_later(
            self.ping_timeout, functools.partial(self._keepalive_timed_out, waiter)
        )
        waiter._call_on_pong(self._keepalive_pong)

    def _keepalive_pong(self) -> None:
        assert self.ping_interval is not None
        if self._keepalive_timer is not None:  # else it expired just now
            self._keepalive_timer.cancel()
        self._keepalive_later(self.ping_interval, self._keepalive_ping)

    def _keepalive_timed_out(self, waiter: PingWaiter) -> None:
        self._keepalive_timer = None
        assert self._spawner is not None
        self._spawner.start_soon(
            self._keepalive_fail, waiter, name=f"anyws {self.side} keepalive"
        )

    async def _keepalive_fail(self, waiter: PingWaiter) -> None:
        # The pong may have been read since the timer expired (the event
        # loop was blocked, say, with the pong waiting in the socket): then
        # keepalive goes on (_keepalive_pong), as if it came in time.
        if waiter.done():
            return
        self._log_pong_timeout()
        await self._fail(1011)

    def _log_pong_timeout(self) -> None:
        self._logger.debug(
            "! timed out waiting for pong: none within ping_timeout"
            " = %s s (the peer or the network is unresponsive, or"
            " this event loop was blocked)",
            self.ping_timeout,
        )

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
                    self._log_pong_timeout()
                    await self._fail(1011)
                    return
            except ConnectionClosed:
                pass
            except Exception:
                logger.warning(
                    "Unexpected exception in keepalive ping task", exc_info=True
                )
