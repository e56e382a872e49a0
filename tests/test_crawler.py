"""Crawler on MuJoCo (mlx.envs.native.crawler): the env contract, the walker reward against a hand
computation, ground contact ending the episode with -1, the joint drives' mapping, the sensors' layout."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco")

import mujoco  # noqa: E402

from mlx.envs import make_env  # noqa: E402
from mlx.envs.api import ActionTuple  # noqa: E402
from mlx.envs.checker import check_env  # noqa: E402
from mlx.envs.native.crawler import BEHAVIOR_NAME, CRAWLER, MAX_SPEED, MIN_SPEED, CrawlerEnv  # noqa: E402
from mlx.envs.native.limbs import yaw_quat  # noqa: E402


def actions(cont: np.ndarray) -> ActionTuple:
    return ActionTuple(continuous=cont.astype(np.float32), discrete=np.zeros((len(cont), 0), np.int32))


def place(env: CrawlerEnv, area: int, yaw_deg: float, velocity, target_deg: float, lift: float = 0.0) -> None:
    """The area's crawler at rest pose turned by yaw about its body (raised by ``lift``), every part moving
    at ``velocity``; its target 20 m from the body in direction target_deg."""
    d = env.data
    env._reset_areas(np.array([area]))
    q = env.qroot[area]
    d.qpos[q : q + 3] = env.home[area] + (0.0, 0.0, 0.15 + lift)
    d.qpos[q + 3 : q + 7] = yaw_quat(np.radians(yaw_deg))
    d.qpos[env.qhinge[area]] = 0.0
    d.qvel[env.vroot[area] : env.vroot[area] + 6] = (*velocity, 0.0, 0.0, 0.0)
    t = env.qtarget[area]
    a = math.radians(target_deg)
    d.qpos[t : t + 3] = d.qpos[q : q + 3] + (20 * math.cos(a), 20 * math.sin(a), 0.0)
    mujoco.mj_forward(env.model, d)


def test_env_contract():
    check_env(lambda seed: make_env("crawler", num_areas=3, seed=seed), steps=20)


def test_specs_and_first_observations():
    env = make_env("crawler", num_areas=2, seed=0)
    assert isinstance(env, CrawlerEnv)
    spec = env.behavior_specs[BEHAVIOR_NAME]
    assert [(o.shape, o.name) for o in spec.observation_specs] == [
        ((140,), "PhysicsBodySensor"),
        ((32,), "VectorSensor"),
    ]
    assert spec.action_spec.continuous_size == 20
    env.reset()
    physics, vector = env.get_steps(BEHAVIOR_NAME)[0].obs
    speed = env.speed
    assert np.all((speed >= MIN_SPEED) & (speed <= MAX_SPEED))
    np.testing.assert_allclose(vector[:, 0], speed, rtol=1e-5)  # |v_goal - v_avg| at rest
    np.testing.assert_allclose(vector[:, 4:7], np.stack([0 * speed, 0 * speed, speed], 1), atol=1e-5)
    np.testing.assert_allclose(vector[:, 14], 2.15 / 10, atol=1e-5)  # the body's ray to the floor
    np.testing.assert_allclose(vector[:, 24:], 1.0)  # eight strengths, full at the start
    # the physics sensor: the cube (virtual root) first, at the origin of its own frame, unrotated
    np.testing.assert_allclose(physics[:, :7], [[0, 0, 0, 0, 0, 0, 1]] * 2, atol=1e-6)
    np.testing.assert_allclose(physics[:, 7:10], 0.0, atol=1e-6)  # the body sits where the cube is
    # body's model-space rotation undoes FromToRotation(body.forward, cube.forward) (a yaw either way)
    np.testing.assert_allclose(np.abs(physics[:, 10:14]), np.abs(vector[:, 7:11]), atol=1e-5)


def test_reward_matches_hand_computation():
    env = CrawlerEnv(num_areas=3, seed=0)
    env.reset()
    place(env, 0, yaw_deg=0.0, velocity=(5.0, 0.0, 0.0), target_deg=0.0, lift=1.0)
    place(env, 1, yaw_deg=90.0, velocity=(10.0, 0.0, 0.0), target_deg=0.0, lift=1.0)
    place(env, 2, yaw_deg=180.0, velocity=(0.0, 4.0, 0.0), target_deg=90.0, lift=1.0)
    env.speed[:] = (10.0, 10.0, 4.0)  # after place: an episode start draws a new speed
    reward = env._physics_reward()
    expected = [
        (1 - 0.5**2) ** 2 * 1.0,  # half speed, facing the target
        1.0 * 0.5,  # full speed towards the target, body turned 90 degrees: look = (0 + 1) / 2
        1.0 * 0.5,  # at speed towards a target at 90 degrees while facing 180: look = (0 + 1) / 2
    ]
    np.testing.assert_allclose(reward, expected, atol=1e-6)
    assert np.all((reward >= 0) & (reward <= 1))


def test_body_on_the_ground_ends_the_episode_with_minus_one():
    env = CrawlerEnv(num_areas=2, seed=0)
    env.reset()
    place(env, 0, yaw_deg=0.0, velocity=(0.0, 0.0, 0.0), target_deg=0.0, lift=0.49 - 2.15)  # resting on the floor
    env.step()
    decision, terminal = env.get_steps(BEHAVIOR_NAME)
    assert terminal.agent_id.tolist() == [0]
    assert terminal.reward[0] == pytest.approx(-1.0)
    assert not terminal.interrupted[0]
    assert 1 in decision.agent_id  # the other area goes on


def test_joint_targets_follow_upstream_limits_and_action_order():
    env = CrawlerEnv(num_areas=2, seed=0)
    env.reset()
    cont = np.zeros((2, 20))
    cont[0, :12], cont[1, :12] = -1.0, 1.0
    cont[0, 12:], cont[1, 12:] = -1.0, 1.0
    cont[1, 12] = 0.0  # leg0Upper's strength: half
    env.set_actions(BEHAVIOR_NAME, actions(cont))
    names = [(CRAWLER.limbs[i].name, dof.name) for i, dof in CRAWLER.dofs]
    target = dict(zip(names, np.degrees(env.joint_target[0]), strict=True))
    assert target[("leg0Upper", "x")] == pytest.approx(-60.0) and target[("leg0Upper", "y")] == pytest.approx(-20.0)
    assert target[("leg3Lower", "x")] == pytest.approx(0.0)
    target = dict(zip(names, np.degrees(env.joint_target[1]), strict=True))
    assert target[("leg0Upper", "x")] == pytest.approx(0.0) and target[("leg2Upper", "y")] == pytest.approx(20.0)
    assert target[("leg1Lower", "x")] == pytest.approx(150.0)
    # action 8 is leg0Lower's x (after the four upper legs' x, y pairs)
    one = np.zeros((2, 20))
    one[:, 8] = 1.0
    env.set_actions(BEHAVIOR_NAME, actions(one))
    moved = np.flatnonzero(np.abs(env.joint_target[0] - np.radians(75.0)) < 1e-9)
    assert [names[i] for i in np.flatnonzero(np.isclose(np.degrees(env.joint_target[0]), 150.0))] == [
        ("leg0Lower", "x")
    ]
    assert len(moved) == 3  # the other lower legs sit mid-range (0 -> 75 degrees)
    env.set_actions(BEHAVIOR_NAME, actions(cont))
    assert env.strength[0].tolist() == [0.0] * 8
    assert env.strength[1, 0] == 0.5 and env.strength[1, 1:].tolist() == [1.0] * 7
    leg0_upper = [i for i, (limb, _) in enumerate(names) if limb == "leg0Upper"]
    kp = env.model.actuator_gainprm[env.actuator[1], 0]
    np.testing.assert_allclose(kp[leg0_upper], CRAWLER.spring / 2)
    np.testing.assert_allclose(np.delete(kp, leg0_upper), CRAWLER.spring)


def test_random_play_is_stable():
    env = CrawlerEnv(num_areas=4, seed=2)
    env.reset()
    rng = np.random.default_rng(2)
    for _ in range(100):
        env.set_actions(BEHAVIOR_NAME, env.spec.action_spec.random(4, rng))
        env.step()
    assert env.blowups == 0 and np.isfinite(env.data.qvel).all()
