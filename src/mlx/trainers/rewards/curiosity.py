"""Curiosity: ML-Agents' intrinsic curiosity module (ICM, Pathak et al. 2017).

An encoder phi maps observations to features; an inverse model predicts the action taken from
(phi(s), phi(s')) and a forward model predicts phi(s') from (phi(s), action). The reward is the forward
model's error, 0.5 * |phi_hat(s') - phi(s')|^2, so states whose consequences the agent cannot yet
predict pay; the inverse loss shapes phi to keep only what the agent's actions influence. As in
ML-Agents: the loss is 10 * (0.2 * forward + 0.8 * inverse), both models have one 256-unit hidden layer,
and the reward is capped so that strength * reward <= 1. As in ML-Agents, the forward loss also trains
the encoding of s' (its target is not detached): the inverse loss keeps the features informative, and the
forward loss keeps them predictable, so the reward decays where the agent has been. With a detached
target the forward error stayed about 100 times larger on Pyramids, the curiosity reward outweighed the
env's +2 and PPO never learned the task (seed 1, 1.8M steps at mean reward -1.0; 1.75 at 1.26M without).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from mlx.envs.api import BehaviorSpec
from mlx.trainers.nn.encoders import StateEncoder
from mlx.trainers.nn.networks import InputNormalizer
from mlx.trainers.rewards.base import RewardSignal, SignalBatch, one_hot_actions

MODEL_HIDDEN = 256
FORWARD_WEIGHT, INVERSE_WEIGHT, LOSS_SCALE = 0.2, 0.8, 10.0


class CuriosityOutputs(NamedTuple):
    phi_next: torch.Tensor  # [B, H] features of s'
    predicted_next: torch.Tensor  # [B, H] forward model's prediction of phi(s')
    predicted_continuous: torch.Tensor  # [B, C]
    predicted_logits: list[torch.Tensor]  # one [B, n] per branch


def curiosity_loss(out: CuriosityOutputs, batch: SignalBatch) -> dict[str, torch.Tensor]:
    """ICM loss terms of one minibatch (pure)."""
    forward = 0.5 * (out.predicted_next - out.phi_next).square().sum(-1).mean()
    inverse = out.predicted_continuous.new_zeros(())
    if out.predicted_continuous.shape[-1]:
        inverse = inverse + (out.predicted_continuous - batch.continuous).square().sum(-1).mean()
    for b, logits in enumerate(out.predicted_logits):
        inverse = inverse + nn.functional.cross_entropy(logits, batch.discrete[:, b].long())
    return {
        "loss_forward": LOSS_SCALE * FORWARD_WEIGHT * forward,
        "loss_inverse": LOSS_SCALE * INVERSE_WEIGHT * inverse,
        "forward_loss": forward.detach(),
        "inverse_loss": inverse.detach(),
    }


class CuriositySignal(RewardSignal):
    uses_next_obs = True

    def __init__(self, spec: BehaviorSpec, settings: Any, behavior: str = "") -> None:
        super().__init__(spec, settings, behavior)
        ns = settings.network_settings
        a = spec.action_spec
        self.branches = tuple(a.discrete_branches)
        act_size = a.continuous_size + sum(self.branches)
        self.normalizer = InputNormalizer(spec, ns) if ns.normalize else None
        self.encoder = StateEncoder(spec, ns, use_memory=False)
        hidden = self.encoder.output_size
        self.inverse = nn.Sequential(
            nn.Linear(2 * hidden, MODEL_HIDDEN),
            nn.SiLU(),
            nn.Linear(MODEL_HIDDEN, a.continuous_size + sum(self.branches)),
        )
        self.forward_model = nn.Sequential(
            nn.Linear(hidden + act_size, MODEL_HIDDEN), nn.SiLU(), nn.Linear(MODEL_HIDDEN, hidden)
        )
        self.continuous_size = a.continuous_size
        self.optimizer = torch.optim.Adam(self.parameters(), lr=settings.learning_rate)

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.normalizer(obs) if self.normalizer is not None else obs)[0]

    def outputs(self, batch: SignalBatch) -> CuriosityOutputs:
        phi, phi_next = self._features(batch.obs), self._features(batch.next_obs)
        actions = torch.cat([batch.continuous, one_hot_actions(batch.discrete, self.branches)], dim=1)
        predicted_next = self.forward_model(torch.cat([phi, actions], dim=1))
        inv = self.inverse(torch.cat([phi, phi_next], dim=1))
        logits = list(torch.split(inv[:, self.continuous_size :], list(self.branches), dim=1)) if self.branches else []
        return CuriosityOutputs(phi_next, predicted_next, inv[:, : self.continuous_size], logits)

    @torch.no_grad()
    def rewards(self, batch: SignalBatch) -> np.ndarray:
        out = self.outputs(batch)
        reward = 0.5 * (out.predicted_next - out.phi_next).square().sum(-1)
        return np.minimum(reward.cpu().numpy(), 1.0 / self.settings.strength).astype(np.float32)

    def update(self, batch: SignalBatch) -> dict[str, float]:
        if self.normalizer is not None:
            self.normalizer.update(batch.obs)
        terms = curiosity_loss(self.outputs(batch), batch)
        self._step(terms["loss_forward"] + terms["loss_inverse"])
        return {
            "Losses/Curiosity Forward Loss": float(terms["forward_loss"]),
            "Losses/Curiosity Inverse Loss": float(terms["inverse_loss"]),
        }
