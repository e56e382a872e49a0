"""PushBlock (mlx.envs.native.pushblock): the env contract, upstream's rules (rewards, episode ends, spawn),
observations against hand-computed rays, actions, parameters and seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.checker import check_env
from mlx.envs.native.pushblock import (
    BEHAVIOR_NAME,
    DECISION_PENALTY,
    GOAL_REWARD,
    MAX_DECISIONS,
    SPAWN_HALF,
    PushBlockEnv,
)

FRAME = 35  # 7 rays x (3 tags + 2)
GOAL_FACE = -10.5 + 4.0 * 1.0748733 / 2  # the goal's face towards the floor, z = -8.35


def act(env: PushBlockEnv, action: int | np.ndarray) -> ActionTuple:
    a = np.broadcast_to(np.asarray(action, np.int32), (env.num_areas,)).reshape(-1, 1)
    return ActionTuple(continuous=np.zeros((env.num_areas, 0), np.float32), discrete=a.copy())


def step(env: PushBlockEnv, action: int | np.ndarray | None = None):
    if action is not None:
        env.set_actions(BEHAVIOR_NAME, act(env, action))
    env.step()
    return env.get_steps(BEHAVIOR_NAME)


def place(env: PushBlockEnv, agent, block, heading: float = math.pi) -> None:
    """Put every area's agent and block somewhere (a test's scene) at rest."""
    ar = env.arena
    ar.pos[:, 0] = np.asarray(agent, np.float32)[:, None]
    ar.pos[:, 1] = np.asarray(block, np.float32)[:, None]
    ar.heading[:] = heading
    ar.stop()


def rays(frame: np.ndarray) -> np.ndarray:
    return frame.reshape(7, 5)


def test_env_contract():
    check_env(lambda seed: make_env("pushblock", num_areas=4, seed=seed), steps=150)


def test_specs():
    env = make_env("pushblock", num_areas=3, seed=0)
    assert isinstance(env, PushBlockEnv)
    spec = env.behavior_specs[BEHAVIOR_NAME]
    assert [o.shape for o in spec.observation_specs] == [(105,), (105,)]
    assert [o.name for o in spec.observation_specs] == [
        "StackingSensor_size3_OffsetRayPerceptionSensor",
        "StackingSensor_size3_RayPerceptionSensor",
    ]
    assert spec.action_spec.discrete_branches == (7,) and spec.action_spec.continuous_size == 0
    env.reset()
    dec, term = env.get_steps(BEHAVIOR_NAME)
    assert np.array_equal(dec.agent_id, [0, 1, 2]) and len(term) == 0
    for obs in dec.obs:
        assert obs.dtype == np.float32 and obs.shape == (3, 105)
        assert np.all(obs[:, : 2 * FRAME] == 0.0)  # a new episode: the two older frames are cleared
    assert np.all(dec.reward == 0.0)


def test_rays_see_goal_block_and_walls():
    env = PushBlockEnv(num_areas=1, seed=0)
    env.reset()
    place(env, agent=(1.0, 0.0), block=(6.0, 6.0), heading=math.pi)  # facing the goal (-z)
    dec, _ = step(env, 0)
    low, high = rays(dec.obs[1][0, -FRAME:]), rays(dec.obs[0][0, -FRAME:])
    # Centre ray: the goal's face 8.35 m ahead, less the sphere's radius, over the 12 m ray.
    assert low[0] == pytest.approx([0, 1, 0, 0, (-GOAL_FACE - 0.5) / 12], abs=1e-5)
    # Facing -z, ray 5 (the agent's right) points to -x: that wall is 13.5 m away, out of reach;
    # ray 6 (left, +x) meets the +x wall 11.5 m away, at 11 m for the sphere.
    assert low[5] == pytest.approx([0, 0, 0, 1, 1])
    assert low[6] == pytest.approx([0, 0, 1, 0, 11.0 / 12], abs=1e-5)
    # The raised sensor passes over the goal (1.495 m high); its thin ray meets the +x wall at 11.5 m.
    assert high[0] == pytest.approx([0, 0, 0, 1, 1])
    assert high[6] == pytest.approx([0, 0, 1, 0, 11.5 / 12], abs=1e-5)
    # Facing +z, the ray 30 degrees to the right meets the block (centre (3, 5), half 1) on its face.
    place(env, agent=(0.0, 0.0), block=(3.0, 5.0), heading=0.0)
    dec, _ = step(env, 0)
    low, high = rays(dec.obs[1][0, -FRAME:]), rays(dec.obs[0][0, -FRAME:])
    dist = (5.0 - 1.0 - 0.5) / math.cos(math.radians(30))
    assert low[1] == pytest.approx([1, 0, 0, 0, dist / 12], abs=1e-5)
    assert high[1] == pytest.approx([0, 0, 0, 1, 1])  # over the 0.75 m block
    assert high[:, :2].max() == 0.0  # the raised sensor never reports the block nor the goal


def test_step_penalty_and_goal():
    env = PushBlockEnv(num_areas=2, seed=1)
    env.reset()
    place(env, agent=(0.0, 0.0), block=(6.0, 6.0))
    dec, term = step(env, 0)
    assert np.allclose(dec.reward, DECISION_PENALTY) and len(term) == 0
    # Area 1's block put against the goal face: it touches the goal this decision.
    env.arena.pos[1, 1, 1] = GOAL_FACE + 1.0 + 0.005
    dec, term = step(env, 0)
    assert term.agent_id.tolist() == [1]
    assert term.reward[0] == pytest.approx(GOAL_REWARD + DECISION_PENALTY)
    assert not term.interrupted[0]
    assert dec.reward.tolist() == pytest.approx([DECISION_PENALTY, 0.0])
    # The area restarted: a fresh stack, the block spawned back in the central square.
    assert np.all(dec.obs[1][1, : 2 * FRAME] == 0.0) and np.any(term.obs[1][0, :FRAME] != 0.0)
    assert abs(env.arena.pos[1, 1, 1]) <= SPAWN_HALF


def test_agent_pushes_block_into_goal():
    env = PushBlockEnv(num_areas=1, seed=0)
    env.reset()
    place(env, agent=(0.0, 0.0), block=(0.0, -3.0), heading=math.pi)  # block straight ahead
    total, done = 0.0, None
    for i in range(40):
        dec, term = step(env, 1)  # forward
        if len(term):
            done = i
            total += term.reward[0]
            break
        total += dec.reward[0]
    assert done is not None and done < 10
    assert not term.interrupted[0]
    assert total == pytest.approx(GOAL_REWARD + (done + 1) * DECISION_PENALTY)


def test_max_step_interrupts():
    env = PushBlockEnv(num_areas=3, seed=2)
    env.reset()
    place(env, agent=(0.0, 5.0), block=(4.0, 0.0))
    total = np.zeros(3)
    for _ in range(MAX_DECISIONS - 1):
        dec, term = step(env)  # no actions: the agents stand still
        assert len(term) == 0
        total += dec.reward
    dec, term = step(env)
    assert sorted(term.agent_id.tolist()) == [0, 1, 2] and term.interrupted.all()
    assert np.allclose(total + term.reward, -1.0, atol=1e-4)  # -1/MaxStep on each of 5000 physics steps
    assert np.all(dec.reward == 0.0)


def test_actions_move_and_turn_as_upstream():
    env = PushBlockEnv(num_areas=7, seed=0)
    env.reset()
    place(env, agent=(0.0, 0.0), block=(8.0, 8.0), heading=0.0)  # facing +z
    step(env, np.arange(7))
    pos, heading = env.arena.pos[:, 0], np.degrees(env.arena.heading[0])
    assert np.allclose(pos[:, 0], 0.0)  # no-op
    assert pos[1, 1] > 0.5 and abs(pos[0, 1]) < 1e-6  # forward
    assert pos[1, 2] < -0.5  # back
    assert heading[3:5] == pytest.approx([20.0, -20.0])  # turn right, left: 200 deg/s for 0.1 s
    assert pos[0, 5] < -0.3 and pos[0, 6] > 0.3  # strafe left, right
    assert abs(pos[0, 5]) < abs(pos[1, 1])  # strafing is 0.75 of the run speed


def test_spawn_rules():
    n = 400
    env = PushBlockEnv(num_areas=n, seed=3)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(3):
        # End every episode with known agent positions: blocks against the goal, agents elsewhere.
        before = rng.uniform(-10, 10, (2, n)).astype(np.float32)
        before[1] = np.maximum(before[1], GOAL_FACE + 0.5)
        env.arena.pos[:, 0] = before
        env.arena.pos[0, 1] = np.where(before[0] > 0, -8.0, 8.0)
        env.arena.pos[1, 1] = GOAL_FACE + 1.0 + 0.005
        _, term = step(env, 0)
        assert len(term) == n and not term.interrupted.any()
        agent, block = env.arena.pos[:, 0], env.arena.pos[:, 1]
        for p in (agent, block):
            assert np.all(np.abs(p) <= SPAWN_HALF)
            assert np.all(p[1] >= GOAL_FACE + 2.5 - 1e-5)  # the 5 x 5 check box stays off the goal
        # The block's 5 x 5 check box avoided the agent's body (radius 0.5) where it was; the agent's
        # avoided the block's new body (half 1) and its own previous body.
        assert np.all(np.maximum(*np.abs(block - before)) >= 2.5)
        assert np.all(np.maximum(*np.abs(agent - block)) >= 2.5 + 1.0)
        assert np.all(np.maximum(*np.abs(agent - before)) >= 2.5)
        assert np.all(np.abs(env.arena.vel) == 0.0)
    assert np.ptp(agent[0]) > 10 and np.ptp(block[1]) > 9  # really spread over the square


def test_parameters_apply_at_episode_start_and_are_validated():
    env = PushBlockEnv(num_areas=2, seed=0, parameters={"block_scale": 3.0, "block_drag": 1.0})
    env.reset()
    assert np.allclose(env.arena.half[:, env.arena.W + 1], 1.5)
    assert np.allclose(env.arena.drag[1], 1.0)
    env.set_environment_parameter("block_scale", 1.0)
    env.set_environment_parameter("dynamic_friction", 0.4)
    step(env, 0)
    assert np.allclose(env.arena.half[:, env.arena.W + 1], 1.5)  # the running episodes keep theirs
    env.reset()
    assert np.allclose(env.arena.half[:, env.arena.W + 1], 0.5)
    assert np.allclose(env.arena.ground_friction[0], 0.4)
    with pytest.raises(EnvError, match="unknown environment parameter 'block_size'"):
        env.set_environment_parameter("block_size", 1.0)
    with pytest.raises(EnvError, match="block_scale"):
        PushBlockEnv(num_areas=1, parameters={"block_scale": 0.0})
    with pytest.raises(EnvError, match="block_drag"):
        env.set_environment_parameter("block_drag", -1.0)
    with pytest.raises(EnvError, match="gravity"):
        PushBlockEnv(num_areas=1, parameters={"gravity": 9.81})


def test_block_drag_slows_the_block():
    speeds = []
    for drag in (0.0, 2.0):
        env = PushBlockEnv(num_areas=1, seed=0, parameters={"block_drag": drag, "dynamic_friction": 0.0})
        env.reset()
        place(env, agent=(-5.0, 5.0), block=(0.0, 0.0))
        env.arena.vel[0, 1] = 3.0
        step(env, 0)
        speeds.append(env.arena.vel[0, 1, 0])
    # No drag: only the floor friction (0.3 combined, 2.5 g) acts over 5 physics steps.
    assert speeds[0] == pytest.approx(3.0 - 5 * 0.3 * 9.81 * 2.5 * 0.02, rel=1e-4)
    assert speeds[1] < speeds[0]


def test_bad_actions_are_refused():
    env = PushBlockEnv(num_areas=4, seed=0)
    with pytest.raises(EnvError, match="reset"):
        env.step()
    env.reset()
    with pytest.raises(EnvError, match=r"\(4, 1\)"):
        env.set_actions(BEHAVIOR_NAME, ActionTuple(np.zeros((4, 0), np.float32), np.zeros((3, 1), np.int32)))
    with pytest.raises(EnvError, match="0..6"):
        env.set_actions(BEHAVIOR_NAME, act(env, 7))
    with pytest.raises(EnvError, match="continuous"):
        env.set_actions(BEHAVIOR_NAME, ActionTuple(np.zeros((4, 2), np.float32), np.zeros((4, 1), np.int32)))
    with pytest.raises(EnvError, match="unknown behaviour"):
        env.get_steps("Pushblock")


def test_same_seed_same_trajectory():
    def run(seed: int) -> list[np.ndarray]:
        env = PushBlockEnv(num_areas=8, seed=seed)
        rng = np.random.default_rng(0)
        env.reset()
        out = [env.arena.pos.copy()]
        for _ in range(50):
            dec, term = step(env, rng.integers(0, 7, 8))
            out += [*dec.obs, dec.reward, *term.obs, term.agent_id]
        return out

    a, b, c = run(4), run(4), run(5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
