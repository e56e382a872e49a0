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
from typing import TYPE_CHECKING

import numpy as np

from mlx.envs.api import (
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

if TYPE_CHECKING:
    from mlx.envs.native.visual3dball import Renderer
    from mlx.params.samplers import AreaSampler

BEHAVIOR_NAME = "3DBall"
DT = 0.02
DECISION_PERIOD = 5
MAX_STEP = 5000
MAX_DECISIONS = MAX_STEP // DECISION_PERIOD
HALF_SIZE = 2.5  # half the platform's width; also the top face's height above the platform centre
TILT_GATE = 0.25  # Ball3DAgent rotates only while sign(angle) * q.z (q.x) stays below this
DEG_PER_ACTION = 2.0  # degrees of rotation per physics step at |action| = 1
ROLLING_FACTOR = 5.0 / 7.0  # a solid sphere rolling without slipping, relative to sliding
BALANCED_REWARD = 0.1
FALL_REWARD = -1.0
DEFAULT_PARAMETERS = {"mass": 1.0, "scale": 1.0, "gravity": 9.81}
RENDER_SIZE = 168  # render(): pictures for people, twice Visual3DBall's 84-pixel camera

_F32 = np.float32
# Ring of state slots: a decision uses DECISION_PERIOD + 1 consecutive slots (its start state and the
# state after each sub-step); consecutive decisions share a slot, so two decisions fill the ring.
_RING = 2 * DECISION_PERIOD
_RENORM_EVERY = 16  # decisions between re-deriving the rotation state from the unit quaternion
# Up to this many areas the per-sub-step rotation coefficients are stored expanded to the full
# shape of the arrays they multiply: broadcasting costs more per call than the extra rows at
# small batches, and the reverse at large ones.
_EXPANDED_MAX_AREAS = 256


def _rotation_columns(q: np.ndarray, out: np.ndarray) -> None:
    """Rotation matrix columns [column, xyz, n] of unit quaternions q stored as rows (w, x, -y, z).

    Unity's q*v: column j is the image of axis j. Vectorised over areas; used for batches of new
    episodes, the periodic renormalisation and debug_set_state.
    """
    w, x, ny, z = q
    sq = q * q  # w^2, x^2, y^2, z^2
    out[0, 0] = sq[2] + sq[3]
    out[1, 1] = sq[1] + sq[3]
    out[2, 2] = sq[1] + sq[2]
    out[[0, 1, 2], [0, 1, 2]] *= -2.0
    out[[0, 1, 2], [0, 1, 2]] += 1.0
    xy, wz, xz, wy, yz, wx = -x * ny, w * z, x * z, -w * ny, -ny * z, w * x
    out[0, 1], out[1, 0] = xy + wz, xy - wz
    out[0, 2], out[2, 0] = xz - wy, xz + wy
    out[1, 2], out[2, 1] = yz + wx, yz - wx
    out[0, 1:] *= 2.0
    out[1, 0::2] *= 2.0
    out[2, :2] *= 2.0


class Ball3DEnv(BaseEnv):
    """``num_areas`` independent 3DBall areas, one agent each (agent id = area index), behaviour 3DBall."""

    def __init__(self, num_areas: int = 12, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        n = int(num_areas)
        if n < 1:
            raise EnvError(f"3DBall needs num_areas >= 1, got {num_areas}")
        self._n = n
        self._params = EnvParameters(defaults=dict(DEFAULT_PARAMETERS), values=dict(parameters or {}))
        self._rng = np.random.default_rng(seed)
        self._spec = BehaviorSpec(
            observation_specs=(ObservationSpec(shape=(8,), name="VectorSensor"),),
            action_spec=ActionSpec(continuous_size=2),
        )
        self._agent_id = np.arange(n, dtype=np.int32)
        self._agent_id.flags.writeable = False
        self._started = False
        self._have_actions = False  # set_actions was called since the last step
        self._decision: DecisionSteps | None = None
        self._terminal = self._empty_terminal()
        self._terminal_q = np.zeros((0, 4), _F32)  # rows (w, x, -y, z) of the last terminal observations

        # --- state -------------------------------------------------------------------------------
        # Platform rotation ring, rows (w, x, -y, z): with that order and sign both local rotations
        # are "q c + (a reversed view of q) * (signed s)" with a broadcastable sign pattern.
        self._qh = np.zeros((_RING, 4, n), _F32)
        # Ball position and velocity ring (world frame, velocity in m per physics step):
        # [slot, position/velocity, xyz, area].
        self._pvh = np.zeros((_RING, 2, 3, n), _F32)
        # Rotation matrix columns (local x, normal n, local z, in world coordinates): [column, xyz, n].
        self._rc = np.zeros((3, 3, n), _F32)
        self._contact = np.zeros(n, bool)  # the ball touched the face on the last physics step
        self._steps = np.zeros(n, np.int32)  # decisions taken in the current episode
        self._slot = 0  # ring slot of the current state
        self._since_renorm = 0
        self._mass = np.ones(n, _F32)  # recorded for completeness: no effect on this dynamics
        # Contact box in platform coordinates: |lx| < 2.5, |h - hh| < hh, |lz| < 2.5 with
        # hh = (2.5 + r) / 2, i.e. 0 < h < 2.5 + r.
        self._h3 = np.full((3, n), HALF_SIZE, _F32)
        # [4, 3, n]: rows 0..2 receive R^T p term by term, row 3 holds minus the box centre, so one
        # sum over rows gives the ball's platform coordinates relative to the box centre.
        self._y = np.zeros((4, 3, n), _F32)
        self._stale = np.ones(n, bool)  # areas whose ball parameters predate the current ones
        self._any_stale = True
        self._g = np.zeros(n, _F32)
        self._g_roll = np.zeros(n, _F32)
        self._set_gravity(self._params["gravity"])
        # New-episode states drawn ahead in batches: rows q (4), rotation columns (9), p and v (6).
        self._pool = np.zeros((19, max(64, n)), _F32)
        self._pool_next = self._pool.shape[1]

        # --- per-decision rotation coefficients -------------------------------------------------
        # Per axis (z, x) and area, four blocks: c - 1 and C - 1 (cosine of the half and full angle
        # minus 1), then the signed sines multiplying the swapped members of the quaternion pairs
        # (half angle) and of the matrix column pairs (full angle). _dcoef is computed per decision;
        # per sub-step _ecoef = identity + gate * _dcoef. Compact blocks hold 1, 1, 2, 2 rows and
        # are broadcast; expanded ones hold the full shapes of what they multiply.
        self._expanded = n <= _EXPANDED_MAX_AREAS
        widths = (4, 6, 4, 6) if self._expanded else (1, 1, 2, 2)
        rows = sum(widths)
        self._blocks = [slice(sum(widths[:i]), sum(widths[: i + 1])) for i in range(4)]
        self._dcoef = np.zeros((2, rows, n), _F32)
        self._ecoef = np.zeros((2, rows, n), _F32)
        self._ones = np.ones((widths[0] + widths[1], n), _F32)
        # Quaternion rows [[w, x], [-y, z]]: about z the pairs (w, z), (x, -y) are its reverse, the
        # new side-0 members get -s and side-1 ones +s; about x the pairs (w, x), (-y, z) are its
        # pair-swapped view, -s on the first column and +s on the second. Matrix columns: (x, n)
        # about z and (n, z) about x both get +S on side 0 and -S on side 1; the x block is stored
        # side 1 first, so that its first row after the z block's side-0 rows holds, per axis,
        # -S_z and +S_x: the gated terms of minus the face's normal speed, -S_z lx + S_x lz.
        sq = [[-1, -1, 1, 1], [-1, 1, -1, 1]] if self._expanded else [[-1, 1], [-1, 1]]
        sv = [[1, 1, 1, -1, -1, -1], [-1, -1, -1, 1, 1, 1]] if self._expanded else [[1, -1], [-1, 1]]
        self._sq_sign = np.array(sq, _F32)[:, :, None]
        self._sv_sign = 2 * np.array(sv, _F32)[:, :, None]  # times s*c = S/2
        self._one_bound = np.ones((2, n), _F32)
        self._neg_one_bound = -self._one_bound
        self._sign = np.zeros((2, n), _F32)  # sign of each axis' angle: the gate is sign*q < 0.25
        self._clipped = np.zeros((2, n), _F32)
        self._trig = np.zeros((5, 2, n), _F32)  # half angle, sin, cos, s*c, -2 s^2

        # --- scratch -------------------------------------------------------------------------------
        self._gate_in = np.zeros(n, _F32)
        self._gate = np.zeros(n, bool)
        self._quarter = np.full(n, TILT_GATE, _F32)
        self._zeros = np.zeros(n, _F32)
        self._tq = np.zeros((2, 2, n), _F32)
        self._tv = np.zeros((2, 3, n), _F32)
        self._gv = np.zeros((3, n), _F32)  # gravity's velocity change this sub-step (x, z rows stay 0)
        self._local = np.zeros((3, n), _F32)
        self._abs = np.zeros((3, n), _F32)
        self._inside = np.zeros((3, n), bool)
        self._pj = np.zeros((2, n), _F32)  # (-penetration, inward relative normal speed) * contact
        self._xn = np.zeros((5, n), _F32)  # terms of (v . n - the face's normal speed)
        self._vrel = np.zeros(n, _F32)
        self._x6 = np.zeros((2, 3, n), _F32)
        self._abs_xz = np.zeros((DECISION_PERIOD, 2, n), _F32)
        self._worst = np.zeros((DECISION_PERIOD, n), _F32)
        self._low = np.zeros((DECISION_PERIOD, n), _F32)
        self._off = np.zeros((DECISION_PERIOD, n), bool)
        self._stage = np.zeros((8, n), _F32)
        self._balanced = np.full(n, BALANCED_REWARD, _F32)
        self._obs_scale = np.array([1, 1, 1, 1 / DT, 1 / DT, 1 / DT], _F32)
        self._obs_scale_col = self._obs_scale[:, None]
        self._build_views()
        self._renderer: Renderer | None = None  # render()'s camera, made on first use

    # ------------------------------------------------------------------------------------------
    # BaseEnv API
    # ------------------------------------------------------------------------------------------

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR_NAME: self._spec}

    @property
    def parameters(self) -> EnvParameters:
        return self._params

    @property
    def num_areas(self) -> int:
        return self._n

    def reset(self) -> None:
        """New episodes in every area; all agents then wait for a decision with reward 0."""
        self._slot = 0
        self._since_renorm = 0
        self._reset_areas(np.arange(self._n))
        self._have_actions = False
        self._started = True
        self._decision = DecisionSteps(
            obs=[self._observe(self._slot)], reward=np.zeros(self._n, _F32), agent_id=self._agent_id
        )
        self._terminal = self._empty_terminal()

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        self._check_behavior(behavior_name)
        cont = np.asarray(actions.continuous)
        if cont.shape != (self._n, 2):
            raise EnvError(f"3DBall expects continuous actions of shape ({self._n}, 2), got {tuple(cont.shape)}")
        disc = np.asarray(actions.discrete)
        if disc.size:
            raise EnvError(f"3DBall has no discrete actions, got shape {tuple(disc.shape)}")
        # Copied (transposed to [axis, area]) and clipped now: the caller may reuse its buffer.
        clipped = self._clipped
        np.copyto(clipped, cont.T, casting="same_kind")
        np.fmax(clipped, self._neg_one_bound, clipped)  # np.clip costs 3x more; NaN becomes -1
        np.fmin(clipped, self._one_bound, clipped)
        self._have_actions = True

    def step(self) -> None:
        """One decision: 5 physics steps with the last actions (zeros if none were set since)."""
        if not self._started:
            raise EnvError("call reset() before step()")
        self._prepare_actions()
        start = self._slot
        end = (start + DECISION_PERIOD) % _RING
        self._slot = end
        self._simulate(self._views[start // DECISION_PERIOD])
        self._finish(start, end)

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        self._check_behavior(behavior_name)
        if self._decision is None:
            raise EnvError("call reset() before get_steps()")
        return self._decision, self._terminal

    def set_environment_parameter(self, key: str, value: float) -> None:
        """mass and scale apply from each area's next episode; gravity at once (Unity's Physics.gravity)."""
        self._params.set(key, value)
        if key == "gravity":
            self._set_gravity(self._params["gravity"])
        else:
            self._stale.fill(True)
            self._any_stale = True

    def set_environment_sampler(self, key: str, sampler: AreaSampler) -> bool:
        """mass and scale are drawn per area at each episode start; gravity is global (one value at a time)."""
        if key == "gravity":
            self._params.check(key, 0.0)
            return False
        self._params.set_sampler(key, sampler)
        return True

    def close(self) -> None:
        self._started = False

    def platform_rotations(self, terminal: bool = False) -> np.ndarray:
        """The platforms' rotations as unit quaternions (x, y, z, w), Unity's order: [n, 4] now, or [m, 4]
        at the terminal observations of the last TerminalSteps. The observation holds only q.z and q.x; a
        camera (Visual3DBall) needs the whole rotation."""
        if terminal:
            q = self._terminal_q if len(self._terminal) else np.zeros((0, 4), _F32)
        else:
            q = self._qh[self._slot].T
        w, x, ny, z = q.T
        return np.stack([x, -ny, z, w], axis=1)

    def render(self, areas: slice | Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Pictures [m, 168, 168, 3] of areas through Visual3DBall's camera (the same view and drawing, at
        twice its sensor's resolution): the platform and the ball of each area's current episode."""
        from mlx.envs.native.visual3dball import Renderer

        if self._renderer is None:
            self._renderer = Renderer(RENDER_SIZE)
        idx = np.arange(self._n)[slice(None) if areas is None else areas]
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
        if not self._started:
            raise EnvError("call reset() before debug_set_state()")
        idx = np.arange(self._n)[areas]
        s = self._slot
        if rotation is not None:
            x, y, z, w = np.broadcast_to(np.asarray(rotation, np.float64), (idx.size, 4)).T
            q = np.array([w, x, -y, z]) / np.sqrt(w * w + x * x + y * y + z * z)
            self._qh[s][:, idx] = q
            rc = np.empty((3, 3, idx.size), _F32)
            _rotation_columns(q.astype(_F32), rc)
            self._rc[:, :, idx] = rc
        if ball_position is not None:
            self._pvh[s, 0][:, idx] = np.broadcast_to(np.asarray(ball_position), (idx.size, 3)).T
        if ball_velocity is not None:
            self._pvh[s, 1][:, idx] = np.broadcast_to(np.asarray(ball_velocity), (idx.size, 3)).T * DT
        self._contact[idx] = False
        if self._decision is not None:
            self._decision.obs = [self._observe(s)]

    # ------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------

    def _check_behavior(self, name: str) -> None:
        if name != BEHAVIOR_NAME:
            raise EnvError(f"unknown behavior '{name}'; this env has: {BEHAVIOR_NAME}")

    @staticmethod
    def _empty_terminal() -> TerminalSteps:
        return TerminalSteps(
            obs=[np.zeros((0, 8), _F32)],
            reward=np.zeros(0, _F32),
            agent_id=np.zeros(0, np.int32),
            interrupted=np.zeros(0, bool),
        )

    def _set_gravity(self, g: float) -> None:
        # Velocities are in m per physics step, so gravity changes them by g*dt^2 per step.
        self._g.fill(g * DT * DT)
        self._g_roll.fill((1.0 - ROLLING_FACTOR) * g * DT * DT)

    def _build_views(self) -> None:
        """Precompute every array view the sub-step loop uses (creating a view costs ~0.1 us)."""
        n = self._n
        e, rc, y, local, pj, xn = self._ecoef, self._rc, self._y, self._local, self._pj, self._xn
        inside = self._inside
        bc, bcc, bq, bv = self._blocks
        one = slice(0, bcc.stop)
        if self._expanded:

            def coef(axis: int) -> tuple[np.ndarray, ...]:
                sv = e[axis, bv].reshape(2, 3, n)
                return (
                    e[axis, bc].reshape(2, 2, n),
                    e[axis, bcc].reshape(2, 3, n),
                    e[axis, bq].reshape(2, 2, n),
                    sv if axis == 0 else sv[::-1],
                )

            z_views, x_views = coef(0), coef(1)
            face_row = bv.start + 3
        else:
            z_views = (e[0, 0], e[0, 1], e[0, bq, None, :], e[0, bv, None, :])
            x_views = (e[1, 0], e[1, 1], e[1, None, bq, :], e[1, bv][::-1, None, :])
            face_row = bv.start + 1
        self._coef_views = (
            self._dcoef[0],
            self._dcoef[1],
            self._sign[0],
            self._sign[1],
            e[0],
            e[0, one],
            *z_views,
            e[1],
            e[1, one],
            *x_views,
        )
        self._phys_views = (
            rc[0:2],
            rc[1::-1],
            rc[1:3],
            rc[2:0:-1],
            rc.transpose(1, 0, 2),
            rc[1],
            self._gv[1],
            y[0:3],
            y[0],
            y[1],
            y[2],
            y[3],
            local[1],
            local[0::2],
            pj[0],
            pj[1],
            pj[:, None, :],
            xn[0:3],
            xn[3:5],
            e[:, face_row],
            y[3, 1],
            inside[0],
            inside[1],
            inside[2],
        )
        self._views: list[list[tuple[np.ndarray, ...]]] = []
        for half in range(2):
            per = []
            for k in range(DECISION_PERIOD):
                a = half * DECISION_PERIOD + k
                b = (a + 1) % _RING
                qa, qb = self._qh[a], self._qh[b]
                qa2, qb2 = qa.reshape(2, 2, n), qb.reshape(2, 2, n)
                pva, pvb = self._pvh[a], self._pvh[b]
                per.append(
                    (
                        qa[3],
                        qa2[::-1, ::-1],
                        qa2,
                        qb[1],
                        qb2,
                        qb2[:, ::-1],
                        pva[0],
                        pva[1],
                        pvb,
                        pvb[0],
                        pvb[1],
                        pvb[0][:, None, :],
                    )
                )
            self._views.append(per)
        # Terminal observation slots for a fall on sub-step k (k = DECISION_PERIOD: no fall): the
        # rotation after that sub-step's rotate, the ball before its physics.
        ks = np.arange(DECISION_PERIOD + 1)
        self._term_qslot = [(h * DECISION_PERIOD + np.minimum(ks + 1, DECISION_PERIOD)) % _RING for h in range(2)]
        self._term_pslot = [(h * DECISION_PERIOD + ks) % _RING for h in range(2)]

    def _prepare_actions(self) -> None:
        """Per-decision rotation coefficients (minus the identity) and gate signs from the actions."""
        clipped = self._clipped
        if not self._have_actions:
            clipped.fill(0.0)
        self._have_actions = False
        np.sign(clipped, out=self._sign)
        trig = self._trig
        half, s, c, sc, cm2 = trig
        np.multiply(clipped, math.radians(DEG_PER_ACTION) / 2, out=half)  # az / 2 = a0 degrees
        np.sin(half, out=s)
        np.cos(half, out=c)
        np.multiply(s, c, out=sc)  # sin(full) / 2
        np.multiply(s, s, out=cm2)
        np.multiply(cm2, -2.0, out=cm2)  # cos(full) - 1
        np.subtract(c, 1.0, out=c)  # cos(half) - 1
        d = self._dcoef
        bc, bcc, bq, bv = self._blocks
        np.copyto(d[:, bc], c[:, None, :])
        np.copyto(d[:, bcc], cm2[:, None, :])
        np.multiply(s[:, None, :], self._sq_sign, out=d[:, bq])
        np.multiply(sc[:, None, :], self._sv_sign, out=d[:, bv])

    def _simulate(self, views: list[tuple[np.ndarray, ...]]) -> None:
        """The decision's physics steps for every area at once: gated rotations, gravity, contact.

        Outputs are passed positionally and constants as preallocated arrays: at a dozen areas
        numpy's per-call overhead is the cost, and scalar operands or keyword arguments add to it.
        """
        mul, add, sub, less = np.multiply, np.add, np.subtract, np.less
        reduce_add, absolute, fmin, both = np.add.reduce, np.absolute, np.fmin, np.logical_and
        (d_z, d_x, sign_z, sign_x, e_z, ez_one, ez_c, ez_cc, ez_sq, ez_sv, e_x, ex_one, ex_c, ex_cc, ex_sq, ex_sv) = (
            self._coef_views
        )
        (
            rc_z,
            rc_z_swap,
            rc_x,
            rc_x_swap,
            rc_t,
            normal,
            gv1,
            y3,
            y0,
            y1,
            y2,
            y_centre,
            local_h,
            local_xz,
            pj0,
            pj1,
            pj_b,
            xn3,
            xn2,
            e_ang,
            neg_hh,
            in_x,
            in_h,
            in_z,
        ) = self._phys_views
        gate_in, gate, tq, tv, gv = self._gate_in, self._gate, self._tq, self._tv, self._gv
        local, absl, inside, contact = self._local, self._abs, self._inside, self._contact
        h3, pj, xn, vrel, x6 = self._h3, self._pj, self._xn, self._vrel, self._x6
        quarter, ones, zeros, g, g_roll = self._quarter, self._ones, self._zeros, self._g, self._g_roll
        for qa_z, qa_rev, qa2, qb_x, qb2, qb_swap, pa, va, pvb, pb, vb, pb_b in views:
            # Rotate about local z where Unity would (sign(az) * q.z < 0.25):
            # q <- q c + reversed(q) (-s, -s, +s, +s); matrix columns (x, n) <- (C x + S n, C n - S x).
            mul(qa_z, sign_z, gate_in)
            less(gate_in, quarter, gate)
            mul(d_z, gate, e_z)
            add(ez_one, ones, ez_one)
            mul(qa_rev, ez_sq, tq)
            mul(qa2, ez_c, qb2)
            add(qb2, tq, qb2)
            mul(rc_z_swap, ez_sv, tv)
            mul(rc_z, ez_cc, rc_z)
            add(rc_z, tv, rc_z)
            # Then about local x, gated by the new q.x:
            # q <- q c + pair-swapped(q) (-s, +s, -s, +s); columns (n, z) <- (C n + S z, C z - S n).
            mul(qb_x, sign_x, gate_in)
            less(gate_in, quarter, gate)
            mul(d_x, gate, e_x)
            add(ex_one, ones, ex_one)
            mul(qb_swap, ex_sq, tq)
            mul(qb2, ex_c, qb2)
            add(qb2, tq, qb2)
            mul(rc_x_swap, ex_sv, tv)
            mul(rc_x, ex_cc, rc_x)
            add(rc_x, tv, rc_x)

            # Gravity along -y (5/7 of it while rolling), then semi-implicit Euler into the next slot.
            mul(contact, g_roll, gv1)
            sub(gv1, g, gv1)
            add(va, gv, vb)
            add(pa, vb, pb)

            # Ball centre in platform coordinates relative to the contact box centre: (lx, h - hh, lz).
            mul(rc_t, pb_b, y3)
            add(y0, y1, local)
            add(local, y2, local)
            add(local, y_centre, local)
            absolute(local, absl)
            less(absl, h3, inside)
            both(in_x, in_h, contact)
            both(contact, in_z, contact)

            # Contact: push out to h = 2.5 + r along n, cancel the inward speed relative to the face.
            add(local_h, neg_hh, pj0)  # h - (2.5 + r)
            mul(normal, vb, xn3)
            mul(e_ang, local_xz, xn2)  # minus the face's normal speed: -S_z lx + S_x lz
            reduce_add(xn, 0, None, vrel)
            fmin(vrel, zeros, pj1)
            mul(pj, contact, pj)
            mul(normal, pj_b, x6)
            sub(pvb, x6, pvb)

    def _finish(self, start: int, end: int) -> None:
        """Fall check over the decision's sub-steps, rewards, terminal batch, resets, observations."""
        self._since_renorm += 1
        if self._since_renorm >= _RENORM_EVERY:
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
            self._terminal = TerminalSteps(
                obs=[obs],
                reward=np.where(fell_idx, _F32(FALL_REWARD), _F32(BALANCED_REWARD)),
                agent_id=idx.astype(np.int32),
                interrupted=~fell_idx,
            )
            reward[idx] = 0.0
            self._reset_areas(idx)
        elif len(self._terminal):
            self._terminal = self._empty_terminal()
        self._decision = DecisionSteps(obs=[self._observe(end)], reward=reward, agent_id=self._agent_id)

    def _observe(self, slot: int) -> np.ndarray:
        """A fresh C-ordered [n, 8] observation batch (built row-wise, then transposed once)."""
        stage = self._stage
        np.copyto(stage[0:2], self._qh[slot, 3:0:-2])  # q.z, q.x
        np.multiply(self._pvh[slot].reshape(6, self._n), self._obs_scale_col, stage[2:8])
        obs = np.empty((self._n, 8), _F32)
        np.copyto(obs, stage.T)
        return obs

    def _renormalise(self, slot: int) -> None:
        """Unit quaternion and the rotation matrix re-derived from it (float32 rounding drifts)."""
        self._since_renorm = 0
        q = self._qh[slot]
        q /= np.sqrt(np.add.reduce(q * q, 0))
        _rotation_columns(q, self._rc)

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
        _rotation_columns(q, pool[4:13].reshape(3, 3, size))
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
        self._rc.reshape(9, self._n)[:, idx] = state[4:13]
        self._pvh[s].reshape(6, self._n)[:, idx] = state[13:19]
        self._contact[idx] = False
        self._steps[idx] = 0
        if self._any_stale or self._params.samplers:  # samplers: a fresh draw for every new episode
            hh = (HALF_SIZE + 0.5 * self._params.draw("scale", idx)) / 2
            self._mass[idx] = self._params.draw("mass", idx)
            self._h3[1, idx] = hh
            self._y[3, 1, idx] = -hh
            self._stale[idx] = False
            self._any_stale = bool(self._stale.any())
