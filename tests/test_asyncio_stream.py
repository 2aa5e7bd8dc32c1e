"""anyws's own asyncio stream (:mod:`anyws._asyncio_stream`) over loopback.

The rest of the suite runs every I/O test over this stream and over AnyIO's
stock one (see ``conftest.py``); these tests pin down what is particular to
it: buffering and flow control both ways, fairness, the burst of small
writes, closing, and which streams it takes over.
"""

from __future__ import annotations

import functools
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from anyio.streams.stapled import StapledObjectStream

from anyws import _asyncio_stream
from anyws._asyncio_stream import YIELD_EVERY, NativeStream, adopt
from anyws._trio_stream import TrioStream

from .hardening._support import wait_until
from .io_support import TIMEOUT

KiB = 1024


class Peer:
    """The other end: a plain non-blocking socket, which reads only when
    asked to (AnyIO's stock asyncio stream would read ahead without bound)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while True:
            try:
                data = self.sock.recv(max_bytes)
            except BlockingIOError:
                await anyio.wait_readable(self.sock)
                continue
            if not data:
                raise anyio.EndOfStream
            return data

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except BlockingIOError:
                await anyio.wait_writable(self.sock)

    async def send_eof(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)
        await anyio.lowlevel.checkpoint()

    def reset(self) -> None:
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.sock.close()


@asynccontextmanager
async def tcp_pair(
    *, read_limit: int = 64 * KiB, write_limit: int = 64 * KiB
) -> AsyncIterator[tuple[NativeStream, Peer]]:
    """A NativeStream connected over loopback to a plain socket."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = await anyio.connect_tcp("127.0.0.1", server.getsockname()[1])
        sock, _ = server.accept()  # already established: does not block
        peer = Peer(sock)
        native = await adopt(client, read_limit=read_limit, write_limit=write_limit)
        assert isinstance(native, NativeStream)
        try:
            yield native, peer
        finally:
            sock.close()  # first: a peer that never read would hold aclose
            await native.aclose()


def arrived(stream: NativeStream, size: int) -> bool:
    return stream._buffered >= size


async def expect(error: type[Exception], stream: NativeStream) -> None:
    with pytest.raises(error):
        await stream.receive()


async def read_exactly(stream: anyio.abc.ByteStream | Peer, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        data += await stream.receive()
    return bytes(data)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_bytes_flow_both_ways_in_order() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (native, peer):
            chunks = [bytes([i]) * size for i, size in enumerate([1, 10, 70_000, 5])]
            for chunk in chunks:
                await native.send(chunk)
            assert await read_exactly(peer, sum(map(len, chunks))) == b"".join(chunks)
            await peer.send(b"hello")
            assert await native.receive(3) == b"hel"  # split at max_bytes
            assert await native.receive() == b"lo"
            with pytest.raises(ValueError):
                await native.receive(0)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_receive_joins_buffered_chunks_up_to_max_bytes() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (native, peer):
            for count, part in enumerate((b"ab", b"cd", b"ef"), 1):
                await peer.send(part)
                await wait_until(functools.partial(arrived, native, 2 * count))
            assert native._chunks is not None
            assert len(native._chunks) == 3
            assert await native.receive(4) == b"abcd"
            assert await native.receive(4) == b"ef"


@asynccontextmanager
async def taken_over_after(early: bytes) -> AsyncIterator[NativeStream]:
    """A stream AnyIO accepted, taken over once AnyIO's protocol has read
    ``early`` from the peer (``read_limit`` 1 KiB)."""
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as multi:
        [listener] = multi.listeners
        assert isinstance(listener, anyio.abc.SocketListener)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(early)
            accepted = await listener.accept()
            # AnyIO's protocol of an accepted socket reads at once.
            protocol = accepted._protocol  # type: ignore[attr-defined]
            await wait_until(lambda: sum(map(len, protocol.read_queue)) == len(early))
            native = await adopt(accepted, read_limit=KiB, write_limit=KiB)
            assert isinstance(native, NativeStream)
            async with native:
                yield native


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_bytes_read_before_the_take_over_are_kept() -> None:
    with anyio.fail_after(TIMEOUT):
        async with taken_over_after(b"early") as native:
            assert await native.receive() == b"early"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_more_early_bytes_than_read_limit_pause_reading_at_once() -> None:
    with anyio.fail_after(TIMEOUT):
        async with taken_over_after(b"e" * 8 * KiB) as native:
            assert native._reading_paused
            assert await read_exactly(native, 8 * KiB) == b"e" * 8 * KiB
            assert not native._reading_paused


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_reading_pauses_above_read_limit_and_resumes() -> None:
    """Unread bytes stop the transport reading past ``read_limit``; reading
    resumes once half of that was consumed; nothing is lost."""
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(read_limit=4 * KiB) as (native, peer):
            payload = bytes(range(256)) * 4096  # 1 MiB
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(peer.send, payload)
                await wait_until(lambda: native._reading_paused)
                assert native._buffered > 4 * KiB
                received = await read_exactly(native, len(payload))
            assert received == payload
            assert not native._reading_paused


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_send_waits_while_the_peer_does_not_read() -> None:
    """Flow control on writes: a send returns once its bytes are handed over,
    then waits while more than ``write_limit`` bytes wait in the transport."""
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(write_limit=16 * KiB) as (native, peer):
            sent = 0
            with anyio.move_on_after(0.5) as scope:
                while True:
                    await native.send(b"x" * 64 * KiB)
                    sent += 64 * KiB
            assert scope.cancelled_caught
            assert native._writing_paused
            # Every byte of every send was handed over: read them all.
            sent += 64 * KiB  # the cancelled send had written its bytes
            assert await read_exactly(peer, sent) == b"x" * sent


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_small_writes_in_a_row_are_joined() -> None:
    """After the first write, writes of the same turn wait for its end and go
    out in one system call; big ones and EOF flush what waits first."""
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(write_limit=1000) as (native, peer):
            native.write_nowait(b"1")  # written at once
            assert native._burst is None
            native.write_nowait(b"2")
            native.write_nowait(b"3")
            assert native._burst == [b"2", b"3"]
            native.write_nowait(b"4" * 2000)  # flushes the burst, then itself
            assert native._burst == []
            native.write_nowait(b"5")
            await native.send_eof()
            expected = b"123" + b"4" * 2000 + b"5"
            assert await read_exactly(peer, len(expected)) == expected
            with pytest.raises(anyio.EndOfStream):
                await peer.receive()
            await anyio.lowlevel.checkpoint()  # the turn ends
            assert native._burst is None
            with pytest.raises(anyio.ClosedResourceError):
                await native.send(b"after EOF")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_task_that_never_waits_still_lets_others_run() -> None:
    """A receive() that always finds data and a send() the transport never
    pushes back on yield once every YIELD_EVERY calls."""
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (native, peer):
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await anyio.lowlevel.checkpoint()

            async with anyio.create_task_group() as task_group:
                task_group.start_soon(ticker)
                await anyio.lowlevel.checkpoint()
                before = ticks
                for _ in range(YIELD_EVERY * 4):
                    await native.send(b"x")
                assert ticks - before >= 3
                await peer.send(b"y" * 64 * KiB)
                await wait_until(lambda: native._buffered >= YIELD_EVERY * 4)
                before = ticks
                for _ in range(YIELD_EVERY * 4):
                    assert await native.receive(1) == b"y"
                assert ticks - before >= 3
                task_group.cancel_scope.cancel()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_end_of_stream_and_errors() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (native, peer):
            await peer.send(b"last")
            await peer.send_eof()
            assert await read_exactly(native, 4) == b"last"
            with pytest.raises(anyio.EndOfStream):
                await native.receive()
            with pytest.raises(anyio.EndOfStream):  # again, without waiting
                await native.receive()
            await native.send(b"still writable")  # half-closed only
            assert await read_exactly(peer, 14) == b"still writable"
        async with tcp_pair() as (native, peer):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(expect, anyio.BrokenResourceError, native)
                await anyio.wait_all_tasks_blocked()
                peer.reset()
            with pytest.raises(anyio.BrokenResourceError):
                await native.send(b"x")
            with pytest.raises(anyio.BrokenResourceError):
                await native.send_eof()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_one_reader_and_one_blocked_writer_at_a_time() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(write_limit=1) as (native, peer):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(native.receive)
                await anyio.wait_all_tasks_blocked()
                with pytest.raises(anyio.BusyResourceError):
                    await native.receive()
                await peer.send(b"x")
            with anyio.move_on_after(0.2):  # the peer does not read: it blocks
                while True:
                    await native.send(b"x" * 64 * KiB)
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(native.send, b"y" * 64 * KiB)
                await anyio.wait_all_tasks_blocked()
                with pytest.raises(anyio.BusyResourceError):
                    await native.send(b"z")
                task_group.cancel_scope.cancel()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aclose_flushes_then_closes_and_wakes_everyone() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (native, peer):
            native.write_nowait(b"a")
            native.write_nowait(b"b")  # in the burst
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(expect, anyio.ClosedResourceError, native)
                await anyio.wait_all_tasks_blocked()
                await native.aclose()
                await native.aclose()  # idempotent
            assert await read_exactly(peer, 2) == b"ab"
            with pytest.raises(anyio.EndOfStream):
                await peer.receive()
            native._chunks = deque([b"unread"])  # as if it came before aclose
            with pytest.raises(anyio.ClosedResourceError):
                await native.receive()
            with pytest.raises(anyio.ClosedResourceError):
                await native.send(b"x")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_forced_close_aborts_without_flushing() -> None:
    """Cancelled while the transport flushes to a peer that does not read,
    ``aclose`` aborts the connection at once."""
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(write_limit=1) as (native, peer):
            with anyio.move_on_after(0.2):
                while True:
                    await native.send(b"x" * 64 * KiB)
            await anyio.aclose_forcefully(native)
            assert native._transport is not None
            assert native._transport.is_closing()
            with pytest.raises((anyio.BrokenResourceError, anyio.EndOfStream)):
                while True:
                    await peer.receive()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_extra_attributes_are_those_of_the_socket() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair() as (native, peer):
            attr = anyio.abc.SocketAttribute
            assert native.extra(attr.remote_address) == peer.sock.getsockname()
            assert native.extra(attr.family) == socket.AF_INET
            assert native.extra(attr.local_port) == peer.sock.getpeername()[1]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_unix_socket_streams_are_taken_over(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    with anyio.fail_after(TIMEOUT):
        async with await anyio.create_unix_listener(path) as listener:
            client = await anyio.connect_unix(path)
            server = await listener.accept()
            native = await adopt(client, read_limit=KiB, write_limit=KiB)
            assert isinstance(native, NativeStream)
            async with native, server:
                await native.send(b"ping")
                assert await read_exactly(server, 4) == b"ping"
                await server.send(b"pong")
                assert await read_exactly(native, 4) == b"pong"


async def test_other_streams_are_left_alone(anyio_backend: str) -> None:
    """``adopt`` gives the asyncio stream on asyncio, the trio one on trio;
    with the stock streams chosen, or for a stream of another kind, it
    returns the stream it was given."""
    with anyio.fail_after(TIMEOUT):
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                adopted = await adopt(stream, read_limit=KiB, write_limit=KiB)
                own = _asyncio_stream.native_enabled()
                assert isinstance(adopted, NativeStream) is (
                    own and anyio_backend == "asyncio"
                )
                assert isinstance(adopted, TrioStream) is (
                    own and anyio_backend == "trio"
                )
                if own:
                    await adopted.aclose()
                send, receive = anyio.create_memory_object_stream[bytes]()
                with send, receive:
                    other = StapledObjectStream(send, receive)
                    kept = await adopt(other, read_limit=KiB, write_limit=KiB)  # type: ignore[arg-type]
                    assert kept is other  # type: ignore[comparison-overlap]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_stock_streams_read_only_when_asked() -> None:
    """With AnyIO's stock stream chosen, ``adopt`` pauses its fresh transport:
    bytes wait in the kernel, where they push back on the peer, until a
    ``receive()`` asks for them."""
    _asyncio_stream.set_native_enabled(False)
    try:
        with anyio.fail_after(TIMEOUT):
            multi = await anyio.create_tcp_listener(local_host="127.0.0.1")
            async with multi:
                listener = cast(anyio.abc.SocketListener, multi.listeners[0])
                port = listener.extra(anyio.abc.SocketAttribute.local_port)
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    async with await listener.accept() as accepted:
                        transport = accepted._transport  # type: ignore[attr-defined]
                        assert transport.is_reading()  # AnyIO's fresh stream
                        kept = await adopt(accepted, read_limit=KiB, write_limit=KiB)
                        assert kept is accepted
                        assert not transport.is_reading()
                        sock.sendall(b"asked for")
                        assert await read_exactly(accepted, 9) == b"asked for"
                        assert not transport.is_reading()  # paused again by AnyIO
    finally:
        _asyncio_stream.set_native_enabled(True)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_close_nowait_only_when_nothing_waits_to_be_written() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tcp_pair(write_limit=1) as (native, peer):
            native.write_nowait(b"x" * 4 * 1024 * KiB)  # more than the kernel takes
            assert not native.close_nowait()
            assert await read_exactly(peer, 4 * 1024 * KiB) == b"x" * 4 * 1024 * KiB
            await wait_until(lambda: native._transport.get_write_buffer_size() == 0)  # type: ignore[union-attr]
            assert native.close_nowait()
            with pytest.raises(anyio.EndOfStream):
                await peer.receive()
            assert native.close_nowait()  # again: nothing to do
            with pytest.raises(anyio.ClosedResourceError):
                await native.receive()


@pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")]
)
async def test_uvloop_transports_are_taken_over_too() -> None:
    """uvloop's transports do not derive from asyncio.Transport but have what
    the stream needs: both ends run on it, whole messages of every size and
    kind go through, and the connection closes cleanly."""
    import anyws

    async def echo(ws: anyws.WebSocketServerProtocol, path: str) -> None:
        assert isinstance(ws._stream, NativeStream)
        async for message in ws:
            await ws.send(message)

    with anyio.fail_after(TIMEOUT):
        async with anyws.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with anyws.connect(f"ws://127.0.0.1:{port}/") as ws:
                assert isinstance(ws._stream, NativeStream)
                for size in (0, 1, 125, 70_000, 1_000_000):
                    await ws.send(b"x" * size)
                    assert await ws.recv() == b"x" * size
                await ws.send(["fragmented ", "text"])
                assert await ws.recv() == "fragmented text"
                await (await ws.ping())
            assert ws.close_code == 1000
