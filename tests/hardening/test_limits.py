"""Every limit of a connection, each against a hostile raw peer (issue 7, item 1).

Each test also bounds the memory the process allocates meanwhile (measured
with ``tracemalloc``, in-process: Python allocations only, not the kernel's
socket buffers). The bounds are stated next to each test, on top of a fixed
512 KiB for one-time costs (``_support.BASE_OVERHEAD``); the hostile input is
always much larger than the bound, so that an unbounded buffer fails it.
"""

from __future__ import annotations

import struct
import zlib

import anyio
import pytest

from anyws.exceptions import ConnectionClosedError

from ..io_support import (
    BINARY,
    CLOSE,
    PING,
    TIMEOUT,
    raw_client,
    reset,
    upgrade_request,
)
from ._support import (
    KiB,
    MiB,
    RecordingStream,
    fast_frame,
    listening,
    memory_bound,
    serve_one,
    small_buffer_listener,
    wait_until,
)

NULL_KEY = b"\0\0\0\0"


def close_code(data: bytes) -> int:
    code: int = struct.unpack("!H", data[:2])[0]
    return code


# -- opening handshake: time -----------------------------------------------------


async def test_silent_client_dropped_at_open_timeout() -> None:
    """A client that connects and says nothing holds the slot for
    ``open_timeout`` only, and gets no answer. Memory bound: 256 KiB."""
    async with listening(open_timeout=0.5) as port:
        with memory_bound(256 * KiB):
            async with raw_client(port, handshake=False) as peer:
                started = anyio.current_time()
                assert await peer.expect_eof() == b""
                assert anyio.current_time() - started >= 0.45


async def test_slowloris_dropped_at_open_timeout() -> None:
    """A client trickling its request a byte every 20 ms (it would need about
    3 s) is dropped at ``open_timeout`` (0.5 s) before finishing; meanwhile a
    normal client still connects. Memory bound: 512 KiB."""
    request = upgrade_request()
    sent = 0
    async with listening(open_timeout=0.5) as port:
        with memory_bound(512 * KiB):
            async with raw_client(port, handshake=False) as peer:

                async def trickle() -> None:
                    nonlocal sent
                    for index in range(len(request)):
                        await anyio.sleep(0.02)  # models the slow peer
                        try:
                            await peer.send(request[index : index + 1])
                        except (anyio.BrokenResourceError, OSError):
                            return
                        sent += 1

                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(trickle)
                    async with raw_client(port) as other:  # handshake succeeds
                        await other.send_frame(CLOSE, b"\x03\xe8")
                        assert (await other.read_frame()).opcode == CLOSE
                    assert await peer.expect_eof() == b""
                    task_group.cancel_scope.cancel()
    assert 0 < sent < len(request)


async def test_many_slowloris_clients_do_not_block_the_server() -> None:
    """50 silent clients at once: each is dropped, a real client still gets
    in while they wait. Memory bound: 2 MiB (about 40 KiB per idle slot)."""
    async with listening(open_timeout=0.5) as port:
        with memory_bound(2 * MiB):
            streams = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(50)]
            try:
                async with raw_client(port) as peer:
                    await peer.send_frame(CLOSE, b"\x03\xe8")
                    assert (await peer.read_frame()).opcode == CLOSE
                with anyio.fail_after(TIMEOUT):
                    for stream in streams:
                        with pytest.raises(anyio.EndOfStream):
                            await stream.receive()
            finally:
                for stream in streams:
                    await anyio.aclose_forcefully(stream)


# -- opening handshake: size -----------------------------------------------------


async def test_too_many_headers_rejected_400() -> None:
    """257 header lines or more: 400, and the connection is closed. Memory
    bound: 512 KiB for 5,000 header lines sent."""
    extra = "".join(f"X-Header-{index}: value\r\n" for index in range(5000))
    async with listening() as port:
        with memory_bound(512 * KiB):
            async with raw_client(port, handshake=False) as peer:
                with anyio.fail_after(TIMEOUT):
                    # The server may stop reading as soon as it has seen enough.
                    try:
                        await peer.send(upgrade_request(extra=extra))
                    except (anyio.BrokenResourceError, OSError):  # pragma: no cover
                        pass
                    status, _, _ = await peer.read_response()
                assert status == 400


@pytest.mark.parametrize("read_limit", [2**16, 1024])
async def test_overlong_header_line_rejected_400(read_limit: int) -> None:
    """A header line over min(4096, read_limit // 2) bytes: 400 after reading
    at most that much of it. Memory bound: 256 KiB."""
    line = b"X-Long: " + b"a" * 8 * KiB
    async with listening(read_limit=read_limit) as port:
        with memory_bound(256 * KiB):
            async with raw_client(port, handshake=False) as peer:
                await peer.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n" + line)
                with anyio.fail_after(TIMEOUT):
                    status, _, _ = await peer.read_response()
                assert status == 400


async def test_largest_acceptable_handshake_is_bounded() -> None:
    """250 headers of 4,000 bytes (about 1 MiB, just under the limits) are
    accepted; the request costs at most a few times its size. Memory bound:
    6 MiB."""
    extra = "".join(f"X-Big-{index:03d}: {'v' * 3980}\r\n" for index in range(250))
    async with listening() as port:
        with memory_bound(6 * MiB):
            async with raw_client(port, extra=extra) as peer:
                await peer.send_frame(CLOSE, b"\x03\xe8")
                assert (await peer.read_frame()).opcode == CLOSE


# -- frames ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "code"),
    [
        (2**63 - 1, 1009),  # the largest legal length: over max_size
        (2**64 - 1, 1002),  # most significant bit set: a protocol error
        (max(2**20 + 2**17 + 1025, 2**20 + 1), 1009),  # just over max_size
    ],
)
async def test_huge_frame_header_refused_before_allocation(
    length: int, code: int
) -> None:
    """A frame header announcing up to 2**64 - 1 bytes is refused from the
    header alone (1009 or 1002). Memory bound: 64 KiB."""
    async with serve_one() as served:
        with memory_bound(64 * KiB):
            await served.peer.send(fast_frame(BINARY, b"", mask=True, length=length))
            with anyio.fail_after(TIMEOUT):
                frame = await served.peer.read_frame()
        assert frame.opcode == CLOSE
        assert close_code(frame.data) == code
        # The server drops the rest of the stream and waits for TCP to close.
        await served.peer.aclose()
        with pytest.raises(ConnectionClosedError) as info:
            await served.ws.recv()
        assert info.value.sent is not None and info.value.sent.code == code


async def test_huge_frame_without_max_size_costs_what_is_sent() -> None:
    """With ``max_size=None`` a 2**63 - 1 announcement is waited for, not
    allocated: memory follows the bytes really sent (1 MiB here), then the
    peer leaves and the connection ends with 1006. Memory bound: 4 MiB."""
    async with serve_one(max_size=None) as served:
        with memory_bound(4 * MiB):
            chunk = b"\0" * 64 * KiB
            await served.peer.send(
                fast_frame(BINARY, b"", mask=True, length=2**63 - 1, key=NULL_KEY)
            )
            for _ in range(16):
                await served.peer.send(chunk)
            await served.peer.stream.send_eof()
            with anyio.fail_after(TIMEOUT):
                with pytest.raises(ConnectionClosedError) as info:
                    await served.ws.recv()
        assert info.value.code == 1006


def deflate_bomb(size: int) -> bytes:
    """``size`` zero bytes, compressed as a permessage-deflate payload."""
    compressor = zlib.compressobj(wbits=-15)
    data = compressor.compress(b"\0" * size) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4]  # RFC 7692 section 7.2.1: drop 00 00 ff ff


DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate\r\n"


@pytest.mark.parametrize("fragments", [1, 8])
async def test_decompression_bomb_refused_1009(fragments: int) -> None:
    """100 MiB of zeros compressed to about 100 KiB, in one frame or split in
    fragments: refused with 1009 after inflating about ``max_size`` (1 MiB).
    Memory bound: 4 MiB (100 MiB if it were inflated)."""
    bomb = deflate_bomb(100 * MiB)
    step = len(bomb) // fragments + 1
    parts = [bomb[index : index + step] for index in range(0, len(bomb), step)]
    async with serve_one(compression="deflate", extra=DEFLATE) as served:
        assert served.ws.extensions, "permessage-deflate was not negotiated"
        with memory_bound(4 * MiB):
            for index, part in enumerate(parts):
                data = fast_frame(
                    BINARY if index == 0 else 0,
                    part,
                    fin=index == len(parts) - 1,
                    mask=True,
                    rsv1=index == 0,
                )
                try:
                    await served.peer.send(data)
                except (anyio.BrokenResourceError, OSError):  # pragma: no cover
                    break  # refused early: the server may reset
                del data
            with anyio.fail_after(TIMEOUT):
                frame = await served.peer.read_frame()
        assert frame.opcode == CLOSE
        assert close_code(frame.data) == 1009


# -- receive side: max_queue and read_limit -----------------------------------------


@pytest.mark.parametrize("read_limit", [2**16, 4 * KiB])
async def test_max_queue_and_read_limit_cap_the_receive_side(read_limit: int) -> None:
    """A peer pushes 16 MiB (1,024 messages of 16 KiB) at a handler that does
    not read. The server never reads while ``max_queue`` (4) messages wait,
    never asks for more than ``read_limit`` bytes at once, and every message
    arrives once, in order, when the handler reads. Memory bound: 1.5 MiB."""
    max_queue, size, count = 4, 16 * KiB, 1024
    violations: list[str] = []
    async with serve_one(max_queue=max_queue, read_limit=read_limit) as served:
        ws = served.ws
        queue = ws._messages  # observed, not changed

        def check(max_bytes: int) -> None:
            if len(queue) >= max_queue:
                violations.append(f"read with {len(queue)} messages queued")
            if max_bytes > read_limit:
                violations.append(f"read of {max_bytes} bytes")

        stream = RecordingStream(ws._stream, check)  # type: ignore[arg-type]
        ws._stream = stream

        async def push() -> None:
            payload = bytearray(size)
            for index in range(count):
                payload[:4] = index.to_bytes(4, "big")
                await served.peer.send(
                    fast_frame(BINARY, bytes(payload), mask=True, key=NULL_KEY)
                )

        with memory_bound(3 * MiB // 2):
            with anyio.fail_after(TIMEOUT * 3):
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(push)
                    await wait_until(lambda: len(queue) >= max_queue)
                    for index in range(count):
                        message = await ws.recv()
                        assert isinstance(message, bytes) and len(message) == size
                        assert int.from_bytes(message[:4], "big") == index
        assert violations == []
        assert max(stream.receive_sizes) <= read_limit


# -- send side: write_limit --------------------------------------------------------


async def test_write_limit_caps_the_send_side_against_a_peer_that_never_reads() -> None:
    """The handler sends 32 MiB and the peer floods pings, but never reads.
    Sends block instead of buffering; pending output stays within
    ``write_limit`` plus one read's worth of pongs plus the data frame being
    written (the server then stops reading), and writes never join frames
    beyond ``write_limit``. Memory bound: 1.5 MiB."""
    write_limit = 32 * KiB
    completed = 0
    ping = fast_frame(PING, b"p" * 125, mask=True)
    async with serve_one(
        sock=small_buffer_listener(), write_limit=write_limit, read_limit=16 * KiB
    ) as served:
        ws = served.ws
        stream = RecordingStream(ws._stream)  # type: ignore[arg-type]
        ws._stream = stream
        outbox_peak = 0

        async def flood_out() -> None:
            nonlocal completed, outbox_peak
            message = b"m" * 256 * KiB
            with pytest.raises(ConnectionClosedError):
                for _ in range(128):
                    await ws.send(message)
                    completed += 1
                    outbox_peak = max(outbox_peak, ws._outbox_size)

        async def flood_pings() -> None:
            nonlocal outbox_peak
            with anyio.move_on_after(0.5):  # models a peer that never reads
                while True:
                    await served.peer.send(ping)
                    outbox_peak = max(outbox_peak, ws._outbox_size)
            await reset(served.peer.stream)

        with memory_bound(3 * MiB // 2):
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(flood_out)
                    task_group.start_soon(flood_pings)
    assert completed < 128
    assert outbox_peak <= write_limit + 16 * KiB + 131 + 256 * KiB + 10
    assert all(size <= max(write_limit, 256 * KiB + 10) for size in stream.send_sizes)
