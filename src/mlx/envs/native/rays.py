"""Ray perception for the arena envs: ML-Agents' RayPerceptionSensor over an Arena's colliders.

Ray perception, exactly in ML-Agents' encoding (com.unity.ml-agents/Runtime/Sensors/RayPerceptionSensor.cs
and RayPerceptionSensorComponentBase.cs): ``2 * raysPerDirection + 1`` rays at angles (degrees; 90 is
forward, angles grow counter-clockwise seen from above, so 90 - d points right of forward)
``90, 90 - d, 90 + d, 90 - 2d, 90 + 2d, ...`` with ``d = maxRayDegrees / raysPerDirection`` (ML-Agents'
alternating order, its default). Each ray writes ``len(detectable_tags) + 2`` floats: a one-hot of the
detectable tag it hit (all zeros when it hit an object whose tag is not in the list, or nothing), then 1
if it hit nothing else 0, then the hit fraction (the sphere's travel to the hit / ray length; 1 when
nothing is hit). With ``observation_stacks > 1`` the sensor outputs its last frames oldest first
(StackingSensor), cleared to zeros at each episode start.

The sphere cast is exact in the floor plane: a sphere of radius r at the sensor's height meets a collider
whose vertical extent comes within r of that height, and in the plane it then acts as a circle of radius
``sqrt(r^2 - gap^2)`` (a tangent touch, gap == r, counts as a hit with radius 0); a circle cast against a
rounded box is a ray against the box grown by that radius, rounded corners included. Unity's SphereCast
ignores colliders the sphere overlaps where it starts (so an agent never sees itself, nor an object it is
pressed against); here that is a start closer than ``TOUCH_DISTANCE`` to the grown shape. The floor is no
target (the casts start touching it, so Unity ignores it too).

``RaySensor`` casts horizontal rays (ML-Agents' equal start and end vertical offsets); ``TiltedRaySensor``
rises linearly (an end offset above a start offset of 0). Both write frames with ``encode_frame``, which
WallJump's own casts use too (its compiled form writes the same values itself), so every ray observation of
mlx has the one encoding. With ``mlx.envs.native.arena.COMPILED`` (the default) both sensors cast in one
compiled call per perception (mlx.envs.native.arena_kernels), the numpy forms below being the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlx.envs.api import EnvError
from mlx.envs.native import arena as arena_module
from mlx.envs.native.arena import _TINY, F32, TOUCH_DISTANCE, Arena, _sel
from mlx.envs.native.arena_kernels import cast_boxes_and_bounds, cast_tilted
from mlx.envs.native.base import FrameStack


def ray_angles(rays_per_direction: int, max_ray_degrees: float) -> np.ndarray:
    """ML-Agents' ray angles in degrees (90 = forward), alternating: 90, 90-d, 90+d, 90-2d, 90+2d, ..."""
    delta = max_ray_degrees / rays_per_direction if rays_per_direction else 0.0
    out = [90.0]
    for i in range(rays_per_direction):
        out += [90.0 - (i + 1) * delta, 90.0 + (i + 1) * delta]
    return np.array(out, np.float64)


@dataclass(frozen=True)
class RaySensorSpec:
    """A RayPerceptionSensorComponent3D's settings (ML-Agents' names). Rays are horizontal, at the agent's
    centre height plus ``vertical_offset`` (ML-Agents' start and end vertical offsets, equal here)."""

    detectable_tags: tuple[str, ...]
    rays_per_direction: int = 3
    max_ray_degrees: float = 70.0
    sphere_cast_radius: float = 0.5
    ray_length: float = 20.0
    vertical_offset: float = 0.0
    observation_stacks: int = 1
    name: str = "RayPerceptionSensor"

    @property
    def num_rays(self) -> int:
        return 2 * self.rays_per_direction + 1

    @property
    def frame_size(self) -> int:
        return self.num_rays * (len(self.detectable_tags) + 2)

    @property
    def size(self) -> int:
        return self.frame_size * max(1, self.observation_stacks)

    @property
    def observation_name(self) -> str:
        """The name ML-Agents gives the sensor (a StackingSensor wraps it when stacking)."""
        if self.observation_stacks > 1:
            return f"StackingSensor_size{self.observation_stacks}_{self.name}"
        return self.name


def ray_basis(rays_per_direction: int, max_ray_degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin [R, 1] float32 of ML-Agents' ray angles, for ray_directions."""
    angles = np.radians(ray_angles(rays_per_direction, max_ray_degrees))
    return np.cos(angles).astype(F32)[:, None], np.sin(angles).astype(F32)[:, None]


def ray_directions(basis: tuple[np.ndarray, np.ndarray], heading: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World directions (x, z) [R, m] of the rays of ``basis`` for agents with these headings [m]: local
    angle a -> (cos a cos h + sin a sin h, sin a cos h - cos a sin h)."""
    cos_a, sin_a = basis
    sh, ch = np.sin(heading), np.cos(heading)
    return cos_a * ch + sin_a * sh, sin_a * ch - cos_a * sh


def ray_basis_xz(rays_per_direction: int, max_ray_degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """ray_basis as two [2, R, 1] arrays A, B with ray_directions = A * cos h + B * sin h (ray_directions_xz)."""
    cos_a, sin_a = ray_basis(rays_per_direction, max_ray_degrees)
    return np.stack([cos_a, sin_a]), np.stack([sin_a, -cos_a])


def ray_directions_xz(basis: tuple[np.ndarray, np.ndarray], heading: np.ndarray) -> np.ndarray:
    """ray_directions stacked [2, R, m] in three numpy calls after sin and cos (Speed: half the calls).
    Bit-identical: the z part ``sin a cos h + (-cos a) sin h`` rounds exactly as ``sin a cos h - cos a sin h``."""
    a, b = basis
    d = a * np.cos(heading)
    d += b * np.sin(heading)
    return d


def encode_frame(tmin: np.ndarray, slot: np.ndarray, ntags: int, length: float) -> np.ndarray:
    """ML-Agents' ray encoding of distances tmin [R, m] to hits whose detectable-tag slot is ``slot``
    [R, m] (-1: not detectable): [m, R * (ntags + 2)], per ray a one-hot of the slot, a miss flag and the
    hit fraction (1 on a miss). Built ray-major with areas last (contiguous writes), then transposed."""
    length = F32(length)
    hit = tmin <= length
    frame = np.empty((tmin.shape[0], ntags + 2, tmin.shape[1]), F32)
    tag_range = np.arange(ntags, dtype=slot.dtype)[None, :, None]
    np.logical_and(slot[:, None, :] == tag_range, hit[:, None, :], out=frame[:, :ntags], casting="unsafe")
    np.logical_not(hit, out=frame[:, ntags], casting="unsafe")
    np.divide(tmin, length, out=frame[:, ntags + 1])
    np.copyto(frame[:, ntags + 1], F32(1.0), where=~hit)
    return frame.transpose(2, 0, 1).reshape(tmin.shape[1], -1)


class _Rays:
    """What every ray sensor of one arena agent shares: its rays and the detectable-tag lookup."""

    def __init__(self, arena: Arena, spec: RaySensorSpec, agent: int) -> None:
        if spec.rays_per_direction < 0 or spec.ray_length <= 0 or spec.sphere_cast_radius < 0:
            raise EnvError(f"invalid ray sensor settings: {spec}")
        if not 0 <= agent < arena.A:
            raise EnvError(f"a ray sensor belongs to an agent (0..{arena.A - 1}), got {agent}")
        self.arena, self.spec, self.agent = arena, spec, agent
        self._basis = ray_basis(spec.rays_per_direction, spec.max_ray_degrees)
        self._basis_xz = ray_basis_xz(spec.rays_per_direction, spec.max_ray_degrees)
        # Arena tag id + 1 (so -1, untagged, is row 0) -> one-hot slot, or -1 when not detectable.
        lut = np.full(len(arena.tags) + 1, -1, np.int16)
        for slot, name in enumerate(spec.detectable_tags):
            if name in arena.tags:
                lut[arena.tags.index(name) + 1] = slot
        self._lut = lut

    def _origins(self, sel: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Ray directions dx, dz [R, m] and origins ox, oz [m] of the selected areas' agents."""
        ar = self.arena
        dx, dz = ray_directions(self._basis, ar.heading[self.agent, sel])
        return dx, dz, ar.pos[0, self.agent, sel], ar.pos[1, self.agent, sel]

    def _encode(self, tmin: np.ndarray, tags: np.ndarray) -> np.ndarray:
        """The frame of nearest hits at tmin [R, m] with arena tag ids ``tags`` [R, m]."""
        return encode_frame(tmin, self._lut[tags + 1], len(self.spec.detectable_tags), self.spec.ray_length)


class RaySensor(_Rays):
    """One agent's ray perception sensor over every area of an arena, with its observation stack.

    ``perceive`` casts and returns one frame per area; ``observe`` casts, pushes the frame onto the stack
    and returns the stacked observation ([n, size], oldest frame first); ``restart(areas)`` clears those
    areas' stacks and returns their first observation of a new episode (call it after resetting them).
    """

    def __init__(self, arena: Arena, spec: RaySensorSpec, agent: int = 0) -> None:
        super().__init__(arena, spec, agent)
        self_slot = arena.W + agent
        self.height = float(np.mean(arena.height[self_slot])) + spec.vertical_offset
        targets, grow = [], []
        for s in range(arena.S):
            reach = self._reach(*arena.height[s])
            if s != self_slot and reach is not None:
                targets.append(s)
                grow.append(reach)
        self.targets = np.array(targets, np.intp)
        self._grow = np.array(grow, F32)[:, None]  # in-plane radius added to each target [T, 1]
        bounds_reach = self._reach(*arena.bounds_height) if arena.has_bounds else None
        self.sees_bounds = bounds_reach is not None
        self._bounds_grow = F32(bounds_reach or 0.0)
        self._frames = FrameStack(arena.n, spec.frame_size, max(1, spec.observation_stacks))
        self._all_areas = np.arange(arena.n, dtype=np.intp)
        self._grow_flat = np.ascontiguousarray(self._grow[:, 0])

    def _reach(self, bottom: float, top: float) -> float | None:
        """In-plane radius of the sphere against a collider of that vertical extent, or None if it passes."""
        r = self.spec.sphere_cast_radius
        gap = max(bottom - self.height, self.height - top, 0.0)
        return math.sqrt(max(r * r - gap * gap, 0.0)) if gap <= r else None

    def perceive(self, areas: np.ndarray | None = None) -> np.ndarray:
        """One frame of ray observations [m, frame_size] float32 for all areas (or the given ones)."""
        ar = self.arena
        sel = _sel(areas)
        m = ar.n if areas is None else len(areas)
        d = ray_directions_xz(self._basis_xz, ar.heading[self.agent, sel])  # [2, R, m]
        if arena_module.COMPILED:
            cols = self._all_areas if areas is None else np.asarray(areas, np.intp)
            tmin = np.empty((self.spec.num_rays, m), F32)
            tags = np.empty((self.spec.num_rays, m), np.int16)
            cast_boxes_and_bounds(
                d, cols, ar.W + self.agent, ar.center, ar.half, ar.radius, ar.active, ar.tag, self.targets,
                self._grow_flat, self.spec.ray_length, self.sees_bounds, ar.bounds, self._bounds_grow,
                ar.bounds_tag, tmin, tags,
            )  # fmt: skip
            return self._encode(tmin, tags)
        o = ar.pos[:, self.agent, sel]  # [2, m]
        if self.targets.size:
            tg = self.targets
            c, h, rad, act, tag = ar.center[:, tg], ar.half[:, tg], ar.radius[tg], ar.active[tg], ar.tag[tg]
            if areas is not None:
                c, h, rad, act, tag = c[..., sel], h[..., sel], rad[:, sel], act[:, sel], tag[:, sel]
            c -= o[:, None, :]
            rad += self._grow
            t = cast_rounded_boxes_xz(d, c, h, rad, act, self.spec.ray_length)  # [R, T, m]
            # Speed: plain fancy indexing instead of np.take_along_axis (its Python wrapper costs more
            # than the gather at 64 areas); the same elements.
            best = t.argmin(1)  # [R, m]
            cols = np.arange(m)
            tmin = t[np.arange(t.shape[0])[:, None], best, cols]
            tags = tag[best, cols]
        else:
            tmin = np.full((self.spec.num_rays, m), np.inf, F32)
            tags = np.full((self.spec.num_rays, m), -1, np.int16)
        if self.sees_bounds:
            tb = _cast_bounds_xz(d, o, ar.bounds[:, sel], self._bounds_grow)
            closer = tb < tmin
            tmin = np.where(closer, tb, tmin)
            tags = np.where(closer, np.int16(ar.bounds_tag), tags)
        return self._encode(tmin, tags)

    def observe(self) -> np.ndarray:
        """Cast for every area, push the frame onto the stack; returns the stacked observation (a copy)."""
        return self._frames.push(self.perceive()).copy()

    def restart(self, areas: np.ndarray) -> np.ndarray:
        """Clear the given areas' stacks and observe them once: their first observation [m, size]."""
        return self._frames.restart(areas, self.perceive(areas))


def _where_or_inf(mask: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``np.where(mask, t, inf)`` for float32 t without NaN, as max(t, -inf where mask else +inf).

    Speed: np.where with a scalar on a [7, 27, 64] array (Pyramids' tilted sensors) takes ~40 us, these
    three arithmetic calls ~6 us. Bit-identical: max(x, -inf) is x, -0.0 included; max(x, inf) is inf."""
    bound = np.subtract(mask, F32(0.5), dtype=F32)  # +0.5 where kept, -0.5 elsewhere
    bound *= F32(-np.inf)
    return np.maximum(t, bound, out=bound)


def _safe_inverse(d: np.ndarray) -> np.ndarray:
    return F32(1.0) / np.where(np.abs(d) < F32(_TINY), F32(_TINY), d)


def cast_bounds(
    dx: np.ndarray, dz: np.ndarray, ox: np.ndarray, oz: np.ndarray, bounds: np.ndarray, grow: np.float32
) -> np.ndarray:
    """Distances [R, m] from origins inside the bounds to the first wall the grown ray meets; a wall the
    origin starts within reach of is ignored (SphereCast's initial overlap). Origins broadcast against
    the directions as the callers shape them (Soccer, FoodCollector); _cast_bounds_xz is the stacked form."""
    out = []
    for d, o, lo, hi in ((dx, ox, bounds[0], bounds[2]), (dz, oz, bounds[1], bounds[3])):
        room_hi = hi - grow - o  # travel to the high wall (>= 0 inside)
        room_lo = lo + grow - o  # travel to the low wall (<= 0 inside)
        room_hi = np.where(room_hi < TOUCH_DISTANCE, np.inf, room_hi).astype(F32, copy=False)
        room_lo = np.where(room_lo > -TOUCH_DISTANCE, -np.inf, room_lo).astype(F32, copy=False)
        t = np.where(d > 0, room_hi, room_lo) * _safe_inverse(d)
        out.append(np.where(t >= 0, t, np.inf).astype(F32, copy=False))  # a ray along the wall never meets it
    return np.minimum(out[0], out[1])


def _cast_bounds_xz(d: np.ndarray, o: np.ndarray, bounds: np.ndarray, grow: np.float32) -> np.ndarray:
    """cast_bounds with directions d [2, R, m] and origins o [2, m] stacked (Speed: both axes in one
    numpy call each, half the calls; the same float32 operations per element, so bit-identical)."""
    room_hi = bounds[2:4] - grow - o  # travel to the high wall (>= 0 inside)
    room_lo = bounds[0:2] + grow - o  # travel to the low wall (<= 0 inside)
    room_hi = np.where(room_hi < TOUCH_DISTANCE, np.inf, room_hi).astype(F32, copy=False)
    room_lo = np.where(room_lo > -TOUCH_DISTANCE, -np.inf, room_lo).astype(F32, copy=False)
    t = np.where(d > 0, room_hi[:, None, :], room_lo[:, None, :])
    t *= _safe_inverse(d)
    t = np.where(t >= 0, t, np.inf).astype(F32, copy=False)  # a ray along the wall never meets it
    return np.minimum(t[0], t[1])


def cast_rounded_boxes(
    dx: np.ndarray,
    dz: np.ndarray,
    rx: np.ndarray,
    rz: np.ndarray,
    hx: np.ndarray,
    hz: np.ndarray,
    rad: np.ndarray,
    present: np.ndarray,
) -> np.ndarray:
    """Distances [R, T, m] along unit rays (directions [R, m]) to rounded boxes [T, m] (centres relative
    to the ray origins, half extents, rounding radii); inf where missed, absent, or where the origin
    starts closer than TOUCH_DISTANCE to the shape (Unity's SphereCast ignores those colliders).
    The x and z arrays given apart; cast_rounded_boxes_xz takes them stacked (fewer numpy calls)."""
    return cast_rounded_boxes_xz(
        np.stack([dx, dz]), np.stack([rx, rz]), np.stack([hx, hz]), np.asarray(rad, F32), np.asarray(present)
    )


def cast_rounded_boxes_xz(
    d: np.ndarray, r: np.ndarray, h: np.ndarray, rad: np.ndarray, present: np.ndarray, reach: float | None = None
) -> np.ndarray:
    """cast_rounded_boxes with the x and z components stacked on a first axis of 2: directions d [2, R, m],
    centres relative to the origins r [2, T, m], half extents h [2, T, m]; rad and present [T, m].
    With ``reach`` (the ray length), a box whose every point is farther than that is not cast (inf):
    its hit, if any, would be past the ray's end, which the encoding reports as a miss all the same.

    A slab test against the square that bounds the rounded box; where the entry point lies in one of the
    square's corner regions, the answer is that corner's circle instead (the rounded boundary there).

    Speed (Pyramids at 64 areas: the flat sensor's cast from ~360 to ~90 us): x and z in one numpy call
    each; the slab test only for the (box, area) pairs not skipped, the corner circles only for the rays
    that enter a square (few do); the rest stays inf. Every computed element goes through the same
    float32 operations as the dense per-axis form, so the distances are bit-identical to it
    (tests/test_arena_speed.py compares them on random scenes).
    """
    e = np.abs(r)
    e -= h
    gap = np.maximum(e, F32(0.0))
    gap = np.hypot(gap[0], gap[1])
    inside = e <= 0
    skip = (inside[0] & inside[1]) | (gap < rad + F32(TOUCH_DISTANCE)) | ~present  # [T, m]
    if reach is not None:  # every point of the rounded box is at least gap - rad away (margin for rounding)
        skip |= gap > rad + F32(reach * 1.001 + 0.01)
    R = d.shape[1]
    T, m = skip.shape
    out = np.full((R, T * m), np.inf, F32)
    keep = np.flatnonzero(~skip)  # (box, area) pairs, flat over [T, m]
    if keep.size == 0:
        return out.reshape(R, T, m)
    dd = d[:, :, keep % m]  # [2, R, P]
    rk = np.broadcast_to(r, (2, T, m)).reshape(2, -1)[:, keep]  # [2, P]
    hk = np.broadcast_to(h, (2, T, m)).reshape(2, -1)[:, keep]
    radk = np.broadcast_to(rad, (T, m)).reshape(-1)[keep]
    inv = _safe_inverse(dd)
    g = hk + radk
    a = (rk - g)[:, None] * inv
    b = (rk + g)[:, None] * inv
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    tnear = np.maximum(lo[0], lo[1])  # [R, P]
    tfar = np.minimum(hi[0], hi[1])
    ri, pi = np.nonzero((tnear <= tfar) & (tfar >= 0))  # the rays that meet the square
    if ri.size == 0:
        return out.reshape(R, T, m)
    tn = tnear[ri, pi]
    dq = dd[:, ri, pi]  # [2, Q]
    rq, hq, radq = rk[:, pi], hk[:, pi], radk[pi]
    # Entry point (the origin itself if it starts inside the square) relative to the box centre; in a
    # corner region when beyond both half extents.
    p = np.maximum(tn, F32(0.0)) * dq
    p -= rq
    beyond = np.abs(p) > hq
    corner = beyond[0] & beyond[1]
    # That corner's circle: centre (relative to the origin) r + sign(p) h, radius rad.
    k = rq + np.copysign(hq, p)
    kd = k * dq
    bb = kd[0] + kd[1]
    k *= k
    disc = bb * bb - (k[0] + k[1] - radq * radq)
    tc = bb - np.sqrt(np.maximum(disc, F32(0.0)))
    t = np.where(corner, np.where((disc >= 0) & (tc >= 0), tc, np.inf), tn)
    out[ri, keep[pi]] = np.where(t >= 0, t, np.inf)
    return out.reshape(R, T, m)


class TiltedRaySensor(_Rays):
    """A ray perception sensor whose rays rise linearly: ML-Agents' end vertical offset above a start
    offset of 0 (the rays of RayPerceptionSensor1/2). Same encoding and interface as RaySensor.

    A ray's sphere centre at horizontal distance s is at height h0 + s * rise / length. A collider is hit
    at the first s where the footprint grown by the sphere radius (square corners) is entered and the
    sphere's vertical span overlaps the collider's; a collider the sphere overlaps at the start is
    ignored (SphereCast). The hit fraction is s / length, as along the tilted ray.
    """

    def __init__(self, arena: Arena, spec: RaySensorSpec, rise: float, agent: int = 0) -> None:
        if rise <= 0:
            raise EnvError(f"a tilted ray sensor needs a positive rise, got {rise} (use RaySensor)")
        super().__init__(arena, spec, agent)
        r = spec.sphere_cast_radius
        self.slope = rise / spec.ray_length
        h0 = float(np.mean(arena.height[arena.W + agent])) + spec.vertical_offset
        self.targets = np.array([s for s in range(arena.S) if s != arena.W + agent], np.intp)
        heights = arena.height[self.targets]
        self._bottom = heights[:, 0][None, :, None].astype(F32)  # [1, T, 1]
        self._top = heights[:, 1][None, :, None].astype(F32)
        # Distances over which the sphere's vertical span overlaps each collider's (rising rays).
        self._s_lo = ((heights[:, 0] - r - h0) / self.slope).astype(F32)[None, :, None]
        self._s_hi = ((heights[:, 1] + r - h0) / self.slope).astype(F32)[None, :, None]
        self._overlaps_start = (self._s_lo <= 0) & (self._s_hi >= 0)  # [1, T, 1]
        self._bounds_s_hi = F32((arena.bounds_height[1] + r - h0) / self.slope)
        self.h0 = F32(h0)
        self._all_areas = np.arange(arena.n, dtype=np.intp)
        flat = np.ascontiguousarray
        self._kernel_columns = (flat(self._s_lo.ravel()), flat(self._s_hi.ravel()), flat(self._overlaps_start.ravel()),
                                flat(self._bottom.ravel()), flat(self._top.ravel()))  # fmt: skip

    def perceive(self, areas: np.ndarray | None = None) -> np.ndarray:
        """One frame [m, frame_size] float32 for all areas (or the given ones).

        Speed: x and z stacked on a first axis (one numpy call for both, as cast_rounded_boxes_xz), plain
        fancy indexing for the nearest hit; every element sees the same float32 operations as before.
        """
        ar, spec = self.arena, self.spec
        sel = _sel(areas)
        m = ar.n if areas is None else len(areas)
        r = F32(spec.sphere_cast_radius)
        d = ray_directions_xz(self._basis_xz, ar.heading[self.agent, sel])  # [2, R, m]
        if arena_module.COMPILED:
            cols = self._all_areas if areas is None else np.asarray(areas, np.intp)
            tmin = np.empty((spec.num_rays, m), F32)
            tags = np.empty((spec.num_rays, m), np.int16)
            cast_tilted(
                d, cols, ar.W + self.agent, ar.center, ar.half, ar.radius, ar.active, ar.tag, self.targets, r,
                *self._kernel_columns, self.h0, F32(self.slope), spec.ray_length, ar.has_bounds, ar.bounds,
                self._bounds_s_hi, ar.bounds_tag, tmin, tags,
            )  # fmt: skip
            return self._encode(tmin, tags)
        o = ar.pos[:, self.agent, sel]  # [2, m]
        tg = self.targets
        rel, half, grow, act, tag = ar.center[:, tg], ar.half[:, tg], ar.radius[tg], ar.active[tg], ar.tag[tg]
        if areas is not None:
            rel, half, grow, act, tag = rel[..., sel], half[..., sel], grow[:, sel], act[:, sel], tag[:, sel]
        rel -= o[:, None, :]  # [2, T, m]
        grow += r
        g = half
        g += grow  # [2, T, m]
        dd = d[:, :, None, :]  # [2, R, 1, m]
        inv = _safe_inverse(dd)
        a = (rel - g)[:, None] * inv
        b = (rel + g)[:, None] * inv
        lo = np.minimum(a, b)
        hi = np.maximum(a, b)
        tnear = np.maximum(lo[0], lo[1])  # [R, T, m]
        tfar = np.minimum(hi[0], hi[1])
        np.abs(rel, out=rel)
        near = rel < g - TOUCH_DISTANCE
        inside = near[0] & near[1]
        skip = (inside & self._overlaps_start) | ~act[None]
        t = np.maximum(np.maximum(tnear, self._s_lo), F32(0.0))
        hit = (t <= tfar) & (t <= self._s_hi) & ~skip
        t = _where_or_inf(hit, t)
        # Equal entry distances (a gold brick on its pyramid share a footprint): the collider nearer to
        # the sphere's centre height is met first.
        h = self.h0 + self.slope * t
        gap = np.maximum(np.maximum(self._bottom - h, h - self._top), F32(0.0))
        t_gap = gap
        t_gap *= F32(1e-3)
        t_gap += t
        best = np.argmin(_where_or_inf(hit, t_gap), axis=1)  # [R, m]
        cols = np.arange(m)
        tmin = t[np.arange(t.shape[0])[:, None], best, cols]
        tags = tag[best, cols]
        if ar.has_bounds:
            tb = self._cast_bounds(d, o, ar.bounds[:, sel], r)
            closer = tb < tmin
            tmin = np.where(closer, tb, tmin)
            tags = np.where(closer, np.int16(ar.bounds_tag), tags)
        return self._encode(tmin, tags)

    def _cast_bounds(self, d: np.ndarray, o: np.ndarray, bounds: np.ndarray, r: np.float32) -> np.ndarray:
        """Distance [R, m] to the first outer wall a ray (directions [2, R, m] from origins [2, m]) meets
        below the walls' top, else inf."""
        room_hi = bounds[2:4] - r - o
        room_lo = bounds[0:2] + r - o
        room_hi = np.where(room_hi < TOUCH_DISTANCE, np.inf, room_hi)[:, None, :]
        room_lo = np.where(room_lo > -TOUCH_DISTANCE, -np.inf, room_lo)[:, None, :]
        safe = np.where(np.abs(d) < 1e-12, F32(1e-12), d)
        t = np.where(d > 0, room_hi, room_lo) / safe
        t = np.where(t >= 0, t, np.inf)
        tb = np.minimum(t[0], t[1]).astype(F32)
        return np.where(tb <= self._bounds_s_hi, tb, np.inf).astype(F32)

    def observe(self) -> np.ndarray:
        return self.perceive()

    def restart(self, areas: np.ndarray) -> np.ndarray:
        return self.perceive(areas)
