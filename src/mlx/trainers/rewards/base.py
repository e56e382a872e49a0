"""What every reward signal offers the trainers, and the batch it reads.

A reward signal turns transitions into a reward stream with its own gamma, strength and value head
(ML-Agents' design). The env's own reward is one of them (``extrinsic``), built and used like the others.
Learning signals (curiosity, RND, GAIL) are small networks with their own optimiser: ``rewards()`` scores
transitions without gradients, ``update()`` takes one optimiser step on a minibatch. Their losses are
pure functions of a batch (see each module). ``rewards()`` is unscaled; ``scaled_rewards()`` (what the
trainers use) multiplies by ``strength``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from mlx.envs.api import BehaviorSpec
from mlx.trainers.optimize import optimizer_step


class SignalBatch(NamedTuple):
    """Transitions as tensors on the signal's device: rows are agent steps."""

    obs: torch.Tensor  # [B, obs_size] raw vector observations
    next_obs: torch.Tensor  # [B, obs_size] the observation that followed (the final one at an episode end)
    continuous: torch.Tensor  # [B, C] actions as the env received them, in [-1, 1]
    discrete: torch.Tensor  # [B, D] int
    env_reward: torch.Tensor  # [B]
    done: torch.Tensor | None = None  # [B] 1.0 where the step ended its episode (given to signals with uses_done)


class SignalRows(NamedTuple):
    """Transitions as numpy rows, as the trainers hold them (see SignalBatch)."""

    obs: np.ndarray
    next_obs: np.ndarray
    continuous: np.ndarray  # actions as the env received them, in [-1, 1]
    discrete: np.ndarray
    env_reward: np.ndarray
    done: np.ndarray | None


class SignalInputs:
    """What the signals score: the env reward [B] at hand, the other rows and their tensors (a
    `SignalBatch`) made once and only when a signal reads them (the extrinsic signal never does)."""

    def __init__(self, env_reward: np.ndarray, rows: Callable[[], SignalRows], device: torch.device) -> None:
        self.env_reward = env_reward
        self._rows = rows
        self._device = device
        self._batch: SignalBatch | None = None

    def batch(self) -> SignalBatch:
        if self._batch is None:
            rows = self._rows()
            t = lambda a: torch.as_tensor(a, device=self._device)  # noqa: E731
            done = None if rows.done is None else t(rows.done)
            self._batch = SignalBatch(
                t(rows.obs), t(rows.next_obs), t(rows.continuous), t(rows.discrete), t(rows.env_reward), done
            )
        return self._batch


class RewardSignal(nn.Module, abc.ABC):
    """One reward stream. Subclasses that learn set ``self.optimizer`` in their constructor."""

    uses_next_obs = False
    uses_done = False  # the trainer fills SignalBatch.done (GAIL judges (obs, action, done) with use_actions)

    def __init__(self, spec: BehaviorSpec, settings: Any, behavior: str = "") -> None:
        """``behavior`` names the behaviour in error messages."""
        super().__init__()
        self.spec = spec
        self.settings = settings
        self.strength = float(settings.strength)
        self.gamma = float(settings.gamma)
        self.optimizer: torch.optim.Optimizer | None = None

    @property
    def learns(self) -> bool:
        """The signal has a model of its own that the trainer updates (and checkpoints)."""
        return self.optimizer is not None

    @abc.abstractmethod
    def rewards(self, batch: SignalBatch) -> np.ndarray:
        """Unscaled rewards [B] (float32) for the transitions of ``batch``."""

    def scaled_rewards(self, inputs: SignalInputs) -> np.ndarray:
        """Rewards [B] times ``strength``: this signal's stream for the trainer."""
        return self.rewards(inputs.batch()) * self.strength

    def update(self, batch: SignalBatch) -> dict[str, float]:
        """One optimiser step on a minibatch; returns statistics by their ML-Agents names."""
        return {}

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"module": self.state_dict()}
        if self.optimizer is not None:
            out["optimizer"] = self.optimizer.state_dict()
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["module"])
        if self.optimizer is not None and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])

    def _step(self, loss: torch.Tensor) -> None:
        assert self.optimizer is not None
        optimizer_step(
            self.optimizer,
            loss,
            type(self).__name__,
            "Try a lower learning_rate for this reward signal, or network_settings.normalize=true",
        )


class ExtrinsicSignal(RewardSignal):
    """The environment's own reward."""

    def rewards(self, batch: SignalBatch) -> np.ndarray:
        return batch.env_reward.detach().cpu().numpy().astype(np.float32)

    def scaled_rewards(self, inputs: SignalInputs) -> np.ndarray:
        return inputs.env_reward * self.strength  # no tensors: the env's reward is already at hand


def one_hot_actions(discrete: torch.Tensor, branches: tuple[int, ...]) -> torch.Tensor:
    """[B, D] branch indices -> [B, sum(branches)] concatenated one-hots."""
    if not branches:
        return discrete.new_zeros((discrete.shape[0], 0), dtype=torch.float32)
    parts = [nn.functional.one_hot(discrete[:, i].long(), n).float() for i, n in enumerate(branches)]
    return torch.cat(parts, dim=1)
