"""Two small synchronisation primitives for the hot paths of a connection.

:class:`FastLock` is a FIFO lock that costs nothing when it is free: no
owner tracking (AnyIO's locks look the current task up two or three times per
acquire and release, and on asyncio each look-up is a ``getpid`` system call)
and no checkpoint. Callers that must not start work in a cancelled scope check
for cancellation themselves, once (see :meth:`Connection._write
<anyws._connection.Connection._write>`).

:func:`event_factory` gives the event class to use for waits that happen once
per message: on asyncio an event made on a future of a known loop, elsewhere
:class:`anyio.Event`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

import anyio

__all__ = ("EventLike", "FastLock", "LoopEvent", "event_factory")


class EventLike(Protocol):
    """What the connection needs from an event."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> None: ...


class FastLock:
    """A FIFO lock, free of charge when nobody holds it (see the module)."""

    __slots__ = ("_locked", "_waiters")

    def __init__(self) -> None:
        self._locked = False
        self._waiters: deque[anyio.Event] | None = None

    def locked(self) -> bool:
        """Whether a task holds the lock."""
        return self._locked

    async def acquire(self) -> None:
        """Take the lock, waiting for it in FIFO order if it is held.

        No checkpoint when the lock is free. Cancelled while waiting, the
        caller does not get the lock, even if it was just handed over.
        """
        if not self._locked:
            self._locked = True
            return
        if self._waiters is None:
            self._waiters = deque()
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():  # handed over as the wait was cancelled
                self.release()
            else:
                self._waiters.remove(event)
            raise

    def release(self) -> None:
        """Hand the lock to the first waiter, or free it."""
        assert self._locked, "release of an unlocked FastLock"
        if self._waiters:
            self._waiters.popleft().set()  # it owns the lock now
        else:
            self._locked = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class LoopEvent:
    """A one-shot event on a future of a given asyncio loop.

    It saves :class:`anyio.Event` the look-ups of the backend and of the
    running loop on each creation and wait. Cancelling :meth:`wait` cancels
    the future: the event is then spent, as the connection's events are
    made for one wait each.
    """

    __slots__ = ("_future",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._future: asyncio.Future[None] = loop.create_future()

    def set(self) -> None:
        if not self._future.done():
            self._future.set_result(None)

    def is_set(self) -> bool:
        return self._future.done()

    async def wait(self) -> None:
        await self._future


def event_factory(loop: asyncio.AbstractEventLoop | None) -> Callable[[], EventLike]:
    """Events bound to ``loop``, or :class:`anyio.Event` if it is ``None``."""
    if loop is None:
        return anyio.Event
    return lambda: LoopEvent(loop)
