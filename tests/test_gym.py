"""The Gymnasium adapter (env=gym): spaces, action rescaling, episode ends, seeding, refusals."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from mlx.config import ConfigError
from mlx.config import EnvSettings as Settings
from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.checker import check_env
from mlx.envs.gym.adapter import ActionMap, GymEnv, behavior_name, observation_map
from tests.conftest import run_mlx


def gym_env(env_id: str, n: int = 3, seed: int = 0, **kwargs) -> GymEnv:
    env = make_env("gym", n, seed, env_id=env_id, env_kwargs=kwargs)
    assert isinstance(env, GymEnv)
    return env


def act(env: GymEnv, continuous=None, discrete=None) -> None:
    a = env.spec.action_spec
    cont = np.zeros((env.n, a.continuous_size), np.float32) if continuous is None else continuous
    disc = np.zeros((env.n, a.discrete_size), np.int32) if discrete is None else discrete
    env.set_actions(env.name, ActionTuple(np.asarray(cont, np.float32), np.asarray(disc, np.int32)))
    env.step()


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "FrozenLake-v1", "MountainCarContinuous-v0"])
def test_passes_the_mlx_env_checker(env_id):
    check_env(lambda seed: make_env("gym", 3, seed, env_id=env_id), steps=250)


def test_spaces_of_classic_envs():
    cartpole = gym_env("CartPole-v1").spec
    assert cartpole.observation_specs[0].shape == (4,)
    assert cartpole.action_spec.discrete_branches == (2,) and cartpole.action_spec.continuous_size == 0
    pendulum = gym_env("Pendulum-v1").spec
    assert pendulum.observation_specs[0].shape == (3,)
    assert pendulum.action_spec.continuous_size == 1 and pendulum.action_spec.discrete_branches == ()
    lake = gym_env("FrozenLake-v1")
    assert lake.spec.observation_specs[0].shape == (16,)
    lake.reset()
    obs = lake.get_steps(lake.name)[0].obs[0]
    np.testing.assert_array_equal(obs, np.eye(16, dtype=np.float32)[[0, 0, 0]])  # start state 0, one-hot


def test_space_mapping_rules():
    box = observation_map(spaces.Box(0, 255, (2, 3), np.uint8))
    assert box.spec.shape == (2, 3)  # multi-dimensional Boxes keep their shape
    converted = box.convert(np.arange(12, dtype=np.uint8).reshape(2, 2, 3))
    assert converted.dtype == np.float32 and converted.shape == (2, 2, 3)
    assert observation_map(spaces.Box(-1, 1, (), np.float32)).spec.shape == (1,)
    disc = observation_map(spaces.Discrete(3, start=-1))
    np.testing.assert_array_equal(disc.convert(np.array([-1, 1])), [[1, 0, 0], [0, 0, 1]])
    assert ActionMap(spaces.MultiDiscrete([3, 4])).spec.discrete_branches == (3, 4)
    assert ActionMap(spaces.MultiBinary(3)).spec.discrete_branches == (2, 2, 2)
    assert ActionMap(spaces.Box(-1, 1, (2, 2))).spec.continuous_size == 4
    shifted = ActionMap(spaces.Discrete(3, start=5))
    np.testing.assert_array_equal(shifted.to_gym(ActionTuple(np.zeros((2, 0)), np.array([[0], [2]])), 2), [5, 7])
    multi = ActionMap(spaces.MultiDiscrete([3, 4], start=[1, 0]))
    np.testing.assert_array_equal(multi.to_gym(ActionTuple(np.zeros((1, 0)), np.array([[2, 3]])), 1), [[3, 3]])


@pytest.mark.parametrize(
    ("space", "kind"),
    [
        (spaces.Dict({"a": spaces.Box(-1, 1, (2,))}), "observation"),
        (spaces.Tuple((spaces.Discrete(2), spaces.Box(-1, 1, (1,)))), "action"),
        (spaces.Text(5), "observation"),
    ],
)
def test_unsupported_spaces_are_refused_naming_the_space(space, kind):
    with pytest.raises(EnvError, match=f"Gymnasium {kind} space .*not supported"):
        observation_map(space) if kind == "observation" else ActionMap(space)


class DictObsEnv(gymnasium.Env):
    """A registered env whose observation space mlx cannot take."""

    observation_space = spaces.Dict({"pos": spaces.Box(-1, 1, (2,)), "goal": spaces.Discrete(3)})
    action_space = spaces.Discrete(2)


def test_a_registered_env_with_an_unsupported_space_is_refused():
    gymnasium.register("mlxtest/DictObs-v0", entry_point=DictObsEnv)
    try:
        with pytest.raises(EnvError, match=r"observation space Dict\("):
            make_env("gym", 2, 0, env_id="mlxtest/DictObs-v0")
    finally:
        del gymnasium.registry["mlxtest/DictObs-v0"]


def test_box_actions_are_rescaled_linearly_and_clipped():
    amap = ActionMap(spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32)))
    cont = np.array([[-1, -1], [0, 0], [1, 1], [0.5, -0.5], [3, -7]], np.float32)
    out = amap.to_gym(ActionTuple(cont, np.zeros((5, 0))), 5)
    np.testing.assert_allclose(out, [[-2, 0], [0, 5], [2, 10], [1, 2.5], [2, 0]])
    assert out.dtype == np.float32
    unbounded = ActionMap(spaces.Box(np.array([-np.inf, 0.0], np.float32), np.array([np.inf, 4.0], np.float32)))
    np.testing.assert_allclose(unbounded.to_gym(ActionTuple(np.array([[0.7, 0.0]]), np.zeros((1, 0))), 1), [[0.7, 2]])


def test_pendulum_receives_the_rescaled_torque():
    env = gym_env("Pendulum-v1", n=3)
    env.reset()
    act(env, continuous=[[1.0], [-0.5], [0.25]])
    torques = [sub.unwrapped.last_u for sub in env.vec.envs]
    np.testing.assert_allclose(torques, [2.0, -1.0, 0.5], rtol=1e-6)


def test_wrong_actions_are_refused():
    env = gym_env("CartPole-v1", n=2)
    env.reset()
    with pytest.raises(EnvError, match=r"shape \(2, 1\)"):
        env.set_actions(env.name, ActionTuple(np.zeros((3, 0)), np.zeros((3, 1), np.int32)))
    with pytest.raises(EnvError, match="branch size"):
        env.set_actions(env.name, ActionTuple(np.zeros((2, 0)), np.array([[0], [2]], np.int32)))
    with pytest.raises(EnvError, match="unknown behaviour"):
        env.get_steps("CartPole")


def test_truncation_is_an_interruption_with_the_final_observation():
    env = gym_env("CartPole-v1", n=3, seed=4, max_episode_steps=5)
    env.reset()
    for t in range(5):
        decision, terminal = env.get_steps(env.name)
        assert len(terminal) == 0 and len(decision) == 3
        act(env, discrete=np.full((3, 1), t % 2))
    decision, terminal = env.get_steps(env.name)
    np.testing.assert_array_equal(terminal.agent_id, [0, 1, 2])
    assert terminal.interrupted.all()  # the TimeLimit cut a live pole: bootstrap
    np.testing.assert_array_equal(terminal.reward, [1, 1, 1])
    np.testing.assert_array_equal(decision.agent_id, [0, 1, 2])
    np.testing.assert_array_equal(decision.reward, [0, 0, 0])
    # The final observation is the pole after 5 steps; the decision holds the next episode's first one.
    ref = gymnasium.make("CartPole-v1", max_episode_steps=5)
    for i in range(3):
        ref.reset(seed=4 + i)
        for t in range(5):
            final, *_ = ref.step(t % 2)
        np.testing.assert_array_equal(terminal.obs[0][i], final)
        first, _ = ref.reset()  # the sub-env's generator continues, as the vector env's autoreset does
        np.testing.assert_array_equal(decision.obs[0][i], first)


def test_termination_is_not_an_interruption():
    env = gym_env("CartPole-v1", n=2, seed=0)
    env.reset()
    ended = []
    for _ in range(40):  # always pushing right drops the pole within ~10 steps
        act(env, discrete=np.ones((2, 1)))
        _, terminal = env.get_steps(env.name)
        ended += list(zip(terminal.agent_id.tolist(), terminal.interrupted.tolist(), strict=True))
        if terminal.agent_id.size:
            final = terminal.obs[0]
            assert (np.abs(final[:, 2]) > 0.2094).all() or (np.abs(final[:, 0]) > 2.4).all()
    assert {a for a, _ in ended} == {0, 1}
    assert not any(interrupted for _, interrupted in ended)


def test_seeding_from_the_run_seed():
    def first_obs(seed: int) -> np.ndarray:
        env = gym_env("CartPole-v1", n=4, seed=seed)
        env.reset()
        return env.get_steps(env.name)[0].obs[0]

    np.testing.assert_array_equal(first_obs(7), first_obs(7))
    assert not np.array_equal(first_obs(7), first_obs(8))
    ref = gymnasium.make("CartPole-v1")
    np.testing.assert_array_equal(first_obs(7)[2], ref.reset(seed=9)[0])  # copy i is seeded with seed + i


def test_unknown_id_names_it_and_suggests_close_ones():
    with pytest.raises(EnvError, match=r"unknown Gymnasium env id 'CartPole-v9'.*CartPole-v1"):
        make_env("gym", 2, 0, env_id="CartPole-v9")
    with pytest.raises(EnvError, match=r"'cartpole'.*CartPole"):
        make_env("gym", 2, 0, env_id="cartpole")


def test_missing_id_and_native_parameters_are_refused():
    with pytest.raises(EnvError, match="env.id=CartPole-v1"):
        make_env("gym", 2, 0)
    with pytest.raises(EnvError, match="env.kwargs"):
        make_env("gym", 2, 0, {"gravity": 9.0}, env_id="Pendulum-v1")
    with pytest.raises(ConfigError, match="env.id is required for env=gym"):
        Settings(name="gym").check()
    with pytest.raises(ConfigError, match="env.id is only for env=gym"):
        Settings(name="3dball", id="CartPole-v1").check()
    with pytest.raises(EnvError, match="only for env=gym"):
        make_env("basic", 2, 0, env_id="CartPole-v1")


def test_kwargs_reach_gymnasium_make():
    env = gym_env("Pendulum-v1", n=2, g=3.5)
    assert all(sub.unwrapped.g == 3.5 for sub in env.vec.envs)
    with pytest.raises(EnvError, match="gymnasium.make"):
        gym_env("Pendulum-v1", n=2, no_such_argument=1)


def test_behaviour_names_are_safe_folder_names():
    assert behavior_name("ALE/Pong-v5") == "ALE_Pong-v5"
    assert behavior_name("my.module:Env-v0") == "my.module_Env-v0"
    assert behavior_name("CartPole-v1") == "CartPole-v1"


def test_close_is_idempotent():
    env = gym_env("CartPole-v1")
    env.close()
    env.close()


def test_cli_refuses_env_gym_without_an_id(workdir):
    proc = run_mlx("env=gym", "tracking=none", cwd=workdir, timeout=120)
    assert proc.returncode == 2
    assert "env.id is required for env=gym" in proc.stderr
    assert proc.stderr.count("\n") == 1
