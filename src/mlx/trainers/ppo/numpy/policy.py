"""PPO's acting in numpy: the same actor and critic, read through numpy views of their CPU parameters.

Why: PPO acts once per env step on a few agents (12 on 3DBall). At that size each PyTorch op and module
call costs several microseconds of dispatch, about 40 of them per step, while the arithmetic is tiny; the
same forward pass in numpy takes about a third of the time, and acting is close to half of a 3DBall run.

It reads the arrays NumpyUpdate maps the module to: views that share memory with the module's parameters
(in their flat buffer) and normaliser buffers, so optimiser steps, normaliser updates and checkpoint
loads, all in place, are seen without copying.
Used only where it applies: a CPU module, vector observations alone (no cameras, no goal signals), no
memory, and PPO's head (state-independent log std, no squashing); otherwise PPO acts with torch.
Sampling uses its own numpy generator (seeded from torch's seed, saved in checkpoints).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mlx.trainers.nn.networks import LOG_2PI, LOG_STD_MAX, LOG_STD_MIN, MASKED_LOGIT, Actor, Critic
from mlx.trainers.ppo.numpy.update import Dense, NumpyUpdate, normalised


def _forward(layers: list[Dense], x: np.ndarray) -> np.ndarray:
    for layer in layers:
        x = x @ layer.w.T
        x += layer.b
        x *= 0.5 * (1.0 + np.tanh(0.5 * x))  # SiLU: x * sigmoid(x), without exp's overflow
    return x


class NumpyPolicy:
    """Sampling actions, their log-probability and entropy, and the values, as PPOTrainer.process needs."""

    def __init__(self, net: NumpyUpdate, seed: int) -> None:
        """``net``: the update's views of the module's parameters and normaliser (one mapping of the
        module to numpy, shared by acting and updating)."""
        self.rng = np.random.default_rng(seed)
        self.net = net
        self.num_branches = len(net.bounds) - 1

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
        net = self.net
        x = normalised(np.asarray(obs, dtype=np.float32), net.norm)
        n = len(x)
        h = _forward(net.actor_body, x)
        log_prob = np.zeros(n, np.float32)
        entropy = np.zeros(n, np.float32)
        cont = np.zeros((n, 0), np.float32)
        if net.mu is not None:
            assert net.log_std is not None
            mu = h @ net.mu.w.T + net.mu.b
            log_std = np.clip(net.log_std[0], LOG_STD_MIN, LOG_STD_MAX)
            eps = self.rng.standard_normal(mu.shape, dtype=np.float32)
            cont = mu + eps * np.exp(log_std)
            log_prob += (-0.5 * eps * eps - log_std - 0.5 * LOG_2PI).sum(-1)
            entropy += (log_std + 0.5 * (LOG_2PI + 1.0)).sum()
        disc = np.zeros((n, self.num_branches), np.int32)
        if net.logits is not None:
            logits = h @ net.logits.w.T + net.logits.b
            if mask is not None:
                logits = np.where(mask, logits, np.float32(MASKED_LOGIT))
            # Inverse CDF: the first action whose cumulative probability exceeds u * total. A masked action
            # (probability 0) never does; u < 1 in float64 keeps the threshold below the total.
            u = self.rng.random((n, self.num_branches))
            rows = np.arange(n)
            for i, (lo, hi) in enumerate(zip(net.bounds[:-1], net.bounds[1:], strict=True)):
                z = logits[:, lo:hi]
                z = z - z.max(1, keepdims=True)
                logp = z - np.log(np.exp(z).sum(1, keepdims=True))
                p = np.exp(logp)
                cdf = np.cumsum(p, 1)
                choice = (cdf <= u[:, i : i + 1] * cdf[:, -1:]).sum(1)
                disc[:, i] = choice
                log_prob += logp[rows, choice]
                entropy -= (p * logp).sum(1)
        values = _forward(net.critic_body, x) @ net.value_head.w.T + net.value_head.b
        return cont, disc, log_prob, entropy, values

    def state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def load_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state
