"""Speed and memory of anyws against other WebSocket libraries.

Run ``python -m benchmarks --help`` from the repository root. Not part of the
test suite; ``tests/test_benchmarks_smoke.py`` only checks that it still runs.
"""

from __future__ import annotations

__all__ = ()
