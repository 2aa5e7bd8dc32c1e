"""Soak test: many concurrent connections to one anyws server process.

Usage::

    python tools/soak.py --connections 5000 --duration 10 --backend asyncio
    python tools/soak.py --connections 5000 --duration 10 --backend trio

The server runs in a child process (``--serve``), so that its memory is
measured alone. The parent opens every connection, waits until all are open,
then each connection sends a message, waits for its echo and checks it, over
and over for ``--duration`` seconds; then all connections close. The result
is one JSON object on stdout: ``errors`` (must be 0), ``sent`` and
``received`` (must be equal), the server's peak RSS, its RSS before and with
every connection open, and the memory per connection: idle (all open, before
any message) and peak (the peak RSS during the exchange, over the number of
connections). Exit status 1 when
there were errors or lost messages.

Both processes raise their file-descriptor limit (``RLIMIT_NOFILE``) to what
the connections need, up to the hard limit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.text import TextReceiveStream

__all__ = ("main", "raise_fd_limit", "rss_bytes")

# Runs from a checkout without installing: make ``anyws`` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyws  # noqa: E402
from anyws.exceptions import ConnectionClosed  # noqa: E402


def raise_fd_limit(needed: int) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to ``needed`` (capped by the hard
    limit); return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def rss_bytes() -> int:
    """The current resident set size (Linux ``/proc``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """The peak resident set size (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- the server process ------------------------------------------------------------


async def run_server(connections: int) -> None:
    """Echo server; prints its port, then memory figures as JSON lines.

    Reads commands on stdin: ``measure`` prints the RSS now, ``stop`` shuts
    down and prints the final report.
    """
    errors = 0
    echoed = 0

    async def echo(ws: anyws.WebSocketServerProtocol) -> None:
        nonlocal errors, echoed
        try:
            async for message in ws:
                await ws.send(message)
                echoed += 1
        except ConnectionClosed as exc:
            if exc.code not in (1000, 1001):
                errors += 1
        except Exception:  # pragma: no cover - reported, never expected
            errors += 1

    baseline = rss_bytes()
    async with anyws.serve(
        echo, "127.0.0.1", 0, backlog=min(connections, 4096)
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port, "baseline_rss": baseline}), flush=True)
        stdin = anyio.wrap_file(sys.stdin)
        async for line in stdin:
            command = line.strip()
            if command == "measure":
                report = {"rss": rss_bytes(), "open": len(server.websockets)}
                print(json.dumps(report), flush=True)
            elif command == "stop":
                break
        server.close()
        await server.wait_closed()
    report = {"errors": errors, "echoed": echoed, "peak_rss": peak_rss_bytes()}
    print(json.dumps(report), flush=True)


# -- the client side ---------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.errors = 0
        self.error_samples: list[str] = []
        self.sent = 0
        self.received = 0
        self.opened = 0

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(repr(exc))


async def client(
    port: int,
    index: int,
    stats: Stats,
    all_open: anyio.Event,
    stop: anyio.Event,
    total: int,
    handshakes: anyio.Semaphore,
) -> None:
    try:
        async with handshakes:
            connection = anyws.connect(f"ws://127.0.0.1:{port}/", open_timeout=60)
            ws = await connection.__aenter__()
        try:
            stats.opened += 1
            if stats.opened == total:
                all_open.set()
            await all_open.wait()
            count = 0
            while not stop.is_set():
                message = f"{index}:{count}"
                await ws.send(message)
                stats.sent += 1
                if await ws.recv() != message:
                    raise AssertionError("wrong echo")
                stats.received += 1
                count += 1
        finally:
            await connection.__aexit__(None, None, None)
    except Exception as exc:
        stats.error(exc)
        if stats.opened < total and not all_open.is_set():
            # Do not keep the others waiting for a connection that failed.
            all_open.set()


async def run_clients(args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--serve", "--backend", args.backend]
    command += ["--connections", str(args.connections)]
    server = await anyio.open_process(command, stdout=subprocess.PIPE)
    assert server.stdin is not None and server.stdout is not None
    lines = TextReceiveStream(server.stdout)
    buffer = ""

    async def read_json() -> dict[str, Any]:
        nonlocal buffer
        while "\n" not in buffer:
            buffer += await lines.receive()
        line, buffer = buffer.split("\n", 1)
        result: dict[str, Any] = json.loads(line)
        return result

    async with server:
        hello = await read_json()
        stats = Stats()
        all_open, stop = anyio.Event(), anyio.Event()
        handshakes = anyio.Semaphore(args.concurrent_handshakes)
        started = time.monotonic()
        async with anyio.create_task_group() as task_group:
            for index in range(args.connections):
                task_group.start_soon(
                    client,
                    hello["port"],
                    index,
                    stats,
                    all_open,
                    stop,
                    args.connections,
                    handshakes,
                )
            with anyio.fail_after(args.open_deadline):
                await all_open.wait()
            opened_in = time.monotonic() - started
            await server.stdin.send(b"measure\n")
            loaded = await read_json()
            await anyio.sleep(args.duration)  # the soak itself
            stop.set()
        await server.stdin.send(b"stop\n")
        final = await read_json()
        await server.wait()

    idle = (loaded["rss"] - hello["baseline_rss"]) / args.connections
    # Compression contexts are made on first use: the peak (during the
    # exchange) is the honest cost of a busy connection.
    busy = (final["peak_rss"] - hello["baseline_rss"]) / args.connections
    return {
        "backend": args.backend,
        "connections": args.connections,
        "opened": stats.opened,
        "open_seconds": round(opened_in, 2),
        "duration": args.duration,
        "errors": stats.errors + final["errors"],
        "error_samples": stats.error_samples,
        "sent": stats.sent,
        "received": stats.received,
        "echoed_by_server": final["echoed"],
        "server_baseline_rss_mib": round(hello["baseline_rss"] / 2**20, 1),
        "server_rss_all_open_mib": round(loaded["rss"] / 2**20, 1),
        "server_peak_rss_mib": round(final["peak_rss"] / 2**20, 1),
        "server_kib_per_connection_idle": round(idle / 1024, 1),
        "server_kib_per_connection_peak": round(busy / 1024, 1),
        "client_peak_rss_mib": round(peak_rss_bytes() / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--concurrent-handshakes", type=int, default=200)
    parser.add_argument("--open-deadline", type=float, default=300.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    raise_fd_limit(args.connections + 256)
    if args.serve:
        anyio.run(run_server, args.connections, backend=args.backend)
        return 0
    result = anyio.run(run_clients, args, backend=args.backend)
    print(json.dumps(result, indent=2))
    ok = result["errors"] == 0 and result["sent"] == result["received"]
    ok = ok and result["opened"] == args.connections
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
