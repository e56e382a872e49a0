"""Hyperparameter schedules as ML-Agents defines them: linear decay to a floor at max_steps, or constant."""

from __future__ import annotations

from mlx.config import ScheduleType

# Floors ML-Agents uses so a decayed value never reaches exactly zero.
LEARNING_RATE_FLOOR = 1e-10
EPSILON_FLOOR = 0.1
BETA_FLOOR = 1e-5


def decayed_value(schedule: ScheduleType, initial: float, floor: float, step: int, max_steps: int) -> float:
    """Value at `step`: constant, or linear from `initial` at step 0 to `floor` at max_steps (then held)."""
    if schedule == ScheduleType.constant:
        return initial
    floor = min(floor, initial)
    progress = min(max(step / max_steps, 0.0), 1.0)
    return (initial - floor) * (1.0 - progress) + floor
