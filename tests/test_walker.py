"""Walker on MuJoCo (mlx.envs.native.walker): the env contract, the 243-float layout, the walker reward
with the head's facing against a hand computation, ground contact, the joint drives' mapping and order,
the torso-mass parameters."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco")

import mujoco  # noqa: E402

from mlx.envs import make_env  # noqa: E402
from mlx.envs.api import ActionTuple, EnvError  # noqa: E402
from mlx.envs.checker import check_env  # noqa: E402
from mlx.envs.native.limbs import yaw_quat  # noqa: E402
from mlx.envs.native.walker import BEHAVIOR_NAME, MAX_SPEED, MIN_SPEED, ORDER, WALKER, WalkerEnv  # noqa: E402


def actions(cont: np.ndarray) -> ActionTuple:
    return ActionTuple(continuous=cont.astype(np.float32), discrete=np.zeros((len(cont), 0), np.int32))


def place(env: WalkerEnv, area: int, yaw_deg: float, velocity, target_deg: float, lift: float = 0.0) -> None:
    """The area's walker at rest pose turned by yaw (raised by ``lift``), every part moving at velocity; its
    target 20 m from the hips in direction target_deg."""
    d = env.data
    env._reset_areas(np.array([area]))
    q = env.qroot[area]
    d.qpos[q : q + 3] = env.home[area] + (0.0, 0.0, lift)
    d.qpos[q + 3 : q + 7] = yaw_quat(np.radians(yaw_deg))
    d.qpos[env.qhinge[area]] = 0.0
    d.qvel[env.vroot[area] : env.vroot[area] + 6] = (*velocity, 0.0, 0.0, 0.0)
    t = env.qtarget[area]
    a = math.radians(target_deg)
    d.qpos[t : t + 3] = d.qpos[q : q + 3] + (20 * math.cos(a), 20 * math.sin(a), 0.0)
    mujoco.mj_forward(env.model, d)


def test_env_contract():
    check_env(lambda seed: make_env("walker", num_areas=2, seed=seed), steps=10)


def test_specs_and_first_observation_layout():
    env = make_env("walker", num_areas=2, seed=0)
    spec = env.behavior_specs[BEHAVIOR_NAME]
    assert [o.shape for o in spec.observation_specs] == [(243,)]
    assert spec.action_spec.continuous_size == 39
    env.reset()
    obs = env.get_steps(BEHAVIOR_NAME)[0].obs[0]
    speed = env.speed
    assert np.all((speed >= MIN_SPEED) & (speed <= MAX_SPEED))
    np.testing.assert_allclose(obs[:, 0], speed, rtol=1e-5)
    np.testing.assert_allclose(obs[:, 4:7], np.stack([0 * speed, 0 * speed, speed], 1), atol=1e-5)
    np.testing.assert_allclose(obs[:, 7:11], obs[:, 11:15], atol=1e-5)  # hips and head face the same way
    hips = obs[:, 18:28]  # touching, velocity, angular velocity, position relative to the hips: all zero
    np.testing.assert_allclose(hips, 0.0, atol=1e-5)
    chest = obs[:, 28:43]
    np.testing.assert_allclose(chest[:, 7:10], [[0, 0.49104, 0]] * 2, atol=1e-4)  # Unity's up: 0.491 above
    np.testing.assert_allclose(chest[:, 10:14], [[0, 0, 0, 1]] * 2, atol=1e-6)  # unrotated against the spine
    np.testing.assert_allclose(chest[:, 14], 1.0)  # full strength at the start
    # the left hand (no rotation or strength): 0.9735 out from the hips at chest height; the cube faces the
    # target, so the horizontal part turns with the walker's random yaw
    hand_l = 18 + sum(10 + (5 if name not in ("hips", "handL", "handR") else 0) for name in ORDER[:12])
    rel = obs[:, hand_l + 7 : hand_l + 10]
    np.testing.assert_allclose(rel[:, 1], 0.49104, atol=1e-4)
    np.testing.assert_allclose(np.hypot(rel[:, 0], rel[:, 2]), 0.9735, atol=1e-4)
    assert obs.shape[1] == hand_l + 10 + 15 + 15 + 10  # handL, armR, forearmR, handR: the last parts


def test_reward_matches_hand_computation():
    env = WalkerEnv(num_areas=2, seed=0)
    env.reset()
    place(env, 0, yaw_deg=0.0, velocity=(2.5, 0.0, 0.0), target_deg=0.0, lift=1.0)
    place(env, 1, yaw_deg=60.0, velocity=(0.0, 0.0, 0.0), target_deg=0.0, lift=1.0)
    env.speed[:] = (5.0, 5.0)
    reward = env._physics_reward()
    expected = [(1 - 0.5**2) ** 2 * 1.0, 0.0]  # half speed facing it; standing still earns nothing
    np.testing.assert_allclose(reward, expected, atol=1e-6)
    env.data.qvel[env.vroot[1] : env.vroot[1] + 3] = (5.0, 0.0, 0.0)  # at speed, head 60 degrees off
    mujoco.mj_forward(env.model, env.data)
    np.testing.assert_allclose(env._physics_reward()[1], (math.cos(math.radians(60)) + 1) / 2, atol=1e-6)


def test_falling_on_the_hips_ends_with_minus_one():
    env = WalkerEnv(num_areas=2, seed=0)
    env.reset()
    place(env, 0, yaw_deg=0.0, velocity=(0.0, 0.0, 0.0), target_deg=0.0, lift=0.09 - WALKER.height)
    env.step()
    _, terminal = env.get_steps(BEHAVIOR_NAME)
    assert terminal.agent_id.tolist() == [0] and terminal.reward[0] == pytest.approx(-1.0)
    assert not terminal.interrupted[0]


def test_joint_targets_follow_the_prefab_limits_and_action_order():
    env = WalkerEnv(num_areas=1, seed=0)
    env.reset()
    names = [(WALKER.limbs[i].name, dof.name) for i, dof in WALKER.dofs]
    cont = np.zeros((1, 39))
    cont[0, 6] = -1.0  # thighL x: the first target after chest (3) and spine (3)
    cont[0, 10] = 1.0  # shinL x
    cont[0, 24] = 1.0  # head x: the second to last target
    cont[0, 26 + 2] = -1.0  # the head's strength: third (chest, spine, head, ...)
    env.set_actions(BEHAVIOR_NAME, actions(cont))
    target = dict(zip(names, np.degrees(env.joint_target[0]), strict=True))
    assert target[("thighL", "x")] == pytest.approx(-90.0)
    assert target[("shinL", "x")] == pytest.approx(120.0)
    assert target[("head", "x")] == pytest.approx(10.0)
    assert target[("forearmR", "x")] == pytest.approx(80.0)  # 0 -> the middle of 0..160
    assert target[("chest", "z")] == pytest.approx(0.0)
    head = [i for i, (limb, _) in enumerate(names) if limb == "head"]
    kp = env.model.actuator_gainprm[env.actuator[0], 0]
    np.testing.assert_allclose(kp[head], 0.0)
    assert np.all(np.delete(kp, head) == WALKER.spring / 2)  # strength action 0: half


def test_a_bent_knee_folds_the_shin_backwards():
    """The sign convention: upstream's knee range 0..120 bends the leg the human way."""
    env = WalkerEnv(num_areas=1, seed=0)
    env.reset()
    names = [(WALKER.limbs[i].name, dof.name) for i, dof in WALKER.dofs]
    knee = names.index(("shinL", "x"))
    env.data.qpos[env.qhinge[0, knee]] = math.radians(90)
    mujoco.mj_kinematics(env.model, env.data)
    shin = env.data.xpos[env.body[0, ORDER.index("shinL")]]
    thigh = env.data.xpos[env.body[0, ORDER.index("thighL")]]
    forward = env.data.xmat[env.body[0, 0]].reshape(3, 3)[:, 0]
    assert np.dot(shin - thigh, forward) < -0.1  # behind the thigh


def test_torso_masses_are_environment_parameters():
    env = WalkerEnv(num_areas=2, seed=0, parameters={"hip_mass": 12.0, "chest_mass": 5.0})
    env.reset()
    body = env.body[:, ORDER.index("hips")]
    np.testing.assert_allclose(env.model.body_mass[body], 12.0)
    np.testing.assert_allclose(env.model.body_mass[env.body[:, ORDER.index("chest")]], 5.0)
    np.testing.assert_allclose(env.model.body_mass[env.body[:, ORDER.index("spine")]], 8.0)
    with pytest.raises(EnvError, match="hip_mass"):
        env.set_environment_parameter("hip_mass", 0.0)


def test_random_play_is_stable():
    env = WalkerEnv(num_areas=3, seed=4)
    env.reset()
    rng = np.random.default_rng(4)
    for _ in range(60):
        env.set_actions(BEHAVIOR_NAME, env.spec.action_spec.random(3, rng))
        env.step()
    assert env.blowups == 0 and np.isfinite(env.data.qvel).all()
