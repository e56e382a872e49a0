"""Self-play learns (CI-sized, fixed seed): Tennis with PPO + self-play (the tuned self_play block), its ELO
rises against its own snapshots and the final policy beats a random player in at least 95% of points.

The budget is smaller than upstream's (50M steps at buffer_size 20480): buffer_size 4096, batch_size 512 and
time_horizon 64 update often enough to learn returning the ball within 500k steps (about a minute of CPU)."""

from __future__ import annotations

import json

from tests.conftest import run_mlx


def test_tennis_self_play_rises_in_elo_and_beats_a_random_player(workdir):
    proc = run_mlx("trainer=ppo", "env=tennis", "seed=1", "run_id=a", "trainer.max_steps=500000",
                   "trainer.hyperparameters.buffer_size=4096", "trainer.hyperparameters.batch_size=512",
                   "trainer.time_horizon=64", "trainer.summary_freq=50000", "tracking=none", "progress=plain",
                   cwd=workdir, timeout=1200)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in (workdir / "results/a/run_logs/stats.jsonl").read_text().splitlines()]
    elo = [r["Self-play/ELO"] for r in rows if r.get("Self-play/ELO") is not None]
    status = json.loads((workdir / "results/a/run_logs/training_status.json").read_text())["Tennis"]
    assert status["elo"] > 1230 and status["elo"] > elo[0], (elo, status["elo"])  # initial_elo 1200
    match = run_mlx("mode=evaluate", "run_id=a", "evaluate.opponent=random", "evaluate.episodes=400",
                    "tracking=none", cwd=workdir)  # fmt: skip
    assert match.returncode == 0, match.stderr[-2000:]
    report = json.loads((workdir / "results/a/run_logs/evaluation.json").read_text())["match"]
    assert report["games"] >= 400 and report["win_rate_all"] >= 0.95, report
