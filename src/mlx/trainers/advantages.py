"""Advantage estimation, kept apart from the losses (TorchRL's habit) and tested against hand-computed returns."""

from __future__ import annotations

import numpy as np


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    bootstrap: np.ndarray,
    lengths: np.ndarray,
    gamma: float,
    lambd: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates for a padded batch of trajectories.

    rewards, values: [E, T] (entries at t >= lengths[e] are ignored); bootstrap: [E], the value of the state
    after each trajectory's last step: V(s_T) when the trajectory was cut (time_horizon) or interrupted
    (max step), and 0 when it terminated. Passing 0 for termination is what stops bootstrapping.
    Returns (advantages, returns) [E, T], zero past each length; returns = advantages + values
    (the lambda-return used as the value target, as in ML-Agents).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n, horizon = rewards.shape
    lengths = np.asarray(lengths)
    valid = np.arange(horizon)[None, :] < lengths[:, None]
    # next_values[e, t] = V(s_{t+1}); at the last valid step it is the bootstrap value.
    next_values = np.zeros_like(values)
    next_values[:, :-1] = values[:, 1:]
    last = lengths - 1
    rows = np.arange(n)
    next_values[rows, last] = bootstrap
    deltas = np.where(valid, rewards + gamma * next_values - values, 0.0)
    adv = np.zeros_like(deltas)
    running = np.zeros(n)
    decay = gamma * lambd
    for t in range(horizon - 1, -1, -1):
        running = deltas[:, t] + decay * running * valid[:, t]
        adv[:, t] = running
    adv = np.where(valid, adv, 0.0)
    returns = np.where(valid, adv + values, 0.0)
    return adv.astype(np.float32), returns.astype(np.float32)
