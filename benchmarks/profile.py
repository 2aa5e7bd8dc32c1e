"""Profile one library as a server: ``python -m benchmarks.profile LIB WORKLOAD``.

The server runs in this process (under cProfile unless ``--no-cprofile``, for
example when py-spy samples it from outside:
``py-spy record -o out.svg -- python -m benchmarks.profile --no-cprofile ...``);
the fixed fast client runs the workload in a second process pinned to another
core, as in the benchmark. When the client is done, the server stops and the
top functions by own time and by cumulative time are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import threading
from collections.abc import Sequence

import anyio
import anyio.from_thread
import anyio.lowlevel

from .harness import (
    FIXED,
    Measurement,
    Settings,
    _context,
    _pin,
    _quiet,
    client_main,
)
from .libs import LIBS, get_lib
from .workloads import WORKLOADS

__all__ = ("main",)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve, let the fixed client run the workload, print the profile."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    parser.add_argument("lib", choices=list(LIBS))
    parser.add_argument("workload", choices=list(WORKLOADS))
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-cprofile", action="store_true")
    parser.add_argument("--out", help="also dump the pstats data here")
    args = parser.parse_args(argv)
    lib = get_lib(args.lib)
    client = FIXED[1] if WORKLOADS[args.workload].compression else FIXED[0]
    if not lib.websocket:
        client = FIXED[2]
    settings = Settings(duration=args.duration, warmup=0.5, timeout=120)
    _pin(0)
    _quiet()
    ctx = _context()
    ctrl_parent, ctrl_child = ctx.Pipe()
    results_parent, results_child = ctx.Pipe()
    answer: list[Measurement] = []

    def control() -> None:
        # The client asks for the server's CPU time around its window.
        import time

        while True:
            try:
                ctrl_child.recv()
            except EOFError:
                return
            ctrl_child.send(time.process_time())

    threading.Thread(target=control, daemon=True).start()

    async def serve() -> None:
        token = anyio.lowlevel.current_token()
        async with anyio.create_task_group() as tg:

            def ready(port: int) -> None:
                process = ctx.Process(
                    target=client_main,
                    args=(
                        client,
                        lib.name,
                        port,
                        [args.workload],
                        settings,
                        ctrl_parent,
                        results_child,
                        1,
                    ),
                    daemon=True,
                )
                process.start()

                def wait() -> None:
                    answer.extend(results_parent.recv())
                    process.join()
                    anyio.from_thread.run_sync(tg.cancel_scope.cancel, token=token)

                threading.Thread(target=wait, daemon=True).start()

            tg.start_soon(lib.serve, ready)

    profiler = cProfile.Profile()
    if not args.no_cprofile:
        profiler.enable()
    anyio.run(serve, backend=lib.backend)
    profiler.disable()
    for m in answer:
        if m.error:
            print(m.error, file=sys.stderr)
        elif m.ops:
            print(
                f"{m.workload}: {m.ops} ops, server CPU "
                f"{m.server_cpu / m.ops * 1e6:.1f} µs/op (profiled: inflated)"
            )
    if not args.no_cprofile:
        stats = pstats.Stats(profiler)
        if args.out:
            stats.dump_stats(args.out)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
