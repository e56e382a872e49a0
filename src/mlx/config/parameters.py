"""The environment_parameters block (ML-Agents' ``environment_parameters:``, seed 002/003), typed and checked.

Each parameter is one of:

* a number (a constant);
* a sampler: ``{sampler_type: uniform|gaussian|multirangeuniform|constant, sampler_parameters: {...}}``
  (optionally ``resampling_interval``), or a custom one by ``_target_`` (see :mod:`mlx.params.samplers`);
* a curriculum: ``{curriculum: [lesson, ...]}``, each lesson ``{name, value, completion_criteria}``
  where ``value`` is a number or a sampler and ``completion_criteria`` has ``behavior``, ``measure``
  (``progress`` = the behaviour's steps / max_steps, or ``reward`` = the mean cumulative reward of its
  last ``min_lesson_length`` episodes), ``threshold``, ``min_lesson_length`` (episodes), ``signal_smoothing``
  and ``require_reset``. The last lesson needs no criteria.

:func:`parse_environment_parameters` checks all of it at start-up (ConfigError naming the dotted key);
mlx.params.curriculum runs the result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from mlx.config.samplers import SAMPLER_TYPES, ConstantSampler, Sampler
from mlx.errors import ConfigError

MEASURES = ("progress", "reward")
# Keys of a sampler mapping read by mlx (not passed to a custom sampler's constructor).
SAMPLER_KEYS = ("sampler_type", "sampler_parameters", "resampling_interval")
LESSON_KEYS = ("name", "value", "completion_criteria")


@dataclass(frozen=True)
class ParameterValue:
    """What one lesson sets a parameter to: a constant, or a sampler drawn per episode."""

    sampler: Sampler
    seed: int | None = None  # None: the run seed plus this value's position (ML-Agents' seeding)
    resampling_interval: int = 1

    @property
    def constant(self) -> float | None:
        return float(self.sampler.value) if isinstance(self.sampler, ConstantSampler) else None

    def describe(self) -> str:
        return self.sampler.describe()


@dataclass(frozen=True)
class CompletionCriteria:
    """ML-Agents' CompletionCriteriaSettings (same names and defaults)."""

    behavior: str
    measure: str = "reward"
    min_lesson_length: int = 0
    signal_smoothing: bool = True
    threshold: float = 0.0
    require_reset: bool = False


@dataclass(frozen=True)
class Lesson:
    name: str
    value: ParameterValue
    completion_criteria: CompletionCriteria | None = None


@dataclass(frozen=True)
class EnvironmentParameter:
    """One parameter: a single lesson for a constant or a sampler, several for a curriculum."""

    name: str
    lessons: tuple[Lesson, ...]
    curriculum: bool = False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path} must be {what} (got {value!r})")
    return value


def _unknown(path: str, key: Any, allowed: Iterable[str]) -> ConfigError:
    return ConfigError(f"unknown key '{path}.{key}'; allowed keys there: {', '.join(allowed)}")


def parse_value(value: Any, path: str) -> ParameterValue:
    """A number, an ML-Agents sampler mapping, or a custom sampler (``_target_``)."""
    if _is_number(value):
        if not math.isfinite(value):
            raise ConfigError(f"{path} must be a finite number (got {value})")
        return ParameterValue(ConstantSampler(float(value)))
    section = _mapping(value, path, "a number, a sampler {sampler_type, sampler_parameters} or {_target_: ...}")
    interval = section.get("resampling_interval", 1)
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
        raise ConfigError(
            f"{path}.resampling_interval must be a whole number of episodes >= 1 (got {interval!r}); "
            "1 draws a fresh value at every episode start"
        )
    if "_target_" in section:
        return _custom_sampler(section, path, interval)
    for key in section:
        if key not in SAMPLER_KEYS:
            if key == "curriculum":
                raise ConfigError(f"{path}: a lesson's value cannot be a curriculum; give a number or a sampler")
            raise _unknown(path, key, (*SAMPLER_KEYS, "_target_"))
    kind = section.get("sampler_type")
    if kind not in SAMPLER_TYPES:
        raise ConfigError(
            f"{path}.sampler_type must be one of {', '.join(SAMPLER_TYPES)} (got {kind!r}); "
            f"for a sampler of your own give {path}._target_=<module.Class> instead"
        )
    cls = SAMPLER_TYPES[kind]
    params = dict(_mapping(section.get("sampler_parameters"), f"{path}.sampler_parameters", "a mapping"))
    seed = params.pop("seed", None)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ConfigError(f"{path}.sampler_parameters.seed must be an integer (got {seed!r})")
    names = [f.name for f in fields(cls)]
    for key in params:
        if key not in names:
            raise _unknown(f"{path}.sampler_parameters", key, (*names, "seed"))
    missing = [n for n in names if n not in params]
    if missing:
        raise ConfigError(
            f"{path}.sampler_parameters.{missing[0]} is missing; a {kind} sampler needs {', '.join(names)}"
        )
    try:
        sampler = cls(**params)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}.sampler_parameters: {exc}") from None
    return ParameterValue(sampler, seed, interval)


def _custom_sampler(section: Mapping[str, Any], path: str, interval: int) -> ParameterValue:
    # Hydra's instantiation machinery is loaded only when a config names a custom sampler (start-up time).
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    target = section["_target_"]
    seed = section.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ConfigError(f"{path}.seed must be an integer (got {seed!r})")
    kwargs = {k: v for k, v in section.items() if k not in ("seed", "resampling_interval")}
    try:
        sampler = instantiate(kwargs)
    except (InstantiationException, ImportError, TypeError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise ConfigError(f"{path}._target_={target} cannot be instantiated: {reason}") from None
    if not callable(getattr(sampler, "sample", None)):
        raise ConfigError(
            f"{path}._target_={target} is not a sampler: subclass mlx.params.samplers.Sampler "
            "and implement sample(rng, size)"
        )
    return ParameterValue(sampler, seed, interval)


def parse_criteria(value: Any, path: str) -> CompletionCriteria:
    section = _mapping(value, path, "a mapping with behavior, measure, threshold, ...")
    names = [f.name for f in fields(CompletionCriteria)]
    for key in section:
        if key not in names:
            raise _unknown(path, key, names)
    behavior = section.get("behavior")
    if not isinstance(behavior, str) or not behavior:
        raise ConfigError(f"{path}.behavior is missing: name the behaviour whose progress or reward ends the lesson")
    measure = section.get("measure", "reward")
    if measure not in MEASURES:
        raise ConfigError(f"{path}.measure must be 'progress' or 'reward' (got {measure!r})")
    threshold = section.get("threshold", 0.0)
    if not _is_number(threshold) or not math.isfinite(threshold):
        raise ConfigError(f"{path}.threshold must be a finite number (got {threshold!r})")
    if measure == "progress" and not 0.0 <= threshold <= 1.0:
        raise ConfigError(
            f"{path}.threshold must be in [0, 1] with measure progress (the fraction of max_steps; got {threshold})"
        )
    length = section.get("min_lesson_length", 0)
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise ConfigError(f"{path}.min_lesson_length must be a whole number of episodes >= 0 (got {length!r})")
    flags = {}
    for key in ("signal_smoothing", "require_reset"):
        flag = section.get(key, CompletionCriteria.__dataclass_fields__[key].default)
        if not isinstance(flag, bool):
            raise ConfigError(f"{path}.{key} must be true or false (got {flag!r})")
        flags[key] = flag
    return CompletionCriteria(
        behavior, measure, length, flags["signal_smoothing"], float(threshold), flags["require_reset"]
    )


def parse_parameter(name: str, value: Any, path: str) -> EnvironmentParameter:
    if not (isinstance(value, Mapping) and "curriculum" in value):
        return EnvironmentParameter(name, (Lesson("default", parse_value(value, path)),))
    for key in value:
        if key != "curriculum":
            raise _unknown(path, key, ("curriculum",))
    lessons_in = value["curriculum"]
    if not isinstance(lessons_in, (list, tuple)) or not lessons_in:
        raise ConfigError(f"{path}.curriculum must be a non-empty list of lessons {{name, value, completion_criteria}}")
    lessons: list[Lesson] = []
    last = len(lessons_in) - 1
    for i, raw in enumerate(lessons_in):
        where = f"{path}.curriculum[{i}]"
        lesson = _mapping(raw, where, "a lesson {name, value, completion_criteria}")
        for key in lesson:
            if key not in LESSON_KEYS:
                raise _unknown(where, key, LESSON_KEYS)
        if "value" not in lesson:
            raise ConfigError(f"{where}.value is missing: give the parameter's value (or sampler) in this lesson")
        criteria = None
        if lesson.get("completion_criteria") is not None:
            criteria = parse_criteria(lesson["completion_criteria"], f"{where}.completion_criteria")
        elif i < last:
            raise ConfigError(
                f"{where}.completion_criteria is missing: every lesson but the last needs one "
                "(behavior, measure, threshold, ...) saying when to move on"
            )
        lesson_name = lesson.get("name", f"Lesson{i}")
        lessons.append(Lesson(str(lesson_name), parse_value(lesson["value"], f"{where}.value"), criteria))
    _check_order(lessons, path)
    return EnvironmentParameter(name, tuple(lessons), curriculum=True)


def _check_order(lessons: list[Lesson], path: str) -> None:
    """Progress only grows, so a progress threshold below an earlier one (same behaviour) would end its
    lesson at once: refused. Reward thresholds may fall (later lessons are harder)."""
    seen: dict[str, tuple[int, float]] = {}
    for i, lesson in enumerate(lessons[:-1]):
        c = lesson.completion_criteria
        if c is None or c.measure != "progress":
            continue
        if c.behavior in seen and c.threshold < seen[c.behavior][1]:
            j, before = seen[c.behavior]
            raise ConfigError(
                f"{path}.curriculum[{i}].completion_criteria.threshold ({c.threshold}) is below lesson {j}'s "
                f"({before}): progress thresholds of one behaviour must not decrease; put the lessons in order"
            )
        seen[c.behavior] = (i, c.threshold)


def parse_environment_parameters(tree: Any, path: str = "environment_parameters") -> dict[str, EnvironmentParameter]:
    """The whole environment_parameters block, typed; ConfigError naming the dotted key otherwise."""
    if tree is None:
        return {}
    section = _mapping(tree, path, "a mapping of parameter names to values, samplers or curricula")
    return {str(name): parse_parameter(str(name), value, f"{path}.{name}") for name, value in section.items()}
