"""Shared fixtures: every async test runs on asyncio and on trio.

Connections use anyws's own streams (:mod:`anyws._asyncio_stream`,
:mod:`anyws._trio_stream`) unless told otherwise; the ``asyncio-anyio`` and
``trio-anyio`` runs repeat each test over AnyIO's stock socket streams, so
that both transports of each backend are held to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .io_support import stock_streams


@pytest.fixture(params=["asyncio", "asyncio-anyio", "trio", "trio-anyio"])
def anyio_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run each async test on both AnyIO backends, each with both streams;
    a missing trio fails."""
    name = str(request.param)
    if name.endswith("-anyio"):
        with stock_streams():
            yield name.removesuffix("-anyio")
    else:
        yield name
