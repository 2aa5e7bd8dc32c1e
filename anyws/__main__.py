"""The interactive client: ``python -m anyws URI`` (or the ``anyws`` command).

It connects, prints every message that arrives while you type (above the
line you are typing, which it redraws), sends each line you enter as a text
message, and shows the close code and reason when the connection ends.
Ctrl-D or Ctrl-C closes the connection normally (code 1000).
"""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import sys
import threading
from collections.abc import Sequence

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel

from .client import connect
from .exceptions import ConnectionClosed, format_close
from .protocol import WebSocketCommonProtocol
from .version import __version__

try:
    import readline
except ImportError:  # pragma: no cover - Windows and minimal builds have none
    readline = None  # type: ignore[assignment]

__all__ = ("main",)

PROMPT = "> "


def print_during_input(text: str) -> None:
    """Print a line above the input line without garbling what is typed.

    The cursor goes back to the start of the input line, the line is cleared,
    the text is printed on it, and the prompt and the typed text are redrawn
    below, where readline expects them.
    """
    typed = readline.get_line_buffer() if readline is not None else ""
    sys.stdout.write(f"\r\x1b[K{text}\n{PROMPT}{typed}")
    sys.stdout.flush()


def print_over_input(text: str) -> None:
    """Replace the input line with a final line of text."""
    sys.stdout.write(f"\r\x1b[K{text}\n")
    sys.stdout.flush()


def describe(message: str | bytes) -> str:
    """How an incoming message is shown: text as is, binary as hex."""
    if isinstance(message, str):
        return f"< {message}"
    return f"< (binary) {message.hex()}"


def parse_header(value: str) -> tuple[str, str]:
    """Parse a ``--header NAME:VALUE`` argument."""
    name, sep, content = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {value!r}")
    return name.strip(), content.strip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m anyws",
        description="Interactive WebSocket client.",
    )
    parser.add_argument("uri", metavar="URI", help="ws:// or wss:// URI")
    parser.add_argument(
        "--version", action="version", version=f"anyws {__version__}"
    )
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="event loop to run on (default: asyncio)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server's TLS certificate (self-signed servers)",
    )
    parser.add_argument(
        "--header",
        action="append",
        type=parse_header,
        default=[],
        metavar="NAME:VALUE",
        help="add a header to the opening handshake request (repeatable)",
    )
    return parser


def read_lines(
    send: anyio.abc.ObjectSendStream[str | None], token: object
) -> None:
    """Read lines from the terminal in a daemon thread and hand them over.

    A daemon thread, not a worker thread, so that a ``input()`` still blocked
    when the connection ends does not keep the process alive.
    """
    while True:
        try:
            line: str | None = input(PROMPT)
        except (EOFError, KeyboardInterrupt):
            line = None
        except Exception:  # pragma: no cover - terminal gone
            line = None
        try:
            anyio.from_thread.run_sync(send.send_nowait, line, token=token)  # type: ignore[arg-type]
        except Exception:  # the event loop has finished
            return
        if line is None:
            return


async def forward_incoming(ws: WebSocketCommonProtocol) -> None:
    """Print every incoming message until the connection closes."""
    try:
        async for message in ws:
            print_during_input(describe(message))
    except ConnectionClosed:
        pass


async def session(args: argparse.Namespace) -> int:
    kwargs: dict[str, object] = {}
    if args.header:
        kwargs["extra_headers"] = args.header
    if args.insecure and args.uri.lower().startswith("wss:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        kwargs["ssl"] = context
    connected = False
    try:
        async with connect(args.uri, **kwargs) as ws:  # type: ignore[arg-type]
            connected = True
            print(f"Connected to {args.uri}.")
            await converse(ws)
            await ws.close()
            code, reason = ws.close_code, ws.close_reason
    except Exception as exc:
        if connected:
            raise
        print(f"Failed to connect to {args.uri}: {exc}.", file=sys.stderr)
        return 1
    print_over_input(f"Connection closed: {format_close(code or 1006, reason)}.")
    return 0


async def converse(ws: WebSocketCommonProtocol) -> None:
    """Send typed lines and print incoming messages until one side stops."""
    send, receive = anyio.create_memory_object_stream[str | None](16)
    token = anyio.lowlevel.current_token()
    threading.Thread(target=read_lines, args=(send, token), daemon=True).start()
    async with anyio.create_task_group() as tg:

        async def stop_when_closed() -> None:
            await forward_incoming(ws)
            tg.cancel_scope.cancel()

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(stop_when_closed)
        if threading.current_thread() is threading.main_thread():
            tg.start_soon(stop_on_signal)
        async for line in receive:
            if line is None:
                break
            try:
                await ws.send(line)
            except ConnectionClosed:
                break
        tg.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the interactive client; return the exit status."""
    args = build_parser().parse_args(argv)
    if os.name == "nt":  # pragma: no cover - enable VT100 sequences on Windows
        os.system("")
    try:
        return anyio.run(session, args, backend=args.backend)
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C before the loop handles it
        return 130


if __name__ == "__main__":
    sys.exit(main())
