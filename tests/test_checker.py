"""The env checker passes every native env and catches the contract breaks it names."""

from __future__ import annotations

import numpy as np
import pytest

from mlx.envs import NATIVE_ENVS, make_env
from mlx.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, ObservationSpec
from mlx.envs.checker import check_env, random_actions
from mlx.envs.native.basic import BasicEnv
from mlx.envs.registry import NATIVE_BEHAVIORS
from mlx.errors import EnvCheckError


@pytest.mark.parametrize("name", sorted(NATIVE_ENVS))
def test_every_native_env_passes(name):
    check_env(lambda seed: make_env(name, num_areas=3, seed=seed), steps=60)


def test_the_behaviour_table_names_each_envs_behaviours():
    """registry.NATIVE_BEHAVIORS (what the importer and mlx-learn choose a port by) is true of every env."""
    assert set(NATIVE_BEHAVIORS) == set(NATIVE_ENVS)
    for name, behaviours in NATIVE_BEHAVIORS.items():
        assert sorted(make_env(name, num_areas=1, seed=0).behavior_specs) == sorted(behaviours), name


class FloatObsBasic(BasicEnv):
    """Basic with float64 observations: a dtype break."""

    def get_steps(self, behavior_name):
        d, t = super().get_steps(behavior_name)
        return DecisionSteps([d.obs[0].astype(np.float64)], d.reward, d.agent_id), t


class UnseededBasic(BasicEnv):
    """Basic whose rewards use a global random source: equal seeds diverge."""

    def get_steps(self, behavior_name):
        d, t = super().get_steps(behavior_name)
        noise = np.random.default_rng().normal(size=len(d)).astype(np.float32)
        return DecisionSteps(d.obs, d.reward + noise, d.agent_id), t


class LenientBasic(BasicEnv):
    """Basic that silently accepts actions of any shape."""

    def set_actions(self, behavior_name, actions):
        if len(actions) != self.n:
            return
        super().set_actions(behavior_name, actions)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (FloatObsBasic, "dtype float64, must be float32"),
        (UnseededBasic, "seeding is not deterministic"),
        (LenientBasic, "set_actions accepted actions"),
    ],
)
def test_contract_breaks_are_caught(cls, message):
    with pytest.raises(EnvCheckError, match=message):
        check_env(lambda seed: cls(num_areas=2, seed=seed), steps=20)


def test_random_actions_respect_masks():
    spec = BehaviorSpec((ObservationSpec((1,)),), ActionSpec(discrete_branches=(4, 3)))
    mask = [np.array([[False, False, True, False]] * 50), np.array([[True, False, True]] * 50)]
    decision = DecisionSteps([np.zeros((50, 1), np.float32)], np.zeros(50, np.float32), np.arange(50), mask)
    actions = random_actions(spec, decision, np.random.default_rng(0))
    assert (actions.discrete[:, 0] == 2).all()
    assert set(actions.discrete[:, 1].tolist()) == {0, 2}
