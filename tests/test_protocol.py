"""The connection object (API.md (d), (g), (h)), on asyncio and trio.

Most tests run an anyws server and an anyws client over loopback TCP; the
ones where the exact bytes matter use a raw peer from ``io_support``.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anyws.client import WebSocketClientProtocol, connect
from anyws.exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
    ProtocolError,
)
from anyws.protocol import State, WebSocketCommonProtocol
from anyws.sansio.machine import State as CoreState
from anyws.server import WebSocketServerProtocol, serve

from .hardening._support import wait_until
from .io_support import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    TIMEOUT,
    RawPeer,
    build_frame,
    close_payload,
    native_stream,
    raw_client,
    raw_server,
    server_handshake,
    upgrade_request,
)


@asynccontextmanager
async def ws_pair(
    server_kwargs: dict[str, Any] | None = None, **client_kwargs: Any
) -> AsyncIterator[tuple[WebSocketServerProtocol, WebSocketClientProtocol]]:
    """An anyws server connection and the anyws client connected to it."""
    send, receive = anyio.create_memory_object_stream[WebSocketServerProtocol](1)

    async def handler(ws: WebSocketServerProtocol) -> None:
        await send.send(ws)
        await ws.wait_closed()

    with send, receive:
        async with serve(handler, "127.0.0.1", 0, **(server_kwargs or {})) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/", **client_kwargs) as client:
                server_ws = await receive.receive()
                yield server_ws, client


@asynccontextmanager
async def client_to_raw(
    **client_kwargs: Any,
) -> AsyncIterator[tuple[WebSocketClientProtocol, RawPeer]]:
    """An anyws client connected to a raw server peer (no compression)."""
    send, receive = anyio.create_memory_object_stream[RawPeer](1)
    finished = anyio.Event()

    async def handler(peer: RawPeer) -> None:
        await server_handshake(peer)
        await send.send(peer)
        await finished.wait()

    client_kwargs.setdefault("compression", None)
    with send, receive:
        async with raw_server(handler) as port:
            try:
                async with connect(
                    f"ws://127.0.0.1:{port}/", **client_kwargs
                ) as client:
                    peer = await receive.receive()
                    try:
                        yield client, peer
                    finally:
                        # A raw peer does not run the closing handshake.
                        await anyio.aclose_forcefully(peer.stream)
            finally:
                finished.set()


@asynccontextmanager
async def server_to_raw(
    **server_kwargs: Any,
) -> AsyncIterator[tuple[WebSocketServerProtocol, RawPeer]]:
    """An anyws server connection with a raw client peer (no compression)."""
    send, receive = anyio.create_memory_object_stream[WebSocketServerProtocol](1)

    async def handler(ws: WebSocketServerProtocol) -> None:
        await send.send(ws)
        await ws.wait_closed()

    server_kwargs.setdefault("compression", None)
    with send, receive:
        async with serve(handler, "127.0.0.1", 0, **server_kwargs) as server:
            port = server.sockets[0].getsockname()[1]
            async with raw_client(port) as peer:
                server_ws = await receive.receive()
                yield server_ws, peer


# -- sending and receiving ---------------------------------------------------


async def test_echo_text_and_binary() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            messages: list[str | bytes] = ["café", "", b"\x00\xff", b""]
            for message in messages:
                await client.send(message)
                assert await server.recv() == message
                await server.send(message)
                assert await client.recv() == message


async def test_send_bytes_like() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            await client.send(bytearray(b"abc"))
            assert await server.recv() == b"abc"
            await client.send(memoryview(b"abcdef"))
            assert await server.recv() == b"abcdef"
            # A non-contiguous view is sent in logical order.
            await client.send(memoryview(b"abcdef")[::2])
            assert await server.recv() == b"ace"


@pytest.mark.parametrize("message", [{"a": "b"}, 42, None, 1.5])
async def test_send_unsupported_type(message: Any) -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            with pytest.raises(TypeError):
                await client.send(message)
            # Nothing was sent and the connection still works.
            await client.send("next")
            assert await server.recv() == "next"


async def test_fragmented_send_exact_frames() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await client.send(["ca", "fé"])
            assert await peer.read_frame() == (False, TEXT, b"ca", False)
            assert await peer.read_frame() == (False, CONT, "fé".encode(), False)
            assert await peer.read_frame() == (True, CONT, b"", False)

            async def chunks() -> AsyncIterator[bytes | bytearray | memoryview]:
                yield b"\x01"
                yield bytearray(b"\x02")
                yield memoryview(b"\x03")

            await client.send(chunks())
            assert await peer.read_frame() == (False, BINARY, b"\x01", False)
            assert await peer.read_frame() == (False, CONT, b"\x02", False)
            assert await peer.read_frame() == (False, CONT, b"\x03", False)
            assert await peer.read_frame() == (True, CONT, b"", False)


async def test_fragmented_send_is_received_whole() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            await client.send(["ca", "f", "é"])
            assert await server.recv() == "café"

            async def chunks() -> AsyncIterator[bytes]:
                for byte in b"spam":
                    yield bytes([byte])

            await server.send(chunks())
            assert await client.recv() == b"spam"


async def test_fragmented_send_empty_iterable_sends_nothing() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):

            async def nothing() -> AsyncIterator[str]:
                return
                yield  # pragma: no cover

            await client.send([])
            await client.send(nothing())
            await client.send("after")
            assert await peer.read_frame() == (True, TEXT, b"after", False)


async def test_fragmented_send_bad_first_item_sends_nothing() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            with pytest.raises(TypeError):
                await client.send([42])  # type: ignore[list-item]
            await client.send("after")
            assert await peer.read_frame() == (True, TEXT, b"after", False)


@pytest.mark.parametrize("items", [["a", b"b"], [b"a", "b"], ["a", 42]])
async def test_fragmented_send_inconsistent_types_fails_1011(items: list[Any]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=1) as (client, peer):
            with pytest.raises(TypeError, match="data contains inconsistent types"):
                await client.send(items)
            text = isinstance(items[0], str)
            expected = items[0].encode() if text else items[0]
            opcode = TEXT if text else BINARY
            assert await peer.read_frame() == (False, opcode, expected, False)
            assert await peer.read_frame() == (True, CLOSE, close_payload(1011), False)
            await peer.aclose()
            await client.wait_closed()
            assert client.close_code == 1006
            with pytest.raises(ConnectionClosedError):
                await client.send("too late")


async def test_fragmented_send_iterator_error_fails_1011() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=1) as (client, peer):

            async def broken() -> AsyncIterator[str]:
                yield "a"
                raise ZeroDivisionError

            with pytest.raises(ZeroDivisionError):
                await client.send(broken())
            assert await peer.read_frame() == (False, TEXT, b"a", False)
            assert await peer.read_frame() == (True, CLOSE, close_payload(1011), False)


async def test_fragmented_send_blocks_other_sends() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            release = anyio.Event()
            started = anyio.Event()

            async def slow() -> AsyncIterator[str]:
                yield "a"
                started.set()
                await release.wait()
                yield "b"

            async with anyio.create_task_group() as task_group:
                task_group.start_soon(client.send, slow())
                await started.wait()
                task_group.start_soon(client.send, "whole")
                # A ping may go out between fragments; a message may not.
                await client.ping(b"between")
                assert await peer.read_frame() == (False, TEXT, b"a", False)
                assert await peer.read_frame() == (True, PING, b"between", False)
                release.set()
            assert await peer.read_frame() == (False, CONT, b"b", False)
            assert await peer.read_frame() == (True, CONT, b"", False)
            assert await peer.read_frame() == (True, TEXT, b"whole", False)


async def test_recv_fragmented_message_from_raw_peer() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await peer.send_frame(TEXT, b"ca", fin=False)
            await peer.send_frame(PING, b"in between")
            await peer.send_frame(CONT, "fé".encode(), fin=True)
            assert await client.recv() == "café"
            # The ping in the middle was answered.
            assert await peer.read_frame() == (True, PONG, b"in between", False)


async def test_recv_concurrently_raises_concurrency_error() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(client.recv)
                await anyio.wait_all_tasks_blocked()
                with pytest.raises(ConcurrencyError) as exc_info:
                    await client.recv()
                assert isinstance(exc_info.value, RuntimeError)
                assert str(exc_info.value) == (
                    "cannot call recv while another coroutine is already "
                    "waiting for the next message"
                )
                # The first recv keeps waiting and gets the message.
                await server.send("first")
            # (the first recv returned, so the task group could exit)


async def test_recv_cancellation_loses_nothing() -> None:
    count = 200
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            received: list[str | bytes] = []

            async def producer() -> None:
                for i in range(count):
                    await server.send(str(i))
                    if i % 7 == 0:
                        await anyio.lowlevel.checkpoint()

            async with anyio.create_task_group() as task_group:
                task_group.start_soon(producer)
                while len(received) < count:
                    # Tiny timeouts: many recv calls are cancelled, some at
                    # the very moment a message arrives.
                    with anyio.move_on_after(0.0005 * (len(received) % 3)):
                        received.append(await client.recv())
            assert received == [str(i) for i in range(count)]


async def test_recv_cancelled_then_message_goes_to_next_recv() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            with anyio.move_on_after(0.01) as scope:
                await client.recv()
            assert scope.cancelled_caught
            await server.send("kept")
            assert await client.recv() == "kept"


async def test_messages_stay_readable_after_close() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            await server.send("one")
            await server.send("two")
            await server.close(1001, "bye")
            await client.wait_closed()
            assert client.closed
            assert await client.recv() == "one"
            assert await client.recv() == "two"
            with pytest.raises(ConnectionClosedOK) as exc_info:
                await client.recv()
            assert (exc_info.value.code, exc_info.value.reason) == (1001, "bye")


async def test_legacy_recv_returns_none() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair(legacy_recv=True) as (server, client):
            await server.close()
            assert await client.recv() is None
            assert client.legacy_recv is True


@pytest.mark.parametrize("code", [1000, 1001, None])
async def test_async_for_ends_silently_on_normal_closure(code: int | None) -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await peer.send_frame(TEXT, b"a")
            await peer.send_frame(TEXT, b"b")
            payload = b"" if code is None else close_payload(code)
            await peer.send_frame(CLOSE, payload)
            await peer.aclose()  # a server closes TCP first
            messages = [message async for message in client]
            assert messages == ["a", "b"]
            assert client.close_code == (1005 if code is None else code)


@pytest.mark.parametrize("code", [1011, 4000])
async def test_async_for_raises_on_error_closure(code: int) -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await peer.send_frame(TEXT, b"a")
            await peer.send_frame(CLOSE, close_payload(code, "oops"))
            await peer.aclose()
            messages = []
            with pytest.raises(ConnectionClosedError) as exc_info:
                async for message in client:
                    messages.append(message)
            assert messages == ["a"]
            assert exc_info.value.code == code
            assert exc_info.value.reason == "oops"


async def test_max_size_fails_with_1009() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(max_size=10) as (client, peer):
            await peer.send_frame(BINARY, b"x" * 10)
            assert await client.recv() == b"x" * 10
            await peer.send_frame(BINARY, b"x" * 11)
            assert await peer.read_frame() == (True, CLOSE, close_payload(1009), False)
            await peer.aclose()
            with pytest.raises(ConnectionClosedError) as exc_info:
                await client.recv()
            assert exc_info.value.code == 1006
            assert exc_info.value.sent.code == 1009
            assert exc_info.value.__cause__ is not None


async def test_max_size_can_change_on_a_live_connection() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            client.max_size = 4
            assert client.max_size == 4
            await server.send(b"12345")
            with pytest.raises(ConnectionClosedError):
                await client.recv()
            await server.wait_closed()
            assert server.close_code == 1009


async def test_protocol_error_from_peer_fails_1002() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await peer.send_frame(CONT, b"no start")
            assert await peer.read_frame() == (True, CLOSE, close_payload(1002), False)
            await peer.aclose()
            with pytest.raises(ConnectionClosedError) as exc_info:
                await client.recv()
            assert isinstance(exc_info.value.__cause__, ProtocolError)


async def test_invalid_utf8_fails_1007() -> None:
    with anyio.fail_after(TIMEOUT):
        async with server_to_raw() as (server, peer):
            await peer.send_frame(TEXT, b"\xff")
            assert await peer.read_frame() == (True, CLOSE, close_payload(1007), False)
            assert await peer.expect_eof() == b""  # the server closes TCP first
            await peer.aclose()
            await server.wait_closed()
            assert server.close_code == 1006


async def test_transport_lost_gives_1006() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await peer.send_frame(TEXT, b"last")
            await peer.aclose()
            assert await client.recv() == "last"
            with pytest.raises(ConnectionClosedError) as exc_info:
                await client.recv()
            assert exc_info.value.code == 1006
            assert client.close_code == 1006
            assert client.close_reason == ""
            with pytest.raises(ConnectionClosedError):
                await client.send("x")
            with pytest.raises(ConnectionClosedError):
                await client.ping()
            with pytest.raises(ConnectionClosedError):
                await client.pong()


# -- pings and pongs ---------------------------------------------------------


async def test_ping_waiter_completes() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            waiter = await client.ping()
            await waiter
            waiter = await server.ping("text payload")
            await waiter
            await (await client.ping(bytearray(b"bytes")))


async def test_ping_payloads_on_the_wire() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await client.ping()
            frame = await peer.read_frame()
            assert frame.opcode == PING and len(frame.data) == 4
            await client.ping("é")
            assert await peer.read_frame() == (True, PING, "é".encode(), False)
            await client.ping(memoryview(b"mv"))
            assert await peer.read_frame() == (True, PING, b"mv", False)


async def test_ping_errors() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            with pytest.raises(TypeError):
                await client.ping(42)  # type: ignore[arg-type]
            await client.ping(b"same")
            with pytest.raises(ValueError, match="already waiting for a pong"):
                await client.ping(b"same")
            assert await peer.read_frame() == (True, PING, b"same", False)


async def test_pong_acknowledges_earlier_pings() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            first = await client.ping(b"1")
            second = await client.ping(b"2")
            third = await client.ping(b"3")
            for _ in range(3):
                await peer.read_frame()
            await peer.send_frame(PONG, b"2")
            await first
            await second
            assert not third.done()  # type: ignore[attr-defined]
            # An unsolicited pong is ignored.
            await peer.send_frame(PONG, b"nobody")
            await peer.send_frame(PONG, b"3")
            await third


async def test_ping_waiters_fail_at_close() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            waiter = await client.ping(b"never answered")
            await peer.send_frame(CLOSE, close_payload(1001))
            await peer.aclose()
            with pytest.raises(ConnectionClosedOK) as exc_info:
                await waiter
            assert exc_info.value.code == 1001
            # Awaiting again raises again.
            with pytest.raises(ConnectionClosedOK):
                await waiter


async def test_cancelling_a_ping_wait_affects_nothing_else() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            waiter = await client.ping(b"p")
            with anyio.move_on_after(0.01):
                await waiter
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(waiter.wait)  # type: ignore[attr-defined]
                await peer.read_frame()
                await peer.send_frame(PONG, b"p")
            await waiter
            await client.send("still open")
            assert (await peer.read_frame()).data == b"still open"


async def test_unsolicited_pong() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await client.pong()
            assert await peer.read_frame() == (True, PONG, b"", False)
            await client.pong("hb")
            assert await peer.read_frame() == (True, PONG, b"hb", False)
            with pytest.raises(TypeError):
                await client.pong(None)  # type: ignore[arg-type]


async def test_pings_are_answered_without_recv() -> None:
    with anyio.fail_after(TIMEOUT):
        async with server_to_raw() as (server, peer):
            await peer.send_frame(PING, b"hello")
            assert await peer.read_frame() == (True, PONG, b"hello", False)


# -- closing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"), [(1000, ""), (1001, "going"), (4000, "custom"), (1012, "")]
)
async def test_close_code_and_reason_both_ways(code: int, reason: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            await client.close(code, reason)
            assert client.closed and client.state is State.CLOSED
            assert (client.close_code, client.close_reason) == (code, reason)
            await server.wait_closed()
            assert (server.close_code, server.close_reason) == (code, reason)
        async with ws_pair() as (server, client):
            await server.close(code, reason)
            await client.wait_closed()
            assert (client.close_code, client.close_reason) == (code, reason)
            assert (server.close_code, server.close_reason) == (code, reason)


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2000, 5000])
async def test_close_invalid_code_raises_before_sending(code: int) -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            with pytest.raises(ProtocolError, match="invalid status code"):
                await client.close(code)
            await client.send("still open")
            assert (await peer.read_frame()).data == b"still open"


async def test_close_reason_too_long() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            with pytest.raises(ProtocolError):
                await client.close(1000, "x" * 124)
            assert client.open


async def test_close_is_idempotent() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):

            async def answer() -> None:
                frame = await peer.read_frame()
                await peer.send_frame(CLOSE, frame.data)
                await peer.aclose()

            async with anyio.create_task_group() as task_group:
                task_group.start_soon(answer)
                task_group.start_soon(client.close)
                task_group.start_soon(client.close)
            await client.close()
            assert client.close_code == 1000


async def test_simultaneous_close() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(client.close, 1000, "client")
                task_group.start_soon(server.close, 1001, "server")
            # Each side ends with a close code of the other side (or its own
            # echo when its frame arrived first).
            assert client.close_code in (1000, 1001)
            assert server.close_code in (1000, 1001)


async def test_close_frame_echoed_byte_for_byte() -> None:
    with anyio.fail_after(TIMEOUT):
        async with server_to_raw() as (server, peer):
            await peer.send_frame(CLOSE, b"")
            assert await peer.read_frame() == (True, CLOSE, b"", False)
            assert await peer.expect_eof() == b""
            await peer.aclose()
            await server.wait_closed()
            assert server.close_code == 1005
            with pytest.raises(ConnectionClosedOK):
                await server.recv()


async def test_server_closes_tcp_first_client_waits() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=5) as (client, peer):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(client.close)
                assert await peer.read_frame() == (
                    True,
                    CLOSE,
                    close_payload(1000),
                    False,
                )
                await peer.send_frame(CLOSE, close_payload(1000))
                # The client does not close TCP before the server: it waits.
                await anyio.wait_all_tasks_blocked()
                assert not client.closed
                await peer.aclose()
            assert client.close_code == 1000


async def test_close_while_receiving_fragments_drops_partial_message() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await peer.send_frame(TEXT, b"part", fin=False)
            await peer.send_frame(CLOSE, close_payload(1000))
            await peer.aclose()
            with pytest.raises(ConnectionClosedOK):
                await client.recv()


async def test_send_while_closing_waits_then_raises() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=5) as (client, peer):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(client.close)
                await peer.read_frame()
                assert client.state is State.CLOSING
                assert not client.open and not client.closed

                async def answer_later() -> None:
                    await anyio.wait_all_tasks_blocked()
                    await peer.send_frame(CLOSE, close_payload(1000))
                    await peer.aclose()

                task_group.start_soon(answer_later)
                with pytest.raises(ConnectionClosedOK):
                    await client.send("late")
                assert client.closed


async def test_wait_closed_never_raises() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await peer.aclose()
            await client.wait_closed()
            await client.wait_closed()


# -- close timeouts against silent peers ---------------------------------------


async def test_client_close_timeout_against_silent_server() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=0.2) as (client, peer):
            start = anyio.current_time()
            await client.close()
            # Bounded by 5 × close_timeout (generous margin for slow CI).
            assert anyio.current_time() - start < 5 * 0.2 + 2
            assert client.close_code == 1006
            assert (await peer.read_frame()).opcode == CLOSE


async def test_server_close_timeout_against_silent_client() -> None:
    with anyio.fail_after(TIMEOUT):
        async with server_to_raw(close_timeout=0.2) as (server, peer):
            start = anyio.current_time()
            await server.close()
            assert anyio.current_time() - start < 4 * 0.2 + 2
            assert server.close_code == 1006
            assert (await peer.read_frame()).opcode == CLOSE
            assert await peer.expect_eof() == b""


async def test_client_close_against_peer_that_answers_but_keeps_tcp_open() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=0.2) as (client, peer):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(client.close, 4001)
                frame = await peer.read_frame()
                await peer.send_frame(CLOSE, frame.data)
            # The peer never closed TCP: the client gave up waiting.
            assert client.close_code == 4001


async def test_leaving_connect_block_against_silent_server_is_bounded() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=0.2) as (client, peer):
            pass
        assert client.closed


async def test_cancelling_around_connect_closes_promptly() -> None:
    with anyio.fail_after(TIMEOUT):
        done = anyio.Event()

        async def handler(peer: RawPeer) -> None:
            await server_handshake(peer)
            frame = await peer.read_frame()  # the close frame
            assert frame.opcode == CLOSE
            assert await peer.expect_eof() == b""
            done.set()

        async with raw_server(handler) as port:
            with anyio.move_on_after(0.1):
                async with connect(
                    f"ws://127.0.0.1:{port}/", close_timeout=0.5, compression=None
                ) as client:
                    await client.recv()
            assert client.closed
            await done.wait()


# -- keepalive ---------------------------------------------------------------


async def test_keepalive_pings_and_survives_with_a_live_peer() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair(ping_interval=0.02, ping_timeout=1) as (server, client):
            with anyio.move_on_after(0.3):
                await client.recv()
            assert client.open


async def test_keepalive_timeout_fails_with_1011() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(ping_interval=0.05, ping_timeout=0.05) as (
            client,
            peer,
        ):
            frame = await peer.read_frame()
            assert frame.opcode == PING
            assert await peer.read_frame() == (True, CLOSE, close_payload(1011), False)
            await peer.aclose()
            with pytest.raises(ConnectionClosedError) as exc_info:
                await client.recv()
            assert exc_info.value.code == 1006
            assert client.close_code == 1006


async def test_keepalive_without_timeout_sends_pings() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(ping_interval=0.01, ping_timeout=None) as (
            client,
            peer,
        ):
            payloads = {(await peer.read_frame()).data for _ in range(3)}
            assert len(payloads) == 3
            assert client.open


async def test_no_keepalive() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(ping_interval=None) as (client, peer):
            await client.send("first frame")
            assert (await peer.read_frame()).opcode == TEXT


# -- flow control --------------------------------------------------------------


async def test_backpressure_max_queue_stops_reading_and_blocks_sender() -> None:
    """With max_queue=1 and nobody calling recv, the server stops reading, so
    the client's sends block (a slow reader never grows memory)."""
    message = b"x" * 2**20
    total = 64  # 64 MiB cannot fit in the kernel buffers of loopback
    with anyio.fail_after(TIMEOUT * 2):
        async with ws_pair(
            server_kwargs={"max_queue": 1, "compression": None},
            compression=None,
        ) as (server, client):
            sent = 0
            with anyio.move_on_after(1):
                for _ in range(total):
                    await client.send(message)
                    sent += 1
            assert sent < total
            # The reader resumes when recv takes messages: all arrive in order.
            for _ in range(sent):
                assert await server.recv() == message


async def test_max_queue_none_is_unbounded() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair(server_kwargs={"max_queue": None}) as (server, client):
            for i in range(100):
                await client.send(str(i))
            await client.ping()  # a pong proves the reader kept up
            for i in range(100):
                assert await server.recv() == str(i)


async def test_small_read_and_write_limits() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair(
            server_kwargs={"read_limit": 256, "write_limit": 5},
            read_limit=256,
            write_limit=5,
        ) as (server, client):
            # read_limit also bounds handshake lines (read_limit // 2, as in
            # websockets 8.1), hence 256 rather than a tiny value.
            for size in [0, 1, 200, 70000]:
                await client.send(b"y" * size)
                assert await server.recv() == b"y" * size


# -- attributes ------------------------------------------------------------------


async def test_attributes() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair(server_kwargs={"close_timeout": 3}) as (server, client):
            assert client.is_client and client.side == "client"
            assert not server.is_client and server.side == "server"
            assert client.open and not client.closed and client.state is State.OPEN
            assert State is CoreState
            assert client.close_code is None and client.close_reason is None
            assert client.local_address == server.remote_address
            assert client.remote_address == server.local_address
            assert client.path == server.path == "/"
            assert client.request_headers == server.request_headers
            assert client.response_headers == server.response_headers
            assert client.subprotocol is None and server.subprotocol is None
            assert server.close_timeout == 3 and client.close_timeout == 10
            assert client.ping_interval == 20 and client.ping_timeout == 20
            assert client.max_queue == 32 and client.max_size == 2**20
            assert client.read_limit == 2**16 and client.write_limit == 2**16
            assert client.legacy_recv is False
            assert client.origin is None and server.origin is None


async def test_deprecated_host_port_secure() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            port = client.remote_address[1]
            with pytest.warns(DeprecationWarning, match=r"remote_address\[0\]"):
                assert client.host == "127.0.0.1"
            with pytest.warns(DeprecationWarning, match=r"remote_address\[1\]"):
                assert client.port == port
            with pytest.warns(DeprecationWarning, match="don't use secure"):
                assert client.secure is False
            with pytest.warns(DeprecationWarning, match=r"local_address\[0\]"):
                assert server.host == "127.0.0.1"
            with pytest.warns(DeprecationWarning, match=r"local_address\[1\]"):
                assert server.port == 0
            with pytest.warns(DeprecationWarning, match="don't use secure"):
                assert server.secure is False


def test_constructor_arguments() -> None:
    with pytest.warns(DeprecationWarning, match="rename timeout to close_timeout"):
        protocol = WebSocketClientProtocol(timeout=3)
    assert protocol.close_timeout == 3
    with pytest.warns(DeprecationWarning, match="remove loop argument"):
        WebSocketClientProtocol(loop=object())
    assert WebSocketClientProtocol(timeout=None, close_timeout=4).close_timeout == 4
    with pytest.raises(ValueError):
        WebSocketClientProtocol(max_queue=0)
    with pytest.raises(ValueError):
        WebSocketClientProtocol(read_limit=0)
    with pytest.raises(ValueError):
        WebSocketClientProtocol(write_limit=0)
    protocol = WebSocketClientProtocol()
    assert protocol.local_address is None and protocol.remote_address is None
    assert protocol.state is State.CONNECTING
    assert isinstance(protocol, WebSocketCommonProtocol)


async def test_operations_before_the_handshake() -> None:
    protocol = WebSocketClientProtocol()
    with pytest.raises(InvalidState):
        await protocol.send("x")
    await protocol.close()  # no stream yet: nothing to do


async def test_no_log_above_debug_in_a_normal_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="anyws")
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            await client.send("hi")
            await server.recv()
            await (await client.ping())
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []
    messages = [r.getMessage() for r in caplog.records]
    assert "client x closing TCP connection" in messages
    assert "server x half-closing TCP connection" in messages
    assert any(m.startswith("client > ") for m in messages)


async def test_close_exception_carries_frames() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            await server.close(4002, "why")
            with pytest.raises(ConnectionClosed) as exc_info:
                await client.recv()
            exc = exc_info.value
            assert (exc.rcvd.code, exc.rcvd.reason) == (4002, "why")
            assert (exc.sent.code, exc.sent.reason) == (4002, "why")
            assert str(exc) == "code = 4002 (private use), reason = why"


def test_close_payload_helper() -> None:
    assert close_payload(1000, "a") == struct.pack("!H", 1000) + b"a"


# -- rarer paths -------------------------------------------------------------------


async def test_close_when_the_write_buffer_never_drains() -> None:
    """(g): the close frame cannot be written within close_timeout."""
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=0.2) as (client, peer):
            outcome: list[BaseException] = []

            async def flood() -> None:
                try:
                    while True:
                        await client.send(b"x" * 2**20)
                except ConnectionClosed as exc:
                    outcome.append(exc)

            async with anyio.create_task_group() as task_group:
                task_group.start_soon(flood)
                # Until the kernel buffers are full (the peer never reads).
                await anyio.wait_all_tasks_blocked()
                start = anyio.current_time()
                await client.close()
                assert anyio.current_time() - start < 5 * 0.2 + 2
            assert client.close_code == 1006
            assert isinstance(outcome[0], ConnectionClosedError)


async def test_sends_waiting_for_the_lock_fail_when_the_connection_drops() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=0.2) as (client, peer):
            results: list[str] = []

            async def send(message: bytes) -> None:
                try:
                    await client.send(message)
                except ConnectionClosedError:
                    results.append("closed")
                else:
                    results.append("sent")

            async with anyio.create_task_group() as task_group:
                task_group.start_soon(send, b"x" * 2**26)  # blocks: nobody reads
                await anyio.wait_all_tasks_blocked()
                task_group.start_soon(send, b"small")  # waits for the lock
                await anyio.wait_all_tasks_blocked()
                await peer.aclose()  # unread data: the peer resets
            assert results[-1] == "closed"
            assert client.closed and client.close_code == 1006


async def test_close_does_not_wait_behind_backpressure() -> None:
    """A full queue stops reading, but not the closing handshake."""
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(max_queue=1, close_timeout=5) as (client, peer):
            for i in range(3):
                await peer.send_frame(TEXT, str(i).encode())
            await client.ping(b"sync")  # answered once the reader reads again
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(client.close)
                while (frame := await peer.read_frame()).opcode != CLOSE:
                    pass
                await peer.send_frame(CLOSE, frame.data)
                await peer.aclose()
            assert client.close_code == 1000  # the peer's frame was read
            # Messages received before the close are still there.
            assert [await client.recv() for _ in range(3)] == ["0", "1", "2"]


async def test_fragmented_send_stops_when_the_connection_closes() -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):

            async def fragments() -> AsyncIterator[str]:
                yield "a"
                await peer.send_frame(CLOSE, close_payload(1001))
                await peer.aclose()
                await client.wait_closed()
                yield "b"

            with pytest.raises(ConnectionClosedOK):
                await client.send(fragments())


async def test_keepalive_unexpected_error_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pinged = anyio.Event()

    class Protocol(WebSocketClientProtocol):
        async def ping(self, data: Any = None) -> Any:
            pinged.set()
            raise RuntimeError("broken ping")

    with anyio.fail_after(TIMEOUT):
        async with ws_pair(ping_interval=0.01, create_protocol=Protocol) as (
            server,
            client,
        ):
            await pinged.wait()
            await anyio.wait_all_tasks_blocked()  # the keepalive task logs
            assert client.open  # keepalive stopped; the connection did not
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage() == "Unexpected exception in keepalive ping task"


async def test_legacy_recv_async_for_stops() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair(legacy_recv=True) as (server, client):
            await server.send("one")
            await server.close(1011)
            assert [message async for message in client] == ["one"]


async def test_fragmented_send_from_an_async_iterator_class() -> None:
    class Chunks:
        def __init__(self) -> None:
            self.items = [b"1", b"2"]

        def __aiter__(self) -> Chunks:
            return self

        async def __anext__(self) -> bytes:
            if not self.items:
                raise StopAsyncIteration
            return self.items.pop(0)

    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            await client.send(Chunks())
            assert await server.recv() == b"12"


async def test_keepalive_ends_quietly_when_the_connection_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(ping_interval=0.01, ping_timeout=5) as (
            client,
            peer,
        ):
            assert (await peer.read_frame()).opcode == PING  # never answered
            await peer.aclose()
            await client.wait_closed()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_server_close_against_client_that_never_closes_tcp() -> None:
    """(g): the server closes TCP first, after waiting close_timeout for the
    client, even if the client answers the close frame and then idles."""
    with anyio.fail_after(TIMEOUT):
        async with server_to_raw(close_timeout=0.2) as (server, peer):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(server.close, 4003, "bye")
                frame = await peer.read_frame()
                assert frame == (True, CLOSE, close_payload(4003, "bye"), False)
                await peer.send_frame(CLOSE, frame.data)
                assert await peer.expect_eof() == b""  # the server half-closed
            assert (server.close_code, server.close_reason) == (4003, "bye")


async def test_a_send_in_a_cancelled_scope_writes_nothing() -> None:
    """A send checks for cancellation before it writes: in a cancelled scope
    it raises and nothing goes out; a shield inside lets it through, and a
    cancelled shielded scope stops it again."""
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            with anyio.CancelScope() as outer:
                outer.cancel()
                await client.send("never")
                pytest.fail("the send did not raise")  # pragma: no cover
            assert outer.cancelled_caught
            with anyio.CancelScope() as outer:
                outer.cancel()
                with anyio.CancelScope(shield=True):
                    await client.send("shielded")
            with anyio.CancelScope(shield=True) as shielded:
                shielded.cancel()
                await client.send("never either")
                pytest.fail("the send did not raise")  # pragma: no cover
            assert shielded.cancelled_caught
            await client.send("after")
            assert await peer.read_frame() == (True, TEXT, b"shielded", False)
            assert await peer.read_frame() == (True, TEXT, b"after", False)
            assert client.open


async def test_cancelling_a_blocked_send_aborts_the_connection(
    anyio_backend: str,
) -> None:
    """A frame may be half written when a send is cancelled: the connection
    cannot be used any more, so it is aborted (1006). anyws's own asyncio
    stream writes a frame whole before it waits: there, the connection stays
    open and the frame arrives whole."""
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=0.2) as (client, peer):
            big = b"x" * 2**26
            with anyio.move_on_after(0.2) as scope:
                await client.send(big)  # nobody reads: it blocks
            assert scope.cancelled_caught
            if native_stream(anyio_backend):
                assert client.open
                async with anyio.create_task_group() as task_group:
                    # Waits until the peer read most of the big frame.
                    task_group.start_soon(client.send, "after")
                    frame = await peer.read_frame(unmask=False)
                    assert (frame.fin, frame.opcode, len(frame.data)) == (
                        True,
                        BINARY,
                        len(big),
                    )
                    assert await peer.read_frame() == (True, TEXT, b"after", False)
                return
            await client.wait_closed()
            assert client.close_code == 1006
            with pytest.raises(ConnectionClosedError):
                await client.send("after")


@pytest.mark.parametrize("write_limit", [2**16, 1])
async def test_pong_queued_while_a_send_waits_goes_out_after_it(
    write_limit: int,
) -> None:
    """The reader leaves its pong to the task holding the write lock (here, a
    big send that waits for the peer to read); that task writes it as soon
    as its own frame is out. With more pending than ``write_limit``, the
    reader waits for the lock instead (and stops reading meanwhile)."""
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(write_limit=write_limit) as (client, peer):
            big = b"x" * 2**24
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(client.send, big)
                await wait_until(lambda: client._write_lock.locked())
                await peer.send_frame(PING, b"p")
                await wait_until(lambda: bool(client._outbox))  # pong left
                frame = await peer.read_frame(unmask=False)
                assert (frame.opcode, len(frame.data)) == (BINARY, len(big))
                assert await peer.read_frame() == (True, PONG, b"p", False)


async def test_send_cancelled_before_it_starts_changes_nothing() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (server, client):
            with anyio.CancelScope() as scope:
                scope.cancel()
                await client.send("never")
            await client.send("kept")
            assert await server.recv() == "kept"


# -- the reader task, started when needed on the own asyncio stream ---------------


def _task_names(anyio_backend: str) -> set[str]:
    """The names of the tasks alive now."""
    if anyio_backend == "asyncio":
        import asyncio

        return {task.get_name() for task in asyncio.all_tasks()}
    else:
        import trio

        names: set[str] = set()
        root = trio.lowlevel.current_root_task()
        assert root is not None
        pending = [root]
        while pending:
            task = pending.pop()
            names.add(task.name)
            for nursery in task.child_nurseries:
                pending.extend(nursery.child_tasks)
        return names


def _has_reader(anyio_backend: str, side: str) -> bool:
    names = _task_names(anyio_backend)
    return any(name.endswith(f"anyws {side} reader") for name in names)


async def test_no_reader_task_until_one_is_needed(anyio_backend: str) -> None:
    """On anyws's own asyncio stream, messages, pings and pongs are handled
    without a reader task; the peer's close frame starts one, which runs the
    closing handshake. Other streams have one from the start."""
    lazy = native_stream(anyio_backend)
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await peer.send_frame(TEXT, b"hello")
            assert await client.recv() == "hello"
            await peer.send_frame(PING, b"p")  # answered with no task
            assert await peer.read_frame() == (True, PONG, b"p", False)
            waiter = await client.ping(b"q")
            assert await peer.read_frame() == (True, PING, b"q", False)
            await peer.send_frame(PONG, b"q")
            await waiter
            await client.send(b"out")
            assert await peer.read_frame() == (True, BINARY, b"out", False)
            assert client.open
            assert _has_reader(anyio_backend, "client") is not lazy
            await peer.send_frame(CLOSE, close_payload(1000, "bye"))
            assert await peer.read_frame() == (
                True,
                CLOSE,
                close_payload(1000, "bye"),
                False,
            )
            await peer.aclose()
            await client.wait_closed()
            assert (client.close_code, client.close_reason) == (1000, "bye")


def _has_keepalive(anyio_backend: str, side: str) -> bool:
    names = _task_names(anyio_backend)
    return any(name.endswith(f"anyws {side} keepalive") for name in names)


async def test_keepalive_between_pings_needs_no_task(anyio_backend: str) -> None:
    """On anyws's own asyncio stream, keepalive waits on timers of the loop: a
    task runs only while a ping is written. Other streams keep a keepalive
    task. Either way: ping, pong, and the next ping an interval later."""
    lazy = native_stream(anyio_backend)
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(ping_interval=0.05, ping_timeout=5) as (
            client,
            peer,
        ):
            first = await peer.read_frame()
            assert first.opcode == PING
            await peer.send_frame(PONG, first.data)
            second = await peer.read_frame()  # after the pong, a new interval
            assert second.opcode == PING and second.data != first.data
            await anyio.wait_all_tasks_blocked()
            assert _has_keepalive(anyio_backend, "client") is not lazy
            await peer.send_frame(PONG, second.data)
            assert (await peer.read_frame()).opcode == PING
            assert client.open


async def test_server_keepalive_runs_on_the_pool_timers(anyio_backend: str) -> None:
    """A server's connections ping on timers of the server's task pool, on
    every backend and stream: no keepalive task between pings."""
    with anyio.fail_after(TIMEOUT):
        async with server_to_raw(ping_interval=0.05, ping_timeout=5) as (
            server,
            peer,
        ):
            for _ in range(3):
                frame = await peer.read_frame()
                assert frame.opcode == PING
                await peer.send_frame(PONG, frame.data)
            await anyio.wait_all_tasks_blocked()
            assert not _has_keepalive(anyio_backend, "server")
            assert server.open


async def test_server_keepalive_timeout_fails_with_1011() -> None:
    with anyio.fail_after(TIMEOUT):
        async with server_to_raw(ping_interval=0.05, ping_timeout=0.05) as (
            server,
            peer,
        ):
            assert (await peer.read_frame()).opcode == PING  # never answered
            assert await peer.read_frame() == (True, CLOSE, close_payload(1011), False)
            assert await peer.expect_eof() == b""  # failed: no closing handshake
            await peer.aclose()
            await server.wait_closed()
            assert server.close_code == 1006


async def test_frames_sent_with_the_handshake_request_are_read() -> None:
    """A client may send frames right behind its request: the server sees the
    message and answers the ping, whichever way it reads."""
    with anyio.fail_after(TIMEOUT):
        received = anyio.Event()
        messages: list[str | bytes] = []

        async def handler(ws: WebSocketServerProtocol) -> None:
            messages.append(await ws.recv())
            received.set()
            await ws.wait_closed()

        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with raw_client(port, handshake=False) as peer:
                await peer.send(
                    upgrade_request()
                    + build_frame(TEXT, b"early", mask=True)
                    + build_frame(PING, b"p", mask=True)
                )
                status_line, _, _ = await peer.read_http()
                assert status_line.startswith("HTTP/1.1 101 ")
                assert await peer.read_frame() == (True, PONG, b"p", False)
                await received.wait()
                assert messages == ["early"]
                await peer.send_frame(CLOSE, close_payload(1000))
                assert (await peer.read_frame()).opcode == CLOSE


async def test_peer_gone_while_no_reader_runs() -> None:
    """EOF on an idle connection (no close frame) starts the teardown."""
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw() as (client, peer):
            await peer.send_frame(TEXT, b"last")
            await peer.aclose()
            await client.wait_closed()
            assert client.close_code == 1006
            assert await client.recv() == "last"  # nothing is lost
            with pytest.raises(ConnectionClosedError):
                await client.recv()


def _reader_starts(caplog: pytest.LogCaptureFixture, side: str) -> int:
    """How many times a reader task was started late for ``side``."""
    message = f"{side} - starting the reader task"
    return sum(record.getMessage() == message for record in caplog.records)


@pytest.mark.parametrize("closer", ["client", "server"])
async def test_closing_handshake_needs_no_reader_task(
    caplog: pytest.LogCaptureFixture, closer: str
) -> None:
    """A normal closing handshake, started by either side, completes without
    starting a reader task on anyws's asyncio stream (on other streams, the
    reader runs from the start and never starts late)."""
    caplog.set_level(logging.DEBUG, logger="anyws")
    with anyio.fail_after(TIMEOUT):
        async with ws_pair(compression=None) as (server, client):
            await client.send("before")
            assert await server.recv() == "before"
            await (server if closer == "server" else client).close(4000, "done")
            await server.wait_closed()
            await client.wait_closed()
    assert (server.close_code, client.close_code) == (4000, 4000)
    assert client.close_reason == server.close_reason == "done"
    assert _reader_starts(caplog, "client") == _reader_starts(caplog, "server") == 0


async def test_close_timeout_without_a_reader_task_starts_one(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The close timeout holds while no reader task runs: it starts one,
    which gives up waiting (here, for a close frame that never comes)."""
    caplog.set_level(logging.DEBUG, logger="anyws")
    with anyio.fail_after(TIMEOUT):
        async with client_to_raw(close_timeout=0.2) as (client, peer):
            await client.close()
            assert client.close_code == 1006
            assert (await peer.read_frame()).opcode == CLOSE
    assert _reader_starts(caplog, "client") == int(native_stream(anyio_backend))
    assert "client ! timed out waiting for TCP close" in caplog.messages


async def test_peer_closes_then_keeps_tcp_open_without_a_reader_task(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server answers the client's close frame and half-closes from
    data_received; the wait for the client's EOF is bounded all the same."""
    caplog.set_level(logging.DEBUG, logger="anyws")
    with anyio.fail_after(TIMEOUT):
        async with server_to_raw(close_timeout=0.2) as (server, peer):
            await peer.send_frame(CLOSE, close_payload(1001))
            assert await peer.read_frame() == (True, CLOSE, close_payload(1001), False)
            assert await peer.expect_eof() == b""
            await server.wait_closed()  # the client never closes TCP
            assert server.close_code == 1001
    assert _reader_starts(caplog, "server") == int(native_stream(anyio_backend))
