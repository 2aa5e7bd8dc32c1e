"""The task pool of a server's connections (:mod:`anyws._tasks`).

It must behave as a task group owned by the server: tasks run until done, the
host returns only after the last one, a ``BaseException`` of one task
cancels the others and comes out of the host, cancelling the host cancels
the tasks the AnyIO way (again at every wait, shields respected), and the
host waits for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import anyio
import anyio.abc
import pytest

from anyws._compat import BaseExceptionGroup
from anyws._tasks import TaskPool, _TrioTimers

from .io_support import TIMEOUT


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The pool does not depend on the streams: each backend once."""
    yield str(request.param)


class Stop(BaseException):
    pass


async def _host(
    pool: TaskPool,
    done: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    try:
        await pool.run(task_status=task_status)
    finally:
        done.set()


async def test_the_host_returns_once_closed_and_every_task_finished() -> None:
    pool = TaskPool()
    host_done = anyio.Event()
    release = anyio.Event()
    finished: list[int] = []

    async def job(number: int) -> None:
        await release.wait()
        finished.append(number)

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            await task_group.start(_host, pool, host_done)
            for number in range(3):
                pool.start_soon(job, number)
            pool.close()
            await anyio.wait_all_tasks_blocked()
            assert not host_done.is_set()
            assert finished == []
            release.set()
            await host_done.wait()
            assert sorted(finished) == [0, 1, 2]
            with pytest.raises(RuntimeError, match="not running"):
                pool.start_soon(job, 3)


async def test_tasks_may_start_until_the_pool_is_empty() -> None:
    pool = TaskPool()
    host_done = anyio.Event()
    finished: list[str] = []

    async def second() -> None:
        finished.append("second")

    async def first() -> None:
        await anyio.lowlevel.checkpoint()
        pool.start_soon(second)  # after close(), while the pool is not empty
        finished.append("first")

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            await task_group.start(_host, pool, host_done)
            pool.start_soon(first)
            pool.close()
            await host_done.wait()
    assert sorted(finished) == ["first", "second"]


async def test_an_empty_pool_returns_at_close() -> None:
    pool = TaskPool()
    host_done = anyio.Event()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            await task_group.start(_host, pool, host_done)
            pool.close()
            await host_done.wait()


def test_starting_before_the_host_runs_raises() -> None:
    async def job() -> None:  # pragma: no cover - never started
        pass

    pool = TaskPool()
    with pytest.raises(RuntimeError, match="not running"):
        pool.start_soon(job)


async def test_tasks_carry_their_names() -> None:
    pool = TaskPool()
    names: list[str | None] = []

    async def job() -> None:
        names.append(anyio.get_current_task().name)

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            await task_group.start(pool.run)
            pool.start_soon(job, name="anyws handler")
            pool.close()
    assert names == ["anyws handler"]


async def test_a_base_exception_cancels_the_others_and_leaves_the_host() -> None:
    pool = TaskPool()
    host_done = anyio.Event()
    gate = anyio.Event()
    seen: list[str] = []

    async def stubborn() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            # Still in a cancelled scope: every wait is cancelled again.
            with pytest.raises(anyio.get_cancelled_exc_class()):
                await anyio.sleep_forever()
            seen.append("cancelled again")

    async def shielded() -> None:
        with anyio.CancelScope(shield=True):
            await gate.wait()
            seen.append("shield held")

    async def failing() -> None:
        raise Stop

    with anyio.fail_after(TIMEOUT):
        with pytest.raises(BaseExceptionGroup) as caught:
            async with anyio.create_task_group() as task_group:
                await task_group.start(_host, pool, host_done)
                pool.start_soon(stubborn)
                pool.start_soon(shielded)
                await anyio.wait_all_tasks_blocked()
                pool.start_soon(failing)
                await anyio.wait_all_tasks_blocked()
                assert seen == ["cancelled again"]
                assert not host_done.is_set()  # waits for the shielded task
                gate.set()
                await host_done.wait()
    # The task group of the test wraps what the host raised, the Stop itself.
    assert [type(exc) for exc in caught.value.exceptions] == [Stop]
    assert seen == ["cancelled again", "shield held"]


async def test_cancelling_the_host_cancels_the_tasks_and_waits_for_them() -> None:
    pool = TaskPool()
    host_done = anyio.Event()
    gate = anyio.Event()
    seen: list[str] = []

    async def waiting() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise

    async def shielded() -> None:
        with anyio.CancelScope(shield=True):
            await gate.wait()
        seen.append("shield held")
        await anyio.sleep_forever()  # cancelled here

    async def late() -> None:  # started while the pool is being cancelled
        await anyio.sleep_forever()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            await task_group.start(_host, pool, host_done)
            pool.start_soon(waiting)
            pool.start_soon(shielded)
            await anyio.wait_all_tasks_blocked()
            task_group.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await anyio.wait_all_tasks_blocked()
                assert seen == ["cancelled"]
                pool.start_soon(late)
                await anyio.wait_all_tasks_blocked()
                assert not host_done.is_set()
                gate.set()
                await host_done.wait()
    assert seen == ["cancelled", "shield held"]


async def test_a_cancellation_of_its_own_does_not_end_the_pool(
    anyio_backend: str,
) -> None:
    pool = TaskPool()
    finished: list[str] = []

    async def cancelled_alone() -> None:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await anyio.sleep_forever()
        finished.append("own scope")

    async def other() -> None:
        await anyio.lowlevel.checkpoint()
        finished.append("other")

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            await task_group.start(pool.run)
            pool.start_soon(cancelled_alone)
            pool.start_soon(other)
            pool.close()
    assert sorted(finished) == ["other", "own scope"]


# -- asyncio only: tasks started from callbacks, cancelled natively -----------


@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_tasks_start_from_a_callback_of_the_loop() -> None:
    pool = TaskPool()
    started = anyio.Event()

    async def job() -> None:
        started.set()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            await task_group.start(pool.run)
            asyncio.get_running_loop().call_soon(pool.start_soon, job)
            await started.wait()
            pool.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_a_task_cancelled_natively_ends_alone() -> None:
    pool = TaskPool()
    host_done = anyio.Event()
    finished: list[str] = []

    async def job(name: str) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            finished.append(name)

    async def other() -> None:
        await anyio.sleep_forever()

    def task_named(name: str) -> asyncio.Task[object]:
        (task,) = [t for t in asyncio.all_tasks() if t.get_name() == name]
        return task

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            await task_group.start(_host, pool, host_done)
            # Cancelled before its first step: its coroutine never runs.
            pool.start_soon(job, "unstarted", name="unstarted")
            task_named("unstarted").cancel()
            # Cancelled while it runs.
            pool.start_soon(job, "running", name="running")
            pool.start_soon(other, name="other")
            await anyio.wait_all_tasks_blocked()
            task_named("running").cancel()
            await anyio.wait_all_tasks_blocked()
            assert finished == ["running"]
            assert not host_done.is_set()  # "other" still runs
            pool.close()
            task_group.cancel_scope.cancel()
    assert host_done.is_set()


async def test_two_errors_leave_the_host_in_a_group() -> None:
    class Other(BaseException):
        pass

    pool = TaskPool()

    async def failing(exc: BaseException) -> None:
        raise exc

    with anyio.fail_after(TIMEOUT):
        with pytest.raises(BaseExceptionGroup) as caught:
            async with anyio.create_task_group() as task_group:
                await task_group.start(pool.run)
                pool.start_soon(failing, Stop())
                pool.start_soon(failing, Other())
    (group,) = caught.value.exceptions  # the host's, in the test's group
    assert isinstance(group, BaseExceptionGroup)
    assert sorted(type(exc).__name__ for exc in group.exceptions) == ["Other", "Stop"]


async def test_an_error_wins_over_a_cancellation_of_the_host() -> None:
    pool = TaskPool()

    async def failing() -> None:
        raise Stop

    with anyio.fail_after(TIMEOUT):
        with pytest.raises(BaseExceptionGroup) as caught:
            async with anyio.create_task_group() as task_group:
                await task_group.start(pool.run)
                pool.start_soon(failing)
                # The task fails before the host sees its cancellation.
                task_group.cancel_scope.cancel()
    assert [type(exc) for exc in caught.value.exceptions] == [Stop]


# -- timers -------------------------------------------------------------------


async def test_timers_fire_in_order_and_may_be_cancelled() -> None:
    pool = TaskPool()
    fired: list[str] = []
    done = anyio.Event()

    def last() -> None:
        fired.append("last")
        done.set()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            await task_group.start(pool.run)
            pool.call_later(0.06, last)
            pool.call_later(0.02, lambda: fired.append("first"))
            cancelled = pool.call_later(0.01, lambda: fired.append("cancelled"))
            cancelled.cancel()
            # Earlier than every timer so far: wakes the timer task sooner.
            pool.call_later(0, lambda: fired.append("at once"))
            await done.wait()
            pool.close()
    assert fired == ["at once", "first", "last"]


async def test_a_failing_timer_callback_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = TaskPool()
    done = anyio.Event()

    def failing() -> None:
        raise RuntimeError("boom")

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            await task_group.start(pool.run)
            pool.call_later(0, failing)
            pool.call_later(0.01, done.set)  # timers keep working
            await done.wait()
            pool.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)


async def test_timers_need_a_running_pool() -> None:
    pool = TaskPool()
    with pytest.raises(RuntimeError, match="not running"):
        pool.call_later(1, lambda: None)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as task_group:
            await task_group.start(pool.run)
            pool.close()
    with pytest.raises(RuntimeError, match="not running"):
        pool.call_later(1, lambda: None)


@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_trio_timers_stopped_before_they_run_return_at_once() -> None:
    timers = _TrioTimers()
    timers.call_later(60, lambda: None)
    timers.stop()
    with anyio.fail_after(TIMEOUT):
        await timers.run()  # does not wait for the timer
