"""Scripted demonstrators for the imitation tests (record.heuristic=tests.experts:<name>).

Each is ``(env, behavior_name, decision_steps) -> ActionTuple``, the heuristic signature of mlx.modes.record.
"""

from __future__ import annotations

import numpy as np

from mlx.envs.api import ActionTuple, BaseEnv, DecisionSteps


def basic_right(env: BaseEnv, behavior: str, decision: DecisionSteps) -> ActionTuple:
    """Basic: always step right, to the large goal (return 0.93, the best there is)."""
    n = len(decision)
    return ActionTuple(np.zeros((n, 0), np.float32), np.full((n, 1), 2, np.int32))


def ball3d_pd(env: BaseEnv, behavior: str, decision: DecisionSteps) -> ActionTuple:
    """3DBall: a PD controller on the ball's offset and velocity, levelling the platform; it keeps the ball
    up for whole episodes (return 100). Observation: q.z, q.x, ball offset (x, y, z), ball velocity."""
    o = decision.obs[0]
    a0 = 0.5 * (o[:, 2] + o[:, 5]) - 5.0 * o[:, 0]
    a1 = -0.5 * (o[:, 4] + o[:, 7]) - 5.0 * o[:, 1]
    return ActionTuple(
        np.clip(np.stack([a0, a1], axis=1), -1.0, 1.0).astype(np.float32), np.zeros((len(o), 0), np.int32)
    )


def ball3d_pd_noisy(env: BaseEnv, behavior: str, decision: DecisionSteps) -> ActionTuple:
    """ball3d_pd plus Gaussian noise (sigma 0.3): the ball wanders, so the recording shows how the controller
    recovers from many states, the mean action of each being ball3d_pd's (what cloning needs to learn)."""
    out = ball3d_pd(env, behavior, decision)
    rng = np.random.default_rng(int(np.abs(decision.obs[0]).sum() * 1e6) % 2**32)
    noisy = out.continuous + rng.normal(0.0, 0.3, out.continuous.shape).astype(np.float32)
    return ActionTuple(np.clip(noisy, -1.0, 1.0), out.discrete)


def basic_left(env: BaseEnv, behavior: str, decision: DecisionSteps) -> ActionTuple:
    """Basic: always step left, to the small goal (return 0.07): what imitation of basic_right is not."""
    n = len(decision)
    return ActionTuple(np.zeros((n, 0), np.float32), np.full((n, 1), 1, np.int32))
