"""The demo chat room in headless Chromium: two pages talk to each other.

The test serves the demo's own page and chat room (``examples/demo.py``), plus a
wrapper page holding two frames: the first opens the demo page and reports
every line it shows to ``/report``, one fetch after the other (so in order);
once it is connected, the wrapper opens the second, which types a line and
sends it through the page's form (the ``say`` query parameter). The line must
appear in the first page. An anyws client in the room sees it too.

Nothing here waits without a bound that says what it waited for: if page a
does not report its lines, if a report fails in Chromium, or if Chromium
exits, the test fails at once (or after :data:`LINES_WAIT`) with the lines
reported so far, every request and WebSocket connection the server saw, and
the end of Chromium's log (its console messages included).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import anyws
from examples import demo
from tests.interop._peers import find_chromium
from tests.interop.test_chromium import ProcessRequest, chromium, chromium_log

#: The whole test; it takes about a second on an idle machine. Chromium may
#: take 10 s to stop (then it is killed): this is above LINES_WAIT + 10 s.
TIME_LIMIT = 60

#: From Chromium's start to page a's last report (starting Chromium is the
#: slow part: about a second on an idle machine, several on a loaded one).
LINES_WAIT = 30

#: How long the anyws client may take to hear what page a already showed.
HEAR_WAIT = 10

WRAPPER = b"""<!doctype html>
<meta charset="utf-8">
<title>two demo pages</title>
<iframe id="a" src="/?report=/report"></iframe>
<script>
"use strict";
// Open the second page once the first one is connected.
const a = document.getElementById("a");
const timer = setInterval(() => {
  const status = a.contentDocument && a.contentDocument.getElementById("status");
  if (status && status.textContent === "connected") {
    clearInterval(timer);
    const b = document.createElement("iframe");
    b.src = "/?say=" + encodeURIComponent("hello from page b");
    document.body.appendChild(b);
  }
}, 50);
</script>
"""

#: What page a shows, in this order (and so reports, one after the other).
PAGE_A_SEES = ("joined (2 here)", "joined (3 here)", ": hello from page b")

#: A report from page a: the line, and ``None`` or why reporting it failed.
Report = tuple[str, str | None]


class Trace:
    """What the server saw, with the time since the test started."""

    def __init__(self) -> None:
        self.start = anyio.current_time()
        self.events: list[str] = []

    def add(self, event: str) -> None:
        self.events.append(f"{anyio.current_time() - self.start:7.3f} s  {event}")


def pages(reports: MemoryObjectSendStream[Report], trace: Trace) -> ProcessRequest:
    """The demo's pages, plus the wrapper and ``/report``."""

    async def process_request(
        path: str, headers: anyws.Headers
    ) -> tuple[HTTPStatus, list[tuple[str, str]], bytes] | None:
        trace.add(f"request GET {path}")
        url = urlsplit(path)
        if url.path == "/two":
            return HTTPStatus.OK, [("Content-Type", "text/html")], WRAPPER
        if url.path == "/report":
            query = parse_qs(url.query)
            if "failed" in query:
                [line], [error] = query["failed"], query["error"]
                reports.send_nowait((line, error))
            else:
                [line] = query["line"]
                reports.send_nowait((line, None))
            return HTTPStatus.NO_CONTENT, [], b""
        return await demo.serve_page(path, headers)

    return process_request


def traced(
    handler: Callable[[anyws.WebSocketServerProtocol], Awaitable[None]],
    trace: Trace,
) -> Callable[[anyws.WebSocketServerProtocol], Awaitable[None]]:
    """``handler``, which also notes when each connection opens and ends."""

    async def traced_handler(ws: anyws.WebSocketServerProtocol) -> None:
        peer = f"{ws.remote_address[0]}:{ws.remote_address[1]}"
        trace.add(f"WebSocket from {peer} open on {ws.path}")
        try:
            await handler(ws)
        finally:
            trace.add(f"WebSocket from {peer} ended with code {ws.close_code}")

    return traced_handler


async def lines_of_page_a(
    reports: MemoryObjectReceiveStream[Report], browser: anyio.abc.Process
) -> tuple[list[str], str | None]:
    """Collect page a's reports until it has shown as many lines as expected.

    Returns:
        The lines reported, and ``None`` or what went wrong: a report that
        failed in Chromium, Chromium exiting, or no more reports within
        :data:`LINES_WAIT`.
    """
    seen: list[str] = []
    problem: str | None = None
    with anyio.move_on_after(LINES_WAIT) as waited:
        async with anyio.create_task_group() as task_group:

            async def watch_chromium() -> None:
                nonlocal problem
                code = await browser.wait()
                problem = f"Chromium exited (code {code}) before page a was done"
                task_group.cancel_scope.cancel()

            task_group.start_soon(watch_chromium)
            async for line, error in reports:
                if error is not None:
                    problem = f"page a could not report {line!r}: {error}"
                    break
                seen.append(line)
                if len(seen) == len(PAGE_A_SEES):
                    break
            task_group.cancel_scope.cancel()
    if waited.cancelled_caught:
        problem = f"page a reported no further line within {LINES_WAIT} s"
    return seen, problem


def diagnosis(problem: str, seen: list[str], trace: Trace, workdir: Path) -> str:
    return "\n".join(
        [
            problem,
            f"page a should show, in this order: {PAGE_A_SEES}",
            f"page a reported: {seen}",
            "the server saw:",
            *trace.events,
            "the end of chromium.log:",
            chromium_log(workdir),
            f"Chromium's network log: {workdir / 'netlog.json'}",
        ]
    )


async def test_a_message_typed_in_one_page_appears_in_the_other(
    tmp_path: Path,
) -> None:
    executable = find_chromium()
    room = demo.ChatRoom()
    trace = Trace()
    reports_in, reports = anyio.create_memory_object_stream[Report](100)
    with anyio.fail_after(TIME_LIMIT):
        async with reports_in, reports:
            async with anyws.serve(
                traced(room.handler, trace),
                "127.0.0.1",
                0,
                process_request=pages(reports_in, trace),
            ) as server:
                port = server.sockets[0].getsockname()[1]
                async with anyws.connect(f"ws://127.0.0.1:{port}/chat") as cli:
                    assert "joined (1 here)" in str(await cli.recv())
                    url = f"http://127.0.0.1:{port}/two"
                    trace.add(f"starting Chromium on {url}")
                    async with chromium(executable, url, tmp_path) as browser:
                        seen, problem = await lines_of_page_a(reports, browser)
                    if problem is not None:
                        message = diagnosis(problem, seen, trace, tmp_path)
                        pytest.fail(message, pytrace=False)
                    # The terminal client in the room saw both pages join,
                    # and the message.
                    heard: list[str] = []
                    with anyio.move_on_after(HEAR_WAIT):
                        while len(heard) < 3:
                            heard.append(str(await cli.recv()))
                    if len(heard) < 3:
                        message = f"the anyws client heard only {heard}"
                        message += f" within {HEAR_WAIT} s"
                        message = diagnosis(message, seen, trace, tmp_path)
                        pytest.fail(message, pytrace=False)
    assert "joined (2 here)" in heard[0]
    assert "joined (3 here)" in heard[1]
    assert heard[2].endswith(": hello from page b")
    # Page a showed the same lines, in the same order (PAGE_A_SEES).
    assert seen == heard
