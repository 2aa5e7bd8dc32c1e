"""The server accepts natively on asyncio (:mod:`anyws._asyncio_accept`):
asyncio's own servers on AnyIO's listening sockets, each connection a
:class:`NativeStream` from the start; trio and AnyIO's stock stream keep
AnyIO's accept loop."""

from __future__ import annotations

import asyncio
import asyncio.constants
import contextvars
import errno
import socket
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.abc
import anyio.streams.stapled
import pytest
from anyio._backends._asyncio import TCPSocketListener

from anyws import _asyncio_stream
from anyws._asyncio_accept import NativeAcceptor
from anyws._asyncio_stream import NativeStream
from anyws.client import connect, unix_connect
from anyws.exceptions import ConnectionClosedOK
from anyws.server import WebSocketServer, WebSocketServerProtocol, serve, unix_serve

from .io_support import TIMEOUT, native_stream, raw_client

ASYNCIO = [pytest.param("asyncio", id="asyncio")]
UVLOOP = [pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")]
BOTH_LOOPS = ASYNCIO + UVLOOP

request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var")


@pytest.fixture(autouse=True)
def native_unless_told(anyio_backend: Any) -> Iterator[None]:
    """Tests parametrised on their own loop get the native stream even with
    ``ANYWS_STREAM=anyio`` in the environment."""
    if anyio_backend == "asyncio" and not _asyncio_stream.native_enabled():
        _asyncio_stream.set_native_enabled(True)  # pragma: no cover - env
        yield  # pragma: no cover - env
        _asyncio_stream.set_native_enabled(False)  # pragma: no cover - env
    else:
        yield


@pytest.fixture
def anyio_accepts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every call of AnyIO's asyncio ``TCPSocketListener.accept``."""
    calls: list[object] = []
    accept = TCPSocketListener.accept

    async def counted(self: TCPSocketListener) -> anyio.abc.SocketStream:
        calls.append(self)
        return await accept(self)

    monkeypatch.setattr(TCPSocketListener, "accept", counted)
    return calls


async def echo(ws: WebSocketServerProtocol) -> None:
    async for message in ws:
        await ws.send(message)


def port_of(server: WebSocketServer) -> int:
    return int(server.sockets[0].getsockname()[1])


def uri_of(server: WebSocketServer) -> str:
    return f"ws://127.0.0.1:{port_of(server)}/"


def refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED


def can_listen_on(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:  # pragma: no cover - a failure of the test
            return False
        return True


# -- which accept runs ----------------------------------------------------------


async def test_accept_is_native_on_asyncio_only(
    anyio_backend: str, anyio_accepts: list[object]
) -> None:
    """All three backends serve; on asyncio with the native stream, every
    connection comes from asyncio's server as a NativeStream, in the
    context of the caller of serve(), and AnyIO's accept() never runs."""
    native = native_stream(anyio_backend)
    streams: list[anyio.abc.ByteStream] = []
    seen: list[str] = []

    async def handler(ws: WebSocketServerProtocol) -> None:
        assert ws._stream is not None
        streams.append(ws._stream)
        seen.append(request_var.get("unset"))
        sock = ws._stream.extra(anyio.abc.SocketAttribute.raw_socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await echo(ws)

    token = request_var.set("from the caller")
    try:
        with anyio.fail_after(TIMEOUT):
            async with serve(handler, "127.0.0.1", 0) as server:
                assert (server._acceptor is not None) is native
                for _ in range(3):
                    async with connect(uri_of(server)) as ws:
                        await ws.send("x")
                        assert await ws.recv() == "x"
            assert server._handlers == 0
    finally:
        request_var.reset(token)
    assert seen == ["from the caller"] * 3
    assert all(isinstance(stream, NativeStream) for stream in streams) is native
    if anyio_backend == "asyncio":
        assert (anyio_accepts == []) is native


@pytest.mark.parametrize("anyio_backend", ASYNCIO)
async def test_other_event_loops_keep_anyio_accept(
    monkeypatch: pytest.MonkeyPatch, anyio_accepts: list[object]
) -> None:
    monkeypatch.setattr(_asyncio_stream, "known_loop", lambda loop: False)
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            assert server._acceptor is None
            async with connect(uri_of(server)) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
    assert len(anyio_accepts) >= 1


@pytest.mark.parametrize("anyio_backend", ASYNCIO)
def test_known_loops() -> None:
    other_loop = cast(asyncio.AbstractEventLoop, object())
    assert not _asyncio_stream.known_loop(other_loop)
    loop = asyncio.new_event_loop()
    try:
        assert _asyncio_stream.known_loop(loop)
    finally:
        loop.close()


@pytest.mark.parametrize("anyio_backend", ASYNCIO)
async def test_listeners_of_another_kind_keep_anyio_accept(
    monkeypatch: pytest.MonkeyPatch, anyio_accepts: list[object]
) -> None:
    """A listener that is not AnyIO's own may do more than accept."""

    class Subclassed(TCPSocketListener):
        pass

    create_tcp_listener = anyio.create_tcp_listener

    async def subclassed(**kwargs: Any) -> Any:
        multi = await create_tcp_listener(**kwargs)
        listeners = cast(list[TCPSocketListener], multi.listeners)
        for listener in listeners:
            listener.__class__ = Subclassed
        return multi

    monkeypatch.setattr(anyio, "create_tcp_listener", subclassed)
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            assert server._acceptor is None
            async with connect(uri_of(server)) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
    assert len(anyio_accepts) >= 1


# -- shutdown ------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", BOTH_LOOPS)
async def test_shutdown_with_connections_open() -> None:
    """Stop accepting, close the listening socket (once), close every
    connection with 1001, wait for the handlers; the port is free after."""
    count = 5
    started = anyio.Event()
    finished: list[int] = []

    async def handler(ws: WebSocketServerProtocol) -> None:
        finished.append(0)
        if len(finished) == count:
            finished.clear()
            started.set()
        try:
            await ws.recv()
        except ConnectionClosedOK as exc:
            finished.append(exc.code)

    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0) as server, AsyncExitStack() as stack:
            assert server._acceptor is not None
            sockets = server.sockets
            port = port_of(server)
            clients = [
                await stack.enter_async_context(connect(uri_of(server)))
                for _ in range(count)
            ]
            await started.wait()
            assert server._handlers == count
            server.close()
            for ws in clients:
                await ws.wait_closed()
                assert ws.close_code == 1001
            await server.wait_closed()
            assert server._handlers == 0
            assert finished == [1001] * count
            assert [sock.fileno() for sock in sockets] == [-1]
            assert refused(port)
            assert can_listen_on(port)


@pytest.mark.parametrize("anyio_backend", BOTH_LOOPS)
async def test_listening_socket_is_closed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asyncio's server closes the listening socket; AnyIO's listener, closed
    next, must not close the same descriptor again (by then a new socket
    holds that number)."""
    aclose = NativeAcceptor.aclose
    probes: list[socket.socket] = []

    async def aclose_then_reuse_the_fd(self: NativeAcceptor) -> None:
        fds = [sock.fileno() for sock in self._sockets]
        await aclose(self)
        probe = socket.socket()
        probes.append(probe)
        assert probe.fileno() in fds  # the lowest free number, just released

    monkeypatch.setattr(NativeAcceptor, "aclose", aclose_then_reuse_the_fd)
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            port = port_of(server)
            async with connect(uri_of(server)) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
    with probes[0] as probe:
        probe.bind(("127.0.0.1", 0))  # still open: not closed a second time
    assert can_listen_on(port)


@pytest.mark.parametrize("anyio_backend", BOTH_LOOPS)
async def test_sock_argument_is_closed_with_the_server() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, sock=sock, backlog=5) as server:
            assert server._acceptor is not None
            assert server.sockets == [sock]
            async with connect(uri_of(server)) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
    assert sock.fileno() == -1
    assert refused(port)


@pytest.mark.parametrize("anyio_backend", BOTH_LOOPS)
async def test_connection_made_during_shutdown_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server closes as asyncio accepts a connection, before the
    connection is made: it is closed, with no handler and no leak."""
    holder: list[WebSocketServer] = []
    for name in ("_new_stream", "_new_tcp_stream"):
        new_stream = getattr(NativeAcceptor, name)

        def close_then_accept(
            self: NativeAcceptor, new_stream: Any = new_stream
        ) -> NativeStream:
            holder[0].close()
            return cast(NativeStream, new_stream(self))

        monkeypatch.setattr(NativeAcceptor, name, close_then_accept)
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            holder.append(server)
            async with raw_client(port_of(server), handshake=False) as peer:
                assert await peer.expect_eof() == b""
            await server.wait_closed()
    assert server._handlers == 0
    assert server.websockets == set()


@pytest.mark.parametrize("anyio_backend", ASYNCIO)
async def test_connection_accepted_just_before_shutdown_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asyncio's selector loops accept in a callback and make the transport
    in a task of their own, which requires the asyncio server to be open:
    a shutdown in between must let it in first, then close it (else the
    socket is left to the garbage collector, with a ResourceWarning)."""
    holder: list[WebSocketServer] = []
    accept = socket.socket.accept

    def accept_then_close(self: socket.socket) -> tuple[socket.socket, Any]:
        accepted = accept(self)
        if holder and self.getsockname() == holder[0].sockets[0].getsockname():
            holder[0].close()
        return accepted

    monkeypatch.setattr(socket.socket, "accept", accept_then_close)
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            holder.append(server)
            async with raw_client(port_of(server), handshake=False) as peer:
                assert await peer.expect_eof() == b""
            await server.wait_closed()
    assert server._handlers == 0


@pytest.mark.parametrize("anyio_backend", BOTH_LOOPS)
async def test_connection_before_the_shutdown_starts_gets_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """close() returns at once; a connection made before the shutdown task
    runs is served, and answered 503 like one from AnyIO's accept loop."""
    serve_native = WebSocketServer._serve_native

    def close_then_serve(self: WebSocketServer, stream: NativeStream) -> None:
        self.close()
        serve_native(self, stream)

    monkeypatch.setattr(WebSocketServer, "_serve_native", close_then_serve)
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            async with raw_client(port_of(server), handshake=False) as peer:
                status, _, body = await peer.read_response()
                assert status == 503
                assert body == b"Server is shutting down.\n"
            await server.wait_closed()
    assert server._handlers == 0


@pytest.mark.parametrize("anyio_backend", BOTH_LOOPS)
async def test_aclose_is_idempotent() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            port = port_of(server)
            assert server._acceptor is not None
            await server._acceptor.aclose()
            await server._acceptor.aclose()
            assert refused(port)
            assert server.is_serving()  # the server itself closes later
    assert not server.is_serving()


@pytest.mark.parametrize("anyio_backend", ASYNCIO)
async def test_cancelling_the_server_closes_the_asyncio_servers() -> None:
    """The shutdown started by a cancelled server is cancelled too; the
    acceptor is closed all the same."""
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            server = await task_group.start(serve(echo, "127.0.0.1", 0).run)
            port = port_of(server)
            async with connect(uri_of(server)) as ws:
                task_group.cancel_scope.cancel()
                await ws.wait_closed()
        assert refused(port)


@pytest.mark.parametrize("anyio_backend", ASYNCIO)
async def test_start_failure_closes_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ports: list[int] = []

    async def failing(self: NativeAcceptor, listeners: Any, *, backlog: int) -> None:
        ports.append(listeners[0].extra(anyio.abc.SocketAttribute.local_port))
        raise OSError("refused by the loop")

    monkeypatch.setattr(NativeAcceptor, "start", failing)
    with anyio.fail_after(TIMEOUT), pytest.raises(OSError, match="by the loop"):
        async with serve(echo, "127.0.0.1", 0):
            pass  # pragma: no cover
    assert refused(ports[0])


# -- accept errors -------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ASYNCIO)
async def test_accept_errors_are_reported_and_serving_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asyncio reports EMFILE to the loop's exception handler (which logs it,
    by default), stops watching the socket for a while (shortened here),
    then accepts again."""
    holder: list[WebSocketServer] = []
    accept = socket.socket.accept
    failed: list[bool] = []

    def emfile_once(self: socket.socket) -> tuple[socket.socket, Any]:
        if not failed and self in holder[0].sockets:
            failed.append(True)
            raise OSError(errno.EMFILE, "Too many open files")
        return accept(self)

    monkeypatch.setattr(socket.socket, "accept", emfile_once)
    monkeypatch.setattr(asyncio.constants, "ACCEPT_RETRY_DELAY", 0.01)
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda loop, context: reported.append(context))
    try:
        with anyio.fail_after(TIMEOUT):
            async with serve(echo, "127.0.0.1", 0) as server:
                holder.append(server)
                async with connect(uri_of(server)) as ws:
                    await ws.send("x")
                    assert await ws.recv() == "x"
    finally:
        loop.set_exception_handler(handler)
    assert failed
    assert [context["message"] for context in reported] == [
        "socket.accept() out of system resource"
    ]
    assert reported[0]["exception"].errno == errno.EMFILE


# -- Unix sockets, uvloop, TLS ---------------------------------------------------


async def test_unix_server(anyio_backend: str, tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")
    streams: list[anyio.abc.ByteStream] = []

    async def handler(ws: WebSocketServerProtocol) -> None:
        assert ws._stream is not None
        streams.append(ws._stream)
        await echo(ws)

    with anyio.fail_after(TIMEOUT):
        async with unix_serve(handler, path) as server:
            assert (server._acceptor is not None) is native_stream(anyio_backend)
            async with unix_connect(path) as ws:
                await ws.send("over unix")
                assert await ws.recv() == "over unix"
    native = native_stream(anyio_backend)
    assert isinstance(streams[0], NativeStream) is native
    assert await anyio.Path(path).is_socket()  # AnyIO leaves the socket file, as we do
    with socket.socket(socket.AF_UNIX) as probe:
        with pytest.raises(ConnectionRefusedError):
            probe.connect(path)


@pytest.mark.parametrize("anyio_backend", UVLOOP)
async def test_unix_server_on_uvloop(tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")
    with anyio.fail_after(TIMEOUT):
        async with unix_serve(echo, path) as server:
            assert server._acceptor is not None
            async with unix_connect(path) as ws:
                await ws.send("over unix")
                assert await ws.recv() == "over unix"
    with socket.socket(socket.AF_UNIX) as probe:
        with pytest.raises(ConnectionRefusedError):
            probe.connect(path)


@pytest.mark.parametrize("anyio_backend", UVLOOP)
async def test_uvloop_server() -> None:
    streams: list[anyio.abc.ByteStream] = []

    async def handler(ws: WebSocketServerProtocol) -> None:
        assert ws._stream is not None
        streams.append(ws._stream)
        sock = ws._stream.extra(anyio.abc.SocketAttribute.raw_socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await echo(ws)

    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0) as server:
            assert type(asyncio.get_running_loop()).__module__ == "uvloop"
            assert server._acceptor is not None
            port = port_of(server)
            async with connect(uri_of(server)) as ws:
                await ws.send(b"y" * 100_000)
                assert await ws.recv() == b"y" * 100_000
    assert isinstance(streams[0], NativeStream)
    assert refused(port)
