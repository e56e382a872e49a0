"""A native env served by `mlx-env` over ML-Agents' gRPC protocol against the same env in-process: what the
group envs' wire tests share.

Multi-team behaviours cross the wire as one wire behaviour per team (``<Name>?team=<id>``), and the trainer
merges them team by team: the in-process batches are compared in that order (``team_major``), and the
actions given to the remote env are permuted the same way."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, BaseEnv, DecisionSteps, TerminalSteps


def team_order(steps: DecisionSteps | TerminalSteps) -> np.ndarray:
    """The rows of an in-process batch in the order they arrive over the wire: team by team (stable)."""
    if steps.team_id is None:
        return np.arange(len(steps))
    return np.argsort(steps.team_id, kind="stable")


def team_major(steps: DecisionSteps | TerminalSteps) -> DecisionSteps | TerminalSteps:
    """An in-process batch reordered as it arrives over the wire (see ``team_order``)."""
    from mlx.envs.unity.remote import select_rows

    return select_rows(steps, team_order(steps))


def step_side_by_side(
    env_name: str,
    behavior: str,
    areas: int,
    steps: int,
    actions: Callable[[BaseEnv, DecisionSteps], ActionTuple],
    same_ids: bool = True,
    command: list[str] | None = None,
    make: Callable[[int, int], BaseEnv] | None = None,
) -> tuple[int, int]:
    """Step ``env_name`` served over gRPC and in-process with the same seed and actions (``actions(native,
    decision)``), asserting equal observations, team ids, group ids, rewards, group rewards and
    interruptions at every step, row for row (in-process rows taken team by team, as they cross the wire;
    agent ids too when ``same_ids``: Unity renews them per episode, as some ports do, and teams reorder rows).
    An env outside the registry comes as ``command`` (its env process, e.g. a script calling
    ``mlx.envs.unity.remote.serve_env``) and ``make(num_areas, seed)`` (the in-process copy).
    Returns (steps at which some agent was absent from the decisions, group rewards paid)."""
    from mlx.envs.unity.env import UnityEnv, remote_command

    remote = UnityEnv(command=command or remote_command(env_name), base_port=0, num_areas=areas, seed=2)
    native = make(areas, 2) if make is not None else make_env(env_name, areas, 2)
    full = None
    try:
        native.reset()
        absent = paid = 0
        for _ in range(steps):
            (d, t), (native_d, native_t) = remote.get_steps(behavior), native.get_steps(behavior)
            nd, nt = team_major(native_d), team_major(native_t)
            for got, want in ((d, nd), (t, nt)):
                for o, w in zip(got.obs, want.obs, strict=True):
                    np.testing.assert_array_equal(o, w)
                assert len(got.agent_id) == len(want.agent_id)
                if same_ids:
                    np.testing.assert_array_equal(got.agent_id, want.agent_id)
                np.testing.assert_array_equal(got.team_id, want.team_id)
                np.testing.assert_array_equal(got.group_id, want.group_id)
                np.testing.assert_array_equal(got.group_reward, want.group_reward)
                np.testing.assert_array_equal(got.reward, want.reward)
            np.testing.assert_array_equal(t.interrupted, nt.interrupted)
            full = max(full or 0, len(d))
            absent += int(len(d) < full)
            paid += int((t.group_reward > 0).sum())
            action = actions(native, native_d)
            order = team_order(native_d)
            remote.set_actions(behavior, ActionTuple(action.continuous[order], action.discrete[order]))
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
