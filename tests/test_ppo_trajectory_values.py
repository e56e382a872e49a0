"""PPO values its steps when their trajectory ends, as upstream: the normaliser first takes in the
trajectory's observations, then the critic as it is now values every step and the bootstrap state; acting
stores one log-probability per action component."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlx.config import ExtrinsicSettings, PPOSettings
from mlx.envs.native.ball3d import BEHAVIOR_NAME, Ball3DEnv
from mlx.trainers.ppo.actor_critic import TorchActorCritic
from mlx.trainers.ppo.numpy.actor_critic import NumpyActorCritic
from mlx.trainers.ppo.trainer import PPOTrainer


def make(use_numpy: bool) -> tuple[PPOTrainer, Ball3DEnv]:
    """PPO with a normaliser and a time_horizon of 16 on 4 areas of 3DBall, acting in numpy or torch."""
    torch.manual_seed(0)
    settings = PPOSettings(time_horizon=16)
    settings.network_settings.normalize = True
    settings.network_settings.hidden_units = 16
    env = Ball3DEnv(num_areas=4, seed=0)
    trainer = PPOTrainer(
        BEHAVIOR_NAME,
        env.behavior_specs[BEHAVIOR_NAME],
        settings,
        {"extrinsic": ExtrinsicSettings()},
        torch.device("cpu"),
    )
    assert isinstance(trainer.actor_critic, NumpyActorCritic)
    if not use_numpy:
        trainer.actor_critic = TorchActorCritic(trainer.module, trainer.optimizer, trainer.device)
    env.reset()
    return trainer, env


def first_chunk(use_numpy: bool) -> tuple[PPOTrainer, dict[str, np.ndarray]]:
    """Acts until the first trajectories reach the update buffer; the last chunk of that step (episodes that
    ended and trajectories cut at time_horizon in the same step arrive as two), valued last."""
    trainer, env = make(use_numpy)
    while not trainer._buffer:
        env.set_actions(BEHAVIOR_NAME, trainer.process(*env.get_steps(BEHAVIOR_NAME)))
        env.step()
    return trainer, trainer._buffer[-1]


@pytest.mark.parametrize("use_numpy", [True, False], ids=["numpy", "torch"])
def test_steps_are_valued_after_the_normaliser_took_in_their_trajectory(use_numpy):
    trainer, chunk = first_chunk(use_numpy)
    obs = chunk["obs"]
    stats = trainer.module.normalizer.stats
    rows = sum(len(c["obs"]) for c in trainer._buffer)
    assert float(stats.count) == pytest.approx(1e-4 + rows)  # exactly these trajectories' steps so far
    # The stored values are the critic's now (no update yet), with the normaliser that includes these steps.
    np.testing.assert_allclose(chunk["old_values"], trainer.actor_critic.values(obs, None), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        x = trainer.module.preprocess(torch.as_tensor(obs))
        np.testing.assert_allclose(chunk["old_values"], trainer.module.critic(x).numpy(), rtol=1e-4, atol=1e-5)
        # ...which is not what the critic says under the initial normaliser (what acting saw)
        initial = trainer.module.critic(torch.as_tensor(obs).clamp(-5, 5)).numpy()
    assert np.abs(chunk["old_values"] - initial).max() > 1e-3
    # Cut trajectories bootstrap from V(next state): the return of a cut trajectory's last step is
    # r + gamma * V(s_next), V by the same critic and normaliser.
    assert chunk["old_log_prob"].shape == (len(obs), 2)  # one per continuous dimension
    assert np.isfinite(chunk["returns"]).all() and chunk["returns"].shape == (len(obs), 1)


@pytest.mark.parametrize("use_numpy", [True, False], ids=["numpy", "torch"])
def test_a_cut_trajectory_bootstraps_from_the_critic_at_its_end(use_numpy, monkeypatch):
    seen = []
    original = PPOTrainer._bootstrap

    def spy(self, traj):
        original(self, traj)
        if traj.needs_bootstrap.all():  # pieces cut at time_horizon (a dropped ball ends an episode unbootstrapped)
            seen.append(([o.copy() for o in traj.next_obs], traj.bootstrap_value.copy(), len(self._buffer)))

    monkeypatch.setattr(PPOTrainer, "_bootstrap", spy)
    trainer, env = make(use_numpy)
    while not seen:
        env.set_actions(BEHAVIOR_NAME, trainer.process(*env.get_steps(BEHAVIOR_NAME)))
        env.step()
    ((next_obs, boot, index),) = seen
    # V(next state) by the critic and normaliser as they are once the pieces were taken in (nothing since).
    np.testing.assert_allclose(boot, trainer.actor_critic.values(next_obs[0], None), rtol=1e-5, atol=1e-6)
    # GAE at the last step of a cut piece: return = r + gamma * V(next state).
    chunk = trainer._buffer[index]
    n = len(boot)
    returns = chunk["returns"][:, 0].reshape(n, 16)
    rewards = chunk["env_reward"].reshape(n, 16)
    np.testing.assert_allclose(returns[:, -1], rewards[:, -1] + 0.99 * boot[:, 0], rtol=1e-5, atol=1e-5)
