"""The interactive client, ``python -m anyws``, end to end in a pseudo-terminal.

Each test runs an anyws server in the test's event loop and the client in a
pseudo-terminal (pexpect), with ``--backend`` set to the backend of the test:
both backends run both sides. pexpect blocks, so its calls run in a worker
thread.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import anyio
import pexpect
import pytest
import trustme

import anyws
from anyws import __main__

ROOT = Path(__file__).resolve().parent.parent

#: Per expectation; generous, the machine is shared.
TIMEOUT = 20

CLOSED_OK = "Connection closed: code = 1000 (OK), no reason."

#: ``python -m``, under ``coverage run`` when the tests are measured, so that
#: the client's own process counts too.
PYTHON_M = (
    [sys.executable, "-m", "coverage", "run", "-m"]
    if os.environ.get("COVERAGE_RUN")
    else [sys.executable, "-m"]
)


@dataclass
class Peer:
    """The server side of the conversation, as the test sees it."""

    port: int = 0
    connected: anyio.Event = field(default_factory=anyio.Event)
    closed: anyio.Event = field(default_factory=anyio.Event)
    ws: anyws.WebSocketServerProtocol | None = None
    received: list[anyws.Data] = field(default_factory=list)
    message: anyio.Event = field(default_factory=anyio.Event)

    async def handler(self, ws: anyws.WebSocketServerProtocol) -> None:
        """Echo each message; note everything."""
        self.ws = ws
        self.connected.set()
        try:
            async for message in ws:
                self.received.append(message)
                self.message.set()
                await ws.send(message)
        finally:
            self.closed.set()


@asynccontextmanager
async def server(peer: Peer, **options: Any) -> AsyncIterator[Peer]:
    async with anyws.serve(peer.handler, "127.0.0.1", 0, **options) as running:
        peer.port = running.sockets[0].getsockname()[1]
        yield peer


class Client:
    """``python -m anyws`` in a pseudo-terminal; the methods do not block."""

    def __init__(self, child: pexpect.spawn[str]) -> None:
        self.child = child

    async def expect(self, pattern: str) -> None:
        """Wait for ``pattern`` (a regular expression) in the output."""
        await anyio.to_thread.run_sync(self.child.expect, pattern)

    async def expect_exact(self, text: str) -> None:
        await anyio.to_thread.run_sync(self.child.expect_exact, text)

    async def exit_status(self) -> int | None:
        """Wait for the end of the output and of the process."""
        await anyio.to_thread.run_sync(self.child.expect, pexpect.EOF)
        await anyio.to_thread.run_sync(self.child.wait)
        return self.child.exitstatus


@pytest.fixture
def run_client(tmp_path: Path, anyio_backend: str) -> Iterator[Callable[..., Client]]:
    """Spawn the interactive client with ``--backend`` set to the test's one."""
    # Bracketed paste would wrap the prompt in escape sequences.
    inputrc = tmp_path / "inputrc"
    inputrc.write_text("set enable-bracketed-paste off\n")
    children: list[pexpect.spawn[str]] = []

    def spawn(*args: str) -> Client:
        child = pexpect.spawn(
            PYTHON_M[0],
            [*PYTHON_M[1:], "anyws", *args, "--backend", anyio_backend],
            cwd=str(ROOT),
            env={
                # Keep coverage's variables: it measures subprocesses too.
                **{k: v for k, v in os.environ.items() if k.startswith("COV")},
                "TERM": "dumb",
                "INPUTRC": str(inputrc),
                "PATH": "/usr/bin:/bin",
            },
            encoding="utf-8",
            timeout=TIMEOUT,
            dimensions=(24, 200),
        )
        children.append(child)
        return Client(child)

    yield spawn
    for child in children:
        child.close(force=True)


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    """The client without a terminal, for what needs none."""
    return subprocess.run(
        [*PYTHON_M, "anyws", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


async def test_conversation(run_client: Callable[..., Client]) -> None:
    """Send typed lines, see the echoes, keep a partial line intact while a
    message arrives, recall history, close with 1000 on Ctrl-D; ``--header``
    reaches the server."""
    async with server(Peer()) as peer:
        uri = f"ws://127.0.0.1:{peer.port}/"
        client = run_client(uri, "--header", "X-Anyws-Test: yes, it is")
        with anyio.fail_after(TIMEOUT * 3):
            await client.expect_exact(f"Connected to {uri}.")
            await peer.connected.wait()
            assert peer.ws is not None
            assert peer.ws.request_headers["X-Anyws-Test"] == "yes, it is"
            await client.expect_exact("> ")
            client.child.sendline("hello")
            await client.expect_exact("< hello")
            # A message arrives while "partial" is being typed: it is printed
            # above the input line, which is redrawn with what was typed.
            await client.expect_exact("> ")
            client.child.send("partial")
            await client.expect_exact("partial")
            await peer.ws.send("pushed")
            await client.expect(r"< pushed\r\n> partial")
            peer.message = anyio.Event()
            client.child.sendline(" line")
            await peer.message.wait()
            assert peer.received == ["hello", "partial line"]
            await client.expect_exact("< partial line")
            # Readline history: Ctrl-P brings the last line back.
            await client.expect_exact("> ")
            peer.message = anyio.Event()
            client.child.sendcontrol("p")
            client.child.send("\r")
            await peer.message.wait()
            assert peer.received == ["hello", "partial line", "partial line"]
            await client.expect_exact("> ")
            client.child.sendeof()
            await client.expect_exact(CLOSED_OK)
            assert await client.exit_status() == 0
            await peer.closed.wait()
        assert peer.ws.close_code == 1000


async def test_ctrl_c_closes_with_1000(run_client: Callable[..., Client]) -> None:
    async with server(Peer()) as peer:
        client = run_client(f"ws://127.0.0.1:{peer.port}/")
        with anyio.fail_after(TIMEOUT * 3):
            await client.expect_exact("> ")
            await peer.connected.wait()
            client.child.sendintr()
            await client.expect_exact(CLOSED_OK)
            assert await client.exit_status() == 0
            await peer.closed.wait()
        assert peer.ws is not None
        assert peer.ws.close_code == 1000


async def test_server_closes(run_client: Callable[..., Client]) -> None:
    """The close code and reason the server chose are shown."""
    async with server(Peer()) as peer:
        client = run_client(f"ws://127.0.0.1:{peer.port}/")
        with anyio.fail_after(TIMEOUT * 3):
            await client.expect_exact("> ")
            await peer.connected.wait()
            assert peer.ws is not None
            await peer.ws.send(b"\x00\xfe")
            await client.expect_exact("< (binary) 00fe")
            await peer.ws.close(1001, "maintenance")
            await client.expect(
                re.escape("Connection closed: code = 1001 (going away), ")
                + re.escape("reason = maintenance.")
            )
            assert await client.exit_status() == 0


async def test_insecure_accepts_a_self_signed_certificate(
    run_client: Callable[..., Client],
) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    async with server(Peer(), ssl=context) as peer:
        uri = f"wss://127.0.0.1:{peer.port}/"
        # Without --insecure, the unknown authority is refused.
        untrusted = await anyio.to_thread.run_sync(run_command, uri)
        assert untrusted.returncode == 1
        assert untrusted.stderr.startswith(
            f"Failed to connect to {uri}: TLS certificate not trusted ("
        )
        assert untrusted.stderr.count("\n") == 1
        client = run_client(uri, "--insecure")
        with anyio.fail_after(TIMEOUT * 3):
            await client.expect_exact("> ")
            client.child.sendline("over TLS")
            await client.expect_exact("< over TLS")
            # Ctrl-D only ends the input once readline reads again (its prompt
            # is back): typed before, the terminal may swallow it.
            await client.expect_exact("> ")
            client.child.sendeof()
            await client.expect_exact(CLOSED_OK)
            assert await client.exit_status() == 0


async def test_refused_connection(anyio_backend: str) -> None:
    with socket.socket() as sock:  # bound, not listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        uri = f"ws://127.0.0.1:{sock.getsockname()[1]}/"
        result = await anyio.to_thread.run_sync(
            run_command, uri, "--backend", anyio_backend
        )
    assert result.returncode == 1
    assert result.stderr == f"Failed to connect to {uri}: connection refused.\n"
    assert result.stdout == ""


async def test_rejected_handshake(anyio_backend: str) -> None:
    async def forbid(path: str, headers: anyws.Headers) -> tuple[int, list[Any], bytes]:
        return 403, [], b"no\n"

    async with server(Peer(), process_request=forbid) as peer:
        uri = f"ws://127.0.0.1:{peer.port}/"
        result = await anyio.to_thread.run_sync(
            run_command, uri, "--backend", anyio_backend
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"Failed to connect to {uri}: the server answered HTTP 403 instead of 101.\n"
    )


def test_invalid_uri() -> None:
    result = run_command("http://example.com/")
    assert result.returncode == 1
    assert result.stderr.startswith("Failed to connect to http://example.com/: ")
    assert result.stderr.count("\n") == 1


def test_bad_header_argument() -> None:
    result = run_command("ws://127.0.0.1/", "--header", "no-colon")
    assert result.returncode == 2
    assert "expected NAME:VALUE" in result.stderr


def test_version() -> None:
    result = run_command("--version")
    assert result.returncode == 0
    assert result.stdout == f"anyws {anyws.__version__}\n"


def test_console_script_is_declared() -> None:
    [script] = [
        ep for ep in entry_points(group="console_scripts") if ep.name == "anyws"
    ]
    assert script.value == "anyws.__main__:main"
    assert '\nanyws = "anyws.__main__:main"\n' in (ROOT / "pyproject.toml").read_text()


# -- in process, for the parts a terminal does not show ------------------------------


def test_main_in_process_closes_at_end_of_input(
    capsys: pytest.CaptureFixture[str], anyio_backend: str
) -> None:
    """Without a terminal, input ends at once: connect, close with 1000."""
    peer = Peer()
    with anyio.from_thread.start_blocking_portal(anyio_backend) as portal:
        context = portal.wrap_async_context_manager(server(peer))
        with context:
            uri = f"ws://127.0.0.1:{peer.port}/"
            status = __main__.main([uri, "--backend", anyio_backend])
            portal.call(peer.closed.wait)
    assert status == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Connected to {uri}.\n")
    assert out.endswith(f"{CLOSED_OK}\n")
    assert peer.ws is not None and peer.ws.close_code == 1000


def test_main_in_process_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"ws://127.0.0.1:{sock.getsockname()[1]}/"
        assert __main__.main([uri]) == 1
    assert capsys.readouterr().err == (
        f"Failed to connect to {uri}: connection refused.\n"
    )


def test_explain() -> None:
    assert __main__.explain(TimeoutError()) == "timed out during the opening handshake"
    assert __main__.explain(anyws.InvalidURI("x")) == "x isn't a valid URI"
    assert __main__.explain(OSError()) == "OSError"
    try:
        raise anyio.EndOfStream from ssl.SSLError(1, "boom")
    except anyio.EndOfStream as exc:
        assert __main__.explain(exc).startswith("TLS handshake failed (")


class Group(Exception):
    """Looks like an exception group (BaseExceptionGroup is 3.11+)."""

    def __init__(self, exceptions: list[BaseException]) -> None:
        self.exceptions = exceptions


def test_interrupted() -> None:
    assert __main__._interrupted(KeyboardInterrupt())
    assert __main__._interrupted(Group([KeyboardInterrupt(), KeyboardInterrupt()]))
    assert not __main__._interrupted(Group([KeyboardInterrupt(), ValueError()]))
    assert not __main__._interrupted(Group([]))
    assert not __main__._interrupted(ValueError())


def test_describe_and_parse_header() -> None:
    assert __main__.describe("hi") == "< hi"
    assert __main__.describe(b"\x01") == "< (binary) 01"
    assert __main__.parse_header(" A : b:c ") == ("A", "b:c")


def test_terminal_redraws_the_prompt_it_may_have_erased(
    capsys: pytest.CaptureFixture[str],
) -> None:
    terminal = __main__.Terminal()
    terminal._reading = True  # inside input(), the prompt not known to be shown
    terminal.print_during_input("< early")
    terminal._prompt_shown()
    terminal.print_over_input("bye")
    assert capsys.readouterr().out == "\r\x1b[K< early\n\r\x1b[K> \r\x1b[Kbye\n"
