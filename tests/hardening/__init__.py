"""Hardening tests: hostile peers, faults, load, cancellation (issue 7)."""
