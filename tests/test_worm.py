"""Worm on MuJoCo (mlx.envs.native.worm): the env contract, the reward against a hand computation, the
dynamic target, the joint drives' mapping of actions to upstream's limits and strengths, the layout."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # as mlx.envs.native.locomotion does, before mujoco loads
pytest.importorskip("mujoco")

import mujoco  # noqa: E402

from mlx.envs import make_env  # noqa: E402
from mlx.envs.api import ActionTuple  # noqa: E402
from mlx.envs.checker import check_env  # noqa: E402
from mlx.envs.native.limbs import from_to_rotation, to_unity_quat, yaw_quat  # noqa: E402
from mlx.envs.native.locomotion import SPAWN_RADIUS  # noqa: E402
from mlx.envs.native.worm import BEHAVIOR_NAME, WORM, WormEnv  # noqa: E402


def pose(env: WormEnv, area: int, yaw_deg: float, velocity: tuple[float, float, float], target_deg: float) -> None:
    """Area's worm at rest pose turned by yaw about its head, moving as one body at ``velocity``; its target
    10 m from the head in direction target_deg."""
    d = env.data
    env._reset_areas(np.array([area]))
    q = env.qroot[area]
    head = env.home[area]
    yaw = yaw_quat(np.radians(yaw_deg))
    rest = env.rest_qpos[q : q + 3]
    offset = rest - head
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    d.qpos[q : q + 3] = head + (c * offset[0] - s * offset[1], s * offset[0] + c * offset[1], offset[2])
    d.qpos[q + 3 : q + 7] = yaw
    d.qpos[env.qhinge[area]] = 0.0
    d.qvel[env.vroot[area] : env.vroot[area] + 6] = (*velocity, 0.0, 0.0, 0.0)
    t = env.qtarget[area]
    a = math.radians(target_deg)
    d.qpos[t : t + 3] = head + (10 * math.cos(a), 10 * math.sin(a), 0.0)
    mujoco.mj_forward(env.model, d)


def test_env_contract():
    check_env(lambda seed: make_env("worm", num_areas=3, seed=seed), steps=20)


def test_specs_and_first_observation():
    env = make_env("worm", num_areas=2, seed=0)
    assert isinstance(env, WormEnv)
    spec = env.behavior_specs[BEHAVIOR_NAME]
    assert [o.shape for o in spec.observation_specs] == [(64,)]
    assert spec.action_spec.continuous_size == 9 and spec.action_spec.discrete_branches == ()
    env.reset()
    obs = env.get_steps(BEHAVIOR_NAME)[0].obs[0]
    assert obs.shape == (2, 64) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[:, 1:4], [[0, 0, 10]] * 2, atol=1e-5)  # the goal velocity, cube frame
    np.testing.assert_allclose(obs[:, 0], WORM.height / 10, atol=1e-5)  # the head's ray to the floor
    np.testing.assert_allclose(obs[:, 12], 0.0)  # head not touching the ground at the start
    np.testing.assert_allclose(obs[:, 19], 1.0)  # head strength: full at the start


def test_reward_matches_hand_computation():
    env = WormEnv(num_areas=3, seed=0)
    env.reset()
    # area 0: facing the target, 5 m/s towards it; area 1: turned 20 degrees off; area 2: 40 degrees off.
    towards = (5 * math.cos(math.radians(30)), 5 * math.sin(math.radians(30)), 0.0)
    pose(env, 0, yaw_deg=30.0, velocity=towards, target_deg=30)
    pose(env, 1, yaw_deg=20.0, velocity=(3.0, 0.0, 0.0), target_deg=0)
    pose(env, 2, yaw_deg=40.0, velocity=(10.0, 0.0, 0.0), target_deg=0)
    reward = env._physics_reward()
    speed0 = (1 - 0.5**2) ** 2
    d1 = math.hypot(10 - 3.0, 0.0)
    speed1 = (1 - (d1 / 10) ** 2) ** 2
    np.testing.assert_allclose(reward, [speed0 * 1.0, speed1 * (1 - 20 / 180), 0.0], atol=1e-6)
    assert np.all((reward >= 0) & (reward <= 1))


def test_rewards_stay_in_unit_range_per_physics_step():
    env = WormEnv(num_areas=4, seed=1)
    env.reset()
    rng = np.random.default_rng(1)
    for _ in range(10):
        env.set_actions(BEHAVIOR_NAME, env.spec.action_spec.random(4, rng))
        env.step()
        reward = env.get_steps(BEHAVIOR_NAME)[0].reward
        assert np.all((reward >= 0) & (reward <= 5))  # five physics steps, each in [0, 1]


def test_target_moves_when_touched():
    env = WormEnv(num_areas=2, seed=0)
    env.reset()
    d = env.data
    head = d.xpos[env.body[0, 0]].copy()
    t = env.qtarget[0]
    d.qpos[t : t + 3] = head + (1.0, 0.0, 0.0)  # overlapping the head: a touch
    other = env.target_position(np.array([1]))[0]
    mujoco.mj_forward(env.model, d)
    env.step()
    moved = env.target_position(np.array([0]))[0]
    assert np.linalg.norm(moved[:2] - head[:2]) > 2.0
    assert np.linalg.norm(moved[:2] - env.home[0, :2]) <= SPAWN_RADIUS + 1.0
    assert np.linalg.norm(env.target_position(np.array([1]))[0][:2] - other[:2]) < 0.5  # untouched: stays


def test_joint_targets_and_strengths_map_to_upstream_limits():
    env = WormEnv(num_areas=3, seed=0)
    env.reset()
    cont = np.zeros((3, 9), np.float32)
    cont[0, :6], cont[1, :6], cont[2, :6] = -1.0, 1.0, 0.0
    cont[0, 6:], cont[1, 6:], cont[2, 6:] = -1.0, 1.0, 0.0
    cont[2, 0] = 0.5  # head x: three quarters of the way from -60 to 60 = 30 degrees
    env.set_actions(BEHAVIOR_NAME, ActionTuple(continuous=cont, discrete=np.zeros((len(cont), 0), np.int32)))
    target = env.joint_target  # radians, per hinge in creature.dofs order (= the action order here)
    np.testing.assert_allclose(target[0], np.radians(-60.0))
    np.testing.assert_allclose(target[1], np.radians(60.0))
    np.testing.assert_allclose(target[2, env.target_order[0]], np.radians(30.0))
    np.testing.assert_allclose(env.data.ctrl[env.actuator], target)  # what MuJoCo's drives pull towards
    kp = env.model.actuator_gainprm[env.actuator, 0]  # the strength fraction scales the drive
    np.testing.assert_allclose(kp[0], 0.0)
    np.testing.assert_allclose(kp[1], WORM.spring)
    np.testing.assert_allclose(kp[2], WORM.spring / 2)
    np.testing.assert_allclose(env.model.actuator_biasprm[env.actuator, 2][2], -WORM.damping / 2)
    # the strength fraction is what the observation reports
    env.step()
    obs = env.get_steps(BEHAVIOR_NAME)[0].obs[0]
    np.testing.assert_allclose(obs[:, [19, 34, 49]], [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]], atol=1e-6)


def test_drives_reach_their_targets():
    """A held target pulls the joint there (slerp drive as per-axis PD): head y to +30 degrees."""
    env = WormEnv(num_areas=1, seed=0)
    env.reset()
    cont = np.zeros((1, 9), np.float32)
    cont[0, 1] = 0.5  # head y: 30 degrees
    cont[0, 6:] = 1.0
    for _ in range(20):
        env.set_actions(BEHAVIOR_NAME, ActionTuple(continuous=cont, discrete=np.zeros((len(cont), 0), np.int32)))
        env.step()
    head_y = env.data.qpos[env.qhinge[0, env.target_order[1]]]
    assert abs(math.degrees(head_y) - 30.0) < 5.0


def test_from_to_rotation_is_unitys():
    """FromToRotation(a, b) written as Unity would: the Unity quaternion of the MuJoCo rotation a -> b."""
    a = np.array([[1.0, 0.0, 0.0]])
    b = np.array([[0.0, 1.0, 0.0]])  # 90 degrees to the left, about MuJoCo's +z
    mj = yaw_quat(np.array([math.pi / 2]))
    np.testing.assert_allclose(from_to_rotation(a, b), to_unity_quat(mj), atol=1e-12)
    # Unity: a turn to the left is about -y (left-handed), (x, y, z, w) = (0, -sin 45, 0, cos 45)
    np.testing.assert_allclose(from_to_rotation(a, b)[0], [0, -math.sqrt(0.5), 0, math.sqrt(0.5)], atol=1e-12)


def test_random_play_stays_finite():
    env = WormEnv(num_areas=4, seed=3)
    env.reset()
    rng = np.random.default_rng(3)
    for _ in range(100):
        env.set_actions(BEHAVIOR_NAME, env.spec.action_spec.random(4, rng))
        env.step()
    assert env.data.warning[mujoco.mjtWarning.mjWARN_BADQACC].number == 0
    assert np.isfinite(env.data.qvel).all()


def test_render_draws_each_area_with_mujoco():
    """mode=watch pictures come from MuJoCo's offscreen renderer (MUJOCO_GL=egl by default)."""
    env = WormEnv(num_areas=2, seed=0)
    env.reset()
    try:
        pictures = env.render(np.arange(2))
    except Exception as exc:  # no OpenGL on this machine: the env says how to get one
        pytest.skip(f"no offscreen OpenGL here: {exc}")
    finally:
        env.close()
    assert pictures.shape == (2, 240, 320, 3) and pictures.dtype == np.uint8
    assert pictures.std() > 5.0  # a scene, not a blank frame
