"""Compiled kernels of the arena engine (mlx.envs.native.arena and its ray sensors, mlx.envs.native.rays).

Why: at ML-Agents' scene sizes (tens of areas) a numpy step of the arena is bound by the number of numpy
calls (about a hundred per physics step and cast, each 1-3 us whatever its size), not by arithmetic.
These kernels run the same arithmetic as loops compiled by numba: one call per decision's physics and
one per sensor cast.

Contract (tests/test_arena_kernels.py): every float32 operation is the numpy form's, in the same order
(no fused multiply-adds, no float64 intermediates: constants are float32 and numba keeps float32 arithmetic
float32), so trajectories equal the numpy engine's. Transcendental functions (the headings' sin and cos)
stay in numpy, whose float32 routines differ from the C library's in the last bit. Where numpy's
vector and scalar loops disagree with each other (the sign of a zero that max or min picks between -0.0 and
+0.0), the kernels may differ in that sign only.

The kernels are compiled on their first call and cached on disk (numba's ``cache=True``: next to this file,
or in the user's cache folder when that is read-only), so only the first run after an install pays the
compilation (a few seconds).
"""

from __future__ import annotations

import numpy as np
from numba import njit

F32 = np.float32
ZERO = F32(0.0)
ONE = F32(1.0)
TINY = F32(1e-12)
TOUCH = F32(0.02)  # mlx.envs.native.arena.TOUCH_DISTANCE
NEG_TOUCH = F32(-0.02)
INF = F32(np.inf)
HALF = F32(0.5)
FAR = F32(0.05)  # beyond a touch: a gap this much larger than a shape's radius


@njit(cache=True, inline="always")
def _max(a, b):  # numpy's float32 maximum for ordered values
    return a if a >= b else b


@njit(cache=True, inline="always")
def _min(a, b):
    return a if a <= b else b


@njit(cache=True, inline="always")
def _is_negative_zero(x) -> bool:
    return x == ZERO and np.signbit(x)


@njit(cache=True)
def _depth(d0, d1, h0, h1, rho):
    """contact_depth for one pair of shapes: (pen, g0, g1, ea0, ea1, dist, gmax)."""
    g0 = abs(d0) - h0
    g1 = abs(d1) - h1
    ea0 = _max(g0, ZERO)
    ea1 = _max(g1, ZERO)
    dist = np.hypot(ea0, ea1)
    gmax = _max(g0, g1)
    pen = rho - dist - _min(gmax, ZERO)
    return pen, g0, g1, ea0, ea1, dist, gmax


@njit(cache=True)
def _normal(d0, d1, g0, g1, ea0, ea1, dist, gmax):
    """contact_normal for one pair of shapes."""
    inv = ONE / _max(dist, TINY)
    if dist > ZERO:
        n0 = ea0 * inv
        n1 = ea1 * inv
    else:
        ax0 = g0 >= gmax
        ax1 = (g1 >= gmax) and not ax0
        n0 = ONE if ax0 else ZERO
        n1 = ONE if ax1 else ZERO
    return np.copysign(n0, d0), np.copysign(n1, d1)


@njit(cache=True)
def arena_steps(
    substeps,
    iterations,
    sin_h,  # [substeps or 1, A, n]: sin of each physics step's heading (before its turn)
    cos_h,
    cmd,  # [3, A, n]
    heading,  # [A, n], turned in place when turning
    turning,
    center,  # [2, S, n]; the bodies' slots from W on
    half,  # [2, S, n]
    radius,  # [S, n]
    active,  # [S, n] bool
    solid,  # [W] bool
    vel,  # [2, K, n]
    mass,  # [K, n]
    drag,  # [K, n]
    friction,  # [2, K, n] (dynamic, static)
    ground_friction,  # [2, n]
    has_bounds,
    bounds,  # [4, n]
    dt,  # float32
    g_dt,  # float32: gravity * dt
    pair_i,  # [P] body indices
    pair_j,
    touch_pair,  # [P, n] bool, OR-ed
    touch_static,  # [K, W, n] bool, OR-ed
    touch_bounds,  # [K, n] bool, OR-ed
):
    """Arena.step's physics steps for every area: the numpy form (Arena.step with the coefficients of
    Arena.refresh, computed here from the same state), phase by phase over all areas."""
    A = cmd.shape[1]
    n = vel.shape[2]
    K = vel.shape[1]
    W = center.shape[1] - K
    P = pair_i.shape[0]
    for s in range(substeps):
        row = s if sin_h.shape[0] > 1 else 0
        # 1. commands: a velocity change along the heading before the turn, then the turn
        for k in range(A):
            for a in range(n):
                sh = sin_h[row, k, a]
                ch = cos_h[row, k, a]
                f = cmd[0, k, a]
                r = cmd[1, k, a]
                vel[0, k, a] += f * sh + r * ch
                vel[1, k, a] += f * ch - r * sh
                if turning:
                    heading[k, a] += cmd[2, k, a]
        # 2-4. damping, floor friction (materials averaged with the floor's), integration
        for k in range(K):
            for a in range(n):
                damp = _max(ONE - drag[k, a] * dt, ZERO)
                decel = (friction[0, k, a] + ground_friction[0, a]) * HALF * g_dt
                stick = (friction[1, k, a] + ground_friction[1, a]) * HALF * g_dt
                v0 = vel[0, k, a] * damp
                v1 = vel[1, k, a] * damp
                speed = np.hypot(v0, v1)
                factor = _max(ONE - decel / _max(speed, TINY), ZERO)
                factor *= ONE if speed > stick else ZERO
                v0 *= factor
                v1 *= factor
                vel[0, k, a] = v0
                vel[1, k, a] = v1
                center[0, W + k, a] += v0 * dt
                center[1, W + k, a] += v1 * dt
        for _ in range(iterations):
            # 5a. body pairs, one after another
            for q in range(P):
                bi = pair_i[q]
                bj = pair_j[q]
                i = W + bi
                j = W + bj
                solve = False
                for a in range(n):
                    d0 = center[0, j, a] - center[0, i, a]
                    d1 = center[1, j, a] - center[1, i, a]
                    h0 = half[0, i, a] + half[0, j, a]
                    h1 = half[1, i, a] + half[1, j, a]
                    pen = _depth(d0, d1, h0, h1, radius[i, a] + radius[j, a])[0]
                    present = active[i, a] and active[j, a]
                    if pen > NEG_TOUCH and present:
                        touch_pair[q, a] = True
                    if pen > ZERO and present:
                        solve = True
                if not solve:  # the numpy form skips only when adding its zeros could not flip a -0.0
                    for a in range(n):
                        for c in range(2):
                            if (
                                _is_negative_zero(center[c, i, a])
                                or _is_negative_zero(center[c, j, a])
                                or _is_negative_zero(vel[c, bi, a])
                                or _is_negative_zero(vel[c, bj, a])
                            ):
                                solve = True
                if not solve:
                    continue
                for a in range(n):
                    d0 = center[0, j, a] - center[0, i, a]
                    d1 = center[1, j, a] - center[1, i, a]
                    h0 = half[0, i, a] + half[0, j, a]
                    h1 = half[1, i, a] + half[1, j, a]
                    pen, g0, g1, ea0, ea1, dist, gmax = _depth(d0, d1, h0, h1, radius[i, a] + radius[j, a])
                    n0, n1 = _normal(d0, d1, g0, g1, ea0, ea1, dist, gmax)
                    wi = ONE / mass[bi, a]
                    wj = ONE / mass[bj, a]
                    inv = ONE / (wi + wj)
                    mu = (friction[0, bi, a] + friction[0, bj, a]) * HALF
                    kk = inv if (pen > ZERO and active[i, a] and active[j, a]) else ZERO
                    pk = pen * kk
                    dp0 = n0 * pk
                    dp1 = n1 * pk
                    center[0, i, a] -= dp0 * wi
                    center[1, i, a] -= dp1 * wi
                    center[0, j, a] += dp0 * wj
                    center[1, j, a] += dp1 * wj
                    rv0 = vel[0, bj, a] - vel[0, bi, a]
                    rv1 = vel[1, bj, a] - vel[1, bi, a]
                    vn = rv0 * n0 + rv1 * n1
                    jn = _max(-vn, ZERO)
                    jn *= kk
                    vt = rv1 * n0 - rv0 * n1
                    lim = mu * jn
                    jt = _min(_max(-vt * inv, -lim), lim)
                    imp0 = n0 * jn
                    imp1 = n1 * jn
                    imp0 -= jt * n1
                    imp1 += jt * n0
                    vel[0, bi, a] -= imp0 * wi
                    vel[1, bi, a] -= imp1 * wi
                    vel[0, bj, a] += imp0 * wj
                    vel[1, bj, a] += imp1 * wj
            # 5b. bodies against solid statics (triggers only report touches)
            if W:
                solve = False
                for k in range(K):
                    b = W + k
                    for w in range(W):
                        touch = NEG_TOUCH if solid[w] else ZERO
                        for a in range(n):
                            d0 = center[0, b, a] - center[0, w, a]
                            d1 = center[1, b, a] - center[1, w, a]
                            h0 = half[0, b, a] + half[0, w, a]
                            h1 = half[1, b, a] + half[1, w, a]
                            far = radius[b, a] + FAR
                            if abs(d0) - h0 > far or abs(d1) - h1 > far:
                                continue  # the gap exceeds any touch distance: no touch, no push (exact)
                            pen = _depth(d0, d1, h0, h1, radius[b, a])[0]
                            present = active[b, a] and active[w, a]
                            if pen > touch and present:
                                touch_static[k, w, a] = True
                            if pen > ZERO and present and solid[w]:
                                solve = True
                if not solve:
                    for k in range(K):
                        for a in range(n):
                            for c in range(2):
                                if _is_negative_zero(center[c, W + k, a]) or _is_negative_zero(vel[c, k, a]):
                                    solve = True
                if solve:
                    for k in range(K):
                        b = W + k
                        for a in range(n):
                            v0 = vel[0, k, a]
                            v1 = vel[1, k, a]
                            p_hi0 = p_lo0 = p_hi1 = p_lo1 = ZERO
                            r_hi0 = r_lo0 = r_hi1 = r_lo1 = ZERO
                            for w in range(W):
                                d0 = center[0, b, a] - center[0, w, a]
                                d1 = center[1, b, a] - center[1, w, a]
                                h0 = half[0, b, a] + half[0, w, a]
                                h1 = half[1, b, a] + half[1, w, a]
                                pen, g0, g1, ea0, ea1, dist, gmax = _depth(d0, d1, h0, h1, radius[b, a])
                                n0, n1 = _normal(d0, d1, g0, g1, ea0, ea1, dist, gmax)
                                hit = pen > ZERO and active[b, a] and active[w, a] and solid[w]
                                depth = pen if hit else ZERO
                                vn = v0 * n0 + v1 * n1
                                rem = _min(vn, ZERO) if hit else ZERO
                                push0 = n0 * depth
                                push1 = n1 * depth
                                rem0 = n0 * rem
                                rem1 = n1 * rem
                                if w == 0:
                                    p_hi0 = p_lo0 = push0
                                    p_hi1 = p_lo1 = push1
                                    r_hi0 = r_lo0 = rem0
                                    r_hi1 = r_lo1 = rem1
                                else:
                                    p_hi0, p_lo0 = _max(p_hi0, push0), _min(p_lo0, push0)
                                    p_hi1, p_lo1 = _max(p_hi1, push1), _min(p_lo1, push1)
                                    r_hi0, r_lo0 = _max(r_hi0, rem0), _min(r_lo0, rem0)
                                    r_hi1, r_lo1 = _max(r_hi1, rem1), _min(r_lo1, rem1)
                            if W == 1:
                                center[0, b, a] += p_hi0
                                center[1, b, a] += p_hi1
                                vel[0, k, a] -= r_hi0
                                vel[1, k, a] -= r_hi1
                            else:  # per axis the largest push each way
                                center[0, b, a] += _max(p_hi0, ZERO) + _min(p_lo0, ZERO)
                                center[1, b, a] += _max(p_hi1, ZERO) + _min(p_lo1, ZERO)
                                vel[0, k, a] -= _max(r_hi0, ZERO) + _min(r_lo0, ZERO)
                                vel[1, k, a] -= _max(r_hi1, ZERO) + _min(r_lo1, ZERO)
            # 5c. the bounds: clamp, keep the velocity that leaves the wall, report touches
            if has_bounds:
                for k in range(K):
                    b = W + k
                    for a in range(n):
                        near = False
                        for c in range(2):
                            grow = half[c, b, a] + radius[b, a]
                            lo = bounds[c, a] + grow
                            hi = bounds[2 + c, a] - grow
                            p = center[c, b, a]
                            below = p < lo
                            above = p > hi
                            p = _min(_max(p, lo), hi)
                            center[c, b, a] = p
                            if below:
                                vel[c, k, a] = _max(vel[c, k, a], ZERO)
                            if above:
                                vel[c, k, a] = _min(vel[c, k, a], ZERO)
                            if p < lo + TOUCH or p > hi - TOUCH:
                                near = True
                        if near and active[b, a]:
                            touch_bounds[k, a] = True


@njit(cache=True, inline="always")
def _box_gap(r0, r1, h0, h1):
    """(whether the origin is inside a box's footprint, its distance to the footprint) for a box centred at
    (r0, r1) relative to the origin with half extents (h0, h1): cast_rounded_boxes_xz's e and gap."""
    e0 = abs(r0) - h0
    e1 = abs(r1) - h1
    return (e0 <= ZERO and e1 <= ZERO), np.hypot(_max(e0, ZERO), _max(e1, ZERO))


@njit(cache=True, inline="always")
def box_skipped(r0, r1, h0, h1, rd):
    """cast_rounded_boxes_xz's skip of a box: the origin inside its footprint or within touch of the grown box."""
    inside, gap = _box_gap(r0, r1, h0, h1)
    return inside or gap < rd + TOUCH


@njit(cache=True, inline="always")
def _inverse(x):
    """rays._safe_inverse of one direction component."""
    return ONE / (TINY if abs(x) < TINY else x)


@njit(cache=True, inline="always")
def _slab(dx, dz, r0, r1, g0, g1):
    """The distances (tnear, tfar) along a ray (unit direction dx, dz) between which it is inside the square
    of half extents (g0, g1) centred at (r0, r1) from its origin; tnear > tfar: it misses."""
    ix = _inverse(dx)
    iz = _inverse(dz)
    ax = (r0 - g0) * ix
    bx = (r0 + g0) * ix
    az = (r1 - g1) * iz
    bz = (r1 + g1) * iz
    return _max(_min(ax, bx), _min(az, bz)), _min(_max(ax, bx), _max(az, bz))


@njit(cache=True, inline="always")
def cast_box(dx, dz, r0, r1, h0, h1, rd):
    """cast_rounded_boxes_xz for one ray (unit direction dx, dz) and one box that is not skipped (centre r0, r1
    relative to the origin, half extents h0, h1, rounding radius rd): the distance, inf on a miss. A slab test
    against the square that bounds the rounded box; entered at a corner, that corner's circle instead."""
    tnear, tfar = _slab(dx, dz, r0, r1, h0 + rd, h1 + rd)
    if not (tnear <= tfar and tfar >= ZERO):
        return INF
    tin = _max(tnear, ZERO)
    p0 = tin * dx - r0
    p1 = tin * dz - r1
    if abs(p0) > h0 and abs(p1) > h1:
        k0 = r0 + np.copysign(h0, p0)
        k1 = r1 + np.copysign(h1, p1)
        bb = k0 * dx + k1 * dz
        disc = bb * bb - (k0 * k0 + k1 * k1 - rd * rd)
        tc = bb - np.sqrt(_max(disc, ZERO))
        t = tc if (disc >= ZERO and tc >= ZERO) else INF
    else:
        t = tnear
    return t if t >= ZERO else INF


@njit(cache=True, inline="always")
def _rooms(bounds, col, grow, ox, oz):
    """_cast_bounds_xz's travel to the high and low walls per axis (inf where the origin starts within touch)."""
    hi0 = bounds[2, col] - grow - ox
    hi1 = bounds[3, col] - grow - oz
    lo0 = bounds[0, col] + grow - ox
    lo1 = bounds[1, col] + grow - oz
    return (
        INF if hi0 < TOUCH else hi0,
        INF if hi1 < TOUCH else hi1,
        -INF if lo0 > -TOUCH else lo0,
        -INF if lo1 > -TOUCH else lo1,
    )


@njit(cache=True)
def cast_boxes_and_bounds(
    d,  # [2, R, m] unit ray directions of the selected areas
    cols,  # [m] the arena columns of those areas
    agent,  # the sensor's agent slot (rays start at its centre)
    center,  # the arena's [2, S, n]
    half,  # [2, S, n]
    radius,  # [S, n]
    active,  # [S, n] bool
    tag,  # [S, n] int16
    targets,  # [T] the slots the rays can meet
    grow,  # [T] float32: the sphere's in-plane radius against each
    reach,  # the ray length: boxes wholly beyond it are not cast
    has_bounds,
    bounds,  # [4, n]
    bounds_grow,
    bounds_tag,
    tmin,  # out [R, m]: distance to the nearest hit, inf on a miss
    tags,  # out [R, m] int16: the arena tag id of the nearest hit, -1 on a miss
):
    """RaySensor's cast (cast_rounded_boxes_xz, the nearest target, then _cast_bounds_xz): the same float32
    operations per (ray, target, area) as the numpy form."""
    R = d.shape[1]
    T = targets.shape[0]
    m = d.shape[2]
    margin = F32(reach * 1.001 + 0.01)
    for a in range(m):
        col = cols[a]
        ox = center[0, agent, col]
        oz = center[1, agent, col]
        for ray in range(R):
            tmin[ray, a] = INF
            tags[ray, a] = -1
        for t in range(T):
            s = targets[t]
            if not active[s, col]:
                continue
            r0 = center[0, s, col] - ox
            r1 = center[1, s, col] - oz
            h0 = half[0, s, col]
            h1 = half[1, s, col]
            rd = radius[s, col] + grow[t]
            inside, gap = _box_gap(r0, r1, h0, h1)
            if inside or gap < rd + TOUCH or gap > rd + margin:
                continue
            for ray in range(R):
                hit = cast_box(d[0, ray, a], d[1, ray, a], r0, r1, h0, h1, rd)
                if hit < tmin[ray, a]:  # the first of equal distances wins (argmin)
                    tmin[ray, a] = hit
                    tags[ray, a] = tag[s, col]
        if has_bounds:
            hi0, hi1, lo0, lo1 = _rooms(bounds, col, bounds_grow, ox, oz)
            for ray in range(R):
                dx = d[0, ray, a]
                dz = d[1, ray, a]
                tx = (hi0 if dx > ZERO else lo0) * _inverse(dx)
                tz = (hi1 if dz > ZERO else lo1) * _inverse(dz)
                tx = tx if tx >= ZERO else INF
                tz = tz if tz >= ZERO else INF
                tb = _min(tx, tz)
                if tb < tmin[ray, a]:
                    tmin[ray, a] = tb
                    tags[ray, a] = bounds_tag


@njit(cache=True)
def cast_tilted(
    d,  # [2, R, m] unit ray directions (in the floor plane) of the selected areas
    cols,  # [m] the arena columns of those areas
    agent,  # the sensor's agent slot
    center,  # the arena's [2, S, n]
    half,  # [2, S, n]
    radius,  # [S, n]
    active,  # [S, n] bool
    tag,  # [S, n] int16
    targets,  # [T] slots
    sphere,  # float32: the sphere cast's radius
    s_lo,  # [T] float32: distances over which the rising sphere's span overlaps each collider's
    s_hi,
    overlaps_start,  # [T] bool
    bottom,  # [T] float32: each collider's vertical extent
    top,
    h0,  # float32: the rays' start height
    slope,  # float32: rise per unit of horizontal distance
    reach,  # the ray length (horizontal)
    has_bounds,
    bounds,  # [4, n]
    bounds_s_hi,  # float32: the walls' top, as a distance along the rising ray
    bounds_tag,
    tmin,  # out [R, m]
    tags,  # out [R, m] int16
):
    """TiltedRaySensor's cast: per (ray, target, area) the numpy form's float32 operations; the nearest hit
    by distance, ties to the collider nearer the sphere's height (then the first), then the walls. A target
    whose grown footprint lies wholly beyond ``reach`` is not cast: its hit would lie past the ray's end,
    which the encoding reports as a miss all the same."""
    R = d.shape[1]
    T = targets.shape[0]
    m = d.shape[2]
    milli = F32(1e-3)
    margin = F32(reach * 1.001 + 0.01)
    key = np.empty(R, F32)
    for a in range(m):
        col = cols[a]
        ox = center[0, agent, col]
        oz = center[1, agent, col]
        for ray in range(R):
            key[ray] = INF
            tmin[ray, a] = INF
            tags[ray, a] = -1
        for t in range(T):
            s = targets[t]
            if not active[s, col]:
                continue
            r0 = center[0, s, col] - ox
            r1 = center[1, s, col] - oz
            grow = radius[s, col] + sphere
            g0 = half[0, s, col] + grow
            g1 = half[1, s, col] + grow
            if abs(r0) - g0 > margin or abs(r1) - g1 > margin:
                continue
            if overlaps_start[t] and abs(r0) < g0 - TOUCH and abs(r1) < g1 - TOUCH:
                continue  # the sphere starts inside it (SphereCast ignores it)
            for ray in range(R):
                tnear, tfar = _slab(d[0, ray, a], d[1, ray, a], r0, r1, g0, g1)
                tt = _max(_max(tnear, s_lo[t]), ZERO)
                if not (tt <= tfar and tt <= s_hi[t]):
                    continue
                h = h0 + slope * tt
                gap = _max(_max(bottom[t] - h, h - top[t]), ZERO)
                k = gap * milli + tt
                if k < key[ray]:
                    key[ray] = k
                    tmin[ray, a] = tt
                    tags[ray, a] = tag[s, col]
        if has_bounds:
            hi0, hi1, lo0, lo1 = _rooms(bounds, col, sphere, ox, oz)
            for ray in range(R):
                dx = d[0, ray, a]
                dz = d[1, ray, a]
                tx = (hi0 if dx > ZERO else lo0) / (TINY if abs(dx) < TINY else dx)
                tz = (hi1 if dz > ZERO else lo1) / (TINY if abs(dz) < TINY else dz)
                tx = tx if tx >= ZERO else INF
                tz = tz if tz >= ZERO else INF
                tb = _min(tx, tz)
                tb = tb if tb <= bounds_s_hi else INF
                if tb < tmin[ray, a]:
                    tmin[ray, a] = tb
                    tags[ray, a] = bounds_tag
