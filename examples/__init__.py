"""Runnable examples of anyws; each one is run by ``tests/test_examples.py``.

Run any of them from the repository root with ``python -m examples.NAME --help``.
"""

from __future__ import annotations

__all__ = ()
