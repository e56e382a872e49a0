"""WallJump's compiled form (mlx.envs.native.walljump_kernels) computes what its numpy form computes: the same
observations, rewards and agent ids under the same seeded random actions with ``arena.COMPILED`` on and off
(values equal; a zero's sign may differ where numpy's own vector and scalar loops pick differently between
-0.0 and +0.0), over episodes that end by the goal, by falls and by MaxStep, with wall heights drawn per
episode."""

from __future__ import annotations

import numpy as np
import pytest

import mlx.envs.native.arena as arena_module
from mlx.envs import make_env
from mlx.envs.native import walljump, walljump_kernels
from mlx.params.samplers import AreaSampler, UniformSampler
from tests.compiled_play import assert_same, records


def play(compiled: bool, steps: int, monkeypatch, parameters=None, samplers=None) -> tuple[list[np.ndarray], dict]:
    """Every record the trainer sees (both behaviours' decision and terminal steps), and how episodes ended."""
    monkeypatch.setattr(arena_module, "COMPILED", compiled)
    env = make_env("walljump", num_areas=8, seed=0, parameters=parameters)
    for seed, (key, (low, high)) in enumerate((samplers or {}).items()):
        assert env.set_environment_sampler(key, AreaSampler(UniformSampler(low, high), seed=seed))
    ends = {"goal": 0, "fall": 0, "interrupted": 0}

    def count(terminals) -> None:
        ends["goal"] += int(np.sum(terminals.reward > 0))
        ends["fall"] += int(np.sum((terminals.reward < 0) & ~terminals.interrupted))
        ends["interrupted"] += int(np.sum(terminals.interrupted))

    return records(env, steps, count), ends


@pytest.mark.parametrize(
    ("parameters", "samplers"),
    [
        (None, None),
        ({"no_wall_height": 1.5, "small_wall_height": 3.0, "big_wall_height": 5.5}, None),
        (None, {"small_wall_height": (0.0, 6.0), "big_wall_height": (2.0, 9.0)}),
    ],
    ids=["defaults", "heights", "sampled"],
)
def test_walljump_plays_the_same_compiled(parameters, samplers, monkeypatch):
    compiled, ends = play(True, 600, monkeypatch, parameters, samplers)
    plain, plain_ends = play(False, 600, monkeypatch, parameters, samplers)
    assert ends == plain_ends
    assert ends["goal"] > 0 and ends["fall"] > 0  # episodes end and restart on the way
    assert_same(compiled, plain)


def test_kernel_constants_are_walljumps():
    """The kernels keep their own copy of WallJump's constants (numba freezes globals, keyed on its own file)."""
    names = [n for n in dir(walljump_kernels) if n.isupper() and not n.startswith("_") and hasattr(walljump, n)]
    assert len(names) > 20
    for name in names:
        assert getattr(walljump_kernels, name) == getattr(walljump, name), name
    assert walljump_kernels.TOUCH_DISTANCE == arena_module.TOUCH_DISTANCE
    assert len(walljump.TAGS) == walljump_kernels.NUM_TAGS


def scattered(n: int, seed: int) -> walljump.WallJumpEnv:
    """Areas in random states: agents anywhere around the wall, the block and the goal (inside them, on top,
    off the ground, mid-jump), moving and turning, with random wall heights and commands."""
    rng = np.random.default_rng(seed)
    env = walljump.WallJumpEnv(n, seed=seed)
    env.reset()
    f32 = np.float32
    env.pos[0] = rng.uniform(-12, 12, n).astype(f32)
    env.pos[1] = rng.choice([0.95, 3.0, 5.0], n) + rng.uniform(-0.5, 1.5, n).astype(f32)
    env.pos[2] = rng.uniform(-16, 8, n).astype(f32)
    env.block[0] = rng.uniform(-11, 11, n).astype(f32)
    env.block[1] = np.where(rng.random(n) < 0.5, rng.uniform(-5, 1, n), rng.uniform(-15, 7, n)).astype(f32)
    env.pos[0, : n // 4] = env.block[0, : n // 4] + rng.uniform(-2, 2, n // 4).astype(f32)  # at the block
    env.pos[2, : n // 4] = env.block[1, : n // 4] + rng.uniform(-2, 2, n // 4).astype(f32)
    env.vel[:] = rng.normal(0, 4, (3, n)).astype(f32)
    env.block_vel[:] = rng.normal(0, 2, (2, n)).astype(f32)
    env.heading[:] = rng.uniform(-7, 7, n).astype(f32)
    env.wall_height[:] = rng.choice([0.0, 4.0, 8.0], n) + rng.uniform(0, 1, n).astype(f32)
    env.jump_left[:] = np.where(rng.random(n) < 0.3, rng.uniform(0, 0.2, n), 0).astype(f32)
    env.jump_start[:] = rng.uniform(0.9, 3.5, n).astype(f32)
    env.resting[:] = rng.random(n) < 0.5
    env._set_commands(np.arange(n), rng.integers(0, [3, 3, 3, 2], (n, 4)))
    env._measure()
    env._ground_check()
    return env


def test_scattered_states_perceive_and_step_the_same(monkeypatch):
    """Single calls from states the random policy seldom reaches: every sensor frame (all areas and a subset)
    and a decision's physics (every cached quantity after it)."""
    for seed in range(3):
        results = []
        for compiled in (True, False):
            monkeypatch.setattr(arena_module, "COMPILED", compiled)
            env = scattered(512, seed)
            frames = env._perceive(None) + env._perceive(np.arange(3, 512, 7))
            reward, ended = env._advance()
            state = [env.pos, env.vel, env.heading, env.jump_left, env.jump_start, env.resting, env.block]
            state += [env.block_vel, env._block_gap2, env._wall_gap2, env._below, env._small, env._outcome]
            results.append([*frames, reward, ended, *state, *env._perceive(None)])
        assert np.count_nonzero(results[1][7]) > 0  # some ended (falls, goals)
        assert_same(*results)
