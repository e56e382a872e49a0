"""3DBall: a vectorised numpy port of Unity ML-Agents' 3DBall example (Ball3DAgent + PhysX).

Every area holds a kinematic platform (a 5 m cube, its top face 2.5 m above its centre, which sits at
the origin of the area) and a ball (radius 0.5*scale, mass ``mass``, no drag, friction 0.6, no
bounce). One agent per area tilts the platform; it gets 0.1 per decision while the ball stays on it,
and -1 when the ball is off (dy < -2, |dx| > 3 or |dz| > 3), which ends the episode.

Time: physics runs at dt = 0.02 s, decisions every 5 physics steps, and the last action is applied on
every physics step in between (ML-Agents' DecisionRequester with TakeActionsBetweenDecisions).
MaxStep is 5000 physics steps (1000 decisions); reaching it interrupts the episode (reward 0.1).

Per physics step, in Unity's order (the agent acts in FixedUpdate, then PhysX simulates):

1. Rotate the platform about its local z axis by az = 2*clip(a0) degrees if
   (q.z < 0.25 and az > 0) or (q.z > -0.25 and az < 0), then about its local x axis by
   ax = 2*clip(a1) degrees, gated the same way by the new q.x (Transform.Rotate: q <- q * AngleAxis).
2. Check the fall condition on the ball position the previous physics step left (Ball3DAgent does it
   in OnActionReceived, before the simulation). The first sub-step of a decision on which the ball is
   off ends the episode with that sub-step's observation; the area's later sub-steps are ignored
   and it is reset at the decision.
3. Simulate the ball. This replaces PhysX; the approximation:

   * semi-implicit Euler: v += a*dt, then p += v*dt;
   * a = gravity (0, -g, 0), scaled by 5/7 when the ball touched the top face on the previous step:
     a solid sphere rolling without slipping accelerates down a slope at 5/7 of a sliding one, and
     friction 0.6 holds it on every tilt the agent can reach (tan(29 deg) < 3.5*0.6). The spin itself
     is not simulated. The contact cancels gravity's normal part while the ball stays on the face, so
     scaling all of it is the same as scaling its tangential part, except on the one step in which
     the ball lifts off (a normal-speed error of (2/7)*g*dt = 0.06 m/s on that step);
   * contact with the top face only: when the ball centre projects inside the 5x5 face (local
     |x|, |z| < 2.5) and its height h above the platform centre along the platform normal n is in
     (0, 2.5 + r), it is pushed out along n to h = 2.5 + r and the inward part of its velocity relative
     to the face is removed (perfectly inelastic, like PhysX with bounciness 0). The face's own normal
     speed under the ball comes from this step's rotation: (sin(az)*x_local - sin(ax)*z_local) / dt;
   * off the face the ball falls freely: the platform's sides and edges are not colliders here (a
     ball past the edge is lost anyway), and there is no drag, as in the prefab.

Sign conventions: the quaternion algebra (Hamilton product, AngleAxis, q*v) and rotation matrices are
the formulas Unity uses, so the observations carry Unity's numbers and signs. Read in a right-handed
frame (Unity's is left-handed) the scene is the mirror image of Unity's, which changes nothing about
the task; no handed cross product is used.

Environment parameters (ML-Agents' names and defaults): ``mass`` and ``scale`` are applied to an
area's ball at each of its episode starts, so ``set_environment_parameter`` changes them for later
episodes. ``mass`` has no effect on this dynamics (nor in Unity, where the only other body is
kinematic). ``gravity`` acts at once on every area, as the Unity example's Physics.gravity callback.
Samplers (``set_environment_sampler``, ML-Agents' parameter randomisation) give ``mass`` and ``scale`` a
fresh draw per area at each episode start; ``gravity``, global, takes one value at a time.

Observation (8 float32): q.z, q.x of the platform rotation, ball position minus platform position,
ball velocity (world frame). Actions: 2 continuous, clipped to [-1, 1].

Implementation, for speed: the state is structure-of-arrays float32 [component, area] and a decision
is a fixed sequence of ~230 in-place numpy calls whatever the number of areas (no Python loop over
areas): ~0.15 ms for 12 areas, ~0.8 ms for 4096 on one core. The platform is tracked as its
quaternion (for the observation and the 0.25 gates) and as its rotation matrix (for the contact);
both get the same gated local rotations, written as "x*c + swapped(x)*signed s" over array views,
and are re-derived from the renormalised quaternion every 16 decisions (float32 drift in between is
~1e-6). Velocities are stored in metres per physics step. Positions and velocities of every sub-step
stay in a ring of slots, so the fall check and terminal observations are computed once per decision.
New-episode states are drawn in batches ahead of time (deterministic for a seed, like everything).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.envs.native.ball3d_kernel import (
    DECISION_PERIOD,
    DT,
    RENORM_EVERY,
    RING,
    Ball3DKernel,
    rotation_columns,
)
from mlx.envs.native.base import NativeEnv
from mlx.envs.native.camera import HALF_SIZE, Renderer

BEHAVIOR_NAME = "3DBall"
MAX_STEP = 5000
MAX_DECISIONS = MAX_STEP // DECISION_PERIOD
BALANCED_REWARD = 0.1
FALL_REWARD = -1.0
DEFAULT_PARAMETERS = {"mass": 1.0, "scale": 1.0, "gravity": 9.81}
RENDER_SIZE = 168  # render(): pictures for people, twice Visual3DBall's 84-pixel camera

_F32 = np.float32


class Ball3DEnv(Ball3DKernel, NativeEnv):
    """``num_areas`` independent 3DBall areas, one agent each (agent id = area index), behaviour 3DBall."""

    behaviors = (BEHAVIOR_NAME,)
    parameter_defaults = DEFAULT_PARAMETERS
    sampled_parameters = ("mass", "scale")  # gravity is global: one value at a time
    max_decisions = MAX_DECISIONS

    def __init__(self, num_areas: int = 12, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=(ObservationSpec(shape=(8,), name="VectorSensor"),),
            action_spec=ActionSpec(continuous_size=2),
        )
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        self._have_actions = False  # set_actions was called since the last step
        self._terminal_q = np.zeros((0, 4), _F32)  # rows (w, x, -y, z) of the last terminal observations

        self._init_kernel(n, self._params["gravity"])
        self._balanced = np.full(n, BALANCED_REWARD, _F32)
        self._renderer: Renderer | None = None  # render()'s camera, made on first use

    # ------------------------------------------------------------------------------------------
    # BaseEnv API (the rest is NativeEnv's)
    # ------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """New episodes in every area; all agents then wait for a decision with reward 0."""
        self._slot = 0
        self._since_renorm = 0
        super().reset()

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        return [self._observation(self._slot)[idx]]

    def _no_actions(self) -> None:
        self._have_actions = False

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        # Copied (transposed to [axis, area]) and clipped now: the caller may reuse its buffer.
        clipped = self._clipped
        np.copyto(clipped, continuous.T, casting="same_kind")
        np.fmax(clipped, self._neg_one_bound, clipped)  # np.clip costs 3x more; NaN becomes -1
        np.fmin(clipped, self._one_bound, clipped)
        self._have_actions = True

    def step(self) -> None:
        """One decision: 5 physics steps with the last actions (zeros if none were set since)."""
        self._require_reset("step")
        self._prepare_actions()
        start = self._slot
        end = (start + DECISION_PERIOD) % RING
        self._slot = end
        self._simulate(self._views[start // DECISION_PERIOD])
        self._finish(start, end)

    def set_environment_parameter(self, key: str, value: float) -> None:
        """mass and scale apply from each area's next episode; gravity at once (Unity's Physics.gravity)."""
        super().set_environment_parameter(key, value)
        if key == "gravity":
            self._set_gravity(self._params["gravity"])
        else:
            self._stale.fill(True)
            self._any_stale = True

    def platform_rotations(self, terminal: bool = False) -> np.ndarray:
        """The platforms' rotations as unit quaternions (x, y, z, w), Unity's order: [n, 4] now, or [m, 4]
        at the terminal observations of the last TerminalSteps. The observation holds only q.z and q.x; a
        camera (Visual3DBall) needs the whole rotation."""
        if terminal:
            q = self._terminal_q if len(self._terminals[0]) else np.zeros((0, 4), _F32)
        else:
            q = self._qh[self._slot].T
        w, x, ny, z = q.T
        return np.stack([x, -ny, z, w], axis=1)

    def render(self, areas: slice | Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Pictures [m, 168, 168, 3] of areas through Visual3DBall's camera (the same view and drawing, at
        twice its sensor's resolution): the platform and the ball of each area's current episode."""
        if self._renderer is None:
            self._renderer = Renderer(RENDER_SIZE)
        idx = np.arange(self.n)[slice(None) if areas is None else areas]
        ball = self._pvh[self._slot, 0][:, idx].T
        radius = 2 * self._h3[1, idx] - HALF_SIZE  # the contact box's half height is (2.5 + r) / 2
        return self._renderer.render(self.platform_rotations()[idx], ball, radius)

    # ------------------------------------------------------------------------------------------
    # test / debugging hook
    # ------------------------------------------------------------------------------------------

    def debug_set_state(
        self,
        areas: slice | Sequence[int] | np.ndarray = slice(None),
        rotation: np.ndarray | None = None,
        ball_position: np.ndarray | None = None,
        ball_velocity: np.ndarray | None = None,
    ) -> None:
        """Overwrite the current state of some areas, so tests can build exact situations.

        rotation: platform quaternions [m, 4] as (x, y, z, w), like Unity's Quaternion; ball_position:
        ball minus platform [m, 3]; ball_velocity: [m, 3] in m/s. The ball's contact memory is cleared,
        the episodes' step counts are kept and the current DecisionSteps observations are refreshed.
        """
        self._require_reset("debug_set_state")
        idx = np.arange(self.n)[areas]
        s = self._slot
        if rotation is not None:
            x, y, z, w = np.broadcast_to(np.asarray(rotation, np.float64), (idx.size, 4)).T
            q = np.array([w, x, -y, z]) / np.sqrt(w * w + x * x + y * y + z * z)
            self._qh[s][:, idx] = q
            rc = np.empty((3, 3, idx.size), _F32)
            rotation_columns(q.astype(_F32), rc)
            self._rc[:, :, idx] = rc
        if ball_position is not None:
            self._pvh[s, 0][:, idx] = np.broadcast_to(np.asarray(ball_position), (idx.size, 3)).T
        if ball_velocity is not None:
            self._pvh[s, 1][:, idx] = np.broadcast_to(np.asarray(ball_velocity), (idx.size, 3)).T * DT
        self._contact[idx] = False
        self._decisions[0].obs = [self._observation(s)]

    # ------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------

    def _finish(self, start: int, end: int) -> None:
        """Fall check over the decision's sub-steps, rewards, terminal batch, resets, observations."""
        self._since_renorm += 1
        if self._since_renorm >= RENORM_EVERY:
            self._renormalise(end)

        # Off the platform on sub-step k: judged on the position before that sub-step's physics.
        pos = self._pvh[start : start + DECISION_PERIOD, 0]  # [k, xyz, area]
        abs_xz, worst, low, off = self._abs_xz, self._worst, self._low, self._off
        np.absolute(pos[:, 0::2], abs_xz)
        np.fmax(abs_xz[:, 0], abs_xz[:, 1], worst)
        np.multiply(pos[:, 1], -1.5, low)  # dy < -2  <=>  -1.5 dy > 3
        np.fmax(worst, low, worst)
        np.greater(worst, 3.0, off)
        fell = np.logical_or.reduce(off, 0)
        steps = self._steps
        np.add(steps, 1, steps)
        ended = np.greater_equal(steps, MAX_DECISIONS)
        np.logical_or(ended, fell, ended)

        reward = self._balanced.copy()
        if ended.any():
            idx = np.flatnonzero(ended)
            m = idx.size
            fell_idx = fell[idx]
            k = np.where(fell_idx, off[:, idx].argmax(0), DECISION_PERIOD)
            half = start // DECISION_PERIOD
            qslot, pslot = self._term_qslot[half][k], self._term_pslot[half][k]
            obs = np.empty((m, 8), _F32)
            obs[:, 0] = self._qh[qslot, 3, idx]
            obs[:, 1] = self._qh[qslot, 1, idx]
            np.multiply(self._pvh[pslot, :, :, idx].reshape(m, 6), self._obs_scale, obs[:, 2:8])
            self._terminal_q = self._qh[qslot, :, idx]
            self._end(idx, [obs], np.where(fell_idx, _F32(FALL_REWARD), _F32(BALANCED_REWARD)), ~fell_idx)
            reward[idx] = 0.0
            self._begin(idx)
        else:
            self._no_terminal()
        self._publish([self._observation(end)], reward)

    def _observation(self, slot: int) -> np.ndarray:
        """A fresh C-ordered [n, 8] observation batch (built row-wise, then transposed once)."""
        stage = self._stage
        np.copyto(stage[0:2], self._qh[slot, 3:0:-2])  # q.z, q.x
        np.multiply(self._pvh[slot].reshape(6, self.n), self._obs_scale_col, stage[2:8])
        obs = np.empty((self.n, 8), _F32)
        np.copyto(obs, stage.T)
        return obs

    def _refill_pool(self) -> None:
        """Draw a batch of OnEpisodeBegin states: tilt U(-10, 10) deg about local x then local z,
        ball at (U(-1.5, 1.5), 4, U(-1.5, 1.5)) above the platform centre, at rest."""
        pool = self._pool
        size = pool.shape[1]
        # Per area, in Unity's order of draws: x tilt, z tilt, ball x, ball z.
        u = self._rng.random((size, 4), dtype=_F32).T
        half = u[0:2] * _F32(math.radians(20.0) / 2) - _F32(math.radians(10.0) / 2)
        ca, cb = np.cos(half)
        sa, sb = np.sin(half)
        # AngleAxis(a, x) * AngleAxis(b, z) = (w, x, y, z) = (ca cb, sa cb, -sa sb, ca sb).
        q = pool[0:4]
        np.multiply(ca, cb, out=q[0])
        np.multiply(sa, cb, out=q[1])
        np.multiply(sa, sb, out=q[2])  # -y
        np.multiply(ca, sb, out=q[3])
        rotation_columns(q, pool[4:13].reshape(3, 3, size))
        pool[13:19] = 0.0
        np.multiply(u[2:4], _F32(3.0), out=pool[13:16:2])
        pool[13:16:2] -= _F32(1.5)
        pool[14] = 4.0
        self._pool_next = 0

    def _reset_areas(self, idx: np.ndarray) -> None:
        """Ball3DAgent.OnEpisodeBegin and SetResetParameters for the given areas."""
        m = idx.size
        if self._pool_next + m > self._pool.shape[1]:
            self._refill_pool()
        j = self._pool_next
        self._pool_next = j + m
        state = self._pool[:, j : j + m]
        s = self._slot
        self._qh[s][:, idx] = state[0:4]
        self._rc.reshape(9, self.n)[:, idx] = state[4:13]
        self._pvh[s].reshape(6, self.n)[:, idx] = state[13:19]
        self._contact[idx] = False
        if self._any_stale or self._params.samplers:  # samplers: a fresh draw for every new episode
            hh = (HALF_SIZE + 0.5 * self._params.draw("scale", idx)) / 2
            self._mass[idx] = self._params.draw("mass", idx)
            self._h3[1, idx] = hh
            self._y[3, 1, idx] = -hh
            self._stale[idx] = False
            self._any_stale = bool(self._stale.any())
