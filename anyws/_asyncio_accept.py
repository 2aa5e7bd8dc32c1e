"""Accept connections natively on asyncio, for :mod:`anyws.server`.

AnyIO's ``listener.accept()`` costs, per connection, a checkpoint, a cancel
scope, registering and unregistering the listening socket with the selector,
and a stream plus protocol that :func:`anyws._asyncio_stream.adopt` replaces
at once. Instead, :class:`NativeAcceptor` hands the listening sockets that
AnyIO opened to ``loop.create_server(sock=...)`` (``create_unix_server`` for
Unix sockets), with :class:`~anyws._asyncio_stream.NativeStream` as the
protocol: the event loop accepts, and each connection it makes goes straight
to the server's callback, which starts the handler task.

Only AnyIO's own asyncio listeners on the standard selector loops or uvloop
are served this way; trio, ``ANYWS_STREAM=anyio``, other loops and
other listeners keep AnyIO's accept loop (see :func:`native_acceptor`).

Who closes what: once served, a listening socket belongs to the asyncio
server, which stops watching it and closes it in ``close()`` (uvloop closes
the file descriptor and detaches the socket object). AnyIO's listener, closed
afterwards, finds its socket closed already and does nothing: the descriptor
is closed once.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import contextlib
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from ._asyncio_stream import NativeStream, native_loop

__all__ = ("NativeAcceptor", "native_acceptor")

#: From Python 3.13 on, closing a Unix server unlinks its socket file unless
#: told not to; AnyIO's listener leaves it, and so do we.
_UNIX_SERVER_KWARGS: dict[str, Any] = (
    {"cleanup_socket": False} if sys.version_info >= (3, 13) else {}
)


def native_acceptor(
    listeners: Sequence[anyio.abc.SocketListener],
    on_connection: Callable[[NativeStream], None],
    *,
    read_limit: int,
    write_limit: int,
) -> NativeAcceptor | None:
    """A :class:`NativeAcceptor` for ``listeners``, or ``None`` to keep
    AnyIO's accept loop.

    ``None`` on trio, with ``ANYWS_STREAM=anyio``, on an event loop
    other than the standard selector loops and uvloop (whose servers attach
    accepted connections as described in :meth:`NativeAcceptor.aclose`), and
    for listeners that are not AnyIO's plain asyncio ones (a listener of
    another kind may do more in ``accept()`` than accept).
    """
    loop = native_loop()
    if loop is None:
        return None
    from anyio._backends._asyncio import TCPSocketListener, UNIXSocketListener

    plain = (TCPSocketListener, UNIXSocketListener)
    if not all(type(listener) in plain for listener in listeners):
        return None
    return NativeAcceptor(
        loop, on_connection, read_limit=read_limit, write_limit=write_limit
    )


class _AcceptedStream(NativeStream):
    """A :class:`NativeStream` that reports to its acceptor once connected."""

    __slots__ = ("_acceptor",)
    _acceptor: NativeAcceptor

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        acceptor = self._acceptor
        if acceptor._closing:
            # Accepted while the server shuts down: nobody will serve it.
            transport.close()
            return
        super().connection_made(transport)
        acceptor._on_connection(self)


class _AcceptedTCPStream(_AcceptedStream):
    """For TCP on the standard loops: they leave Nagle's algorithm on for a
    socket accepted from one made with ``proto=0``, as AnyIO's are."""

    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        with contextlib.suppress(OSError):  # reset already: the stream will see
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


class NativeAcceptor:
    """asyncio servers on AnyIO's listening sockets (see the module).

    Args:
        loop: the running event loop.
        on_connection: called from the event loop with each new connection,
            until :meth:`aclose`; it must not raise.
        read_limit: ``read_limit`` of each :class:`NativeStream`.
        write_limit: ``write_limit`` of each :class:`NativeStream`.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_connection: Callable[[NativeStream], None],
        *,
        read_limit: int,
        write_limit: int,
    ) -> None:
        self._loop = loop
        self._on_connection = on_connection
        self._read_limit = read_limit
        self._write_limit = write_limit
        self._sockets: list[socket.socket] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._closing = False

    def _new_stream(self) -> NativeStream:
        stream = _AcceptedStream(
            read_limit=self._read_limit, write_limit=self._write_limit
        )
        stream._acceptor = self
        return stream

    def _new_tcp_stream(self) -> NativeStream:
        stream = _AcceptedTCPStream(
            read_limit=self._read_limit, write_limit=self._write_limit
        )
        stream._acceptor = self
        return stream

    def _selector_loop(self) -> bool:
        return isinstance(self._loop, asyncio.selector_events.BaseSelectorEventLoop)

    async def start(
        self, listeners: Sequence[anyio.abc.SocketListener], *, backlog: int
    ) -> None:
        """Serve each listener's socket; on error, :meth:`aclose` cleans up.

        Shielded: a cancelled caller cannot leave a server half started.
        """
        selector = self._selector_loop()
        with anyio.CancelScope(shield=True):
            for listener in listeners:
                sock = listener.extra(SocketAttribute.raw_socket)
                self._sockets.append(sock)
                server: asyncio.AbstractServer
                if sock.family == socket.AF_UNIX:
                    server = await self._loop.create_unix_server(
                        self._new_stream,
                        sock=sock,
                        backlog=backlog,
                        **_UNIX_SERVER_KWARGS,
                    )
                else:
                    # uvloop disables Nagle's algorithm itself.
                    factory = self._new_tcp_stream if selector else self._new_stream
                    server = await self._loop.create_server(
                        factory, sock=sock, backlog=backlog
                    )
                self._servers.append(server)

    async def aclose(self) -> None:
        """Stop accepting and close the servers (and the listening sockets).

        Connections that the loop makes from now on are closed. Shielded and
        idempotent.

        The standard loops accept in a reader callback, then build the
        transport in a task of their own, whose first step asserts that the
        server is still open: closing the server in between would leave the
        accepted socket to the garbage collector. So stop the reader first,
        let those steps run (they were scheduled before this task's next
        step), and only then close. uvloop builds the transport as it
        accepts.
        """
        if self._closing:
            return
        self._closing = True
        if self._selector_loop():
            for sock in self._sockets:
                self._loop.remove_reader(sock)
            with anyio.CancelScope(shield=True):
                await asyncio.sleep(0)
        for server in self._servers:
            server.close()
