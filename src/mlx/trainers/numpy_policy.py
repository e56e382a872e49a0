"""PPO's acting in numpy: the same actor and critic, read through numpy views of their CPU parameters.

Why: PPO acts once per env step on a few agents (12 on 3DBall). At that size each PyTorch op and module
call costs several microseconds of dispatch, about 40 of them per step, while the arithmetic is tiny; the
same forward pass in numpy takes about a third of the time, and acting is close to half of a 3DBall run.

The arrays are views that share memory with the module's parameters and normaliser buffers (CPU tensors),
so optimiser steps, normaliser updates and checkpoint loads, all in place, are seen without copying.
Used only where it applies: a CPU module, vector observations alone (no cameras, no goal signals), no
memory, and PPO's head (state-independent log std, no squashing); otherwise PPO acts with torch.
Sampling uses its own numpy generator (seeded from torch's seed, saved in checkpoints).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from mlx.trainers.networks import LOG_2PI, LOG_STD_MAX, LOG_STD_MIN, MASKED_LOGIT, Actor, Critic, InputNormalizer


def _linear(layer: nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    """(W.T, b) views of a dense layer: x @ W.T + b is its output."""
    return layer.weight.detach().numpy().T, layer.bias.detach().numpy()


def _layers(body: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W.T, b) views of a Linear/SiLU stack."""
    out = []
    for module in body:
        if isinstance(module, nn.Linear):
            out.append(_linear(module))
        elif not isinstance(module, nn.SiLU):
            raise TypeError(f"unexpected layer {type(module).__name__}")
    return out


def _forward(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    for w, b in layers:
        x = x @ w
        x += b
        x *= 0.5 * (1.0 + np.tanh(0.5 * x))  # SiLU: x * sigmoid(x), without exp's overflow
    return x


class NumpyPolicy:
    """Sampling actions, their log-probability and entropy, and the values, as PPOTrainer.process needs."""

    def __init__(self, actor: Actor, critic: Critic, normalizer: InputNormalizer | None, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.norm = None
        if normalizer is not None:
            stats = normalizer.stats
            self.norm = (stats.mean.numpy(), stats.var.numpy())
        self.actor_body = _layers(actor.body.body)
        self.critic_body = _layers(critic.body.body)
        self.value_head = _linear(critic.heads)
        self.mu = None if actor.mu is None else _linear(actor.mu)
        self.log_std = None if actor.mu is None else actor.log_std.detach().numpy()
        self.logits = None if actor.logits is None else _linear(actor.logits)
        self.branches = actor.branches
        self.bounds = np.cumsum((0, *self.branches))

    @staticmethod
    def applies(actor: Actor, critic: Critic, device: torch.device) -> bool:
        return (
            device.type == "cpu"
            and actor.body.layout.plain
            and actor.body.lstm is None
            and critic.body.layout.plain
            and not actor.conditional_sigma
            and not actor.tanh_squash
        )

    def act(
        self, obs: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Raw continuous actions [B, C], discrete [B, D] int32, log-probabilities [B], entropies [B] and
        values [B, K] for observation rows [B, obs] (mask: [B, sum(branches)] True where allowed)."""
        x = np.asarray(obs, dtype=np.float32)
        if self.norm is not None:
            mean, var = self.norm
            x = np.clip((x - mean) / np.sqrt(var + 1e-8), -5.0, 5.0)
        n = len(x)
        h = _forward(self.actor_body, x)
        log_prob = np.zeros(n, np.float32)
        entropy = np.zeros(n, np.float32)
        cont = np.zeros((n, 0), np.float32)
        if self.mu is not None:
            w, b = self.mu
            mu = h @ w + b
            log_std = np.clip(self.log_std, LOG_STD_MIN, LOG_STD_MAX)
            eps = self.rng.standard_normal(mu.shape, dtype=np.float32)
            cont = mu + eps * np.exp(log_std)
            log_prob += (-0.5 * eps * eps - log_std - 0.5 * LOG_2PI).sum(-1)
            entropy += (log_std + 0.5 * (LOG_2PI + 1.0)).sum()
        disc = np.zeros((n, len(self.branches)), np.int32)
        if self.logits is not None:
            w, b = self.logits
            logits = h @ w + b
            if mask is not None:
                logits = np.where(mask, logits, np.float32(MASKED_LOGIT))
            # Inverse CDF: the first action whose cumulative probability exceeds u * total. A masked action
            # (probability 0) never does; u < 1 in float64 keeps the threshold below the total.
            u = self.rng.random((n, len(self.branches)))
            rows = np.arange(n)
            for i, (lo, hi) in enumerate(zip(self.bounds[:-1], self.bounds[1:], strict=True)):
                z = logits[:, lo:hi]
                z = z - z.max(1, keepdims=True)
                logp = z - np.log(np.exp(z).sum(1, keepdims=True))
                p = np.exp(logp)
                cdf = np.cumsum(p, 1)
                choice = (cdf <= u[:, i : i + 1] * cdf[:, -1:]).sum(1)
                disc[:, i] = choice
                log_prob += logp[rows, choice]
                entropy -= (p * logp).sum(1)
        w, b = self.value_head
        values = _forward(self.critic_body, x) @ w + b
        return cont, disc, log_prob, entropy, values

    def state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def load_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state
