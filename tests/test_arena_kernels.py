"""The compiled arena (mlx.envs.native.arena_kernels) computes what the numpy form computes: every env on the
arena engine gives the same observations, rewards and agent ids under the same seeded random actions with
``arena.COMPILED`` on and off (values equal; a zero's sign may differ where numpy's own vector and scalar
loops pick differently between -0.0 and +0.0)."""

from __future__ import annotations

import numpy as np
import pytest

import mlx.envs.native.arena as arena_module
from mlx.envs import make_env
from mlx.envs.native.arena import Arena, BodySpec, StaticSpec
from mlx.envs.native.rays import RaySensor, RaySensorSpec, TiltedRaySensor
from tests.compiled_play import assert_same, records


def play(name: str, areas: int, steps: int, compiled: bool, monkeypatch, parameters=None) -> list[np.ndarray]:
    monkeypatch.setattr(arena_module, "COMPILED", compiled)
    return records(make_env(name, num_areas=areas, seed=0, parameters=parameters), steps)


@pytest.mark.parametrize(
    ("name", "steps"),
    [("pushblock", 400), ("hallway", 400), ("pyramids", 400), ("dungeonescape", 300), ("foodcollector", 150)],
)
def test_envs_play_the_same_compiled(name, steps, monkeypatch):
    """Episodes end and restart on the way (resets cast for a subset of areas), pushes and touches happen."""
    compiled = play(name, 6, steps, True, monkeypatch)
    assert_same(compiled, play(name, 6, steps, False, monkeypatch))


def test_pushblock_with_friction_and_a_small_block_plays_the_same(monkeypatch):
    """Per-area masses, sizes and floor friction (the environment parameters) reach the kernel."""
    parameters = {"block_scale": 1.2, "dynamic_friction": 0.4, "static_friction": 0.6, "block_drag": 2.0}
    compiled = play("pushblock", 5, 300, True, monkeypatch, parameters)
    assert_same(compiled, play("pushblock", 5, 300, False, monkeypatch, parameters))


def crowded_arena(n: int, seed: int) -> Arena:
    """Bodies pressed against each other, against solid statics and triggers and against the bounds, turning
    agents: every contact branch of the solver, in every area differently."""
    rng = np.random.default_rng(seed)
    arena = Arena(
        n,
        [
            BodySpec.circle("a", 0.5, mass=10, drag=2, tag="agent"),
            BodySpec.circle("b", 0.6, mass=3, drag=0.5, friction=(0.3, 0.4), tag="agent"),
            BodySpec.box("block", (1.0, 0.7), mass=5, drag=1, tag="block"),
        ],
        [
            StaticSpec("wall1", (2, 0), (0.5, 3)),
            StaticSpec("wall2", (-2, 1), (1, 0.5), tag="wall"),
            StaticSpec("zone", (0, -2), (1.5, 1.5), solid=False, tag="goal"),
        ],
        bounds=(-5, -5, 5, 5),
        num_agents=2,
        run_speed=2,
        turn_speed=150,
    )
    arena.pos[:] = rng.uniform(-5.5, 5.5, arena.pos.shape).astype(np.float32)
    arena.heading[:] = rng.uniform(-3, 3, arena.heading.shape).astype(np.float32)
    arena.vel[:] = rng.normal(0, 3, arena.vel.shape).astype(np.float32)
    arena.set_mass(2, rng.uniform(1, 20, n))
    arena.set_active("wall2", rng.random(n) < 0.7)
    return arena


def test_crowded_arena_steps_and_casts_the_same(monkeypatch):
    n = 9
    arenas = [crowded_arena(n, 4) for _ in range(2)]
    spec = RaySensorSpec(("agent", "block", "goal", "wall"), 3, 80, 0.4, 9.0)
    sensors = [(RaySensor(a, spec, 0), TiltedRaySensor(a, spec, 2.0, 1)) for a in arenas]
    rng = np.random.default_rng(1)
    touched = np.zeros(3, int)  # steps with a pair, a static, a bound touched
    for step in range(200):
        commands = rng.integers(-1, 2, (3, 2, n)).astype(np.float32)
        frames = []
        for compiled, arena, (flat, tilted) in zip((True, False), arenas, sensors, strict=True):
            monkeypatch.setattr(arena_module, "COMPILED", compiled)
            arena.drive(commands[0], commands[1], commands[2] * (step % 3 > 0))
            arena.clear_touches()
            arena.step(5)
            subset = np.array([4, 0, 7])
            frames.append((flat.perceive(), tilted.perceive(), flat.perceive(subset), tilted.perceive(subset)))
        a, b = arenas
        for field in ("center", "vel", "heading", "touch_static", "touch_pair", "touch_bounds"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), (step, field)
        for x, y in zip(*frames, strict=True):
            assert np.array_equal(x, y), step
        touched += [a.touch_pair.any(), a.touch_static.any(), a.touch_bounds.any()]
    assert (touched > 10).all(), touched  # the scene does touch


def test_kernel_constants_are_the_engines():
    """numba compiles module constants into the cached kernels, so the kernels keep their own copies."""
    from mlx.envs.native import arena_kernels, contact

    assert np.float32(arena_module.TOUCH_DISTANCE) == arena_kernels.TOUCH
    assert arena_kernels.NEG_TOUCH == -arena_kernels.TOUCH
    assert np.float32(contact._TINY) == arena_kernels.TINY
