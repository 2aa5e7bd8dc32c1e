"""Find the third-party peers of the interop tests, or skip (fail in CI).

The peers are programs nobody on this project wrote: Node's ``ws`` package and
headless Chromium. Locally, a missing peer skips its tests with a message that
says how to install it. In CI (``CI=true``) a missing peer fails the run, so
that the interop suite can never pass by silently doing nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import NamedTuple, NoReturn

import pytest

__all__ = (
    "NODE_DIR",
    "NodePeer",
    "find_chromium",
    "find_node_peer",
    "missing_peer",
)

#: The folder of the Node peer; ``ws`` is installed in its ``node_modules``.
NODE_DIR = Path(__file__).resolve().parent / "node"

_NPM_HINT = "npm install --no-save --no-package-lock --prefix tests/interop/node ws@8"
_CHROMIUM_HINT = "apt-get install chromium"


class NodePeer(NamedTuple):
    """How to run the Node peer script."""

    node: str
    script: Path
    ws_version: str


def missing_peer(message: str) -> NoReturn:
    """Skip the test, or fail it when running in CI.

    Args:
        message: what is missing and how to install it.
    """
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def find_node_peer() -> NodePeer:
    """Locate ``node`` and the ``ws`` package installed for the peer script.

    Returns:
        The node executable, the peer script and the installed ws version.
    """
    node = shutil.which("node")
    if node is None:
        missing_peer(
            f"node is not installed (apt-get install nodejs npm), then run: {_NPM_HINT}"
        )
    manifest = NODE_DIR / "node_modules" / "ws" / "package.json"
    if not manifest.is_file():
        missing_peer(f"the ws package is not installed; run: {_NPM_HINT}")
    version = str(json.loads(manifest.read_text(encoding="utf-8"))["version"])
    if not version.startswith("8."):
        missing_peer(
            f"ws {version} is installed, the peer needs ws 8; run: {_NPM_HINT}"
        )
    return NodePeer(node, NODE_DIR / "peer.js", version)


def find_chromium() -> str:
    """Locate Debian's ``chromium``.

    Returns:
        The path of the chromium launcher.
    """
    found = shutil.which("chromium")
    if found is None and os.access("/usr/bin/chromium", os.X_OK):
        found = "/usr/bin/chromium"
    if found is None:
        missing_peer(f"chromium is not installed; run (as root): {_CHROMIUM_HINT}")
    return found
