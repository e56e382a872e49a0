"""Shared helpers: run `python -m mlx` in a subprocess the way a user does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# A small but real 3DBall run (4 areas): what the CLI tests train when the numbers do not matter.
TINY_3DBALL = [
    "env=3dball",
    "env.num_areas=4",
    "seed=3",
    "trainer.hyperparameters.buffer_size=400",
    "trainer.hyperparameters.batch_size=50",
    "trainer.time_horizon=64",
    "progress=plain",
]


def mlx_command(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "mlx", *overrides]


def run_mlx(*overrides: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        mlx_command(*overrides),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start_mlx(
    *overrides: str, cwd: Path, stdout: int = subprocess.PIPE, stderr: int = subprocess.PIPE
) -> subprocess.Popen[str]:
    """`python -m mlx <overrides>` started in the background (to signal or kill it mid-run), unbuffered."""
    return subprocess.Popen(
        mlx_command(*overrides),
        cwd=cwd,
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def train_to(workdir: Path, target: float, *overrides: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """A learning test's run: seed 1, run_id a, stopping at ``target``; the process and its best summary row."""
    proc = run_mlx(
        *overrides, "seed=1", "run_id=a", f"stop_at_reward={target}", "tracking=none", "progress=plain",
        cwd=workdir, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in (workdir / "results/a/run_logs/stats.jsonl").read_text().splitlines()]
    from mlx.tracking.curves import row_score  # a group behaviour's score is its mean group reward

    best = max((r for r in rows if row_score(r) is not None), key=row_score)
    return proc, best


def assert_refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """A user error as mlx reports one: exit 2 and a single stderr line `mlx: error: ...` holding ``words``."""
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mlx: error: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch working directory: results/ and the MLflow SQLite store land here."""
    return tmp_path


def compose_tree(*overrides: str) -> dict:
    """The resolved config tree `python -m mlx <overrides>` would validate, composed in-process."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mlx.config import CONF_DIR, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["run_id=test", "seed=0", *overrides])
    tree = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(tree, dict)
    return tree
