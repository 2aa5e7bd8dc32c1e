"""``anyws.http``: the 8.1 ``websockets.http`` names, re-exported."""

from __future__ import annotations

import sys

import anyws
import anyws.http
from anyws.sansio import datastructures, http11


def test_reexports() -> None:
    assert anyws.http.Headers is datastructures.Headers is anyws.Headers
    assert anyws.http.MultipleValuesError is datastructures.MultipleValuesError
    assert anyws.http.USER_AGENT is http11.USER_AGENT
    major, minor = sys.version_info[:2]
    assert anyws.http.USER_AGENT.startswith(f"Python/{major}.{minor} anyws/")
    assert set(anyws.http.__all__) == {"Headers", "MultipleValuesError", "USER_AGENT"}
