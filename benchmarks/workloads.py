"""The workloads, run in the client process against an echo server.

Each workload is an async function ``run(lib, port, deadline)`` that keeps
working until ``time.perf_counter()`` passes ``deadline`` and returns how many
operations it completed; connections it needs are opened by ``setup`` before the
measured window and closed after it, so only the steady state is measured
(except for the handshake workloads, where opening and closing *is* the
operation). The server's idle memory is measured separately (see
:mod:`benchmarks.harness`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.abc

from .libs import Conn, Lib, Message

__all__ = ("MEMORY", "WORKLOADS", "Workload", "json_text")


def json_text(size: int) -> str:
    """A JSON document of about ``size`` characters, compressible like real data."""
    records: list[dict[str, object]] = []
    n = 0
    while n < size:
        record = {
            "id": len(records),
            "name": f"user-{len(records) % 97}",
            "active": len(records) % 3 == 0,
            "score": (len(records) * 7919) % 1000 / 10,
            "tags": ["alpha", "beta", "gamma"][: 1 + len(records) % 3],
        }
        records.append(record)
        n += len(json.dumps(record)) + 2
    text = json.dumps(records)
    return text[:size] if len(text) > size else text


Body = Callable[[list[Conn], float], Awaitable[int]]


@dataclass(frozen=True)
class Workload:
    """A client workload.

    Attributes:
        name: the name in tables and on the command line.
        title: what a table row says.
        connections: connections opened before the window (0: the body
            opens its own).
        compression: whether the client negotiates permessage-deflate.
        bytes_per_op: payload bytes echoed per operation, for MB/s (0: show
            operations per second instead).
        body: ``body(conns, deadline) -> operations``.
        websocket_only: not run on the raw TCP echo ceilings.
    """

    name: str
    title: str
    connections: int
    compression: bool
    bytes_per_op: int
    body: Body
    websocket_only: bool = False


def _round_trips(message: Message, batch: int = 20) -> Body:
    async def body(conns: list[Conn], deadline: float) -> int:
        (conn,) = conns
        ops = 0
        while time.perf_counter() < deadline:
            for _ in range(batch):
                await conn.send(message)
                await conn.recv()
            ops += batch
        return ops

    return body


def _pipelined(message: Message, depth: int) -> Body:
    async def body(conns: list[Conn], deadline: float) -> int:
        (conn,) = conns
        ops = 0
        while time.perf_counter() < deadline:
            for _ in range(depth):
                await conn.send(message)
            for _ in range(depth):
                await conn.recv()
            ops += depth
        return ops

    return body


def _concurrent(message: Message) -> Body:
    async def body(conns: list[Conn], deadline: float) -> int:
        counts = [0] * len(conns)

        async def one(index: int, conn: Conn) -> None:
            while time.perf_counter() < deadline:
                for _ in range(10):
                    await conn.send(message)
                    await conn.recv()
                counts[index] += 10

        async with anyio.create_task_group() as tg:
            for index, conn in enumerate(conns):
                tg.start_soon(one, index, conn)
        return sum(counts)

    return body


def handshakes(lib: Lib, port: int, concurrency: int) -> Body:
    """Open and close connections (opening and closing handshakes)."""

    async def body(conns: list[Conn], deadline: float) -> int:
        counts = [0] * concurrency

        async def one(index: int) -> None:
            while time.perf_counter() < deadline:
                async with lib.connect(port, False):
                    pass
                counts[index] += 1

        async with anyio.create_task_group() as tg:
            for index in range(concurrency):
                tg.start_soon(one, index)
        return sum(counts)

    return body


B64 = bytes(range(64))
B16K = bytes(range(256)) * 64
B1M = bytes(range(256)) * 4096
T64 = json_text(64)
T64K = json_text(64 * 1024)

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("rt64", "64 B round trip", 1, False, 0, _round_trips(B64)),
        Workload("pipe100", "100 × 64 B pipelined", 1, False, 0, _pipelined(B64, 100)),
        Workload("echo16k", "16 KiB echo", 1, False, len(B16K), _round_trips(B16K)),
        Workload("echo1m", "1 MiB echo", 1, False, len(B1M), _round_trips(B1M, 2)),
        Workload(
            "deflate64",
            "64 B text, deflate",
            1,
            True,
            0,
            _round_trips(T64),
            websocket_only=True,
        ),
        Workload(
            "deflate64k",
            "64 KiB JSON, deflate",
            1,
            True,
            len(T64K),
            _round_trips(T64K, 5),
            websocket_only=True,
        ),
        Workload("conc100", "100 connections × 64 B", 100, False, 0, _concurrent(B64)),
        # The bodies of the handshake workloads need the library and port:
        # harness.run_workload builds them with handshakes().
        Workload("hs_seq", "handshake, sequential", 0, False, 0, _round_trips(B64)),
        Workload("hs_conc50", "handshake, 50 at once", 0, False, 0, _round_trips(B64)),
    )
}

#: The idle-memory workload's connection counts (the server's RSS is read at each).
MEMORY = (1000, 5000)

HANDSHAKE_CONCURRENCY = {"hs_seq": 1, "hs_conc50": 50}


@asynccontextmanager
async def open_connections(
    lib: Lib, port: int, count: int, compression: bool, *, parallel: int = 50
) -> AsyncIterator[list[Conn]]:
    """Open ``count`` connections, ``parallel`` at a time; close them on exit.

    Each connection lives in a task of its own: the libraries' context managers
    hold task groups or nurseries, which must be left in the task that entered
    them.
    """
    conns: list[Conn] = []
    release = anyio.Event()

    async def hold(*, task_status: anyio.abc.TaskStatus[Conn]) -> None:
        async with lib.connect(port, compression) as conn:
            task_status.started(conn)
            await release.wait()

    async def opener(tg: anyio.abc.TaskGroup, share: int) -> None:
        for _ in range(share):
            conns.append(await tg.start(hold))

    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as openers:
            for index in range(min(parallel, count)):
                share = count // parallel + (index < count % parallel)
                openers.start_soon(opener, tg, share)
        try:
            yield conns
        finally:
            release.set()
