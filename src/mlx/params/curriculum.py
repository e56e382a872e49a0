"""Environment parameters at run time: constants, samplers and curricula, with ML-Agents' semantics.

The config's ``environment_parameters`` block (the ``curriculum/`` and ``sampler/`` config groups fill it)
is typed and checked by mlx.config.parameters. :class:`EnvironmentParameterManager` runs it: it sends each
parameter's current value or sampler to the env, collects episode rewards per behaviour, advances lessons
exactly as ML-Agents' EnvironmentParameterManager (a lesson ends when its measure passes the threshold after
at least min_lesson_length episodes; with smoothing the reward measure is ``0.25 * previous + 0.75 * mean``;
any lesson change empties every behaviour's reward buffer), and saves/restores lesson numbers
(training_status.json, ML-Agents' layout ``{"<parameter>": {"lesson_num": n}}``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlx.config.parameters import CompletionCriteria, EnvironmentParameter, Lesson
from mlx.envs.api import BaseEnv
from mlx.errors import ConfigError
from mlx.params.samplers import AreaSampler
from mlx.stat_names import GROUP_REWARD, REWARD


@dataclass
class EnvironmentParameterManager:
    """Runs the parameters of one training run (see the module docstring)."""

    parameters: dict[str, EnvironmentParameter]
    run_seed: int
    lesson: int | None = None  # start every curriculum at this lesson (clipped to its last one)
    lessons: dict[str, int] = field(default_factory=dict)
    smoothing: dict[str, float] = field(default_factory=dict)
    reward_buffers: dict[str, deque[float]] = field(default_factory=dict)
    fallback: dict[str, AreaSampler] = field(default_factory=dict)  # sampled by the run loop every step
    _seeds: dict[tuple[str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        start = max(0, self.lesson or 0)
        offset = 0
        for name, param in self.parameters.items():
            self.lessons[name] = min(start, len(param.lessons) - 1) if param.curriculum else 0
            self.smoothing[name] = 0.0
            for i, lesson in enumerate(param.lessons):  # ML-Agents: run seed + running index
                seed = lesson.value.seed
                self._seeds[(name, i)] = self.run_seed + offset if seed is None else seed
                offset += 1
        for behavior, size in self.buffer_sizes().items():
            self.reward_buffers[behavior] = deque(maxlen=size)

    # ---- set-up ---------------------------------------------------------------------------------
    def buffer_sizes(self) -> dict[str, int]:
        """Episodes of reward each behaviour keeps: the largest min_lesson_length naming it (at least 1)."""
        sizes: dict[str, int] = {}
        for param in self.parameters.values():
            for lesson in param.lessons:
                c = lesson.completion_criteria
                if c is not None:
                    sizes[c.behavior] = max(sizes.get(c.behavior, 1), c.min_lesson_length)
        return sizes

    def check_behaviors(self, behaviors: Iterable[str], env_name: str) -> None:
        """Every completion criterion must name a behaviour of the env (ML-Agents would wait forever)."""
        known = sorted(behaviors)
        for name, param in self.parameters.items():
            for i, lesson in enumerate(param.lessons):
                c = lesson.completion_criteria
                if c is not None and c.behavior not in known:
                    raise ConfigError(
                        f"environment_parameters.{name}.curriculum[{i}].completion_criteria.behavior: "
                        f"'{c.behavior}' is not a behaviour of env={env_name} ({', '.join(known)})"
                    )

    def current(self, name: str) -> Lesson:
        return self.parameters[name].lessons[self.lessons[name]]

    def lesson_report(self) -> dict[str, dict[str, Any]]:
        """Each parameter's lesson as reports record it: number, name and value (a constant or a sampler)."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.parameters:
            lesson = self.current(name)
            out[name] = {"lesson": self.lessons[name], "lesson_name": lesson.name, "value": lesson.value.describe()}
        return out

    def apply(self, env: BaseEnv, names: Iterable[str] | None = None) -> None:
        """Send the current lesson's value of each parameter (all, or ``names``) to the env."""
        for name in self.parameters if names is None else names:
            value = self.current(name).value
            self.fallback.pop(name, None)
            if value.constant is not None:
                env.set_environment_parameter(name, value.constant)
                continue
            sampler = AreaSampler(value.sampler, self._seeds[(name, self.lessons[name])], value.resampling_interval)
            if not env.set_environment_sampler(name, sampler):
                env.set_environment_parameter(name, float(sampler.sample(1)[0]))
                self.fallback[name] = sampler

    def before_step(self, env: BaseEnv) -> None:
        """For envs without per-area samplers: a fresh draw before every step (shared by the areas that
        start an episode in that step)."""
        for name, sampler in self.fallback.items():
            env.set_environment_parameter(name, float(sampler.sample(1)[0]))

    # ---- lessons --------------------------------------------------------------------------------
    def watch(self, stats: Any, behavior: str) -> None:
        """Feed the reward measure from a trainer's statistics (``StatsRecorder.watch``): the episode rewards
        of ``behavior``, or, once it has reported one, its group rewards: a group behaviour is scored by its
        group everywhere in mlx (its individual rewards are often 0, as in DungeonEscape). Individual
        returns already buffered when the first group return arrives are dropped."""
        grouped = False

        def individual(returns: np.ndarray) -> None:
            if not grouped:
                self.record_rewards(behavior, returns)

        def group(returns: np.ndarray) -> None:
            nonlocal grouped
            if not grouped and behavior in self.reward_buffers:
                self.reward_buffers[behavior].clear()
            grouped = True
            self.record_rewards(behavior, returns)

        stats.watch(REWARD, individual)
        stats.watch(GROUP_REWARD, group)

    def record_rewards(self, behavior: str, returns: np.ndarray) -> None:
        """Cumulative rewards of episodes of ``behavior`` that just ended, newest last."""
        buffer = self.reward_buffers.get(behavior)
        if buffer is not None:
            buffer.extend(np.atleast_1d(np.asarray(returns, dtype=np.float64)).tolist())

    def update(self, steps: Mapping[str, int], max_steps: Mapping[str, int]) -> tuple[list[str], bool]:
        """ML-Agents' update_lessons: returns the parameters whose lesson changed, and whether one of the
        completed lessons asked for an env reset."""
        changed: list[str] = []
        must_reset = False
        for name, param in self.parameters.items():
            number = self.lessons[name]
            criteria = param.lessons[number].completion_criteria
            if criteria is None or number + 1 >= len(param.lessons) or criteria.behavior not in steps:
                continue
            progress = steps[criteria.behavior] / max(max_steps[criteria.behavior], 1)
            done, self.smoothing[name] = need_increment(
                criteria, progress, self.reward_buffers.get(criteria.behavior, ()), self.smoothing[name]
            )
            if done:
                self.lessons[name] = number + 1
                changed.append(name)
                must_reset |= criteria.require_reset
        if changed:
            for buffer in self.reward_buffers.values():
                buffer.clear()
        return changed, must_reset

    def lesson_numbers(self) -> dict[str, int]:
        """Lesson of each curriculum (the statistic Environment/Lesson Number/<param>)."""
        return {name: self.lessons[name] for name, p in self.parameters.items() if p.curriculum}

    def completed(self) -> bool:
        """Every curriculum is at its last lesson (the task itself, not an easier version)."""
        return all(self.lessons[n] == len(p.lessons) - 1 for n, p in self.parameters.items() if p.curriculum)

    def describe(self, name: str) -> str:
        lesson = self.current(name)
        return f"Parameter '{name}' is now {lesson.value.describe()}: lesson {self.lessons[name]} '{lesson.name}'"

    # ---- persistence ----------------------------------------------------------------------------
    def state(self) -> dict[str, dict[str, Any]]:
        """For training_status.json: ML-Agents' {"<param>": {"lesson_num": n}}, plus the smoothed measure."""
        return {
            name: {"lesson_num": self.lessons[name], "smoothing": self.smoothing[name]}
            for name, p in self.parameters.items()
            if p.curriculum
        }

    def load_state(self, saved: Mapping[str, Any]) -> list[str]:
        """Lesson numbers from a saved status (resume); returns the parameters whose lesson changed."""
        changed = []
        for name, param in self.parameters.items():
            entry = saved.get(name)
            if not param.curriculum or not isinstance(entry, Mapping) or "lesson_num" not in entry:
                continue
            number = min(max(int(entry["lesson_num"]), 0), len(param.lessons) - 1)
            self.smoothing[name] = float(entry.get("smoothing", 0.0))
            if number != self.lessons[name]:
                self.lessons[name] = number
                changed.append(name)
        return changed


def need_increment(
    criteria: CompletionCriteria, progress: float, rewards: Iterable[float], smoothing: float
) -> tuple[bool, float]:
    """ML-Agents' CompletionCriteriaSettings.need_increment: (move on?, new smoothed value)."""
    rewards = list(rewards)
    if len(rewards) < criteria.min_lesson_length:
        return False, smoothing
    if criteria.measure == "progress":
        return progress > criteria.threshold, smoothing
    if not rewards:
        return False, smoothing
    measure = float(np.mean(rewards))
    if math.isnan(measure):
        return False, smoothing
    if criteria.signal_smoothing:
        measure = 0.25 * smoothing + 0.75 * measure
        smoothing = measure
    return measure > criteria.threshold, smoothing
