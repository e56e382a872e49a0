"""Environment-parameter samplers: ML-Agents' constant, uniform, gaussian and multirangeuniform, and yours.

A sampler draws values of one environment parameter. ML-Agents sends the sampler's description to the
env, which draws a fresh value each time it reads the parameter (normally once per episode start, in
``OnEpisodeBegin``). mlx keeps those semantics without a Python loop per agent: a native env receives an
:class:`AreaSampler` (``BaseEnv.set_environment_sampler``) and draws one value per area for all the areas
starting an episode together, with one vectorised call. A Unity build (or a native env in its own
process) gets the built-in samplers over the environment-parameters side channel and draws them itself.

Custom samplers: subclass :class:`Sampler` (one method, ``sample(rng, size)``) in any importable module
and name it by ``_target_`` in the config; the other keys are its constructor's arguments::

    environment_parameters:
      mass:
        _target_: my_package.samplers.LogUniform   # any class with sample(rng, size) -> array
        low: 0.5
        high: 10.0

Seeding follows ML-Agents: sampler k (counting every lesson value of every parameter in config order)
draws from ``numpy.random.default_rng(run_seed + k)`` unless its config gives a ``seed``.

``resampling_interval`` (mlx's, default 1): how many consecutive episodes of an area share one draw.
1 is ML-Agents' behaviour since release 1 (a fresh value at every episode start); the pre-1.0
``resampling-interval`` counted steps and reset the whole env to redraw, which cuts episodes short, so
mlx counts episodes per area instead.
"""

from __future__ import annotations

import numpy as np

from mlx.config.samplers import (
    SAMPLER_TYPES,
    ConstantSampler,
    GaussianSampler,
    MultiRangeUniformSampler,
    Sampler,
    UniformSampler,
)
from mlx.envs.unity.side_channels import ChannelSampler, SamplerType
from mlx.errors import EnvError

# The samplers are defined (and checked) with the config schema; this is their documented home for users.
__all__ = [
    "SAMPLER_TYPES",
    "AreaSampler",
    "ConstantSampler",
    "GaussianSampler",
    "MultiRangeUniformSampler",
    "Sampler",
    "UniformSampler",
    "from_side_channel",
    "to_side_channel",
]


class AreaSampler:
    """A sampler bound to its random stream and resampling interval, drawing for areas of one env.

    ``draw(areas)`` is called by an env with the indices of the areas starting an episode and returns one
    value per area. With ``resampling_interval`` n > 1 an area keeps its value for n of its episodes.
    """

    def __init__(self, sampler: Sampler, seed: int, resampling_interval: int = 1) -> None:
        if resampling_interval < 1:
            raise ValueError(f"resampling_interval must be >= 1 (got {resampling_interval})")
        self.sampler = sampler
        self.seed = int(seed)
        self.resampling_interval = int(resampling_interval)
        self.rng = np.random.default_rng(self.seed & 0xFFFFFFFF)
        self._value = np.zeros(0)
        self._age = np.zeros(0, np.int64)  # episodes each area has played on its current value

    def sample(self, size: int) -> np.ndarray:
        """Fresh draws, ignoring areas (for envs that take one value at a time)."""
        values = np.asarray(self.sampler.sample(self.rng, size), dtype=np.float64)
        if values.shape != (size,) or not np.isfinite(values).all():
            raise EnvError(
                f"sampler {self.sampler.describe()} returned {values!r} for {size} draws; sample(rng, size) must "
                "return `size` finite numbers"
            )
        return values

    def draw(self, areas: np.ndarray) -> np.ndarray:
        """One value per given area (distinct indices) for the episodes they start now."""
        areas = np.asarray(areas, dtype=np.intp)
        if self.resampling_interval == 1:
            return self.sample(len(areas))
        if areas.size and areas.max() >= len(self._value):
            grow = int(areas.max()) + 1 - len(self._value)
            self._value = np.concatenate([self._value, np.zeros(grow)])
            self._age = np.concatenate([self._age, np.zeros(grow, np.int64)])
        fresh = areas[self._age[areas] % self.resampling_interval == 0]
        if fresh.size:
            self._value[fresh] = self.sample(fresh.size)
        self._age[areas] += 1
        return self._value[areas].copy()

    def __repr__(self) -> str:
        return (
            f"AreaSampler({self.sampler.describe()}, seed={self.seed}, resampling_interval={self.resampling_interval})"
        )


def to_side_channel(area: AreaSampler) -> ChannelSampler | float:
    """How a Unity build (or an env process) gets this sampler: ML-Agents' side-channel description, which
    the env draws from itself, or a plain value for a constant. Custom samplers and resampling intervals
    exist only in mlx's process: EnvError says so."""
    s = area.sampler
    if area.resampling_interval != 1:
        raise EnvError(
            f"resampling_interval={area.resampling_interval} needs a native env: a Unity env draws a fresh value "
            "at every read of the parameter; use resampling_interval 1 there"
        )
    seed = area.seed % 2**31  # the channel carries an int32
    if isinstance(s, ConstantSampler):
        return float(s.value)
    if isinstance(s, UniformSampler):
        return ChannelSampler(SamplerType.UNIFORM, seed, (s.min_value, s.max_value))
    if isinstance(s, GaussianSampler):
        return ChannelSampler(SamplerType.GAUSSIAN, seed, (s.mean, s.st_dev))
    if isinstance(s, MultiRangeUniformSampler):
        return ChannelSampler(SamplerType.MULTIRANGE_UNIFORM, seed, tuple(v for pair in s.intervals for v in pair))
    raise EnvError(
        f"the custom sampler {s.describe()} runs in mlx's process and cannot be sent to a Unity env; use a native "
        "env or one of constant, uniform, gaussian, multirangeuniform"
    )


def from_side_channel(channel: ChannelSampler) -> AreaSampler:
    """The env side of the channel: a received sampler description as an AreaSampler with its seed."""
    v = channel.values
    if channel.kind == SamplerType.UNIFORM:
        sampler: Sampler = UniformSampler(v[0], v[1])
    elif channel.kind == SamplerType.GAUSSIAN:
        sampler = GaussianSampler(v[0], v[1])
    else:
        sampler = MultiRangeUniformSampler([v[i : i + 2] for i in range(0, len(v), 2)])
    return AreaSampler(sampler, channel.seed)
