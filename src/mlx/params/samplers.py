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

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlx.envs.api import EnvError
from mlx.envs.unity.side_channels import ChannelSampler, SamplerType


class Sampler(abc.ABC):
    """Draws values of one environment parameter. Subclass it for a custom distribution."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws as a float array (one per area starting an episode)."""

    def describe(self) -> str:
        """How the lesson-change message shows this sampler."""
        return repr(self)


@dataclass(frozen=True)
class ConstantSampler(Sampler):
    """Always ``value`` (ML-Agents' ``constant``; a plain number in the config means the same)."""

    value: float

    def __post_init__(self) -> None:
        _finite(self.value, "value")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, float(self.value))

    def describe(self) -> str:
        return f"{self.value:g}"


@dataclass(frozen=True)
class UniformSampler(Sampler):
    """Uniform on [min_value, max_value), as ML-Agents' ``uniform``."""

    min_value: float
    max_value: float

    def __post_init__(self) -> None:
        _finite(self.min_value, "min_value")
        _finite(self.max_value, "max_value")
        if self.min_value > self.max_value:
            raise ValueError(f"min_value ({self.min_value}) is greater than max_value ({self.max_value}); swap them")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.min_value, self.max_value, size)

    def describe(self) -> str:
        return f"uniform[{self.min_value:g}, {self.max_value:g})"


@dataclass(frozen=True)
class GaussianSampler(Sampler):
    """Normal with ``mean`` and standard deviation ``st_dev``, as ML-Agents' ``gaussian``."""

    mean: float
    st_dev: float

    def __post_init__(self) -> None:
        _finite(self.mean, "mean")
        _finite(self.st_dev, "st_dev")
        if self.st_dev < 0:
            raise ValueError(f"st_dev must be >= 0 (got {self.st_dev})")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.normal(self.mean, self.st_dev, size)

    def describe(self) -> str:
        return f"gaussian(mean={self.mean:g}, st_dev={self.st_dev:g})"


@dataclass(frozen=True, init=False)
class MultiRangeUniformSampler(Sampler):
    """Uniform over the union of ``intervals`` [[min, max], ...], as ML-Agents' ``multirangeuniform``:
    an interval is picked with probability proportional to its width, then a value uniformly inside it."""

    intervals: tuple[tuple[float, float], ...]

    def __init__(self, intervals: Sequence[Sequence[float]]) -> None:
        pairs = []
        for i, pair in enumerate(intervals):
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise ValueError(f"intervals[{i}] must be a [min, max] pair (got {pair!r})")
            low, high = (float(v) for v in pair)
            _finite(low, f"intervals[{i}]")
            _finite(high, f"intervals[{i}]")
            if low > high:
                raise ValueError(f"intervals[{i}] has min {low} greater than max {high}; swap them")
            pairs.append((low, high))
        if not pairs:
            raise ValueError("intervals is empty; give at least one [min, max] pair")
        object.__setattr__(self, "intervals", tuple(pairs))
        lows = np.array([p[0] for p in pairs])
        widths = np.array([p[1] - p[0] for p in pairs])
        object.__setattr__(self, "_lows", lows)
        object.__setattr__(self, "_widths", widths)
        object.__setattr__(self, "_ends", np.cumsum(widths))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        total = float(self._ends[-1])
        if total <= 0:  # only zero-width intervals: each point equally likely
            return self._lows[rng.integers(len(self._lows), size=size)].astype(np.float64)
        # One uniform draw on the summed widths, mapped into its interval: width-weighted, then uniform.
        u = rng.uniform(0.0, total, size)
        k = np.minimum(np.searchsorted(self._ends, u, side="right"), len(self._ends) - 1)
        return self._lows[k] + (u - (self._ends[k] - self._widths[k]))

    def describe(self) -> str:
        return "multirangeuniform" + str([list(p) for p in self.intervals])


# ML-Agents' sampler_type names -> class. Their sampler_parameters are the constructor's arguments.
SAMPLER_TYPES: dict[str, type[Sampler]] = {
    "constant": ConstantSampler,
    "uniform": UniformSampler,
    "gaussian": GaussianSampler,
    "multirangeuniform": MultiRangeUniformSampler,
}


def _finite(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (got {value!r})")


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
