"""examples/gaia/offline_stream.py runs to completion offline (its own process, a temporary folder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "gaia" / "offline_stream.py"


def test_offline_example_runs(tmp_path: Path) -> None:
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--families", "csv_lookup,count_word", "--held-out", "count_word", "--out", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "memory   : block 1: 1/2, block 2: 1/2; held-out solved 0/2" in done.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["conditions"]["no-memory"]["by_block"]["2"]["solved"] == 0
