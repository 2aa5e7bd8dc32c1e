"""The soak script at a scale the test suite can afford (issue 7, item 4).

``tools/soak.py`` runs 5,000 connections by hand (see its docstring); here
500 connections exchange messages for one second, on each backend. Memory
bound: the server's resident memory grows by at most 1 MiB per connection
(about 45-80 KiB is typical with the default compression).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[2] / "tools" / "soak.py"


def test_soak_500_connections(anyio_backend: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--connections",
            "500",
            "--duration",
            "1",
            "--backend",
            anyio_backend,
            "--open-deadline",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["opened"] == 500
    assert report["errors"] == 0, report["error_samples"]
    assert report["sent"] == report["received"] == report["echoed_by_server"]
    assert report["sent"] >= 500  # every connection exchanged messages
    assert report["server_kib_per_connection_peak"] <= 1024
