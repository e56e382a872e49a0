"""StrikersVsGoalie (mlx.envs.native.strikersvsgoalie on the field engine mlx.envs.native.soccer): the env
contract with two behaviours of different specs, ids, groups and teams, the existential rewards, goals,
the timeout, the goalie's kick, the documented scores, pictures, and both behaviours over gRPC."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, DecisionSteps, EnvError, TerminalSteps
from mlx.envs.checker import check_env
from mlx.envs.native.soccer import BALL_RADIUS, KICK_DV, MAX_DECISIONS
from mlx.envs.native.soccer_scripted import scripted_actions
from mlx.envs.native.strikersvsgoalie import (
    EXISTENTIAL,
    GOALIE,
    RANDOM_DRAW_RATE,
    SCRIPTED_WIN_RATE,
    STRIKER,
    StrikersVsGoalieEnv,
)

STRIKER0, STRIKER1, KEEPER, BALL = 0, 1, 2, 3
Policy = Callable[[StrikersVsGoalieEnv, str, np.random.Generator], np.ndarray]


def make(fields: int = 2, seed: int = 0) -> StrikersVsGoalieEnv:
    env = make_env("strikersvsgoalie", num_areas=fields, seed=seed)
    assert isinstance(env, StrikersVsGoalieEnv)
    env.reset()
    return env


def step(env: StrikersVsGoalieEnv, strikers: np.ndarray | None = None, goalies: np.ndarray | None = None
         ) -> dict[str, tuple[DecisionSteps, TerminalSteps]]:  # fmt: skip
    """One decision (no-ops by default); returns each behaviour's steps."""
    for name, a, m in ((STRIKER, strikers, 2 * env.n), (GOALIE, goalies, env.n)):
        a = np.zeros((m, 3), np.int32) if a is None else np.asarray(a, np.int32).reshape(-1, 3)
        env.set_actions(name, ActionTuple(np.zeros((m, 0), np.float32), a))
    env.step()
    return {name: env.get_steps(name) for name in (STRIKER, GOALIE)}


def put(env: StrikersVsGoalieEnv, field: int, body: int, x: float, z: float, heading: float = 0.0,
        vx: float = 0.0, vz: float = 0.0) -> None:  # fmt: skip
    ar = env.arena
    ar.pos[:, body, field] = (x, z)
    ar.vel[:, body, field] = (vx, vz)
    if body < env.A:
        ar.heading[body, field] = heading


def quiet(env: StrikersVsGoalieEnv) -> None:
    for f in range(env.n):
        put(env, f, STRIKER0, -12.0, 5.0, np.pi / 2)
        put(env, f, STRIKER1, -12.0, -5.0, np.pi / 2)
        put(env, f, KEEPER, 12.0, 5.0, -np.pi / 2)
        put(env, f, BALL, 0.0, 0.0)


def test_env_contract():
    check_env(lambda seed: make_env("strikersvsgoalie", num_areas=2, seed=seed), steps=120)


def test_two_behaviours_with_their_own_specs_ids_groups_and_teams():
    env = make(3)
    specs = env.behavior_specs
    assert [(o.shape, o.name) for o in specs[STRIKER].observation_specs] == [
        ((231,), "StackingSensor_size3_BlueRayPerceptionSensor"),
        ((63,), "StackingSensor_size3_BlueRayPerceptionSensorReverse"),
    ]
    assert [(o.shape, o.name) for o in specs[GOALIE].observation_specs] == [
        ((738,), "StackingSensor_size3_PurpleRayPerceptionSensor")
    ]
    assert all(s.action_spec.discrete_branches == (3, 3, 3) for s in specs.values())
    assert env.teams(STRIKER) == (0,) and env.teams(GOALIE) == (1,)
    (sd, st), (gd, gt) = env.get_steps(STRIKER), env.get_steps(GOALIE)
    assert sd.agent_id.tolist() == [0, 1, 3, 4, 6, 7] and gd.agent_id.tolist() == [2, 5, 8]
    assert sd.group_id.tolist() == [1, 1, 3, 3, 5, 5] and gd.group_id.tolist() == [2, 4, 6]
    assert sd.team_id.tolist() == [0] * 6 and gd.team_id.tolist() == [1] * 3
    assert sd.obs[0].shape == (6, 231) and gd.obs[0].shape == (3, 738)
    assert len(st) == len(gt) == 0 and st.obs[0].shape == (0, 231) and gt.obs[0].shape == (0, 738)
    assert st.team_id.shape == (0,) and gt.team_id.shape == (0,)
    frame = gd.obs[0][:, 492:].reshape(3, 41, 6)  # the goalie's newest frame: 41 rays, 4 tags + 2
    assert (frame[:, :, :4].sum(2) + frame[:, :, 4] <= 1).all()
    with pytest.raises(EnvError):
        env.set_actions(GOALIE, ActionTuple(np.zeros((6, 0), np.float32), np.zeros((6, 3), np.int32)))


def test_existential_rewards_per_physics_step():
    env = make(2)
    quiet(env)
    steps = step(env)
    assert steps[STRIKER][0].reward == pytest.approx([-5 * EXISTENTIAL] * 4)
    assert steps[GOALIE][0].reward == pytest.approx([5 * EXISTENTIAL] * 2)
    assert pytest.approx(0.0002) == EXISTENTIAL


def test_striker_goal_pays_groups_and_the_partial_existential():
    env = make(2)
    quiet(env)
    put(env, 0, BALL, 16.5, 0.0, vx=20.0)  # touches purple's net on the first physics step
    steps = step(env)
    (sd, st), (gd, gt) = steps[STRIKER], steps[GOALIE]
    assert st.agent_id.tolist() == [0, 1] and gt.agent_id.tolist() == [2]
    assert st.group_reward.tolist() == [1.0, 1.0] and gt.group_reward.tolist() == [-1.0]
    assert st.reward == pytest.approx([-EXISTENTIAL] * 2) and gt.reward == pytest.approx([EXISTENTIAL])
    assert not st.interrupted.any() and not gt.interrupted.any()
    assert st.team_id.tolist() == [0, 0] and gt.team_id.tolist() == [1]
    assert env.winner.tolist() == [0, -1]
    assert sd.reward.tolist()[:2] == [0.0, 0.0] and gd.reward.tolist()[0] == 0.0  # field 0 starts over


def test_goalie_goal_and_timeout():
    env = make(2)
    quiet(env)
    put(env, 1, BALL, -16.2, 0.0, vx=-20.0)  # into blue's net: the goalie's team scores
    steps = step(env)
    assert steps[STRIKER][1].group_reward.tolist() == [-1.0, -1.0] and steps[GOALIE][1].group_reward.tolist() == [1.0]
    assert env.winner.tolist() == [-1, 1]
    env._steps[:] = [MAX_DECISIONS - 1, 0]
    steps = step(env)
    (_, st), (_, gt) = steps[STRIKER], steps[GOALIE]
    assert st.agent_id.tolist() == [0, 1] and st.interrupted.all() and gt.interrupted.all()
    assert not st.group_reward.any() and not gt.group_reward.any()


def test_the_goalie_always_kicks():
    """A ball rolling into a standing goalie (no-op actions) flies back at about 13.3 m/s."""
    env = make(1)
    quiet(env)
    put(env, 0, KEEPER, 10.0, 0.0, heading=-np.pi / 2)
    put(env, 0, BALL, 10.0 - 0.5 - BALL_RADIUS - 0.05, 0.0, vx=5.0)
    step(env)
    vx = env.arena.vel[0, BALL, 0]
    assert -1.05 * KICK_DV < vx < -0.8 * KICK_DV


def test_strikers_move_faster_than_the_goalie_forward_and_slower_sideways():
    env = make(1)
    quiet(env)
    step(env, [(1, 0, 0), (0, 1, 0)], [(1, 0, 0)])
    speed = np.hypot(*env.arena.vel[:, :3, 0])
    assert speed[0] == pytest.approx(1.3 * speed[2], rel=0.05)
    step(env, [(0, 0, 0), (0, 1, 0)], [(0, 1, 0)])
    speed = np.hypot(*env.arena.vel[:, :3, 0])
    assert speed[2] > 2.5 * speed[1]


def play(strikers: Policy, goalies: Policy, fields: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every field's first game: winners (0 strikers, 1 goalie, -1 timed out) and lengths in decisions."""
    env = make(fields, seed)
    rng = np.random.default_rng(seed)
    winner = np.full(fields, -2)
    length = np.zeros(fields, int)
    while (winner == -2).any():
        before = env._steps.copy()
        step(env, strikers(env, STRIKER, rng), goalies(env, GOALIE, rng))
        first = env.ended & (winner == -2)
        winner[first] = env.winner[first]
        length[first] = before[first] + 1
    return winner, length


def random_policy(env: StrikersVsGoalieEnv, name: str, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 3, (len(env.get_steps(name)[0]), 3)).astype(np.int32)


def scripted(env: StrikersVsGoalieEnv, name: str, rng: np.random.Generator) -> np.ndarray:
    return scripted_actions(env, name)


def test_scores_scripted_strikers_against_a_random_goalie():
    winner, length = play(scripted, random_policy, 48)
    assert (winner == 0).mean() >= 0.9 and length.mean() < 150
    assert SCRIPTED_WIN_RATE >= 0.95


def test_scores_random_against_random():
    winner, length = play(random_policy, random_policy, 64)
    decided = winner >= 0
    assert 0.25 < (~decided).mean() < 0.75 and 0.25 < (winner[decided] == 0).mean() < 0.8
    assert length.mean() > 300 and 0.25 < RANDOM_DRAW_RATE < 0.75


def test_render():
    env = make(2)
    quiet(env)
    put(env, 1, BALL, 5.0, 3.0)
    pictures = env.render()
    assert pictures.dtype == np.uint8 and pictures.shape[0] == 2 and not np.array_equal(pictures[0], pictures[1])


def teams_of(steps: DecisionSteps | TerminalSteps) -> np.ndarray:
    """Team ids of a batch; None means every agent is in team 0 (the env API's contract)."""
    return np.zeros(len(steps), np.int32) if steps.team_id is None else steps.team_id


def test_both_behaviours_over_the_wire():
    """Served by mlx-env over gRPC, both behaviours (their own specs and teams) step as in-process:
    observations, team ids, group ids, rewards (the existential ones too), group rewards and
    interruptions; scripted strikers score."""
    from mlx.envs.unity.env import UnityEnv, remote_command

    remote = UnityEnv(command=remote_command("strikersvsgoalie"), base_port=0, num_areas=3, seed=2)
    native = make_env("strikersvsgoalie", 3, 2)
    rng = np.random.default_rng(0)
    paid = 0
    try:
        assert remote.behavior_specs == native.behavior_specs
        assert remote.teams(STRIKER) == (0,) and remote.teams(GOALIE) == (1,)
        native.reset()
        for _ in range(80):
            for name in (STRIKER, GOALIE):
                (d, t), (nd, nt) = remote.get_steps(name), native.get_steps(name)
                for got, want in ((d, nd), (t, nt)):
                    assert len(got) == len(want)
                    for o, w in zip(got.obs, want.obs, strict=True):
                        np.testing.assert_array_equal(o, w)
                    np.testing.assert_array_equal(got.group_id, want.group_id)
                    np.testing.assert_array_equal(teams_of(got), want.team_id)
                    np.testing.assert_array_equal(got.reward, want.reward)
                    np.testing.assert_array_equal(got.group_reward, want.group_reward)
                np.testing.assert_array_equal(t.interrupted, nt.interrupted)
                paid += int((t.group_reward > 0).sum())
            for name in (STRIKER, GOALIE):
                a = scripted_actions(native, name) if name == STRIKER else random_policy(native, name, rng)
                action = ActionTuple(np.zeros((len(a), 0), np.float32), a)
                remote.set_actions(name, action)
                native.set_actions(name, action)
            remote.step()
            native.step()
    finally:
        remote.close()
    assert paid > 0
