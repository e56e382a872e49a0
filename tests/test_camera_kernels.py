"""The arena camera's compiled form (mlx.envs.native.camera_kernels) draws what its numpy form draws: the same
pictures, pixel for pixel, in VisualPushBlock, VisualPyramids and VisualHallway under the same seeded random
actions (and so the same rewards, agent ids and episodes) with ``arena.COMPILED`` on and off, and from
scattered arena states (cameras inside and against boxes, in corners, facing walls, along the axes)."""

from __future__ import annotations

import numpy as np
import pytest

import mlx.envs.native.arena as arena_module
from mlx.envs import make_env
from mlx.envs.native import arena_camera, camera_kernels, contact
from mlx.envs.native.arena import F32
from tests.compiled_play import assert_same, records

VISUAL = ("visualpushblock", "visualpyramids", "visualhallway")


def play(name: str, compiled: bool, steps: int, monkeypatch, max_decisions: int | None) -> list[np.ndarray]:
    """Every record the trainer sees (``max_decisions``: episodes cut that short, so that areas restart on the
    way)."""
    monkeypatch.setattr(arena_module, "COMPILED", compiled)
    env = make_env(name, num_areas=6, seed=0)
    if max_decisions is not None:
        env.max_decisions = max_decisions
    return records(env, steps)


@pytest.mark.parametrize("max_decisions", [None, 40], ids=["episodes", "short-episodes"])
@pytest.mark.parametrize("name", VISUAL)
def test_visual_arenas_play_the_same_compiled(name, max_decisions, monkeypatch):
    compiled = play(name, True, 150, monkeypatch, max_decisions)
    plain = play(name, False, 150, monkeypatch, max_decisions)
    assert_same(compiled, plain)
    if max_decisions is not None:  # areas restarted on the way (terminal agent ids)
        assert sum(r.shape[0] for r in compiled[5::7]) >= 6 * (150 // max_decisions)


def scatter(env, seed: int) -> None:
    """Puts every area of the env's arena in a random state: the camera's agent anywhere in the room, at its
    corners and walls (and a little beyond), inside, on the edges and on the corners of the other colliders'
    footprints; the other bodies moved around it; random headings, some along the axes or making a column's
    ray exactly axis-parallel; some colliders switched off."""
    rng = np.random.default_rng(seed)
    cam = env.camera
    ar = cam.arena
    n, k = ar.n, cam._agent
    agent = ar.W + k
    lo, hi = ar.bounds[:2], ar.bounds[2:]
    span = hi - lo
    ar.pos[:, :, :] = (lo[:, None, :] + rng.random((2, ar.K, n)) * span[:, None, :]).astype(F32)
    slots = cam._slots
    for a in range(n):
        mode = a % 6
        if mode == 1:  # a corner or a wall of the room, exactly on it, within touch or a little beyond
            corner = np.where(rng.random(2) < 0.5, lo[:, a], hi[:, a])
            offset = rng.choice([0.0, 0.01, 0.02, 0.5, -0.05], 2)
            p = corner + np.where(corner == lo[:, a], offset, -offset)
            if rng.random() < 0.5:  # on one wall only
                axis = rng.integers(2)
                p[axis] = lo[axis, a] + rng.random() * span[axis, a]
            ar.pos[:, k, a] = p.astype(F32)
        elif mode in (2, 3) and len(slots):  # inside, on an edge or at a corner of another collider
            s = rng.choice(slots)
            c, h = ar.center[:, s, a], ar.half[:, s, a] + ar.radius[s, a]
            if mode == 2:
                p = c + (rng.random(2) * 2 - 1) * h
            else:
                p = c + rng.choice([-1.0, 1.0], 2) * h * rng.choice([1.0, 1.0001, 0.9999, 0.5], 2)
            ar.pos[:, k, a] = p.astype(F32)
        elif mode == 4 and len(slots):  # just outside another collider, facing it
            s = rng.choice(slots)
            c, h = ar.center[:, s, a], ar.half[:, s, a] + ar.radius[s, a]
            axis = rng.integers(2)
            p = c.copy()
            p[axis] += rng.choice([-1.0, 1.0]) * (h[axis] + rng.choice([0.0, 0.1, 0.3, 1.0]))
            ar.pos[:, k, a] = p.astype(F32)
        # Other bodies close to the camera now and then (in front of it, overlapping each other).
        for b in range(ar.K):
            if b != k and rng.random() < 0.4:
                ar.pos[:, b, a] = (ar.pos[:, k, a] + rng.normal(0, 1.5, 2)).astype(F32)
    heading = rng.uniform(-np.pi, np.pi, (ar.A, n)).astype(F32)
    axes = rng.random(n) < 0.3
    heading[k, axes] = (rng.integers(-2, 3, axes.sum()) * F32(np.pi / 2)).astype(F32)
    aligned = rng.random(n) < 0.15  # a column's yaw exactly zero: its ray along z (dx == 0)
    heading[k, aligned] = -rng.choice(cam._angle, aligned.sum())
    ar.heading[:] = heading
    switch = rng.random((ar.S, n)) < 0.1
    ar.active[switch] = ~ar.active[switch]
    ar.active[agent] = True


@pytest.mark.parametrize("name", VISUAL)
@pytest.mark.parametrize("seed", range(4))
def test_the_camera_draws_the_same_compiled_from_scattered_states(name, seed, monkeypatch):
    env = make_env(name, num_areas=96, seed=seed)
    env.reset()
    scatter(env, seed)
    cam = env.camera
    pictures = {}
    for compiled in (True, False):
        monkeypatch.setattr(arena_module, "COMPILED", compiled)
        some = np.random.default_rng(seed).choice(env.n, 17, replace=False)
        mask = np.random.default_rng(seed + 1).random(env.n) < 0.5
        pictures[compiled] = [cam.render(), cam.render(some), cam.render(mask), cam.render(np.arange(env.n)[::-1])]
    for a, b in zip(pictures[True], pictures[False], strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a, b)
    # the scattered states show prisms, walls, sky and floor
    assert len(np.unique(pictures[True][0].reshape(-1, 3), axis=0)) >= 4


def test_the_camera_draws_the_same_compiled_at_other_sizes_and_heights(monkeypatch):
    """Other resolutions (odd too), a camera below and above the prisms' tops, a hidden slot."""
    env = make_env("visualpyramids", num_areas=24, seed=3)
    env.reset()
    scatter(env, 3)
    ar = env.camera.arena
    for size, eye, hidden in ((7, 0.2, ()), (33, 1.0, ("rubble",)), (64, 2.6, ()), (84, 12.0, ())):
        cam = arena_camera.ArenaCamera(ar, size=size, eye=eye, hidden=hidden)
        monkeypatch.setattr(arena_module, "COMPILED", True)
        compiled = cam.render()
        monkeypatch.setattr(arena_module, "COMPILED", False)
        assert np.array_equal(compiled, cam.render()), (size, eye)


def test_kernel_constants_are_the_cameras():
    """The kernel keeps its own copy of the constants (numba freezes globals, keyed on its own file)."""
    assert F32(arena_camera.NEAR) == camera_kernels.NEAR
    assert F32(arena_camera.WALL_CAP) == camera_kernels.WALL_CAP
    assert F32(arena_module.TOUCH_DISTANCE) == camera_kernels.TOUCH
    assert -F32(arena_module.TOUCH_DISTANCE) == camera_kernels.NEG_TOUCH
    assert F32(contact._TINY) == camera_kernels.TINY
    for name in ("NEAR", "WALL_CAP", "TOUCH", "NEG_TOUCH", "TINY", "ZERO", "ONE", "INF"):
        assert getattr(camera_kernels, name).dtype == np.float32, name
