"""Network faults (issue 7, item 3): peers that vanish mid-message, during the
opening handshake and during the closing handshake (with a FIN or a RST),
half-open connections caught by keepalive, TLS errors, a handler that blocks
the event loop, and a peer closing while the handler sends.
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import Any

import anyio
import pytest

from anyws.client import connect
from anyws.exceptions import ConnectionClosed, ConnectionClosedError, InvalidMessage
from anyws.server import WebSocketServerProtocol, serve

from ..io_support import (
    BINARY,
    CLOSE,
    PING,
    TEXT,
    TIMEOUT,
    RawPeer,
    close_payload,
    raw_client,
    raw_server,
    reset,
    upgrade_request,
)
from ..test_protocol import client_to_raw
from ._support import fast_frame, listening, serve_one

trustme = pytest.importorskip("trustme")  # a test dependency: never skipped in CI


async def vanish(peer: RawPeer, how: str) -> None:
    if how == "rst":
        await reset(peer.stream)
    else:
        await peer.stream.aclose()


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


# -- mid-message -------------------------------------------------------------------


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("cut", ["mid-frame", "mid-fragments"])
async def test_client_vanishes_mid_message(
    how: str, cut: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server delivers the whole messages, drops the partial one and
    ends with 1006; nothing is logged as an error."""
    async with serve_one() as served:
        await served.peer.send_frame(TEXT, b"whole")
        if cut == "mid-frame":
            await served.peer.send(fast_frame(BINARY, b"x" * 1000, mask=True)[:500])
        else:
            await served.peer.send_frame(TEXT, b"part", fin=False)
        await vanish(served.peer, how)
        with anyio.fail_after(TIMEOUT):
            assert await served.ws.recv() == "whole"
            with pytest.raises(ConnectionClosedError) as info:
                await served.ws.recv()
        assert info.value.code == 1006
    no_errors_logged(caplog)


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_server_vanishes_mid_message(how: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await peer.send_frame(BINARY, b"whole")
            await peer.send(fast_frame(BINARY, b"y" * 1000, mask=False)[:300])
            await vanish(peer, how)
            assert await client.recv() == b"whole"
            with pytest.raises(ConnectionClosedError) as info:
                await client.recv()
            assert info.value.code == 1006


# -- mid-handshake -----------------------------------------------------------------


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_client_vanishes_mid_handshake(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server drops the connection quietly and keeps serving."""
    async with listening() as port:
        for _ in range(3):
            async with raw_client(port, handshake=False) as peer:
                await peer.send(upgrade_request()[:40])
                await vanish(peer, how)
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("still serving")
            assert await ws.recv() == "still serving"
    no_errors_logged(caplog)


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_server_vanishes_mid_handshake(how: str) -> None:
    """``connect`` raises ``InvalidMessage`` (a FIN: the response is cut) or
    ``ConnectionError`` (a RST may come first); nothing leaks."""

    async def handler(peer: RawPeer) -> None:
        await peer.read_http()
        await peer.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgr")
        await vanish(peer, how)

    async with raw_server(handler) as port:
        with anyio.fail_after(TIMEOUT):
            with pytest.raises((InvalidMessage, ConnectionError)) as info:
                async with connect(f"ws://127.0.0.1:{port}/"):
                    pass  # pragma: no cover - the handshake fails
    if how == "fin":
        assert isinstance(info.value, InvalidMessage)


# -- mid-close ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_client_vanishes_mid_close(how: str) -> None:
    """The server's close returns well within its bound and ends with 1006:
    the close frame was sent, none came back."""
    async with serve_one(close_timeout=2) as served:
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(served.ws.close, 1001)
                frame = await served.peer.read_frame()
                assert frame.opcode == CLOSE
                await vanish(served.peer, how)
            assert served.ws.closed
            assert served.ws.close_code == 1006


async def test_server_vanishes_after_close_frame() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=2) as (client, peer):
            await peer.send_frame(CLOSE, close_payload(1000))
            await reset(peer.stream)
            await client.wait_closed()
            assert client.close_code in (1000, 1006)
            with pytest.raises(ConnectionClosed):
                await client.recv()


# -- keepalive ----------------------------------------------------------------------


async def test_half_open_connection_detected_by_keepalive() -> None:
    """A peer that is gone without a FIN (it answers nothing, reads nothing)
    is failed with 1011 once ``ping_timeout`` passes without a pong: within
    ``ping_interval + ping_timeout`` plus scheduling delays (the bound below
    adds TIMEOUT for a loaded machine)."""
    interval, timeout = 0.2, 0.3
    async with serve_one(ping_interval=interval, ping_timeout=timeout) as served:
        with anyio.fail_after(interval + timeout + TIMEOUT):
            ping = await served.peer.read_frame()
            pinged = anyio.current_time()
            assert ping.opcode == PING
            close = await served.peer.read_frame()
            assert anyio.current_time() - pinged >= timeout * 0.9
        assert (close.opcode, close.data) == (CLOSE, close_payload(1011))
        await served.peer.aclose()
        with pytest.raises(ConnectionClosedError):
            await served.ws.recv()


async def test_handler_blocking_the_loop_longer_than_ping_timeout() -> None:
    """What happens when code blocks the event loop (``time.sleep``) for
    2.5 × ``ping_timeout`` while a keepalive ping is outstanding: the pong
    waits in the socket buffer; once the loop runs again, the pong read then
    counts even though the keepalive deadline has passed, so the connection
    survives. (Only a peer that does not answer fails: see above.)"""
    ping_timeout = 0.2
    outcome: list[str] = []

    class Blocking(WebSocketServerProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.unblocked = anyio.Event()

        async def ping(self, data: Any = None) -> Any:
            waiter = await super().ping(data)
            if not self.unblocked.is_set():
                # The first keepalive ping is on the wire and nothing ran
                # since: its pong cannot have been read yet.
                time.sleep(2.5 * ping_timeout)  # noqa: ASYNC251 - the fault
                self.unblocked.set()
            return waiter

    async def handler(ws: WebSocketServerProtocol) -> None:
        assert isinstance(ws, Blocking)
        await ws.unblocked.wait()
        outcome.append(str(await ws.recv()))
        await ws.send("still open")

    async with serve(
        handler,
        "127.0.0.1",
        0,
        ping_interval=0.05,
        ping_timeout=ping_timeout,
        create_protocol=Blocking,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        with anyio.fail_after(TIMEOUT):
            async with connect(f"ws://127.0.0.1:{port}/", ping_interval=None) as ws:
                await ws.send("hello")
                assert await ws.recv() == "still open"
    assert outcome == ["hello"]


# -- closing races -------------------------------------------------------------------


async def test_peer_closes_while_handler_sends() -> None:
    """The client closes while the handler sends in a loop: the server must
    answer with its close frame before closing TCP. (Regression: before
    ``_write_lock`` used ``fast_acquire``, about half of these closes lost
    their close frame on trio; see the report of issue 7.)"""

    async def handler(ws: WebSocketServerProtocol) -> None:
        try:
            while True:
                await ws.send("x")
        except ConnectionClosed:
            pass

    stranded = 0
    async with serve(
        handler, "127.0.0.1", 0, compression=None, close_timeout=0.3
    ) as server:
        port = server.sockets[0].getsockname()[1]
        with anyio.fail_after(TIMEOUT * 3):
            for _ in range(40):
                async with raw_client(port) as peer:
                    await peer.send_frame(CLOSE, close_payload(1000))
                    opcodes = []
                    try:
                        while True:
                            opcodes.append((await peer.read_frame()).opcode)
                    except EOFError:
                        pass
                    stranded += CLOSE not in opcodes
    assert stranded == 0, f"{stranded} of 40 closes never got a close frame"


# -- TLS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> object:
    return trustme.CA()


def server_context(ca: object) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)  # type: ignore[attr-defined]
    return context


async def test_tls_garbage_and_silence_do_not_hurt_the_server(ca: object) -> None:
    """A plain-text client on a TLS port and a silent one are dropped (the
    silent one at ``open_timeout``); a real TLS client still connects."""
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)  # type: ignore[attr-defined]
    async with listening(ssl=server_context(ca), open_timeout=0.5) as port:
        async with raw_client(port, handshake=False) as plain:
            await plain.send(upgrade_request())
            await plain.expect_eof()
        async with raw_client(port, handshake=False) as silent:
            await silent.expect_eof()
        async with connect(f"wss://localhost:{port}/", ssl=client_context) as ws:
            await ws.send("over TLS")
            assert await ws.recv() == "over TLS"
        assert ws.close_code == 1000


async def test_clean_wss_close_logs_no_error(
    ca: object, caplog: pytest.LogCaptureFixture
) -> None:
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)  # type: ignore[attr-defined]
    async with listening(ssl=server_context(ca)) as port:
        async with connect(f"wss://localhost:{port}/", ssl=client_context) as ws:
            await ws.send("over TLS")
            assert await ws.recv() == "over TLS"
    no_errors_logged(caplog)


async def test_wss_to_a_plain_server_fails_cleanly() -> None:
    async with listening() as port:
        with anyio.fail_after(TIMEOUT):
            with pytest.raises((ssl.SSLError, anyio.BrokenResourceError, OSError)):
                async with connect(f"wss://localhost:{port}/"):
                    pass  # pragma: no cover - TLS fails


async def test_wss_rejects_an_untrusted_certificate_by_default(ca: object) -> None:
    """Security: without an ``ssl`` argument, ``wss://`` verifies the
    server's certificate against the system store (trustme's CA is not in
    it)."""
    async with listening(ssl=server_context(ca)) as port:
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(ssl.SSLCertVerificationError):
                async with connect(f"wss://localhost:{port}/"):
                    pass  # pragma: no cover - verification fails


async def test_wss_rejects_a_wrong_host_name(ca: object) -> None:
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)  # type: ignore[attr-defined]
    async with listening(ssl=server_context(ca)) as port:
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(ssl.SSLCertVerificationError):
                async with connect(
                    f"wss://localhost:{port}/",
                    ssl=client_context,
                    server_hostname="example.com",
                ):
                    pass  # pragma: no cover - verification fails
