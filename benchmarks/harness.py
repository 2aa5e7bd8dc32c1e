"""Run the benchmark: processes, measurements, aggregation, the Markdown report.

Method (also printed at the top of each report):

* The server and the client run in two processes started with the ``spawn``
  method, pinned to different cores (``os.sched_setaffinity``) when the machine
  has two or more.
* Each measured side reads its own CPU time (``time.process_time``: user +
  system of its whole process) at the start and the end of the measured window;
  the server answers those reads from a control thread that sleeps in a pipe
  read otherwise, so it costs nothing during the window.
* Repetitions are interleaved: repetition 1 of every (server, client) pair,
  then repetition 2 of every pair, and so on, so that slow drifts of a shared
  machine spread over all libraries instead of landing on one.
* Each cell reports the median over the repetitions and the min–max.

Roles: a library is measured *as server* against a fixed fast client (picows,
or websockets-asyncio for the deflate workloads since picows has no
permessage-deflate; raw TCP libraries against the raw asyncio-protocol client),
*as client* against the same fixed fast server, and *paired* with itself. The
CPU figure is the server's in the server role, the client's in the client role
and the sum of both when paired.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import multiprocessing.connection
import os
import resource
import statistics
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from .libs import LIBS, Lib, get_lib
from .workloads import (
    HANDSHAKE_CONCURRENCY,
    MEMORY,
    WORKLOADS,
    Workload,
    handshakes,
    open_connections,
)

__all__ = (
    "FIXED",
    "Measurement",
    "Settings",
    "applicable",
    "measure_memory",
    "render",
    "run_pair",
)

#: The fixed fast peers: (plain workloads, deflate workloads, raw libraries).
FIXED = ("picows", "websockets-asyncio", "raw-asyncio-protocol")
ROLES = ("server", "client", "paired")
Conn_ = multiprocessing.connection.Connection


@dataclass(frozen=True)
class Settings:
    """How long to measure.

    Attributes:
        duration: seconds of each measured window.
        warmup: seconds of the same workload run first, unmeasured.
        timeout: seconds after which a stuck pair is killed.
    """

    duration: float = 1.0
    warmup: float = 0.3
    timeout: float = 120.0


@dataclass
class Measurement:
    """One measured window of one workload between one server and one client."""

    workload: str
    server: str
    client: str
    ops: int = 0
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    error: str | None = None
    extra: dict[str, float] = field(default_factory=dict)


# --- in the child processes ------------------------------------------------------


def _pin(index: int) -> None:
    """Pin this process to the ``index``-th allowed core, if there are several."""
    if not hasattr(os, "sched_getaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1:
        os.sched_setaffinity(0, {cores[index % len(cores)]})


def _raise_nofile() -> None:
    """Raise the open-files limit to the hard limit (for 5,000 connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _rss() -> int:
    """This process's resident set size in bytes (Linux), else peak RSS."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _control(ctrl: Conn_) -> None:
    """Answer the client's requests for this process's CPU time and memory."""
    while True:
        try:
            request = ctrl.recv()
        except (EOFError, OSError):
            return
        if request == "rss":
            gc.collect()
            ctrl.send(_rss())
        else:
            ctrl.send(time.process_time())


def server_main(name: str, ctrl: Conn_, ready: Conn_, core: int) -> None:
    """Entry point of a server process: serve until killed."""
    _pin(core)
    _raise_nofile()
    _quiet()
    threading.Thread(target=_control, args=(ctrl,), daemon=True).start()
    lib = get_lib(name)
    anyio.run(lib.serve, ready.send, backend=lib.backend)


def client_main(
    name: str,
    server: str,
    port: int,
    workloads: Sequence[str],
    settings: Settings,
    ctrl: Conn_,
    results: Conn_,
    core: int,
) -> None:
    """Entry point of a client process: run the workloads, send the results."""
    _pin(core)
    _raise_nofile()
    _quiet()
    lib = get_lib(name)

    async def main() -> list[Measurement]:
        out = []
        for workload in workloads:
            out.append(await _run_workload(lib, server, port, workload, settings, ctrl))
        return out

    results.send(anyio.run(main, backend=lib.backend))


def _quiet() -> None:
    """Silence the libraries' logs of dropped connections."""
    import logging

    logging.disable(logging.CRITICAL)


def _ask(ctrl: Conn_, request: str) -> Any:
    ctrl.send(request)
    return ctrl.recv()


async def _run_workload(
    lib: Lib, server: str, port: int, name: str, settings: Settings, ctrl: Conn_
) -> Measurement:
    """Warm up, then measure one workload; errors become the result."""
    workload = WORKLOADS[name]
    result = Measurement(name, server, lib.name)
    body = workload.body
    if name in HANDSHAKE_CONCURRENCY:
        body = handshakes(lib, port, HANDSHAKE_CONCURRENCY[name])
    try:
        with anyio.fail_after(settings.timeout):
            async with open_connections(
                lib, port, workload.connections, workload.compression
            ) as conns:
                await body(conns, time.perf_counter() + settings.warmup)
                server0 = _ask(ctrl, "cpu")
                client0 = time.process_time()
                start = time.perf_counter()
                result.ops = await body(conns, start + settings.duration)
                result.wall = time.perf_counter() - start
                result.client_cpu = time.process_time() - client0
                result.server_cpu = _ask(ctrl, "cpu") - server0
    except Exception:
        result.error = traceback.format_exc(limit=-3)
    return result


def memory_main(
    name: str, server: str, port: int, ctrl: Conn_, results: Conn_, core: int
) -> None:
    """Entry point of a client process for the idle-memory measurement."""
    _pin(core)
    _raise_nofile()
    _quiet()
    lib = get_lib(name)

    async def main() -> Measurement:
        result = Measurement("memory", server, name)
        try:
            # One connection first, so that lazily imported modules and caches
            # of the server are in the baseline.
            async with open_connections(lib, port, 1, False):
                pass
            await anyio.sleep(0.2)
            base = _ask(ctrl, "rss")
            opened = 0
            async with contextlib.AsyncExitStack() as stack:
                for count in MEMORY:
                    await stack.enter_async_context(
                        open_connections(lib, port, count - opened, False)
                    )
                    opened = count
                    await anyio.sleep(0.5)
                    result.extra[str(count)] = (_ask(ctrl, "rss") - base) / count
        except Exception:
            result.error = traceback.format_exc(limit=-3)
        return result

    results.send(anyio.run(main, backend=lib.backend))


# --- in the parent -------------------------------------------------------------------


def _context() -> Any:
    return multiprocessing.get_context("spawn")


def _with_server(
    server: str,
    settings: Settings,
    client: Callable[[int, Conn_, Conn_], tuple[Callable[..., None], tuple[Any, ...]]],
) -> Any:
    """Start ``server``, run the client process ``client`` builds, return its answer."""
    ctx = _context()
    ctrl_parent, ctrl_child = ctx.Pipe()
    ready_parent, ready_child = ctx.Pipe()
    results_parent, results_child = ctx.Pipe()
    server_process = ctx.Process(
        target=server_main, args=(server, ctrl_child, ready_child, 0), daemon=True
    )
    server_process.start()
    client_process = None
    try:
        if not ready_parent.poll(30):
            raise RuntimeError(f"server {server} did not start")
        port = ready_parent.recv()
        target, args = client(port, ctrl_parent, results_child)
        client_process = ctx.Process(target=target, args=args, daemon=True)
        client_process.start()
        if not results_parent.poll(settings.timeout * 4):
            raise RuntimeError(f"client against {server} timed out")
        return results_parent.recv()
    finally:
        for process in (client_process, server_process):
            if process is not None:
                process.kill()
                process.join()


def run_pair(
    server: str, client: str, workloads: Sequence[str], settings: Settings
) -> list[Measurement]:
    """Measure ``workloads`` between a ``server`` process and a ``client`` one."""

    def build(
        port: int, ctrl: Conn_, results: Conn_
    ) -> tuple[Callable[..., None], tuple[Any, ...]]:
        return client_main, (
            client,
            server,
            port,
            workloads,
            settings,
            ctrl,
            results,
            1,
        )

    try:
        answer: list[Measurement] = _with_server(server, settings, build)
    except Exception as exc:
        return [Measurement(w, server, client, error=repr(exc)) for w in workloads]
    return answer


def measure_memory(server: str, settings: Settings) -> Measurement:
    """The server's resident memory per idle connection (see :data:`MEMORY`)."""
    lib = get_lib(server)
    client = FIXED[0] if lib.websocket else FIXED[2]

    def build(
        port: int, ctrl: Conn_, results: Conn_
    ) -> tuple[Callable[..., None], tuple[Any, ...]]:
        return memory_main, (client, server, port, ctrl, results, 1)

    try:
        answer: Measurement = _with_server(server, settings, build)
    except Exception as exc:
        return Measurement("memory", server, client, error=repr(exc))
    return answer


def applicable(lib: Lib, workload: Workload) -> bool:
    """Whether ``workload`` makes sense for ``lib``."""
    if workload.websocket_only and not lib.websocket:
        return False
    return not workload.compression or lib.compression


def _peer(lib: Lib, workload: Workload) -> str:
    """The fixed fast peer of ``lib`` for ``workload``."""
    if not lib.websocket:
        return FIXED[2]
    return FIXED[1] if workload.compression else FIXED[0]


def plan(
    libs: Sequence[str], workloads: Sequence[str]
) -> dict[tuple[str, str], list[str]]:
    """The (server, client) pairs to run and the workloads of each."""
    pairs: dict[tuple[str, str], list[str]] = {}
    for name in libs:
        lib = LIBS[name]
        for wname in workloads:
            workload = WORKLOADS[wname]
            if not applicable(lib, workload):
                continue
            peer = _peer(lib, workload)
            for pair in ((name, peer), (peer, name), (name, name)):
                if wname not in pairs.setdefault(pair, []):
                    pairs[pair].append(wname)
    return pairs


def run_all(
    libs: Sequence[str],
    workloads: Sequence[str],
    repeat: int,
    settings: Settings,
    memory: bool,
    log: Callable[[str], None] = print,
) -> tuple[list[Measurement], list[Measurement]]:
    """Every pair, ``repeat`` times interleaved; then the memory runs."""
    pairs = plan(libs, workloads)
    results: list[Measurement] = []
    for rep in range(repeat):
        for (server, client), names in pairs.items():
            log(f"[{rep + 1}/{repeat}] {server} <- {client}: {', '.join(names)}")
            for m in run_pair(server, client, names, settings):
                if m.error:
                    log(f"    {m.workload}: ERROR {m.error.strip().splitlines()[-1]}")
                results.append(m)
    memories = []
    if memory:
        for rep in range(repeat):
            for name in libs:
                log(f"[{rep + 1}/{repeat}] memory {name}")
                m = measure_memory(name, settings)
                if m.error:
                    log(f"    ERROR {m.error.strip().splitlines()[-1]}")
                memories.append(m)
    return results, memories


# --- the report ---------------------------------------------------------------


def _cpu(m: Measurement, role: str) -> float:
    """CPU seconds of the side under test in ``role``."""
    if role == "server":
        return m.server_cpu
    if role == "client":
        return m.client_cpu
    return m.server_cpu + m.client_cpu


def _pick(
    results: Iterable[Measurement], role: str, lib: str, workload: str
) -> list[Measurement]:
    libobj, wobj = LIBS[lib], WORKLOADS[workload]
    peer = _peer(libobj, wobj)
    server, client = {
        "server": (lib, peer),
        "client": (peer, lib),
        "paired": (lib, lib),
    }[role]
    return [
        m
        for m in results
        if m.workload == workload
        and m.server == server
        and m.client == client
        and not m.error
        and m.ops
    ]


@dataclass(frozen=True)
class Cell:
    """Median and range of one metric over the repetitions."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Cell | None:
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values))


def _reference(lib: str) -> str:
    return "websockets-trio" if LIBS[lib].backend == "trio" else "websockets-asyncio"


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _table(
    title: str,
    libs: Sequence[str],
    rows: Sequence[str],
    cell: Callable[[str, str], Cell | None],
    lower_is_better: bool,
) -> list[str]:
    """A Markdown table: a row per workload, a column per library."""
    lines = [
        f"#### {title}",
        "",
        "| workload | " + " | ".join(libs) + " |",
        "|---|" + "---|" * len(libs),
    ]
    for row in rows:
        cells = []
        for lib in libs:
            value = cell(lib, row)
            if value is None:
                cells.append("–")
                continue
            text = f"{_fmt(value.median)} ({_fmt(value.low)}–{_fmt(value.high)})"
            ref = cell(_reference(lib), row)
            if ref is not None and ref.median and lib != _reference(lib):
                text += f" **{value.median / ref.median:.2f}×**"
            cells.append(text)
        label = WORKLOADS[row].title if row in WORKLOADS else row
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    note = "lower is better" if lower_is_better else "higher is better"
    lines += [
        "",
        f"Median (min–max); **ratio** to websockets, same backend; {note}.",
        "",
    ]
    return lines


def render(
    results: Sequence[Measurement],
    memories: Sequence[Measurement],
    libs: Sequence[str],
    workloads: Sequence[str],
    header: Sequence[str],
) -> str:
    """The Markdown report."""
    lines = list(header)
    for role in ROLES:

        def cpu(lib: str, workload: str, role: str = role) -> Cell | None:
            picked = _pick(results, role, lib, workload)
            return Cell.of([_cpu(m, role) / m.ops * 1e6 for m in picked])

        def rate(lib: str, workload: str, role: str = role) -> Cell | None:
            picked = _pick(results, role, lib, workload)
            per_op = WORKLOADS[workload].bytes_per_op
            scale = per_op / 1e6 if per_op else 1.0
            return Cell.of([m.ops * scale / m.wall for m in picked])

        side = {"server": "server's", "client": "client's", "paired": "both sides'"}
        lines += [
            f"### As {role}" if role != "paired" else "### Paired with itself",
            "",
        ]
        lines += _table(
            f"CPU µs per operation ({side[role]} process)", libs, workloads, cpu, True
        )
        lines += _table(
            "Rate: operations/s, or MB/s of payload for the echo and 64 KiB rows",
            libs,
            workloads,
            rate,
            False,
        )
    if memories:

        def memory(lib: str, row: str) -> Cell | None:
            count = row.split()[0]
            values = [
                m.extra[count] / 1024
                for m in memories
                if m.server == lib and not m.error and count in m.extra
            ]
            return Cell.of(values)

        rows = [f"{count} connections" for count in MEMORY]
        lines += ["### Server memory per idle connection", ""]
        lines += _table("KiB of RSS per connection", libs, rows, memory, True)
    errors = [m for m in [*results, *memories] if m.error]
    if errors:
        lines += ["### Errors", ""]
        for m in errors:
            last = (m.error or "").strip().splitlines()[-1]
            lines.append(f"- {m.workload}, {m.server} ← {m.client}: `{last}`")
        lines.append("")
    return "\n".join(lines)


def machine_header(settings: Settings, repeat: int, argv: Sequence[str]) -> list[str]:
    """The report's opening: date, machine, versions, method."""
    import platform
    from importlib import metadata

    versions = []
    for dist in ("anyws", "anyio", "trio", "websockets", "trio-websocket", "aiohttp"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{dist} {metadata.version(dist)}")
    with contextlib.suppress(metadata.PackageNotFoundError):
        versions.append(f"picows {metadata.version('picows')}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return [
        f"# Benchmark run {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"- command: `python -m benchmarks {' '.join(argv)}`",
        f"- machine: {platform.machine()}, {cores} usable cores, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"- versions: {', '.join(versions)}",
        f"- {repeat} interleaved repetitions, {settings.duration} s measured "
        f"after {settings.warmup} s of warm-up per workload",
        "- fixed peers: picows (plain workloads), websockets-asyncio (deflate "
        "workloads), raw-asyncio-protocol (raw TCP rows)",
        "- method: server and client in separate processes, pinned to different "
        "cores; CPU time (user + system, `time.process_time`) read inside the "
        "measured process at both ends of the window; see `benchmarks/harness.py`",
        "",
    ]
