"""Compiled kernel of the arena envs' first-person camera (mlx.envs.native.arena_camera.ArenaCamera.render).

Why: the numpy form renders all areas at once with array operations over (areas x prisms x columns) and
(areas x rows x columns), plus a painter's pass per layer; at ML-Agents' scene sizes it is bound by numpy's
per-call cost and by the temporary arrays those calls write (about 0.9 ms per area, 1.6 ms in Pyramids:
most of a visual env's step). This kernel does the same work in one compiled loop per area and column.

Contract (tests/test_camera_kernels.py): the pictures equal the numpy form's, pixel for pixel. Every float32
operation is the numpy form's, in the same order (no fused multiply-adds, no float64 intermediates: the
constants below are float32 and numba keeps float32 arithmetic float32). Transcendental functions (the
columns' ray directions, sin and cos of heading plus column angle; the rows' tangents) stay in numpy,
whose float32 routines differ from the C library's in the last bit: the caller passes them. The painter's
pass is the numpy form's, per column: the prisms the column meets sorted near to far by entry depth, the
first slot first among equal depths (numpy's stable argsort; an insertion sort here), painted far first;
each prism's rows (``v_lo <= v <= v_hi``, the same float32 comparisons) are a run of rows, since the rows'
tangents fall down the image, found by bisection instead of testing every row.

The constants duplicate arena_camera's, the arena's and the ray sensors' (numba freezes a kernel's globals
when it compiles, and its disk cache is keyed on this file alone, so they live here; the tests check that
they equal the originals). The kernel is compiled on its first call and cached on disk (``cache=True``), as
mlx.envs.native.arena_kernels.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mlx.envs.native.arena_kernels import _max, _min

F32 = np.float32
ZERO = F32(0.0)
ONE = F32(1.0)
INF = F32(np.inf)
NEAR = F32(0.3)  # mlx.envs.native.arena_camera.NEAR
WALL_CAP = F32(1e4)  # mlx.envs.native.arena_camera.WALL_CAP: the farthest wall depth drawn
TOUCH = F32(0.02)  # mlx.envs.native.arena.TOUCH_DISTANCE (rays.cast_bounds ignores walls this close)
NEG_TOUCH = F32(-0.02)
TINY = F32(1e-12)  # mlx.envs.native.contact._TINY (rays._safe_inverse)


@njit(cache=True, inline="always")
def _fmin(a, b):  # np.fmin: a NaN loses
    if a != a:
        return b
    return a if (a <= b or b != b) else b


@njit(cache=True, inline="always")
def _fmax(a, b):  # np.fmax
    if a != a:
        return b
    return a if (a >= b or b != b) else b


@njit(cache=True, inline="always")
def _nan_max(a, b):  # np.maximum: a NaN wins
    return a if (a >= b or a != a) else b


@njit(cache=True, inline="always")
def _nan_min(a, b):  # np.minimum
    return a if (a <= b or a != a) else b


@njit(cache=True, inline="always")
def _rows_from(v, below, x):
    """The first row r whose tangent is ``v[r] <= x`` (``below``) or ``v[r] < x``; len(v) if none. The
    tangents fall down the rows, so the rows after it pass the test too (none do for a NaN x)."""
    lo = 0
    hi = v.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if (v[mid] <= x) if below else (v[mid] < x):
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, inline="always")
def _rows_to(v, above, x):
    """One past the last row r whose tangent is ``v[r] >= x`` (``above``) or ``v[r] > x``: the rows before
    it pass the test, those from it on do not (0 for a NaN x)."""
    lo = 0
    hi = v.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if (v[mid] >= x) if above else (v[mid] > x):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, error_model="numpy")
def render_camera(
    dx,  # [R, m] float32: sin of each column's yaw (heading plus column angle), per selected area
    dz,  # [R, m] float32: its cos
    cols,  # [m] intp: the arena columns of the selected areas
    agent,  # the camera agent's slot (the camera stands at its centre)
    center,  # the arena's [2, S, n]
    half,  # [2, S, n]
    radius,  # [S, n]
    active,  # [S, n] bool
    tag,  # [S, n] int16
    bounds,  # [4, n]
    slots,  # [T] intp: the drawn slots
    y0,  # [T] float32: their drawn vertical extent, bottom
    y1,  # [T] float32: top
    cos,  # [R] float32: horizontal distance -> depth along the camera's forward, per column
    v,  # [H] float32: each row's tangent (up positive, row 0 at the top)
    eye,  # float32: the camera's height
    wall_top,  # float32: the walls' top
    table,  # [C, 3] float32: the colour table
    id_wall_z,  # the background's rows of the colour table
    id_wall_x,
    id_sky,
    id_floor,
    out,  # out [m, H, R, 3] float32: the pictures
):
    """ArenaCamera.render's numpy form for every selected area (see the module doc)."""
    R = dx.shape[0]
    m = dx.shape[1]
    T = slots.shape[0]
    H = v.shape[0]
    # Per column of one area, the prisms it meets (slot order) and what the rows need of them.
    h_d0 = np.empty(T, np.float32)
    h_vlo = np.empty(T, np.float32)
    h_vhi = np.empty(T, np.float32)
    h_flo = np.empty(T, np.float32)
    h_fhi = np.empty(T, np.float32)
    h_side = np.empty(T, np.intp)
    h_top = np.empty(T, np.intp)
    order = np.empty(T, np.intp)
    ids = np.empty((R, H), np.int32)  # one area's colour ids, column by column
    # Per area, its drawn slots that are active (in slot order) and their footprints from the camera.
    p_t = np.empty(T, np.intp)
    p_rx = np.empty(T, np.float32)
    p_rz = np.empty(T, np.float32)
    p_gx = np.empty(T, np.float32)
    p_gz = np.empty(T, np.float32)
    p_base = np.empty(T, np.intp)
    e_lo = np.empty(T, np.float32)
    e_hi = np.empty(T, np.float32)
    for t in range(T):
        e_lo[t] = y0[t] - eye
        e_hi[t] = y1[t] - eye
    neg_eye = -eye
    top_e = wall_top - eye
    for a in range(m):
        col = cols[a]
        ox = center[0, agent, col]
        oz = center[1, agent, col]
        # rays.cast_bounds (grow 0) per axis: the travel to the high and low walls
        hi_x = bounds[2, col] - ZERO - ox
        hi_z = bounds[3, col] - ZERO - oz
        lo_x = bounds[0, col] + ZERO - ox
        lo_z = bounds[1, col] + ZERO - oz
        hi_x = INF if hi_x < TOUCH else hi_x
        hi_z = INF if hi_z < TOUCH else hi_z
        lo_x = -INF if lo_x > NEG_TOUCH else lo_x
        lo_z = -INF if lo_z > NEG_TOUCH else lo_z
        P = 0
        for t in range(T):
            s = slots[t]
            if active[s, col]:
                p_t[P] = t
                p_rx[P] = center[0, s, col] - ox
                p_rz[P] = center[1, s, col] - oz
                grow = radius[s, col]
                p_gx[P] = half[0, s, col] + grow
                p_gz[P] = half[1, s, col] + grow
                p_base[P] = (np.intp(tag[s, col]) + 1) * 3
                P += 1
        for c in range(R):
            ddx = dx[c, a]
            ddz = dz[c, a]
            cc = cos[c]
            # The walls: the room's exit distance, as depth along the camera's forward.
            tx = (hi_x if ddx > ZERO else lo_x) * (ONE / (TINY if abs(ddx) < TINY else ddx))
            tx = tx if tx >= ZERO else INF
            tz = (hi_z if ddz > ZERO else lo_z) * (ONE / (TINY if abs(ddz) < TINY else ddz))
            tz = tz if tz >= ZERO else INF
            t_wall = _nan_min(tx, tz)
            d_wall = _nan_min(t_wall, WALL_CAP) * cc
            # Background: the wall, the sky above it (v > its top's tangent), the floor below (v < the
            # floor's), the floor last.
            sky_end = _rows_to(v, False, top_e / d_wall)
            floor_start = _rows_from(v, False, neg_eye / d_wall)
            wall = id_wall_x if tx <= t_wall else id_wall_z
            for r in range(H):
                ids[c, r] = id_sky if r < sky_end else wall
            for r in range(floor_start, H):
                ids[c, r] = id_floor
            # Every drawn slot's footprint, slab-tested.
            ix = ONE / ddx
            iz = ONE / ddz
            k = 0
            for p in range(P):
                rel_x = p_rx[p]
                rel_z = p_rz[p]
                g_x = p_gx[p]
                g_z = p_gz[p]
                ax = (rel_x - g_x) * ix
                bx = (rel_x + g_x) * ix
                az = (rel_z - g_z) * iz
                bz = (rel_z + g_z) * iz
                if ddx == ZERO and abs(rel_x) <= g_x:  # parallel to the slab and inside it
                    sx0 = -INF
                    sx1 = INF
                else:
                    sx0 = _fmin(ax, bx)
                    sx1 = _fmax(ax, bx)
                if ddz == ZERO and abs(rel_z) <= g_z:
                    sz0 = -INF
                    sz1 = INF
                else:
                    sz0 = _fmin(az, bz)
                    sz1 = _fmax(az, bz)
                t0 = _nan_max(sx0, sz0)
                t1 = _nan_min(sx1, sz1)
                d0 = _nan_max(t0 * cc, NEAR)
                d1 = t1 * cc
                if not (t0 <= t1 and d1 > NEAR and d0 < d_wall):
                    continue
                t = p_t[p]
                el = e_lo[t]
                eh = e_hi[t]
                h_d0[k] = d0
                h_vlo[k] = el / d0 if y0[t] < eye else el / d1
                h_vhi[k] = eh / d0 if y1[t] > eye else eh / d1
                h_flo[k] = el / d0
                h_fhi[k] = eh / d0
                base = p_base[p]
                h_side[k] = base + (1 if sx0 >= sz0 else 0)
                h_top[k] = base + 2
                # near to far, the first of equal depths first (numpy's stable argsort): insertion sort
                j = k
                while j > 0 and h_d0[order[j - 1]] > d0:
                    order[j] = order[j - 1]
                    j -= 1
                order[j] = k
                k += 1
            # Painter's algorithm, far to near: each prism's rows (v in [v_lo, v_hi]: a run of rows, the
            # tangents fall down the rows) get its top face, then those of its front face its side.
            for j in range(k - 1, -1, -1):
                h = order[j]
                lo = h_vlo[h]
                hi = h_vhi[h]
                top = h_top[h]
                for r in range(_rows_from(v, True, hi), _rows_to(v, True, lo)):
                    ids[c, r] = top
                lo = _max(lo, h_flo[h])
                hi = _min(hi, h_fhi[h])
                side = h_side[h]
                for r in range(_rows_from(v, True, hi), _rows_to(v, True, lo)):
                    ids[c, r] = side
        for r in range(H):
            for c in range(R):
                i = ids[c, r]
                out[a, r, c, 0] = table[i, 0]
                out[a, r, c, 1] = table[i, 1]
                out[a, r, c, 2] = table[i, 2]
