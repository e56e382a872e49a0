"""A scripted soccer player with privileged state (it reads the field, not the rays): what the soccer tests
and docs measure the envs by (a good player must beat a random one clearly). Not a policy for training."""

from __future__ import annotations

import numpy as np

from mlx.envs.native.base import F32
from mlx.envs.native.soccer import AGENT_RADIUS, BALL_RADIUS, BLUE, HALF_X, PURPLE, SoccerEnv


def scripted_actions(env: SoccerEnv, behavior: str) -> np.ndarray:
    """Actions [m, 3] for ``behavior``'s deciding agents (DecisionSteps order), read from the env's state
    (not the observations): each agent heads for a point just behind the ball on the line from the
    opponents' goal through the ball, circling round the ball when it stands on the wrong side, then runs
    through the ball with forward (kick power 1). The agent of a team farther from the ball stays back
    between the ball and its own goal. Used for the documented scripted-vs-random scores."""
    b = env.behaviors.index(behavior)
    members = env._members[b]
    ar, A = env.arena, env.A
    team = env.team[members]  # [g]
    attack = np.where(team == BLUE, 1.0, -1.0).astype(F32)[None, :]  # +x for blue
    px, pz = ar.pos[0, members].T, ar.pos[1, members].T  # [n, g]
    bx, bz = ar.pos[0, A][:, None], ar.pos[1, A][:, None]
    # The unit vector from the ball to the opponents' goal centre.
    gx, gz = attack * F32(HALF_X + 1.0) - bx, -bz
    glen = np.maximum(np.hypot(gx, gz), F32(1e-6))
    ux, uz = gx / glen, gz / glen
    rx, rz = px - bx, pz - bz
    along = rx * ux + rz * uz  # > 0: the agent is between the ball and the goal it attacks
    across = rx * uz - rz * ux
    behind = F32(AGENT_RADIUS + BALL_RADIUS + 0.4)
    tx = bx - ux * behind
    tz = bz - uz * behind
    aligned = (along < -0.3) & (np.abs(across) < 0.6)
    tx = np.where(aligned, bx + ux, tx)
    tz = np.where(aligned, bz + uz, tz)
    # On the wrong side: go round, first beside the ball (when in line with it), then behind it.
    wrong = (along > -0.6) & ~aligned
    side = np.where(across >= 0, F32(1.0), F32(-1.0))
    px_side, pz_side = uz * side, -ux * side  # the unit vector from the ball towards the agent's side
    beside = wrong & (np.abs(across) < 2.0)
    tx = np.where(wrong, bx - ux * 2.0 + px_side * 2.0, tx)
    tz = np.where(wrong, bz - uz * 2.0 + pz_side * 2.0, tz)
    tx = np.where(beside, bx + ux * np.maximum(along, 0.0) + px_side * 2.5, tx)
    tz = np.where(beside, bz + uz * np.maximum(along, 0.0) + pz_side * 2.5, tz)
    # Two teammates: the one farther from the ball guards its own goal's side of the ball.
    dist = np.hypot(rx, rz)
    keeper = np.zeros_like(aligned)
    for t in (BLUE, PURPLE):
        cols = np.flatnonzero(team == t)
        if cols.size > 1:
            far = cols[dist[:, cols].argmax(1)]
            keeper[np.arange(env.n), far] = True
    own_x = -attack * F32(HALF_X)
    tx = np.where(keeper, (bx + own_x) / 2, tx)
    tz = np.where(keeper, bz / 2, tz)
    vx, vz = ar.vel[0, members].T, ar.vel[1, members].T
    return _steer(ar.heading[members].T, px, pz, vx, vz, tx, tz, aligned & ~keeper).reshape(-1, 3)


def _steer(heading: np.ndarray, px: np.ndarray, pz: np.ndarray, vx: np.ndarray, vz: np.ndarray, tx: np.ndarray,
           tz: np.ndarray, charge: np.ndarray) -> np.ndarray:  # fmt: skip
    """Actions [..., 3] towards (tx, tz): turn to face the target, forward when it is ahead (within 60
    degrees), backward when it is behind; no push when already faster than 3 m/s per metre left (these
    agents gain 2 m/s per physics step), unless ``charge``."""
    dx, dz = tx - px, tz - pz
    dist = np.hypot(dx, dz)
    closing = (vx * dx + vz * dz) / np.maximum(dist, 1e-6)
    fast = closing > 3.0 * dist + 1.0
    diff = (np.arctan2(dx, dz) - heading + np.pi) % (2 * np.pi) - np.pi  # > 0: target to the right
    act = np.zeros((*heading.shape, 3), np.int32)
    act[..., 2] = np.where(diff > 0.1, 2, np.where(diff < -0.1, 1, 0))
    near = (dist < 0.5) | fast
    ahead = np.abs(diff) < np.radians(60)
    behind = np.abs(diff) > np.radians(120)
    act[..., 0] = np.where(ahead & (~near | charge), 1, np.where(behind & ~near, 2, 0))
    return act
