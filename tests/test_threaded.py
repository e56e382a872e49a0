"""``threaded`` (mlx.training.background): the update runs beside the env; the agents act with a frozen copy
of the policy, trajectories wait for the updated model, and errors reach the loop's thread."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mlx.config import ConfigError, ExtrinsicSettings, PPOSettings
from mlx.envs.native.ball3d import BEHAVIOR_NAME, Ball3DEnv
from mlx.trainers.ppo.actor_critic import TorchActorCritic
from mlx.trainers.ppo.trainer import PPOTrainer
from mlx.training.background import BackgroundUpdate


def make(use_numpy: bool, buffer_size: int = 256) -> tuple[PPOTrainer, Ball3DEnv]:
    torch.manual_seed(0)
    settings = PPOSettings(time_horizon=16, threaded=True)
    settings.hyperparameters.buffer_size = buffer_size
    settings.hyperparameters.batch_size = 64
    settings.network_settings.normalize = True
    settings.network_settings.hidden_units = 16
    env = Ball3DEnv(num_areas=4, seed=0)
    spec = env.behavior_specs[BEHAVIOR_NAME]
    trainer = PPOTrainer(BEHAVIOR_NAME, spec, settings, {"extrinsic": ExtrinsicSettings()}, torch.device("cpu"))
    if not use_numpy:
        trainer.actor_critic = TorchActorCritic(trainer.module, trainer.optimizer, trainer.device)
    env.reset()
    return trainer, env


def act_until(trainer: PPOTrainer, env: Ball3DEnv, done) -> None:
    while not done():
        env.set_actions(BEHAVIOR_NAME, trainer.process(*env.get_steps(BEHAVIOR_NAME)))
        env.step()


def policy_means(trainer: PPOTrainer, obs: np.ndarray) -> np.ndarray:
    """The acting policy's Gaussian means (deterministic acting on fixed rows)."""
    acting = trainer.actor_critic if trainer._frozen is None else trainer._frozen
    if isinstance(acting, TorchActorCritic):
        acting.module.actor.deterministic = True
    else:
        acting.deterministic = True
    return acting.act_parts(obs, None, None)[0]


@pytest.mark.parametrize("use_numpy", [True, False], ids=["numpy", "torch"])
def test_the_frozen_policy_acts_unchanged_while_the_update_runs_and_trajectories_wait(use_numpy):
    trainer, env = make(use_numpy)
    act_until(trainer, env, trainer.ready_to_update)
    obs = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    before = policy_means(trainer, obs)
    trainer.freeze_policy()
    trainer.update()  # what the thread runs: the live policy changes, the frozen copy does not
    np.testing.assert_array_equal(policy_means(trainer, obs), before)
    act_until(trainer, env, lambda: len(trainer._held) >= 3)
    assert not trainer._buffer  # held, not buffered yet
    held = sum(int(t.lengths.sum()) for t in trainer._held)
    trainer.thaw_policy()
    assert trainer._buffered == held
    assert not np.allclose(policy_means(trainer, obs), before)  # the updated policy acts now


def test_a_buffer_of_held_steps_makes_the_loop_wait_for_the_update():
    trainer, env = make(True, buffer_size=128)
    act_until(trainer, env, trainer.ready_to_update)
    trainer.freeze_policy()
    assert not trainer.held_enough()
    act_until(trainer, env, lambda: sum(int(t.lengths.sum()) for t in trainer._held) >= 128)
    assert trainer.held_enough()


def test_an_update_that_fails_in_its_thread_raises_in_the_loops_thread():
    trainer, env = make(True)
    act_until(trainer, env, trainer.ready_to_update)
    trainer._buffer[0]["advantages"][:] = np.nan  # a non-finite loss: refused before any step
    background = BackgroundUpdate(BEHAVIOR_NAME, trainer)
    with pytest.raises(Exception, match="(?i)nan|finite"):
        background.finish()


@pytest.mark.parametrize(
    "override, why",
    [
        ("trainer=sac", "SAC updates"),
        ("network=lstm", "with memory"),
        ("trainer.self_play={}", "self-play"),
    ],
)
def test_threaded_where_it_cannot_overlap_is_refused_by_name(override, why):
    from hydra import compose, initialize_config_dir

    from mlx.config import CONF_DIR, register_configs, validate

    register_configs()
    env = "tennis" if "self_play" in override else "3dball"
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"env={env}", override, "trainer.threaded=true"])
    with pytest.raises(ConfigError, match=f"threaded=true is not supported here: {why}"):
        validate(cfg)


def test_a_threaded_3dball_run_learns_and_finishes_cleanly(tmp_path):
    """The whole loop: updates in their thread, summaries and checkpoints between them, the final ones after.
    A threaded run is not reproducible (how many steps act on the older policy depends on timing): at 150k
    steps it measured 10.1-10.7 against a threshold of 10 (9.99 once under load), so it runs to 200k, where
    it measured 44-51, and asks for 20."""
    cmd = [sys.executable, "-m", "mlx", "env=3dball", "trainer=ppo", "trainer.threaded=true", "seed=1",
           "trainer.max_steps=200000", "tracking=none", "progress=plain", "run_id=threaded"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    logs = tmp_path / "results" / "threaded"
    rows = [json.loads(x) for x in (logs / "run_logs" / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] >= 200000
    assert max(r["mean_reward"] or 0 for r in rows) >= 20  # random play: about 1
    assert all(b["step"] > a["step"] for a, b in zip(rows, rows[1:], strict=False))
    assert (logs / "3DBall.onnx").exists()
