"""Type stub of the optional C accelerator ``anyws.sansio._speedups``."""

from __future__ import annotations

__all__ = ("apply_mask",)

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR ``data`` with ``mask`` repeated (RFC 6455, 5.3)."""
