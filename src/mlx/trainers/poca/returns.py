"""MA-POCA's trajectory maths (ML-Agents' ``poca/trainer.py``), as pure numpy functions with no trainer attached.

Shapes put time last and reward streams just before it, as ``advantages.gae`` puts time last: a trajectory's
per-stream arrays are [K, T] (the critic's [T, K] output transposed), and any leading axes batch trajectories
of equal length. Targets use the group value V (not the baseline B); advantages are G - B, so each agent is
credited for its own action against the counterfactual of its groupmates' actions.
"""

from __future__ import annotations

import numpy as np

from mlx.trainers.advantages import discounted_reverse_cumsum


def group_extrinsic_reward(
    own: np.ndarray,
    mates: np.ndarray,
    group: np.ndarray,
    strength: float,
) -> np.ndarray:
    """The extrinsic reward POCA trains on: (own + sum of groupmates' individual rewards + group reward) * strength.

    own, group: [...] per step; mates: [..., M], one column per groupmate slot (M may be 0). POCA always adds
    the groupmates' rewards (upstream forces that switch on) so that the whole group shares one objective.
    An absent groupmate (dead, not yet spawned, padding) is NaN, the critic's marker for an absent slot, and
    contributes 0; a present groupmate's 0 is also 0. own and group must be finite.
    """
    own = np.asarray(own, dtype=np.float64)
    mates = np.asarray(mates, dtype=np.float64)
    group = np.asarray(group, dtype=np.float64)
    mates_sum = np.nansum(mates, axis=-1) if mates.shape[-1] else np.zeros(mates.shape[:-1])
    return ((own + mates_sum + group) * strength).astype(np.float32)


def bootstrap_value(
    v_next: np.ndarray,
    done_reached: np.ndarray | bool,
    all_group_dones_reached: np.ndarray | bool,
    interrupted: np.ndarray | bool,
) -> np.ndarray:
    """The value after a trajectory's last step: 0 only when the agent AND its whole group are done, not interrupted.

    v_next: [..., K] the value pass on (next_obs, next_group_obs); the flags have v_next's shape without K (or are
    scalars). An agent that dies while its groupmates play on keeps bootstrapping from the group value, so it
    still earns credit for what the group does after its death (posthumous credit); a timeout (interrupted)
    bootstraps too, since the episode did not really end.
    """
    v_next = np.asarray(v_next, dtype=np.float64)
    stop = np.asarray(done_reached, dtype=bool) & np.asarray(all_group_dones_reached, dtype=bool)
    stop = stop & ~np.asarray(interrupted, dtype=bool)
    return np.where(stop[..., None], 0.0, v_next).astype(np.float32)


def lambda_returns(
    rewards: np.ndarray,
    values: np.ndarray,
    v_next: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """Upstream's TD(lambda) return per stream: G_T = r_T + g V_next, G_t = r_t + g((1-lam) V_{t+1} + lam G_{t+1}).

    rewards, values: [..., T]; v_next: [...] (``bootstrap_value``'s output, 0 where the bootstrap stops).
    Written as x_t = r_t + gamma (1-lam) V_{t+1} (x_T = r_T + gamma V_next) and G_t = x_t + gamma lam G_{t+1}, a
    discounted reverse cumsum: O(T) numpy work and no Python loop per step (1000 steps cost one cumsum).
    Returns float32 [..., T].
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    v_next = np.asarray(v_next, dtype=np.float64)
    shape = rewards.shape
    horizon = shape[-1]
    if horizon == 0:
        return np.zeros(shape, dtype=np.float32)
    r = rewards.reshape(-1, horizon)
    v = values.reshape(-1, horizon)
    x = r.copy()
    x[:, :-1] += gamma * (1.0 - lam) * v[:, 1:]
    x[:, -1] += gamma * np.broadcast_to(v_next, shape[:-1]).reshape(-1)
    return discounted_reverse_cumsum(x, gamma * lam).reshape(shape).astype(np.float32)


def poca_advantages(returns: np.ndarray, baselines: np.ndarray) -> np.ndarray:
    """A_t = G_t - B_t per stream, averaged across the streams (axis -2), as upstream stores one advantage per step.

    returns, baselines: [..., K, T] -> [..., T] float32. Normalising over the buffer happens at update time.
    """
    returns = np.asarray(returns, dtype=np.float64)
    baselines = np.asarray(baselines, dtype=np.float64)
    return (returns - baselines).mean(axis=-2).astype(np.float32)
