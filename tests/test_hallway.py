"""Hallway (mlx.envs.native.hallway): the env contract, upstream's rules (symbol and goal placement, right and
wrong goals, rewards, episode ends), the stacked ray and step-fraction observations, memory being
needed, actions, parameters and seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.checker import check_env
from mlx.envs.native.hallway import (
    BEHAVIOR_NAME,
    DECISION_PENALTY,
    GOAL_X,
    GROUND_X,
    MAX_DECISIONS,
    PLATE_Z,
    RIGHT_REWARD,
    TAGS,
    WRONG_REWARD,
    HallwayEnv,
)

FRAME = 35  # 5 rays x (5 tags + 2)
COL = {tag: i for i, tag in enumerate(TAGS)}


def act(env: HallwayEnv, action: int | np.ndarray) -> ActionTuple:
    a = np.broadcast_to(np.asarray(action, np.int32), (env.num_areas,)).reshape(-1, 1)
    return ActionTuple(continuous=np.zeros((env.num_areas, 0), np.float32), discrete=a.copy())


def step(env: HallwayEnv, action: int | np.ndarray = 0):
    env.set_actions(BEHAVIOR_NAME, act(env, action))
    env.step()
    return env.get_steps(BEHAVIOR_NAME)


def rays(obs: np.ndarray, area: int = 0) -> np.ndarray:
    """The newest frame of an area's stacked ray observation as [ray, tags + 2]."""
    return obs[area, -FRAME:].reshape(5, len(TAGS) + 2)


def hit(tag: str, distance: float) -> list[float]:
    row = [0.0] * (len(TAGS) + 2)
    row[COL[tag]] = 1.0
    row[-1] = distance / 12.0
    return row


def test_env_contract():
    check_env(lambda seed: make_env("hallway", num_areas=4, seed=seed), steps=150)


def test_specs_and_first_observation():
    env = make_env("hallway", num_areas=3, seed=0)
    assert isinstance(env, HallwayEnv)
    spec = env.behavior_specs[BEHAVIOR_NAME]
    assert [o.shape for o in spec.observation_specs] == [(105,), (3,)]
    assert [o.name for o in spec.observation_specs] == [
        "StackingSensor_size3_RayPerceptionSensor",
        "StackingSensor_size3_VectorSensor_size1",
    ]
    assert spec.action_spec.discrete_branches == (5,) and spec.action_spec.continuous_size == 0
    env.reset()
    dec, term = env.get_steps(BEHAVIOR_NAME)
    assert np.array_equal(dec.agent_id, [0, 1, 2]) and len(term) == 0
    assert np.all(dec.obs[0][:, : 2 * FRAME] == 0.0)  # older frames cleared at an episode start
    assert np.all(dec.obs[1] == 0.0)  # StepCount 0, stacked
    assert np.all(dec.reward == 0.0)


def test_episode_start_layout():
    env = HallwayEnv(num_areas=400, seed=2)
    env.reset()
    ar = env.arena
    sel = env.selection
    assert 0.3 < sel.mean() < 0.7 and 0.3 < env.o_goal_right.mean() < 0.7
    shown = np.where(sel == 0, env._symbols[0], env._symbols[1])
    hidden = np.where(sel == 0, env._symbols[1], env._symbols[0])
    cols = np.arange(env.num_areas)
    assert ar.active[shown, cols].all() and not ar.active[hidden, cols].any()
    sx, sz = ar.center[0, shown, cols], ar.center[1, shown, cols]
    assert np.all(np.abs(sz) <= 5.0)
    # The O symbol moves sideways within +-3 m; the X stays in the middle (as upstream).
    assert np.all(np.abs(sx[sel == 0] - GROUND_X) <= 3.0) and np.ptp(sx[sel == 0]) > 3.0
    assert np.allclose(sx[sel == 1], GROUND_X)
    ax, az = ar.pos[:, 0]
    assert np.all(np.abs(ax - GROUND_X) <= 3.0) and np.all((az >= -20.0) & (az <= -10.0))
    assert np.all(ar.vel == 0.0) and np.ptp(ar.heading) > 5.0
    o_x = ar.center[0, env._o_goal[0]]
    assert np.allclose(o_x, np.where(env.o_goal_right, GOAL_X, -GOAL_X))
    assert np.allclose(ar.center[0, env._x_goal[0]], -o_x)


def test_rays_see_the_symbol_and_walls():
    env = HallwayEnv(num_areas=1, seed=0)
    env.reset()
    ar = env.arena
    ar.pos[:, 0, 0] = (0.0, -10.0)
    ar.heading[0, 0] = 0.0
    ar.stop()
    shown = env._symbols[env.selection[0]]
    ar.center[:, shown, 0] = (0.0, 0.0)
    dec, _ = step(env, 0)
    tag = ("symbol_O", "symbol_X")[env.selection[0]]
    frame = rays(dec.obs[0])
    assert frame[0] == pytest.approx(hit(tag, 10.0 - 0.5 - 0.5), abs=1e-5)  # its face 9.5 m ahead
    # Rays 70 degrees off forward meet the side walls 9 m (for the sphere) sideways.
    assert frame[3] == pytest.approx(hit("wall", 9.0 / math.sin(math.radians(70))), abs=1e-4)
    assert frame[4] == pytest.approx(hit("wall", 9.0 / math.sin(math.radians(70))), abs=1e-4)
    newest = dec.obs[0][0, 2 * FRAME :]
    dec, _ = step(env, 0)
    assert np.array_equal(dec.obs[0][0, FRAME : 2 * FRAME], newest)  # the stack shifts, oldest frame first


def test_goals_are_seen_and_the_symbol_is_out_of_sight_there():
    """Near the goals the symbol is beyond the 12 m rays: telling the goals apart needs memory."""
    env = HallwayEnv(num_areas=1, seed=4)
    env.reset()
    ar = env.arena
    shown = env._symbols[env.selection[0]]
    ar.center[:, shown, 0] = (0.0, 5.0)  # as close to the goals as a symbol gets
    ar.stop()
    for x in (-7.0, 0.0, 7.0):
        ar.pos[:, 0, 0] = (x, 18.5)  # 1.8 m before the plates
        for heading in np.radians(np.arange(0, 360, 10)):
            ar.heading[0, 0] = heading
            frame = env.sensor.perceive()[0].reshape(5, -1)
            assert frame[:, COL["symbol_O"]].max() == 0.0 and frame[:, COL["symbol_X"]].max() == 0.0
    # Facing a goal from 4 m: the ray meets its plate, 5 cm high, which the sphere (0.5 m up, radius
    # 0.5) grazes with an in-plane radius of sqrt(0.5^2 - 0.45^2).
    ar.heading[0, 0] = 0.0
    for x, o_here in ((GOAL_X, env.o_goal_right[0]), (-GOAL_X, not env.o_goal_right[0])):
        ar.pos[:, 0, 0] = (x, 16.0)
        frame = env.sensor.perceive()[0].reshape(5, -1)
        tag = "symbol_O_Goal" if o_here else "symbol_X_Goal"
        assert frame[0] == pytest.approx(hit(tag, PLATE_Z - 2.0 - math.sqrt(0.25 - 0.45**2) - 16.0), abs=1e-4)


@pytest.mark.parametrize("matching", [True, False])
def test_right_and_wrong_goal(matching):
    env = HallwayEnv(num_areas=2, seed=7)
    env.reset()
    ar = env.arena
    # Area 0 stands just before one goal's plate, facing it; area 1 waits in the middle.
    o_x = np.where(env.o_goal_right, GOAL_X, -GOAL_X)
    goal_x = o_x[0] if (env.selection[0] == 0) == matching else -o_x[0]
    ar.pos[:, 0, 0] = (goal_x, PLATE_Z - 2.0 - 0.6)
    ar.pos[:, 0, 1] = (0.0, -15.0)
    ar.heading[0] = 0.0
    ar.stop()
    dec, term = step(env, 1)
    assert term.agent_id.tolist() == [0] and not term.interrupted[0]
    assert term.reward[0] == (RIGHT_REWARD if matching else np.float32(WRONG_REWARD))  # SetReward: exact
    assert dec.reward.tolist() == pytest.approx([0.0, DECISION_PENALTY])
    assert np.all(dec.obs[1][0] == 0.0) and np.all(dec.obs[0][0, : 2 * FRAME] == 0.0)  # a new episode
    assert ar.pos[1, 0, 0] <= -10.0


def test_step_fraction_stack_penalty_and_interruption():
    env = HallwayEnv(num_areas=2, seed=1)
    env.reset()
    for k in range(1, 4):
        dec, term = step(env, 0)
        assert len(term) == 0 and dec.reward == pytest.approx([DECISION_PENALTY] * 2)
        expected = [max(k - 2, 0) * 0.002, max(k - 1, 0) * 0.002, k * 0.002]  # 6 physics steps of 3000 each
        assert dec.obs[1][0] == pytest.approx(expected)
    assert pytest.approx(-1.0) == DECISION_PENALTY * MAX_DECISIONS
    env._steps[:] = MAX_DECISIONS - 1  # skip to the episode's last decision
    dec, term = step(env, 0)
    assert term.agent_id.tolist() == [0, 1] and term.interrupted.all()
    assert term.reward == pytest.approx([DECISION_PENALTY] * 2)
    assert term.obs[1][:, -1] == pytest.approx([1.0, 1.0])  # StepCount == MaxStep
    assert np.all(dec.obs[1] == 0.0) and np.all(dec.reward == 0.0)


def test_actions_move_and_turn():
    env = HallwayEnv(num_areas=5, seed=0)
    env.reset()
    ar = env.arena
    ar.pos[:, 0] = np.array([[0.0], [-5.0]], np.float32)
    ar.heading[:] = 0.0
    ar.stop()
    step(env, np.arange(5))
    assert np.degrees(ar.heading[0]) == pytest.approx([0, 0, 0, 18, -18], abs=1e-4)  # 150 deg/s x 0.12 s
    assert ar.pos[1, 0, 1] > -4.7 and ar.pos[1, 0, 2] < -5.3
    assert ar.pos[1, 0, 0] == -5.0


def test_seeds_give_different_episodes():
    a, b = HallwayEnv(num_areas=8, seed=1), HallwayEnv(num_areas=8, seed=2)
    a.reset()
    b.reset()
    assert not np.array_equal(a.arena.pos, b.arena.pos)


def test_bad_input_is_refused():
    with pytest.raises(EnvError, match="unknown environment parameter 'agentRunSpeed'"):
        make_env("hallway", num_areas=1, seed=0, parameters={"agentRunSpeed": 2.0})
    env = HallwayEnv(num_areas=2, seed=0)
    with pytest.raises(EnvError, match="unknown environment parameter"):
        env.set_environment_parameter("x", 1.0)
    with pytest.raises(EnvError, match="reset"):
        env.step()
    env.reset()
    with pytest.raises(EnvError, match=r"shape \(2, 1\)"):
        env.set_actions(BEHAVIOR_NAME, ActionTuple(np.zeros((2, 0), np.float32), np.zeros((2, 2), np.int32)))
    with pytest.raises(EnvError, match="0..4"):
        env.set_actions(BEHAVIOR_NAME, act(env, -1))
    with pytest.raises(EnvError, match="no continuous"):
        env.set_actions(BEHAVIOR_NAME, ActionTuple(np.zeros((2, 1), np.float32), np.zeros((2, 1), np.int32)))
