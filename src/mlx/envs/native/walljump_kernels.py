"""Compiled kernels of WallJump (mlx.envs.native.walljump): a decision's physics steps and the two ray sensors.

Why: at ML-Agents' scene sizes (tens of areas) WallJump's numpy step is bound by the number of numpy calls
(well over a hundred per physics step, five physics steps a decision, then the sphere casts), each
1-3 us whatever its size, not by arithmetic. These kernels run the same arithmetic as loops compiled by
numba: one call per decision's physics and one per observation of both ray sensors and the vector sensor.

Contract (tests/test_walljump_kernels.py): every float32 operation is the numpy form's, in the same order
(no fused multiply-adds, no float64 intermediates: the constants below are float32, computed as numpy
computes the numpy form's mixed Python-float / float32 expressions, and numba keeps float32 arithmetic
float32), so trajectories equal the numpy form's. Where the numpy form skips a contact or a jump when no
area needs it (adding its zeros elsewhere could turn a -0.0 into +0.0), the kernel takes the same decision
over all areas. The headings' sin and cos stay numpy's (its float32 routines differ from the C library's
in the last bit): the caller passes them. Where numpy's vector and scalar loops disagree with each other
(the sign of a zero that max or min picks between -0.0 and +0.0), the kernels may differ in that sign only.

The constants duplicate walljump's (numba freezes a kernel's globals when it compiles, and its disk cache
is keyed on this file alone, so they live here; the tests check that they equal walljump's). The kernels
are compiled on their first call and cached on disk (``cache=True``), as mlx.envs.native.arena_kernels.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mlx.envs.native.arena_kernels import _depth, _max, _min, _normal, box_skipped, cast_box

F32 = np.float32
ZERO = F32(0.0)
ONE = F32(1.0)
INF = F32(np.inf)
NEG_INF = F32(-np.inf)

# WallJump's constants (mlx.envs.native.walljump), as Python floats.
DT = 0.02
GRAVITY = 9.81 * 2.75
RUN_SPEED = 3.0
JUMP_HEIGHT = 2.75
JUMP_TIME = 0.2
JUMP_GAIN = 777.0 * DT
JUMP_MAX_CHANGE = 10.0
FALLING_FORCE = 111.0
STEP_PENALTY = -0.0005
AGENT_HALF = 0.5
AGENT_MASS, AGENT_DRAG = 25.0, 2.0
FRICTION = 0.6
BLOCK_HALF = 1.5
BLOCK_Y, BLOCK_HALF_Y = 1.5, 1.0
BLOCK_MASS, BLOCK_DRAG = 10.0, 1.0
GROUND_TOP = 0.45
GROUND = (-10.5, -14.5, 10.5, 6.5)
GROUND_ORIGIN_Z = -4.0
WALL_Z, WALL_HALF = -1.98, (10.0, 0.75)
GOAL_CENTER, GOAL_HALF, GOAL_Y = (6.37, 2.93), (2.0, 2.0), (0.49, 5.49)
EPS = 1e-4
CAST_RADIUS, RAY_LENGTH = 0.5, 20.0
OFFSET_START, OFFSET_END = 2.5, 5.0
TOUCH_DISTANCE = 0.02  # mlx.envs.native.arena.TOUCH_DISTANCE
NUM_TAGS = 3  # wall, goal, block

# The float32 values the numpy form computes with (a Python float meeting a float32 becomes float32 first).
_R = F32(AGENT_HALF)
_R2 = _R * _R
_EPS = F32(EPS)
_TOP_SCALE = F32(0.5)  # wall height -> its top
_G_DT = F32(GRAVITY * DT)
_FALL_DT = F32((GRAVITY + FALLING_FORCE) * DT)
_PENALTY = F32(STEP_PENALTY)
_RUN = F32(RUN_SPEED)
_GAIN = F32(JUMP_GAIN)
_JUMP_HEIGHT = F32(JUMP_HEIGHT)
_JUMP_TIME = F32(JUMP_TIME)
_MAX_CHANGE = F32(JUMP_MAX_CHANGE)
_DIST_FLOOR = F32(1e-6)
_SPEED_FLOOR = F32(1e-9)
_DT = F32(DT)
_AGENT_DAMP = F32(1.0 - AGENT_DRAG * DT)
_BLOCK_DAMP = F32(1.0 - BLOCK_DRAG * DT)
_FRICTION_DV = F32(FRICTION * GRAVITY * DT)
_SIDE_SCALE_AIR = F32(0.5)
_BLOCK_TOP = F32(BLOCK_Y + BLOCK_HALF_Y)
_BLOCK_BOTTOM = F32(BLOCK_Y - BLOCK_HALF_Y)
_BLOCK_TOP_EPS = _BLOCK_TOP - _EPS
_BLOCK_HALF = F32(BLOCK_HALF)
_W_AGENT = 1.0 / AGENT_MASS
_W_BLOCK = 1.0 / BLOCK_MASS
_K_PAIR = F32(1.0 / (_W_AGENT + _W_BLOCK))
_WA = F32(_W_AGENT)
_WB = F32(_W_BLOCK)
_WALL_X = F32(0.0)  # the wall's centre
_WALL_Z = F32(WALL_Z)
_WALL_HX = F32(WALL_HALF[0])
_WALL_HZ = F32(WALL_HALF[1])
_WALL_BLOCK_HX = _WALL_HX + _BLOCK_HALF
_WALL_BLOCK_HZ = _WALL_HZ + _BLOCK_HALF
_GROUND_TOP = F32(GROUND_TOP)
_GX0, _GZ0, _GX1, _GZ1 = (F32(v) for v in GROUND)
_SUPPORT_X0, _SUPPORT_Z0 = _GX0 - _R, _GZ0 - _R  # support: the agent's circle over the ground
_SUPPORT_X1, _SUPPORT_Z1 = _GX1 + _R, _GZ1 + _R
_LARGE_R = F32(0.475)  # the large ground check's box
_LARGE_R2 = _LARGE_R * _LARGE_R
_LARGE_X0, _LARGE_Z0 = _GX0 - _LARGE_R, _GZ0 - _LARGE_R
_LARGE_X1, _LARGE_Z1 = _GX1 + _LARGE_R, _GZ1 + _LARGE_R
_LARGE_BELOW = F32(0.55)
_LARGE_ABOVE = F32(0.45)
_RAY_DROP = F32(0.05)  # the small ground check's ray starts this far under the centre
_RAY_REACH = ONE
_GOAL_X, _GOAL_Z = F32(GOAL_CENTER[0]), F32(GOAL_CENTER[1])
_GOAL_RX, _GOAL_RZ = F32(GOAL_HALF[0]) + _R, F32(GOAL_HALF[1]) + _R
_GOAL_HX, _GOAL_HZ = F32(GOAL_HALF[0]), F32(GOAL_HALF[1])
_GOAL_Y0, _GOAL_Y1 = F32(GOAL_Y[0]), F32(GOAL_Y[1])
_CAST_R = F32(CAST_RADIUS)
_CAST_R2 = _CAST_R * _CAST_R
_TOUCH = F32(TOUCH_DISTANCE)
_TINY = F32(1e-12)  # mlx.envs.native.contact._TINY
_OFFSET_START = F32(OFFSET_START)
_SLOPE = F32((OFFSET_END - OFFSET_START) / RAY_LENGTH)
_LENGTH = F32(RAY_LENGTH)
_VECTOR_SCALE = F32(20.0)
_ORIGIN_Z = F32(GROUND_ORIGIN_Z)


@njit(cache=True)
def physics(
    sin_h,  # [steps, n]: sin of each physics step's heading (before its turn), numpy's
    cos_h,
    pos,  # [3, n]
    vel,  # [3, n]
    jump_left,  # [n]
    jump_start,  # [n]
    resting,  # [n] bool
    block,  # [2, n]
    block_vel,  # [2, n]
    wall_height,  # [n]
    forward,  # [n] commands
    side,
    jump,  # [n] bool
    block_gap2,  # [n] cached geometry (_measure, _ground_check), updated in place
    wall_gap2,
    below,
    small,  # [n] bool
    outcome,  # [n] out: +1 goal, -1 fall, 0 running
    penalty,  # [n] out: the decision's step penalties
    reward,  # [n] out
    ended,  # [n] bool out
):
    """WallJumpEnv._advance: ``steps`` physics steps (_physics_step, then _check_outcomes) for every area,
    phase by phase over all areas where the numpy form decides for all of them at once."""
    steps = sin_h.shape[0]
    n = pos.shape[1]
    dir_x = np.empty(n, np.float32)
    dir_z = np.empty(n, np.float32)
    jumping = np.empty(n, np.bool_)
    large = np.empty(n, np.bool_)
    bottom_before = np.empty(n, np.float32)
    for a in range(n):
        outcome[a] = ZERO
        penalty[a] = ZERO
    for s in range(steps):
        # MoveAgent: the step penalty, the large ground check, the move direction, jump starts
        any_jump = False
        for a in range(n):
            running = outcome[a] == ZERO
            penalty[a] += _PENALTY if running else ZERO
            x = pos[0, a]
            y = pos[1, a]
            z = pos[2, a]
            lo = y - _LARGE_BELOW
            hi = y + _LARGE_ABOVE
            ground = lo < _GROUND_TOP and x > _LARGE_X0 and x < _LARGE_X1 and z > _LARGE_Z0 and z < _LARGE_Z1
            on_block = block_gap2[a] < _LARGE_R2 and lo < _BLOCK_TOP and hi > _BLOCK_BOTTOM
            top = wall_height[a] * _TOP_SCALE
            on_wall = wall_gap2[a] < _LARGE_R2 and lo < top and hi > -top
            lg = ground or on_block or on_wall
            large[a] = lg
            sh = sin_h[s, a]
            ch = cos_h[s, a]
            scale = ONE if lg else _SIDE_SCALE_AIR
            f = (ZERO if side[a] != ZERO else forward[a]) * scale
            r = side[a] * scale
            dir_x[a] = f * sh + r * ch
            dir_z[a] = f * ch - r * sh
            if jump[a] and jump_left[a] <= ZERO and small[a]:
                jump_left[a] = _JUMP_TIME
                jump_start[a] = y
            jumping[a] = jump_left[a] > ZERO
            any_jump = any_jump or jumping[a]
        # the jump (Vector3.MoveTowards), forces, damping, ground friction, integration
        any_pair = False
        for a in range(n):
            if any_jump:
                tx = _GAIN * dir_x[a] - vel[0, a]
                ty = _GAIN * (jump_start[a] + _JUMP_HEIGHT - pos[1, a]) - vel[1, a]
                tz = _GAIN * dir_z[a] - vel[2, a]
                dist = np.sqrt(tx * tx + ty * ty + tz * tz)
                k = _min(ONE, _MAX_CHANGE / _max(dist, _DIST_FLOOR)) if jumping[a] else ZERO
                vel[0, a] += tx * k
                vel[1, a] += ty * k
                vel[2, a] += tz * k
            vel[0, a] += _RUN * dir_x[a]
            vel[2, a] += _RUN * dir_z[a]
            vel[1, a] -= _G_DT if (jumping[a] or large[a]) else _FALL_DT
            jump_left[a] -= _DT
            for c in range(3):
                vel[c, a] *= _AGENT_DAMP
            block_vel[0, a] *= _BLOCK_DAMP
            block_vel[1, a] *= _BLOCK_DAMP
            if resting[a] and not jumping[a]:  # elsewhere the numpy form multiplies by 1: no change
                speed = np.hypot(vel[0, a], vel[2, a])
                keep = _max(ONE - _FRICTION_DV / _max(speed, _SPEED_FLOOR), ZERO)
                vel[0, a] *= keep
                vel[2, a] *= keep
            bottom_before[a] = pos[1, a] - _R
            for c in range(3):
                pos[c, a] += vel[c, a] * _DT
            block[0, a] += block_vel[0, a] * _DT
            block[1, a] += block_vel[1, a] * _DT
            # agent-block contact?
            bottom = pos[1, a] - _R
            if not any_pair and bottom < _BLOCK_TOP and bottom_before[a] < _BLOCK_TOP_EPS:
                pen = _depth(pos[0, a] - block[0, a], pos[2, a] - block[1, a], _BLOCK_HALF, _BLOCK_HALF, _R)[0]
                any_pair = pen > ZERO
        # _contacts: agent-block (masses shared)
        any_wall = False
        any_block_wall = False
        for a in range(n):
            bottom = pos[1, a] - _R
            if any_pair:
                beside = bottom < _BLOCK_TOP and bottom_before[a] < _BLOCK_TOP_EPS
                d0 = pos[0, a] - block[0, a]
                d1 = pos[2, a] - block[1, a]
                pen, g0, g1, ea0, ea1, dist, gmax = _depth(d0, d1, _BLOCK_HALF, _BLOCK_HALF, _R)
                n0, n1 = _normal(d0, d1, g0, g1, ea0, ea1, dist, gmax)
                hit = beside and pen > ZERO
                p = pen if hit else ZERO
                push0 = n0 * p * _K_PAIR
                push1 = n1 * p * _K_PAIR
                pos[0, a] += push0 * _WA
                pos[2, a] += push1 * _WA
                block[0, a] -= push0 * _WB
                block[1, a] -= push1 * _WB
                vn = (vel[0, a] - block_vel[0, a]) * n0 + (vel[2, a] - block_vel[1, a]) * n1
                j = (_max(-vn, ZERO) if hit else ZERO) * _K_PAIR
                vel[0, a] += n0 * j * _WA
                vel[2, a] += n1 * j * _WA
                block_vel[0, a] -= n0 * j * _WB
                block_vel[1, a] -= n1 * j * _WB
            top = wall_height[a] * _TOP_SCALE
            if not any_wall and bottom < top and bottom_before[a] < top - _EPS:
                pen = _depth(pos[0, a] - _WALL_X, pos[2, a] - _WALL_Z, _WALL_HX, _WALL_HZ, _R)[0]
                any_wall = pen > ZERO
            if not any_block_wall and top > _BLOCK_BOTTOM:
                pen = _depth(block[0, a] - _WALL_X, block[1, a] - _WALL_Z, _WALL_BLOCK_HX, _WALL_BLOCK_HZ, ZERO)[0]
                any_block_wall = pen > ZERO
        # agent-wall and block-wall (static), then _measure, _support, _ground_check, _check_outcomes
        for a in range(n):
            top = wall_height[a] * _TOP_SCALE
            if any_wall:
                bottom = pos[1, a] - _R
                beside = bottom < top and bottom_before[a] < top - _EPS
                d0 = pos[0, a] - _WALL_X
                d1 = pos[2, a] - _WALL_Z
                pen, g0, g1, ea0, ea1, dist, gmax = _depth(d0, d1, _WALL_HX, _WALL_HZ, _R)
                n0, n1 = _normal(d0, d1, g0, g1, ea0, ea1, dist, gmax)
                hit = beside and pen > ZERO
                pos[0, a] += n0 * pen if hit else ZERO
                pos[2, a] += n1 * pen if hit else ZERO
                vn = _min(vel[0, a] * n0 + vel[2, a] * n1, ZERO) if hit else ZERO
                vel[0, a] -= n0 * vn
                vel[2, a] -= n1 * vn
            if any_block_wall:
                d0 = block[0, a] - _WALL_X
                d1 = block[1, a] - _WALL_Z
                pen, g0, g1, ea0, ea1, dist, gmax = _depth(d0, d1, _WALL_BLOCK_HX, _WALL_BLOCK_HZ, ZERO)
                n0, n1 = _normal(d0, d1, g0, g1, ea0, ea1, dist, gmax)
                hit = top > _BLOCK_BOTTOM and pen > ZERO
                p = pen if hit else ZERO
                block[0, a] += n0 * p
                block[1, a] += n1 * p
                vn = _min(block_vel[0, a] * n0 + block_vel[1, a] * n1, ZERO) if hit else ZERO
                block_vel[0, a] -= n0 * vn
                block_vel[1, a] -= n1 * vn
            # _measure
            x = pos[0, a]
            z = pos[2, a]
            ex = _max(abs(x - block[0, a]) - _BLOCK_HALF, ZERO)
            ez = _max(abs(z - block[1, a]) - _BLOCK_HALF, ZERO)
            bg2 = ex * ex + ez * ez
            block_gap2[a] = bg2
            ex = _max(abs(x) - _WALL_HX, ZERO)
            ez = _max(abs(z - _WALL_Z) - _WALL_HZ, ZERO)
            wg2 = ex * ex + ez * ez
            wall_gap2[a] = wg2
            # _support
            on_ground = x > _SUPPORT_X0 and x < _SUPPORT_X1 and z > _SUPPORT_Z0 and z < _SUPPORT_Z1
            support = _GROUND_TOP if on_ground else NEG_INF
            if bg2 < _R2 and bottom_before[a] >= _BLOCK_TOP_EPS:
                support = _max(support, _BLOCK_TOP)
            if wg2 < _R2 and bottom_before[a] >= top - _EPS:
                support = _max(support, top)
            y = pos[1, a]
            low = y - _R <= support + _EPS
            if low:
                y = support + _R
                pos[1, a] = y
                vel[1, a] = _max(vel[1, a], ZERO)
            resting[a] = low
            # _ground_check
            height = y - _RAY_DROP
            over_ground = x >= _GX0 and x <= _GX1 and z >= _GZ0 and z <= _GZ1
            b = _GROUND_TOP if (over_ground and height >= _GROUND_TOP) else NEG_INF
            if bg2 == ZERO and height >= _BLOCK_TOP:
                b = _max(b, _BLOCK_TOP)
            if wg2 == ZERO and height >= top:
                b = _max(b, top)
            below[a] = b
            sm = b >= height - _RAY_REACH
            small[a] = sm
            # _check_outcomes (running: before this physics step)
            if outcome[a] == ZERO:  # running: nothing latched since this step began
                in_goal = abs(x - _GOAL_X) < _GOAL_RX and abs(z - _GOAL_Z) < _GOAL_RZ
                in_goal = in_goal and y - _R < _GOAL_Y1 and y + _R > _GOAL_Y0
                if in_goal and sm:
                    outcome[a] = ONE
                else:
                    bx = block[0, a]
                    bz = block[1, a]
                    block_off = bx < _GX0 or bx > _GX1 or bz < _GZ0 or bz > _GZ1
                    if b == NEG_INF or block_off:
                        outcome[a] = -ONE
    for a in range(n):
        e = outcome[a] != ZERO
        ended[a] = e
        reward[a] = outcome[a] if e else penalty[a]


@njit(cache=True, inline="always")
def _encode(frame, a, base, t, tag):
    """encode_frame for one ray: the one-hot of the nearest hit's tag, the miss flag, the hit fraction."""
    hit = t <= _LENGTH
    for k in range(NUM_TAGS):
        frame[a, base + k] = ONE if (hit and tag == k) else ZERO
    frame[a, base + NUM_TAGS] = ZERO if hit else ONE
    frame[a, base + NUM_TAGS + 1] = t / _LENGTH if hit else ONE


@njit(cache=True)
def perceive(
    d,  # [2, R, m] unit ray directions of the selected areas (numpy's, from their headings)
    cols,  # [m] those areas
    pos,  # [3, n]
    block,  # [2, n]
    wall_height,  # [n]
    small,  # [n] bool
    raised,  # out [m, R * 5]: the OffsetRayPerceptionSensor's frame
    flat,  # out [m, R * 5]: the RayPerceptionSensor's frame
    vector,  # out [m, 4]
):
    """WallJumpEnv._perceive: both sphere casts against the wall, the goal and the block (the nearest hit
    per ray, the first box of equal distances), encoded as encode_frame does, and the vector frame."""
    R = d.shape[1]
    m = cols.shape[0]
    t_flat = np.empty(R, np.float32)
    t_raised = np.empty(R, np.float32)
    tag_flat = np.empty(R, np.int64)
    tag_raised = np.empty(R, np.int64)
    for a in range(m):
        col = cols[a]
        x = pos[0, col]
        y = pos[1, col]
        z = pos[2, col]
        top = wall_height[col] * _TOP_SCALE
        h_start = y + _OFFSET_START
        for ray in range(R):
            t_flat[ray] = INF
            t_raised[ray] = INF
            tag_flat[ray] = 0
            tag_raised[ray] = 0
        for box in range(NUM_TAGS):  # TAGS order: wall, goal, block
            if box == 0:
                cx, cz, hx, hz, y0, y1 = _WALL_X, _WALL_Z, _WALL_HX, _WALL_HZ, -top, top
            elif box == 1:
                cx, cz, hx, hz, y0, y1 = _GOAL_X, _GOAL_Z, _GOAL_HX, _GOAL_HZ, _GOAL_Y0, _GOAL_Y1
            else:
                cx, cz, hx, hz, y0, y1 = (
                    block[0, col],
                    block[1, col],
                    _BLOCK_HALF,
                    _BLOCK_HALF,
                    _BLOCK_BOTTOM,
                    _BLOCK_TOP,
                )
            rel_x = cx - x
            rel_z = cz - z
            # the horizontal sensor: a box within r vertically is a rounded box of radius sqrt(r^2 - gap^2)
            gap = _max(_max(y0 - y, y - y1), ZERO)
            if gap <= _CAST_R:
                grow = np.sqrt(_max(_CAST_R2 - gap * gap, ZERO))
                if not box_skipped(rel_x, rel_z, hx, hz, grow):
                    for ray in range(R):
                        t = cast_box(d[0, ray, a], d[1, ray, a], rel_x, rel_z, hx, hz, grow)
                        if t < t_flat[ray]:
                            t_flat[ray] = t
                            tag_flat[ray] = box
            # the rising sensor: the box grown by r, entered while still below its grown top
            lo = y0 - _CAST_R
            hi = y1 + _CAST_R
            inside = abs(rel_x) < hx + _CAST_R and abs(rel_z) < hz + _CAST_R and h_start <= hi and h_start >= lo
            if inside or box_skipped(rel_x, rel_z, hx, hz, _CAST_R):
                continue
            for ray in range(R):
                t = cast_box(d[0, ray, a], d[1, ray, a], rel_x, rel_z, hx, hz, _CAST_R)
                h_at = h_start + _SLOPE * t
                if h_at <= hi and h_at >= lo and t < t_raised[ray]:
                    t_raised[ray] = t
                    tag_raised[ray] = box
        for ray in range(R):
            base = ray * (NUM_TAGS + 2)
            _encode(raised, a, base, t_raised[ray], tag_raised[ray])
            _encode(flat, a, base, t_flat[ray], tag_flat[ray])
        vector[a, 0] = x / _VECTOR_SCALE
        vector[a, 1] = y / _VECTOR_SCALE
        vector[a, 2] = (z - _ORIGIN_Z) / _VECTOR_SCALE
        vector[a, 3] = ONE if small[col] else ZERO
