"""Behavioral cloning: ML-Agents' BC module, a supervised loss that pulls the policy towards demonstrations.

``trainer.behavioral_cloning`` (seed 003 names): the demonstrations of ``demo_path`` (a .demo file or
folder, checked against the behaviour's spec) are loaded when the trainer is built; after each of the
trainer's updates the actor takes ``num_epoch`` passes of minibatches of ``batch_size`` demonstration
steps (at most ``samples_per_update`` steps per pass; 0: all of them) with its own Adam optimiser, at a
learning rate of ``strength`` times the trainer's, decayed linearly to 0 over ``steps`` agent steps (0:
constant). Its loss is reported as Losses/Pretraining Loss.

The loss, as ML-Agents': continuous actions by mean squared error between a reparameterised sample of the
policy and the expert's action; each discrete branch by cross-entropy of the expert's choice (masked
actions excluded, as when the expert acted), averaged over branches. A choice of ours: the sample is
compared in the env's action space (PPO's clamp(a, -3, 3) / 3, SAC's tanh), where the demonstrations'
actions live; ML-Agents compares the raw sample. With memory, the demonstrations are cut into sequences
of ``sequence_length`` steps within episodes, replayed from zero memory (as ML-Agents), padding masked.

Defaults that follow the trainer: ``batch_size`` its batch_size; ``num_epoch`` 3 for PPO (ML-Agents'
default); SAC updates after almost every env step, so there ``num_epoch`` defaults to 1 and
``samples_per_update: 0`` means one minibatch per update (as ML-Agents' SAC did before its BC module was
shared with PPO).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from mlx.config import BehavioralCloningSettings, ScheduleType
from mlx.envs.api import BehaviorSpec
from mlx.formats.demo import load_demonstration
from mlx.trainers.nn.networks import Actor
from mlx.trainers.optimize import optimizer_step
from mlx.trainers.schedules import LEARNING_RATE_FLOOR, decayed_value

DEFAULT_NUM_EPOCH = 3


def bc_loss(
    continuous: torch.Tensor,
    branch_log_probs: list[torch.Tensor],
    expert_continuous: torch.Tensor,
    expert_discrete: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Behavioral cloning terms of one minibatch (pure). continuous: [B, C] the policy's actions in the
    env's space; branch_log_probs: per branch [B, n]; expert actions [B, C] and [B, D]."""
    loss = continuous.new_zeros(())
    mse = continuous.new_zeros(())
    if continuous.shape[-1]:
        mse = nn.functional.mse_loss(continuous, expert_continuous)
        loss = loss + mse
    ce = continuous.new_zeros(())
    if branch_log_probs:
        ce = torch.stack(
            [-logp.gather(1, expert_discrete[:, b : b + 1].long()).mean() for b, logp in enumerate(branch_log_probs)]
        ).mean()
        loss = loss + ce
    return {"loss_bc": loss, "bc_loss": loss.detach(), "continuous_mse": mse.detach(), "cross_entropy": ce.detach()}


def sequence_index(episode: np.ndarray, length: int) -> np.ndarray:
    """[S, length] row indices of steps cut into sequences within episodes, -1 where padded.

    ``episode`` [N] is non-decreasing (steps of an episode are consecutive)."""
    n = len(episode)
    rows = np.arange(n)
    new_episode = np.concatenate([[True], episode[1:] != episode[:-1]]) if n else np.zeros(0, bool)
    episode_start = np.maximum.accumulate(np.where(new_episode, rows, 0))
    pos = rows - episode_start
    new_sequence = pos % length == 0
    seq = np.cumsum(new_sequence) - 1
    out = np.full((int(seq[-1]) + 1 if n else 0, length), -1, np.int64)
    out[seq, pos % length] = rows
    return out


class BehavioralCloning:
    """The BC module of one trainer: demonstrations, optimiser, schedule (see the module docstring)."""

    def __init__(
        self,
        behavior: str,
        spec: BehaviorSpec,
        settings: BehavioralCloningSettings,
        actor: Actor,
        preprocess: Callable[[torch.Tensor], torch.Tensor],
        learning_rate: float,
        batch_size: int,
        device: torch.device,
        default_num_epoch: int = DEFAULT_NUM_EPOCH,
        one_batch_per_update: bool = False,
        sequence_length: int = 1,
    ) -> None:
        assert settings.demo_path is not None
        demo = load_demonstration(
            settings.demo_path, spec, f"trainer.behavioral_cloning.demo_path ({behavior})", behavior or "the behaviour"
        )
        self.settings = settings
        self.actor = actor
        self.preprocess = preprocess
        self.device = device
        self.initial_lr = learning_rate * settings.strength
        self.optimizer = torch.optim.Adam(actor.parameters(), lr=self.initial_lr)
        self.num_epoch = settings.num_epoch or default_num_epoch
        self.sequence_length = sequence_length if actor.memory_size else 1
        length = self.sequence_length
        # Units of sampling: single steps, or whole sequences with memory.
        self.index = torch.as_tensor(
            sequence_index(demo.episode, length) if length > 1 else np.arange(len(demo))[:, None], device=device
        )
        units = len(self.index)
        self.batch = max(1, min(settings.batch_size or batch_size, units * length) // length)
        if settings.samples_per_update:
            self.batches = max(1, min(units // self.batch, settings.samples_per_update // (self.batch * length)))
        else:
            self.batches = 1 if one_batch_per_update else max(1, units // self.batch)
        t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        self.obs = t(demo.flat_obs())
        self.continuous = t(demo.continuous)
        self.discrete = t(demo.discrete.astype(np.int64))
        self.mask = t(demo.action_mask)
        self.demo_steps = len(demo)

    def learning_rate(self, step: int) -> float:
        steps = self.settings.steps
        schedule = ScheduleType.linear if steps > 0 else ScheduleType.constant
        return decayed_value(schedule, self.initial_lr, LEARNING_RATE_FLOOR, step, max(steps, 1))

    def _loss(self, rows: torch.Tensor) -> torch.Tensor:
        """The BC loss of a minibatch of units: rows [b, L] of demonstration indices (-1: padding)."""
        valid = rows >= 0
        idx = rows.clamp(min=0).reshape(-1)
        x = self.preprocess(self.obs[idx])
        mask = self.mask[idx] if self.mask.shape[-1] else None
        memories = None
        if self.sequence_length > 1:
            memories = x.new_zeros(rows.shape[0], self.actor.memory_size)
        mu, log_std, branch_logp = self.actor.distribution(x, mask, memories, self.sequence_length)
        keep = valid.reshape(-1)
        cont = x.new_zeros(int(keep.sum()), 0)
        if mu is not None:
            assert log_std is not None
            # network_settings.deterministic: the mean, as upstream's BC takes its actions from the acting sampler
            u = mu if self.actor.deterministic else mu + torch.randn_like(mu) * log_std.exp()
            cont = self.actor.to_env(u)[keep]
        terms = bc_loss(cont, [lp[keep] for lp in branch_logp], self.continuous[idx][keep], self.discrete[idx][keep])
        return terms["loss_bc"]

    def update(self, step: int) -> dict[str, float]:
        """One BC update at agent step ``step``; nothing once the learning rate has decayed away."""
        lr = self.learning_rate(step)
        if lr <= LEARNING_RATE_FLOOR:
            return {}
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        losses = []
        for _ in range(self.num_epoch):
            perm = torch.randperm(len(self.index), device=self.device)
            for i in range(self.batches):
                rows = self.index[perm[i * self.batch : (i + 1) * self.batch]]
                loss = self._loss(rows)
                optimizer_step(
                    self.optimizer, loss, "behavioral cloning", "Try a lower trainer.behavioral_cloning.strength"
                )
                losses.append(loss.detach())
        return {"Losses/Pretraining Loss": float(torch.stack(losses).mean())}

    def state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


def make_behavioral_cloning(
    behavior: str,
    spec: BehaviorSpec,
    trainer_settings: Any,
    actor: Actor,
    preprocess: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    off_policy: bool = False,
) -> BehavioralCloning | None:
    """The trainer's BC module, or None when behavioral_cloning is off (no demo_path)."""
    settings = trainer_settings.behavioral_cloning
    if settings is None or settings.demo_path is None:
        return None
    memory = trainer_settings.network_settings.memory
    h = trainer_settings.hyperparameters
    return BehavioralCloning(
        behavior,
        spec,
        settings,
        actor,
        preprocess,
        h.learning_rate,
        h.batch_size,
        device,
        default_num_epoch=1 if off_policy else DEFAULT_NUM_EPOCH,
        one_batch_per_update=off_policy,
        sequence_length=memory.sequence_length if memory is not None else 1,
    )
