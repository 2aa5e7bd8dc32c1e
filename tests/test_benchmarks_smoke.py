"""The benchmark harness still runs (never asserts on speed).

Runs one short workload between anyws processes on each backend, through the
same functions as ``python -m benchmarks``, and renders the report.
"""

from __future__ import annotations

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
