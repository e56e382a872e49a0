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
    adv = discounted_reverse_cumsum(deltas, gamma * lambd)  # zero past each length, as deltas are
    returns = np.where(valid, adv + values, 0.0)
    return adv.astype(np.float32), returns.astype(np.float32)


def discounted_reverse_cumsum(x: np.ndarray, c: float) -> np.ndarray:
    """y[:, t] = x[:, t] + c * y[:, t + 1] along axis 1 (y past the end is 0), without a Python loop per step.

    Within a block of L steps y = c^-t * reverse_cumsum(c^t * x) plus the carry from the next block; L keeps
    c^-L far from float64's overflow (one block when c is close to 1, as GAE's gamma * lambda is), so a
    1000-step trajectory is one cumsum instead of a thousand small numpy calls.
    """
    x = np.asarray(x, dtype=np.float64)
    n, horizon = x.shape
    if c == 0.0 or horizon == 0:
        return x.copy()
    block = horizon if c >= 1.0 else max(1, min(horizon, int(200.0 / -np.log10(c))))
    powers = c ** np.arange(block, dtype=np.float64)
    y = np.empty_like(x)
    carry = np.zeros(n)
    for end in range(horizon, 0, -block):
        start = max(0, end - block)
        size = end - start
        scaled = x[:, start:end] * powers[:size]
        sums = np.cumsum(scaled[:, ::-1], axis=1)[:, ::-1]
        y[:, start:end] = sums / powers[:size] + carry[:, None] * (c ** np.arange(size, 0, -1, dtype=np.float64))
        carry = y[:, start]
    return y
