"""The tasks of a server's connections, for :mod:`anyws.server`.

A server starts a handler task per connection, and its connections start
reader and keepalive tasks. Spawned in an AnyIO task group, each of them
carries, besides the task itself, a task handle with its own cancel scope,
an event and a wrapper coroutine (AnyIO 4.14 and later); a task group of its
own per connection adds another scope. That is about 2.5 KiB per idle
connection on asyncio and 5 KiB on trio: a fifth of the whole. A
:class:`TaskPool` runs them with less, and with the same semantics as a task
group owned by the server:

* on trio, the tasks go into a trio nursery that the pool's host task keeps
  open inside the server's task group: trio's own structured concurrency,
  without the wrappers;
* on asyncio, each task is an asyncio task that enters one AnyIO cancel scope
  of its own, so cancellation inside it stays AnyIO's (level-triggered,
  respecting shields). When the host task is cancelled (the server's task
  group is), it cancels those scopes and waits for every task to finish,
  shielded, as a task group would.

A task that raises anything but a cancellation ends the pool: the others are
cancelled, and the host task raises that exception (several in a
``BaseExceptionGroup``, as a task group would; an error wins over the
cancellation of the host), which then leaves the server's ``async with``. The
server's tasks catch every ``Exception`` themselves, so this is for the
``BaseException`` of a handler.

Tasks may be started from a callback of the event loop (asyncio), while the
host task runs; after :meth:`TaskPool.close`, once the pool is empty, the
host returns and no task can be started any more.

The pool also runs timers (:meth:`TaskPool.call_later`), for keepalive
pings: the event loop's on asyncio; on trio, which has none, a heap of
deadlines watched by one task of the pool for all the connections.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc

from ._compat import BaseExceptionGroup, single_exception

if TYPE_CHECKING:  # pragma: no cover
    import trio

__all__ = ("Spawner", "TaskPool", "Timer")

logger = logging.getLogger("anyws.server")


class Timer(Protocol):
    """What :meth:`TaskPool.call_later` returns."""

    def cancel(self) -> None:
        """Do not call the callback (if it was not called yet)."""


class TaskPool:
    """Tasks owned by a host task (see the module).

    Start the host with ``await task_group.start(pool.run)``; then
    :meth:`start_soon` starts tasks, and :meth:`close` lets the host return
    once every task finished.
    """

    __slots__ = (
        "_cancelled",
        "_closing",
        "_errors",
        "_loop",
        "_nursery",
        "_scope_class",
        "_stop",
        "_tasks",
        "_timers",
        "_waiter",
    )

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: asyncio: the backend's cancel scope class (made without a look-up
        #: of the running library, even from a callback of the loop).
        self._scope_class: type[anyio.CancelScope] = anyio.CancelScope
        #: asyncio: each task that has not finished, with its cancel scope.
        self._tasks: dict[asyncio.Task[None], anyio.CancelScope] = {}
        #: asyncio: the host waits on it; set when the pool may have changed.
        self._waiter: asyncio.Future[None] | None = None
        self._cancelled = False
        self._closing = False
        self._errors: list[BaseException] = []
        self._timers: _TrioTimers | None = None

    # -- the host task -----------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Host the tasks until :meth:`close` and the last task's end.

        Raises:
            BaseException: what a task raised (not a cancellation).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio
            await self._run_trio(task_status)
        else:
            await self._run_asyncio(loop, task_status)

    async def _run_trio(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        import trio

        self._stop = trio.Event()
        timers = self._timers = _TrioTimers()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(timers.run, name="anyws timers")
                task_status.started()
                await self._stop.wait()
                timers.stop()
        except BaseExceptionGroup as group:
            # As on asyncio: errors win over the cancellation of the host,
            # and a single one comes out as itself.
            errors = group.split(trio.Cancelled)[1]
            if errors is None:
                raise
            with single_exception():
                raise errors from None
        finally:
            self._nursery = None

    async def _run_asyncio(
        self, loop: asyncio.AbstractEventLoop, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        self._scope_class = type(anyio.CancelScope())
        self._loop = loop
        task_status.started()
        try:
            while not (self._errors or (self._closing and not self._tasks)):
                self._waiter = loop.create_future()
                await self._waiter
        except BaseException:
            # Cancelled, like a task group's host: cancel the tasks, wait.
            with anyio.CancelScope(shield=True):
                await self._cancel_and_join()
            if not self._errors:
                raise
        else:
            if self._errors:
                with anyio.CancelScope(shield=True):
                    await self._cancel_and_join()
        finally:
            self._waiter = None
            self._loop = None  # no new tasks
        if self._errors:
            errors, self._errors = self._errors, []
            with single_exception():
                raise BaseExceptionGroup("errors in the tasks of a server", errors)

    async def _cancel_and_join(self) -> None:
        assert self._loop is not None
        self._cancelled = True
        for scope in self._tasks.values():
            scope.cancel()
        while self._tasks:
            self._waiter = self._loop.create_future()
            await self._waiter

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- starting tasks ----------------------------------------------------------

    def start_soon(
        self, func: Callable[..., Awaitable[Any]], *args: Any, name: object = None
    ) -> None:
        """Start ``func(*args)`` in a new task of the pool.

        Raises:
            RuntimeError: the host is not running (not started, or done).
        """
        nursery = self._nursery
        if nursery is not None:
            nursery.start_soon(func, *args, name=name)
            return
        loop = self._loop
        if loop is None:
            raise RuntimeError("this task pool is not running")
        scope = self._scope_class()
        if self._cancelled:
            scope.cancel()
        task = loop.create_task(
            self._run_task(func, args, scope), name=None if name is None else str(name)
        )
        self._tasks[task] = scope
        # A callback rather than a ``finally``: a task cancelled before its
        # first step never runs its coroutine.
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        del self._tasks[task]
        self._wake()

    async def _run_task(
        self,
        func: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        scope: anyio.CancelScope,
    ) -> None:
        try:
            with scope:
                await func(*args)
        except asyncio.CancelledError:
            raise  # not the pool's: the task itself was cancelled
        except BaseException as exc:
            self._errors.append(exc)
            if not self._cancelled:
                self._cancelled = True
                for other in self._tasks.values():
                    if other is not scope:
                        other.cancel()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback()`` in ``delay`` seconds, from the event loop (or
        the pool's timer task on trio): it must not block, and should not
        raise (an error is logged).

        Raises:
            RuntimeError: the host is not running.
        """
        if self._loop is not None:
            return self._loop.call_later(delay, _run_callback, callback)
        if self._nursery is None:
            raise RuntimeError("this task pool is not running")
        assert self._timers is not None
        return self._timers.call_later(delay, callback)

    def close(self) -> None:
        """Let the host return once the pool is empty (tasks may still be
        started until then)."""
        if self._stop is not None:
            self._stop.set()
        self._closing = True
        self._wake()


class _TrioTimer:
    __slots__ = ("_callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        self._callback = None

    def _fire(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            _run_callback(callback)


def _run_callback(callback: Callable[[], None]) -> None:
    """Call a timer's callback; log what it raises (on both backends)."""
    try:
        callback()
    except Exception:
        logger.error("Error in a timer callback", exc_info=True)


class _TrioTimers:
    """Timers for trio: a heap of deadlines and one task that sleeps until
    the first. A cancelled timer stays in the heap until its time."""

    __slots__ = ("_count", "_heap", "_scope", "_stopped")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _TrioTimer]] = []
        self._count = itertools.count()
        self._scope: trio.CancelScope | None = None
        self._stopped = False

    def call_later(self, delay: float, callback: Callable[[], None]) -> _TrioTimer:
        import trio

        timer = _TrioTimer(callback)
        when = trio.current_time() + delay
        heapq.heappush(self._heap, (when, next(self._count), timer))
        scope = self._scope
        if scope is not None and when < scope.deadline:
            scope.deadline = when  # wake the timer task earlier
        return timer

    async def run(self) -> None:
        import trio

        while not self._stopped:
            deadline = self._heap[0][0] if self._heap else math.inf
            with trio.CancelScope(deadline=deadline) as self._scope:
                await trio.sleep_forever()
            self._scope = None
            now = trio.current_time()
            heap = self._heap
            while heap and heap[0][0] <= now:
                heapq.heappop(heap)[2]._fire()

    def stop(self) -> None:
        self._stopped = True
        if self._scope is not None:
            self._scope.cancel()


#: What a connection starts its tasks in: a :class:`TaskPool`, or the task
#: group of :func:`anyws.connect`.
Spawner = TaskPool | anyio.abc.TaskGroup
