"""Losses as pure functions of a batch: they return named terms; modules sum the `loss_*` ones and log the rest."""

from __future__ import annotations

from typing import NamedTuple

import torch


class PPOBatch(NamedTuple):
    """One minibatch of on-policy experience (tensors on the module's device)."""

    obs: torch.Tensor  # [B, obs_size] raw (un-normalised) vector observations
    continuous: torch.Tensor  # [B, C] raw Gaussian samples taken
    discrete: torch.Tensor  # [B, D]
    action_mask: torch.Tensor  # [B, sum(branches)] bool
    old_log_prob: torch.Tensor  # [B]
    old_values: torch.Tensor  # [B, K] one column per reward stream
    returns: torch.Tensor  # [B, K]
    advantages: torch.Tensor  # [B] mean over streams, normalised over the buffer


def ppo_loss(
    log_prob: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    batch: PPOBatch,
    epsilon: float,
    beta: float,
) -> dict[str, torch.Tensor]:
    """Clipped surrogate + clipped value loss + entropy bonus (ML-Agents' PPO), with diagnostics.

    log_prob, entropy: [B] under the current policy; values: [B, K] current value estimates.
    """
    log_ratio = log_prob - batch.old_log_prob
    ratio = log_ratio.exp()
    surrogate = torch.min(
        ratio * batch.advantages, ratio.clamp(1.0 - epsilon, 1.0 + epsilon) * batch.advantages
    )
    policy_loss = -surrogate.mean()
    clipped_values = batch.old_values + (values - batch.old_values).clamp(-epsilon, epsilon)
    value_loss = torch.max(
        (batch.returns - values).square(), (batch.returns - clipped_values).square()
    ).mean(0).mean()
    mean_entropy = entropy.mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > epsilon).float().mean()
    return {
        "loss_policy": policy_loss,
        "loss_value": 0.5 * value_loss,
        "loss_entropy": -beta * mean_entropy,
        "policy_loss": policy_loss.detach(),
        "value_loss": value_loss.detach(),
        "entropy": mean_entropy.detach(),
        "approx_kl": approx_kl,
        "clip_fraction": clip_fraction,
    }


def total_loss(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The optimised objective: the sum of every `loss_*` term."""
    parts = [v for k, v in terms.items() if k.startswith("loss_")]
    return torch.stack(parts).sum()
