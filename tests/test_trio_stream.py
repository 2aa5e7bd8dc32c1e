"""anyws's own trio stream (:mod:`anyws._trio_stream`) over loopback.

Real sockets only: TCP over 127.0.0.1 and Unix sockets. The peer is mostly a
plain non-blocking socket, which reads only when asked to, so that the tests
control when the kernel buffers fill up. Waits are on events or on
:func:`trio.testing.wait_all_tasks_blocked`, never on sleeps.
"""

from __future__ import annotations

import hashlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest
import trio
import trio.lowlevel
import trio.testing
from anyio.streams.buffered import BufferedByteStream

from anyws import _asyncio_stream
from anyws._trio_stream import YIELD_EVERY, TrioStream, adopt_trio

from .io_support import TIMEOUT

pytestmark = pytest.mark.anyio

KiB = 1024
MiB = 1024 * KiB


@pytest.fixture
def anyio_backend() -> str:
    """This stream is for trio only."""
    return "trio"


@pytest.fixture(autouse=True)
def native_streams() -> Iterator[None]:
    """adopt_trio() adopts, whatever ANYWS_STREAM says."""
    enabled = _asyncio_stream.native_enabled()
    _asyncio_stream.set_native_enabled(True)
    try:
        yield
    finally:
        _asyncio_stream.set_native_enabled(enabled)


class Peer:
    """The other end: a plain non-blocking socket."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while True:
            try:
                return self.sock.recv(max_bytes)
            except BlockingIOError:
                await anyio.wait_readable(self.sock)

    async def read_exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = await self.receive()
            assert chunk, "unexpected EOF"
            data += chunk
        return bytes(data)

    async def read_to_eof(self) -> bytes:
        data = bytearray()
        while chunk := await self.receive():
            data += chunk
        return bytes(data)

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except BlockingIOError:
                await anyio.wait_writable(self.sock)

    def reset(self) -> None:
        """Close with an RST (SO_LINGER 0)."""
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.sock.close()


def _shrink(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * KiB)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * KiB)


def tcp_sockets(*, small: bool = False) -> tuple[socket.socket, socket.socket]:
    """Two connected TCP sockets; ``small``: with small kernel buffers."""
    with socket.socket() as server:
        if small:
            _shrink(server)  # inherited by the accepted socket
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.socket()
        if small:
            _shrink(client)
        client.connect(server.getsockname())
        accepted, _ = server.accept()  # established already: no wait
    return client, accepted


@asynccontextmanager
async def tcp_pair(*, small: bool = False) -> AsyncIterator[tuple[TrioStream, Peer]]:
    """A TrioStream connected over loopback to a plain socket."""
    client, accepted = tcp_sockets(small=small)
    stream = TrioStream(client)
    peer = Peer(accepted)
    try:
        yield stream, peer
    finally:
        peer.sock.close()  # first: aclose() may write a tail to it
        await stream.aclose()


def fill_kernel_buffers(stream: TrioStream) -> bytes:
    """Write on the stream's socket behind its back until the kernel is full
    (the peer reads nothing meanwhile); return what was written."""
    written = bytearray()
    chunk = b"f" * (64 * KiB)
    while True:
        try:
            written += chunk[: stream._sock.send(chunk)]
        except BlockingIOError:
            return bytes(written)


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * (4 * KiB // 32)
    return (block * (size // len(block) + 1))[:size]


async def read_all(stream: anyio.abc.ByteStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        data += await stream.receive()
    return bytes(data)


async def raises(
    error: type[BaseException], call: Callable[[], Awaitable[object]]
) -> BaseException:
    with pytest.raises(error) as info:
        await call()
    return info.value


# -- bytes in order ------------------------------------------------------------


async def test_bytes_flow_both_ways_in_order() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, peer):
            chunks = [bytes([i]) * size for i, size in enumerate([1, 10, 70_000, 5])]
            for chunk in chunks:
                await stream.send(chunk)
            await stream.send(b"")  # writes nothing
            assert await peer.read_exactly(70_016) == b"".join(chunks)
            await peer.send(b"hello")
            assert await stream.receive(3) == b"hel"  # split at max_bytes
            assert await stream.receive() == b"lo"
            with pytest.raises(ValueError):
                await stream.receive(0)
            assert stream.pending == 0


async def test_bytearray_and_memoryview_items() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, peer):
            await stream.send(bytearray(b"ab"))  # type: ignore[arg-type]
            await stream.send(memoryview(b"cd"))  # type: ignore[arg-type]
            assert await peer.read_exactly(4) == b"abcd"


async def test_large_transfers_both_ways_concurrently() -> None:
    size = 8 * MiB
    with anyio.fail_after(TIMEOUT):
        client, accepted = tcp_sockets()
        left, right = TrioStream(client), TrioStream(accepted)
        got: dict[str, bytes] = {}

        async def transfer(name: str, stream: TrioStream, data: bytes) -> None:
            async def read() -> None:
                got[name] = await read_all(stream, size)

            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                await stream.send(data)  # one call: the kernel takes it in parts

        async with left, right, anyio.create_task_group() as tg:
            tg.start_soon(transfer, "left", left, pattern(size, 1))
            tg.start_soon(transfer, "right", right, pattern(size, 2))
        assert got["left"] == pattern(size, 2)
        assert got["right"] == pattern(size, 1)


# -- end of stream, reset, close ----------------------------------------------


async def test_eof_from_the_peer() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, peer):
            await peer.send(b"last")
            peer.sock.shutdown(socket.SHUT_WR)
            assert await read_all(stream, 4) == b"last"
            await raises(anyio.EndOfStream, stream.receive)
            await raises(anyio.EndOfStream, stream.receive)  # again
            await stream.send(b"still open this way")
            assert await peer.read_exactly(19) == b"still open this way"


async def test_send_eof() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, peer):
            await stream.send(b"bye")
            await stream.send_eof()
            assert await peer.read_to_eof() == b"bye"
            await raises(anyio.ClosedResourceError, lambda: stream.send(b"x"))
            await raises(anyio.ClosedResourceError, stream.send_eof)
            await peer.send(b"reply")  # the other way is still open
            assert await read_all(stream, 5) == b"reply"


async def test_reset_by_peer_breaks_the_stream() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, peer):
            peer.reset()
            error = await raises(anyio.BrokenResourceError, stream.receive)
            assert isinstance(error.__cause__, ConnectionResetError)
            # Linux reports the reset once, then EOF: the stream remembers.
            error = await raises(anyio.BrokenResourceError, stream.receive)
            assert isinstance(error.__cause__, ConnectionResetError)
            error = await raises(anyio.BrokenResourceError, lambda: stream.send(b"x"))
            assert isinstance(error.__cause__, OSError)
            error = await raises(anyio.BrokenResourceError, stream.send_eof)
            assert isinstance(error.__cause__, OSError)


async def test_aclose_wakes_a_waiting_receive() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, _peer):
            errors: list[BaseException] = []

            async def receive() -> None:
                errors.append(await raises(anyio.ClosedResourceError, stream.receive))

            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                await trio.testing.wait_all_tasks_blocked()
                await stream.aclose()
            assert isinstance(errors[0].__cause__, trio.ClosedResourceError)
            await raises(anyio.ClosedResourceError, stream.receive)
            await raises(anyio.ClosedResourceError, lambda: stream.send(b"x"))
            await raises(anyio.ClosedResourceError, stream.send_eof)
            await stream.aclose()  # idempotent


async def test_aclose_wakes_a_waiting_send_and_drops_its_tail() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(small=True) as (stream, _peer):

            async def send() -> None:
                await raises(anyio.ClosedResourceError, lambda: stream.send(b"x" * MiB))

            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                await trio.testing.wait_all_tasks_blocked()
                assert 0 < stream.pending < MiB  # the sender holds a tail
                await stream.aclose()  # does not write it: the sender does
            assert stream.pending == 0


async def test_aclose_of_a_socket_closed_behind_its_back() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, _peer):
            stream.extra(anyio.abc.SocketAttribute.raw_socket).close()
            await stream.aclose()
            await raises(anyio.ClosedResourceError, stream.receive)


# -- concurrency ---------------------------------------------------------------


async def test_concurrent_calls_are_busy_errors() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(small=True) as (stream, peer):
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.receive)
                tg.start_soon(stream.send, b"x" * MiB)  # stays stuck
                await trio.testing.wait_all_tasks_blocked()
                await raises(anyio.BusyResourceError, stream.receive)
                await raises(anyio.BusyResourceError, lambda: stream.send(b"x"))
                await raises(anyio.BusyResourceError, stream.send_eof)
                await raises(anyio.BusyResourceError, stream.drain)
                await peer.send(b"!")  # ends the receive
                await peer.read_exactly(MiB)  # ends the send


# -- fairness ------------------------------------------------------------------


async def count_while(busy: Callable[[], Awaitable[None]]) -> int:
    """How many times another task ran while ``busy()`` ran."""
    runs = 0
    started, done = anyio.Event(), anyio.Event()

    async def other() -> None:
        nonlocal runs
        started.set()
        while not done.is_set():
            runs += 1
            await trio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        await started.wait()
        runs = 0
        await busy()
        done.set()
    return runs


async def test_a_busy_reader_does_not_starve_others() -> None:
    calls = 64 * YIELD_EVERY
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, peer):
            await peer.send(b"x" * calls)
            # Loopback delivers within send(): all of it is there now, and no
            # receive waits below.
            assert await stream.receive(1) == b"x"

            async def busy() -> None:
                for _ in range(calls - 1):
                    assert await stream.receive(1) == b"x"

            runs = await count_while(busy)
            # Once every YIELD_EVERY calls, and not more often.
            assert calls // YIELD_EVERY - 2 <= runs <= calls // YIELD_EVERY + 2


async def test_a_busy_writer_does_not_starve_others() -> None:
    calls = 64 * YIELD_EVERY
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, peer):

            async def busy() -> None:
                for _ in range(calls):
                    await stream.send(b"x")  # the kernel takes them all

            runs = await count_while(busy)
            assert calls // YIELD_EVERY - 2 <= runs <= calls // YIELD_EVERY + 2
            assert await peer.read_exactly(calls) == b"x" * calls


# -- cancellation --------------------------------------------------------------


async def test_a_cancelled_waiting_receive_loses_nothing() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, peer):
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.receive)
                await trio.testing.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
            await peer.send(b"kept")
            assert await read_all(stream, 4) == b"kept"


@pytest.mark.parametrize("budget", [1, YIELD_EVERY])
async def test_a_cancelled_receive_with_data_ready_loses_nothing(budget: int) -> None:
    """Cancelled at the yield for fairness (budget 1), or at the cancellation
    point every call makes: nothing was read."""
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, peer):
            await peer.send(b"kept")
            await trio.testing.wait_all_tasks_blocked()
            stream._read_budget = budget
            with anyio.CancelScope() as scope:
                scope.cancel()
                await stream.receive()
            assert scope.cancelled_caught
            assert await read_all(stream, 4) == b"kept"


async def test_a_send_cancelled_before_writing_writes_nothing() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(small=True) as (stream, peer):
            filler = fill_kernel_buffers(stream)
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.send, b"dropped")
                await trio.testing.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
            assert stream.pending == 0

            async def send() -> None:
                await stream.send(b"next")  # waits for room, then writes
                await stream.send_eof()

            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                await trio.testing.wait_all_tasks_blocked()
                assert await peer.read_to_eof() == filler + b"next"


@pytest.mark.parametrize("flush", ["send", "drain", "send_eof", "aclose"])
async def test_a_send_cancelled_midway_finishes_its_item_later(flush: str) -> None:
    item = pattern(MiB, 3)
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(small=True) as (stream, peer):
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.send, item)
                await trio.testing.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
            assert 0 < stream.pending < len(item)

            async def finish() -> None:
                if flush == "send":
                    await stream.send(b"after")
                    await stream.send_eof()
                elif flush == "drain":
                    await stream.drain()
                    await stream.drain()  # nothing left: only a checkpoint
                    await stream.send_eof()
                elif flush == "send_eof":
                    await stream.send_eof()
                else:
                    await stream.aclose()
                assert stream.pending == 0

            async with anyio.create_task_group() as tg:
                tg.start_soon(finish)
                expected = item + (b"after" if flush == "send" else b"")
                assert await peer.read_to_eof() == expected


async def test_a_cancelled_send_keeps_a_copy_of_a_bytearray_tail() -> None:
    item = bytearray(pattern(MiB, 6))
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(small=True) as (stream, peer):
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.send, item)  # type: ignore[arg-type]
                await trio.testing.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
            assert stream.pending
            item[:] = b"changed"  # resizing: no memoryview holds it
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.send_eof)
                assert await peer.read_to_eof() == pattern(MiB, 6)


async def test_a_send_cancelled_while_finishing_a_tail_writes_nothing_new() -> None:
    item = pattern(MiB, 4)
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(small=True) as (stream, peer):
            for new in (item, b"dropped"):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(stream.send, new)
                    await trio.testing.wait_all_tasks_blocked()
                    tg.cancel_scope.cancel()
                assert 0 < stream.pending < len(item)
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.send_eof)
                assert await peer.read_to_eof() == item


async def test_a_cancelled_aclose_still_closes() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(small=True) as (stream, _peer):
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.send, b"x" * MiB)
                await trio.testing.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
            assert stream.pending
            await anyio.aclose_forcefully(stream)  # the peer reads nothing
            assert stream._sock.fileno() == -1
            await raises(anyio.ClosedResourceError, stream.receive)


async def test_aclose_with_a_tail_after_a_reset() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(small=True) as (stream, peer):
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.send, b"x" * MiB)
                await trio.testing.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
            assert stream.pending
            peer.reset()
            await stream.aclose()  # the tail cannot go: closed all the same
            assert stream._sock.fileno() == -1


# -- attributes, Unix sockets, other sockets -----------------------------------


async def test_extra_attributes_tcp() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (stream, peer):
            attr = anyio.abc.SocketAttribute
            assert stream.extra(attr.raw_socket) is stream._sock
            assert stream.extra(attr.family) == socket.AF_INET
            here, there = peer.sock.getpeername(), peer.sock.getsockname()
            assert stream.extra(attr.local_address) == here
            assert stream.extra(attr.remote_address) == there
            assert stream.extra(attr.local_port) == here[1]
            assert stream.extra(attr.remote_port) == there[1]


async def test_unix_socket_pair() -> None:
    with anyio.fail_after(TIMEOUT):
        left_sock, right_sock = socket.socketpair(socket.AF_UNIX)
        left, right = TrioStream(left_sock), TrioStream(right_sock)
        async with left, right:
            assert left.extra(anyio.abc.SocketAttribute.family) == socket.AF_UNIX
            assert left.extra(anyio.abc.SocketAttribute.local_port, None) is None
            async with anyio.create_task_group() as tg:
                tg.start_soon(left.send, pattern(2 * MiB, 5))
                assert await read_all(right, 2 * MiB) == pattern(2 * MiB, 5)
            await right.send_eof()
            await raises(anyio.EndOfStream, left.receive)


def test_only_stream_sockets() -> None:
    with socket.socket(type=socket.SOCK_DGRAM) as sock, pytest.raises(ValueError):
        TrioStream(sock)


# -- adopt_trio ----------------------------------------------------------------


async def echo_once(stream: anyio.abc.ByteStream, peer: anyio.abc.ByteStream) -> None:
    await peer.send(b"ping")
    assert await read_all(stream, 4) == b"ping"
    await stream.send(b"pong")
    assert await read_all(peer, 4) == b"pong"


async def test_adopt_tcp_streams_both_sides() -> None:
    with anyio.fail_after(TIMEOUT):
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as multi:
            [listener] = multi.listeners
            assert isinstance(listener, anyio.abc.SocketListener)
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            connected = await anyio.connect_tcp("127.0.0.1", port)
            accepted = await listener.accept()
            client, server = adopt_trio(connected), adopt_trio(accepted)
            assert isinstance(client, TrioStream)
            assert isinstance(server, TrioStream)
            async with client, server:
                await echo_once(client, server)
                await echo_once(server, client)


async def test_adopt_unix_streams_both_sides(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with anyio.fail_after(TIMEOUT):
        async with await anyio.create_unix_listener(path) as listener:
            connected = await anyio.connect_unix(path)
            accepted = await listener.accept()
            client, server = adopt_trio(connected), adopt_trio(accepted)
            assert isinstance(client, TrioStream)
            assert isinstance(server, TrioStream)
            async with client, server:
                await echo_once(client, server)


async def test_adopt_leaves_other_streams_alone() -> None:
    with anyio.fail_after(TIMEOUT):
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as multi:
            [listener] = multi.listeners
            assert isinstance(listener, anyio.abc.SocketListener)
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            stock = await anyio.connect_tcp("127.0.0.1", port)
            async with await listener.accept() as accepted:
                # Not AnyIO's trio socket streams: a wrapper, our own stream.
                wrapper = BufferedByteStream(accepted)
                assert adopt_trio(wrapper) is wrapper
                ours = adopt_trio(accepted)
                assert adopt_trio(ours) is ours
                _asyncio_stream.set_native_enabled(False)  # see native_streams
                assert adopt_trio(stock) is stock  # ANYWS_STREAM=anyio
                _asyncio_stream.set_native_enabled(True)
                await stock.aclose()
                assert adopt_trio(stock) is stock  # closed
        async with await anyio.create_connected_udp_socket(
            "127.0.0.1", 9, local_host="127.0.0.1"
        ) as udp:  # from AnyIO's trio backend too, but no byte stream
            assert adopt_trio(udp) is udp  # type: ignore[arg-type,comparison-overlap]
