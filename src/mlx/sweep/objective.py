"""A trial's objective, computed from its summaries, and the run hook that reports it to Optuna.

The value reported at each summary is the value the trial would get if it ended there, so a pruner
compares trials at equal agent steps on the same scale as their final values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlx.sweep.settings import ObjectiveSettings
from mlx.tracking.curves import read_stats, row_score

History = Mapping[str, list[tuple[int, float | None]]]  # behaviour -> [(step, mean reward or None)]


def mean_reward_value(history: History, last_n: int) -> float | None:
    """Mean reward of the last `last_n` summaries that saw an episode, averaged over behaviours."""
    per_behavior = []
    for rows in history.values():
        rewards = [r for _, r in rows if r is not None]
        if rewards:
            per_behavior.append(float(np.mean(rewards[-last_n:])))
    return float(np.mean(per_behavior)) if per_behavior else None


def first_reached(rows: Iterable[tuple[int, float | None]], target: float) -> int | None:
    for step, reward in rows:
        if reward is not None and reward >= target:
            return step
    return None


def steps_to_reward_value(history: History, target: float, max_steps: int) -> float:
    """The step at which every behaviour reached `target`; else max_steps * (1 + relative shortfall)."""
    reached = [first_reached(rows, target) for rows in history.values()]
    if reached and all(step is not None for step in reached):
        return float(max(step for step in reached if step is not None))
    scale = max(abs(target), 1e-8)
    shortfall = 0.0
    for rows in history.values() or [[]]:
        rewards = [r for _, r in rows if r is not None]
        gap = 1.0 if not rewards else max(0.0, (target - max(rewards)) / scale)
        shortfall = max(shortfall, gap)
    return float(max_steps) * (1.0 + shortfall)


def objective_value(objective: ObjectiveSettings, history: History, max_steps: int) -> float | None:
    if objective.type == "steps_to_reward":
        assert objective.target is not None
        return steps_to_reward_value(history, float(objective.target), max_steps)
    return mean_reward_value(history, objective.last_n)


def read_history(
    stats_path: Path, up_to_step: int | Mapping[str, int] | None = None
) -> dict[str, list[tuple[int, float | None]]]:
    """Summaries already in a run's stats.jsonl (a resumed trial continues its curve), up to ``up_to_step``
    (each behaviour's own checkpoint step, or one for all); lines that are not summary rows (cut short by
    a kill, or garbage) are skipped."""
    history: dict[str, list[tuple[int, float | None]]] = {}
    if not stats_path.exists():
        return history
    for row in read_stats(stats_path):
        last = up_to_step if not isinstance(up_to_step, Mapping) else up_to_step.get(row["behavior"], 0)
        if last is not None and row["step"] > last:
            continue
        history.setdefault(row["behavior"], []).append((row["step"], row_score(row)))
    return history


class Reporter:
    """Run's on_summary hook for one trial: keeps the curve, reports the objective at each summary to the
    Optuna trial, and asks the run to stop when the pruner says so or the target is reached."""

    def __init__(
        self,
        objective: ObjectiveSettings,
        max_steps: int,
        trial: Any | None = None,
        history: Mapping[str, list[tuple[int, float | None]]] | None = None,
        reported: Iterable[int] = (),
    ) -> None:
        self.objective = objective
        self.max_steps = max_steps
        self.trial = trial
        self.history: dict[str, list[tuple[int, float | None]]] = {k: list(v) for k, v in (history or {}).items()}
        self.pruned = False
        self.reached = False
        self.last_step = max((s for rows in self.history.values() for s, _ in rows), default=0)
        self._reported = set(reported)  # steps the trial already holds (a retry starts with its predecessor's)

    def value(self) -> float | None:
        return objective_value(self.objective, self.history, self.max_steps)

    def __call__(self, behavior: str, step: int, mean_reward: float | None) -> bool:
        self.history.setdefault(behavior, []).append((step, mean_reward))
        self.last_step = max(self.last_step, step)
        if self.objective.type == "steps_to_reward":
            assert self.objective.target is not None
            self.reached = all(first_reached(rows, self.objective.target) is not None for rows in self.history.values())
        value = self.value()
        if self.trial is not None and value is not None and step not in self._reported:
            self.trial.report(value, step)
            self._reported.add(step)
            if not self.reached and self.trial.should_prune():
                self.pruned = True
                print(f"[INFO] Trial {self.trial.number} pruned at step {step} (value {value:.4g}).", flush=True)
                return True
        return self.reached
