"""mlx envs as Gymnasium envs (mlx.envs.gym.export): spaces, SAME_STEP autoreset, seeding, refusals."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from gymnasium.vector import AutoresetMode

from mlx.envs import make_env
from mlx.envs.api import ActionSpec, ActionTuple, BehaviorSpec, DecisionSteps, EnvError
from mlx.envs.gym.export import MlxGymEnv, MlxVectorEnv
from mlx.envs.native.basic import BasicEnv


@pytest.mark.parametrize("name", ["3dball", "basic"])
def test_single_agent_env_passes_gymnasiums_checker(name):
    env = MlxGymEnv(name, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any complaint of the checker fails the test, except these two:
        # mlx specs carry no observation bounds (Box(-inf, inf)) and these envs have no Gymnasium spec.
        warnings.filterwarnings("ignore", message=".*(infinity|render modes).*")
        gymnasium_check_env(env)
    env.close()


def test_spaces():
    ball = MlxVectorEnv("3dball", num_areas=12)
    assert ball.num_envs == 12
    assert ball.single_observation_space == spaces.Box(-np.inf, np.inf, (8,), np.float32)
    assert ball.single_action_space == spaces.Box(-1.0, 1.0, (2,), np.float32)
    assert ball.action_space.shape == (12, 2)
    basic = MlxVectorEnv("basic", num_areas=4)
    assert basic.single_action_space == spaces.Discrete(3)
    assert basic.single_observation_space.shape == (20,)


class HybridBasic(BasicEnv):
    """Basic with an extra continuous action it ignores, and a mask forbidding 'left': a hybrid spec."""

    def __init__(self, num_areas: int = 2, seed: int = 0) -> None:
        super().__init__(num_areas, seed)
        self.spec = BehaviorSpec(self.spec.observation_specs, ActionSpec(continuous_size=1, discrete_branches=(3,)))
        self.seen_continuous: np.ndarray | None = None

    def get_steps(self, behavior_name):
        d, t = super().get_steps(behavior_name)
        mask = np.tile(np.array([[True, False, True]]), (len(d), 1))
        return DecisionSteps(d.obs, d.reward, d.agent_id, [mask]), t

    def set_actions(self, behavior_name, actions):
        self.seen_continuous = np.asarray(actions.continuous).copy()
        super().set_actions(behavior_name, ActionTuple(np.zeros((self.n, 0)), actions.discrete))


def test_hybrid_actions_are_a_dict_and_masks_are_passed_on():
    env = MlxVectorEnv(lambda seed: HybridBasic(2, seed))
    assert env.single_action_space == spaces.Dict(
        {"continuous": spaces.Box(-1, 1, (1,), np.float32), "discrete": spaces.MultiDiscrete([3])}
    )
    _, info = env.reset(seed=0)
    np.testing.assert_array_equal(info["action_mask"], [[True, False, True]] * 2)
    np.testing.assert_array_equal(env.action_masks(), [[True, False, True]] * 2)
    obs, *_ = env.step({"continuous": np.array([[0.5], [3.0]]), "discrete": np.array([[2], [0]])})
    np.testing.assert_allclose(env.env.seen_continuous, [[0.5], [1.0]])  # clipped into [-1, 1]
    assert obs[0].argmax() == 11 and obs[1].argmax() == 10  # agent 0 moved right, agent 1 stayed


def test_same_step_autoreset_with_final_observation_and_reward():
    env = MlxVectorEnv("basic", num_areas=3)
    env.reset(seed=0)
    right = np.array([2, 2, 0])  # agents 0 and 1 walk to the large goal (17, 7 steps); agent 2 waits
    for _ in range(6):
        obs, reward, terminated, truncated, info = env.step(right)
        assert "final_obs" not in info and not terminated.any()
        np.testing.assert_allclose(reward, -0.01)
    obs, reward, terminated, truncated, info = env.step(right)
    np.testing.assert_array_equal(terminated, [True, True, False])
    assert not truncated.any()
    np.testing.assert_allclose(reward, [0.99, 0.99, -0.01])
    np.testing.assert_array_equal(info["_final_obs"], [True, True, False])
    assert info["final_obs"][0].argmax() == 17 and info["final_obs"][2] is None
    np.testing.assert_array_equal(obs.argmax(1), [10, 10, 10])  # the next episodes' first observations
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP


def test_round_trip_through_mlx_matches_gymnasiums_own_vector_env():
    """Gymnasium -> mlx (env=gym) -> Gymnasium gives exactly what Gymnasium's SAME_STEP vector env gives,
    truncations (TimeLimit) included."""
    ours = MlxVectorEnv(
        lambda seed: make_env("gym", 3, seed, env_id="CartPole-v1", env_kwargs={"max_episode_steps": 25})
    )
    ref = gymnasium.make_vec(
        "CartPole-v1",
        3,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        max_episode_steps=25,
    )
    obs_a, _ = ours.reset(seed=5)
    obs_b, _ = ref.reset(seed=5)
    np.testing.assert_array_equal(obs_a, obs_b)
    rng = np.random.default_rng(0)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(150):
        actions = rng.integers(0, 2, size=3)
        a, b = ours.step(actions), ref.step(actions)
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        ends["terminated"] += int(a[2].sum())
        ends["truncated"] += int(a[3].sum())
        if "final_obs" in b[4]:
            np.testing.assert_array_equal(a[4]["_final_obs"], b[4]["_final_obs"])
            for i in np.flatnonzero(b[4]["_final_obs"]):
                np.testing.assert_array_equal(a[4]["final_obs"][i], b[4]["final_obs"][i])
    assert ends["terminated"] > 0 and ends["truncated"] > 0


def test_seeded_resets_are_reproducible():
    env = MlxVectorEnv("3dball", num_areas=4)
    first, _ = env.reset(seed=3)
    second, _ = env.reset(seed=3)
    other, _ = env.reset(seed=4)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


class TwoBehaviours(BasicEnv):
    @property
    def behavior_specs(self):
        return {"Basic": self.spec, "Other": self.spec}


class SkippingBasic(BasicEnv):
    """Agent 1 does not decide on the second step: not a Gymnasium vector env."""

    calls = 0

    def get_steps(self, behavior_name):
        d, t = super().get_steps(behavior_name)
        self.calls += 1
        if self.calls == 2:
            return DecisionSteps([d.obs[0][:1]], d.reward[:1], d.agent_id[:1]), t
        return d, t


def test_refusals():
    with pytest.raises(EnvError, match="2 behaviours.*behavior_name"):
        MlxVectorEnv(lambda seed: TwoBehaviours(2, seed))
    assert MlxVectorEnv(lambda seed: TwoBehaviours(2, seed), behavior_name="Basic").num_envs == 2
    env = MlxVectorEnv(lambda seed: SkippingBasic(2, seed))
    with pytest.raises(EnvError, match=r"every agent must decide at every step.*missing \[1\]"):
        env.step(np.array([0, 0]))
    with pytest.raises(EnvError, match="drives one agent but this env has 3"):
        MlxGymEnv(lambda seed: BasicEnv(3, seed))
    with pytest.raises(EnvError, match="expected actions for 2 sub-envs"):
        MlxVectorEnv("basic", num_areas=2).step(np.array([0, 0, 0]))


def test_stable_baselines3_trains_on_it():
    sb3 = pytest.importorskip("stable_baselines3")  # a benchmark-only dependency (pip install -e '.[bench]')
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = MlxGymEnv("3dball", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sb3_check_env(env)
    model = sb3.PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(128)
    assert model.num_timesteps >= 128
