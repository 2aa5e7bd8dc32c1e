"""The demo chat room in headless Chromium: two pages talk to each other.

The test serves the demo's own page and chat room (``examples/demo.py``), plus a
wrapper page holding two frames: the first opens the demo page and reports
every line it shows with a ``fetch`` to ``/report``; once it is connected, the
wrapper opens the second, which types a line and sends it through the page's
form (the ``say`` query parameter). The line must appear in the first page.
An anyws client in the room sees it too.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
from anyio.streams.memory import MemoryObjectSendStream

import anyws
from examples import demo
from tests.interop._peers import find_chromium
from tests.interop.test_chromium import TIME_LIMIT, ProcessRequest, chromium

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


#: What page a shows (in this order, reported maybe in another).
PAGE_A_SEES = ("joined (2 here)", "joined (3 here)", ": hello from page b")


def pages(lines: MemoryObjectSendStream[str]) -> ProcessRequest:
    """The demo's pages, plus the wrapper and ``/report``."""

    async def process_request(
        path: str, headers: anyws.Headers
    ) -> tuple[HTTPStatus, list[tuple[str, str]], bytes] | None:
        url = urlsplit(path)
        if url.path == "/two":
            return HTTPStatus.OK, [("Content-Type", "text/html")], WRAPPER
        if url.path == "/report":
            [line] = parse_qs(url.query)["line"]
            lines.send_nowait(line)
            return HTTPStatus.NO_CONTENT, [], b""
        return await demo.serve_page(path, headers)

    return process_request


async def test_a_message_typed_in_one_page_appears_in_the_other(
    tmp_path: Path,
) -> None:
    executable = find_chromium()
    room = demo.ChatRoom()
    lines_in, lines = anyio.create_memory_object_stream[str](100)
    with anyio.fail_after(TIME_LIMIT):
        async with lines_in, lines:
            async with anyws.serve(
                room.handler, "127.0.0.1", 0, process_request=pages(lines_in)
            ) as server:
                port = server.sockets[0].getsockname()[1]
                async with anyws.connect(f"ws://127.0.0.1:{port}/chat") as cli:
                    assert "joined (1 here)" in str(await cli.recv())
                    url = f"http://127.0.0.1:{port}/two"
                    async with chromium(executable, url, tmp_path):
                        # Page a reports each line with its own fetch: the
                        # reports may arrive in another order than the lines.
                        seen = []
                        async for line in lines:
                            seen.append(line)
                            if all(
                                any(part in s for s in seen) for part in PAGE_A_SEES
                            ):
                                break
                    # The terminal client in the room saw both pages join,
                    # and the message.
                    heard = [str(await cli.recv()) for _ in range(3)]
    assert "joined (2 here)" in heard[0]
    assert "joined (3 here)" in heard[1]
    assert heard[2].endswith(": hello from page b")
    assert heard[2] in seen
