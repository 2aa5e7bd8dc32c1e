"""Where the memory of an idle server connection goes.

``python -m benchmarks.memprofile [--backend asyncio|trio] [--connections N]
[--keepalive]``

An anyws echo server (no compression, no keepalive: the idle-memory workload
of the benchmark; ``--keepalive`` turns on the default keepalive pings) runs
in this process under ``tracemalloc``; a second process opens N connections
with raw sockets and holds them. The report lists the bytes per connection
allocated by each source line, then the objects per connection by type.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import os
import socket
import sys
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from typing import Any

import anyio

__all__ = ("main",)

_REQUEST = (
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


def _client(port: int, count: int) -> None:
    """Open ``count`` connections, say ``ready``, hold them until stdin ends."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(_REQUEST.format(key=key).encode())
        socks.append(sock)
    for sock in socks:
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
    print("ready", flush=True)
    sys.stdin.read()


async def _serve(count: int, top: int, keepalive: bool) -> None:
    import anyws

    async def echo(ws: Any) -> None:
        # The client process goes away without closing handshakes.
        with contextlib.suppress(anyws.ConnectionClosed):
            async for message in ws:
                await ws.send(message)

    async with anyws.serve(
        echo,
        "127.0.0.1",
        0,
        ping_interval=20 if keepalive else None,
        compression=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        gc.collect()
        types_before = Counter(type(o).__name__ for o in gc.get_objects())
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
        command = [sys.executable, "-m", "benchmarks.memprofile", "--client"]
        async with await anyio.open_process(
            [*command, str(port), str(count)]
        ) as client:
            assert client.stdout is not None and client.stdin is not None
            await client.stdout.receive()  # "ready": every handshake answered
            # The server has no event for "N connections registered": poll.
            while len(server.websockets) < count:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            # Let the last handshakes finish their writes.
            await anyio.sleep(0.2)
            gc.collect()
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            types_after = Counter(type(o).__name__ for o in gc.get_objects())
            await client.stdin.aclose()
    stats = after.compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in stats)
    print(f"{total / count:.0f} bytes per connection (tracemalloc), top lines:")
    for stat in stats[:top]:
        frame = stat.traceback[0]
        where = frame.filename.split("site-packages/")[-1]
        print(
            f"{stat.size_diff / count:8.0f} B {stat.count_diff / count:6.1f} blocks"
            f"  {where}:{frame.lineno}"
        )
    print("objects per connection:")
    diff = types_after - types_before
    print(", ".join(f"{name} {n / count:.1f}" for name, n in diff.most_common(top)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--keepalive", action="store_true", help="ping every 20 s (the default)"
    )
    parser.add_argument("--client", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        _client(*args.client)
    else:
        anyio.run(
            _serve, args.connections, args.top, args.keepalive, backend=args.backend
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
