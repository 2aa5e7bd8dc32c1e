"""The benchmark harness still runs (never asserts on speed).

Runs one short workload between anyws processes on each backend, through the
same functions as ``python -m benchmarks``, and renders the report.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.harness import Settings, render, run_pair

__all__ = ()


@pytest.mark.parametrize("lib", ["anyws-asyncio", "anyws-trio"])
def test_harness_runs_one_workload(lib: str) -> None:
    settings = Settings(duration=0.1, warmup=0.05, timeout=30)
    (result,) = run_pair(lib, lib, ["rt64"], settings)
    assert result.error is None
    assert (result.workload, result.server, result.client) == ("rt64", lib, lib)
    assert result.ops > 0
    assert result.wall > 0
    report = render([result], [], [lib], ["rt64"], ["# smoke"])
    assert "64 B round trip" in report


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_memory_profile_runs(backend: str) -> None:
    """``python -m benchmarks.memprofile`` opens its connections and reports
    bytes per line and objects per connection."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.memprofile", "--backend", backend]
        + ["--connections", "20", "--top", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0].endswith("bytes per connection (tracemalloc), top lines:")
    assert int(lines[0].split()[0]) > 0
    assert len(lines) == 1 + 5 + 2
    assert lines[6] == "objects per connection:"
    assert "Error" not in result.stderr
