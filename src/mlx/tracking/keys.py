"""The MLflow metric names of a run's summaries, and the checkpoint step each behaviour resumes from.

A run with one behaviour logs each statistic under its ML-Agents name ("Environment/Cumulative Reward",
"Policy/Entropy", ...: the TensorBoard tags of mlagents-learn, what users look for). A run with several
(WallJump's SmallWallJump and BigWallJump, StrikersVsGoalie's Striker and Goalie) logs
"<Behavior>/<name>" ("BigWallJump/Environment/Cumulative Reward"): MLflow keeps one curve per key, and the
behaviours' points at their own steps in one curve would be a zigzag of two curves. TensorBoard needs no
prefix (each behaviour has its own folder of event files). The choice is the run's, made once from its
behaviours and kept in run_logs/mlflow_sync.json, so a resume or ``python -m mlx.tracking sync`` logs the
keys the run started with.

Behaviours step at their own rates (StrikersVsGoalie's two strikers make twice the goalie's steps), so
each resumes from its own checkpoint: ``ResumeSteps`` is that step per behaviour (a behaviour without a
checkpoint: 0), or one step for all (a run with one behaviour).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mlx.tracking.base import ROW_FIELDS

PROBE = "Environment/Steps Per Second"  # every summary has it: the metric a replay checks MLflow for
STD = "Environment/Cumulative Reward Std"

ResumeSteps = int | Mapping[str, int]


def resume_step_of(steps: ResumeSteps, behavior: str) -> int:
    """The step ``behavior`` resumes from: its own checkpoint's (0 without one)."""
    return steps if isinstance(steps, int) else int(steps.get(behavior, 0))


def row_metrics(row: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The MLflow metrics of one stats.jsonl row: its statistics, the reward's std and the speed, each
    name after ``prefix`` ("<Behavior>/" in a run with several behaviours)."""
    metrics = {
        prefix + k: float(v)
        for k, v in row.items()
        if k not in ROW_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    if row.get("std_reward") is not None:
        metrics[prefix + STD] = float(row["std_reward"])
    if row.get("steps_per_sec") is not None:
        metrics[prefix + PROBE] = float(row["steps_per_sec"])
    return metrics


class MetricNames:
    """The run's naming: plain ML-Agents names for one behaviour, "<Behavior>/<name>" for several."""

    def __init__(self, behaviors: Iterable[str]) -> None:
        self.behaviors = list(dict.fromkeys(str(b) for b in behaviors))
        self.prefixed = len(self.behaviors) > 1

    def prefix(self, behavior: str) -> str:
        return f"{behavior}/" if self.prefixed else ""

    def row(self, row: Mapping[str, Any]) -> dict[str, float]:
        return row_metrics(row, self.prefix(str(row["behavior"])))

    def probe(self, behavior: str) -> str:
        return self.prefix(behavior) + PROBE

    def owner(self, key: str) -> str | None:
        """The behaviour whose statistic ``key`` is, in a prefixed run (the longest name that prefixes it);
        None for a key of no behaviour (an evaluation's, attached later) and for every key of a plain run."""
        if not self.prefixed:
            return None
        found = [b for b in self.behaviors if key.startswith(b + "/")]
        return max(found, key=len) if found else None

    def cut(self, steps: ResumeSteps, key: str) -> int | None:
        """The step after which a resume deletes the points of ``key`` (None: keep them all). A plain run
        rewinds every key to its checkpoint; a prefixed run each behaviour's keys to that behaviour's own
        checkpoint, and keeps the keys of no behaviour."""
        if isinstance(steps, int):
            return steps
        if not self.prefixed:
            return min(steps.values(), default=None)
        owner = self.owner(key)
        return None if owner is None else resume_step_of(steps, owner)
