"""Shared fixtures: every async test runs on asyncio and on trio.

On asyncio, connections use anyws's own stream (:mod:`anyws._asyncio_stream`)
unless told otherwise; the ``asyncio-anyio`` runs repeat each test over
AnyIO's stock asyncio socket stream, so that both transports are held to the
same behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .io_support import stock_asyncio_stream


@pytest.fixture(params=["asyncio", "asyncio-anyio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run each async test on both AnyIO backends (and both asyncio streams);
    a missing trio fails."""
    name = str(request.param)
    if name == "asyncio-anyio":
        with stock_asyncio_stream():
            yield "asyncio"
    else:
        yield name
