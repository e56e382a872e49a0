"""Normaliser, distributions and schedules."""

import math

import numpy as np
import torch

from mlx.config import NetworkSettings, ScheduleType
from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.trainers.nn.networks import Actor, Normalizer, gaussian_entropy, gaussian_log_prob, to_env_continuous
from mlx.trainers.schedules import decayed_value


def spec_of(obs_size: int, actions: ActionSpec) -> BehaviorSpec:
    return BehaviorSpec((ObservationSpec((obs_size,)),), actions)


def test_normalizer_matches_mean_and_variance_of_all_batches():
    rng = np.random.default_rng(0)
    data = rng.normal(loc=[3.0, -2.0], scale=[0.5, 4.0], size=(1000, 2)).astype(np.float32)
    norm = Normalizer(2)
    twin = Normalizer(2)  # fed numpy arrays: the same update in numpy on its CPU buffers
    for chunk in np.array_split(data, 7):
        norm.update(torch.from_numpy(chunk))
        twin.update(chunk)
    for name in ("mean", "var", "count"):
        np.testing.assert_allclose(getattr(twin, name).numpy(), getattr(norm, name).numpy(), rtol=1e-5)
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(norm.var.numpy(), data.var(0), rtol=1e-3)
    out = norm(torch.from_numpy(data)).numpy()
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(out.std(0), 1.0, atol=1e-2)


def test_normalizer_clips_to_five_sigma():
    norm = Normalizer(1)
    norm.update(torch.tensor([[0.0], [2.0]]))
    assert norm(torch.tensor([[1000.0]])).item() == 5.0


def test_gaussian_terms_match_torch_distributions():
    mu = torch.tensor([[0.3, -1.0]])
    log_std = torch.tensor([0.2, -0.5])
    x = torch.tensor([[1.0, 0.0]])
    ref = torch.distributions.Normal(mu, log_std.exp())
    assert torch.allclose(gaussian_log_prob(x, mu, log_std), ref.log_prob(x).sum(-1))
    # ML-Agents' GaussianDistInstance.entropy: the mean over dimensions (keeping its TF trainer's convention)
    assert torch.allclose(gaussian_entropy(log_std), ref.entropy().mean(-1))


def test_env_actions_are_clamped_and_scaled_like_ml_agents():
    raw = torch.tensor([[-9.0, -1.5, 0.0, 3.0, 4.0]])
    assert torch.allclose(to_env_continuous(raw), torch.tensor([[-1.0, -0.5, 0.0, 1.0, 1.0]]))


def test_masked_discrete_actions_are_never_sampled_and_log_probs_agree():
    torch.manual_seed(0)
    actor = Actor(spec_of(4, ActionSpec(discrete_branches=(3, 2))), NetworkSettings(hidden_units=16))
    obs = torch.randn(500, 4)
    mask = torch.ones(500, 5, dtype=torch.bool)
    mask[:, 1] = False  # branch 0, action 1 forbidden
    mask[:, 4] = False  # branch 1, action 1 forbidden
    out = actor.sample(obs, mask)
    assert not (out.discrete[:, 0] == 1).any() and (out.discrete[:, 1] == 0).all()
    log_prob, _ = actor.evaluate(obs, out.continuous, out.discrete, mask)
    assert torch.allclose(log_prob, out.log_prob, atol=1e-5)


def test_hybrid_log_prob_is_the_sum_of_parts():
    torch.manual_seed(1)
    actor = Actor(spec_of(3, ActionSpec(continuous_size=2, discrete_branches=(4,))), NetworkSettings(hidden_units=8))
    obs = torch.randn(10, 3)
    out = actor.sample(obs)
    log_prob, entropy = actor.evaluate(obs, out.continuous, out.discrete)
    assert torch.allclose(log_prob, out.log_prob, atol=1e-5)
    assert torch.allclose(entropy, out.entropy, atol=1e-5)


def test_linear_schedule_decays_to_floor_and_constant_holds():
    assert decayed_value(ScheduleType.linear, 3e-4, 1e-10, 0, 100) == 3e-4
    assert math.isclose(decayed_value(ScheduleType.linear, 0.2, 0.1, 50, 100), 0.15)
    assert math.isclose(decayed_value(ScheduleType.linear, 0.2, 0.1, 500, 100), 0.1)
    assert decayed_value(ScheduleType.constant, 0.2, 0.1, 50, 100) == 0.2
