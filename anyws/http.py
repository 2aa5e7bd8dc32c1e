"""HTTP helpers kept where websockets 8.1 had them (``websockets.http``).

:class:`Headers`, :exc:`MultipleValuesError` and :data:`USER_AGENT` live in
the sans-I/O core; this module re-exports them for code written for 8.1::

    from anyws.http import Headers
"""

from __future__ import annotations

from .sansio.datastructures import Headers, MultipleValuesError
from .sansio.http11 import USER_AGENT

__all__ = ("USER_AGENT", "Headers", "MultipleValuesError")
