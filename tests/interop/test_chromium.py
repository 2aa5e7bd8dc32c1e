"""Interoperability with a real browser: headless Chromium, both backends.

An anyws server serves a page through ``process_request``; the page opens a
WebSocket, exchanges text and binary messages (1 MiB included) with
permessage-deflate as Chromium offers it, closes, and reports what it saw with
a ``fetch()`` to ``/report``, which ``process_request`` also answers. The
server side records what the connection handler saw. One Chromium runs per
test, in its own process group with a fresh profile, and is stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import anyio.abc
import pytest
from anyio.streams.memory import MemoryObjectSendStream

import anyws
from anyws.sansio.extensions.permessage_deflate import PerMessageDeflate
from tests.interop._peers import find_chromium

#: Per test; a Chromium start takes about a second on an idle machine.
TIME_LIMIT = 30

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # needed as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    # CI containers often have a small /dev/shm; Debian's launcher means to
    # add this flag then, but its size test is not reliable.
    "--disable-dev-shm-usage",
    # Into chromium.log: the pages' console messages (a failed fetch, an
    # uncaught error) and Chromium's own errors, for failure messages.
    "--enable-logging=stderr",
    "--v=0",
)

#: Lines of chromium.log that say nothing about the test (no D-Bus here).
_LOG_NOISE = ("dbus/", "D-Bus", "unexpected operator")

#: What Chromium offers (and has offered for years) and what anyws answers
#: with its default server settings (DECISIONS.md: 12 window bits).
CHROMIUM_OFFER = "permessage-deflate; client_max_window_bits"
ANYWS_ANSWER = (
    "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
)

PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>anyws interop</title>
<script>
"use strict";
// Query: ws (WebSocket URL), report (URL for the outcome), mode (close-1000,
// close-plain or wait: send "ready" and wait for the server to close).
const params = new URLSearchParams(location.search);
const outcome = { mode: params.get("mode"), echoes: [], errors: [] };
let reported = false;

function report() {
  if (reported) return;
  reported = true;
  const query = new URLSearchParams({ outcome: JSON.stringify(outcome) });
  fetch(params.get("report") + "?" + query, { cache: "no-store" });
}

window.addEventListener("error", (event) => {
  outcome.errors.push(String(event.message));
  report();
});

function randomBytes(size) {
  const data = new Uint8Array(size);
  // getRandomValues fills at most 64 KiB per call.
  for (let i = 0; i < size; i += 65536) {
    crypto.getRandomValues(data.subarray(i, Math.min(size, i + 65536)));
  }
  return data;
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const messages = [
  "h\\u00e9llo w\\u00f6rld \\u20ac \\ud83d\\ude00 " + "compressible ".repeat(200),
  Uint8Array.from({ length: 256 }, (_, i) => i),
  randomBytes(1 << 20),
];

const ws = new WebSocket(params.get("ws"));
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  outcome.extensions = ws.extensions;
  for (const message of messages) ws.send(message);
};
ws.onmessage = (event) => {
  const want = messages[outcome.echoes.length];
  const same = typeof want === "string"
    ? event.data === want
    : event.data instanceof ArrayBuffer && sameBytes(new Uint8Array(event.data), want);
  outcome.echoes.push(same);
  if (outcome.echoes.length < messages.length) return;
  if (outcome.mode === "close-1000") ws.close(1000, "done");
  else if (outcome.mode === "close-plain") ws.close();
  else ws.send("ready");
};
ws.onerror = () => outcome.errors.push("WebSocket error event");
ws.onclose = (event) => {
  outcome.close = { code: event.code, reason: event.reason, clean: event.wasClean };
  report();
};
</script>
"""

ProcessRequest = Callable[
    [str, anyws.Headers],
    Awaitable[tuple[HTTPStatus, list[tuple[str, str]], bytes] | None],
]


def web_pages(reports: MemoryObjectSendStream[dict[str, Any]]) -> ProcessRequest:
    """``process_request``: the page, ``/report``, 404; ``/ws`` goes on."""

    async def process_request(
        path: str, headers: anyws.Headers
    ) -> tuple[HTTPStatus, list[tuple[str, str]], bytes] | None:
        url = urlsplit(path)
        if url.path == "/ws":
            return None
        if url.path == "/page":
            content = [("Content-Type", "text/html; charset=utf-8")]
            return HTTPStatus.OK, [*content, ("Cache-Control", "no-store")], PAGE
        if url.path == "/report":
            [outcome] = parse_qs(url.query)["outcome"]
            reports.send_nowait(json.loads(outcome))
            return HTTPStatus.NO_CONTENT, [], b""
        return HTTPStatus.NOT_FOUND, [("Content-Type", "text/plain")], b"not found\n"

    return process_request


@dataclass
class Seen:
    """What the connection handler saw on the server."""

    offer: str | None = None
    origin: str | None = None
    extensions: list[Any] = field(default_factory=list)
    messages: list[tuple[str, int]] = field(default_factory=list)
    loop_ended_silently: bool = False
    final: anyws.ConnectionClosed | None = None
    close: tuple[int | None, str | None] = (None, None)


def echo_handler(
    seen: MemoryObjectSendStream[Seen], ready: anyio.Event
) -> Callable[[anyws.WebSocketServerProtocol], Awaitable[None]]:
    """Echo every message; "ready" sets ``ready`` instead."""

    async def handler(ws: anyws.WebSocketServerProtocol) -> None:
        record = Seen(
            offer=ws.request_headers.get("Sec-WebSocket-Extensions"),
            origin=ws.origin,
            extensions=list(ws.extensions),
        )
        try:
            # DECISIONS.md: the loop ends silently on 1000, 1001 and 1005.
            async for message in ws:
                if message == "ready":
                    ready.set()
                    continue
                record.messages.append((type(message).__name__, len(message)))
                await ws.send(message)
            record.loop_ended_silently = True
        finally:
            try:
                await ws.recv()
            except anyws.ConnectionClosed as exc:
                record.final = exc
            record.close = (ws.close_code, ws.close_reason)
            seen.send_nowait(record)

    return handler


async def _stop_chromium(process: anyio.abc.Process) -> None:
    """SIGTERM lets Chromium end its helpers; then kill what is left."""
    if process.returncode is None:
        process.terminate()
        with anyio.move_on_after(10):
            await process.wait()
    # The browser is the leader of its own process group (start_new_session):
    # kill the group so that no renderer or zygote outlives the test.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    await process.wait()


@asynccontextmanager
async def chromium(
    executable: str, url: str, workdir: Path
) -> AsyncIterator[anyio.abc.Process]:
    """Run headless Chromium on ``url`` with a fresh profile in ``workdir``.

    Its output goes to ``workdir / "chromium.log"`` (see :func:`chromium_log`),
    its network log to ``workdir / "netlog.json"`` (open it in
    https://netlog-viewer.appspot.com).
    """
    command = [
        executable,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={workdir / 'profile'}",
        # What the network stack did (no payloads), for post-mortems.
        f"--log-net-log={workdir / 'netlog.json'}",
        url,
    ]
    with (workdir / "chromium.log").open("wb") as log:
        process = await anyio.open_process(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            with anyio.CancelScope(shield=True):
                await _stop_chromium(process)
                await process.aclose()


def chromium_log(workdir: Path, lines: int = 40) -> str:
    """The end of what :func:`chromium` logged in ``workdir``, without noise."""
    try:
        text = (workdir / "chromium.log").read_text(errors="replace")
    except OSError as exc:
        return f"(no chromium.log: {exc})"
    kept = [
        line
        for line in text.splitlines()
        if not any(noise in line for noise in _LOG_NOISE)
    ]
    return "\n".join(kept[-lines:]) or "(chromium.log says nothing)"


def page_url(pages_port: int, ws_port: int, mode: str) -> str:
    query = urlencode(
        {"mode": mode, "ws": f"ws://127.0.0.1:{ws_port}/ws", "report": "/report"}
    )
    return f"http://127.0.0.1:{pages_port}/page?{query}"


def check_connection(seen: Seen, origin: str) -> None:
    """Compression as Chromium offers it, and the three messages echoed."""
    assert seen.offer == CHROMIUM_OFFER
    assert seen.origin == origin
    [extension] = seen.extensions
    assert isinstance(extension, PerMessageDeflate)
    assert (
        extension.remote_no_context_takeover,
        extension.local_no_context_takeover,
        extension.remote_max_window_bits,
        extension.local_max_window_bits,
    ) == (False, False, 12, 12)
    assert [kind for kind, _ in seen.messages] == ["str", "bytes", "bytes"]
    assert [size for _, size in seen.messages][1:] == [256, 2**20]


def check_outcome(outcome: dict[str, Any], code: int, reason: str) -> None:
    assert outcome["errors"] == []
    assert outcome["extensions"] == ANYWS_ANSWER
    assert outcome["echoes"] == [True, True, True]
    assert outcome["close"] == {"code": code, "reason": reason, "clean": True}


# Chromium compresses every message, random ones too, and deflate makes
# random data a little longer: the 1 MiB message is slightly over 1 MiB on
# the wire, which anyws (like 8.1 and ws) checks against max_size before
# inflating. Hence 2 MiB here.
MAX_SIZE = 2**21


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return find_chromium()


@pytest.mark.parametrize(
    ("mode", "code", "reason"),
    [("close-1000", 1000, "done"), ("close-plain", 1005, "")],
)
async def test_browser_exchanges_and_closes(
    chromium_path: str, tmp_path: Path, mode: str, code: int, reason: str
) -> None:
    """The page closes with ``close(1000, "done")`` or a plain ``close()``."""
    reports_in, reports = anyio.create_memory_object_stream[dict[str, Any]](4)
    seen_in, seen_out = anyio.create_memory_object_stream[Seen](4)
    with anyio.fail_after(TIME_LIMIT):
        async with reports_in, reports, seen_in, seen_out:
            async with anyws.serve(
                echo_handler(seen_in, anyio.Event()),
                "127.0.0.1",
                0,
                process_request=web_pages(reports_in),
                max_size=MAX_SIZE,
            ) as server:
                port = server.sockets[0].getsockname()[1]
                async with chromium(
                    chromium_path, page_url(port, port, mode), tmp_path
                ):
                    outcome = await reports.receive()
                    seen = await seen_out.receive()
    check_outcome(outcome, code, reason)
    check_connection(seen, f"http://127.0.0.1:{port}")
    # 1000 and 1005 are both normal closures (DECISIONS.md, item 16).
    assert seen.loop_ended_silently
    assert type(seen.final) is anyws.ConnectionClosedOK
    assert (seen.final.code, seen.final.reason) == (code, reason)
    assert seen.close == (code, reason)


async def run_server(
    handler: Callable[[anyws.WebSocketServerProtocol], Awaitable[None]],
    stop: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve WebSocket connections until ``stop`` is set, then shut down."""
    async with anyws.serve(handler, "127.0.0.1", 0, max_size=MAX_SIZE) as server:
        task_status.started(server.sockets[0].getsockname()[1])
        await stop.wait()


async def no_websocket(ws: anyws.WebSocketServerProtocol) -> None:
    pytest.fail("the page server got a WebSocket connection")


async def test_browser_sees_1001_at_server_shutdown(
    chromium_path: str, tmp_path: Path
) -> None:
    """Leaving ``async with serve`` closes the page's WebSocket with 1001.

    The page comes from a second server, which stays up to take the report.
    """
    reports_in, reports = anyio.create_memory_object_stream[dict[str, Any]](4)
    seen_in, seen_out = anyio.create_memory_object_stream[Seen](4)
    ready, stop = anyio.Event(), anyio.Event()
    with anyio.fail_after(TIME_LIMIT):
        async with reports_in, reports, seen_in, seen_out:
            async with (
                anyws.serve(
                    no_websocket, "127.0.0.1", 0, process_request=web_pages(reports_in)
                ) as pages,
                anyio.create_task_group() as tg,
            ):
                pages_port = pages.sockets[0].getsockname()[1]
                ws_port = await tg.start(run_server, echo_handler(seen_in, ready), stop)
                url = page_url(pages_port, ws_port, "wait")
                async with chromium(chromium_path, url, tmp_path):
                    await ready.wait()
                    stop.set()
                    seen = await seen_out.receive()
                    outcome = await reports.receive()
    check_outcome(outcome, 1001, "")
    check_connection(seen, f"http://127.0.0.1:{pages_port}")
    assert seen.loop_ended_silently
    assert type(seen.final) is anyws.ConnectionClosedOK
    assert (seen.final.code, seen.final.reason) == (1001, "")
    assert seen.close == (1001, "")
