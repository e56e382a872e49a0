"""FoodCollector (mlx.envs.native.foodcollector): the env contract, hybrid actions, eating, the laser and the
frozen state, the grid's layout, MaxStep and seeding; a tiny PPO run through `python -m mlx`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import run_mlx

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.checker import check_env
from mlx.envs.native.foodcollector import (
    AGENTS,
    BEHAVIOR,
    FREEZE_DECISIONS,
    GRID,
    MAX_DECISIONS,
    NUM_FOOD,
    FoodCollectorEnv,
)

FOOD, AGENT, WALL, BAD, FROZEN = range(5)  # grid channels


def staged(positions: dict[int, tuple[float, float]], food: dict[int, tuple[float, float]]) -> FoodCollectorEnv:
    """One area: agents where given (others in a far corner), every heading +z, food where given, the rest
    of the food piled far from everyone."""
    env = make_env("foodcollector", 1, 0)
    env.reset()
    ar = env.arena
    for k in range(AGENTS):
        x, z = positions.get(k, (-40.0 + 3 * k, -40.0))
        ar.pos[:, k, 0] = (x, z)
    ar.heading[:] = 0.0
    ar.stop()
    ar.center[:, env._food, 0] = np.array([40.0, 40.0])[:, None]
    for i, (x, z) in food.items():
        ar.center[:, i, 0] = (x, z)
    return env


def act(env: FoodCollectorEnv, continuous: dict[int, tuple[float, float, float]], fire: tuple[int, ...] = ()) -> None:
    c = np.zeros((env.n * AGENTS, 3), np.float32)
    d = np.zeros((env.n * AGENTS, 1), np.int32)
    for k, v in continuous.items():
        c[k] = v
    for k in fire:
        d[k] = 1
    env.set_actions(BEHAVIOR, ActionTuple(continuous=c, discrete=d))
    env.step()


def test_the_env_contract():
    check_env(lambda seed: make_env("foodcollector", num_areas=2, seed=seed), steps=30)


def test_specs_hybrid_actions_and_agent_ids():
    env = make_env("foodcollector", 3, 0)
    spec = env.behavior_specs[BEHAVIOR]
    assert spec.action_spec.continuous_size == 3 and spec.action_spec.discrete_branches == (2,)
    assert [o.shape for o in spec.observation_specs] == [(40, 40, 5)] and GRID.tags[FROZEN] == "frozenAgent"
    env.reset()
    decision, _ = env.get_steps(BEHAVIOR)
    assert len(decision) == 3 * AGENTS and decision.obs[0].shape == (15, 40, 40, 5)
    np.testing.assert_array_equal(decision.agent_id, np.arange(15))
    with pytest.raises(EnvError, match=r"continuous actions of shape \(15, 3\)"):
        env.set_actions(BEHAVIOR, ActionTuple(continuous=np.zeros((3, 3), np.float32), discrete=np.zeros((15, 1), int)))


def test_green_food_pays_one_and_red_food_costs_one_and_both_respawn():
    env = staged({0: (0.0, 0.0), 1: (10.0, 0.0)}, {0: (0.0, 1.3), NUM_FOOD: (10.0, 1.3)})
    act(env, {0: (1.0, 0.0, 0.0), 1: (1.0, 0.0, 0.0)})
    decision, _ = env.get_steps(BEHAVIOR)
    np.testing.assert_array_equal(decision.reward, [1.0, -1.0, 0.0, 0.0, 0.0])
    moved = env.arena.center[:, [0, NUM_FOOD], 0]
    assert not np.allclose(moved, [[0.0, 10.0], [1.3, 1.3]]), "eaten food respawns elsewhere"
    assert (np.abs(moved) <= 45).all()
    act(env, {})
    assert (env.get_steps(BEHAVIOR)[0].reward == 0).all()


def test_the_laser_freezes_the_first_agent_hit_for_40_decisions_and_a_frozen_agent_cannot_move_or_eat():
    env = staged({0: (0.0, 0.0), 1: (0.0, 10.0)}, {0: (0.0, 11.2)})
    act(env, {}, fire=(0,))
    assert env.frozen[:, 0].tolist() == [False, True, False, False, False]
    assert env.arena.tags[env.arena.tag[env.arena.W + 1, 0]] == "frozenAgent"
    grid = env.get_steps(BEHAVIOR)[0].obs[0]
    # Agent 0 sees agent 1 ten metres ahead on the frozen channel (row 20 - 10 = 10, centre columns).
    assert grid[0, 10, 19:21, FROZEN].all() and not grid[0, :, :, AGENT].any()
    start = env.arena.pos[:, 1, 0].copy()
    for _ in range(FREEZE_DECISIONS - 1):  # frozen for the hit's decision and 39 more
        act(env, {1: (1.0, 0.0, 1.0)}, fire=(1,))
        assert env.get_steps(BEHAVIOR)[0].reward[1] == 0.0
        assert env.frozen[1, 0] and not env.frozen[0, 0], "a frozen agent's laser does not fire"
    np.testing.assert_array_equal(env.arena.pos[:, 1, 0], start)
    assert env.arena.heading[1, 0] == 0.0
    act(env, {1: (1.0, 0.0, 0.0)})
    assert not env.frozen[1, 0]
    assert env.get_steps(BEHAVIOR)[0].reward[1] == 1.0, "thawed, it moves and eats"


def test_the_laser_is_blocked_by_food_and_reaches_25_metres():
    env = staged({0: (0.0, 0.0), 1: (0.0, 10.0), 2: (20.0, 0.0), 3: (20.0, 28.0)}, {5: (0.0, 5.0)})
    act(env, {}, fire=(0, 2))
    assert not env.frozen[:, 0].any(), "food in the way and an agent beyond 25 m stay unhit"


def test_turning_follows_the_sign_of_c2_six_degrees_a_physics_step():
    env = staged({0: (0.0, 0.0), 1: (10.0, 0.0)}, {})
    act(env, {0: (0.0, 0.0, 0.3), 1: (0.0, 0.0, -1.0)})
    np.testing.assert_allclose(env.arena.heading[:2, 0], [-math.radians(30), math.radians(30)], atol=1e-5)


def test_the_grid_turns_with_the_agent():
    env = staged({0: (0.0, 0.0)}, {0: (0.5, 3.5), NUM_FOOD: (-3.5, 0.5)})
    act(env, {})
    grid = env.get_steps(BEHAVIOR)[0].obs[0][0]  # row 0 farthest ahead, column 0 leftmost, 1 m cells
    assert grid[16, 20, FOOD] == 1 and grid[19, 16, BAD] == 1 and grid[..., FOOD].sum() == 1
    env.arena.heading[0, 0] = math.pi / 2  # now facing +x: the green item is on the left, the red behind
    act(env, {})
    grid = env.get_steps(BEHAVIOR)[0].obs[0][0]
    assert grid[19, 16, FOOD] == 1 and grid[23, 19, BAD] == 1
    assert not grid[..., WALL].any()
    env.arena.pos[:, 0, 0] = (0.0, 45.0)
    act(env, {})
    assert env.get_steps(BEHAVIOR)[0].obs[0][0][..., WALL].any()


def test_maxstep_interrupts_every_agent_and_the_food_carries_over():
    env = make_env("foodcollector", 2, 0)
    env.reset()
    zero = ActionTuple(continuous=np.zeros((10, 3), np.float32), discrete=np.zeros((10, 1), np.int32))
    for _ in range(MAX_DECISIONS - 1):
        env.set_actions(BEHAVIOR, zero)
        env.step()
        assert len(env.get_steps(BEHAVIOR)[1]) == 0
    food = env.arena.center[:, env._food].copy()
    env.set_actions(BEHAVIOR, zero)
    env.step()
    decision, terminal = env.get_steps(BEHAVIOR)
    np.testing.assert_array_equal(terminal.agent_id, np.arange(10))
    assert terminal.interrupted.all() and len(decision) == 10
    kept = (env.arena.center[:, env._food] == food).all(0).mean()
    assert kept > 0.9, "agent episodes do not respawn the food (only eaten items move)"


def test_a_seed_fixes_the_play():
    def play(seed: int) -> list[np.ndarray]:
        env = make_env("foodcollector", 2, seed)
        env.reset()
        rng = np.random.default_rng(7)
        spec = env.behavior_specs[BEHAVIOR].action_spec
        out = []
        for _ in range(20):
            decision, _ = env.get_steps(BEHAVIOR)
            out += [decision.obs[0], decision.reward]
            env.set_actions(BEHAVIOR, spec.random(len(decision), rng))
            env.step()
        return out

    a, b, c = play(1), play(1), play(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_a_bad_agent_scale_is_refused():
    with pytest.raises(EnvError, match="agent_scale"):
        make_env("foodcollector", 1, 0, parameters={"agent_scale": 0.0})


def test_a_tiny_ppo_run_trains_and_writes_stats(workdir):
    proc = run_mlx(
        "env=foodcollector", "env.num_areas=1", "trainer.max_steps=1500",
        "trainer.summary_freq=500", "trainer.hyperparameters.buffer_size=500",
        "trainer.hyperparameters.batch_size=100", "trainer.network_settings.hidden_units=16",
        "trainer.time_horizon=50", "tracking=none", "progress=plain", "run_id=f", "seed=0",
        cwd=workdir, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in (workdir / "results/f/run_logs/stats.jsonl").read_text().splitlines()]
    assert rows and max(r.get("step", 0) for r in rows) >= 1000


def test_mlx_env_serves_it_over_grpc_as_the_native_env_plays():
    """`mlx-env foodcollector`: the hybrid actions and the grid go through ML-Agents' protocol unchanged."""
    from mlx.envs.unity.env import UnityEnv, remote_command

    remote = UnityEnv(command=remote_command("foodcollector"), base_port=0, num_areas=2, seed=4)
    native = make_env("foodcollector", 2, 4)
    try:
        assert remote.behavior_specs == native.behavior_specs
        native.reset()
        rng = np.random.default_rng(0)
        spec = native.behavior_specs[BEHAVIOR].action_spec
        for _ in range(8):
            (d, _), (nd, _) = remote.get_steps(BEHAVIOR), native.get_steps(BEHAVIOR)
            np.testing.assert_array_equal(d.obs[0], nd.obs[0])
            np.testing.assert_array_equal(d.reward, nd.reward)
            actions = spec.random(len(d), rng)
            actions.discrete[:] = 1  # everyone fires: freezes happen on both sides alike
            remote.set_actions(BEHAVIOR, actions)
            native.set_actions(BEHAVIOR, actions)
            remote.step()
            native.step()
        assert native.frozen.any()
    finally:
        remote.close()
