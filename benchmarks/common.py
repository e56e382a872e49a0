"""What the benchmark scripts share: running the command users type in a subprocess, and reading a run's
statistics. Scripts run as ``python benchmarks/<name>.py``, so this folder is on their import path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def mlx(*overrides: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m mlx <overrides>`` in ``cwd``; a failed run ends the benchmark with its error."""
    proc = subprocess.run(
        [sys.executable, "-m", "mlx", *overrides], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise SystemExit(f"mlx {' '.join(overrides)} failed:\n{proc.stderr[-2000:]}")
    return proc


def stats_rows(run_folder: Path) -> list[dict]:
    """The run's summaries (run_logs/stats.jsonl), one dict per summary."""
    return [json.loads(line) for line in (run_folder / "run_logs" / "stats.jsonl").read_text().splitlines()]
