"""Interoperability with the ``websockets`` library (PyPI).

An anyws server against a ``websockets`` client, and an anyws client against a
``websockets`` server: its asyncio implementation on the asyncio backend and
its trio implementation on the trio backend. With and without compression,
text and binary, 0 B to 16 MiB, fragmented and not.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from anyws.client import connect
from anyws.exceptions import ConnectionClosedOK
from anyws.server import WebSocketServerProtocol, serve

from .io_support import TIMEOUT

pytest.importorskip("websockets")

from websockets.asyncio import client as asyncio_client  # noqa: E402
from websockets.asyncio import server as asyncio_server  # noqa: E402

SIZES = [0, 1, 125, 126, 65535, 65536, 2**20 + 3, 16 * 2**20]
MAX_SIZE = 32 * 2**20


def payload(size: int, text: bool) -> str | bytes:
    if text:
        # Mostly ASCII with some multi-byte characters, compressible.
        return ("héllo wörld " * (size // 12 + 1))[:size]
    return os.urandom(size // 2) + bytes(size - size // 2)


def fragments(message: str | bytes, count: int = 4) -> list[Any]:
    step = max(1, len(message) // count)
    return [message[i : i + step] for i in range(0, len(message), step)] or [message]


async def foreign_echo(connection: Any) -> None:
    async for message in connection:
        await connection.send(message)


@asynccontextmanager
async def foreign_server(backend: str, compression: str | None) -> AsyncIterator[str]:
    """A ``websockets`` echo server; yields its URI."""
    if backend == "asyncio":
        async with asyncio_server.serve(
            foreign_echo, "127.0.0.1", 0, compression=compression, max_size=MAX_SIZE
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            yield f"ws://127.0.0.1:{port}/"
    else:
        import trio
        from websockets.trio import server as trio_server

        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    trio_server.serve,
                    foreign_echo,
                    0,
                    host="127.0.0.1",
                    compression=compression,
                    max_size=MAX_SIZE,
                )
            )
            port = server.listeners[0].socket.getsockname()[1]
            try:
                yield f"ws://127.0.0.1:{port}/"
            finally:
                await server.aclose()


@asynccontextmanager
async def foreign_client(
    backend: str, uri: str, compression: str | None
) -> AsyncIterator[Any]:
    """A ``websockets`` client connection."""
    if backend == "asyncio":
        async with asyncio_client.connect(
            uri, compression=compression, max_size=MAX_SIZE, proxy=None
        ) as connection:
            yield connection
    else:
        from websockets.trio import client as trio_client

        async with trio_client.connect(
            uri, compression=compression, max_size=MAX_SIZE, proxy=None
        ) as connection:
            yield connection


async def anyws_echo(ws: WebSocketServerProtocol) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_anyws_client_against_websockets_server(
    anyio_backend: str, compression: str | None
) -> None:
    with anyio.fail_after(TIMEOUT * 6):
        async with foreign_server(anyio_backend, compression) as uri:
            async with connect(uri, compression=compression, max_size=MAX_SIZE) as ws:
                expected = ["permessage-deflate"] if compression else []
                assert [e.name for e in ws.extensions] == expected
                for size in SIZES:
                    for text in (True, False):
                        message = payload(size, text)
                        await ws.send(message)
                        assert await ws.recv() == message
                        await ws.send(fragments(message))
                        assert await ws.recv() == message
                waiter = await ws.ping()
                await waiter
            assert ws.close_code == 1000


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_websockets_client_against_anyws_server(
    anyio_backend: str, compression: str | None
) -> None:
    with anyio.fail_after(TIMEOUT * 6):
        async with serve(
            anyws_echo, "127.0.0.1", 0, compression=compression, max_size=MAX_SIZE
        ) as server:
            port = server.sockets[0].getsockname()[1]
            uri = f"ws://127.0.0.1:{port}/"
            async with foreign_client(anyio_backend, uri, compression) as connection:
                for size in SIZES:
                    for text in (True, False):
                        message = payload(size, text)
                        await connection.send(message)
                        assert await connection.recv() == message
                        await connection.send(fragments(message))
                        assert await connection.recv() == message
                await connection.ping()


async def test_close_codes_across_implementations(anyio_backend: str) -> None:
    closed: list[tuple[int | None, str | None]] = []

    async def handler(ws: WebSocketServerProtocol) -> None:
        await ws.send("hello")
        await ws.wait_closed()
        closed.append((ws.close_code, ws.close_reason))

    with anyio.fail_after(TIMEOUT):
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with foreign_client(
                anyio_backend, f"ws://127.0.0.1:{port}/", "deflate"
            ) as connection:
                assert await connection.recv() == "hello"
                # asyncio: close(); trio: aclose().
                close = getattr(connection, "aclose", None) or connection.close
                await close(4000, "done")
    assert closed == [(4000, "done")]

    async with foreign_server(anyio_backend, None) as uri:
        async with connect(uri) as ws:
            await ws.close(1001, "leaving")
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (1001, "leaving")
