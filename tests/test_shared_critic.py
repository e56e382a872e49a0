"""hyperparameters.shared_critic (ML-Agents' PPO): one network body for policy and value, trained by both."""

from __future__ import annotations

import pytest
import torch

from mlx.config import ExtrinsicSettings, MemorySettings, PPOHyperparameters, PPOSettings
from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.trainers.losses import PPOBatch
from mlx.trainers.ppo.actor_critic import TorchActorCritic
from mlx.trainers.ppo.trainer import PPOTrainer
from tests.conftest import train_to

SPEC = BehaviorSpec((ObservationSpec((8,)),), ActionSpec(continuous_size=2))
SIGNALS = {"extrinsic": ExtrinsicSettings()}


def make_trainer(shared: bool, memory: bool = False) -> PPOTrainer:
    torch.manual_seed(0)
    settings = PPOSettings(hyperparameters=PPOHyperparameters(shared_critic=shared))
    settings.network_settings.hidden_units = 16
    if memory:
        settings.network_settings.memory = MemorySettings(sequence_length=4, memory_size=8)
    return PPOTrainer("B", SPEC, settings, SIGNALS, torch.device("cpu"))


def test_actor_and_critic_share_one_body():
    module = make_trainer(shared=True).module
    assert module.critic.body is module.actor.body
    params = {id(p) for p in module.parameters()}
    separate = make_trainer(shared=False).module
    # The shared module holds the body once: it has one body's parameters fewer than the default module.
    assert len(params) == len(list(separate.parameters())) - len(list(separate.critic.body.parameters()))
    assert all(id(p) in params for p in module.critic.body.parameters())


def test_the_critic_reads_the_shared_body():
    module = make_trainer(shared=True).module
    x = torch.randn(5, 8)
    before = module.critic(x).detach().clone()
    with torch.no_grad():
        for p in module.actor.body.parameters():
            p.add_(0.1)
    assert not torch.allclose(module.critic(x), before)


def test_the_value_loss_trains_the_shared_body():
    module = make_trainer(shared=True).module
    n = 32
    batch = PPOBatch(
        obs=torch.randn(n, 8),
        continuous=torch.randn(n, 2),
        discrete=torch.zeros(n, 0, dtype=torch.long),
        action_mask=torch.zeros(n, 0, dtype=torch.bool),
        old_log_prob=torch.zeros(n),
        old_values=torch.zeros(n, 1),
        returns=torch.full((n, 1), 3.0),
        advantages=torch.zeros(n),  # no policy gradient: only the value loss moves the body
    )
    module.beta = 0.0
    terms = module.training_step(batch, 0)
    terms["loss_value"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.actor.body.parameters())


def test_default_bodies_stay_separate_and_the_shared_one_acts_in_torch():
    plain, shared = make_trainer(shared=False), make_trainer(shared=True)
    assert plain.module.critic.body is not plain.module.actor.body
    # The numpy fast path computes separate bodies: a shared critic acts and learns with torch.
    assert isinstance(shared.actor_critic, TorchActorCritic)


def test_with_memory_the_shared_body_carries_the_actors_memory_only():
    trainer = make_trainer(shared=True, memory=True)
    module = trainer.module
    assert module.memory_size == module.actor.memory_size == 8
    x, memories = torch.randn(3, 8), torch.randn(3, 8)
    with torch.no_grad():
        values, critic_memories = module.critic.values(x, module.critic_memories(memories))
        h, _ = module.actor.body(x, memories)
    assert critic_memories.shape == (3, 0)
    torch.testing.assert_close(values, module.critic.heads(h))  # the value heads read the policy's body


@pytest.mark.learning
def test_ppo_with_a_shared_critic_learns_3dball(workdir):
    _, best = train_to(
        workdir,
        30,
        "trainer=ppo",
        "env=3dball",
        "trainer.hyperparameters.shared_critic=true",
        "trainer.max_steps=150000",
    )
    assert best["mean_reward"] >= 30, best
