"""The conformance summary: cases per category, role and backend, printed at
the end of the pytest run (so that it shows in the CI log).

Columns: ``passed`` (of which ``non-strict``: an outcome Autobahn also
accepts, see ``_model.Case.non_strict``), ``failed`` (errors included), and
``xfail``: known gaps of anyws, marked ``xfail(strict=True)`` in the case
table with the reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest

from ..io_support import stock_streams

__all__ = ("pytest_runtest_logreport", "pytest_terminal_summary")

CATEGORIES = {
    1: "framing",
    2: "pings and pongs",
    3: "reserved bits",
    4: "reserved opcodes",
    5: "fragmentation",
    6: "UTF-8 handling",
    7: "close handling",
    9: "limits and speed",
    10: "miscellaneous",
    12: "deflate payloads",
    13: "deflate parameters",
}

_ID = re.compile(
    r"\[(\d+)\.[\d.]+-(server|client)-(asyncio-anyio|asyncio|trio-anyio|trio)\]$"
)
_BACKENDS = ("asyncio", "asyncio-anyio", "trio", "trio-anyio")

# (category, role, backend) -> Counter of "passed", "non-strict", "failed",
# "xfail".
_results: dict[tuple[int, str, str], Counter[str]] = {}


def _outcome(report: pytest.TestReport) -> str | None:
    """How a report counts, or ``None`` if it does not decide the test."""
    if report.when == "call" or report.outcome != "passed":
        if hasattr(report, "wasxfail"):
            return "xfail" if report.skipped else "failed"
        if report.passed:
            verdicts = dict(report.user_properties)
            return "non-strict" if verdicts.get("verdict") == "non-strict" else "passed"
        return "failed" if report.failed else None
    return None


@pytest.fixture(autouse=True)
def _stock_streams(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run the ``-asyncio-anyio`` and ``-trio-anyio`` cases on AnyIO's stock
    socket streams."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.id.endswith("-anyio"):
        with stock_streams():
            yield
    else:
        yield


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count each conformance case once, by its outcome."""
    match = _ID.search(report.nodeid)
    if match is None or "conformance" not in report.nodeid:
        return
    outcome = _outcome(report)
    if outcome is None:
        return
    key = (int(match[1]), match[2], match[3])
    _results.setdefault(key, Counter())[outcome] += 1


def _cell(counts: Counter[str]) -> str:
    passed = counts["passed"] + counts["non-strict"]
    text = f"{passed:4d} / {counts['failed']:<3d}"
    extras = []
    if counts["non-strict"]:
        extras.append(f"{counts['non-strict']} ns")
    if counts["xfail"]:
        extras.append(f"{counts['xfail']} xf")
    return f"{text} {', '.join(extras):<12}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print passed / failed per category, role and backend."""
    if not _results:
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "conformance summary (Autobahn categories)")
    write("passed / failed; ns: of the passed, non-strict; xf: known gaps (xfail)")
    header = f"{'category':<24} {'role':<7}"
    backends = _BACKENDS
    for backend in backends:
        header += f" {backend:<24}"
    write(header)
    totals = {backend: Counter[str]() for backend in backends}
    for category in sorted({key[0] for key in _results}):
        for role in ("server", "client"):
            cells = [_results.get((category, role, b)) for b in backends]
            if not any(cells):
                continue
            name = f"{category:>2} {CATEGORIES.get(category, '?')}"
            line = f"{name:<24} {role:<7}"
            for backend, counts in zip(backends, cells, strict=True):
                counts = counts or Counter()
                totals[backend].update(counts)
                line += f" {_cell(counts)}"
            write(line)
    line = f"{'all':<24} {'':<7}"
    for backend in backends:
        line += f" {_cell(totals[backend])}"
    write(line)
