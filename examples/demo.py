"""The anyws demo: a chat room you can open in a browser.

Run it with ``bash scripts/run.sh`` (or ``python -m examples.demo``), open
http://127.0.0.1:8765/ in a browser, and join from a terminal with the
interactive client::

    python -m anyws ws://127.0.0.1:8765/

Every message that one participant sends is broadcast to all of them. The
page itself is served by the same server, through ``process_request``.
"""

from __future__ import annotations

import argparse
import http
import logging
import sys
from urllib.parse import urlsplit

import anyio
import anyio.abc

import anyws
from anyws.http import Headers

__all__ = ("PAGE", "ChatRoom", "main", "run", "serve_page")

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>anyws demo</title>
<style>
body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
#log { border: 1px solid #999; height: 20em; overflow-y: auto; padding: .5em; }
#log p { margin: .2em 0; } .me { color: #06c; } .sys { color: #777; }
</style></head>
<body>
<h1>anyws demo</h1>
<p id="status" class="sys">connecting&hellip;</p>
<div id="log"></div>
<form id="form"><input id="text" size="50" autocomplete="off" autofocus>
<button>Send</button></form>
<script>
"use strict";
const log = document.getElementById("log");
const status = document.getElementById("status");
const form = document.getElementById("form");
const input = document.getElementById("text");
// Hooks for the automated test: ?say=TEXT types TEXT and sends it once
// connected; ?report=PATH reports every line shown to PATH (?line=TEXT), one
// fetch after the other, so in order. A report that fails is reported as such
// (?failed=TEXT&error=WHY) and logged to the console.
const params = new URLSearchParams(location.search);
let reports = Promise.resolve();
function report(query) {
  const url = params.get("report") + "?" + new URLSearchParams(query);
  return fetch(url, { cache: "no-store" }).then((response) => {
    if (!response.ok) throw new Error(`HTTP status ${response.status}`);
  });
}
function show(text, cls) {
  const p = document.createElement("p");
  p.textContent = text; if (cls) p.className = cls;
  log.appendChild(p); log.scrollTop = log.scrollHeight;
  if (params.has("report")) {
    reports = reports.then(() => report({ line: text }).catch((error) => {
      console.error(`report of ${JSON.stringify(text)} failed: ${error}`);
      return report({ failed: text, error: String(error) }).catch(() => {});
    }));
  }
}
const scheme = location.protocol === "https:" ? "wss" : "ws";
const ws = new WebSocket(`${scheme}://${location.host}/chat`);
ws.onopen = () => {
  status.textContent = "connected";
  if (params.has("say")) { input.value = params.get("say"); form.requestSubmit(); }
};
ws.onmessage = (event) => show(event.data);
ws.onclose = (event) => {
  const reason = event.reason ? `, ${event.reason}` : "";
  status.textContent = `closed (code ${event.code}${reason})`;
};
form.onsubmit = (event) => {
  event.preventDefault();
  if (input.value && ws.readyState === WebSocket.OPEN) {
    ws.send(input.value);
    input.value = "";
  }
};
</script>
</body></html>
"""


class ChatRoom:
    """Everyone connected, and a way to send a line to all of them."""

    def __init__(self) -> None:
        self.members: set[anyws.WebSocketServerProtocol] = set()

    async def broadcast(self, message: str) -> None:
        for member in list(self.members):
            try:
                await member.send(message)
            except anyws.ConnectionClosed:
                self.members.discard(member)

    async def handler(self, ws: anyws.WebSocketServerProtocol) -> None:
        self.members.add(ws)
        name = f"{ws.remote_address[0]}:{ws.remote_address[1]}"
        await self.broadcast(f"* {name} joined ({len(self.members)} here)")
        try:
            async for message in ws:
                if isinstance(message, str):  # text only: it is a chat
                    await self.broadcast(f"{name}: {message}")
        finally:
            self.members.discard(ws)
            await self.broadcast(f"* {name} left")


async def serve_page(
    path: str, request_headers: Headers
) -> tuple[http.HTTPStatus, list[tuple[str, str]], bytes] | None:
    """Serve the page on ``/``; let WebSocket requests through."""
    if "upgrade" in request_headers.get("Connection", "").lower():
        return None
    if urlsplit(path).path == "/":
        headers = [("Content-Type", "text/html; charset=utf-8")]
        return http.HTTPStatus.OK, headers, PAGE
    return http.HTTPStatus.NOT_FOUND, [], b"Not found\n"


async def main(
    host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run the chat room until cancelled (Ctrl-C); ``port=0`` picks a free port.

    The first line printed gives the address actually bound.
    """
    room = ChatRoom()
    async with anyws.serve(
        room.handler, host, port, process_request=serve_page
    ) as server:
        bound = server.sockets[0].getsockname()
        print(f"anyws demo on http://{host}:{bound[1]}/ (Ctrl-C stops it)")
        print(f"interactive client: python -m anyws ws://{host}:{bound[1]}/")
        # Flushed: the address matters most with --port 0 and a piped stdout.
        sys.stdout.flush()
        task_status.started(bound[1])
        await server.serve_forever()


def run() -> None:
    """The command line: ``python -m examples.demo [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        anyio.run(main, args.host, args.port, backend=args.backend)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    run()
