"""Small helpers of the AnyIO layer: transport errors and exception groups.

Nothing here is public. It lives apart so that :mod:`anyws.protocol`,
:mod:`anyws.client` and :mod:`anyws.server` share one definition of what a
transport error is, and one way to keep exception groups away from users.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

if sys.version_info >= (3, 11):  # pragma: no cover - depends on the interpreter
    from builtins import BaseExceptionGroup
else:  # pragma: no cover - depends on the interpreter
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found]

__all__ = (
    "BaseExceptionGroup",
    "SideLogger",
    "HANDSHAKE_READ_ERRORS",
    "TRANSPORT_ERRORS",
    "aclose_within",
    "check_limits",
    "single_exception",
    "warn_deprecated_arguments",
)

#: What a broken or closed stream raises. ``ssl.SSLError`` is an ``OSError``;
#: AnyIO's TLS streams turn most TLS failures into ``BrokenResourceError``.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
)

#: What reading the opening handshake may raise besides ``InvalidMessage``.
HANDSHAKE_READ_ERRORS: tuple[type[BaseException], ...] = (EOFError, *TRANSPORT_ERRORS)


if TYPE_CHECKING:
    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:  # not subscriptable at runtime before Python 3.11
    _LoggerAdapter = logging.LoggerAdapter


class SideLogger(_LoggerAdapter):
    """A logger adapter that starts each message with the side of the
    connection (``client`` or ``server``), as websockets 8.1 does."""

    def __init__(self, logger: logging.Logger, side: str) -> None:
        super().__init__(logger, {"side": side})
        self._prefix = side + " "

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return self._prefix + str(msg), kwargs


@contextmanager
def single_exception() -> Iterator[None]:
    """Re-raise a group that holds one exception as that exception.

    Task groups wrap what their tasks (and their host) raise. When a single
    error caused the exit, users should see that error itself (DECISIONS.md,
    "Exceptions").
    """
    try:
        yield
    except BaseExceptionGroup as group:
        # Unwrap one level only: a group that the user's own code raised (and
        # that the task group wrapped once more) comes out as itself.
        if len(group.exceptions) != 1:
            raise
        inner = group.exceptions[0]
        # The group is an artefact of the task group, not a cause: hide it.
        raise inner from inner.__cause__


async def aclose_within(stream: anyio.abc.AsyncResource, delay: float) -> bool:
    """Close ``stream``, gracefully if possible within ``delay`` seconds.

    Runs shielded: a cancelled caller still gets a closed stream.

    Args:
        stream: the stream (or listener) to close.
        delay: how long a graceful close may take, in seconds.

    Returns:
        ``True`` if it closed gracefully, ``False`` if it had to be aborted.
    """
    graceful = False
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(delay):
            try:
                await stream.aclose()
            except Exception:  # a broken stream is closed all the same
                pass
            graceful = True
        if not graceful:
            await anyio.aclose_forcefully(stream)
    return graceful


def check_limits(*, max_queue: int | None, read_limit: int, write_limit: int) -> None:
    """Check the flow-control arguments of ``serve``, ``connect`` and the
    connection.

    Raises:
        ValueError: for a ``max_queue`` below 1 (use ``None`` for no limit) or
            a ``read_limit`` or ``write_limit`` below 1.
    """
    if max_queue is not None and max_queue < 1:
        raise ValueError("max_queue must be at least 1, or None for no limit")
    if read_limit < 1:
        raise ValueError("read_limit must be at least 1")
    if write_limit < 1:
        raise ValueError("write_limit must be at least 1")


def warn_deprecated_arguments(*, loop: object, timeout: object, klass: object) -> None:
    """Warn about the deprecated arguments of ``connect`` and ``serve``.

    Called from their ``__init__``, so the warnings point at the user's call.
    """
    if loop is not None:
        warnings.warn("remove loop argument", DeprecationWarning, stacklevel=3)
    if timeout is not None:
        warnings.warn(
            "rename timeout to close_timeout", DeprecationWarning, stacklevel=3
        )
    if klass is not None:
        warnings.warn(
            "rename klass to create_protocol", DeprecationWarning, stacklevel=3
        )
