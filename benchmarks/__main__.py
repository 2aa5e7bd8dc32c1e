"""Command line: ``python -m benchmarks [--quick] [--libs ...] [--workloads ...]``.

Prints the Markdown report and writes it to ``--out`` (by default
``benchmarks/results/<date>.md``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .harness import Settings, machine_header, render, run_all
from .libs import LIBS
from .workloads import WORKLOADS

__all__ = ("main",)


def _names(text: str, known: Sequence[str], what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return names


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="short windows, 3 repetitions"
    )
    parser.add_argument(
        "--libs",
        type=lambda t: _names(t, list(LIBS), "libraries"),
        default=list(LIBS),
        help="comma-separated, default all: " + ", ".join(LIBS),
    )
    parser.add_argument(
        "--workloads",
        type=lambda t: _names(t, [*WORKLOADS, "memory"], "workloads"),
        default=[*WORKLOADS, "memory"],
        help="comma-separated, default all: " + ", ".join([*WORKLOADS, "memory"]),
    )
    parser.add_argument("--repeat", type=int, help="repetitions (default 5, quick 3)")
    parser.add_argument("--duration", type=float, help="seconds per measured window")
    parser.add_argument("--out", type=Path, help="the Markdown file to write")
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 5)
    settings = Settings(duration=0.25, warmup=0.1) if args.quick else Settings(1.0, 0.3)
    if args.duration:
        settings = Settings(args.duration, min(settings.warmup, args.duration))
    workloads = [w for w in args.workloads if w != "memory"]
    memory = "memory" in args.workloads

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    header = machine_header(settings, repeat, argv)
    results, memories = run_all(args.libs, workloads, repeat, settings, memory, log)
    report = render(results, memories, args.libs, workloads, header)
    out = (
        args.out
        or Path(__file__).parent / "results" / f"{time.strftime('%Y-%m-%d')}.md"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report, encoding="utf-8")
    print(report)
    log(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
