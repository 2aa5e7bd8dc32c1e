"""Time WebSocket masking: the C accelerator against pure Python.

Run from the repository root, after ``pip install -e .`` built the extension::

    .venv/bin/python benchmarks/bench_mask.py

For each payload size it prints the time of one ``apply_mask`` call on each
path (the best of several runs, in microseconds) and how many times faster the
C path is. Not part of the test suite.
"""

from __future__ import annotations

import os
import sys
import timeit
from collections.abc import Callable

from anyws.sansio.frames import _apply_mask_py

__all__ = ("main",)

Masker = Callable[[bytes, bytes], bytes]

SIZES = {"16 B": 16, "1 KiB": 1024, "64 KiB": 64 * 1024, "1 MiB": 1024 * 1024}
MASK = bytes.fromhex("37fa213d")
# Aim for about 0.2 s of calls per measurement, whatever the size.
TARGET_SECONDS = 0.2
REPEAT = 5


def time_call(function: Masker, data: bytes) -> float:
    """The best time of one call, in microseconds."""
    timer = timeit.Timer(lambda: function(data, MASK))
    number, elapsed = timer.autorange()
    number = max(1, int(number * TARGET_SECONDS / max(elapsed, 1e-9)))
    best = min(timer.repeat(repeat=REPEAT, number=number))
    return best / number * 1e6


def main() -> int:
    """Print the table; return 1 if the extension is not built."""
    try:
        from anyws.sansio._speedups import apply_mask as apply_mask_c
    except ImportError:
        print("anyws.sansio._speedups is not built: run `pip install -e .`")
        return 1
    print(f"{'size':>8} {'C (µs)':>10} {'Python (µs)':>12} {'Python / C':>11}")
    for label, size in SIZES.items():
        data = os.urandom(size)
        c_time = time_call(apply_mask_c, data)
        py_time = time_call(_apply_mask_py, data)
        print(f"{label:>8} {c_time:>10.3f} {py_time:>12.3f} {py_time / c_time:>10.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
