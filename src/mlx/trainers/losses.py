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
    old_log_prob: torch.Tensor  # [B, N] per action component when acting (C dims, then D branches), or [B] joint
    old_values: torch.Tensor  # [B, K] one column per reward stream
    returns: torch.Tensor  # [B, K]
    advantages: torch.Tensor  # [B] mean over streams, normalised over the buffer
    # With memory the fields above are [S, L, ...] sequences, plus (both None without memory):
    memories: torch.Tensor | None = None  # [S, memory_size] actor + critic LSTM state at each sequence start
    valid: torch.Tensor | None = None  # [S, L] True on real (not padding) steps


def ppo_loss(
    log_prob: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    batch: PPOBatch,
    epsilon: float,
    beta: float,
) -> dict[str, torch.Tensor]:
    """Clipped surrogate + clipped value loss + entropy bonus (ML-Agents' PPO), with diagnostics.

    log_prob: [B, N] per action component (each continuous dimension, each discrete branch) under the current
    policy, matching ``batch.old_log_prob``: the ratio is taken and clipped per component, the row's advantage
    broadcast over its components and the surrogate averaged over every element, as upstream; or [B] joint
    (one ratio per row). entropy: [B]; values: [B, K] current value estimates.
    """
    log_ratio = log_prob - batch.old_log_prob
    advantages = batch.advantages if log_ratio.dim() == 1 else batch.advantages[:, None]
    ratio = log_ratio.exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1.0 - epsilon, 1.0 + epsilon) * advantages)
    policy_loss = -surrogate.mean()
    clipped_values = batch.old_values + (values - batch.old_values).clamp(-epsilon, epsilon)
    value_loss = torch.max((batch.returns - values).square(), (batch.returns - clipped_values).square()).mean(0).mean()
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


class SACBatch(NamedTuple):
    """One minibatch sampled from the replay buffer (tensors on the module's device)."""

    obs: torch.Tensor  # [B, obs_size]
    continuous: torch.Tensor  # [B, C] squashed actions taken, in [-1, 1]
    discrete: torch.Tensor  # [B, D]
    rewards: torch.Tensor  # [B, K] per reward stream, strength applied
    mask: torch.Tensor  # [B, sum(branches)] action mask at obs (the policy's expectations respect it)
    next_obs: torch.Tensor  # [B, obs_size]
    terminated: torch.Tensor  # [B] 1.0 where the episode really ended (no bootstrap)
    # With memory the fields above are [S, L, ...] sequences, plus (both None without memory):
    memories: torch.Tensor | None = None  # [S, 2 * memory_size] actor + critic LSTM state at each start
    valid: torch.Tensor | None = None  # [S, L] True on real (not padding) steps


class SACOutputs(NamedTuple):
    """Network outputs the SAC loss needs; the module computes them, the loss stays a pure function."""

    q_taken: torch.Tensor  # [2, B, K, Q] twin Q of the buffer actions (Q = sum(branches) or 1)
    q_policy: torch.Tensor  # [2, B, K, Q] twin Q (detached weights) of the policy's fresh continuous sample
    values: torch.Tensor  # [B, K] V(s)
    next_values: torch.Tensor  # [B, K] target V(s'), no gradient
    cont_log_prob: torch.Tensor  # [B] log pi of the fresh continuous sample (zeros if no continuous actions)
    branch_log_probs: list[torch.Tensor]  # per branch [B, n_b] log pi over all actions
    log_alpha_cont: torch.Tensor | None  # [1]
    log_alpha_disc: torch.Tensor | None  # [D]


def _by_branch(q: torch.Tensor, branches: tuple[int, ...]) -> list[torch.Tensor]:
    return list(torch.split(q, branches, dim=-1))


def sac_loss(
    out: SACOutputs,
    batch: SACBatch,
    gammas: torch.Tensor,
    branches: tuple[int, ...],
    target_entropy_cont: float,
    target_entropy_disc: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """ML-Agents' SAC: twin Q regressed on r + gamma V_target(s'); V on min Q - entropy term; the policy
    on entropy term - Q; entropy coefficients tuned toward the target entropies. Discrete branches use
    exact expectations over actions, with Q(s, a) = mean over branches of Q_b(s, a_b)."""
    probs = [lp.exp() for lp in out.branch_log_probs]
    alpha_c = out.log_alpha_cont.exp().detach() if out.log_alpha_cont is not None else None
    alpha_d = out.log_alpha_disc.exp().detach() if out.log_alpha_disc is not None else None

    def taken(q: torch.Tensor) -> torch.Tensor:  # [B, K, Q] -> [B, K]
        if not branches:
            return q[..., 0]
        parts = [
            b.gather(-1, batch.discrete[:, i].long()[:, None, None].expand(-1, q.shape[1], 1))
            for i, b in enumerate(_by_branch(q, branches))
        ]
        return torch.cat(parts, -1).mean(-1)

    def expected(q: torch.Tensor, detach_probs: bool = False) -> torch.Tensor:  # [.., B, K, Q] -> [.., B, K]
        if not branches:
            return q[..., 0]
        ps = [p.detach() if detach_probs else p for p in probs]
        return torch.stack(
            [(b * p[:, None, :]).sum(-1) for b, p in zip(_by_branch(q, branches), ps, strict=True)], -1
        ).mean(-1)

    # Twin Q regression on the one-step backup (termination stops the bootstrap, interruption does not).
    with torch.no_grad():
        backup = batch.rewards + gammas * (1.0 - batch.terminated)[:, None] * out.next_values
    q1_loss = 0.5 * (backup - taken(out.q_taken[0])).square().mean()
    q2_loss = 0.5 * (backup - taken(out.q_taken[1])).square().mean()

    # The policy's entropy term at s: alpha * log pi, exact expectation for the discrete branches.
    batch_size = batch.obs.shape[0]
    ent_term = torch.zeros(batch_size, device=batch.obs.device)
    if alpha_c is not None:
        ent_term = ent_term + alpha_c * out.cont_log_prob
    branch_neg_entropy = [(p * lp).sum(-1) for p, lp in zip(probs, out.branch_log_probs, strict=True)]
    if alpha_d is not None:
        ent_term = ent_term + sum(a * h for a, h in zip(alpha_d, branch_neg_entropy, strict=True))

    q_min = torch.min(out.q_policy[0], out.q_policy[1])  # [B, K, Q]
    v_backup = (expected(q_min) - ent_term[:, None]).detach()
    value_loss = 0.5 * (out.values - v_backup).square().mean()

    # Policy: continuous part through the reparameterised action, discrete part through the probabilities.
    policy = torch.zeros(batch_size, device=batch.obs.device)
    q_streams = q_min.mean(1)  # [B, Q] averaged over reward streams
    if alpha_c is not None:
        policy = policy + alpha_c * out.cont_log_prob - expected(q_streams[:, None, :], detach_probs=True)[:, 0]
    if alpha_d is not None:
        for a, p, lp, qb in zip(
            alpha_d, probs, out.branch_log_probs, _by_branch(q_streams.detach(), branches), strict=True
        ):
            policy = policy + (p * (a * lp - qb)).sum(-1)
    policy_loss = policy.mean()

    entropy_loss = torch.zeros((), device=batch.obs.device)
    if out.log_alpha_cont is not None:
        entropy_loss = entropy_loss - (out.log_alpha_cont * (out.cont_log_prob + target_entropy_cont).detach()).mean()
    if out.log_alpha_disc is not None:
        diff = torch.stack(branch_neg_entropy, -1) + target_entropy_disc  # [B, D]
        entropy_loss = entropy_loss - (out.log_alpha_disc * diff.detach()).sum(-1).mean()

    return {
        "loss_q1": q1_loss,
        "loss_q2": q2_loss,
        "loss_value": value_loss,
        "loss_policy": policy_loss,
        "loss_entropy_coef": entropy_loss,
        "q1_loss": q1_loss.detach(),
        "q2_loss": q2_loss.detach(),
        "value_loss": value_loss.detach(),
        "policy_loss": policy_loss.detach(),
        "value_estimate": out.values.detach().mean(0),
    }


class POCABatch(NamedTuple):
    """What MA-POCA's loss reads from one minibatch (the critic's group inputs are the module's business)."""

    old_log_prob: torch.Tensor  # [B, N] per action component (each continuous dim, each discrete branch), or [B]
    old_values: torch.Tensor  # [B, K] V_old, one column per reward stream
    old_baselines: torch.Tensor  # [B, K] B_old
    returns: torch.Tensor  # [B, K] G, the lambda-return: the target of both V and B
    advantages: torch.Tensor  # [B] G - B averaged over streams, normalised over the buffer
    valid: torch.Tensor | None = None  # [B] bool, False on rows to ignore (padding); None: every row counts


def _row_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over every element; 0 (not NaN) for an empty batch, as upstream's masked_mean clamps its count at 1."""
    return x.sum() / max(x.numel(), 1)


def _clipped_regression(pred: torch.Tensor, old: torch.Tensor, target: torch.Tensor, epsilon: float) -> torch.Tensor:
    """PPO's pessimistic clipped value loss: mean over rows per stream, then over streams (upstream's order)."""
    clipped = old + (pred - old).clamp(-epsilon, epsilon)
    per_row = torch.max((target - pred).square(), (target - clipped).square())  # [B, K]
    return (per_row.sum(0) / max(per_row.shape[0], 1)).mean()


def poca_loss(
    log_prob: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    baselines: torch.Tensor,
    batch: POCABatch,
    epsilon: float,
    beta: float,
) -> dict[str, torch.Tensor]:
    """ML-Agents' MA-POCA loss: L_pi + 0.5 (L_V + 0.5 L_B) - beta entropy, with masked means and diagnostics.

    log_prob: [B, N] per action component under the current policy, or [B] joint (then one ratio per row, as
    ``ppo_loss``); the ratio is taken per component and the row's advantage broadcast over components, as
    upstream. entropy: [B]; values, baselines: [B, K]. V and B regress on the same target G with the same
    clipping; the baseline only ever enters its own term, so it cannot push the policy. Rows where
    ``batch.valid`` is False are dropped before any arithmetic: garbage (even NaN) there reaches neither the
    terms nor the gradients.
    """
    if batch.valid is not None:
        keep = batch.valid
        log_prob, entropy, values, baselines = log_prob[keep], entropy[keep], values[keep], baselines[keep]
        batch = POCABatch(*(t[keep] for t in batch[:-1]))  # every field but valid (the last)
    log_ratio = log_prob - batch.old_log_prob
    if log_ratio.dim() == 1:
        log_ratio = log_ratio[:, None]
    ratio = log_ratio.exp()
    adv = batch.advantages[:, None]
    surrogate = torch.min(ratio * adv, ratio.clamp(1.0 - epsilon, 1.0 + epsilon) * adv)
    policy_loss = -_row_mean(surrogate)
    value_loss = _clipped_regression(values, batch.old_values, batch.returns, epsilon)
    baseline_loss = _clipped_regression(baselines, batch.old_baselines, batch.returns, epsilon)
    mean_entropy = _row_mean(entropy)
    with torch.no_grad():
        approx_kl = _row_mean((ratio - 1.0) - log_ratio)
        clip_fraction = _row_mean(((ratio - 1.0).abs() > epsilon).float())
    return {
        "loss_policy": policy_loss,
        "loss_value": 0.5 * value_loss,
        "loss_baseline": 0.25 * baseline_loss,
        "loss_entropy": -beta * mean_entropy,
        "policy_loss": policy_loss.detach(),
        "value_loss": value_loss.detach(),
        "baseline_loss": baseline_loss.detach(),
        "entropy": mean_entropy.detach(),
        "approx_kl": approx_kl,
        "clip_fraction": clip_fraction,
    }
