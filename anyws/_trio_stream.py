"""anyws's own byte stream for trio, on a non-blocking socket.

AnyIO's stock trio socket stream goes through :class:`trio.socket.SocketType`,
whose ``recv()`` and ``send()`` go through the scheduler on every call, even
when the system call did not have to wait (``cancel_shielded_checkpoint``
after it). That trip costs about 2.4 us, more than the WebSocket protocol
spends on a small message. :class:`TrioStream` implements the same
:class:`anyio.abc.SocketStream` contract directly on the socket:

* ``receive()`` calls ``recv()`` at once and returns what it got; only when
  nothing is there does it wait with :func:`trio.lowlevel.wait_readable`;
* ``send()`` calls ``send()`` at once, and waits with
  :func:`trio.lowlevel.wait_writable` only while the kernel buffer is full;
* to stay fair, a task that keeps finding data, or keeps writing without the
  kernel pushing back, still yields to the scheduler once every
  :data:`YIELD_EVERY` calls (each direction counts its own calls). Every
  ``receive()`` and ``send()`` is a cancellation point all the same
  (``checkpoint_if_cancelled``: about 70 ns, no trip through the scheduler).

Cancellation:

* ``receive()`` never loses data: it is cancelled only before ``recv()``,
  while yielding or waiting, never after bytes left the kernel.
* ``send(item)`` cancelled before any byte of ``item`` was written (while
  yielding, while a previous tail is written, or while waiting for the kernel
  buffer before the first byte) has written nothing of it. Cancelled after
  part of ``item`` went out, it keeps the rest (:attr:`TrioStream.pending`)
  and writes it before anything else: first thing in the next ``send()``,
  ``send_eof()``, :meth:`TrioStream.drain` or ``aclose()``. So the byte
  stream never has a hole, and a frame is never cut, as long as the stream is
  used again or closed with ``aclose()``.

Behaviour seen by :mod:`anyws._connection` is that of the stock stream:
``receive()`` raises :class:`anyio.EndOfStream` at EOF,
:class:`anyio.BrokenResourceError` once the connection broke (from the
``OSError``; again on every later call) and :class:`anyio.ClosedResourceError`
after ``aclose()``, also in a task that was waiting then.
``ANYWS_STREAM=anyio`` in the environment (see
:func:`anyws._asyncio_stream.native_enabled`) keeps the stock stream.
"""

from __future__ import annotations

import socket

import anyio
import anyio.abc
import trio
import trio.lowlevel

from ._asyncio_stream import native_enabled

__all__ = ("YIELD_EVERY", "TrioStream", "adopt_trio")

#: How many ``receive()`` (or ``send()``) calls may complete without waiting
#: before one of them yields to the scheduler anyway.
YIELD_EVERY = 16

_EMPTY = memoryview(b"")

_checkpoint = trio.lowlevel.checkpoint
_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled


def adopt_trio(stream: anyio.abc.ByteStream) -> anyio.abc.ByteStream:
    """Return a :class:`TrioStream` in place of an AnyIO trio socket stream.

    Only for AnyIO's own trio TCP and Unix socket streams (as
    ``connect_tcp()``, ``connect_unix()`` and listeners make them), still
    open, and unless ``ANYWS_STREAM=anyio``; any other stream (asyncio,
    TLS, a subclass) is returned unchanged. AnyIO's trio stream buffers
    nothing, so the new one takes over the socket where the old one left it;
    the old one must not be used any more.
    """
    if not native_enabled() or type(stream).__module__ != "anyio._backends._trio":
        return stream
    from anyio._backends._trio import SocketStream, UNIXSocketStream

    if type(stream) not in (SocketStream, UNIXSocketStream):
        return stream  # a UDP socket, a process pipe
    assert isinstance(stream, anyio.abc.SocketStream)
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    if sock.fileno() < 0:
        return stream  # closed: let it say so itself
    return TrioStream(sock)


class TrioStream(anyio.abc.SocketStream):
    """A socket stream on a non-blocking socket, for trio (see the module).

    Args:
        sock: a connected ``SOCK_STREAM`` socket (TCP or Unix); the stream
            makes it non-blocking and owns it from then on.
    """

    __slots__ = (
        "_sock",
        "_fd",
        "_receiving",
        "_sending",
        "_closed",
        "_write_closed",
        "_read_error",
        "_read_budget",
        "_write_budget",
        "_tail",
    )

    def __init__(self, sock: socket.socket) -> None:
        if sock.type != socket.SOCK_STREAM:
            raise ValueError("a SOCK_STREAM socket is needed")
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()
        self._receiving = False
        self._sending = False
        self._closed = False
        # After send_eof() or aclose().
        self._write_closed = False
        # What broke reading: raised again by every later receive().
        self._read_error: OSError | None = None
        self._read_budget = YIELD_EVERY
        self._write_budget = YIELD_EVERY
        # The rest of an item whose send() was cancelled after it started.
        self._tail = _EMPTY

    @property
    def _raw_socket(self) -> socket.socket:
        return self._sock

    @property
    def pending(self) -> int:
        """How many bytes of a cancelled ``send()`` wait to be written."""
        return len(self._tail)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Return up to ``max_bytes`` bytes, waiting only if none arrived."""
        if self._receiving:
            raise anyio.BusyResourceError("reading from")
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        self._receiving = True
        try:
            self._read_budget -= 1
            if self._read_budget <= 0:
                self._read_budget = YIELD_EVERY
                await _checkpoint()  # fairness
            else:
                await _checkpoint_if_cancelled()
            while True:
                # Checked again after each wait: aclose() may come meanwhile.
                if self._closed:
                    raise anyio.ClosedResourceError
                if self._read_error is not None:
                    raise anyio.BrokenResourceError from self._read_error
                try:
                    data = self._sock.recv(max_bytes)
                except BlockingIOError:
                    pass
                except OSError as exc:
                    self._read_error = exc
                    raise anyio.BrokenResourceError from exc
                else:
                    if data:
                        return data
                    raise anyio.EndOfStream
                # Cancelled here, nothing was read.
                try:
                    await trio.lowlevel.wait_readable(self._fd)
                except trio.ClosedResourceError as exc:  # aclose() in a task
                    raise anyio.ClosedResourceError from exc
                self._read_budget = YIELD_EVERY
        finally:
            self._receiving = False

    async def send(self, item: bytes) -> None:
        """Write ``item`` whole, waiting only while the kernel buffer is full.

        For what a cancelled call has written, see the module.
        """
        if self._sending:
            raise anyio.BusyResourceError("writing to")
        if self._write_closed:
            raise anyio.ClosedResourceError
        self._sending = True
        try:
            self._write_budget -= 1
            if self._write_budget <= 0:
                self._write_budget = YIELD_EVERY
                await _checkpoint()  # fairness
            else:
                await _checkpoint_if_cancelled()
            if self._tail:
                await self._flush()
            if not item:
                return
            sent = self._send_nowait(item)
            while not sent:  # nothing of item written: cancellable as is
                await self._wait_writable()
                sent = self._send_nowait(item)
            if sent < len(item):
                self._keep(item, sent)
                await self._flush()
        finally:
            self._sending = False

    async def drain(self) -> None:
        """Write what a cancelled ``send()`` left (:attr:`pending`), if any."""
        if self._sending:
            raise anyio.BusyResourceError("writing to")
        if self._tail:
            await self._flush_owned()
        else:
            await _checkpoint()

    def _keep(self, item: bytes, sent: int) -> None:
        if type(item) is not bytes:  # the caller may change a bytearray later
            item = bytes(item)
        self._tail = memoryview(item)[sent:]

    async def _flush_owned(self) -> None:
        """:meth:`_flush`, marked as the writer meanwhile (the caller checked
        that no ``send()`` runs)."""
        self._sending = True
        try:
            await self._flush()
        finally:
            self._sending = False

    async def _flush(self) -> None:
        """Write the tail; cancelled, it keeps what is left of it."""
        while True:
            self._tail = self._tail[self._send_nowait(self._tail) :]
            if not self._tail:
                return
            await self._wait_writable()

    def _send_nowait(self, data: bytes | memoryview) -> int:
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            if self._closed:  # pragma: no cover - aclose() raced a wakeup
                raise anyio.ClosedResourceError from exc
            raise anyio.BrokenResourceError from exc

    async def _wait_writable(self) -> None:
        try:
            await trio.lowlevel.wait_writable(self._fd)
        except trio.ClosedResourceError as exc:  # aclose() in another task
            raise anyio.ClosedResourceError from exc
        self._write_budget = YIELD_EVERY

    async def send_eof(self) -> None:
        """Half-close, once the rest of a cancelled ``send()`` is written."""
        if self._sending:
            raise anyio.BusyResourceError("writing to")
        if self._write_closed:
            raise anyio.ClosedResourceError
        if self._tail:
            await self._flush_owned()
        self._write_closed = True
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:  # the peer is gone already
            raise anyio.BrokenResourceError from exc

    async def aclose(self) -> None:
        """Close the socket, after writing what a cancelled ``send()`` left.

        Tasks waiting in ``receive()`` or ``send()`` get
        :class:`anyio.ClosedResourceError`. Cancelled while writing the rest,
        it closes all the same. Idempotent.
        """
        if not self._closed:
            try:
                if self._tail and not self._sending:
                    await self._flush_owned()
            except anyio.BrokenResourceError:
                pass  # closed all the same
            finally:
                self._close()
        await _checkpoint()

    def _close(self) -> None:
        # In one step, with no checkpoint: mark closed, wake the waiters,
        # close (see trio.lowlevel.notify_closing).
        self._closed = self._write_closed = True
        self._tail = _EMPTY
        if self._sock.fileno() >= 0:  # else closed behind our back: not ours
            trio.lowlevel.notify_closing(self._fd)
            self._sock.close()
