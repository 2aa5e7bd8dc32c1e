"""The connection engine over a fake byte stream, on asyncio and trio.

A fake stream makes the rare transport behaviours happen on purpose: a stream
that cannot half-close and has no socket, a close that hangs or fails, a write
that fails or never completes.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.abc
import pytest

from anyws._compat import BaseExceptionGroup, single_exception
from anyws._messages import PingWaiter
from anyws.exceptions import ConnectionClosedError
from anyws.protocol import State
from anyws.server import WebSocketServerProtocol

from .io_support import (
    CLOSE,
    TEXT,
    TIMEOUT,
    build_frame,
    close_payload,
    upgrade_request,
)


class FakeStream(anyio.abc.ByteStream):
    """A byte stream fed by the test; it records what is sent."""

    def __init__(self) -> None:
        self._send_in, self._receive_in = anyio.create_memory_object_stream[bytes](100)
        self.sent: list[bytes] = []
        self.send_error: BaseException | None = None
        self.send_blocks = False
        #: With send_blocks: how many more sends go through before blocking.
        self.sends_before_blocking = 0
        self.aclose_started = anyio.Event()
        self.aclose_release: anyio.Event | None = None
        self.aclose_error: BaseException | None = None
        self.closed = False
        self._closing = anyio.Event()

    def feed(self, data: bytes) -> None:
        self._send_in.send_nowait(data)

    def feed_eof(self) -> None:
        self._send_in.close()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            return await self._receive_in.receive()
        except anyio.ClosedResourceError:
            raise anyio.ClosedResourceError from None

    async def send(self, item: bytes) -> None:
        if self.send_blocks and self.sends_before_blocking:
            self.sends_before_blocking -= 1
        elif self.send_blocks:
            # Like a socket whose peer does not read: it waits until closed.
            await self._closing.wait()
            raise anyio.ClosedResourceError
        if self.send_error is not None:
            raise self.send_error
        self.sent.append(item)

    async def send_eof(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.aclose_started.set()
        self._closing.set()
        self._send_in.close()
        self._receive_in.close()
        self.closed = True
        if self.aclose_release is not None:
            await self.aclose_release.wait()
        if self.aclose_error is not None:
            raise self.aclose_error


async def open_server(
    stream: FakeStream, task_group: anyio.abc.TaskGroup, **kwargs: Any
) -> WebSocketServerProtocol:
    """Run the server handshake over ``stream`` and start the connection."""

    async def handler(ws: WebSocketServerProtocol) -> None:  # pragma: no cover
        pass

    protocol = WebSocketServerProtocol(handler, None, **kwargs)
    protocol._attach(stream)
    stream.feed(upgrade_request())
    assert await protocol.handshake() == "/"
    assert stream.sent[0].startswith(b"HTTP/1.1 101 ")
    protocol._start(task_group)
    return protocol


async def test_stream_without_half_close_or_socket() -> None:
    stream = FakeStream()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            protocol = await open_server(stream, task_group, ping_interval=None)
            assert protocol.local_address is None
            assert protocol.remote_address is None
            stream.feed(build_frame(TEXT, b"hi", mask=True))
            assert await protocol.recv() == "hi"
            stream.feed(build_frame(CLOSE, close_payload(1000), mask=True))
            # The server cannot half-close: it closes the stream at once
            # instead of waiting for the client to close.
            await protocol.wait_closed()
    assert stream.closed
    assert protocol.close_code == 1000
    assert stream.sent[-1] == build_frame(CLOSE, close_payload(1000), mask=False)


async def test_teardown_when_closing_the_stream_hangs() -> None:
    stream = FakeStream()
    stream.aclose_release = anyio.Event()  # never set: aclose hangs
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            protocol = await open_server(
                stream, task_group, ping_interval=None, close_timeout=0.1
            )
            stream.feed_eof()
            await stream.aclose_started.wait()
            # TCP is not closed yet: the connection is CLOSING, not CLOSED.
            assert protocol.state is State.CLOSING
            assert protocol.close_code is None
            await protocol.wait_closed()  # aborted after close_timeout
    assert protocol.state is State.CLOSED
    assert protocol.close_code == 1006


async def test_teardown_when_closing_the_stream_fails() -> None:
    stream = FakeStream()
    stream.aclose_error = OSError("already broken")
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            protocol = await open_server(stream, task_group, ping_interval=None)
            stream.feed_eof()
            await protocol.wait_closed()
    assert protocol.closed


async def test_handshake_write_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="anyws.server")
    stream = FakeStream()
    stream.send_error = anyio.BrokenResourceError()

    async def handler(ws: WebSocketServerProtocol) -> None:  # pragma: no cover
        pass

    protocol = WebSocketServerProtocol(handler, None)
    protocol._attach(stream)
    stream.feed(upgrade_request())
    with anyio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionError) as exc_info:
            await protocol.handshake()
    assert isinstance(exc_info.value.__cause__, anyio.BrokenResourceError)
    assert protocol.closed and stream.closed
    assert "Connection error in opening handshake" in caplog.messages


async def test_fail_when_writes_never_complete_is_bounded() -> None:
    stream = FakeStream()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            protocol = await open_server(
                stream, task_group, ping_interval=None, close_timeout=0.1
            )
            stream.send_blocks = True  # the peer stopped reading
            blocked = anyio.Event()

            async def send() -> None:
                blocked.set()
                with pytest.raises(ConnectionClosedError):
                    await protocol.send("stuck")

            task_group.start_soon(send)
            await blocked.wait()
            await anyio.wait_all_tasks_blocked()
            # The close frame cannot be written within close_timeout: the
            # connection is aborted.
            await protocol._fail(1011)
            await protocol.wait_closed()
    assert protocol.close_code == 1006


def test_single_exception() -> None:
    with pytest.raises(KeyError):
        with single_exception():
            raise BaseExceptionGroup("one", [KeyError("k")])
    group = BaseExceptionGroup("two", [KeyError("k"), ValueError("v")])
    with pytest.raises(BaseExceptionGroup) as exc_info:
        with single_exception():
            raise group
    assert exc_info.value is group
    with single_exception():
        pass


async def test_fail_and_close_when_writes_fail() -> None:
    for operation in ("fail", "close"):
        stream = FakeStream()
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as task_group:
                protocol = await open_server(stream, task_group, ping_interval=None)
                stream.send_error = anyio.BrokenResourceError()  # the peer is gone
                if operation == "fail":
                    await protocol._fail(1011)
                else:
                    await protocol.close()
                await protocol.wait_closed()
        assert protocol.close_code == 1006


async def test_message_iterator_is_its_own_iterator() -> None:
    stream = FakeStream()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            protocol = await open_server(stream, task_group, ping_interval=None)
            iterator = aiter(protocol)
            assert aiter(iterator) is iterator
            stream.feed(build_frame(TEXT, b"x", mask=True))
            assert await anext(iterator) == "x"
            stream.feed_eof()
            await protocol.wait_closed()


async def test_nothing_is_written_after_a_cut_frame() -> None:
    """A fragmented send cancelled in the middle of a write: the connection is
    aborted, and the close frame of the failure is not written after half a
    frame."""
    stream = FakeStream()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            protocol = await open_server(stream, task_group, ping_interval=None)
            stream.send_blocks = True
            stream.sends_before_blocking = 1  # the first fragment goes out
            with anyio.move_on_after(0.05) as scope:
                await protocol.send(["first", "second"])
            assert scope.cancelled_caught
            await protocol.wait_closed()
    assert stream.sent[-1] == build_frame(TEXT, b"first", fin=False, mask=False)
    assert protocol.close_code == 1006


async def test_ping_waiter_calls_back_on_its_pong() -> None:
    """Keepalive on timers learns of the pong from the waiter: later, or at
    once when the pong came while the ping was still being written."""
    calls: list[str] = []
    waiter = PingWaiter()
    waiter._call_on_pong(lambda: calls.append("later"))
    assert calls == []
    waiter._acknowledge()
    assert calls == ["later"]
    acknowledged = PingWaiter()
    acknowledged._acknowledge()
    acknowledged._call_on_pong(lambda: calls.append("now"))
    assert calls == ["later", "now"]
    await acknowledged  # and it still works as a waiter
