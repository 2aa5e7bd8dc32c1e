"""The peer finder: skip locally with an install hint, fail when ``CI=true``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.interop import _peers


def _no_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: False)


def test_missing_chromium_skips_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_chromium(monkeypatch)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        _peers.find_chromium()


@pytest.mark.parametrize("value", ["1", "false", "True"])
def test_only_ci_true_turns_a_skip_into_a_failure(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    _no_chromium(monkeypatch)
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception):
        _peers.find_chromium()


def test_missing_chromium_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_chromium(monkeypatch)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and chromium is not"):
        _peers.find_chromium()


def test_chromium_found_outside_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: path == "/usr/bin/chromium")
    assert _peers.find_chromium() == "/usr/bin/chromium"


def test_missing_node_names_both_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install nodejs npm"):
        _peers.find_node_peer()


def test_missing_ws_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/node")
    monkeypatch.setattr(_peers, "NODE_DIR", tmp_path)
    monkeypatch.delenv("CI", raising=False)
    hint = "npm install --no-save --no-package-lock --prefix tests/interop/node ws@8"
    with pytest.raises(pytest.skip.Exception, match=hint):
        _peers.find_node_peer()


def test_wrong_ws_major_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/node")
    monkeypatch.setattr(_peers, "NODE_DIR", tmp_path)
    manifest = tmp_path / "node_modules" / "ws" / "package.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"version": "7.5.10"}', encoding="utf-8")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="ws 7.5.10 is installed"):
        _peers.find_node_peer()
    manifest.write_text('{"version": "8.1.0"}', encoding="utf-8")
    found = _peers.find_node_peer()
    assert (found.node, found.script, found.ws_version) == (
        "/usr/bin/node",
        tmp_path / "peer.js",
        "8.1.0",
    )
