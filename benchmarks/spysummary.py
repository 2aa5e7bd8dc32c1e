"""Where a server's event loop spends its time, from a py-spy raw profile.

``python -m benchmarks.spysummary PROFILE.txt CPU_US_PER_OP [--trio]``

Record the profile with py-spy while :mod:`benchmarks.profile` serves a
workload without cProfile::

    py-spy record -r 1000 --format raw -o out.txt -- \\
        python -m benchmarks.profile --no-cprofile --duration 4 anyws-asyncio rt64

Only the samples inside the event loop count (``_run_once`` on asyncio,
``unrolled_run`` on trio), minus those waiting in ``epoll``. Each is
charged to its innermost frame, grouped by layer (system calls, event loop,
AnyIO, anyws's I/O layer, its sans-I/O core, ...). ``CPU_US_PER_OP`` (from an
unprofiled benchmark run) turns the shares into microseconds per operation.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence

__all__ = ("main", "summarize")

_FRAME_RE = re.compile(r"(.*) \((.*):(\d+)\)$")


def _samples(path: str) -> Iterator[tuple[list[str], int]]:
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if stack:
                yield stack.split(";"), int(count)


def _layer(frame: str) -> str:
    match = _FRAME_RE.match(frame)
    function, path = (match.group(1), match.group(2)) if match else (frame, "")
    if ("selectors.py" in path and "select" in function) or (
        "_io_epoll.py" in path and "get_events" in function
    ):
        return "epoll wait"
    if "selector_events.py" in path and function.endswith(".write"):
        return "send() system call (transport.write)"
    if "selector_events.py" in path and "_read_ready" in function:
        return "recv() system call"
    if "tasks.py" in path and function == "current_task":
        return "asyncio.current_task (a getpid system call on 3.11)"
    if "_trio_stream.py" in path:
        return "anyws trio stream (its send/recv system calls)"
    for prefix, name in (
        ("anyws/sansio", "anyws sans-I/O core"),
        ("anyws/", "anyws I/O layer"),
        ("websockets/", "websockets"),
        ("anyio/", "AnyIO"),
        ("asyncio/", "asyncio event loop"),
        ("trio/", "trio"),
        ("benchmarks/", "benchmark handler"),
    ):
        if prefix in path:
            return name
    return "other"


def summarize(path: str, cpu: float, *, trio: bool = False, top: int = 15) -> str:
    """The Markdown summary of the profile at ``path``."""
    marker = "unrolled_run" if trio else "_run_once"
    layers: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    total = 0
    for stack, count in _samples(path):
        if not any(marker in frame for frame in stack):
            continue
        layer = _layer(stack[-1])
        if layer == "epoll wait":
            continue
        total += count
        layers[layer] += count
        frames[stack[-1]] += count
    if not total:
        return "no samples inside the event loop\n"
    out = [
        f"samples inside the event loop, epoll waits excluded: {total}",
        "",
        "| innermost frame in | share | µs per op |",
        "|---|---|---|",
    ]
    for layer, count in layers.most_common():
        out.append(
            f"| {layer} | {100 * count / total:.1f} % | {cpu * count / total:.1f} |"
        )
    out += ["", "```"]
    for frame, count in frames.most_common(top):
        out.append(f"{100 * count / total:5.1f} %  {frame}")
    out += ["```", ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", help="py-spy's --format raw output")
    parser.add_argument("cpu", type=float, help="CPU µs per operation, unprofiled")
    parser.add_argument("--trio", action="store_true", help="a trio server")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    sys.stdout.write(summarize(args.profile, args.cpu, trio=args.trio, top=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
