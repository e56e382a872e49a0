"""Samplers: each draws its distribution (Kolmogorov-Smirnov, fixed seeds), seeding, resampling interval,
per-area draws in native envs, the side channel for Unity, custom samplers by _target_."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from mlx.config import ConfigError
from mlx.config.parameters import parse_environment_parameters, parse_value
from mlx.envs.api import EnvError
from mlx.envs.native.ball3d import Ball3DEnv
from mlx.params.curriculum import EnvironmentParameterManager
from mlx.params.samplers import (
    AreaSampler,
    ConstantSampler,
    GaussianSampler,
    MultiRangeUniformSampler,
    Sampler,
    UniformSampler,
)

N = 20_000
# Kolmogorov-Smirnov critical value at alpha = 0.001: sqrt(-ln(alpha / 2) / 2) / sqrt(n).
KS_CRITICAL = math.sqrt(-math.log(0.0005) / 2) / math.sqrt(N)


def ks_statistic(samples: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray]) -> float:
    x = np.sort(samples)
    f = cdf(x)
    n = len(x)
    return float(max((np.arange(1, n + 1) / n - f).max(), (f - np.arange(n) / n).max()))


def normal_cdf(mean: float, sd: float) -> Callable[[np.ndarray], np.ndarray]:
    from math import erf

    return lambda x: 0.5 * (1 + np.vectorize(erf)((x - mean) / (sd * math.sqrt(2))))


def uniform_cdf(lo: float, hi: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.clip((x - lo) / (hi - lo), 0, 1)


def test_uniform_follows_its_distribution_and_stays_in_range():
    draws = AreaSampler(UniformSampler(0.5, 10.0), seed=7).sample(N)
    assert draws.min() >= 0.5 and draws.max() < 10.0
    assert ks_statistic(draws, uniform_cdf(0.5, 10.0)) < KS_CRITICAL
    # The test can fail: the same draws against a slightly different range are rejected.
    assert ks_statistic(draws, uniform_cdf(0.5, 9.5)) > KS_CRITICAL


def test_gaussian_follows_its_distribution():
    draws = AreaSampler(GaussianSampler(2.0, 0.5), seed=3).sample(N)
    assert ks_statistic(draws, normal_cdf(2.0, 0.5)) < KS_CRITICAL
    assert ks_statistic(draws, normal_cdf(2.0, 0.55)) > KS_CRITICAL


def test_multirange_uniform_weights_intervals_by_width():
    intervals = [[7.0, 10.0], [15.0, 20.0], [0.0, 0.0]]  # widths 3 and 5; a zero-width interval never drawn

    def cdf(x: np.ndarray) -> np.ndarray:
        return (np.clip(x - 7.0, 0, 3) + np.clip(x - 15.0, 0, 5)) / 8.0

    draws = AreaSampler(MultiRangeUniformSampler(intervals), seed=11).sample(N)
    assert ((draws >= 7) & (draws < 10) | (draws >= 15) & (draws < 20)).all()
    assert abs(np.mean(draws >= 15) - 5 / 8) < 0.02
    assert ks_statistic(draws, cdf) < KS_CRITICAL
    # Equal weights per interval (the wrong reading of ML-Agents' sampler) are rejected.
    assert ks_statistic(draws, lambda x: (np.clip(x - 7, 0, 3) / 3 + np.clip(x - 15, 0, 5) / 5) / 2) > KS_CRITICAL


def test_constant_and_points():
    assert (AreaSampler(ConstantSampler(4.0), seed=0).sample(5) == 4.0).all()
    points = AreaSampler(MultiRangeUniformSampler([[1, 1], [2, 2]]), seed=0).sample(1000)
    assert set(np.unique(points)) == {1.0, 2.0}


def test_seeded_draws_repeat_and_differ_between_seeds():
    a = AreaSampler(UniformSampler(0, 1), seed=5).draw(np.arange(8))
    b = AreaSampler(UniformSampler(0, 1), seed=5).draw(np.arange(8))
    c = AreaSampler(UniformSampler(0, 1), seed=6).draw(np.arange(8))
    assert (a == b).all() and not (a == c).all()


def test_resampling_interval_keeps_an_areas_value_for_that_many_episodes():
    sampler = AreaSampler(UniformSampler(0, 1), seed=1, resampling_interval=3)
    first = sampler.draw(np.array([0, 1, 2]))
    assert len(set(first.tolist())) == 3  # each area its own draw
    second = sampler.draw(np.array([1]))  # area 1's second episode: same value
    assert second[0] == first[1]
    sampler.draw(np.array([1]))  # third
    fourth = sampler.draw(np.array([1, 5]))  # fourth episode: a new value; area 5 starts its first
    assert fourth[0] != first[1]
    assert sampler.draw(np.array([0]))[0] == first[0]  # area 0's second episode


def test_manager_seeds_samplers_from_the_run_seed_as_ml_agents():
    params = parse_environment_parameters(
        {
            "a": 1.0,  # a constant counts too (ML-Agents numbers every lesson value)
            "b": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 0, "max_value": 1}},
            "c": {"sampler_type": "gaussian", "sampler_parameters": {"mean": 0, "st_dev": 1, "seed": 99}},
        }
    )
    manager = EnvironmentParameterManager(params, run_seed=40)
    assert manager._seeds == {("a", 0): 40, ("b", 0): 41, ("c", 0): 99}


def test_ball3d_draws_scale_per_area_at_each_episode_start():
    env = Ball3DEnv(num_areas=64, seed=0)
    assert env.set_environment_sampler("scale", AreaSampler(UniformSampler(0.75, 3.0), seed=2))
    env.reset()
    half_heights = env._h3[1].copy()
    scales = 4 * half_heights - 5.0  # hh = (2.5 + 0.5 * scale) / 2
    assert len(np.unique(np.round(scales, 4))) == 64
    assert scales.min() >= 0.75 - 1e-4 and scales.max() < 3.0 + 1e-4
    # Setting a value replaces the sampler: every new episode then gets that value.
    env.set_environment_parameter("scale", 1.0)
    env.reset()
    assert np.allclose(env._h3[1], (2.5 + 0.5) / 2)
    assert not env.set_environment_sampler("gravity", AreaSampler(UniformSampler(9, 10), seed=0))
    with pytest.raises(EnvError, match="masss"):
        env.set_environment_sampler("masss", AreaSampler(UniformSampler(1, 2), seed=0))


class TwoPoint(Sampler):
    """A custom sampler for the _target_ test: low or high, with probability p of high."""

    def __init__(self, low: float, high: float, p: float = 0.5) -> None:
        self.low, self.high, self.p = low, high, p

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.where(rng.random(size) < self.p, self.high, self.low)


class NotASampler:
    def __init__(self, x: float = 0) -> None:
        self.x = x


def test_custom_sampler_by_target():
    value = parse_value({"_target_": "tests.test_samplers.TwoPoint", "low": 1, "high": 5, "p": 0.25, "seed": 3}, "p")
    assert type(value.sampler).__name__ == "TwoPoint" and value.seed == 3  # pytest imports this file twice
    draws = AreaSampler(value.sampler, value.seed or 0).sample(4000)
    assert set(np.unique(draws)) == {1.0, 5.0} and abs((draws == 5).mean() - 0.25) < 0.03
    with pytest.raises(ConfigError, match=r"p\._target_=tests.test_samplers.Nope cannot be instantiated"):
        parse_value({"_target_": "tests.test_samplers.Nope"}, "p")
    with pytest.raises(ConfigError, match="is not a sampler"):
        parse_value({"_target_": "tests.test_samplers.NotASampler"}, "p")


def test_a_sampler_returning_the_wrong_shape_is_refused():
    class Broken(Sampler):
        def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
            return np.zeros(size + 1)

    with pytest.raises(EnvError, match="must return"):
        AreaSampler(Broken(), seed=0).draw(np.arange(3))


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"sampler_type": "uniformm", "sampler_parameters": {}}, ["p.sampler_type", "uniform", "_target_"]),
        ({"sampler_type": "uniform", "sampler_parameters": {"min_value": 3, "max_value": 1}}, ["min_value", "max"]),
        ({"sampler_type": "uniform", "sampler_parameters": {"min_value": 3}}, ["p.sampler_parameters.max_value"]),
        ({"sampler_type": "gaussian", "sampler_parameters": {"mean": 0, "st_dev": -1}}, ["st_dev", ">= 0"]),
        ({"sampler_type": "gaussian", "sampler_parameters": {"mean": 0, "sd": 1}}, ["p.sampler_parameters.sd"]),
        ({"sampler_type": "multirangeuniform", "sampler_parameters": {"intervals": [[1, 0]]}}, ["intervals[0]"]),
        ({"sampler_type": "multirangeuniform", "sampler_parameters": {"intervals": []}}, ["empty"]),
        ({"sampler_type": "uniform", "sampler_parameters": {"min_value": 0, "max_value": 1}, "x": 1}, ["p.x"]),
        ({"sampler_type": "constant", "sampler_parameters": {"value": 1}, "resampling_interval": 0}, ["interval"]),
        (True, ["p must be"]),
    ],
)
def test_malformed_samplers_are_refused_naming_the_key(value, words):
    with pytest.raises(ConfigError) as info:
        parse_value(value, "p")
    for word in words:
        assert word in str(info.value), str(info.value)


def test_side_channel_descriptions_round_trip_and_custom_samplers_cannot_travel():
    from mlx.envs.unity.side_channels import EnvironmentParametersChannel, SamplerType
    from mlx.params.samplers import from_side_channel, to_side_channel

    assert to_side_channel(AreaSampler(ConstantSampler(2.5), seed=1)) == 2.5
    multi = to_side_channel(AreaSampler(MultiRangeUniformSampler([[1, 2], [4, 6]]), seed=2**31 + 5))
    assert multi.kind == SamplerType.MULTIRANGE_UNIFORM and multi.values == (1, 2, 4, 6) and multi.seed == 5
    sender, receiver = EnvironmentParametersChannel(), EnvironmentParametersChannel()
    for key, sampler in (
        ("a", UniformSampler(0.5, 10)),
        ("b", GaussianSampler(1, 2)),
        ("c", MultiRangeUniformSampler([[1, 2]])),
    ):
        sender.set_sampler(key, to_side_channel(AreaSampler(sampler, seed=9)))
    from mlx.envs.unity.side_channels import IncomingMessage

    for payload in sender.queue:
        receiver.on_message_received(IncomingMessage(payload))
    for key, sampler in (
        ("a", UniformSampler(0.5, 10)),
        ("b", GaussianSampler(1, 2)),
        ("c", MultiRangeUniformSampler([[1, 2]])),
    ):
        back = from_side_channel(receiver.samplers[key])
        assert back.sampler == sampler and back.seed == 9
    with pytest.raises(EnvError, match="custom sampler"):
        to_side_channel(AreaSampler(TwoPoint(0, 1), seed=0))
    with pytest.raises(EnvError, match="resampling_interval=2 needs a native env"):
        to_side_channel(AreaSampler(UniformSampler(0, 1), seed=0, resampling_interval=2))


def test_an_env_process_hands_received_samplers_to_envs_that_draw_per_area():
    from mlx.envs.unity.remote import Session
    from mlx.envs.unity.side_channels import ChannelSampler as Sampler
    from mlx.envs.unity.side_channels import EnvironmentParametersChannel, IncomingMessage, SamplerType

    session = Session(lambda n, s: Ball3DEnv(n, s), client=None, num_areas=4, seed=0)  # type: ignore[arg-type]
    session.env = Ball3DEnv(4, 0)
    trainer = EnvironmentParametersChannel()
    trainer.set_sampler("scale", Sampler(SamplerType.UNIFORM, 3, (0.75, 3.0)))
    trainer.set_sampler("gravity", Sampler(SamplerType.UNIFORM, 4, (9.0, 10.0)))
    for payload in trainer.queue:
        session.params.on_message_received(IncomingMessage(payload))
    session.apply_parameters()
    assert session.env.parameters.samplers["scale"].sampler == UniformSampler(0.75, 3.0)  # drawn per area
    assert session._rngs["scale"][1] is None and session._rngs["gravity"][1] is not None
    session.draw_samplers()  # gravity is global: this process draws it
    assert 9.0 <= session.env.parameters["gravity"] < 10.0
