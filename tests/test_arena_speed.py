"""The arena engine's speed paths (issue 22) compute exactly what the plain forms did: the stacked and
compacted ray casts against the per-axis dense cast (kept here as the reference), and the contact
early-outs against the same envs stepped without them (bit-identical trajectories, hashed)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import mlx.envs.native.arena as arena_module
from mlx.envs import make_env
from mlx.envs.native.arena import _TINY, F32, TOUCH_DISTANCE
from mlx.envs.native.contact import _has_negative_zero
from mlx.envs.native.rays import _cast_bounds_xz, cast_bounds, cast_rounded_boxes_xz, ray_directions_xz


def _safe_inverse(d: np.ndarray) -> np.ndarray:
    return F32(1.0) / np.where(np.abs(d) < F32(_TINY), F32(_TINY), d)


def dense_cast(dx, dz, rx, rz, hx, hz, rad, present) -> np.ndarray:
    """The cast as it was before the speed work: per axis, every ray against every box, dense."""
    ex = np.abs(rx) - hx
    ez = np.abs(rz) - hz
    gap = np.hypot(np.maximum(ex, F32(0.0)), np.maximum(ez, F32(0.0)))
    skip = ((ex <= 0) & (ez <= 0)) | (gap < rad + F32(TOUCH_DISTANCE)) | ~present
    ddx, ddz = dx[:, None, :], dz[:, None, :]
    inv_x, inv_z = _safe_inverse(ddx), _safe_inverse(ddz)
    gx, gz = hx + rad, hz + rad
    ax, bx = (rx - gx)[None] * inv_x, (rx + gx)[None] * inv_x
    az, bz = (rz - gz)[None] * inv_z, (rz + gz)[None] * inv_z
    tnear = np.maximum(np.minimum(ax, bx), np.minimum(az, bz))
    tfar = np.minimum(np.maximum(ax, bx), np.maximum(az, bz))
    square = (tnear <= tfar) & (tfar >= 0) & ~skip[None]
    tin = np.maximum(tnear, F32(0.0))
    px, pz = tin * ddx - rx[None], tin * ddz - rz[None]
    corner = (np.abs(px) > hx[None]) & (np.abs(pz) > hz[None])
    kx, kz = rx[None] + np.copysign(hx[None], px), rz[None] + np.copysign(hz[None], pz)
    b = kx * ddx + kz * ddz
    disc = b * b - (kx * kx + kz * kz - (rad * rad)[None])
    tc = b - np.sqrt(np.maximum(disc, F32(0.0)))
    t = np.where(corner, np.where((disc >= 0) & (tc >= 0), tc, np.inf), tnear)
    return np.where(square & (t >= 0), t, np.inf).astype(F32, copy=False)


def random_scene(seed: int, rays: int = 7, boxes: int = 9, areas: int = 33):
    rng = np.random.default_rng(seed)
    heading = rng.uniform(-4, 4, areas).astype(F32)
    angles = np.radians(rng.uniform(0, 180, rays))
    basis = (
        np.stack([np.cos(angles), np.sin(angles)]).astype(F32)[:, :, None],
        np.stack([np.sin(angles), -np.cos(angles)]).astype(F32)[:, :, None],
    )
    d = ray_directions_xz(basis, heading)
    r = rng.uniform(-15, 15, (2, boxes, areas)).astype(F32)
    r[:, 0] = rng.uniform(-0.5, 0.5, (2, areas))  # some origins inside or against a box
    h = rng.uniform(0, 3, (2, boxes, areas)).astype(F32)
    h[:, 1] = 0.0  # circles
    rad = rng.uniform(0, 1, (boxes, areas)).astype(F32)
    rad[2] = 0.0  # sharp boxes
    present = rng.random((boxes, areas)) < 0.85
    return d, r, h, rad, present


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("seed", range(6))
def test_stacked_compacted_cast_is_the_dense_cast(seed):
    d, r, h, rad, present = random_scene(seed)
    old = dense_cast(d[0], d[1], r[0], r[1], h[0], h[1], rad, present)
    assert np.isfinite(old).mean() > 0.05  # the scenes do hit things
    assert same_bits(cast_rounded_boxes_xz(d, r, h, rad, present), old)
    # With a reach, boxes wholly beyond it are not cast: equal within the reach, beyond it either way.
    reach = 9.0
    new = cast_rounded_boxes_xz(d, r, h, rad, present, reach)
    near = old <= reach
    assert same_bits(new[near], old[near])
    assert np.all((new[~near] > reach) | np.isinf(new[~near]))
    assert (np.isinf(new) & np.isfinite(old)).any()  # some far boxes were skipped


def test_stacked_bounds_cast_is_the_per_axis_cast():
    rng = np.random.default_rng(3)
    d, *_ = random_scene(3)
    o = rng.uniform(-9, 9, (2, d.shape[2])).astype(F32)
    o[:, :3] = [[9.4, -9.6, 0.0], [0.0, 9.7, -9.45]]  # origins within reach of a wall
    bounds = np.repeat(np.array([-10, -10, 10, 10], F32)[:, None], d.shape[2], 1)
    old = []
    for dd, oo, lo, hi in ((d[0], o[0], bounds[0], bounds[2]), (d[1], o[1], bounds[1], bounds[3])):
        room_hi = np.where(hi - F32(0.5) - oo < TOUCH_DISTANCE, np.inf, hi - F32(0.5) - oo).astype(F32)
        room_lo = np.where(lo + F32(0.5) - oo > -TOUCH_DISTANCE, -np.inf, lo + F32(0.5) - oo).astype(F32)
        t = np.where(dd > 0, room_hi, room_lo) * _safe_inverse(dd)
        old.append(np.where(t >= 0, t, np.inf).astype(F32))
    old = np.minimum(old[0], old[1])
    assert same_bits(_cast_bounds_xz(d, o, bounds, F32(0.5)), old)
    assert same_bits(cast_bounds(d[0], d[1], o[0], o[1], bounds, F32(0.5)), old)


def test_negative_zero_detection():
    assert not _has_negative_zero(np.array([0.0, 1.0, -2.0], F32))
    assert _has_negative_zero(np.array([1.0], F32), np.array([0.0, -0.0], F32))


def trace(name: str, areas: int, steps: int) -> str:
    """A hash of every observation, reward and agent id an env gives under seeded random actions."""
    env = make_env(name, num_areas=areas, seed=0)
    rng = np.random.default_rng(0)
    env.reset()
    digest = hashlib.sha256()
    for _ in range(steps):
        for behavior in env.behavior_specs:
            decisions, terminals = env.get_steps(behavior)
            for part in (*decisions.obs, decisions.reward, decisions.agent_id, *terminals.obs, terminals.reward):
                digest.update(np.ascontiguousarray(part).tobytes())
            env.set_actions(behavior, env.behavior_specs[behavior].action_spec.random(len(decisions), rng))
        env.step()
    return digest.hexdigest()


@pytest.mark.parametrize("name", ["pushblock", "pyramids", "hallway", "dungeonescape", "pushblockcollab"])
def test_contact_early_outs_keep_trajectories_bit_identical(name, monkeypatch):
    """The early-outs skip updates that would add only zeros: the same bits as always doing them."""
    monkeypatch.setattr(arena_module, "COMPILED", False)  # the numpy form, whose early-outs are tested here
    fast = trace(name, 4, 120)
    monkeypatch.setattr(arena_module, "_any", lambda mask: True)  # never skip (and always re-aim commands)
    assert trace(name, 4, 120) == fast
