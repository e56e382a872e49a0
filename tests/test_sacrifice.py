"""Sacrifice (mlx.envs.native.sacrifice): the env contract, groups and group rewards, the agent removed
mid-episode, seeding, the documented scores of a scripted optimal policy and of a random one
(throughput: benchmarks/env_throughput.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, DecisionSteps, EnvError
from mlx.envs.checker import check_env
from mlx.envs.native.sacrifice import (
    BEHAVIOR,
    GOAL_REWARD,
    MAX_STEP,
    RANDOM_SCORE,
    SOLVED_SCORE,
    THRESHOLD,
    SacrificeEnv,
)
from tests.wire import random_actions, step_side_by_side

LEFT, STAY, RIGHT = 0, 1, 2
Policy = Callable[[DecisionSteps, np.random.Generator], np.ndarray]


def act(env: SacrificeEnv, actions: np.ndarray) -> None:
    a = np.asarray(actions, np.int32).reshape(-1, 1)
    env.set_actions(BEHAVIOR, ActionTuple(np.zeros((len(a), 0), np.float32), a))


def step(env: SacrificeEnv, actions: np.ndarray | list[int]):
    act(env, np.asarray(actions))
    env.step()
    return env.get_steps(BEHAVIOR)


def place(env: SacrificeEnv, cells: list[list[int]]) -> None:
    """Put every area's two agents on the given cells, both in, door closed, at the episode start."""
    env.pos[:] = np.asarray(cells)
    env.alive[:] = True
    env.door[:] = False
    env._steps[:] = 0


def random_policy(decision: DecisionSteps, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 3, len(decision))


def optimal_policy(decision: DecisionSteps, rng: np.random.Generator) -> np.ndarray:
    """The agent nearer the trap (the even id on a tie) walks left onto it; the other walks right."""
    own, mate, door = decision.obs[0].T
    left = (door == 0) & (mate >= 0) & ((own < mate) | ((own == mate) & (decision.agent_id % 2 == 0)))
    return np.where(left, LEFT, RIGHT)


def score(policy: Policy, areas: int = 128, steps: int = 400, seed: int = 0) -> tuple[float, float]:
    """Mean group reward per group episode (POCA's statistic) and mean decisions per group episode."""
    env = make_env("sacrifice", num_areas=areas, seed=seed)
    rng = np.random.default_rng(seed)
    env.reset()
    episodes, total, decisions = 0, 0.0, 0
    for _ in range(steps):
        decision, _ = env.get_steps(BEHAVIOR)
        act(env, policy(decision, rng))
        env.step()
        _, terminal = env.get_steps(BEHAVIOR)
        total += float(terminal.group_reward.sum())
        episodes += int((env._steps == 0).sum())
        decisions += areas
    return total / episodes, decisions / episodes


def test_env_contract():
    check_env(lambda seed: make_env("sacrifice", num_areas=3, seed=seed), steps=200)


def test_specs_and_groups():
    env = make_env("sacrifice", num_areas=3, seed=0)
    spec = env.behavior_specs[BEHAVIOR]
    assert [o.shape for o in spec.observation_specs] == [(3,)]
    assert spec.action_spec.discrete_branches == (3,)
    env.reset()
    decision, terminal = env.get_steps(BEHAVIOR)
    assert decision.agent_id.tolist() == [0, 1, 2, 3, 4, 5] and len(terminal) == 0
    assert decision.group_id.tolist() == [1, 1, 2, 2, 3, 3]  # nonzero, one per area
    assert decision.group_reward.tolist() == [0.0] * 6 and decision.reward.tolist() == [0.0] * 6
    own, mate, door = decision.obs[0].T
    assert ((own >= 0.2) & (own <= 0.8)).all() and np.array_equal(mate, own.reshape(3, 2)[:, ::-1].reshape(-1))
    assert (door == 0).all()


def test_sacrifice_then_goal():
    env = make_env("sacrifice", num_areas=2, seed=0)
    env.reset()
    place(env, [[1, 4], [2, 3]])
    decision, terminal = step(env, [LEFT, RIGHT, STAY, STAY])  # area 0: agent 0 onto the trap
    assert terminal.agent_id.tolist() == [0] and terminal.interrupted.tolist() == [False]
    assert terminal.group_id.tolist() == [1] and terminal.reward.tolist() == [0.0]
    assert terminal.group_reward.tolist() == [0.0]
    np.testing.assert_allclose(terminal.obs[0], [[0.0, 0.8, 1.0]])  # on the trap, mate at 4, door open
    assert decision.agent_id.tolist() == [1, 2, 3]  # agent 0 no longer decides; its mate goes on
    np.testing.assert_allclose(decision.obs[0][0], [0.8, -1.0, 1.0])  # mate gone, door open
    decision, terminal = step(env, [RIGHT, STAY, STAY])  # agent 1 into the goal
    assert terminal.agent_id.tolist() == [1] and terminal.group_id.tolist() == [1]
    assert terminal.group_reward.tolist() == [GOAL_REWARD] and terminal.reward.tolist() == [0.0]
    assert terminal.interrupted.tolist() == [False] and terminal.obs[0][0, 0] == 1.0
    assert decision.agent_id.tolist() == [0, 1, 2, 3]  # area 0's next episode: both back
    assert (decision.obs[0][:2, 2] == 0).all() and decision.reward.tolist() == [0.0] * 4


def test_door_blocks_until_opened_and_both_trapped_end_the_group():
    env = make_env("sacrifice", num_areas=2, seed=0)
    env.reset()
    place(env, [[4, 3], [1, 1]])
    decision, terminal = step(env, [RIGHT, STAY, LEFT, LEFT])  # area 0 blocked; area 1: both onto the trap
    assert env.pos[0].tolist() == [4, 3] and not env.door[0]
    assert sorted(terminal.agent_id.tolist()) == [2, 3] and not terminal.interrupted.any()
    assert terminal.group_reward.tolist() == [0.0, 0.0] and terminal.obs[0][:, 1].tolist() == [-1.0, -1.0]
    assert decision.agent_id.tolist() == [0, 1, 2, 3]  # area 1 restarted


def test_timeout_interrupts_the_group():
    env = make_env("sacrifice", num_areas=1, seed=0)
    env.reset()
    place(env, [[2, 3]])
    for _ in range(MAX_STEP - 1):
        decision, terminal = step(env, [STAY, STAY])
        assert len(terminal) == 0 and len(decision) == 2
    decision, terminal = step(env, [STAY, STAY])
    assert terminal.agent_id.tolist() == [0, 1] and terminal.interrupted.all()
    assert terminal.group_reward.tolist() == [0.0, 0.0]


def test_agent_removed_at_the_last_step_is_not_interrupted():
    env = make_env("sacrifice", num_areas=1, seed=0)
    env.reset()
    place(env, [[1, 3]])
    env._steps[:] = MAX_STEP - 1
    _, terminal = step(env, [LEFT, STAY])
    assert terminal.agent_id.tolist() == [0, 1] and terminal.interrupted.tolist() == [False, True]


def test_shared_reward_pays_only_the_agents_still_in():
    env = make_env("sacrifice", num_areas=1, seed=0, parameters={"shared_reward": 1.0})
    env.reset()
    place(env, [[1, 4]])
    _, terminal = step(env, [LEFT, STAY])
    assert terminal.reward.tolist() == [0.0]  # the sacrificed agent is never paid
    _, terminal = step(env, [RIGHT])
    assert terminal.reward.tolist() == [GOAL_REWARD] and terminal.group_reward.tolist() == [GOAL_REWARD]
    with pytest.raises(EnvError, match="shared_reward"):
        make_env("sacrifice", num_areas=1, seed=0, parameters={"shared_reward": 0.5})
    with pytest.raises(EnvError, match="unknown|shared"):
        make_env("sacrifice", num_areas=1, seed=0, parameters={"nope": 1.0})


def test_same_seed_same_episodes():
    def trace(seed: int) -> list[np.ndarray]:
        env = make_env("sacrifice", num_areas=4, seed=seed)
        rng = np.random.default_rng(1)
        env.reset()
        out = []
        for _ in range(50):
            decision, terminal = env.get_steps(BEHAVIOR)
            out += [decision.obs[0], decision.agent_id, terminal.agent_id, terminal.group_reward]
            act(env, random_policy(decision, rng))
            env.step()
        return out

    a, b, c = trace(3), trace(3), trace(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_scores_optimal_and_random():
    solved, length = score(optimal_policy)
    assert solved == SOLVED_SCORE and length <= 5.0
    random, _ = score(random_policy)
    assert abs(random - RANDOM_SCORE) < 0.03 and random < THRESHOLD / 3


def test_groups_cross_the_wire_from_an_env_process():
    """Served by mlx-env over ML-Agents' gRPC protocol, the env steps as in-process: group ids, group
    rewards and the agents removed mid-episode (absent from the decisions) included."""
    removed, paid = step_side_by_side("sacrifice", BEHAVIOR, 4, 60, random_actions(), same_ids=False)
    assert removed and paid


def _state(decision: DecisionSteps) -> np.ndarray:
    """A table index per agent: own cell (6) x mate's cell or gone (7) x door (2) = 84 states."""
    own, mate, door = decision.obs[0].T
    mate_cell = np.where(mate < 0, 6, np.rint(mate * 5)).astype(np.int64)
    return np.rint(own * 5).astype(np.int64) * 14 + mate_cell * 2 + door.astype(np.int64)


def _reinforce(posthumous: bool, iterations: int = 60, areas: int = 64, horizon: int = 48) -> float:
    """Tabular REINFORCE, one table shared by every agent. Each agent step is credited with its group
    episode's whole group reward (posthumous credit, as POCA's group value gives it) or with the group
    reward that agent itself received (what an independent learner sees). Returns the learnt score."""
    rng = np.random.default_rng(0)
    theta = np.zeros((84, 3))
    env = make_env("sacrifice", num_areas=areas, seed=0)

    def probs(states: np.ndarray) -> np.ndarray:
        p = np.exp(theta[states])
        return p / p.sum(axis=1, keepdims=True)

    def sample(decision: DecisionSteps, generator: np.random.Generator) -> np.ndarray:
        p = probs(_state(decision))
        return (generator.random(len(p))[:, None] > p.cumsum(axis=1)).sum(axis=1)

    for _ in range(iterations):
        env.reset()
        episode = np.zeros(areas, np.int64)
        group_return = np.zeros((areas, horizon + 1))
        own_return = np.zeros((2 * areas, horizon + 1))
        complete = np.zeros((areas, horizon + 1), bool)
        steps = []
        for _ in range(horizon):
            decision, _ = env.get_steps(BEHAVIOR)
            actions = sample(decision, rng)
            area = decision.group_id - 1
            steps.append((_state(decision), actions, decision.agent_id, area, episode[area]))
            act(env, actions)
            env.step()
            _, terminal = env.get_steps(BEHAVIOR)
            t_area = terminal.group_id - 1
            np.add.at(group_return, (t_area, episode[t_area]), terminal.group_reward)
            np.add.at(own_return, (terminal.agent_id, episode[t_area]), terminal.group_reward)
            ended = env._steps == 0
            complete[ended, episode[ended]] = True
            episode += ended
        states, actions, ids, area, ep = (np.concatenate(x) for x in zip(*steps, strict=True))
        keep = complete[area, ep]
        ret = (group_return[area, ep] if posthumous else own_return[ids, ep])[keep]
        states, actions = states[keep], actions[keep]
        grad = -probs(states)
        grad[np.arange(len(actions)), actions] += 1.0
        np.add.at(theta, states, grad * (ret - ret.mean())[:, None] * (84 / len(states)))
    return score(sample, steps=200)[0]


def test_credit_for_the_sacrifice_is_what_solves_it():
    """Why this env is the POCA test: the same learner solves it when the removed agent is credited with
    its group's later reward, and stays near random play when each agent gets only what it was paid."""
    assert _reinforce(posthumous=True) >= THRESHOLD
    assert _reinforce(posthumous=False) < THRESHOLD / 2
