"""What every trainer (RL algorithm) offers the run loop, and the pieces they share."""

from __future__ import annotations

import abc
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlx.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, EnvStat, StatAggregation, TerminalSteps
from mlx.errors import TrainingError
from mlx.formats.onnx import export_policy
from mlx.stat_names import GROUP_REWARD, REWARD
from mlx.trainers.agents import Agents, EpisodeStats
from mlx.trainers.bc import make_behavioral_cloning
from mlx.trainers.groups import GroupStep, group_step
from mlx.trainers.optimize import LOSS_ADVICE, check_finite, optimizer_step
from mlx.trainers.rewards.base import SignalBatch, SignalInputs
from mlx.trainers.rewards.registry import make_reward_signal


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


def action_mask(decision: DecisionSteps, spec: BehaviorSpec) -> np.ndarray | None:
    """The deciding agents' action masks as one [n, sum(branches)] bool array (True where allowed), or None
    when every action is allowed."""
    if decision.action_mask is None or not spec.action_spec.discrete_size:
        return None
    return np.concatenate(decision.action_mask, axis=1).astype(bool)


class RLTrainer(abc.ABC):
    """One behaviour's learner: turns env steps into actions and experience, and updates its module.

    What every trainer shares lives here: the reward signals (the env's own reward included), the
    per-agent layer (`mlx.trainers.agents`), behavioral cloning and the checkpoint entries they own.
    Building follows one order (the RNG draws the module's weights first, then the signals', as it always
    did): ``build_module``, its optimiser, the shared pieces, then ``_build_experience`` (the on- and
    off-policy bases' buffers; a trainer adds its own there).
    """

    off_policy = False  # learns from a replay buffer (behavioral cloning then takes one minibatch per update)
    reset_requested = False  # asks the run loop for a full env reset after this step (self-play's team change)

    def __init__(
        self,
        behavior_name: str,
        spec: BehaviorSpec,
        settings: Any,
        reward_signals: dict[str, Any],
        device: torch.device,
        seed: int = 0,
    ) -> None:
        self.behavior_name = behavior_name
        self.spec = spec
        self.settings = settings
        self.hp = settings.hyperparameters
        self.device = device
        self.seed = seed  # the run's seed (SAC seeds its sampling with it; PPO draws from torch's)
        self.step = 0  # agent steps taken by this behaviour (ML-Agents' step count)
        self.stats = StatsRecorder()
        self.streams = list(reward_signals)  # one value head per stream, in config order
        self.gammas = [sig.gamma for sig in reward_signals.values()]
        memory = settings.network_settings.memory
        self.sequence_length = memory.sequence_length if memory is not None else 1
        self.module = self.build_module()
        self.optimizer: torch.optim.Optimizer = self.module.configure_optimizers()
        self.memory_size: int = self.module.memory_size  # actor's then critic's memory floats per agent
        self.reward_signals = {
            name: make_reward_signal(name, spec, sig, device, behavior_name) for name, sig in reward_signals.items()
        }
        self.intrinsic = {name: s for name, s in self.reward_signals.items() if s.learns}  # updated by the trainer
        self.agents = Agents(self.memory_size, self.streams)
        self._grouped = False  # the env has put this behaviour's agents in groups (a nonzero group id seen)
        # behavioral_cloning: a supervised pass over the demonstrations after each update (mlx.trainers.bc)
        self.bc = make_behavioral_cloning(
            behavior_name, spec, settings, self.module.actor, self.module.preprocess, device, off_policy=self.off_policy
        )
        self._build_experience()

    @abc.abstractmethod
    def build_module(self) -> Any:
        """The module (Lightning's module contract: ``mlx.trainers.lightning_module``): actor (``.actor``),
        critic(s), ``normalizer``, ``preprocess``, ``memory_size`` and ``configure_optimizers``."""

    @abc.abstractmethod
    def _build_experience(self) -> None:
        """Where experience collects (assembler, buffer): after the module and the shared pieces."""

    @abc.abstractmethod
    def process(self, decision: DecisionSteps, terminal: TerminalSteps) -> ActionTuple:
        """Take in one env step's results and return the actions for the deciding agents."""

    @abc.abstractmethod
    def ready_to_update(self) -> bool: ...

    @abc.abstractmethod
    def update(self) -> None:
        """Optimise the module on the collected experience; statistics go to self.stats."""

    # ---- the per-agent layer ------------------------------------------------------------------
    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def _end_episodes(self, episodes: EpisodeStats, terminal: TerminalSteps) -> None:
        """Report the episodes that ended; their agents' next episodes start with no memory."""
        if len(episodes.returns):
            self.stats.add(REWARD, episodes.returns)
            self.stats.add("Environment/Episode Length", episodes.lengths)
        if self.memory_size and len(terminal):
            self.agents.forget_memories(terminal.agent_id)

    def _groups(self, decision: DecisionSteps, terminal: TerminalSteps, always: bool = False) -> GroupStep | None:
        """Group episodes (``mlx.trainers.groups.group_step``) of a behaviour whose agents are in groups, with
        Environment/Group Cumulative Reward reported whatever the trainer; None (nothing done) before the env
        has sent a nonzero group id, unless ``always``."""
        if not (self._grouped or always):
            self._grouped = any(s.group_id is not None and np.any(s.group_id) for s in (decision, terminal))
            if not self._grouped:
                return None
        step = group_step(self.agents, decision, terminal)
        if len(step.returns):
            self.stats.add(GROUP_REWARD, step.returns)
        return step

    def _signal_rewards(self, inputs: SignalInputs) -> list[np.ndarray]:
        """Each stream's rewards [B] (times its strength), in stream order."""
        return [signal.scaled_rewards(inputs) for signal in self.reward_signals.values()]

    def _add_signal_returns(self, slots: np.ndarray, amounts: list[np.ndarray], ended: np.ndarray) -> None:
        """Add each stream's rewards ``amounts`` [B] of agents ``slots`` to their episode returns; the returns
        of the agents ``ended`` (their episodes ended with these rewards) go to Policy/<Signal> Reward."""
        for name, amount in zip(self.streams, amounts, strict=True):
            returns = self.agents.add_signal_rewards(name, slots, amount, ended)
            if returns is not None:
                self.stats.add(f"Policy/{name.capitalize()} Reward", returns)

    def _step_signals(self, batch: SignalBatch, sums: dict[str, float]) -> None:
        """One optimiser step of every learning signal on ``batch``; statistics summed into ``sums``."""
        for signal in self.intrinsic.values():
            for key, value in signal.update(batch).items():
                sums[key] = sums.get(key, 0.0) + value

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: weights, optimiser, normaliser, step, RNG."""
        return {
            "module": self.module.state_dict(),
            "optimizer": self._optimizer_state(),
            "step": self.step,
            "torch_rng": torch.get_rng_state(),
            "reward_signals": {name: signal.state() for name, signal in self.intrinsic.items()},
            "behavioral_cloning": self.bc.state() if self.bc is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"its step is {step!r:.40}, not a step count")
        self.step = step
        torch.set_rng_state(state["torch_rng"])
        for name, signal in self.intrinsic.items():
            signal.load_state(state["reward_signals"][name])
        if self.bc is not None and state.get("behavioral_cloning") is not None:
            self.bc.load_state(state["behavioral_cloning"])

    def _optimizer_state(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

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
        return export_policy(self.spec, self.module.actor, self.module.normalizer, path)

    def status(self) -> dict[str, Any]:
        """What training_status.json records for this behaviour beside its checkpoints (self-play: its ELO)."""
        return {}

    def save_extras(self, folder: Path) -> None:
        """Large state kept beside checkpoints rather than in them (SAC's replay buffer)."""

    def load_extras(self, folder: Path) -> None: ...

    def discard_experience(self) -> None:
        """Drop collected experience without learning from it: a behaviour past its max_steps keeps acting
        while other behaviours train (ML-Agents stops its updates), and its buffer must not grow."""

    def reset_trajectories(self) -> None:
        """Forget partial trajectories and memories (called when the env is reset)."""
        self.agents.reset()
