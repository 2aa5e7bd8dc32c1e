"""Build the optional C accelerator ``anyws.sansio._speedups`` (spec (m)).

All project metadata lives in ``pyproject.toml``; this file only declares the
extension. It is optional: without a working C compiler, or with
``ANYWS_NO_SPEEDUPS=1`` in the environment, the build prints a warning and
installs anyws without it, and ``anyws.sansio.frames`` falls back to pure
Python with the same behaviour.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The distutils errors, re-exported by setuptools >= 59 (pyproject.toml asks
# for >= 68): CCompilerError, DistutilsExecError, DistutilsPlatformError.
from setuptools.errors import CCompilerError, ExecError, PlatformError

__all__ = ()

_SKIP_VARIABLE = "ANYWS_NO_SPEEDUPS"

# What a missing or broken compiler raises, at configuration or compile time.
_BUILD_ERRORS = (CCompilerError, ExecError, PlatformError, OSError)


def _warn(message: str) -> None:
    """Print a build warning where pip shows it (with ``-v``) and in logs."""
    print(f"WARNING: {message}", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """Build extensions, but carry on without them if compiling fails."""

    def run(self) -> None:
        """Build all extensions; a missing compiler is not an error."""
        try:
            super().run()
        except _BUILD_ERRORS as exc:
            self._give_up(exc)

    def build_extension(self, ext: Extension) -> None:
        """Build one extension; a compile error is not an error."""
        try:
            super().build_extension(ext)
        except _BUILD_ERRORS as exc:
            self._give_up(exc)

    @staticmethod
    def _give_up(exc: BaseException) -> None:
        _warn(
            f"the optional C accelerator of anyws could not be built ({exc}); "
            "anyws will use its pure-Python code, which behaves the same but "
            "masks frames more slowly."
        )


def _extensions() -> list[Extension]:
    """The extension to build, or none if the environment says so."""
    if os.environ.get(_SKIP_VARIABLE) == "1":
        _warn(f"{_SKIP_VARIABLE}=1: not building the C accelerator of anyws.")
        return []
    return [
        Extension(
            "anyws.sansio._speedups",
            sources=["anyws/sansio/_speedups.c"],
            optional=True,
        )
    ]


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
