"""The ``websockets`` (PyPI) peer of the interoperability tests.

The tests run on asyncio and on trio; the peer is websockets' own
implementation for the same event loop: ``websockets.asyncio`` on asyncio,
``websockets.trio`` on trio. This module hides the few differences between
the two behind :class:`Peer` (one connection) and :class:`Peers` (connecting
and serving), so that a test is written once for both backends. It also holds
the small helpers the interoperability tests share (payloads, comparisons).
"""

from __future__ import annotations

import contextlib
import functools
import random
import socket
import string
import struct
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any

import trio
import websockets.asyncio.client as asyncio_client
import websockets.asyncio.connection as asyncio_connection
import websockets.asyncio.server as asyncio_server
import websockets.trio.client as trio_client
import websockets.trio.connection as trio_connection
import websockets.trio.server as trio_server
from websockets.datastructures import Headers
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)
from websockets.extensions.base import Extension
from websockets.http11 import Request, Response
from websockets.typing import Data, Subprotocol

__all__ = (
    "HOST",
    "Peer",
    "PeerConnection",
    "PeerHandler",
    "Peers",
    "assert_deflate",
    "assert_peer_closed",
    "assert_same",
    "closing_error",
    "payload",
    "peer_echo",
)

#: Every server of these tests listens on the IPv4 loopback only.
HOST = "127.0.0.1"

#: A connection of either websockets implementation.
PeerConnection = asyncio_connection.Connection | trio_connection.Connection

#: What the tests give to :meth:`Peers.serve`.
PeerHandler = Callable[["Peer"], Awaitable[None]]

#: ``struct linger`` with ``l_onoff=1, l_linger=0``: close() sends a RST.
_LINGER_RESET = struct.pack("ii", 1, 0)


class Peer:
    """One websockets connection (client or server side, asyncio or trio).

    Args:
        connection: the websockets connection object.
    """

    def __init__(self, connection: PeerConnection) -> None:
        self.connection = connection

    # -- handshake results ---------------------------------------------------

    @property
    def path(self) -> str:
        """The request target of the opening handshake."""
        return self._request.path

    @property
    def request_headers(self) -> Headers:
        """The headers of the handshake request (received or sent)."""
        return self._request.headers

    @property
    def response_headers(self) -> Headers:
        """The headers of the handshake response (sent or received)."""
        response = self.connection.response
        assert response is not None, "the opening handshake is not done"
        return response.headers

    @property
    def _request(self) -> Request:
        request = self.connection.request
        assert request is not None, "the opening handshake is not done"
        return request

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol."""
        return self.connection.subprotocol

    @property
    def extensions(self) -> list[Extension]:
        """The negotiated extensions."""
        return self.connection.protocol.extensions

    @property
    def close_code(self) -> int | None:
        """The code of the close frame received (1005 if empty, 1006 if none)."""
        return self.connection.close_code

    @property
    def close_reason(self) -> str | None:
        """The reason of the close frame received."""
        return self.connection.close_reason

    # -- messages ------------------------------------------------------------

    async def recv(self) -> Data:
        """Return the next message, reassembled."""
        return await self.connection.recv()

    async def recv_frames(self) -> list[Data]:
        """Return the frames of the next message, one item per frame."""
        return [frame async for frame in self.connection.recv_streaming()]

    async def send(self, message: Data | Iterable[Data] | AsyncIterable[Data]) -> None:
        """Send a message; an (async) iterable is sent fragmented."""
        await self.connection.send(message)

    async def ping(self, data: bytes) -> None:
        """Send a ping and wait for its pong."""
        if isinstance(self.connection, trio_connection.Connection):
            await (await self.connection.ping(data)).wait()
        else:
            await (await self.connection.ping(data))

    # -- closing -------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake with a close frame ``(code, reason)``."""
        if isinstance(self.connection, trio_connection.Connection):
            await self.connection.aclose(code, reason)
        else:
            await self.connection.close(code, reason)

    async def close_empty(self) -> None:
        """Run the closing handshake with an empty close frame (no code).

        websockets' ``close()`` always sends a code (1000 by default); its
        sans-I/O ``send_close()`` with no code sends an empty frame, which the
        receiver records as 1005 (RFC 6455 section 7.1.5). This is the same
        sequence as websockets' own ``close()``, with that one change.
        """
        async with self.connection.send_context():
            self.connection.protocol.send_close()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed."""
        await self.connection.wait_closed()

    async def abort(self, *, reset: bool) -> None:
        """Drop the TCP connection without a closing handshake.

        Args:
            reset: send a TCP RST (``SO_LINGER`` 0) instead of a FIN.
        """
        if isinstance(self.connection, trio_connection.Connection):
            stream = self.connection.stream
            assert isinstance(stream, trio.SocketStream)
            if reset:
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            await trio.aclose_forcefully(stream)
        else:
            transport = self.connection.transport
            if reset:
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            transport.abort()


class Peers:
    """Connect to and serve with websockets' implementation for ``backend``.

    Args:
        backend: ``"asyncio"`` or ``"trio"``: the running AnyIO backend.
    """

    def __init__(self, backend: str) -> None:
        if backend not in ("asyncio", "trio"):
            raise ValueError(f"no websockets implementation for {backend!r}")
        self.backend = backend

    @contextlib.asynccontextmanager
    async def connect(
        self,
        uri: str,
        *,
        compression: str | None = "deflate",
        subprotocols: Sequence[str] | None = None,
        additional_headers: Mapping[str, str] | None = None,
        max_size: int | None = 2**20,
    ) -> AsyncIterator[Peer]:
        """Open a websockets client connection to ``uri``."""
        options: dict[str, Any] = dict(
            compression=compression,
            subprotocols=_subprotocols(subprotocols),
            additional_headers=additional_headers,
            max_size=max_size,
            # The tests talk to the loopback, never through a proxy that the
            # environment might configure.
            proxy=None,
        )
        if self.backend == "trio":
            async with trio_client.connect(uri, **options) as trio_ws:
                yield Peer(trio_ws)
        else:
            async with asyncio_client.connect(uri, **options) as asyncio_ws:
                yield Peer(asyncio_ws)

    @contextlib.asynccontextmanager
    async def serve(
        self,
        handler: PeerHandler,
        *,
        compression: str | None = "deflate",
        subprotocols: Sequence[str] | None = None,
        response_headers: Mapping[str, str] | None = None,
        max_size: int | None = 2**20,
    ) -> AsyncIterator[str]:
        """Run a websockets server on the loopback; yield its ``ws://`` URI.

        Leaving the block shuts the server down the websockets way: open
        connections are closed with 1001 and the block waits for handlers.
        """
        extra = dict(response_headers or {})

        def process_response(
            connection: object, request: Request, response: Response
        ) -> None:
            response.headers.update(extra)

        options: dict[str, Any] = dict(
            compression=compression,
            subprotocols=_subprotocols(subprotocols),
            process_response=process_response,
            max_size=max_size,
        )
        serve = _serve_trio if self.backend == "trio" else _serve_asyncio
        async with serve(handler, options) as port:
            yield f"ws://{HOST}:{port}"


@contextlib.asynccontextmanager
async def _serve_trio(
    handler: PeerHandler, options: dict[str, Any]
) -> AsyncIterator[int]:
    """Run ``websockets.trio.server.serve`` in a nursery; yield its port."""

    async def run(connection: trio_server.ServerConnection) -> None:
        await handler(Peer(connection))

    async with trio.open_nursery() as nursery:
        server: trio_server.Server = await nursery.start(
            functools.partial(trio_server.serve, run, 0, host=HOST, **options)
        )
        async with server:
            yield server.listeners[0].socket.getsockname()[1]


@contextlib.asynccontextmanager
async def _serve_asyncio(
    handler: PeerHandler, options: dict[str, Any]
) -> AsyncIterator[int]:
    """Run ``websockets.asyncio.server.serve``; yield its port."""

    async def run(connection: asyncio_server.ServerConnection) -> None:
        await handler(Peer(connection))

    async with asyncio_server.serve(run, HOST, 0, **options) as server:
        yield server.sockets[0].getsockname()[1]


def _subprotocols(names: Sequence[str] | None) -> list[Subprotocol] | None:
    return None if names is None else [Subprotocol(name) for name in names]


# -- shared by the tests -----------------------------------------------------------

#: Maps each byte to one of 64 ASCII characters: random but compressible text
#: whose size in characters is its size in UTF-8 bytes.
_TO_ASCII = bytes(
    (string.ascii_letters + string.digits + "+/").encode()[i % 64] for i in range(256)
)


@functools.cache
def payload(kind: str, size: int) -> Data:
    """A reproducible message of ``size`` bytes: ``str`` for text, else bytes."""
    raw = random.Random(size).randbytes(size)
    return raw.translate(_TO_ASCII).decode("ascii") if kind == "text" else raw


def assert_same(actual: Data, expected: Data) -> None:
    """Compare two messages without printing megabytes on failure."""
    assert type(actual) is type(expected), f"got {type(actual).__name__}"
    assert len(actual) == len(expected), f"got {len(actual)}, not {len(expected)}"
    if actual != expected:
        pairs = enumerate(zip(actual, expected, strict=True))
        index = next(i for i, (a, b) in pairs if a != b)
        raise AssertionError(f"messages of {len(actual)} differ from index {index}")


async def closing_error(receive: Callable[[], Awaitable[Data]]) -> Exception:
    """Call ``receive``, expecting it to fail because the connection closed."""
    try:
        message = await receive()
    except Exception as exc:
        return exc
    raise AssertionError(f"expected the connection to close, got {message!r}")


async def peer_echo(peer: Peer) -> None:
    """A websockets handler: send every message back until the client closes."""
    with contextlib.suppress(ConnectionClosedOK):
        while True:
            await peer.send(await peer.recv())


def assert_deflate(extensions: list[Any], enabled: bool) -> None:
    """permessage-deflate with both windows at 12 bits, or no extension.

    Both anyws (DECISIONS.md) and websockets 17 default to 12-bit windows.
    """
    # Plain asserts with messages: pytest does not rewrite this module's.
    if not enabled:
        assert extensions == [], extensions
        return
    assert len(extensions) == 1, extensions
    (extension,) = extensions
    found = (
        extension.name,
        extension.remote_no_context_takeover,
        extension.local_no_context_takeover,
        extension.remote_max_window_bits,
        extension.local_max_window_bits,
    )
    assert found == ("permessage-deflate", False, False, 12, 12), extension


def assert_peer_closed(exc: Exception, code: int, reason: str) -> None:
    """websockets raised the ConnectionClosed that a close frame ``(code,
    reason)`` received, and echoed, calls for."""
    ok = code in (1000, 1001)
    expected = ConnectionClosedOK if ok else ConnectionClosedError
    assert type(exc) is expected, repr(exc)
    assert isinstance(exc, ConnectionClosed)
    assert exc.rcvd is not None, repr(exc)
    received = (exc.rcvd.code, exc.rcvd.reason)
    assert received == (code, reason), f"{received} != {(code, reason)}"
