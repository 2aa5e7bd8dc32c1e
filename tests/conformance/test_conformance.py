"""The conformance cases, each against the anyws server and the anyws client,
on asyncio (over anyws's own stream and over AnyIO's stock one) and on trio.
Test IDs read ``<case>-<role>-<backend>``, for example ``6.4.2-server-trio``;
``conftest.py`` prints the summary table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import anyio
import pytest

from anyws.exceptions import InvalidHandshake

from ._cases_basic import basic_cases
from ._cases_close import close_cases, limit_cases, misc_cases
from ._cases_deflate import deflate_cases
from ._cases_utf8 import INVALID, VALID, first_invalid, utf8_cases
from ._model import Case, describe, judge
from ._runner import run_case

#: Test-ID suffix -> AnyIO backend; ``asyncio-anyio`` and ``trio-anyio`` run
#: on AnyIO's stock socket streams (``conftest.py`` switches anyws's own
#: streams off).
BACKENDS = {
    "asyncio": "asyncio",
    "asyncio-anyio": "asyncio",
    "trio": "trio",
    "trio-anyio": "trio",
}

#: Generous: a case takes milliseconds; this only stops a hang.
TIMEOUT = 60

CASES: list[Case] = [
    *basic_cases(),
    *utf8_cases(),
    *close_cases(),
    *limit_cases(),
    *misc_cases(),
    *deflate_cases(),
]


def _params() -> Iterator[object]:
    for case in CASES:
        gaps = dict(case.gaps)
        for role in case.roles:
            marks = []
            if role in gaps:
                marks.append(pytest.mark.xfail(strict=True, reason=gaps[role]))
            for suffix, backend in BACKENDS.items():
                yield pytest.param(
                    case, role, backend, id=f"{case.id}-{role}-{suffix}", marks=marks
                )


@pytest.mark.parametrize(("case", "role", "anyio_backend"), list(_params()))
async def test_case(
    case: Case,
    role: str,
    anyio_backend: str,
    record_property: Callable[[str, object], None],
) -> None:
    with anyio.fail_after(TIMEOUT):
        outcome = await run_case(case, role)
    verdict = judge(case, outcome.items)
    assert verdict is not None, (
        f"{case.id} {case.title} ({case.rfc}): expected "
        f"{describe(case.expect)}; got {describe(outcome.items)}"
    )
    refused = case.deflate is not None and case.deflate.client_refuses
    if refused:
        assert isinstance(outcome.local_error, InvalidHandshake), outcome.local_error
    else:
        assert outcome.local_error is None, repr(outcome.local_error)
    if case.local_close is not None:
        assert outcome.local_close == case.local_close, (
            f"anyws reports close code {outcome.local_close}, "
            f"expected {case.local_close}"
        )
    record_property("verdict", verdict)


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("value", [v for _, v in VALID])
def test_utf8_oracle_accepts_valid(value: str) -> None:
    assert first_invalid(value.encode()) is None


@pytest.mark.parametrize("data", [d for _, d in INVALID])
def test_utf8_oracle_agrees_with_python(data: bytes) -> None:
    position = first_invalid(data)
    assert position is not None
    with pytest.raises(UnicodeDecodeError):
        data.decode()
    # Every strict prefix before the bad byte can still be completed.
    assert all(first_invalid(data[:n]) in (None, n) for n in range(position + 1))
