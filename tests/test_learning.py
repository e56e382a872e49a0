"""Learning tests: fixed seeds, the upstream budget, a reward threshold. These are the product."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_mlx


@pytest.mark.learning
def test_ppo_learns_3dball_to_95_within_the_upstream_budget(workdir):
    proc = run_mlx("trainer=ppo", "env=3dball", "seed=1", "run_id=a", "stop_at_reward=95", "tracking=none",
                   "progress=plain", cwd=workdir, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in (workdir / "results/a/run_logs/stats.jsonl").read_text().splitlines()]
    best = max((r for r in rows if r["mean_reward"] is not None), key=lambda r: r["mean_reward"])
    assert best["mean_reward"] >= 95, rows[-1]
    assert best["step"] <= 500_000
    assert "Reached stop_at_reward=95" in proc.stdout
