"""Behaviours of one run with different trainers (ML-Agents allows PPO for one behaviour and SAC for another):
settings, a real run with both, and its resume."""

from __future__ import annotations

import json

from mlx.config import validate
from mlx.config.trainer import PPOSettings, SACSettings
from tests.conftest import compose_tree, run_mlx

MIXED = ["env=walljump", "+behaviors.SmallWallJump.trainer_type=sac"]


def test_a_behaviour_of_another_type_starts_from_its_own_defaults():
    cfg = validate(compose_tree(*MIXED, "trainer.time_horizon=32", "+behaviors.SmallWallJump.hyperparameters.tau=0.01"))
    small, big = cfg.trainer_for("SmallWallJump"), cfg.trainer_for("BigWallJump")
    assert isinstance(small, SACSettings) and isinstance(big, PPOSettings)
    # Hyperparameters are the SAC defaults plus its own (PPO's buffer_size 10240 etc. are not inherited) ...
    assert small.hyperparameters.buffer_size == SACSettings().hyperparameters.buffer_size
    assert small.hyperparameters.tau == 0.01
    # ... everything else is shared with trainer.* as for any behaviour section.
    assert small.time_horizon == 32 and small.network_settings == big.network_settings


def test_mixed_run_trains_both_and_resumes(workdir):
    budget = ["trainer.max_steps=1000", "behaviors.SmallWallJump.max_steps=1000"]  # BigWallJump: trainer.*
    small = "+behaviors.SmallWallJump.hyperparameters"
    ppo = "trainer.hyperparameters"
    args = [*MIXED, *budget, f"{small}.buffer_init_steps=200", f"{small}.steps_per_update=20",
            f"{small}.batch_size=32", f"{ppo}.buffer_size=512", f"{ppo}.batch_size=128", "trainer.summary_freq=500",
            "trainer.checkpoint_interval=1000", "trainer.network_settings.hidden_units=32", "env.num_areas=2", "seed=5",
            "tracking=none", "progress=plain", "run_id=mix"]  # fmt: skip
    proc = run_mlx(*args, cwd=workdir, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = workdir / "results" / "mix"
    rows = [json.loads(line) for line in (run / "run_logs" / "stats.jsonl").read_text().splitlines()]
    assert {r["behavior"] for r in rows} == {"BigWallJump", "SmallWallJump"}
    sac_rows = [r for r in rows if r["behavior"] == "SmallWallJump"]
    assert any("Losses/Q1 Loss" in r for r in sac_rows)  # SAC's own statistics
    assert any("Losses/Value Loss" in r and "Losses/Q1 Loss" not in r for r in rows if r["behavior"] == "BigWallJump")
    for behaviour in ("BigWallJump", "SmallWallJump"):
        assert (run / f"{behaviour}.onnx").exists()
    # A longer budget continues both trainers from their checkpoints; without '++' the key is refused in one
    # line naming the fix (the command line is composed before the run's own settings are read).
    proc = run_mlx("run_id=mix", "resume=true", "behaviors.SmallWallJump.max_steps=1500", cwd=workdir)
    assert proc.returncode == 2
    assert "add it with '+behaviors.SmallWallJump...=<value>' ('++'" in proc.stderr, proc.stderr
    more = ["trainer.max_steps=1500", "++behaviors.SmallWallJump.max_steps=1500"]
    proc = run_mlx("run_id=mix", "resume=true", *more, cwd=workdir, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "run_logs" / "stats.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows if r["behavior"] == "SmallWallJump") >= 1500
