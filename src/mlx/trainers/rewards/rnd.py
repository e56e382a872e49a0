"""RND: random network distillation (Burda et al. 2018), as ML-Agents' rnd reward signal.

A predictor network learns to reproduce the output of a fixed, randomly initialised target network on
the observations the agent visits. Its error, |f_hat(s) - f(s)|^2, stays high on rarely seen states, so
it rewards novelty; unlike curiosity it needs no action or next observation, which makes it robust to
stochastic dynamics. Both networks are MLPs of the signal's network_settings (output size hidden_units);
observations may be normalised (network_settings.normalize) with the predictor's running statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mlx.envs.api import BehaviorSpec
from mlx.trainers.nn.encoders import StateEncoder
from mlx.trainers.nn.networks import InputNormalizer
from mlx.trainers.rewards.base import RewardSignal, SignalBatch


def rnd_loss(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean squared distillation error of one minibatch (pure); the target gets no gradient."""
    loss = (prediction - target.detach()).square().sum(-1).mean()
    return {"loss_rnd": loss, "rnd_loss": loss.detach()}


class RNDSignal(RewardSignal):
    def __init__(self, spec: BehaviorSpec, settings: Any, behavior: str = "") -> None:
        super().__init__(spec, settings, behavior)
        ns = settings.network_settings
        self.normalizer = InputNormalizer(spec, ns) if ns.normalize else None
        self.target = StateEncoder(spec, ns, use_memory=False).requires_grad_(False)
        self.predictor = StateEncoder(spec, ns, use_memory=False)
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=settings.learning_rate)

    def _pair(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.normalizer(obs) if self.normalizer is not None else obs
        return self.predictor(x)[0], self.target(x)[0]

    @torch.no_grad()
    def rewards(self, batch: SignalBatch) -> np.ndarray:
        prediction, target = self._pair(batch.obs)
        return (prediction - target).square().sum(-1).cpu().numpy().astype(np.float32)

    def update(self, batch: SignalBatch) -> dict[str, float]:
        if self.normalizer is not None:
            self.normalizer.update(batch.obs)
        terms = rnd_loss(*self._pair(batch.obs))
        self._step(terms["loss_rnd"])
        return {"Losses/RND Loss": float(terms["rnd_loss"])}
