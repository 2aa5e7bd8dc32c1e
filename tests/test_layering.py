"""The sans-I/O core imports nothing that does I/O or keeps time.

Two checks: a fresh interpreter that imports the whole core must not have
loaded an I/O module, and no core source file imports ``time`` (or any I/O
module) itself. ``time`` needs the second check because ``logging``, from the
standard library, imports it.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).parent.parent
IO_MODULES = ("anyio", "asyncio", "trio", "socket", "ssl", "selectors")
FORBIDDEN_IMPORTS = (*IO_MODULES, "time", "threading")

CORE_MODULES = (
    "anyws.exceptions",
    "anyws._types",
    "anyws.uri",
    "anyws.sansio",
    "anyws.sansio.frames",
    "anyws.sansio.utf8",
    "anyws.sansio.datastructures",
    "anyws.sansio.headers",
    "anyws.sansio.http11",
    "anyws.sansio.handshake",
    "anyws.sansio.extensions",
    "anyws.sansio.extensions.permessage_deflate",
    "anyws.sansio.machine",
)


def loaded_io_modules(modules: tuple[str, ...]) -> list[str]:
    """Import ``modules`` in a fresh interpreter; return the I/O modules loaded."""
    code = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        f"print(','.join(m for m in {IO_MODULES!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return [name for name in result.stdout.strip().split(",") if name]


def imported_names(path: pathlib.Path) -> set[str]:
    """The top-level names of every module that a source file imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_loads_no_io_module() -> None:
    assert loaded_io_modules(CORE_MODULES) == []


def test_io_layer_is_seen_when_loaded() -> None:
    """The check above can fail: importing the AnyIO layer loads anyio."""
    assert "anyio" in loaded_io_modules(("anyws.protocol",))


def test_core_sources_import_nothing_forbidden() -> None:
    core_files = [
        ROOT / "anyws" / "exceptions.py",
        ROOT / "anyws" / "_types.py",
        ROOT / "anyws" / "uri.py",
        *sorted((ROOT / "anyws" / "sansio").rglob("*.py")),
    ]
    assert len(core_files) > 10
    for path in core_files:
        bad = imported_names(path) & set(FORBIDDEN_IMPORTS)
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_forbidden_import_is_detected(tmp_path: pathlib.Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom time import monotonic\nimport socket as s\n")
    assert imported_names(sample) == {"os", "time", "socket"}
