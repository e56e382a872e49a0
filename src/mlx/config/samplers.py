"""Environment-parameter samplers as the config names them: ML-Agents' constant, uniform, gaussian and
multirangeuniform (``sampler_type`` -> class, ``sampler_parameters`` -> its fields), each checking its
fields when built, and the base class of custom samplers. How they are run (per-area streams, resampling,
the side channel to Unity) is mlx.params.samplers, which re-exports them: see its docstring."""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np


class Sampler(abc.ABC):
    """Draws values of one environment parameter. Subclass it for a custom distribution."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws as a float array (one per area starting an episode)."""

    def describe(self) -> str:
        """How the lesson-change message shows this sampler."""
        return repr(self)


def _finite(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (got {value!r})")


class _NumberFields(Sampler):
    """A built-in sampler whose fields are all numbers: each must be finite, then ``check`` relates them."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]  # every subclass is a dataclass
            _finite(getattr(self, f.name), f.name)
        self.check()

    def check(self) -> None:
        """ValueError naming the fields when their values contradict each other."""


@dataclass(frozen=True)
class ConstantSampler(_NumberFields):
    """Always ``value`` (ML-Agents' ``constant``; a plain number in the config means the same)."""

    value: float

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, float(self.value))

    def describe(self) -> str:
        return f"{self.value:g}"


@dataclass(frozen=True)
class UniformSampler(_NumberFields):
    """Uniform on [min_value, max_value), as ML-Agents' ``uniform``."""

    min_value: float
    max_value: float

    def check(self) -> None:
        if self.min_value > self.max_value:
            raise ValueError(f"min_value ({self.min_value}) is greater than max_value ({self.max_value}); swap them")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.min_value, self.max_value, size)

    def describe(self) -> str:
        return f"uniform[{self.min_value:g}, {self.max_value:g})"


@dataclass(frozen=True)
class GaussianSampler(_NumberFields):
    """Normal with ``mean`` and standard deviation ``st_dev``, as ML-Agents' ``gaussian``."""

    mean: float
    st_dev: float

    def check(self) -> None:
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
