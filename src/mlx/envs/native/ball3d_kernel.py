"""The physics kernel of 3DBall: every area's platform and ball through one decision's sub-steps.

mlx.envs.native.ball3d documents the model (rotation gates, rolling, the face contact) and the layout of
the state; this module is its numpy implementation, a fixed sequence of in-place calls on preallocated
arrays and views whatever the number of areas. ``Ball3DKernel`` is mixed into Ball3DEnv, which owns the
episodes, rewards and observations around it.
"""

from __future__ import annotations

import math

import numpy as np

from mlx.envs.native.camera import HALF_SIZE

DT = 0.02
DECISION_PERIOD = 5
TILT_GATE = 0.25  # Ball3DAgent rotates only while sign(angle) * q.z (q.x) stays below this
DEG_PER_ACTION = 2.0  # degrees of rotation per physics step at |action| = 1
ROLLING_FACTOR = 5.0 / 7.0  # a solid sphere rolling without slipping, relative to sliding

_F32 = np.float32
# Ring of state slots: a decision uses DECISION_PERIOD + 1 consecutive slots (its start state and the
# state after each sub-step); consecutive decisions share a slot, so two decisions fill the ring.
RING = 2 * DECISION_PERIOD
RENORM_EVERY = 16  # decisions between re-deriving the rotation state from the unit quaternion
# Up to this many areas the per-sub-step rotation coefficients are stored expanded to the full
# shape of the arrays they multiply: broadcasting costs more per call than the extra rows at
# small batches, and the reverse at large ones.
EXPANDED_MAX_AREAS = 256


def rotation_columns(q: np.ndarray, out: np.ndarray) -> None:
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


class Ball3DKernel:
    """The simulation state of ``n`` 3DBall areas and the per-decision physics (a mixin of Ball3DEnv)."""

    def _init_kernel(self, n: int, gravity: float) -> None:
        # --- state -------------------------------------------------------------------------------
        # Platform rotation ring, rows (w, x, -y, z): with that order and sign both local rotations
        # are "q c + (a reversed view of q) * (signed s)" with a broadcastable sign pattern.
        self._qh = np.zeros((RING, 4, n), _F32)
        # Ball position and velocity ring (world frame, velocity in m per physics step):
        # [slot, position/velocity, xyz, area].
        self._pvh = np.zeros((RING, 2, 3, n), _F32)
        # Rotation matrix columns (local x, normal n, local z, in world coordinates): [column, xyz, n].
        self._rc = np.zeros((3, 3, n), _F32)
        self._contact = np.zeros(n, bool)  # the ball touched the face on the last physics step
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
        self._set_gravity(gravity)
        # New-episode states drawn ahead in batches: rows q (4), rotation columns (9), p and v (6).
        self._pool = np.zeros((19, max(64, n)), _F32)
        self._pool_next = self._pool.shape[1]

        # --- per-decision rotation coefficients -------------------------------------------------
        # Per axis (z, x) and area, four blocks: c - 1 and C - 1 (cosine of the half and full angle
        # minus 1), then the signed sines multiplying the swapped members of the quaternion pairs
        # (half angle) and of the matrix column pairs (full angle). _dcoef is computed per decision;
        # per sub-step _ecoef = identity + gate * _dcoef. Compact blocks hold 1, 1, 2, 2 rows and
        # are broadcast; expanded ones hold the full shapes of what they multiply.
        self._expanded = n <= EXPANDED_MAX_AREAS
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
        self._obs_scale = np.array([1, 1, 1, 1 / DT, 1 / DT, 1 / DT], _F32)
        self._obs_scale_col = self._obs_scale[:, None]
        self._build_views()

    def _set_gravity(self, g: float) -> None:
        # Velocities are in m per physics step, so gravity changes them by g*dt^2 per step.
        self._g.fill(g * DT * DT)
        self._g_roll.fill((1.0 - ROLLING_FACTOR) * g * DT * DT)

    def _build_views(self) -> None:
        """Precompute every array view the sub-step loop uses (creating a view costs ~0.1 us)."""
        n = self.n
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
                b = (a + 1) % RING
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
        self._term_qslot = [(h * DECISION_PERIOD + np.minimum(ks + 1, DECISION_PERIOD)) % RING for h in range(2)]
        self._term_pslot = [(h * DECISION_PERIOD + ks) % RING for h in range(2)]

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

    def _renormalise(self, slot: int) -> None:
        """Unit quaternion and the rotation matrix re-derived from it (float32 rounding drifts)."""
        self._since_renorm = 0
        q = self._qh[slot]
        q /= np.sqrt(np.add.reduce(q * q, 0))
        rotation_columns(q, self._rc)
