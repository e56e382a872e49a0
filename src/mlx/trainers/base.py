"""What every trainer (RL algorithm) offers the run loop, and the pieces they share."""

from __future__ import annotations

import abc
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlx.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, EnvStat, StatAggregation, TerminalSteps
from mlx.errors import TrainingError

LOSS_ADVICE = "Try a lower trainer.hyperparameters.learning_rate or trainer.network_settings.normalize=true"


def check_finite(loss: float, what: str, advice: str, step: int | None = None) -> None:
    """Refuse a non-finite loss before any weight changes (see optimizer_step)."""
    if not math.isfinite(loss):
        at = "" if step is None else f" at step {step}"
        raise TrainingError(f"the {what} loss became {loss}{at}; the last checkpoint is kept. {advice}")


def optimizer_step(
    optimizer: torch.optim.Optimizer, loss: torch.Tensor, what: str, advice: str, step: int | None = None
) -> None:
    """One gradient step. A non-finite loss stops training with ``advice`` rather than corrupting the
    weights: the run then ends with the last good checkpoint on disk. ``what`` names the loss."""
    check_finite(loss.item(), what, advice, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@dataclass
class StatSummary:
    mean: float
    std: float
    count: int


class StatsRecorder:
    """Collects values under ML-Agents statistic names between two summaries."""

    def __init__(self) -> None:
        self._values: dict[str, list[np.ndarray]] = defaultdict(list)
        self._sums: set[str] = set()  # statistics an env reports with aggregation SUM
        self._watchers: dict[str, list[Callable[[np.ndarray], None]]] = defaultdict(list)

    def add(self, name: str, value: float | np.ndarray) -> None:
        values = np.atleast_1d(np.asarray(value, dtype=np.float64))
        self._values[name].append(values)
        for watcher in self._watchers.get(name, ()):
            watcher(values)

    def watch(self, name: str, callback: Callable[[np.ndarray], None]) -> None:
        """Call ``callback(values)`` whenever ``name`` is added (the curriculum watches episode rewards)."""
        self._watchers[name].append(callback)

    def add_env_stat(self, stat: EnvStat) -> None:
        """An env's statistic with ML-Agents' aggregation: AVERAGE and HISTOGRAM keep every value (mean and
        std reported), MOST_RECENT keeps only the last one, SUM reports the total of the period."""
        if not len(stat.values):
            return
        if stat.aggregation == StatAggregation.MOST_RECENT:
            self._values[stat.name] = [np.asarray(stat.values[-1:], dtype=np.float64)]
            return
        if stat.aggregation == StatAggregation.SUM:
            self._sums.add(stat.name)
        self.add(stat.name, stat.values)

    def summarise(self) -> dict[str, StatSummary]:
        """Mean, std and count of each statistic since the last call (the total for SUM statistics); then
        starts afresh."""
        out = {}
        for name, chunks in self._values.items():
            values = np.concatenate(chunks)
            if len(values):
                if name in self._sums:
                    out[name] = StatSummary(float(values.sum()), 0.0, len(values))
                else:
                    out[name] = StatSummary(float(values.mean()), float(values.std()), len(values))
        self._values.clear()
        return out


def concat_vector_obs(obs: list[np.ndarray]) -> np.ndarray:
    """The flat [n, obs_size] float32 input of the networks from one array per observation spec."""
    if len(obs) == 1:
        return np.asarray(obs[0], dtype=np.float32).reshape(len(obs[0]), -1)
    return np.concatenate([np.asarray(o, dtype=np.float32).reshape(len(o), -1) for o in obs], axis=1)


def checked_obs(obs: list[np.ndarray], behavior: str, step: int) -> np.ndarray:
    """concat_vector_obs, refusing NaN or infinite values: one would poison the normaliser and every
    checkpoint after it, so the run stops at once with the last good checkpoint on disk."""
    flat = concat_vector_obs(obs)
    if not np.isfinite(flat).all():
        bad = np.argwhere(~np.isfinite(flat))[0]
        raise TrainingError(
            f"the env sent a non-finite observation ({flat[tuple(bad)]}) for behaviour {behavior} at step {step} "
            f"(agent row {bad[0]}, column {bad[1]}); the last checkpoint is kept. Check the env or its parameters"
        )
    return flat


class RLTrainer(abc.ABC):
    """One behaviour's learner: turns env steps into actions and experience, and updates its module."""

    def __init__(self, behavior_name: str, spec: BehaviorSpec) -> None:
        self.behavior_name = behavior_name
        self.spec = spec
        self.step = 0  # agent steps taken by this behaviour (ML-Agents' step count)
        self.stats = StatsRecorder()
        self.module: torch.nn.Module

    @abc.abstractmethod
    def process(self, decision: DecisionSteps, terminal: TerminalSteps) -> ActionTuple:
        """Take in one env step's results and return the actions for the deciding agents."""

    @abc.abstractmethod
    def ready_to_update(self) -> bool: ...

    @abc.abstractmethod
    def update(self) -> None:
        """Optimise the module on the collected experience; statistics go to self.stats."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: weights, optimiser, normaliser, step, RNG."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def optimize(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One gradient step of this trainer's model (optimizer_step)."""
        optimizer_step(optimizer, loss, self._loss_name, LOSS_ADVICE, self.step)

    def check_loss(self, loss: float) -> None:
        """What optimize checks, for a step taken elsewhere (PPO's numpy update)."""
        check_finite(loss, self._loss_name, LOSS_ADVICE, self.step)

    @property
    def _loss_name(self) -> str:
        return type(self).__name__.removesuffix("Trainer")

    def load_weights(self, state: dict[str, Any]) -> None:
        """initialize_from: take another run's weights (and normaliser) but start counting anew."""
        self.module.load_state_dict(state["module"])

    def export(self, path: Path) -> Path:
        """Write the policy as ONNX in ML-Agents' layout (see mlx.formats.onnx) for Unity or onnxruntime."""
        from mlx.formats.onnx import export_policy

        return export_policy(self.spec, self.module.actor, self.module.normalizer, path)

    def save_extras(self, folder: Path) -> None:
        """Large state kept beside checkpoints rather than in them (SAC's replay buffer)."""

    def load_extras(self, folder: Path) -> None: ...

    def discard_experience(self) -> None:
        """Drop collected experience without learning from it: a behaviour past its max_steps keeps acting
        while other behaviours train (ML-Agents stops its updates), and its buffer must not grow."""

    def reset_trajectories(self) -> None:
        """Forget partial trajectories (called when the env is reset)."""
