"""PPO's numpy acting equals its torch networks: log-probabilities, entropies, values, masks, live weights."""

from __future__ import annotations

import numpy as np
import torch

from mlx.config import ExtrinsicSettings, MemorySettings, PPOSettings
from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.trainers.ppo.numpy.actor_critic import NumpyActorCritic
from mlx.trainers.ppo.trainer import PPOTrainer

SIGNALS = {"extrinsic": ExtrinsicSettings()}


def make_trainer(
    action_spec: ActionSpec,
    memory: bool = False,
    signals: dict | None = None,
    hidden_units: int | None = None,
    seed: int = 0,
) -> PPOTrainer:
    """A PPO trainer on 6 vector observations with a fitted normaliser and perturbed weights (shared by
    the numpy acting and numpy update tests)."""
    torch.manual_seed(seed)
    settings = PPOSettings()
    settings.network_settings.normalize = True
    if hidden_units is not None:
        settings.network_settings.hidden_units = hidden_units
    if memory:
        settings.network_settings.memory = MemorySettings(sequence_length=4, memory_size=8)
    spec = BehaviorSpec((ObservationSpec((6,)),), action_spec)
    trainer = PPOTrainer("B", spec, settings, signals or SIGNALS, torch.device("cpu"))
    data = np.random.default_rng(1).normal(2.0, 3.0, (500, 6))
    trainer.module.normalizer.update(torch.as_tensor(data, dtype=torch.float32))
    with torch.no_grad():  # a trained-looking policy, not the near-uniform initial one
        for p in trainer.module.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return trainer


def numpy_path(trainer: PPOTrainer) -> NumpyActorCritic | None:
    """The trainer's numpy actor-critic, None where it acts and updates with torch."""
    net = trainer.actor_critic
    return net if isinstance(net, NumpyActorCritic) else None


def torch_reference(trainer: PPOTrainer, obs, cont, disc, mask):
    module = trainer.module
    with torch.no_grad():
        x = module.preprocess(torch.as_tensor(obs))
        mask_t = None if mask is None else torch.as_tensor(mask)
        log_prob, entropy = module.actor.evaluate(x, torch.as_tensor(cont), torch.as_tensor(disc), mask_t)
        values = module.critic(x)
    return log_prob.numpy(), entropy.numpy(), values.numpy()


def test_hybrid_actions_match_the_torch_networks():
    trainer = make_trainer(ActionSpec(continuous_size=2, discrete_branches=(4, 3)))
    policy = numpy_path(trainer)
    assert policy is not None
    rng = np.random.default_rng(2)
    obs = rng.normal(2.0, 3.0, (500, 6)).astype(np.float32)
    mask = rng.random((500, 7)) > 0.4
    mask[:, 0] = mask[:, 4] = True
    cont, disc, log_prob, entropy, values, _ = policy.act(obs, mask)
    ref_lp, ref_ent, ref_values = torch_reference(trainer, obs, cont, disc, mask)
    np.testing.assert_allclose(log_prob, ref_lp, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(entropy, ref_ent, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(values, ref_values, rtol=1e-4, atol=1e-4)
    assert mask[np.arange(500), disc[:, 0]].all() and mask[np.arange(500), 4 + disc[:, 1]].all()


def test_discrete_samples_follow_the_policy_probabilities():
    trainer = make_trainer(ActionSpec(discrete_branches=(5,)))
    policy = numpy_path(trainer)
    assert policy is not None
    obs = np.tile(np.random.default_rng(3).normal(size=(1, 6)).astype(np.float32), (40000, 1))
    mask = np.ones((40000, 5), bool)
    mask[:, 2] = False
    _, disc, log_prob, _, _, _ = policy.act(obs, mask)
    probs = np.zeros(5)
    probs[disc[:5, 0]] = np.exp(log_prob[:5])
    freq = np.bincount(disc[:, 0], minlength=5) / len(disc)
    assert freq[2] == 0.0
    seen = np.flatnonzero(freq)
    np.testing.assert_allclose(freq[seen], np.exp(log_prob[[np.argmax(disc[:, 0] == a) for a in seen]]), atol=0.01)


def test_continuous_samples_have_the_policy_std_and_see_live_weights():
    trainer = make_trainer(ActionSpec(continuous_size=2))
    policy = numpy_path(trainer)
    assert policy is not None
    obs = np.ones((20000, 6), np.float32)
    with torch.no_grad():
        trainer.module.actor.log_std.copy_(torch.tensor([-1.0, 0.5]))  # in place, as the optimiser does
    cont, _, _, entropy, _, _ = policy.act(obs, None)
    np.testing.assert_allclose(cont.std(0), np.exp([-1.0, 0.5]), rtol=0.03)
    with torch.no_grad():
        mean = trainer.module.actor.sample(trainer.module.preprocess(torch.as_tensor(obs[:1])), deterministic=True)
    np.testing.assert_allclose(cont.mean(0), mean.continuous.numpy()[0], atol=0.03)
    per_dim = np.array([-1.0, 0.5]) + 0.5 * (np.log(2 * np.pi) + 1)
    np.testing.assert_allclose(entropy[0], per_dim.mean(), atol=1e-5)  # the mean over dimensions, as upstream


def test_memory_networks_act_with_torch():
    assert numpy_path(make_trainer(ActionSpec(continuous_size=1), memory=True)) is None


def test_checkpoint_keeps_the_sampling_generator():
    trainer = make_trainer(ActionSpec(continuous_size=2))
    policy = numpy_path(trainer)
    assert policy is not None
    state = trainer.state_dict()
    obs = np.zeros((4, 6), np.float32)
    first = policy.act(obs, None)[0]
    trainer.load_state_dict(state)
    np.testing.assert_array_equal(policy.act(obs, None)[0], first)
    assert isinstance(trainer.actor_critic, NumpyActorCritic)


def test_per_component_acting_matches_the_torch_networks_and_skips_the_critic():
    """What the trainer acts with: one log-probability per action component (as ``Actor.evaluate`` with
    ``components`` gives them, summing to the joint one) and no values; ``values`` is the critic's."""
    trainer = make_trainer(ActionSpec(continuous_size=2, discrete_branches=(4, 3)))
    policy = numpy_path(trainer)
    assert policy is not None
    rng = np.random.default_rng(4)
    obs = rng.normal(2.0, 3.0, (300, 6)).astype(np.float32)
    mask = rng.random((300, 7)) > 0.4
    mask[:, 0] = mask[:, 4] = True
    cont, disc, parts, entropy, memories = policy.act_parts(obs, mask)
    assert parts.shape == (300, 4) and memories is None
    module = trainer.module
    with torch.no_grad():
        x = module.preprocess(torch.as_tensor(obs))
        ref_parts, ref_ent = module.actor.evaluate(
            x, torch.as_tensor(cont), torch.as_tensor(disc), torch.as_tensor(mask), components=True
        )
    np.testing.assert_allclose(parts, ref_parts.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(entropy, ref_ent.numpy(), rtol=1e-4, atol=1e-4)
    ref_lp, _, ref_values = torch_reference(trainer, obs, cont, disc, mask)
    np.testing.assert_allclose(parts.sum(1), ref_lp, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(policy.values(obs), ref_values, rtol=1e-4, atol=1e-4)
