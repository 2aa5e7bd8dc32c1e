"""The interactive client: ``python -m anyws URI`` (or the ``anyws`` command).

It connects, prints every message that arrives while you type (above the
line you are typing, which it redraws), sends each line you enter as a text
message, and shows the close code and reason when the connection ends.
Ctrl-D or Ctrl-C closes the connection normally (code 1000).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .client import connect
from .exceptions import ConnectionClosed, InvalidStatusCode, format_close
from .protocol import WebSocketCommonProtocol
from .version import __version__

try:
    import readline
except ImportError:  # pragma: no cover - Windows and minimal builds have none
    readline = None  # type: ignore[assignment]
try:
    import termios
except ImportError:  # pragma: no cover - Windows has none
    termios = None  # type: ignore[assignment]

__all__ = ("main",)

PROMPT = "> "


class Terminal:
    """Print incoming messages above the line being typed, without garbling it.

    The input thread blocks in ``input()`` while messages arrive in the event
    loop. When the prompt is on screen, a message clears the input line,
    prints itself, and redraws the prompt and what has been typed so far,
    where readline expects them. Otherwise the message is printed alone, and
    readline draws the prompt afterwards. A lock keeps the cases apart.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Inside input(), and whether the prompt is known to be on screen.
        self._reading = False
        self._prompting = False
        # A message was printed inside input() before the prompt was known to
        # be on screen: it may have erased a prompt readline had just drawn.
        self._erased = False
        if readline is not None:
            # Called by readline once the prompt is on screen.
            readline.set_pre_input_hook(self._prompt_shown)

    def _prompt_shown(self) -> None:
        with self._lock:
            self._prompting = True
            if self._erased:
                # Nothing is typed yet: the line is just the prompt. Drawing it
                # again is right whether or not it had been erased.
                sys.stdout.write(f"\r\x1b[K{PROMPT}")
                sys.stdout.flush()

    def read_line(self) -> str:
        """``input()`` with the prompt; raises ``EOFError`` on Ctrl-D."""
        with self._lock:
            self._reading, self._erased = True, False
        if readline is None:  # pragma: no cover - no readline on this platform
            self._prompt_shown()
        try:
            return input(PROMPT)
        finally:
            with self._lock:
                self._reading = self._prompting = False

    def print_during_input(self, text: str) -> None:
        """Print a line above the input line."""
        with self._lock:
            if self._prompting:
                typed = readline.get_line_buffer() if readline is not None else ""
                sys.stdout.write(f"\r\x1b[K{text}\n{PROMPT}{typed}")
            else:
                sys.stdout.write(f"\r\x1b[K{text}\n")
                self._erased = self._reading
            sys.stdout.flush()

    def print_over_input(self, text: str) -> None:
        """Replace the input line with a final line of text."""
        with self._lock:
            self._reading = self._prompting = False
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
    """The command line of the interactive client."""
    parser = argparse.ArgumentParser(
        prog="python -m anyws",
        description="Interactive WebSocket client.",
    )
    parser.add_argument("uri", metavar="URI", help="ws:// or wss:// URI")
    parser.add_argument("--version", action="version", version=f"anyws {__version__}")
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
    terminal: Terminal,
    send: MemoryObjectSendStream[str | None],
    token: anyio.lowlevel.EventLoopToken,
) -> None:
    """Read lines from the terminal in a daemon thread and hand them over.

    A daemon thread, not a worker thread, so that an ``input()`` still blocked
    when the connection ends does not keep the process alive. ``None`` means
    end of input (Ctrl-D).
    """
    while True:
        try:
            line: str | None = terminal.read_line()
        except (EOFError, KeyboardInterrupt):
            line = None
        except Exception:  # pragma: no cover - terminal gone
            line = None
        try:
            anyio.from_thread.run_sync(send.send_nowait, line, token=token)
        except Exception:  # the event loop has finished
            return
        if line is None:
            return


def explain(exc: BaseException) -> str:
    """One line saying why a connection could not be opened."""
    if isinstance(exc, InvalidStatusCode):
        return f"the server answered HTTP {exc.status_code} instead of 101"
    if isinstance(exc, TimeoutError):
        return "timed out during the opening handshake"
    # AnyIO reports a failed connection (or TLS handshake) as an OSError or
    # EndOfStream whose cause is the informative error: show that one.
    while isinstance(exc, (OSError, anyio.EndOfStream)) and not isinstance(
        exc, (ssl.SSLError, ConnectionRefusedError)
    ):
        cause = exc.__cause__ or exc.__context__
        if cause is None:
            break
        exc = cause
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message}); see --insecure"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({getattr(exc, 'reason', None) or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc).rstrip(".") or type(exc).__name__


async def forward_incoming(terminal: Terminal, ws: WebSocketCommonProtocol) -> None:
    """Print every incoming message until the connection closes."""
    try:
        async for message in ws:
            terminal.print_during_input(describe(message))
    except ConnectionClosed:
        pass


def connect_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`~anyws.connect` for the command line."""
    options: dict[str, Any] = {}
    if args.header:
        options["extra_headers"] = args.header
    if args.insecure and args.uri.lower().startswith("wss:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        options["ssl"] = context
    return options


async def session(args: argparse.Namespace) -> int:
    """Connect, converse, close; return the exit status."""
    try:
        client = connect(args.uri, **connect_options(args))
    except Exception as exc:  # InvalidURI, ValueError: nothing was tried
        print(f"Failed to connect to {args.uri}: {explain(exc)}.", file=sys.stderr)
        return 1
    terminal = Terminal()
    async with contextlib.AsyncExitStack() as stack:
        try:
            ws = await stack.enter_async_context(client)
        except Exception as exc:
            print(f"Failed to connect to {args.uri}: {explain(exc)}.", file=sys.stderr)
            return 1
        print(f"Connected to {args.uri}.", flush=True)
        await converse(terminal, ws)
        await ws.close()
    code, reason = ws.close_code, ws.close_reason
    terminal.print_over_input(
        f"Connection closed: {format_close(code or 1006, reason)}."
    )
    return 0


async def converse(terminal: Terminal, ws: WebSocketCommonProtocol) -> None:
    """Send typed lines and print incoming messages until one side stops."""
    send, receive = anyio.create_memory_object_stream[str | None](16)
    # Closing ``send`` at the end also stops a reader thread still running.
    with send, receive:
        await _converse(terminal, ws, send, receive)


async def _converse(
    terminal: Terminal,
    ws: WebSocketCommonProtocol,
    send: MemoryObjectSendStream[str | None],
    receive: MemoryObjectReceiveStream[str | None],
) -> None:
    async with anyio.create_task_group() as tg:

        async def stop_when_closed() -> None:
            await forward_incoming(terminal, ws)
            tg.cancel_scope.cancel()

        async def stop_on_signal(
            *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
        ) -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                task_status.started()
                async for _ in signals:
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(stop_when_closed)
        if threading.current_thread() is threading.main_thread():
            # Handle Ctrl-C before showing the prompt that invites it.
            await tg.start(stop_on_signal)
        token = anyio.lowlevel.current_token()
        reader = threading.Thread(
            target=read_lines, args=(terminal, send, token), daemon=True
        )
        reader.start()
        async for line in receive:
            if line is None:
                break
            try:
                await ws.send(line)
            except ConnectionClosed:
                break
        tg.cancel_scope.cancel()


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is a KeyboardInterrupt, maybe inside exception groups."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    group: Sequence[BaseException] | None = getattr(exc, "exceptions", None)
    return bool(group) and all(_interrupted(inner) for inner in group or ())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the interactive client; return the exit status.

    Args:
        argv: the command line arguments (default: ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    if os.name == "nt":  # pragma: no cover - enable VT100 sequences on Windows
        os.system("")
    # The input thread may still be inside readline, which puts the terminal
    # in its own mode, when the program ends: put the terminal back as found.
    saved = _terminal_mode()
    try:
        return anyio.run(session, args, backend=args.backend)
    except BaseException as exc:
        # Ctrl-C while connecting: no traceback, the usual status.
        if _interrupted(exc):
            print(file=sys.stderr)
            return 130
        raise
    finally:
        _restore_terminal_mode(saved)


def _terminal_mode() -> list[Any] | None:
    if termios is None or not sys.stdin.isatty():
        return None
    return termios.tcgetattr(sys.stdin.fileno())


def _restore_terminal_mode(saved: list[Any] | None) -> None:
    if termios is not None and saved is not None:
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)


if __name__ == "__main__":
    sys.exit(main())
