"""3DBallHard: 3DBall's dynamics seen through a 9-decision stack of (q.z, q.x, dx, dy, dz)."""

from __future__ import annotations

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.checker import check_env
from mlx.envs.native.ball3d import BEHAVIOR_NAME as BALL
from mlx.envs.native.ball3d_hard import BEHAVIOR_NAME, FRAME, STACK, Ball3DHardEnv


def act(n: int, rng: np.random.Generator) -> ActionTuple:
    return ActionTuple(rng.uniform(-1, 1, (n, 2)).astype(np.float32), np.zeros((n, 0), np.int32))


def test_contract():
    check_env(lambda seed: make_env("3dballhard", num_areas=4, seed=seed), steps=150)
    spec = Ball3DHardEnv(2).behavior_specs[BEHAVIOR_NAME]
    assert spec.observation_specs[0].shape == (45,)
    assert spec.action_spec.continuous_size == 2 and not spec.action_spec.discrete_branches


def test_stack_is_3dball_without_velocity_oldest_first_and_cleared_at_episode_start():
    """Driven with the same seed and actions, the stack holds 3DBall's first five observation floats of
    the last 9 decisions of the current episode, zeros before its start; terminal rows push the final frame."""
    n = 6
    hard, ball = Ball3DHardEnv(n, seed=5), make_env("3dball", n, seed=5)
    hard.reset()
    ball.reset()
    rng = np.random.default_rng(0)
    history = [ball.get_steps(BALL)[0].obs[0][:, :FRAME]]
    age = np.zeros(n, int)  # decisions since the episode began
    episodes_ended = 0
    for _ in range(400):
        a = act(n, rng)
        hard.set_actions(BEHAVIOR_NAME, a)
        ball.set_actions(BALL, a)
        hard.step()
        ball.step()
        hd, ht = hard.get_steps(BEHAVIOR_NAME)
        bd, bt = ball.get_steps(BALL)
        np.testing.assert_array_equal(ht.agent_id, bt.agent_id)
        np.testing.assert_array_equal(hd.reward, bd.reward)
        for row, agent in enumerate(bt.agent_id):  # terminal: the stack with the final frame on top
            expected = np.concatenate([f[agent] for f in history[-(STACK - 1) :]] + [bt.obs[0][row, :FRAME]])
            kept = min(age[agent] + 1, STACK - 1)
            np.testing.assert_array_equal(ht.obs[0][row, -FRAME * (kept + 1) :], expected[-FRAME * (kept + 1) :])
            assert not ht.obs[0][row, : -FRAME * (kept + 1)].any()
        episodes_ended += len(bt)
        age += 1
        age[bt.agent_id] = 0
        history.append(bd.obs[0][:, :FRAME])
        for agent in range(n):
            frames = min(age[agent] + 1, STACK)
            expected = np.concatenate([f[agent] for f in history[-frames:]])
            np.testing.assert_array_equal(hd.obs[0][agent, -FRAME * frames :], expected)
            assert not hd.obs[0][agent, : -FRAME * frames].any()
    assert episodes_ended > 5  # random actions drop the ball: the reset path was exercised


def test_mass_and_scale_apply_only_at_start_and_unknown_names_are_refused():
    env = Ball3DHardEnv(2, seed=0, parameters={"scale": 2.0})
    env.reset()
    env.set_environment_parameter("scale", 0.5)
    assert env._inner.parameters["scale"] == 2.0  # not before the next reset()
    env.reset()
    assert env._inner.parameters["scale"] == 0.5
    with pytest.raises(EnvError, match="unknown environment parameter 'size'"):
        env.set_environment_parameter("size", 1.0)
    with pytest.raises(EnvError, match="unknown environment parameter"):
        Ball3DHardEnv(2, parameters={"masss": 1.0})
