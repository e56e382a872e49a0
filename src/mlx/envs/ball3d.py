"""3DBall: a vectorised numpy port of Unity ML-Agents' 3DBall example (Ball3DAgent + PhysX).

Every area holds a kinematic platform (a 5 m cube, its top face 2.5 m above its centre, which sits at
the origin of the area) and a ball (radius 0.5*scale, mass ``mass``, no drag, friction 0.6, no
bounce). One agent per area tilts the platform; it is rewarded 0.1 per decision while the ball stays
on it and -1 when the ball is off (dy < -2, |dx| > 3 or |dz| > 3), which ends the episode.

Time: physics runs at dt = 0.02 s, decisions every 5 physics steps and the last action is applied on
every physics step in between (ML-Agents' DecisionRequester with TakeActionsBetweenDecisions).
MaxStep is 5000 physics steps (1000 decisions); reaching it interrupts the episode.

Per physics step, in Unity's order (the agent acts in FixedUpdate, then PhysX simulates):

1. Rotate the platform about its local z axis by az = 2*clip(a0) degrees if
   (q.z < 0.25 and az > 0) or (q.z > -0.25 and az < 0), then about its local x axis by
   ax = 2*clip(a1) degrees gated the same way by q.x (Transform.Rotate: q <- q * AngleAxis).
2. Check the fall condition on the ball position the previous physics step left (Ball3DAgent does it
   in OnActionReceived, before the simulation). The first sub-step of a decision window on which
   the ball is off ends the episode; later sub-steps of that area are ignored.
3. Simulate the ball (this replaces PhysX; the approximation):

   * semi-implicit Euler: v += a*dt, then p += v*dt;
   * a = gravity (0, -g, 0), except that while the ball touched the top face on the previous step
     the tangential part of gravity (in the face plane) is scaled by 5/7: a solid sphere rolling
     without slipping, which friction 0.6 sustains on every tilt the agent can reach
     (tan(29 deg) < 3.5*0.6). The ball's spin is not simulated; it only has this effect. The normal
     part of gravity is scaled too; the contact cancels it while the ball stays on the face, so it
     only matters on the one step in which the ball lifts off;
   * contact with the top face only: when the ball centre projects inside the 5x5 face (local
     |x|, |z| <= 2.5) and its local height h (along the platform normal n) is in (0, 2.5 + r), it is
     pushed out along n to h = 2.5 + r and the inward component of its velocity relative to the
     face is removed (perfectly inelastic: PhysX with bounciness 0). The face's normal velocity at
     the ball is that of this step's rotation: (az_rad*x_local - ax_rad*z_local) / dt;
   * off the face the ball falls freely: the platform's sides and edges are not colliders here
     (a ball past the edge is lost anyway), and drag is 0 as in the prefab.

Sign conventions: the quaternion algebra (Hamilton product, AngleAxis, q*v) and the rotation
matrices are the same formulas Unity uses, so observations carry Unity's numbers and signs; read in
a right-handed frame (Unity's is left-handed) the scene is its mirror image, which changes nothing
about the task. No handed cross product is used.

Environment parameters (ML-Agents' names and defaults): ``mass`` and ``scale`` are applied to an
area's ball at each of its episode starts, so ``set_environment_parameter`` changes them for later
episodes; ``mass`` has no effect on this dynamics (nor in Unity, where the only other body is
kinematic). ``gravity`` acts at once on every area, as Unity's Physics.gravity callback does.

Observation (8 float32): q.z, q.x of the platform rotation, ball position minus platform position,
ball velocity (world frame). Actions: 2 continuous in [-1, 1].

Layout and speed: state is structure-of-arrays float32 [component, area]; a step is a fixed sequence
of ~190 in-place numpy calls whatever the number of areas (no Python loop over areas), so 12 areas
cost ~0.1 ms and 4096 areas well under 1 ms on one core. The platform is tracked twice, as the
quaternion (for the observation and the 0.25 gates) and as its rotation matrix (for the contact),
both updated by the same local rotations. Velocities are stored in metres per physics step so that
p += v is one call. Positions and velocities of every sub-step are kept in a small ring of slots so
that the fall check and the terminal observation are computed once per decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlx.envs.base import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    EnvParameters,
    ObservationSpec,
    TerminalSteps,
)

BEHAVIOR_NAME = "3DBall"
DT = 0.02
DECISION_PERIOD = 5
MAX_STEP = 5000
MAX_DECISIONS = MAX_STEP // DECISION_PERIOD
HALF_SIZE = 2.5  # half the platform's width; also the top face's height above the platform centre
TILT_GATE = 0.25  # Ball3DAgent rotates only while |q.z| (|q.x|) stays below this
DEG_PER_ACTION = 2.0  # degrees of rotation per physics step at |action| = 1
ROLLING_FACTOR = 5.0 / 7.0  # acceleration of a solid sphere rolling without slipping, relative to sliding
BALANCED_REWARD = 0.1
FALL_REWARD = -1.0
DEFAULT_PARAMETERS = {"mass": 1.0, "scale": 1.0, "gravity": 9.81}

_F32 = np.float32
# Slots of the position/velocity and rotation rings: a decision uses DECISION_PERIOD + 1 consecutive
# slots (its start state and the state after each sub-step); consecutive decisions share one slot.
_RING = 2 * DECISION_PERIOD


def _quaternion(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    """Unit quaternions [w, x, y, z] (rows) of rotations by angle_rad about the x (0) or z (2) axis."""
    q = np.zeros((4, angle_rad.size))
    q[0] = np.cos(angle_rad / 2)
    q[1 + axis] = np.sin(angle_rad / 2)
    return q


def _hamilton(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b of quaternions stored as rows [w, x, y, z] (Unity's operator*)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ])


def _rotation_columns(q: np.ndarray) -> np.ndarray:
    """Columns of the rotation matrix of unit quaternions q [w, x, y, z]: [column, component, n]."""
    w, x, y, z = q
    r = np.empty((3, 3, q.shape[1]))
    r[0] = [1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)]
    r[1] = [2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)]
    r[2] = [2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)]
    return r


class Ball3DEnv(BaseEnv):
    """``num_areas`` independent 3DBall areas, one agent each (agent id = area index), behaviour 3DBall."""

    def __init__(
        self, num_areas: int = 12, seed: int = 0, parameters: Mapping[str, float] | None = None
    ) -> None:
        if int(num_areas) < 1:
            raise EnvError(f"3DBall needs num_areas >= 1, got {num_areas}")
        n = self._n = int(num_areas)
        self._params = EnvParameters(defaults=dict(DEFAULT_PARAMETERS), values=dict(parameters or {}))
        self._rng = np.random.default_rng(seed)
        self._spec = BehaviorSpec(
            observation_specs=(ObservationSpec(shape=(8,), name="VectorSensor"),),
            action_spec=ActionSpec(continuous_size=2),
        )
        self._agent_id = np.arange(n, dtype=np.int32)
        self._agent_id.flags.writeable = False
        self._started = False
        self._actions: np.ndarray | None = None
        self._decision: DecisionSteps | None = None
        self._terminal: TerminalSteps | None = None

        # --- state -------------------------------------------------------------------------------
        # Platform rotation ring, rows (w, x, -y, z): that order and the sign of y make both local
        # rotations "q * c + (a reversed view of q) * (signed s)" with a broadcastable sign pattern.
        self._qh = np.zeros((_RING, 4, n), _F32)
        # Ball position and velocity (world, velocity in m per physics step) ring: [slot, p/v, xyz, n].
        self._pvh = np.zeros((_RING, 2, 3, n), _F32)
        # Rotation matrix columns (local x, normal, local z in world coordinates): [column, xyz, n].
        self._rc = np.zeros((3, 3, n), _F32)
        self._contact = np.zeros(n, _F32)  # 1 where the ball touched the face on the last physics step
        self._steps = np.zeros(n, np.int32)  # decisions taken in the current episode
        self._slot = 0  # ring slot of the current state
        self._mass = np.ones(n, _F32)
        self._radius = np.full(n, 0.5, _F32)
        # Contact box in local coordinates, centred at height hh = (2.5 + r) / 2 with half sizes h3:
        # the ball touches when |lx| < 2.5, |lz| < 2.5 and 0 < h < 2.5 + r.
        self._hh = np.zeros(n, _F32)
        self._h3 = np.full((3, n), HALF_SIZE, _F32)
        # [4, 3, n]: rows 0..2 take R^T p term by term, row 3 holds -(box centre) so one sum gives
        # the ball's local coordinates relative to the box centre.
        self._y = np.zeros((4, 3, n), _F32)
        self._set_gravity(self._params["gravity"])

        # --- per-decision coefficients -------------------------------------------------------------
        # For each axis (z, x): rows c, C, ang, -s, +s, S, -S where c/s are cos/sin of the half angle
        # (quaternion), C/S of the full angle (matrix) and ang the signed angle for the face's speed.
        # _dcoef holds them minus the identity rotation; _ecoef = identity + gate * _dcoef per sub-step.
        self._dcoef = np.zeros((2, 7, n), _F32)
        self._ecoef = np.zeros((2, 7, n), _F32)
        self._ident = np.array([1, 1, 0, 0, 0, 0, 0], _F32)[:, None]
        self._sign = np.zeros((2, n), _F32)  # sign of each axis' angle: the gate is sign*q < 0.25
        self._clipped = np.zeros((2, n), _F32)
        self._angles = np.zeros((2, 2, n), _F32)  # [half/full, axis, n] in radians
        self._sin = np.zeros((2, 2, n), _F32)
        self._cos = np.zeros((2, 2, n), _F32)

        # --- scratch -------------------------------------------------------------------------------
        self._gate_in = np.zeros(n, _F32)
        self._gate = np.zeros(n, _F32)
        self._tq = np.zeros((2, 2, n), _F32)
        self._tv = np.zeros((2, 3, n), _F32)
        self._gv = np.zeros((3, n), _F32)  # gravity's velocity change this sub-step (x, z rows stay 0)
        self._local = np.zeros((3, n), _F32)
        self._abs = np.zeros((3, n), _F32)
        self._inside = np.zeros((3, n), _F32)
        self._pj = np.zeros((2, n), _F32)  # (-penetration, inward relative normal speed) * contact
        self._xn = np.zeros((5, n), _F32)  # terms of (v . n - face speed)
        self._vrel = np.zeros(n, _F32)
        self._x6 = np.zeros((2, 3, n), _F32)
        self._abs_xz = np.zeros((DECISION_PERIOD, 2, n), _F32)
        self._worst = np.zeros((DECISION_PERIOD, n), _F32)
        self._low = np.zeros((DECISION_PERIOD, n), _F32)
        self._off = np.zeros((DECISION_PERIOD, n), bool)
        self._qsq = np.zeros((4, n), _F32)
        self._qnorm = np.zeros(n, _F32)
        self._obs_scale = np.array([1, 1, 1, 1 / DT, 1 / DT, 1 / DT], _F32)
        self._build_views()

    # ------------------------------------------------------------------------------------------
    # BaseEnv API
    # ------------------------------------------------------------------------------------------

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR_NAME: self._spec}

    @property
    def num_areas(self) -> int:
        return self._n

    def reset(self) -> None:
        """New episodes in every area; all agents then wait for a decision with reward 0."""
        self._slot = 0
        self._reset_areas(np.arange(self._n))
        self._actions = None
        self._started = True
        self._decision = DecisionSteps(
            obs=[self._observe(self._slot)], reward=np.zeros(self._n, _F32), agent_id=self._agent_id
        )
        self._terminal = self._empty_terminal()

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        self._check_behavior(behavior_name)
        cont = np.asarray(actions.continuous)
        if cont.shape != (self._n, 2):
            raise EnvError(
                f"3DBall expects continuous actions of shape ({self._n}, 2), got {tuple(cont.shape)}"
            )
        disc = np.asarray(actions.discrete)
        if disc.size and disc.shape[-1] != 0:
            raise EnvError(f"3DBall has no discrete actions, got shape {tuple(disc.shape)}")
        self._actions = cont

    def step(self) -> None:
        """Run one decision: 5 physics steps with the last actions (zeros if none were set)."""
        if not self._started:
            raise EnvError("call reset() before step()")
        self._prepare_actions()
        start = self._slot
        for views in self._views[start // DECISION_PERIOD]:
            self._substep(*views)
        end = (start + DECISION_PERIOD) % _RING
        self._slot = end
        self._finish(start, end)

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        self._check_behavior(behavior_name)
        if self._decision is None or self._terminal is None:
            raise EnvError("call reset() before get_steps()")
        return self._decision, self._terminal

    def set_environment_parameter(self, key: str, value: float) -> None:
        """mass/scale apply from each area's next episode; gravity at once (Unity's Physics.gravity)."""
        self._params.set(key, value)
        if key == "gravity":
            self._set_gravity(self._params["gravity"])

    def close(self) -> None:
        self._started = False

    # ------------------------------------------------------------------------------------------
    # test / debugging hook
    # ------------------------------------------------------------------------------------------

    def debug_set_state(
        self,
        areas: Any = slice(None),
        rotation: np.ndarray | None = None,
        ball_position: np.ndarray | None = None,
        ball_velocity: np.ndarray | None = None,
    ) -> None:
        """Overwrite the state of some areas (tests use it to build exact situations).

        rotation: quaternions [m, 4] as (x, y, z, w) like Unity's Quaternion; ball_position: ball minus
        platform [m, 3]; ball_velocity [m, 3] in m/s. The ball's contact memory is cleared and the
        current DecisionSteps observations are refreshed; the episode step counters are kept.
        """
        if not self._started:
            raise EnvError("call reset() before debug_set_state()")
        idx = np.arange(self._n)[areas]
        s = self._slot
        if rotation is not None:
            xyzw = np.broadcast_to(np.asarray(rotation, np.float64), (idx.size, 4)).T
            q = np.stack([xyzw[3], xyzw[0], xyzw[1], xyzw[2]])
            q /= np.linalg.norm(q, axis=0)
            self._qh[s][:, idx] = [q[0], q[1], -q[2], q[3]]
            self._rc[:, :, idx] = _rotation_columns(q)
        if ball_position is not None:
            self._pvh[s, 0][:, idx] = np.broadcast_to(np.asarray(ball_position), (idx.size, 3)).T
        if ball_velocity is not None:
            self._pvh[s, 1][:, idx] = np.broadcast_to(np.asarray(ball_velocity), (idx.size, 3)).T * DT
        self._contact[idx] = 0.0
        if self._decision is not None:
            self._decision.obs = [self._observe(s)]

    # ------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------

    def _check_behavior(self, name: str) -> None:
        if name != BEHAVIOR_NAME:
            raise EnvError(f"unknown behavior '{name}'; this env has: {BEHAVIOR_NAME}")

    def _empty_terminal(self) -> TerminalSteps:
        return TerminalSteps(
            obs=[np.zeros((0, 8), _F32)], reward=np.zeros(0, _F32),
            agent_id=np.zeros(0, np.int32), interrupted=np.zeros(0, bool),
        )

    def _set_gravity(self, g: float) -> None:
        # Velocities are in m per physics step, so gravity's change per step is g*dt^2.
        self._g = float(g) * DT * DT
        self._g_roll = (1.0 - ROLLING_FACTOR) * self._g

    def _build_views(self) -> None:
        """Precompute every array view the sub-step loop uses (creating views costs ~0.1 us each)."""
        n = self._n
        ec = self._ecoef
        rc = self._rc
        self._e_z = (ec[0], ec[0, 0], ec[0, 1], ec[0, 3:5, None, :], ec[0, 5:7, None, :])
        self._e_x = (ec[1], ec[1, 0], ec[1, 1], ec[1, None, 3:5, :], ec[1, 5:7, None, :])
        self._rc_views = (rc[0:2], rc[1::-1], rc[1:3], rc[2:0:-1], rc.transpose(1, 0, 2), rc[1])
        self._views: list[list[tuple[Any, ...]]] = []
        for half in range(2):
            per = []
            for k in range(DECISION_PERIOD):
                a = half * DECISION_PERIOD + k
                b = (a + 1) % _RING
                qa, qb = self._qh[a], self._qh[b]
                qa2, qb2 = qa.reshape(2, 2, n), qb.reshape(2, 2, n)
                pva, pvb = self._pvh[a], self._pvh[b]
                per.append((qa[3], qa2[::-1, ::-1], qa2, qb[1], qb2, qb2[:, ::-1],
                            pva[0], pva[1], pvb, pvb[0], pvb[1], pvb[0][:, None, :]))
            self._views.append(per)

    def _prepare_actions(self) -> None:
        """Per-decision cos/sin of the half and full rotation angles and the gate signs."""
        if self._actions is None:
            self._clipped.fill(0.0)
        else:
            np.clip(self._actions.T, -1.0, 1.0, out=self._clipped)
        self._actions = None
        # az = 2 * a0 degrees: half angle = a0 degrees, full angle = 2 * a0 degrees.
        np.multiply(self._clipped[None], _ANGLE_SCALE, out=self._angles)
        np.sin(self._angles, out=self._sin)
        np.cos(self._angles, out=self._cos)
        np.sign(self._clipped, out=self._sign)
        d = self._dcoef
        np.subtract(self._cos.transpose(1, 0, 2), 1.0, out=d[:, 0:2])
        np.multiply(self._angles[1], _ANG_SIGN, out=d[:, 2])
        np.multiply(self._sin[0][:, None, :], _NEG_POS, out=d[:, 3:5])
        np.multiply(self._sin[1][:, None, :], _POS_NEG, out=d[:, 5:7])

    def _substep(
        self, qa_z: np.ndarray, qa_rev: np.ndarray, qa2: np.ndarray, qb_x: np.ndarray,
        qb2: np.ndarray, qb_swap: np.ndarray, pa: np.ndarray, va: np.ndarray, pvb: np.ndarray,
        pb: np.ndarray, vb: np.ndarray, pb_b: np.ndarray,
    ) -> None:
        """One physics step for every area: gated rotations, gravity, Euler step, contact."""
        mul, add, sub = np.multiply, np.add, np.subtract
        gate_in, gate, tq, tv = self._gate_in, self._gate, self._tq, self._tv
        ident, sign, dcoef = self._ident, self._sign, self._dcoef
        rc_z, rc_z_swap, rc_x, rc_x_swap, rc_t, normal = self._rc_views
        e_z, ez_c, ez_cc, ez_sq, ez_sv = self._e_z
        e_x, ex_c, ex_cc, ex_sq, ex_sv = self._e_x

        # Rotate about local z, gated by q.z: new q = q*c + reversed(q)*(-s, -s, +s, +s).
        mul(qa_z, sign[0], out=gate_in)
        np.less(gate_in, TILT_GATE, out=gate)
        mul(dcoef[0], gate, out=e_z)
        add(e_z, ident, out=e_z)
        mul(qa_rev, ez_sq, out=tq)
        mul(qa2, ez_c, out=qb2)
        add(qb2, tq, out=qb2)
        mul(rc_z_swap, ez_sv, out=tv)  # columns (x, n) <- (C x + S n, C n - S x)
        mul(rc_z, ez_cc, out=rc_z)
        add(rc_z, tv, out=rc_z)
        # Then about local x, gated by the new q.x: new q = q*c + pair-swapped(q)*(-s, +s, -s, +s).
        mul(qb_x, sign[1], out=gate_in)
        np.less(gate_in, TILT_GATE, out=gate)
        mul(dcoef[1], gate, out=e_x)
        add(e_x, ident, out=e_x)
        mul(qb_swap, ex_sq, out=tq)
        mul(qb2, ex_c, out=qb2)
        add(qb2, tq, out=qb2)
        mul(rc_x_swap, ex_sv, out=tv)  # columns (n, z) <- (C n + S z, C z - S n)
        mul(rc_x, ex_cc, out=rc_x)
        add(rc_x, tv, out=rc_x)

        # Gravity (y only; the rolling factor on the previous step's contact) and semi-implicit Euler.
        gv1 = self._gv[1]
        mul(self._contact, self._g_roll, out=gv1)
        sub(gv1, self._g, out=gv1)
        add(va, self._gv, out=vb)
        add(pa, vb, out=pb)

        # Local coordinates relative to the contact box centre: (lx, h - hh, lz).
        y, local, inside = self._y, self._local, self._inside
        mul(rc_t, pb_b, out=y[0:3])
        add.reduce(y, axis=0, out=local)
        np.absolute(local, out=self._abs)
        np.less(self._abs, self._h3, out=inside)
        np.multiply.reduce(inside, axis=0, out=self._contact)

        # Contact: push out to h = 2.5 + r along n and cancel the inward speed relative to the face.
        pj, xn = self._pj, self._xn
        sub(local[1], self._hh, out=pj[0])  # h - (2.5 + r) = -penetration
        mul(normal, vb, out=xn[0:3])
        mul(self._ecoef[:, 2], local[0::2], out=xn[3:5])  # minus the face's normal speed
        add.reduce(xn, axis=0, out=self._vrel)
        np.minimum(self._vrel, 0.0, out=pj[1])
        mul(pj, self._contact, out=pj)
        mul(normal, pj[:, None, :], out=self._x6)
        sub(pvb, self._x6, out=pvb)

    def _finish(self, start: int, end: int) -> None:
        """Fall check over the decision's sub-steps, rewards, terminal batch, resets, observations."""
        n = self._n
        # Renormalise the quaternion once per decision (10 float32 rotations drift ~1e-7).
        q = self._qh[end]
        np.multiply(q, q, out=self._qsq)
        np.add.reduce(self._qsq, axis=0, out=self._qnorm)
        np.sqrt(self._qnorm, out=self._qnorm)
        np.divide(q, self._qnorm, out=q)

        # Off the platform on sub-step k: the position before that sub-step's physics.
        pos = self._pvh[start:start + DECISION_PERIOD, 0]  # [k, xyz, n]
        np.absolute(pos[:, 0::2], out=self._abs_xz)
        np.maximum(self._abs_xz[:, 0], self._abs_xz[:, 1], out=self._worst)
        np.multiply(pos[:, 1], -1.5, out=self._low)  # dy < -2  <=>  -1.5 dy > 3
        np.maximum(self._worst, self._low, out=self._worst)
        np.greater(self._worst, 3.0, out=self._off)
        fell = self._off.any(axis=0)
        self._steps += 1
        ended = np.greater_equal(self._steps, MAX_DECISIONS)
        np.logical_or(ended, fell, out=ended)

        reward = np.full(n, BALANCED_REWARD, _F32)
        if ended.any():
            idx = np.flatnonzero(ended)
            fell_idx = fell[idx]
            # Fell on sub-step k: rotation after that sub-step's rotate, ball state before its physics.
            k = np.where(fell_idx, self._off[:, idx].argmax(axis=0), DECISION_PERIOD)
            qslot = (start + np.minimum(k + 1, DECISION_PERIOD)) % _RING
            pslot = (start + k) % _RING
            obs = np.empty((idx.size, 8), _F32)
            obs[:, 0] = self._qh[qslot, 3, idx]
            obs[:, 1] = self._qh[qslot, 1, idx]
            np.multiply(self._pvh[pslot, :, :, idx].reshape(idx.size, 6), self._obs_scale, out=obs[:, 2:8])
            self._terminal = TerminalSteps(
                obs=[obs],
                reward=np.where(fell_idx, FALL_REWARD, BALANCED_REWARD).astype(_F32),
                agent_id=self._agent_id[idx].copy(),
                interrupted=~fell_idx,
            )
            reward[idx] = 0.0
            self._reset_areas(idx)
        else:
            self._terminal = self._empty_terminal()
        self._decision = DecisionSteps(obs=[self._observe(end)], reward=reward, agent_id=self._agent_id)

    def _observe(self, slot: int) -> np.ndarray:
        obs = np.empty((self._n, 8), _F32)
        np.copyto(obs[:, 0:2], self._qh[slot, 3:0:-2].T)  # q.z, q.x
        np.multiply(self._pvh[slot].reshape(6, self._n).T, self._obs_scale, out=obs[:, 2:8])
        return obs

    def _reset_areas(self, idx: np.ndarray) -> None:
        """Ball3DAgent.OnEpisodeBegin for the given areas (and SetResetParameters)."""
        m = idx.size
        u = self._rng.uniform(_RESET_LOW, _RESET_HIGH, size=(m, 4)).T
        # Identity, then Rotate(x, U(-10, 10)), then Rotate(z, U(-10, 10)), both local.
        q = _hamilton(_quaternion(0, np.radians(u[0])), _quaternion(2, np.radians(u[1])))
        s = self._slot
        self._qh[s][:, idx] = [q[0], q[1], -q[2], q[3]]
        self._rc[:, :, idx] = _rotation_columns(q)
        pv = self._pvh[s]
        pv[0][:, idx] = [u[2], np.full(m, 4.0), u[3]]
        pv[1][:, idx] = 0.0
        self._contact[idx] = 0.0
        self._steps[idx] = 0
        mass, scale = self._params["mass"], self._params["scale"]
        radius = 0.5 * scale
        hh = (HALF_SIZE + radius) / 2
        self._mass[idx] = mass
        self._radius[idx] = radius
        self._hh[idx] = hh
        self._h3[1, idx] = hh
        self._y[3, 1, idx] = -hh


# [half/full, 1, 1]: radians per unit of clipped action (az = 2 * a degrees).
_ANGLE_SCALE = np.array([math.radians(DEG_PER_ACTION) / 2, math.radians(DEG_PER_ACTION)], _F32)[:, None, None]
# The face's normal speed is az*lx - ax*lz; the ang rows hold its negative terms (-az, +ax).
_ANG_SIGN = np.array([-1.0, 1.0], _F32)[:, None]
_NEG_POS = np.array([-1.0, 1.0], _F32)[:, None]
_POS_NEG = np.array([1.0, -1.0], _F32)[:, None]
# Reset draws per area: x tilt, z tilt (degrees), ball x, ball z (metres).
_RESET_LOW = np.array([-10.0, -10.0, -1.5, -1.5])
_RESET_HIGH = np.array([10.0, 10.0, 1.5, 1.5])
