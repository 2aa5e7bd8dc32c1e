"""The libraries under test: an echo server and a client adapter for each.

Every library gets the same two things:

* ``serve(ready)``: run an echo server on 127.0.0.1 (any free port) until
  cancelled; it calls ``ready(port)`` once it listens. WebSocket servers echo
  each message back with the same type; they accept permessage-deflate when the
  library supports it, so the client decides whether compression is on.
* ``connect(port, compression)``: an async context manager yielding a
  :class:`Conn` (send a message, receive the next one), closed cleanly on exit.

The raw TCP "libraries" are the ceiling: no WebSocket at all, the server echoes
bytes and the client reads back as many bytes as it sent per message.

Keep-alive pings are off everywhere (they would only add noise), and size
limits are raised so that 1 MiB messages pass. Imports of the peers are lazy:
a process only loads the library it runs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.abc

__all__ = ("LIBS", "Conn", "Lib", "Message", "get_lib")

Message = bytes | str
Ready = Callable[[int], None]
HOST = "127.0.0.1"
#: Above the largest message of the workloads (1 MiB) with room for framing.
MAX_SIZE = 2**23


class Conn(Protocol):
    """One open connection of a client under test."""

    async def send(self, message: Message) -> None:
        """Send one message (bytes: binary, str: text)."""

    async def recv(self) -> Message:
        """Receive the next message."""


Connector = Callable[[int, bool], AbstractAsyncContextManager[Conn]]


@dataclass(frozen=True)
class Lib:
    """A library under test.

    Attributes:
        name: the name in tables and on the command line.
        backend: ``"asyncio"`` or ``"trio"``: what ``anyio.run`` runs it on.
        websocket: False for the raw TCP echo ceilings.
        compression: whether it supports permessage-deflate.
        serve: run the echo server (see the module docstring).
        connect: open a client connection (see the module docstring).
    """

    name: str
    backend: str
    websocket: bool
    compression: bool
    serve: Callable[[Ready], Coroutine[Any, Any, None]]
    connect: Connector


def _url(port: int) -> str:
    return f"ws://{HOST}:{port}/"


# --- anyws -------------------------------------------------------------------


async def _anyws_serve(ready: Ready) -> None:
    import anyws

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with anyws.serve(
        echo, HOST, 0, ping_interval=None, max_size=MAX_SIZE, compression="deflate"
    ) as server:
        ready(server.sockets[0].getsockname()[1])
        await server.serve_forever()


@contextlib.asynccontextmanager
async def _anyws_connect(port: int, compression: bool) -> AsyncIterator[Conn]:
    import anyws

    async with anyws.connect(
        _url(port),
        ping_interval=None,
        max_size=MAX_SIZE,
        compression="deflate" if compression else None,
    ) as ws:
        yield ws


# --- websockets (the new asyncio and trio implementations of 14+) ------------


async def _websockets_asyncio_serve(ready: Ready) -> None:
    from websockets.asyncio.server import serve

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(
        echo, HOST, 0, ping_interval=None, max_size=MAX_SIZE, compression="deflate"
    ) as server:
        ready(server.sockets[0].getsockname()[1])
        await server.serve_forever()


@contextlib.asynccontextmanager
async def _websockets_asyncio_connect(
    port: int, compression: bool
) -> AsyncIterator[Conn]:
    from websockets.asyncio.client import connect

    async with connect(
        _url(port),
        ping_interval=None,
        max_size=MAX_SIZE,
        compression="deflate" if compression else None,
        proxy=None,
    ) as ws:
        yield ws


async def _websockets_trio_serve(ready: Ready) -> None:
    import trio
    from websockets.trio.server import serve

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(
                serve,
                echo,
                0,
                host=HOST,
                ping_interval=None,
                max_size=MAX_SIZE,
                compression="deflate",
            )
        )
        ready(server.listeners[0].socket.getsockname()[1])


@contextlib.asynccontextmanager
async def _websockets_trio_connect(port: int, compression: bool) -> AsyncIterator[Conn]:
    from websockets.trio.client import connect

    async with connect(
        _url(port),
        ping_interval=None,
        max_size=MAX_SIZE,
        compression="deflate" if compression else None,
        proxy=None,
    ) as ws:
        yield ws


# --- trio-websocket ------------------------------------------------------------


async def _trio_websocket_serve(ready: Ready) -> None:
    import trio
    import trio_websocket

    async def echo(request: Any) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except trio_websocket.ConnectionClosed:
            pass

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(
                trio_websocket.serve_websocket,
                echo,
                HOST,
                0,
                None,
                max_message_size=MAX_SIZE,
            )
        )
        ready(server.port)


class _TrioWebsocketConn:
    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, message: Message) -> None:
        await self._ws.send_message(message)

    async def recv(self) -> Message:
        message: Message = await self._ws.get_message()
        return message


@contextlib.asynccontextmanager
async def _trio_websocket_connect(port: int, compression: bool) -> AsyncIterator[Conn]:
    import trio_websocket

    assert not compression, "trio-websocket has no permessage-deflate"
    async with trio_websocket.open_websocket_url(
        _url(port), max_message_size=MAX_SIZE
    ) as ws:
        yield _TrioWebsocketConn(ws)


# --- aiohttp -------------------------------------------------------------------


async def _aiohttp_serve(ready: Ready) -> None:
    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=True, max_msg_size=MAX_SIZE)
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    server: Any = site._server  # noqa: SLF001 - the only way to the port
    ready(server.sockets[0].getsockname()[1])
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


class _AiohttpConn:
    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, message: Message) -> None:
        if isinstance(message, str):
            await self._ws.send_str(message)
        else:
            await self._ws.send_bytes(message)

    async def recv(self) -> Message:
        message: Message = (await self._ws.receive()).data
        return message


_aiohttp_session: Any = None


@contextlib.asynccontextmanager
async def _aiohttp_connect(port: int, compression: bool) -> AsyncIterator[Conn]:
    import aiohttp

    # One session per process, as an application would have: a session per
    # connection would charge aiohttp for set-up nobody pays in practice.
    global _aiohttp_session
    if _aiohttp_session is None:
        _aiohttp_session = aiohttp.ClientSession()
    async with _aiohttp_session.ws_connect(
        _url(port), compress=15 if compression else 0, max_msg_size=MAX_SIZE
    ) as ws:
        yield _AiohttpConn(ws)


# --- picows --------------------------------------------------------------------


def _picows_listener_class() -> Any:
    """Define the picows listener (picows is imported only when used)."""
    from picows import WSListener, WSMsgType

    class Listener(WSListener):
        """Collects whole messages; a server instance echoes them."""

        def __init__(self, echo: bool) -> None:
            super().__init__()
            self.echo = echo
            self.messages: collections.deque[Message] = collections.deque()
            self.waiter: asyncio.Future[None] | None = None
            self.parts: list[bytes] = []
            self.kind = WSMsgType.BINARY

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            kind = frame.msg_type
            if kind == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
                return
            if kind not in (WSMsgType.BINARY, WSMsgType.TEXT, WSMsgType.CONTINUATION):
                return
            if kind != WSMsgType.CONTINUATION:
                self.kind = kind
            if not frame.fin or self.parts:
                self.parts.append(frame.get_payload_as_bytes())
                if not frame.fin:
                    return
                payload = b"".join(self.parts)
                self.parts = []
            else:
                payload = frame.get_payload_as_bytes()
            if self.echo:
                transport.send(self.kind, payload)
                return
            text = self.kind == WSMsgType.TEXT
            self.messages.append(payload.decode() if text else payload)
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    return Listener


async def _picows_serve(ready: Ready) -> None:
    from picows import ws_create_server

    listener = _picows_listener_class()
    server = await ws_create_server(
        lambda request: listener(echo=True), HOST, 0, max_frame_size=MAX_SIZE
    )
    ready(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


class _PicowsConn:
    def __init__(self, transport: Any, listener: Any) -> None:
        from picows import WSMsgType

        self._transport = transport
        self._listener = listener
        self._binary, self._text = WSMsgType.BINARY, WSMsgType.TEXT

    async def send(self, message: Message) -> None:
        if isinstance(message, str):
            self._transport.send(self._text, message.encode())
        else:
            self._transport.send(self._binary, message)

    async def recv(self) -> Message:
        listener = self._listener
        while not listener.messages:
            listener.waiter = asyncio.get_running_loop().create_future()
            await listener.waiter
        message: Message = listener.messages.popleft()
        return message


@contextlib.asynccontextmanager
async def _picows_connect(port: int, compression: bool) -> AsyncIterator[Conn]:
    from picows import WSCloseCode, ws_connect

    assert not compression, "picows has no permessage-deflate"
    listener = _picows_listener_class()
    transport, client = await ws_connect(
        lambda: listener(echo=False), _url(port), max_frame_size=MAX_SIZE
    )
    try:
        yield _PicowsConn(transport, client)
    finally:
        # Without a code, picows 2.3 sends close code 0, which every server
        # answers with 1002 (and a logged error): close normally instead.
        transport.send_close(WSCloseCode.OK)
        await transport.wait_disconnected()


# --- raw TCP echo: the ceiling -----------------------------------------------------


class _RawConn:
    """Sends bytes; ``recv`` reads back as many bytes as the oldest send."""

    def __init__(
        self,
        write: Callable[[bytes], Awaitable[None]],
        read: Callable[[int], Awaitable[bytes]],
    ) -> None:
        self._write, self._read = write, read
        self._sizes: collections.deque[int] = collections.deque()

    async def send(self, message: Message) -> None:
        assert isinstance(message, bytes), "raw echo carries bytes only"
        self._sizes.append(len(message))
        await self._write(message)

    async def recv(self) -> Message:
        return await self._read(self._sizes.popleft())


class _EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _raw_protocol_serve(ready: Ready) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_EchoProtocol, HOST, 0)
    ready(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


class _ReadProtocol(asyncio.Protocol):
    """A client protocol with an exact-size read."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.want = 0
        self.waiter: asyncio.Future[None] | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is not None and len(self.buffer) >= self.want and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    async def write(self, data: bytes) -> None:
        self.transport.write(data)

    async def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.want = size
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


@contextlib.asynccontextmanager
async def _raw_protocol_connect(port: int, compression: bool) -> AsyncIterator[Conn]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(_ReadProtocol, HOST, port)
    try:
        yield _RawConn(protocol.write, protocol.read)
    finally:
        transport.close()
        await protocol.lost


async def _raw_streams_serve(ready: Ready) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(2**16):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, HOST, 0)
    ready(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


@contextlib.asynccontextmanager
async def _raw_streams_connect(port: int, compression: bool) -> AsyncIterator[Conn]:
    reader, writer = await asyncio.open_connection(HOST, port)

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    try:
        yield _RawConn(write, reader.readexactly)
    finally:
        writer.close()
        await writer.wait_closed()


async def _raw_anyio_serve(ready: Ready) -> None:
    async def echo(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            while True:
                try:
                    data = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                await stream.send(data)

    listener = await anyio.create_tcp_listener(local_host=HOST)
    ready(listener.extra(anyio.abc.SocketAttribute.local_port))
    await listener.serve(echo)


@contextlib.asynccontextmanager
async def _raw_anyio_connect(port: int, compression: bool) -> AsyncIterator[Conn]:
    async with await anyio.connect_tcp(HOST, port) as stream:
        buffer = bytearray()

        async def read(size: int) -> bytes:
            while len(buffer) < size:
                buffer.extend(await stream.receive())
            data = bytes(buffer[:size])
            del buffer[:size]
            return data

        yield _RawConn(stream.send, read)


LIBS: dict[str, Lib] = {
    lib.name: lib
    for lib in (
        Lib("anyws-asyncio", "asyncio", True, True, _anyws_serve, _anyws_connect),
        Lib("anyws-trio", "trio", True, True, _anyws_serve, _anyws_connect),
        Lib(
            "websockets-asyncio",
            "asyncio",
            True,
            True,
            _websockets_asyncio_serve,
            _websockets_asyncio_connect,
        ),
        Lib(
            "websockets-trio",
            "trio",
            True,
            True,
            _websockets_trio_serve,
            _websockets_trio_connect,
        ),
        Lib(
            "trio-websocket",
            "trio",
            True,
            False,
            _trio_websocket_serve,
            _trio_websocket_connect,
        ),
        Lib("aiohttp", "asyncio", True, True, _aiohttp_serve, _aiohttp_connect),
        Lib("picows", "asyncio", True, False, _picows_serve, _picows_connect),
        Lib(
            "raw-asyncio-protocol",
            "asyncio",
            False,
            False,
            _raw_protocol_serve,
            _raw_protocol_connect,
        ),
        Lib(
            "raw-asyncio-streams",
            "asyncio",
            False,
            False,
            _raw_streams_serve,
            _raw_streams_connect,
        ),
        Lib(
            "raw-anyio-asyncio",
            "asyncio",
            False,
            False,
            _raw_anyio_serve,
            _raw_anyio_connect,
        ),
        Lib(
            "raw-anyio-trio", "trio", False, False, _raw_anyio_serve, _raw_anyio_connect
        ),
    )
}


def get_lib(name: str) -> Lib:
    """The library called ``name``; ``KeyError`` with the known names if none."""
    try:
        return LIBS[name]
    except KeyError:
        raise KeyError(f"unknown library {name!r}; known: {', '.join(LIBS)}") from None
