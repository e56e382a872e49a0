"""A native env served by `mlx-env` over ML-Agents' gRPC protocol against the same env in-process: what the
group envs' wire tests share."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, BaseEnv, DecisionSteps


def step_side_by_side(
    env_name: str,
    behavior: str,
    areas: int,
    steps: int,
    actions: Callable[[BaseEnv, DecisionSteps], ActionTuple],
    same_ids: bool = True,
) -> tuple[int, int]:
    """Step ``env_name`` served over gRPC and in-process with the same seed and actions (``actions(native,
    decision)``), asserting equal observations, group ids, rewards, group rewards and interruptions at
    every step (agent ids too when ``same_ids``: Unity renews them per episode, as some ports do).
    Returns (steps at which some agent was absent from the decisions, group rewards paid)."""
    from mlx.envs.unity.env import UnityEnv, remote_command

    remote = UnityEnv(command=remote_command(env_name), base_port=0, num_areas=areas, seed=2)
    native = make_env(env_name, areas, 2)
    full = None
    try:
        native.reset()
        absent = paid = 0
        for _ in range(steps):
            (d, t), (nd, nt) = remote.get_steps(behavior), native.get_steps(behavior)
            for got, want in ((d, nd), (t, nt)):
                for o, w in zip(got.obs, want.obs, strict=True):
                    np.testing.assert_array_equal(o, w)
                assert len(got.agent_id) == len(want.agent_id)
                if same_ids:
                    np.testing.assert_array_equal(got.agent_id, want.agent_id)
                np.testing.assert_array_equal(got.group_id, want.group_id)
                np.testing.assert_array_equal(got.group_reward, want.group_reward)
                np.testing.assert_array_equal(got.reward, want.reward)
            np.testing.assert_array_equal(t.interrupted, nt.interrupted)
            full = max(full or 0, len(d))
            absent += int(len(d) < full)
            paid += int((t.group_reward > 0).sum())
            action = actions(native, nd)
            remote.set_actions(behavior, action)
            native.set_actions(behavior, action)
            remote.step()
            native.step()
        return absent, paid
    finally:
        remote.close()


def random_actions(seed: int = 0) -> Callable[[BaseEnv, DecisionSteps], ActionTuple]:
    rng = np.random.default_rng(seed)

    def act(env: BaseEnv, decision: DecisionSteps) -> ActionTuple:
        (spec,) = env.behavior_specs.values()
        return spec.action_spec.random(len(decision), rng)

    return act
