"""VisualFoodCollector (mlx.envs.native.visualfoodcollector): the contract, the camera's picture of what lies
ahead (food colours, a frozen agent), the frozen flag, and mlx-learn running upstream's config on it."""

from __future__ import annotations

import numpy as np

from mlx.envs import make_env
from mlx.envs.api import ActionTuple
from mlx.envs.checker import check_env
from mlx.envs.native.foodcollector import AGENTS, NUM_FOOD
from mlx.envs.native.render import TAG_COLOURS
from mlx.envs.native.visualfoodcollector import BEHAVIOR, SIZE, VisualFoodCollectorEnv

MID = SIZE // 2


def colour(name: str) -> np.ndarray:
    return np.array(TAG_COLOURS[name], np.float32) / 255


def staged(positions: dict[int, tuple[float, float]], food: dict[int, tuple[float, float]]) -> VisualFoodCollectorEnv:
    env = make_env("visualfoodcollector", 1, 0)
    env.reset()
    ar = env.arena
    for k in range(AGENTS):
        ar.pos[:, k, 0] = positions.get(k, (-40.0 + 3 * k, -40.0))
    ar.heading[:] = 0.0
    ar.stop()
    ar.center[:, env._food, 0] = np.array([40.0, 40.0])[:, None]
    for i, xz in food.items():
        ar.center[:, i, 0] = xz
    return env


def step(env: VisualFoodCollectorEnv, fire: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    d = np.zeros((AGENTS, 1), np.int32)
    d[list(fire)] = 1
    env.set_actions(BEHAVIOR, ActionTuple(continuous=np.zeros((AGENTS, 3), np.float32), discrete=d))
    env.step()
    obs = env.get_steps(BEHAVIOR)[0].obs
    return obs[0], obs[1]


def test_the_env_contract_and_specs():
    check_env(lambda seed: make_env("visualfoodcollector", num_areas=2, seed=seed), steps=20)
    spec = make_env("visualfoodcollector", 1, 0).behavior_specs[BEHAVIOR]
    assert [o.shape for o in spec.observation_specs] == [(SIZE, SIZE, 3), (1,)]
    assert spec.action_spec.continuous_size == 3 and spec.action_spec.discrete_branches == (2,)


def test_the_camera_shows_food_ahead_below_the_horizon_and_sky_above():
    env = staged({0: (0.0, 0.0)}, {0: (-1.0, 6.0), NUM_FOOD: (1.0, 6.0)})
    image, _ = step(env)
    me = image[0]
    assert (me[MID + 2, MID - 12] == colour("food")).all() and (me[MID + 2, MID + 12] == colour("badFood")).all()
    assert not (me[MID - 3] == colour("food")).all(-1).any(), "objects as tall as the camera stay below the horizon"
    assert me[0, 0, 2] > me[0, 0, 0], "sky above"
    # Nearer looks bigger: the red item moved to 3 m covers more rows.
    env.arena.center[:, NUM_FOOD, 0] = (0.5, 3.0)
    near, _ = step(env)
    rows = lambda img: (img[0][:, MID + 12] == colour("badFood")).all(-1).sum()  # noqa: E731
    assert rows(near) > rows(image)


def test_a_frozen_agent_sees_its_flag_and_looks_frozen_to_others():
    env = staged({0: (0.0, 0.0), 1: (0.0, 8.0)}, {})
    image, flag = step(env)
    assert (image[0][MID + 2, MID] == colour("agent")).all() and flag[:, 0].tolist() == [0, 0, 0, 0, 0]
    image, flag = step(env, fire=(0,))
    assert flag[:, 0].tolist() == [0, 1, 0, 0, 0]
    assert (image[0][MID + 2, MID] == colour("frozenAgent")).all()


def test_the_camera_is_deterministic_for_a_seed():
    a, b = (make_env("visualfoodcollector", 2, 5) for _ in range(2))
    for env in (a, b):
        env.reset()
    np.testing.assert_array_equal(a.get_steps(BEHAVIOR)[0].obs[0], b.get_steps(BEHAVIOR)[0].obs[0])
