"""Interoperability: anyws against the ``websockets`` package from PyPI.

Every test runs on asyncio and on trio (``conftest.py``); the peer is
websockets' implementation for the same backend (see ``tests/_peers.py``).
Both directions are covered: an anyws server with a websockets client, and an
anyws client with a websockets server, over loopback TCP.

Results seen inside a server handler are recorded in lists and checked once
the server block has exited: a failed assertion inside an anyws handler would
only be logged (and close the connection with 1011).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import anyio
import anyio.abc
import pytest
import websockets.exceptions

import anyws
from anyws import Data, WebSocketServerProtocol
from anyws.sansio.extensions.permessage_deflate import PerMessageDeflate

from ._peers import (
    HOST,
    Peer,
    Peers,
    assert_deflate,
    assert_peer_closed,
    assert_same,
    closing_error,
    payload,
    peer_echo,
)

__all__ = ()

MiB = 2**20
#: ``max_size`` on both sides of the echo tests: room for the 16 MiB messages.
BIG = 32 * MiB
#: Bound of a test that moves little data.
QUICK = 10
#: The close codes after which a closed connection is "OK" for anyws.
OK_CODES = frozenset({1000, 1001, 1005})

AnywsHandler = Callable[[WebSocketServerProtocol, str], Awaitable[None]]


@pytest.fixture
def peers(anyio_backend: str) -> Peers:
    """websockets' implementation for the running backend."""
    return Peers(anyio_backend)


@contextlib.asynccontextmanager
async def anyws_serve(handler: AnywsHandler, **kwargs: Any) -> AsyncIterator[str]:
    """Run an anyws server on the loopback; yield its ``ws://`` URI."""
    async with anyws.serve(handler, HOST, 0, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://{HOST}:{port}"


# -- payloads ---------------------------------------------------------------------

#: Frame-length boundaries of RFC 6455 section 5.2 (7-bit, 16-bit, 64-bit
#: lengths) and the default ``max_size`` (1 MiB, accepted exactly).
SIZES = [0, 1, 125, 126, 65535, 65536, MiB]
COMPRESSIONS = [
    pytest.param("deflate", id="deflate"),
    pytest.param(None, id="no-compression"),
]
KINDS = ["text", "binary"]


def echo_limit(size: int) -> float:
    """Time bound of an echo of ``size`` bytes on a loaded 2-core machine."""
    return 60 if size > MiB else 20 if size == MiB else QUICK


async def anyws_echo(ws: WebSocketServerProtocol, path: str) -> None:
    """Send every message back; stop when the client closes."""
    async for message in ws:
        await ws.send(message)


async def echo_via_anyws_server(
    peers: Peers, message: Data, compression: str | None
) -> Data:
    """Send ``message`` from a websockets client to an anyws echo server."""
    async with anyws_serve(anyws_echo, compression=compression, max_size=BIG) as uri:
        async with peers.connect(uri, compression=compression, max_size=BIG) as peer:
            await peer.send(message)
            return await peer.recv()


async def echo_via_peer_server(
    peers: Peers, message: Data, compression: str | None
) -> Data:
    """Send ``message`` from an anyws client to a websockets echo server."""
    async with peers.serve(peer_echo, compression=compression, max_size=BIG) as uri:
        async with anyws.connect(uri, compression=compression, max_size=BIG) as ws:
            await ws.send(message)
            return await ws.recv()


# -- echo -------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", SIZES)
async def test_echo_anyws_server(
    peers: Peers, size: int, kind: str, compression: str | None
) -> None:
    message = payload(kind, size)
    with anyio.fail_after(echo_limit(size)):
        echoed = await echo_via_anyws_server(peers, message, compression)
    assert_same(echoed, message)


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", SIZES)
async def test_echo_anyws_client(
    peers: Peers, size: int, kind: str, compression: str | None
) -> None:
    message = payload(kind, size)
    with anyio.fail_after(echo_limit(size)):
        echoed = await echo_via_peer_server(peers, message, compression)
    assert_same(echoed, message)


#: 16 MiB: compressible text with compression, random bytes without.
HUGE = [
    pytest.param("deflate", "text", id="deflate-text"),
    pytest.param(None, "binary", id="no-compression-binary"),
]


@pytest.mark.parametrize(("compression", "kind"), HUGE)
async def test_echo_16mib_anyws_server(
    peers: Peers, compression: str | None, kind: str
) -> None:
    message = payload(kind, 16 * MiB)
    with anyio.fail_after(echo_limit(16 * MiB)):
        echoed = await echo_via_anyws_server(peers, message, compression)
    assert_same(echoed, message)


@pytest.mark.parametrize(("compression", "kind"), HUGE)
async def test_echo_16mib_anyws_client(
    peers: Peers, compression: str | None, kind: str
) -> None:
    message = payload(kind, 16 * MiB)
    with anyio.fail_after(echo_limit(16 * MiB)):
        echoed = await echo_via_peer_server(peers, message, compression)
    assert_same(echoed, message)


# -- fragmented messages --------------------------------------------------------

#: Fragments with multi-byte characters, an empty fragment in the middle and a
#: fragment over 65535 bytes (64-bit length).
FRAGMENTS: dict[str, list[Data]] = {
    "text": ["caf", "é ", "", "日本語 ", "🙂" * 20_000, "fin"],
    "binary": [b"\x00\x01", bytes(range(256)), b"", b"\xff" * 70_000, b"end"],
}


def joined(fragments: list[Data]) -> Data:
    """The message that ``fragments`` make once reassembled."""
    texts = [fragment for fragment in fragments if isinstance(fragment, str)]
    if texts:
        return "".join(texts)
    return b"".join(fragment for fragment in fragments if isinstance(fragment, bytes))


def as_frames(fragments: list[Data]) -> list[Data]:
    """What a fragmented send puts on the wire, frame by frame: each fragment,
    then an empty final continuation frame (API.md (d), Sending)."""
    return [*fragments, fragments[0][:0]]


def fragment_source(
    fragments: list[Data], mode: str
) -> Iterable[Data] | AsyncIterable[Data]:
    """``fragments`` as a sync iterable or as an async iterable."""
    if mode == "sync":
        return iter(fragments)

    async def generate() -> AsyncIterator[Data]:
        for fragment in fragments:
            yield fragment

    return generate()


MODES = ["sync", "async"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("kind", KINDS)
async def test_fragments_anyws_server(
    peers: Peers, kind: str, compression: str | None, mode: str
) -> None:
    """websockets sends a fragmented message; anyws answers with one."""
    fragments = FRAGMENTS[kind]
    received: list[Data] = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        received.append(await ws.recv())
        await ws.send(fragment_source(fragments, mode))
        await ws.wait_closed()

    with anyio.fail_after(QUICK):
        async with anyws_serve(handler, compression=compression) as uri:
            async with peers.connect(uri, compression=compression) as peer:
                await peer.send(fragments)
                frames = await peer.recv_frames()
    assert received == [joined(fragments)]
    assert frames == as_frames(fragments)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("kind", KINDS)
async def test_fragments_anyws_client(
    peers: Peers, kind: str, compression: str | None, mode: str
) -> None:
    """anyws sends a fragmented message; websockets answers with one."""
    fragments = FRAGMENTS[kind]
    received: list[list[Data]] = []

    async def handler(peer: Peer) -> None:
        frames = await peer.recv_frames()
        received.append(frames)
        await peer.send(frames)
        await peer.wait_closed()

    with anyio.fail_after(QUICK):
        async with peers.serve(handler, compression=compression) as uri:
            async with anyws.connect(uri, compression=compression) as ws:
                await ws.send(fragment_source(fragments, mode))
                echoed = await ws.recv()
    assert received == [as_frames(fragments)]
    assert echoed == joined(fragments)


# -- handshake: extensions, subprotocols, headers --------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_extensions_anyws_server(peers: Peers, compression: str | None) -> None:
    negotiated: list[list[Any]] = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        negotiated.append(list(ws.extensions))

    with anyio.fail_after(QUICK):
        async with anyws_serve(handler, compression=compression) as uri:
            async with peers.connect(uri, compression=compression) as peer:
                peer_extensions = list(peer.extensions)
                await peer.wait_closed()
    assert len(negotiated) == 1
    assert_deflate(negotiated[0], compression is not None)
    assert all(isinstance(ext, PerMessageDeflate) for ext in negotiated[0])
    assert_deflate(peer_extensions, compression is not None)


@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_extensions_anyws_client(peers: Peers, compression: str | None) -> None:
    negotiated: list[list[Any]] = []

    async def handler(peer: Peer) -> None:
        negotiated.append(list(peer.extensions))

    with anyio.fail_after(QUICK):
        async with peers.serve(handler, compression=compression) as uri:
            async with anyws.connect(uri, compression=compression) as ws:
                ws_extensions = list(ws.extensions)
                await ws.wait_closed()
    assert_deflate(ws_extensions, compression is not None)
    assert all(isinstance(ext, PerMessageDeflate) for ext in ws_extensions)
    assert len(negotiated) == 1
    assert_deflate(negotiated[0], compression is not None)


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_compression_only_on_one_side(
    peers: Peers, compression: str | None
) -> None:
    """An offer the server does not take, or no offer: no extension, and
    messages still flow."""
    other = None if compression else "deflate"
    with anyio.fail_after(QUICK):
        async with anyws_serve(anyws_echo, compression=compression) as uri:
            async with peers.connect(uri, compression=other) as peer:
                await peer.send("ping")
                assert await peer.recv() == "ping"
                assert peer.extensions == []
        async with peers.serve(peer_echo, compression=compression) as uri:
            async with anyws.connect(uri, compression=other) as ws:
                await ws.send(b"ping")
                assert await ws.recv() == b"ping"
                assert ws.extensions == []


SERVER_SUBPROTOCOLS = ["chat", "superchat"]


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        # Same sum of positions (1): ties go to the client's order.
        pytest.param(["superchat", "chat"], "superchat", id="tie"),
        pytest.param(["other", "chat"], "chat", id="one-shared"),
        # 8.1 continues without a subprotocol (websockets 17 answers 400).
        pytest.param(["other"], None, id="none-shared"),
        pytest.param(None, None, id="no-offer"),
    ],
)
async def test_subprotocol_anyws_server(
    peers: Peers, offer: list[str] | None, expected: str | None
) -> None:
    chosen: list[str | None] = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        chosen.append(ws.subprotocol)

    with anyio.fail_after(QUICK):
        async with anyws_serve(handler, subprotocols=SERVER_SUBPROTOCOLS) as uri:
            async with peers.connect(uri, subprotocols=offer) as peer:
                peer_subprotocol = peer.subprotocol
    assert chosen == [expected]
    assert peer_subprotocol == expected


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        # websockets 17 picks the first of the server's list the client offers.
        pytest.param(["superchat", "chat"], "chat", id="server-order"),
        pytest.param(["superchat"], "superchat", id="one-shared"),
    ],
)
async def test_subprotocol_anyws_client(
    peers: Peers, offer: list[str], expected: str
) -> None:
    chosen: list[str | None] = []

    async def handler(peer: Peer) -> None:
        chosen.append(peer.subprotocol)

    with anyio.fail_after(QUICK):
        async with peers.serve(handler, subprotocols=SERVER_SUBPROTOCOLS) as uri:
            async with anyws.connect(
                uri, subprotocols=[anyws.Subprotocol(name) for name in offer]
            ) as ws:
                ws_subprotocol = ws.subprotocol
    assert chosen == [expected]
    assert ws_subprotocol == expected


@pytest.mark.parametrize(
    "offer",
    [pytest.param(["other"], id="none-shared"), pytest.param(None, id="no-offer")],
)
async def test_subprotocol_refused_by_peer_server(
    peers: Peers, offer: list[str] | None
) -> None:
    """websockets 17 answers 400 when no subprotocol is shared: anyws raises
    ``InvalidStatusCode`` out of ``connect``, not wrapped in a group."""
    subprotocols = None if offer is None else [anyws.Subprotocol(p) for p in offer]
    with anyio.fail_after(QUICK):
        async with peers.serve(peer_echo, subprotocols=SERVER_SUBPROTOCOLS) as uri:
            with pytest.raises(anyws.InvalidStatusCode) as exc_info:
                async with anyws.connect(uri, subprotocols=subprotocols):
                    pytest.fail("the handshake should have failed")
    assert exc_info.value.status_code == 400


async def test_headers_anyws_server(peers: Peers) -> None:
    seen: list[tuple[str, str, str, str, str]] = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        seen.append(
            (
                path,
                ws.path,
                ws.request_headers["X-From-Client"],
                ws.request_headers["User-Agent"],
                ws.response_headers["X-From-Server"],
            )
        )

    with anyio.fail_after(QUICK):
        async with anyws_serve(
            handler, extra_headers={"X-From-Server": "anyws"}
        ) as uri:
            async with peers.connect(
                f"{uri}/a%20path/?q=1&r", additional_headers={"X-From-Client": "ws"}
            ) as peer:
                response = peer.response_headers
                request = peer.request_headers
    assert len(seen) == 1
    path, ws_path, from_client, user_agent, from_server = seen[0]
    assert path == ws_path == "/a%20path/?q=1&r"
    assert from_client == "ws"
    assert "websockets/" in user_agent
    assert from_server == "anyws"
    assert response["X-From-Server"] == "anyws"
    assert f"anyws/{anyws.__version__}" in response["Server"]
    assert request["X-From-Client"] == "ws"


async def test_headers_anyws_client(peers: Peers) -> None:
    seen: list[tuple[str, str, str]] = []

    async def handler(peer: Peer) -> None:
        headers = peer.request_headers
        seen.append((peer.path, headers["X-From-Client"], headers["User-Agent"]))

    with anyio.fail_after(QUICK):
        async with peers.serve(
            handler, response_headers={"X-From-Server": "ws"}
        ) as uri:
            async with anyws.connect(
                f"{uri}/a%20path/?q=1&r", extra_headers={"X-From-Client": "anyws"}
            ) as ws:
                ws_path = ws.path
                request = ws.request_headers
                response = ws.response_headers
    assert len(seen) == 1
    path, from_client, user_agent = seen[0]
    assert path == "/a%20path/?q=1&r"
    assert from_client == "anyws"
    assert user_agent.endswith(f" anyws/{anyws.__version__}")
    assert ws_path == "/a%20path/?q=1&r"
    assert request["X-From-Client"] == "anyws"
    assert response["X-From-Server"] == "ws"
    assert "websockets/" in response["Server"]


# -- closing ------------------------------------------------------------------------

#: How a websockets peer closes, and the code and reason anyws then records.
PEER_CLOSES: dict[str, tuple[int, str]] = {
    "1000-reason": (1000, "bye"),
    "1001": (1001, "going away"),
    # The longest reason a close frame can carry: 123 bytes of UTF-8.
    "1000-long-reason": (1000, "é" * 61 + "!"),
    "4000": (4000, "application code"),
    "1011": (1011, "internal error"),
    # Service restart: accepted and sent as websockets >= 9 does (API.md (g)).
    "1012": (1012, "restarting"),
    # websockets' close() with no argument sends 1000 and an empty reason.
    "close()": (1000, ""),
    # An empty close frame: recorded as 1005, an OK closure (DECISIONS.md).
    "empty": (1005, ""),
}
#: How anyws closes, and the code and reason the websockets peer records.
ANYWS_CLOSES = {key: PEER_CLOSES[key] for key in PEER_CLOSES if key != "empty"}


async def close_peer(peer: Peer, how: str) -> None:
    if how == "close()":
        await peer.close()
    elif how == "empty":
        await peer.close_empty()
    else:
        await peer.close(*PEER_CLOSES[how])


async def close_anyws(ws: anyws.WebSocketCommonProtocol, how: str) -> None:
    if how == "close()":
        await ws.close()
    else:
        await ws.close(*ANYWS_CLOSES[how])


def assert_anyws_closed(exc: Exception, code: int, reason: str) -> None:
    """anyws raised the ConnectionClosed that ``code`` calls for."""
    expected = (
        anyws.ConnectionClosedOK if code in OK_CODES else anyws.ConnectionClosedError
    )
    assert type(exc) is expected, repr(exc)
    assert isinstance(exc, anyws.ConnectionClosed)
    assert (exc.code, exc.reason) == (code, reason)


@pytest.mark.parametrize("how", list(PEER_CLOSES))
async def test_peer_client_closes(peers: Peers, how: str) -> None:
    code, reason = PEER_CLOSES[how]
    seen: list[tuple[Exception, int | None, str | None]] = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        exc = await closing_error(ws.recv)
        seen.append((exc, ws.close_code, ws.close_reason))

    with anyio.fail_after(QUICK):
        async with anyws_serve(handler) as uri:
            async with peers.connect(uri) as peer:
                await close_peer(peer, how)
                # anyws echoes the payload byte for byte (RFC 6455 5.5.1).
                assert (peer.close_code, peer.close_reason) == (code, reason)
    assert len(seen) == 1
    exc, close_code, close_reason = seen[0]
    assert_anyws_closed(exc, code, reason)
    assert (close_code, close_reason) == (code, reason)


@pytest.mark.parametrize("how", list(PEER_CLOSES))
async def test_peer_server_closes(peers: Peers, how: str) -> None:
    code, reason = PEER_CLOSES[how]
    seen: list[tuple[int | None, str | None]] = []

    async def handler(peer: Peer) -> None:
        await close_peer(peer, how)
        seen.append((peer.close_code, peer.close_reason))

    with anyio.fail_after(QUICK):
        async with peers.serve(handler) as uri:
            async with anyws.connect(uri) as ws:
                exc = await closing_error(ws.recv)
                assert (ws.close_code, ws.close_reason) == (code, reason)
    assert_anyws_closed(exc, code, reason)
    assert seen == [(code, reason)]


@pytest.mark.parametrize("how", list(ANYWS_CLOSES))
async def test_anyws_server_closes(peers: Peers, how: str) -> None:
    code, reason = ANYWS_CLOSES[how]
    seen: list[tuple[int | None, str | None]] = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        await close_anyws(ws, how)
        seen.append((ws.close_code, ws.close_reason))

    with anyio.fail_after(QUICK):
        async with anyws_serve(handler) as uri:
            async with peers.connect(uri) as peer:
                exc = await closing_error(peer.recv)
                assert (peer.close_code, peer.close_reason) == (code, reason)
    assert_peer_closed(exc, code, reason)
    assert seen == [(code, reason)]


@pytest.mark.parametrize("how", list(ANYWS_CLOSES))
async def test_anyws_client_closes(peers: Peers, how: str) -> None:
    code, reason = ANYWS_CLOSES[how]
    seen: list[tuple[Exception, int | None, str | None]] = []

    async def handler(peer: Peer) -> None:
        exc = await closing_error(peer.recv)
        seen.append((exc, peer.close_code, peer.close_reason))

    with anyio.fail_after(QUICK):
        async with peers.serve(handler) as uri:
            async with anyws.connect(uri) as ws:
                await close_anyws(ws, how)
                assert (ws.close_code, ws.close_reason) == (code, reason)
    assert len(seen) == 1
    exc, close_code, close_reason = seen[0]
    assert_peer_closed(exc, code, reason)
    assert (close_code, close_reason) == (code, reason)


async def test_anyws_server_shutdown_sends_1001(peers: Peers) -> None:
    """Leaving ``async with serve`` closes open connections with 1001."""
    handler_saw: list[Exception] = []
    client_saw: list[tuple[Exception, int | None]] = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        await ws.send("ready")
        handler_saw.append(await closing_error(ws.recv))

    async def client(
        uri: str, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        async with peers.connect(uri) as peer:
            if await peer.recv() == "ready":
                task_status.started()
            client_saw.append((await closing_error(peer.recv), peer.close_code))

    with anyio.fail_after(QUICK):
        async with anyio.create_task_group() as task_group:
            async with anyws_serve(handler) as uri:
                await task_group.start(client, uri)
    assert len(handler_saw) == 1
    assert_anyws_closed(handler_saw[0], 1001, "")
    assert len(client_saw) == 1
    exc, close_code = client_saw[0]
    assert_peer_closed(exc, 1001, "")
    assert close_code == 1001


async def test_peer_server_shutdown_sends_1001(peers: Peers) -> None:
    """A websockets server shutting down: the anyws client sees 1001 (OK)."""
    handler_saw: list[Exception] = []
    client_saw: list[tuple[Exception, int | None]] = []

    async def handler(peer: Peer) -> None:
        await peer.send("ready")
        handler_saw.append(await closing_error(peer.recv))

    async def client(
        uri: str, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        async with anyws.connect(uri) as ws:
            if await ws.recv() == "ready":
                task_status.started()
            client_saw.append((await closing_error(ws.recv), ws.close_code))

    with anyio.fail_after(QUICK):
        async with anyio.create_task_group() as task_group:
            async with peers.serve(handler) as uri:
                await task_group.start(client, uri)
    assert len(client_saw) == 1
    exc, close_code = client_saw[0]
    assert_anyws_closed(exc, 1001, "")
    assert close_code == 1001
    assert len(handler_saw) == 1
    assert_peer_closed(handler_saw[0], 1001, "")


async def test_anyws_handler_returns_closes_1000(peers: Peers) -> None:
    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        await ws.send("bye")

    with anyio.fail_after(QUICK):
        async with anyws_serve(handler) as uri:
            async with peers.connect(uri) as peer:
                assert await peer.recv() == "bye"
                exc = await closing_error(peer.recv)
    assert_peer_closed(exc, 1000, "")


async def test_anyws_handler_raises_closes_1011(
    peers: Peers, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        raise RuntimeError("handler crashed")

    with anyio.fail_after(QUICK), caplog.at_level(logging.ERROR, "anyws.server"):
        async with anyws_serve(handler) as uri:
            async with peers.connect(uri) as peer:
                exc = await closing_error(peer.recv)
    assert_peer_closed(exc, 1011, "")
    assert [r.getMessage() for r in caplog.records if r.name == "anyws.server"] == [
        "Error in connection handler"
    ]


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
async def test_peer_client_aborts(peers: Peers, reset: bool) -> None:
    """TCP closes with no closing handshake: anyws records 1006."""
    seen: list[tuple[Exception, int | None]] = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        await ws.send("ready")
        seen.append((await closing_error(ws.recv), ws.close_code))

    with anyio.fail_after(QUICK):
        async with anyws_serve(handler) as uri:
            async with peers.connect(uri) as peer:
                assert await peer.recv() == "ready"
                await peer.abort(reset=reset)
    assert len(seen) == 1
    exc, close_code = seen[0]
    assert_anyws_closed(exc, 1006, "")
    assert close_code == 1006


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
async def test_peer_server_aborts(peers: Peers, reset: bool) -> None:
    """TCP closes with no closing handshake: anyws records 1006."""

    async def handler(peer: Peer) -> None:
        assert await peer.recv() == "ready"
        await peer.abort(reset=reset)

    with anyio.fail_after(QUICK):
        async with peers.serve(handler) as uri:
            async with anyws.connect(uri) as ws:
                await ws.send("ready")
                exc = await closing_error(ws.recv)
                close_code = ws.close_code
    assert_anyws_closed(exc, 1006, "")
    assert close_code == 1006


# -- pings and limits ---------------------------------------------------------------


async def test_ping_anyws_server(peers: Peers) -> None:
    """Each side pings the other and gets its pong."""
    done: list[str] = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        await (await ws.ping(b"from anyws"))
        done.append("pong received")
        # An unsolicited pong is ignored by websockets.
        await ws.pong(b"heartbeat")
        await ws.send("pinged")
        await ws.wait_closed()

    with anyio.fail_after(QUICK):
        async with anyws_serve(handler) as uri:
            async with peers.connect(uri) as peer:
                assert await peer.recv() == "pinged"
                await peer.ping(b"from websockets")
    assert done == ["pong received"]


async def test_ping_anyws_client(peers: Peers) -> None:
    done: list[str] = []

    async def handler(peer: Peer) -> None:
        assert await peer.recv() == "pinged"
        await peer.ping(b"from websockets")
        done.append("pong received")
        await peer.send("done")
        await peer.wait_closed()

    with anyio.fail_after(QUICK):
        async with peers.serve(handler) as uri:
            async with anyws.connect(uri) as ws:
                await (await ws.ping(b"from anyws"))
                await ws.pong(b"heartbeat")
                await ws.send("pinged")
                assert await ws.recv() == "done"
    assert done == ["pong received"]


async def test_max_size_anyws_server_receives(peers: Peers) -> None:
    """anyws fails with 1009 and records 1006 locally (8.1 rule)."""
    seen: list[tuple[Exception, int | None]] = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        seen.append((await closing_error(ws.recv), ws.close_code))

    with anyio.fail_after(QUICK):
        async with anyws_serve(handler, max_size=1000) as uri:
            async with peers.connect(uri) as peer:
                await peer.send(b"x" * 1001)
                exc = await closing_error(peer.recv)
    assert isinstance(exc, websockets.exceptions.ConnectionClosedError)
    assert exc.rcvd is not None and exc.rcvd.code == 1009
    assert len(seen) == 1
    anyws_exc, close_code = seen[0]
    assert_anyws_closed(anyws_exc, 1006, "")
    assert close_code == 1006
    assert isinstance(anyws_exc, anyws.ConnectionClosed)
    assert anyws_exc.sent is not None and anyws_exc.sent.code == 1009


async def test_max_size_anyws_client_receives(peers: Peers) -> None:
    seen: list[Exception] = []

    async def handler(peer: Peer) -> None:
        await peer.send("x" * 1001)
        seen.append(await closing_error(peer.recv))

    with anyio.fail_after(QUICK):
        async with peers.serve(handler) as uri:
            async with anyws.connect(uri, max_size=1000) as ws:
                exc = await closing_error(ws.recv)
    assert_anyws_closed(exc, 1006, "")
    assert isinstance(exc, anyws.ConnectionClosed)
    assert exc.sent is not None and exc.sent.code == 1009
    assert len(seen) == 1
    peer_exc = seen[0]
    assert isinstance(peer_exc, websockets.exceptions.ConnectionClosedError)
    assert peer_exc.rcvd is not None and peer_exc.rcvd.code == 1009


async def test_max_size_peer_server_receives(peers: Peers) -> None:
    """websockets fails with 1009: the anyws client receives it."""
    with anyio.fail_after(QUICK):
        async with peers.serve(peer_echo, max_size=1000) as uri:
            async with anyws.connect(uri) as ws:
                await ws.send(b"x" * 1001)
                exc = await closing_error(ws.recv)
    assert type(exc) is anyws.ConnectionClosedError
    assert isinstance(exc, anyws.ConnectionClosed)
    assert exc.code == 1009


async def test_max_size_peer_client_receives(peers: Peers) -> None:
    """websockets fails with 1009: the anyws server receives it."""
    seen: list[Exception] = []

    async def handler(ws: WebSocketServerProtocol, path: str) -> None:
        await ws.send("x" * 1001)
        seen.append(await closing_error(ws.recv))

    with anyio.fail_after(QUICK):
        async with anyws_serve(handler) as uri:
            async with peers.connect(uri, max_size=1000) as peer:
                await closing_error(peer.recv)
    assert len(seen) == 1
    assert type(seen[0]) is anyws.ConnectionClosedError
    assert isinstance(seen[0], anyws.ConnectionClosed)
    assert seen[0].code == 1009
