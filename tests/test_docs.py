"""The documentation builds with Sphinx, warnings as errors.

The build includes the examples (``literalinclude``), the changelog and the
API reference generated from the docstrings, so a renamed example function or
a broken docstring fails this test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    """Sphinx and myst-parser come with the ``test`` extra (and ``docs``)."""
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", "docs", tmp_path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    api = (tmp_path / "api.html").read_text(encoding="utf-8")
    for anchor in ("anyws.server.serve", "anyws.client.connect", "anyws.auth"):
        assert f'id="{anchor}' in api, anchor
    examples = (tmp_path / "examples.html").read_text(encoding="utf-8")
    assert "basic_auth_protocol_factory" in examples
    assert "Unreleased" in (tmp_path / "changelog.html").read_text(encoding="utf-8")
