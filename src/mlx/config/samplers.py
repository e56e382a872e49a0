"""Environment-parameter samplers as the config names them: ML-Agents' constant, uniform, gaussian and
multirangeuniform (``sampler_type`` -> class, ``sampler_parameters`` -> its fields), each checking its
fields when built, and the base class of custom samplers. How they are run (per-area streams, resampling,
the side channel to Unity) is mlx.params.samplers, which re-exports them: see its docstring."""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

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
    """A built-in sampler whose fields are all numbers: each must be finite, then ``check`` relates them.
    numpy draws it in one call, ``rng.<method>(*fields, size)``, and ``shown`` formats it from its fields."""

    method: ClassVar[str]
    shown: ClassVar[str]
    _args: tuple[float, ...]  # the fields in order, set once (not a dataclass field: this base is no dataclass)

    def __post_init__(self) -> None:
        for name, value in self._fields().items():
            _finite(value, name)
        self.check()
        object.__setattr__(self, "_args", tuple(self._fields().values()))  # read per draw: kept, not rebuilt

    def _fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]  # dataclasses

    def check(self) -> None:
        """ValueError naming the fields when their values contradict each other."""

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return getattr(rng, self.method)(*self._args, size)

    def describe(self) -> str:
        return self.shown.format(**self._fields())


@dataclass(frozen=True)
class ConstantSampler(_NumberFields):
    """Always ``value`` (ML-Agents' ``constant``; a plain number in the config means the same)."""

    value: float
    shown: ClassVar[str] = "{value:g}"

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, float(self.value))


@dataclass(frozen=True)
class UniformSampler(_NumberFields):
    """Uniform on [min_value, max_value), as ML-Agents' ``uniform``."""

    min_value: float
    max_value: float
    method: ClassVar[str] = "uniform"
    shown: ClassVar[str] = "uniform[{min_value:g}, {max_value:g})"

    def check(self) -> None:
        if self.min_value > self.max_value:
            raise ValueError(f"min_value ({self.min_value}) is greater than max_value ({self.max_value}); swap them")


@dataclass(frozen=True)
class GaussianSampler(_NumberFields):
    """Normal with ``mean`` and standard deviation ``st_dev``, as ML-Agents' ``gaussian``."""

    mean: float
    st_dev: float
    method: ClassVar[str] = "normal"
    shown: ClassVar[str] = "gaussian(mean={mean:g}, st_dev={st_dev:g})"

    def check(self) -> None:
        if self.st_dev < 0:
            raise ValueError(f"st_dev must be >= 0 (got {self.st_dev})")


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
