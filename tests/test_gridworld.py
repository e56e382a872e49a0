"""GridWorld: grid moves with masks, goal rewards, MaxStep, the camera image and the goal signal."""

from __future__ import annotations

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError, ObservationType
from mlx.envs.checker import check_env
from mlx.envs.native.gridworld import (
    AGENT,
    BEHAVIOR_NAME,
    CLEAR,
    GREEN_PLUS,
    HEIGHT,
    MAX_STEP,
    MOVES,
    OBJECT_COLOURS,
    RED_EX,
    WALL,
    WIDTH,
    GridWorldEnv,
    world_to_pixel,
)


def act(actions) -> ActionTuple:
    a = np.asarray(actions, np.int32).reshape(-1, 1)
    return ActionTuple(np.zeros((len(a), 0), np.float32), a)


def random_legal(decision, rng: np.random.Generator) -> np.ndarray:
    mask = decision.action_mask[0]
    return np.array([rng.choice(np.flatnonzero(row)) for row in mask])


def legal_moves(state: dict) -> np.ndarray:
    """[n, 5]: the actions whose move keeps each agent on its area's grid."""
    target = state["agent"][:, None, :] + MOVES[None]  # [n, action, xz]
    return ((target >= 0) & (target < state["grid_size"][:, None, None])).all(axis=-1)


def decode(image: np.ndarray, grid: int) -> np.ndarray:
    """Object kind per cell [g, g] (indexed [x, z]; -1 empty) read from the colour at each cell centre."""
    x, z = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    row, col = world_to_pixel(grid, x, z)
    centre = image[np.floor(row).astype(int), np.floor(col).astype(int)]  # [g, g, 3]
    kinds = np.full((grid, grid), -1)
    for kind, colour in OBJECT_COLOURS.items():
        kinds[np.abs(centre - np.asarray(colour)).max(axis=-1) < 0.02] = kind
    return kinds


def expected_kinds(state: dict, area: int) -> np.ndarray:
    g = state["grid_size"][area]
    kinds = np.full((g, g), -1)
    for (x, z), kind in zip(state["goal_xz"][area], state["goal_kind"][area], strict=True):
        if kind >= 0:
            kinds[x, z] = kind
    x, z = state["agent"][area]
    kinds[x, z] = AGENT
    return kinds


def test_contract_and_spec():
    check_env(lambda seed: make_env("gridworld", num_areas=4, seed=seed), steps=150)
    spec = GridWorldEnv(2).behavior_specs[BEHAVIOR_NAME]
    camera, goal = spec.observation_specs
    assert camera.shape == (64, 84, 3) and camera.observation_type == ObservationType.DEFAULT
    assert goal.shape == (2,) and goal.observation_type == ObservationType.GOAL_SIGNAL
    assert spec.action_spec.discrete_branches == (5,) and spec.action_spec.continuous_size == 0


@pytest.mark.parametrize("grid", [5, 3, 9])
def test_masks_forbid_exactly_the_off_grid_moves(grid):
    env = GridWorldEnv(16, seed=1, parameters={"gridSize": grid})
    env.reset()
    rng = np.random.default_rng(0)
    seen_masked = np.zeros(5, bool)
    for _ in range(60):
        decision, _ = env.get_steps(BEHAVIOR_NAME)
        on_grid = legal_moves(env.state())
        np.testing.assert_array_equal(decision.action_mask[0], on_grid)
        seen_masked |= ~on_grid.all(axis=0)
        env.set_actions(BEHAVIOR_NAME, act(random_legal(decision, rng)))
        env.step()
    assert seen_masked.tolist() == [False, True, True, True, True]  # every move was masked somewhere


def test_legal_moves_go_where_they_say_and_walls_block_masked_ones():
    env = GridWorldEnv(1, seed=0)
    env.reset()
    env.debug_set_state([0], agent=[[0, 0]], goals=[[[4, 4], [4, 3]]])
    for action, expected in [(1, (0, 1)), (4, (1, 1)), (2, (1, 0)), (3, (0, 0)), (0, (0, 0))]:
        env.set_actions(BEHAVIOR_NAME, act([action]))
        env.step()
        assert tuple(env.state()["agent"][0]) == expected
    for blocked in (2, 3):  # masked at (0, 0); a trainer that ignores the mask bumps into the wall
        assert not env.get_steps(BEHAVIOR_NAME)[0].action_mask[0][0, blocked]
        env.set_actions(BEHAVIOR_NAME, act([blocked]))
        env.step()
        decision, terminal = env.get_steps(BEHAVIOR_NAME)
        assert tuple(env.state()["agent"][0]) == (0, 0) and not len(terminal)
        assert decision.reward[0] == np.float32(-0.01)


@pytest.mark.parametrize(
    ("goal", "action", "reward"),
    [(GREEN_PLUS, 1, 1.0), (GREEN_PLUS, 2, -1.0), (RED_EX, 2, 1.0), (RED_EX, 1, -1.0)],
)
def test_reaching_a_goal_sets_the_reward_and_ends_the_episode(goal, action, reward):
    env = GridWorldEnv(3, seed=2)
    env.reset()
    # Area 1: green plus above the agent, red ex below it. Areas 0 and 2 only step (no-op).
    env.debug_set_state([1], agent=[[2, 2]], goals=[[[2, 3], [2, 1]]], goal=[goal])
    goal_cell = (2, 3) if action == 1 else (2, 1)
    env.set_actions(BEHAVIOR_NAME, act([0, action, 0]))
    env.step()
    decision, terminal = env.get_steps(BEHAVIOR_NAME)
    assert terminal.agent_id.tolist() == [1]
    assert terminal.reward[0] == np.float32(reward) and not terminal.interrupted[0]
    np.testing.assert_array_equal(terminal.obs[1][0], np.eye(2, dtype=np.float32)[goal])
    # The terminal image shows the agent on the goal's cell.
    kinds = decode(terminal.obs[0][0], 5)
    assert kinds[goal_cell] == AGENT and (kinds == AGENT).sum() == 1
    np.testing.assert_array_equal(decision.reward, np.array([-0.01, 0.0, -0.01], np.float32))
    assert env.state()["steps"].tolist() == [1, 0, 1]  # area 1 started a new episode


def test_max_step_interrupts_with_the_step_penalty():
    env = GridWorldEnv(2, seed=3)
    env.reset()
    for step in range(1, MAX_STEP + 1):
        env.set_actions(BEHAVIOR_NAME, act([0, 0]))  # no-op: never reaches a goal
        env.step()
        decision, terminal = env.get_steps(BEHAVIOR_NAME)
        if step < MAX_STEP:
            assert not len(terminal)
            np.testing.assert_array_equal(decision.reward, np.full(2, -0.01, np.float32))
    assert terminal.agent_id.tolist() == [0, 1] and terminal.interrupted.all()
    np.testing.assert_array_equal(terminal.reward, np.full(2, -0.01, np.float32))
    np.testing.assert_array_equal(decision.reward, np.zeros(2, np.float32))


@pytest.mark.parametrize(("grid", "plus", "ex"), [(5, 1, 1), (3, 2, 1), (4, 3, 3), (5, 0, 4)])
def test_image_shows_the_agent_and_goals_where_the_state_says(grid, plus, ex):
    env = GridWorldEnv(8, seed=4, parameters={"gridSize": grid, "numPlusGoals": plus, "numExGoals": ex})
    env.reset()
    rng = np.random.default_rng(1)
    for _ in range(25):
        decision, terminal = env.get_steps(BEHAVIOR_NAME)
        state = env.state()
        image = decision.obs[0]
        assert image.shape == (8, HEIGHT, WIDTH, 3) and image.dtype == np.float32
        assert image.min() >= 0 and image.max() <= 1
        assert np.array_equal(np.rint(image * 255).astype(np.uint8) * np.float32(1 / 255), image)  # 8-bit
        for area in range(8):
            np.testing.assert_array_equal(decode(image[area], grid), expected_kinds(state, area))
            # The agent: a blue square filling its cell, centred where the camera puts the cell centre.
            blue = np.abs(image[area] - np.asarray(OBJECT_COLOURS[AGENT])).max(axis=-1) < 0.02
            rows, cols = np.nonzero(blue)
            row, col = world_to_pixel(grid, *state["agent"][area])
            assert abs(rows.mean() + 0.5 - row) < 0.6 and abs(cols.mean() + 0.5 - col) < 0.6
            assert abs(blue.sum() - (HEIGHT / grid) ** 2) < 4 * HEIGHT / grid
        np.testing.assert_array_equal(decision.obs[1], np.eye(2, dtype=np.float32)[state["goal"]])
        env.set_actions(BEHAVIOR_NAME, act(random_legal(decision, rng)))
        env.step()


def test_beside_the_floor_are_the_walls_then_the_clear_colour():
    small, large = GridWorldEnv(1, seed=0), GridWorldEnv(1, seed=0, parameters={"gridSize": 10})
    small.reset()
    large.reset()
    image = small.render()[0] / 255  # gridSize 5: 12.8 px per cell, a 10-pixel wall band each side
    for band in (image[:, :10], image[:, -10:]):
        np.testing.assert_allclose(band, np.broadcast_to(WALL, band.shape), atol=0.003)
    assert np.abs(image[:, 10:-10] - np.asarray(WALL)).max(axis=-1).min() > 0.1
    # gridSize 10: 6.4 px per cell; the wall spans x in [-1.5, -0.5], columns 3.6 to 10.
    row = large.render()[0][32] / 255
    np.testing.assert_allclose(row[:3], np.broadcast_to(CLEAR, (3, 3)), atol=0.003)
    np.testing.assert_allclose(row[4:10], np.broadcast_to(WALL, (6, 3)), atol=0.003)
    np.testing.assert_allclose(row[-3:], np.broadcast_to(CLEAR, (3, 3)), atol=0.003)


def test_goal_one_hot_follows_each_episode_goal_and_both_colours_occur():
    env = GridWorldEnv(32, seed=5)
    env.reset()
    goals = []
    rng = np.random.default_rng(2)
    for _ in range(40):
        decision, terminal = env.get_steps(BEHAVIOR_NAME)
        np.testing.assert_array_equal(decision.obs[1], np.eye(2, dtype=np.float32)[env.state()["goal"]])
        goals += env.state()["goal"].tolist()
        env.set_actions(BEHAVIOR_NAME, act(random_legal(decision, rng)))
        env.step()
    assert 0.35 < np.mean(goals) < 0.65


def test_seeds_decide_the_episodes():
    states = []
    for seed in (7, 7, 8):
        env = GridWorldEnv(6, seed=seed)
        env.reset()
        states.append(env.state())
    for key in states[0]:
        np.testing.assert_array_equal(states[0][key], states[1][key])
    assert not np.array_equal(states[0]["agent"], states[2]["agent"])
    cells = np.concatenate([states[0]["agent"][:, None], states[0]["goal_xz"]], axis=1)  # distinct cells
    assert all(len({tuple(c) for c in area}) == 3 for area in cells)


def test_parameters_apply_at_each_areas_next_episode():
    env = GridWorldEnv(2, seed=6)
    env.reset()
    env.set_environment_parameter("gridSize", 3)
    env.set_environment_parameter("numExGoals", 2)
    assert env.state()["grid_size"].tolist() == [5, 5]
    env.debug_set_state([0], agent=[[2, 2]], goals=[[[2, 3], [4, 4]]])
    env.set_actions(BEHAVIOR_NAME, act([1, 0]))  # area 0 ends its episode on the plus goal
    env.step()
    state = env.state()
    assert state["grid_size"].tolist() == [3, 5]
    assert state["goal_kind"][0].tolist() == [GREEN_PLUS, RED_EX, RED_EX]
    assert state["goal_kind"][1].tolist() == [GREEN_PLUS, RED_EX, -1]
    decision, _ = env.get_steps(BEHAVIOR_NAME)
    np.testing.assert_array_equal(decode(decision.obs[0][0], 3), expected_kinds(state, 0))
    np.testing.assert_array_equal(decode(decision.obs[0][1], 5), expected_kinds(state, 1))
    np.testing.assert_array_equal(decision.action_mask[0], legal_moves(state))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("gridsize", 5, "unknown environment parameter 'gridsize'"),
        ("gridSize", 5.5, "must be a whole number"),
        ("gridSize", 1, "must be in 2..32"),
        ("gridSize", 33, "must be in 2..32"),
        ("numExGoals", -1, "must be >= 0"),
        ("numPlusGoals", 24, "no room for the agent and 25 goals"),
    ],
)
def test_bad_parameters_are_refused(key, value, message):
    with pytest.raises(EnvError, match=message):
        GridWorldEnv(1, parameters={key: value})
    env = GridWorldEnv(1)
    with pytest.raises(EnvError, match=message):
        env.set_environment_parameter(key, value)
    assert env.parameters.values == {"gridSize": 5.0, "numPlusGoals": 1.0, "numExGoals": 1.0}


def test_bad_actions_are_refused():
    env = GridWorldEnv(2)
    env.reset()
    for bad, message in [
        (act([0, 1, 2]), r"shape \(2, 1\)"),
        (act([0, 5]), r"in 0..4"),
        (act([-1, 0]), r"in 0..4"),
        (ActionTuple(np.zeros((2, 0), np.float32), np.zeros((2, 1), np.float32)), "integer"),
    ]:
        with pytest.raises(EnvError, match=message):
            env.set_actions(BEHAVIOR_NAME, bad)
    with pytest.raises(EnvError, match="unknown behaviour"):
        env.set_actions("Grid", act([0, 0]))
    with pytest.raises(EnvError, match="reset"):
        GridWorldEnv(1).step()
