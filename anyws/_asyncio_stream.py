"""anyws's own byte stream for asyncio, on an :class:`asyncio.Protocol`.

AnyIO's stock asyncio socket stream pauses the transport after every
``receive()`` and resumes it before the next one (two ``epoll_ctl`` system
calls per read), waits until each write has reached the kernel, and yields
to the event loop on every ``send()``. Measured on a 64-byte echo, that costs
more CPU than the whole WebSocket protocol above it. :class:`NativeStream`
implements the same :class:`anyio.abc.SocketStream` contract the way asyncio
streams do:

* reading stays on while less than ``read_limit`` bytes wait unread (above
  that the transport pauses until half of it was consumed), and a
  ``receive()`` that finds data returns it without a trip through the loop;
* ``send()`` hands all the bytes to the transport at once, then waits while
  the transport holds more than ``write_limit`` bytes, until it is down to a
  quarter of that (the high- and low-water marks of websockets 8.1's
  ``write_limit``). A cancelled ``send()`` has therefore written its bytes
  whole: :mod:`anyws._connection` keeps the connection open then, where a
  cancellation inside a stock stream's ``send()`` forces an abort;
* to stay fair, a task that keeps finding data, or keeps writing without the
  transport pushing back, still yields to the event loop once every
  :data:`YIELD_EVERY` calls;
* ``aclose()`` flushes what the transport holds, then closes; cancelled
  (``anyio.aclose_forcefully``), it aborts.

Behaviour seen by :mod:`anyws._connection` is that of the stock stream:
``receive()`` raises :class:`anyio.EndOfStream` at EOF,
:class:`anyio.BrokenResourceError` once the connection broke (after returning
what arrived before) and :class:`anyio.ClosedResourceError` after
``aclose()``. The test suite runs against both streams (``asyncio-anyio`` in
the test ids is the stock one). ``ANYWS_STREAM=anyio`` in the
environment selects the stock stream for a whole process.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import ipaddress
import os
import socket
from collections import deque
from collections.abc import Callable
from typing import cast

import anyio
import anyio.abc

__all__ = (
    "NativeStream",
    "adopt",
    "connect_native",
    "known_loop",
    "native_enabled",
    "native_loop",
    "set_native_enabled",
)

#: How many ``receive()``/``send()`` calls may complete without waiting before
#: one of them yields to the event loop anyway.
YIELD_EVERY = 16

_native = os.environ.get("ANYWS_STREAM", "native") != "anyio"


def native_enabled() -> bool:
    """Whether new asyncio connections get a :class:`NativeStream`."""
    return _native


def set_native_enabled(enabled: bool) -> None:
    """Choose the stream of new asyncio connections (tests use this)."""
    global _native
    _native = enabled


async def adopt(
    stream: anyio.abc.ByteStream, *, read_limit: int, write_limit: int
) -> anyio.abc.ByteStream:
    """Return a :class:`NativeStream` in place of a fresh AnyIO socket stream.

    Only on asyncio, only for a stream nothing was read from or written to
    yet, and only when its transport can be taken over; otherwise (trio, a
    stream of another kind, ``ANYWS_STREAM=anyio``) the stream is
    returned unchanged, except that AnyIO's asyncio stream is made to read
    on demand (see :func:`_read_on_demand`).
    """
    if not _native:
        _read_on_demand(stream)
        return stream
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # trio: its own stream, see _trio_stream
        from ._trio_stream import adopt_trio

        return adopt_trio(stream)
    transport = getattr(stream, "_transport", None)
    protocol = getattr(stream, "_protocol", None)
    if _is_transport(transport) and isinstance(protocol, asyncio.Protocol):
        transport = cast(asyncio.Transport, transport)
        if transport.get_protocol() is not protocol or transport.is_closing():
            return stream  # pragma: no cover - not a fresh stream
        native = NativeStream(read_limit=read_limit, write_limit=write_limit)
        # What AnyIO's protocol may already hold: early bytes, EOF, an error.
        for chunk in getattr(protocol, "read_queue", ()):
            native.data_received(chunk)
        if getattr(protocol, "is_at_eof", False):
            native.eof_received()  # pragma: no cover - a race at accept
        transport.set_protocol(native)
        native.connection_made(transport)
        exc = getattr(protocol, "exception", None)
        if exc is not None:  # pragma: no cover - a race at accept
            native.connection_lost(exc)
        return native
    if isinstance(stream, anyio.abc.UNIXSocketStream) and transport is None:
        # AnyIO's asyncio Unix streams use the raw socket, with no transport:
        # make one on the same socket (nothing was read from it yet).
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        native = NativeStream(read_limit=read_limit, write_limit=write_limit)
        await loop.connect_accepted_socket(lambda: native, sock=sock)
        return native
    return stream  # pragma: no cover - an AnyIO we do not know


def known_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is one whose servers and connections this module
    was tested with: the standard selector loops and uvloop."""
    return isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop) or (
        type(loop).__module__.split(".")[0] == "uvloop"
    )


def native_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop, if connections may be made on it natively:
    on asyncio, without ``ANYWS_STREAM=anyio``, on a :func:`known_loop`."""
    if not _native:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # trio
        return None
    return loop if known_loop(loop) else None


async def connect_native(
    host: str, port: int, *, read_limit: int, write_limit: int
) -> NativeStream | None:
    """Connect to an IP address straight onto a :class:`NativeStream`.

    AnyIO's ``connect_tcp`` runs its happy eyeballs in a task group even for
    a single address, and its stream is then taken over (:func:`adopt`);
    ``loop.create_connection`` does neither. ``None`` where AnyIO's way is
    kept: trio, ``ANYWS_STREAM=anyio``, other event loops, and a host name
    (resolution and happy eyeballs stay AnyIO's).

    Raises:
        OSError: ``All connection attempts failed``, from the reason, as
            AnyIO's ``connect_tcp`` reports it.
    """
    loop = native_loop()
    if loop is None:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    try:
        _, stream = await loop.create_connection(
            lambda: NativeStream(read_limit=read_limit, write_limit=write_limit),
            address.compressed,
            port,
        )
    except OSError as exc:
        raise OSError("All connection attempts failed") from exc
    return stream


def _read_on_demand(stream: anyio.abc.ByteStream) -> None:
    """Pause the transport of a fresh AnyIO asyncio stream.

    AnyIO's stock asyncio stream resumes its transport when a ``receive()``
    must wait and pauses it when the wait ends, but a new transport starts
    reading: bytes that arrive before the first wait (a request sent right
    behind the connection, frames behind it) keep it reading, and a peer that
    goes on sending then fills memory while the connection stops reading for
    backpressure (``max_queue``). Paused from the start, it reads only when
    asked, as it does after its first wait.
    """
    transport = getattr(stream, "_transport", None)
    if _is_transport(transport) and transport.is_reading():  # type: ignore[union-attr]
        transport.pause_reading()  # type: ignore[union-attr]


#: What the stream uses of a transport. uvloop's transports have all of it
#: but do not derive from asyncio.Transport.
_TRANSPORT_METHODS = (
    "get_protocol",
    "set_protocol",
    "write",
    "write_eof",
    "pause_reading",
    "resume_reading",
    "is_reading",
    "is_closing",
    "get_write_buffer_size",
    "set_write_buffer_limits",
    "get_extra_info",
    "close",
    "abort",
)


def _is_transport(transport: object) -> bool:
    return isinstance(transport, asyncio.Transport) or all(
        hasattr(transport, name) for name in _TRANSPORT_METHODS
    )


class NativeStream(anyio.abc.SocketStream, asyncio.Protocol):
    """A socket stream that is its own asyncio protocol (see the module)."""

    __slots__ = (
        "_transport",
        "_chunks",
        "_buffered",
        "_read_high",
        "_reading_paused",
        "_read_waiter",
        "_writing_paused",
        "_write_waiter",
        "_write_limit",
        "_eof",
        "_lost",
        "_exc",
        "_closed",
        "_lost_waiter",
        "_budget",
        "_consumer",
        "_pushing",
        "_on_end",
        "_nudged",
        "_burst",
        "_burst_size",
        "_answered",
        "_eof_sent",
        "loop",
    )

    def __init__(self, *, read_limit: int, write_limit: int) -> None:
        self._transport: asyncio.Transport | None = None
        # Bytes received and not read yet. Made on first use: in the open
        # phase bytes go to the consumer, and an empty deque is 0.6 KiB.
        self._chunks: deque[bytes] | None = None
        self._buffered = 0
        self._read_high = max(read_limit, 1)
        self._reading_paused = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._write_waiter: asyncio.Future[None] | None = None
        self._write_limit = write_limit
        self._eof = False
        self._lost = False
        self._exc: BaseException | None = None
        self._closed = False
        self._lost_waiter: asyncio.Future[None] | None = None
        self._budget = YIELD_EVERY
        self._consumer: Callable[[bytes], bool | None] | None = None
        self._pushing = False
        self._on_end: Callable[[], None] | None = None
        self._nudged = False
        # Writes waiting for the end of this event loop turn (write_nowait).
        self._burst: list[bytes] | None = None
        self._burst_size = 0
        self._answered = False
        self._eof_sent = False
        #: The event loop of the connection (known from connection_made).
        self.loop: asyncio.AbstractEventLoop | None = None

    def set_consumer(self, consumer: Callable[[bytes], bool | None]) -> None:
        """Offer incoming bytes to ``consumer`` while a reader waits.

        While a ``receive()`` waits and nothing is buffered, bytes arriving
        go to ``consumer(data)`` straight from :meth:`data_received`, with no
        task switch. It returns ``None`` to refuse them (they are buffered for
        ``receive()`` as usual), ``False`` when it took them, ``True`` when it
        took them and wants the waiting ``receive()`` to return ``b""`` (its
        caller has something to do).
        """
        self._consumer = consumer

    def start_push(self, on_end: Callable[[], None]) -> None:
        """Hand all incoming bytes to the consumer, nobody reading.

        Until :meth:`stop_push`, bytes go to the consumer (see
        :meth:`set_consumer`) as they arrive, whether a ``receive()`` waits or
        not, and ``on_end()`` is called once the peer sends EOF or the
        connection is lost (after which it stops). Bytes received before
        this call go to the consumer first, and ``on_end()`` is called at once
        if the stream has ended already.
        """
        consumer = self._consumer
        assert consumer is not None, "no consumer"
        self._pushing = True
        self._on_end = on_end
        chunks = self._chunks
        while chunks and self._pushing:
            data = chunks.popleft()
            self._buffered -= len(data)
            consumer(data)
        if chunks is not None and not chunks:
            self._chunks = None
        if self._reading_paused and self._buffered <= self._read_high // 2:
            self._resume_reading()
        if self._pushing and (self._eof or self._lost):
            self._end_push()

    def stop_push(self) -> None:
        """Buffer incoming bytes for ``receive()`` again."""
        self._pushing = False
        self._on_end = None

    def _end_push(self) -> None:
        on_end = self._on_end
        self.stop_push()
        if on_end is not None:
            on_end()

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert _is_transport(transport)
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self.loop = asyncio.get_running_loop()
        transport.set_write_buffer_limits(high=self._write_limit)
        if self._buffered > self._read_high:  # bytes taken over from AnyIO
            self._pause_reading()
        elif not transport.is_reading():
            transport.resume_reading()  # AnyIO pauses between receives

    def data_received(self, data: bytes) -> None:
        if type(data) is not bytes:  # pragma: no cover - proactor loops
            data = bytes(data)
        self._answered = False
        consumer = self._consumer
        if self._pushing:
            assert consumer is not None
            consumer(data)
            return
        if consumer is not None and not self._chunks:
            waiter = self._read_waiter
            if waiter is not None and not waiter.done():
                taken = consumer(data)
                if taken is not None:
                    if taken:
                        self._nudged = True
                        waiter.set_result(None)
                    return
        if self._chunks is None:
            self._chunks = deque()
        self._chunks.append(data)
        self._buffered += len(data)
        if (
            self._buffered > self._read_high
            and not self._reading_paused
            and self._transport is not None  # else connection_made pauses
        ):
            self._pause_reading()
        _wake(self._read_waiter)

    def eof_received(self) -> bool:
        self._eof = True
        _wake(self._read_waiter)
        if self._pushing:
            self._end_push()
        return True  # keep the transport open: we may still write

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if exc is not None and self._exc is None:
            self._exc = exc
        _wake(self._read_waiter)
        _wake(self._write_waiter)
        _wake(self._lost_waiter)
        if self._pushing:
            self._end_push()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        _wake(self._write_waiter)

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self.loop
        assert loop is not None, "not connected"
        return loop

    def _new_future(self) -> asyncio.Future[None]:
        return self._get_loop().create_future()

    def _pause_reading(self) -> None:
        assert self._transport is not None
        if not self._lost and self._transport.is_reading():
            self._transport.pause_reading()
        self._reading_paused = True

    # -- anyio.abc.SocketStream --------------------------------------------------

    @property
    def _raw_socket(self) -> socket.socket:
        assert self._transport is not None
        sock: socket.socket = self._transport.get_extra_info("socket")
        return sock

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        if self._read_waiter is not None:
            raise anyio.BusyResourceError("reading from")
        self._nudged = False
        if self._chunks:
            self._budget -= 1
            if self._budget <= 0:
                self._budget = YIELD_EVERY
                await _checkpoint()  # fairness; the data stays if cancelled
        waited = False
        while not self._chunks:
            if self._closed:
                raise anyio.ClosedResourceError
            if self._lost or self._eof:
                if not waited:
                    await _checkpoint()
                    if self._closed:  # pragma: no cover - closed meanwhile
                        raise anyio.ClosedResourceError
                if self._exc is not None:
                    raise anyio.BrokenResourceError from self._exc
                raise anyio.EndOfStream
            waiter = self._read_waiter = self._new_future()
            try:
                await waiter
            finally:
                self._read_waiter = None
            if self._nudged:
                self._nudged = False
                return b""  # see set_consumer()
            waited = True
            self._budget = YIELD_EVERY
        if self._closed:
            raise anyio.ClosedResourceError
        return self._take(max_bytes)

    def _take(self, max_bytes: int) -> bytes:
        chunks = self._chunks
        assert chunks is not None
        first = chunks.popleft()
        if len(first) > max_bytes:
            chunks.appendleft(first[max_bytes:])
            data = first[:max_bytes]
        elif not chunks or len(first) + len(chunks[0]) > max_bytes:
            data = first
        else:
            parts = [first]
            size = len(first)
            while chunks and size + len(chunks[0]) <= max_bytes:
                chunk = chunks.popleft()
                parts.append(chunk)
                size += len(chunk)
            data = b"".join(parts)
        self._buffered -= len(data)
        if not chunks:
            self._chunks = None  # 0.6 KiB less for an idle connection
        if self._reading_paused and self._buffered <= self._read_high // 2:
            self._resume_reading()
        return data

    def _resume_reading(self) -> None:
        self._reading_paused = False
        assert self._transport is not None
        if not self._lost and not self._closed:
            self._transport.resume_reading()

    async def send(self, item: bytes) -> None:
        """Write ``item`` whole, then wait while the transport holds more
        than ``write_limit`` bytes.

        A cancellation can only end that wait: ``item`` was written whole.
        """
        if self._write_waiter is not None:
            raise anyio.BusyResourceError("writing to")
        self.write_nowait(item)
        await self.drain()

    async def drain(self) -> None:
        """Wait while the transport holds more than ``write_limit`` bytes
        (down to a quarter of that); else yield once in a while, for
        fairness (see the module)."""
        if self._write_waiter is not None:
            raise anyio.BusyResourceError("writing to")
        if not self._writing_paused:
            self._budget -= 1
            if self._budget <= 0:
                self._budget = YIELD_EVERY
                await _checkpoint()  # fairness
            return
        while self._writing_paused:
            waiter = self._write_waiter = self._new_future()
            try:
                await waiter
            finally:
                self._write_waiter = None
            self._check_writable()
        self._budget = YIELD_EVERY

    def write_nowait(self, item: bytes) -> None:
        """Hand ``item`` to the transport, whatever it holds already.

        The first write since bytes last arrived goes to the transport at
        once (an answer leaves without delay). Further writes are joined and
        written at the end of the event loop turn, or once ``write_limit``
        bytes wait: many small messages sent in a row cost one system call
        instead of one each.
        """
        self._check_writable()
        burst = self._burst
        if burst is not None:
            if self._burst_size + len(item) < self._write_limit:
                burst.append(item)
                self._burst_size += len(item)
                return
            self._flush_burst()
            self._write(item)
            return
        if not self._answered or len(item) >= self._write_limit:
            self._answered = True
            self._write(item)
            return
        self._burst = [item]
        self._burst_size = len(item)
        self._get_loop().call_soon(self._end_burst)

    def _write(self, data: bytes) -> None:
        assert self._transport is not None
        try:
            self._transport.write(data)
        except (RuntimeError, OSError) as exc:  # pragma: no cover - raced close
            raise anyio.BrokenResourceError from exc

    def _flush_burst(self) -> None:
        burst = self._burst
        if burst:
            data = burst[0] if len(burst) == 1 else b"".join(burst)
            burst.clear()
            self._burst_size = 0
            self._write(data)

    def _end_burst(self) -> None:
        if self._burst and not self._lost and not self._transport_closing():
            try:
                self._flush_burst()
            except anyio.BrokenResourceError:  # pragma: no cover - raced close
                pass
        self._burst = None

    def _transport_closing(self) -> bool:
        assert self._transport is not None
        return self._transport.is_closing()

    def _check_writable(self) -> None:
        if self._closed or self._eof_sent:
            raise anyio.ClosedResourceError
        assert self._transport is not None
        if self._lost or self._transport.is_closing():
            raise anyio.BrokenResourceError from self._exc

    async def send_eof(self) -> None:
        self.write_eof_nowait()  # no checkpoint, like AnyIO's own

    def write_eof_nowait(self) -> None:
        """Half-close once the transport has written what it holds."""
        self._check_writable()
        self._flush_burst()
        assert self._transport is not None
        self._eof_sent = True
        try:
            self._transport.write_eof()
        except OSError:  # pragma: no cover - the peer is gone already
            pass

    def close_nowait(self) -> bool:
        """Close now if nothing waits to be written; tell whether it did.

        The socket is released by the event loop right after, as when
        ``aclose()`` waited for it.
        """
        transport = self._transport
        assert transport is not None
        if not self._lost and (self._burst or transport.get_write_buffer_size()):
            return False
        self._start_closing()
        return True

    async def aclose(self) -> None:
        transport = self._transport
        assert transport is not None
        self._start_closing()
        if self._lost:
            return
        if self._lost_waiter is None:
            self._lost_waiter = self._new_future()
        try:
            await asyncio.shield(self._lost_waiter)
        except BaseException:
            transport.abort()  # cancelled: give up on flushing
            raise

    def _start_closing(self) -> None:
        """Mark the stream closed, wake its waiters, close the transport
        (which writes what it holds first). Idempotent."""
        if self._closed:
            return
        self._closed = True
        _wake(self._read_waiter)
        _wake(self._write_waiter)
        assert self._transport is not None
        if not self._transport.is_closing():
            if not self._lost:
                self._flush_burst()
            self._transport.close()


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def _checkpoint() -> None:
    await asyncio.sleep(0)
