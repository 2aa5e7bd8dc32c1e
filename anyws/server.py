"""The WebSocket server: :func:`serve`, :func:`unix_serve`,
:class:`WebSocketServer` and :class:`WebSocketServerProtocol`.

Use it as an async context manager; the accept loop and every connection
handler live in a task group owned by the ``async with`` block::

    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    async with anyws.serve(echo, "localhost", 8765) as server:
        await server.serve_forever()

Or start it inside your own task group; ``start`` returns the running
:class:`WebSocketServer`::

    server = await task_group.start(anyws.serve(echo, "localhost", 8765).run)
"""

from __future__ import annotations

import inspect
import logging
import math
import socket
import ssl as ssl_module
import warnings
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSStream

from ._asyncio_accept import NativeAcceptor, native_acceptor
from ._asyncio_stream import NativeStream, adopt
from ._compat import (
    aclose_within,
    check_limits,
    single_exception,
    warn_deprecated_arguments,
)
from ._server_protocol import ExtraHeaders, WebSocketServerProtocol
from ._tasks import TaskPool
from .protocol import WebSocketCommonProtocol
from .sansio.extensions.base import ServerExtensionFactory
from .sansio.extensions.permessage_deflate import enable_server_permessage_deflate
from .sansio.headers import validate_subprotocols

__all__ = (
    "WebSocketServer",
    "WebSocketServerProtocol",
    "serve",
    "unix_serve",
)

logger = logging.getLogger("anyws.server")


def _takes_path(handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` accepts ``(websocket, path)`` rather than
    ``(websocket)``."""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # pragma: no cover - builtins, C callables
        return True
    try:
        signature.bind(None, None)
    except TypeError:
        return False
    return True


@dataclass
class _Config:
    """What a server needs to run each connection."""

    ws_handler: Callable[..., Awaitable[Any]]
    create_protocol: Callable[..., WebSocketServerProtocol]
    protocol_kwargs: dict[str, Any]
    ssl_context: ssl_module.SSLContext | None
    open_timeout: float | None
    close_timeout: float
    #: Whether ``ws_handler`` takes ``(websocket, path)``; inspected once.
    takes_path: bool = True


class WebSocketServer:
    """A running WebSocket server: what ``async with serve(...)`` gives.

    It tracks every connection it accepted, in :attr:`websockets`.
    """

    def __init__(self) -> None:
        #: The connections accepted and not yet finished.
        self.websockets: set[WebSocketServerProtocol] = set()
        self._listeners: list[anyio.abc.SocketListener] = []
        self._task_group: anyio.abc.TaskGroup | None = None
        self._config: _Config | None = None
        self._serving = False
        self._close_started = False
        self._closed = anyio.Event()
        self._handlers = 0
        self._handlers_done = anyio.Event()
        self._accept_scope: anyio.CancelScope | None = None
        #: Accepts natively on asyncio, in place of the accept loops.
        self._acceptor: NativeAcceptor | None = None
        #: Where the connections' tasks run (handlers, readers, keepalives).
        self._pool: TaskPool | None = None

    # -- public API --------------------------------------------------------------

    def is_serving(self) -> bool:
        """Whether the server accepts new connections."""
        return self._serving

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets while serving; empty (falsy) after close."""
        if not self._serving:
            return []
        return [
            listener.extra(SocketAttribute.raw_socket) for listener in self._listeners
        ]

    def close(self) -> None:
        """Start shutting down; idempotent; returns at once.

        Stop listening, answer 503 to handshakes in progress, close open
        connections with 1001 all at once, and wait for every handler to
        return (handlers are not cancelled). :meth:`wait_closed` waits for
        the end of it.
        """
        if self._close_started:
            return
        self._close_started = True
        self._serving = False
        if self._task_group is None:
            self._closed.set()
        else:
            self._task_group.start_soon(self._shutdown, name="anyws server shutdown")

    async def wait_closed(self) -> None:
        """Wait until the shutdown started by :meth:`close` is complete.

        Cancelling this wait does not cancel the shutdown.
        """
        await self._closed.wait()

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called and the shutdown completes.

        Cancel it (or the scope around it) to stop: leaving ``async with
        serve(...)`` then shuts the server down.
        """
        await self.wait_closed()

    def register(self, protocol: WebSocketServerProtocol) -> None:
        """Track a connection (when it is accepted)."""
        self.websockets.add(protocol)

    def unregister(self, protocol: WebSocketServerProtocol) -> None:
        """Stop tracking a connection (when its handler has finished)."""
        self.websockets.discard(protocol)

    # -- running -----------------------------------------------------------------

    async def _start(
        self,
        task_group: anyio.abc.TaskGroup,
        listeners: list[anyio.abc.SocketListener],
        config: _Config,
        backlog: int,
    ) -> None:
        self._task_group = task_group
        self._listeners = listeners
        self._config = config
        self._serving = True
        self._accept_scope = anyio.CancelScope()
        self._pool = TaskPool()
        await task_group.start(self._pool.run, name="anyws connections")
        self._acceptor = native_acceptor(
            listeners,
            self._serve_native,
            read_limit=config.protocol_kwargs["read_limit"],
            write_limit=config.protocol_kwargs["write_limit"],
        )
        if self._acceptor is None:
            task_group.start_soon(self._accept, name="anyws accept loops")
        else:
            await self._acceptor.start(listeners, backlog=backlog)

    def _serve_native(self, stream: NativeStream) -> None:
        """Run a connection that asyncio accepted (from its callback)."""
        assert self._pool is not None
        self._handlers += 1
        self._pool.start_soon(self._handle, stream, name="anyws handler")

    async def _accept(self) -> None:
        assert self._accept_scope is not None
        with self._accept_scope:
            async with anyio.create_task_group() as task_group:
                for listener in self._listeners:
                    task_group.start_soon(self._accept_loop, listener)

    async def _accept_loop(self, listener: anyio.abc.SocketListener) -> None:
        assert self._pool is not None
        while True:
            try:
                stream = await listener.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError:
                # For example EMFILE: keep serving once resources free up.
                logger.error("Error while accepting a connection", exc_info=True)
                await anyio.sleep(0.1)
                continue
            self._handlers += 1
            self._pool.start_soon(self._handle, stream, name="anyws handler")

    async def _shutdown(self) -> None:
        assert self._accept_scope is not None
        self._accept_scope.cancel()
        if self._acceptor is not None:
            # Closes the listening sockets; the listeners' aclose() below
            # then finds them closed.
            await self._acceptor.aclose()
        for listener in self._listeners:
            await aclose_within(listener, 1)
        # Let connections accepted just before register themselves.
        await anyio.lowlevel.checkpoint()
        async with anyio.create_task_group() as task_group:
            for protocol in list(self.websockets):
                if protocol._request_scope is not None:
                    protocol._request_scope.cancel()  # 503 without a request
                if protocol.open:
                    task_group.start_soon(_close_quietly, protocol, 1001)
        if self._handlers:
            await self._handlers_done.wait()
        assert self._pool is not None
        self._pool.close()
        self._closed.set()

    async def _handle(self, stream: anyio.abc.ByteStream) -> None:
        """Run one connection, from the opening handshake to its close.

        It never raises, except a cancellation or a ``BaseException`` of the
        handler. One coroutine for it all: each frame stays in memory for as
        long as the connection is open.
        """
        protocol: WebSocketServerProtocol | None = None
        try:
            config = self._config
            assert config is not None and self._pool is not None
            if not isinstance(stream, NativeStream):  # else accepted natively
                # Rebinding ``stream`` lets AnyIO's stream go: this frame
                # lives as long as the connection.
                try:
                    stream = await adopt(
                        stream,
                        read_limit=config.protocol_kwargs["read_limit"],
                        write_limit=config.protocol_kwargs["write_limit"],
                    )
                except BaseException:  # pragma: no cover - the loop refused the socket
                    await aclose_within(stream, 0)
                    raise
            try:
                protocol = config.create_protocol(
                    config.ws_handler, self, **config.protocol_kwargs
                )
                if not isinstance(protocol, WebSocketServerProtocol):
                    raise TypeError(
                        "create_protocol must build a WebSocketServerProtocol, "
                        f"not {protocol!r}"
                    )
            except BaseException:
                protocol = None
                await aclose_within(stream, 0)
                raise
            self.register(protocol)
            path = await self._open(protocol, stream, config)
            if path is None:
                return
            # The connection's reader and keepalive tasks go to the server's
            # pool; this task waits for the connection to close before it
            # ends, as it would for a task group of the connection.
            protocol._start(self._pool)
            if self._close_started:  # missed by the shutdown's close(1001)
                self._pool.start_soon(_close_quietly, protocol, 1001)
            handler = protocol.ws_handler
            if handler is config.ws_handler:
                takes_path = config.takes_path
            else:  # a create_protocol that swapped the handler
                takes_path = _takes_path(handler)
            try:
                if takes_path:
                    await handler(protocol, path)
                else:
                    await handler(protocol)
            except anyio.get_cancelled_exc_class():
                # The server's own scope is cancelled: close quickly, then go.
                await protocol._close_for_exit(quick=True)
                raise
            except Exception:
                logger.error("Error in connection handler", exc_info=True)
                if not protocol.closed:
                    await protocol._fail(1011)
                await protocol.wait_closed()
            except BaseException:
                protocol._abort()
                raise
            else:
                # Most handlers return once the connection closed: then
                # there is nothing to wait for (close() would still be a
                # trip through the scheduler).
                try:
                    if not protocol._closed:
                        await protocol.close()
                except Exception:  # pragma: no cover - raises only for bad codes
                    logger.warning("Error in closing handshake", exc_info=True)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception:
            logger.error("Unexpected error in connection", exc_info=True)
        finally:
            if protocol is not None:
                self.unregister(protocol)
            self._handlers -= 1
            if self._handlers == 0 and self._close_started:
                self._handlers_done.set()

    async def _open(
        self,
        protocol: WebSocketServerProtocol,
        stream: anyio.abc.ByteStream,
        config: _Config,
    ) -> str | None:
        """TLS and opening handshake, bounded by ``open_timeout``.

        Returns:
            The request path, or ``None`` if the connection did not open (it
            is then closed).
        """
        timeout = math.inf if config.open_timeout is None else config.open_timeout
        try:
            with anyio.move_on_after(timeout):
                return await self._handshake(protocol, stream, config)
        except BaseException:
            await _drop(protocol, stream)
            raise
        logger.debug("server ! opening handshake timed out")
        await _drop(protocol, stream)
        return None

    async def _handshake(
        self,
        protocol: WebSocketServerProtocol,
        stream: anyio.abc.ByteStream,
        config: _Config,
    ) -> str | None:
        if config.ssl_context is not None:
            try:
                stream = await TLSStream.wrap(
                    stream,
                    server_side=True,
                    ssl_context=config.ssl_context,
                    standard_compatible=False,
                )
            except Exception:
                logger.debug("Error in TLS handshake", exc_info=True)
                await aclose_within(stream, 0)
                return None
        protocol._attach(stream)
        try:
            return await protocol.handshake(
                origins=protocol.origins,
                available_extensions=protocol.available_extensions,
                available_subprotocols=protocol.available_subprotocols,
                extra_headers=protocol.extra_headers,
            )
        except Exception:
            return None  # handshake() answered, logged and closed


async def _drop(
    protocol: WebSocketServerProtocol, stream: anyio.abc.ByteStream
) -> None:
    """Close a connection that did not open (timeout or cancellation)."""
    if protocol._stream is None:
        await aclose_within(stream, 0)
    else:
        await protocol._close_transport()  # idempotent


async def _close_quietly(protocol: WebSocketCommonProtocol, code: int) -> None:
    try:
        await protocol.close(code)
    except Exception:  # pragma: no cover - close(1001) does not raise
        logger.warning("Error in closing handshake", exc_info=True)


class Serve:
    """What :func:`serve` returns: use it as ``async with serve(...) as server``.

    Arguments are checked when it is created, before any I/O. See the module
    docstring and the API reference for the meaning of each one.

    Raises:
        ValueError: an unknown ``compression``, a bad flow-control limit,
            ``sock`` with ``host`` or ``port``.
        TypeError: an unknown keyword argument, bad ``subprotocols``, or an
            ``ssl`` that is not an ``SSLContext``.
    """

    def __init__(
        self,
        ws_handler: Callable[..., Awaitable[Any]],
        host: str | Sequence[str] | None = None,
        port: int | None = None,
        *,
        create_protocol: Callable[..., WebSocketServerProtocol] | None = None,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = None,
        max_size: int | None = 2**20,
        max_queue: int | None = 2**5,
        read_limit: int = 2**16,
        write_limit: int = 2**16,
        loop: Any = None,
        legacy_recv: bool = False,
        klass: Callable[..., WebSocketServerProtocol] | None = None,
        timeout: float | None = None,
        compression: str | None = "deflate",
        origins: Sequence[str | None] | None = None,
        extensions: Sequence[ServerExtensionFactory] | None = None,
        subprotocols: Sequence[str] | None = None,
        extra_headers: ExtraHeaders | None = None,
        process_request: Callable[..., Any] | None = None,
        select_subprotocol: Callable[[Sequence[str], Sequence[str]], str | None]
        | None = None,
        open_timeout: float | None = 10,
        ssl: ssl_module.SSLContext | None = None,
        sock: socket.socket | None = None,
        backlog: int = 100,
        reuse_port: bool = False,
        reuse_address: bool | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        path: str | None = None,
        unix: bool = False,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            name = next(iter(kwargs))
            raise TypeError(f"serve() got an unexpected keyword argument {name!r}")
        warn_deprecated_arguments(loop=loop, timeout=timeout, klass=klass)
        if close_timeout is None:
            close_timeout = 10 if timeout is None else timeout
        if create_protocol is None:
            create_protocol = klass if klass is not None else WebSocketServerProtocol
        if compression == "deflate":
            extensions = enable_server_permessage_deflate(extensions)
        elif compression is not None:
            raise ValueError(f"unsupported compression: {compression}")
        validate_subprotocols(subprotocols)
        check_limits(
            max_queue=max_queue, read_limit=read_limit, write_limit=write_limit
        )
        if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
            raise TypeError("ssl must be an ssl.SSLContext")
        if sock is not None and (host is not None or port is not None):
            raise ValueError("host/port and sock can not be specified at the same time")
        if origins is not None and "" in origins:
            warnings.warn(
                "use None instead of '' in origins", DeprecationWarning, stacklevel=2
            )
            origins = [None if origin == "" else origin for origin in origins]
        protocol_kwargs: dict[str, Any] = dict(
            host=host,
            port=port,
            secure=ssl is not None,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_size=max_size,
            max_queue=max_queue,
            read_limit=read_limit,
            write_limit=write_limit,
            loop=None,
            legacy_recv=legacy_recv,
            origins=origins,
            extensions=extensions,
            subprotocols=subprotocols,
            extra_headers=extra_headers,
            process_request=process_request,
            select_subprotocol=select_subprotocol,
        )
        self._config = _Config(
            ws_handler,
            create_protocol,
            protocol_kwargs,
            ssl,
            open_timeout,
            close_timeout,
            _takes_path(ws_handler),
        )
        self._host, self._port, self._sock = host, port, sock
        self._backlog, self._reuse_port, self._family = backlog, reuse_port, family
        self._unix_path = path if unix else None
        self._unix = unix
        self._task_group: anyio.abc.TaskGroup | None = None
        self._server: WebSocketServer | None = None

    def __await__(self) -> Generator[Any, None, NoReturn]:
        raise TypeError(
            "serve() cannot be awaited: anyws runs the server's tasks in a task "
            "group owned by a block; write\n"
            "    async with anyws.serve(handler, host, port) as server:\n"
            "        await server.serve_forever()\n"
            "or start it in your task group: "
            "server = await task_group.start(anyws.serve(...).run)"
        )

    async def __aenter__(self) -> WebSocketServer:
        if self._task_group is not None:
            raise RuntimeError("this serve() is already in use")
        listeners = await self._listen()
        server = WebSocketServer()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group, self._server = task_group, server
        try:
            await server._start(task_group, listeners, self._config, self._backlog)
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise  # pragma: no cover - __aexit__ re-raised it (unless absorbed)
        return server

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        task_group, server = self._task_group, self._server
        assert task_group is not None and server is not None
        self._task_group = self._server = None
        server.close()
        try:
            await server.wait_closed()
        finally:
            with single_exception():
                suppress = await task_group.__aexit__(exc_type, exc, traceback)
        return suppress

    async def run(
        self,
        *,
        task_status: anyio.abc.TaskStatus[WebSocketServer] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the server until it is closed, for ``task_group.start``.

        ``server = await task_group.start(serve(...).run)`` returns the
        running :class:`WebSocketServer` once it listens. ``server.close()``
        (or cancelling the task group) stops it.
        """
        async with self as server:
            task_status.started(server)
            await server.serve_forever()

    async def _listen(self) -> list[anyio.abc.SocketListener]:
        """Open the listening sockets."""
        if self._sock is not None:
            self._sock.listen(self._backlog)
            return [await anyio.abc.SocketListener.from_socket(self._sock)]
        if self._unix:
            assert self._unix_path is not None
            return [
                await anyio.create_unix_listener(self._unix_path, backlog=self._backlog)
            ]
        hosts: list[str | None]
        if self._host is None or isinstance(self._host, str):
            hosts = [self._host]
        else:
            hosts = list(self._host)
        listeners: list[anyio.abc.SocketListener] = []
        try:
            for host in hosts:
                multi = await anyio.create_tcp_listener(
                    local_host=host,
                    local_port=self._port or 0,
                    family=self._family,  # type: ignore[arg-type]
                    backlog=self._backlog,
                    reuse_port=self._reuse_port,
                )
                listeners.extend(multi.listeners)  # type: ignore[arg-type]
        except BaseException:
            for listener in listeners:
                await aclose_within(listener, 0)
            raise
        return listeners


#: ``serve(ws_handler, host, port, **kwargs)``: run a server; see :class:`Serve`.
serve = Serve


def unix_serve(
    ws_handler: Callable[..., Awaitable[Any]], path: str | None = None, **kwargs: Any
) -> Serve:
    """Like :func:`serve`, on the Unix socket at ``path``.

    Args:
        ws_handler: the connection handler.
        path: the file system path of the Unix socket (or give ``sock``).
        **kwargs: the keyword arguments of :func:`serve`.
    """
    return Serve(ws_handler, path=path, unix=True, **kwargs)
