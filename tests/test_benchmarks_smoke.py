"""The benchmark harness still runs (never asserts on speed).

Runs one short workload between anyws processes on each backend, through the
same functions as ``python -m benchmarks``, and renders the report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import Settings, render, run_pair
from benchmarks.spysummary import summarize

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


def test_spy_summary_charges_samples_to_layers(tmp_path: Path) -> None:
    """py-spy's raw lines: a stack of frames, then a count; only samples in
    the event loop count, and waits in epoll do not."""
    loop = "_run_once (asyncio/base_events.py:1845)"
    profile = tmp_path / "raw.txt"
    profile.write_text(
        f"main (x.py:1);{loop};_SelectorSocketTransport.write "
        "(asyncio/selector_events.py:1057) 6\n"
        f"main (x.py:1);{loop};Frame.parse (anyws/sansio/frames.py:353) 3\n"
        f"main (x.py:1);{loop};Connection._push (anyws/_connection.py:615) 1\n"
        f"main (x.py:1);{loop};EpollSelector.select (selectors.py:468) 50\n"
        "startup (x.py:2);import (importlib.py:3) 40\n"
    )
    text = summarize(str(profile), 20.0)
    assert "samples inside the event loop, epoll waits excluded: 10" in text
    assert "| send() system call (transport.write) | 60.0 % | 12.0 |" in text
    assert "| anyws sans-I/O core | 30.0 % | 6.0 |" in text
    assert "| anyws I/O layer | 10.0 % | 2.0 |" in text
    assert "EpollSelector" not in text and "importlib" not in text
