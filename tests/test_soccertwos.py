"""SoccerTwos (mlx.envs.native.soccertwos on the field engine mlx.envs.native.soccer): the env contract, specs,
agent / group / team ids, goals and their group rewards, the timeout, the lateral-overrides-forward quirk,
the kick, the mirror symmetry between blue and purple, the documented scores of a scripted team against a
random one, pictures, and the env served over gRPC."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, DecisionSteps, EnvError, TerminalSteps
from mlx.envs.checker import check_env
from mlx.envs.native.soccer import BALL_RADIUS, KICK_DV, MAX_DECISIONS
from mlx.envs.native.soccer_scripted import scripted_actions
from mlx.envs.native.soccertwos import (
    BEHAVIOR,
    RANDOM_DRAW_RATE,
    SCRIPTED_WIN_RATE,
    SoccerTwosEnv,
)
from tests.wire import random_actions, step_side_by_side

Policy = Callable[[SoccerTwosEnv, np.random.Generator], np.ndarray]
BLUE0, BLUE1, PURPLE0, PURPLE1 = 0, 1, 2, 3


def make(fields: int = 2, seed: int = 0, **parameters: float) -> SoccerTwosEnv:
    env = make_env("soccertwos", num_areas=fields, seed=seed, parameters=parameters)
    assert isinstance(env, SoccerTwosEnv)
    env.reset()
    return env


def step(env: SoccerTwosEnv, actions: np.ndarray | None = None) -> tuple[DecisionSteps, TerminalSteps]:
    """One decision; no-ops (0, 0, 0) for every agent by default; actions [n * 4, 3] in id order."""
    a = np.zeros((env.n * 4, 3), np.int32) if actions is None else np.asarray(actions, np.int32).reshape(-1, 3)
    env.set_actions(BEHAVIOR, ActionTuple(np.zeros((len(a), 0), np.float32), a))
    env.step()
    return env.get_steps(BEHAVIOR)


def put(env: SoccerTwosEnv, field: int, body: int, x: float, z: float, heading: float = 0.0,
        vx: float = 0.0, vz: float = 0.0) -> None:  # fmt: skip
    """Place a body of a field (agents 0..3, the ball 4) with a velocity; headings only for agents."""
    ar = env.arena
    ar.pos[:, body, field] = (x, z)
    ar.vel[:, body, field] = (vx, vz)
    if body < env.A:
        ar.heading[body, field] = heading


def quiet(env: SoccerTwosEnv) -> None:
    """Every field: the agents standing still in the four corners, the ball still at the centre."""
    for f in range(env.n):
        for k, (x, z) in enumerate(((-12.0, 5.0), (-12.0, -5.0), (12.0, 5.0), (12.0, -5.0))):
            put(env, f, k, x, z, heading=np.pi / 2 if k < 2 else -np.pi / 2)
        put(env, f, 4, 0.0, 0.0)


def test_env_contract():
    check_env(lambda seed: make_env("soccertwos", num_areas=2, seed=seed), steps=120)


def test_specs_ids_groups_and_teams():
    env = make(3)
    spec = env.behavior_specs[BEHAVIOR]
    assert [(o.shape, o.name) for o in spec.observation_specs] == [
        ((264,), "StackingSensor_size3_BlueRayPerceptionSensor"),
        ((72,), "StackingSensor_size3_BlueRayPerceptionSensorReverse"),
    ]
    assert spec.action_spec.discrete_branches == (3, 3, 3) and spec.action_spec.continuous_size == 0
    assert env.teams(BEHAVIOR) == (0, 1)
    with pytest.raises(EnvError):
        env.teams("Striker")
    decision, terminal = env.get_steps(BEHAVIOR)
    assert decision.agent_id.tolist() == list(range(12))
    assert decision.group_id.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]  # a group per colour and field
    assert decision.team_id.tolist() == [0, 0, 1, 1] * 3
    assert len(terminal) == 0 and terminal.team_id is not None and terminal.team_id.shape == (0,)
    assert not decision.reward.any() and not decision.group_reward.any()
    forward, backward = decision.obs
    assert not forward[:, :176].any() and not backward[:, :48].any()  # only the newest of 3 frames at the start
    frame = forward[:, 176:].reshape(12, 11, 8)
    assert (frame[:, :, :6].sum(2) + frame[:, :, 6] <= 1).all()  # at most one tag, or a miss, per ray
    assert ((frame[:, :, 7] > 0) & (frame[:, :, 7] <= 1)).all()


def test_rays_see_with_own_and_opponent_semantics():
    """The forward middle ray (ray 0) of an agent facing the opponents' goal sees it as "opponent goal"
    (slot 2), facing its own goal as "own goal" (slot 1); a teammate ahead is slot 4, an opponent 5."""
    env = make(1)
    quiet(env)
    put(env, 0, 4, 0.0, 6.0)  # the ball out of the way
    put(env, 0, BLUE0, 0.0, 0.0, heading=np.pi / 2)  # facing +x: purple's goal, blue's opponent goal
    put(env, 0, PURPLE0, 0.0, -3.0, heading=np.pi / 2)  # facing +x: its own goal
    put(env, 0, BLUE1, -6.0, 3.0, heading=np.pi / 2)
    put(env, 0, PURPLE1, -3.0, 3.0, heading=0.0)
    obs = env._observe(np.arange(1), restart=True)[0][0][0]  # [4, 264]
    tag = lambda k: int(obs[k, 176:184][:6].argmax()) if obs[k, 176:182].any() else -1  # noqa: E731
    assert tag(BLUE0) == 2 and tag(PURPLE0) == 1
    assert tag(BLUE1) == 5  # blue 1 faces purple 1, 3 m ahead
    put(env, 0, PURPLE1, -3.0, 3.0, heading=-np.pi / 2)  # purple 1 faces blue 1: an opponent
    obs = env._observe(np.arange(1), restart=True)[0][0][0]
    assert tag(PURPLE1) == 5
    put(env, 0, BLUE1, -6.0, 0.0, heading=np.pi / 2)  # blue 1 behind blue 0, facing it: a teammate
    obs = env._observe(np.arange(1), restart=True)[0][0][0]
    assert tag(BLUE1) == 4
    np.testing.assert_allclose(obs[BLUE1, 183], (6.0 - 0.866) / 20.0, atol=2e-3)  # exact sphere reach


def test_goal_pays_group_rewards_and_ends_both_groups():
    env = make(2)
    quiet(env)
    put(env, 0, 4, 15.0, 0.0, vx=20.0)  # field 0: the ball rolls into purple's net: blue scores
    decision, terminal = step(env)
    assert terminal.agent_id.tolist() == [0, 1, 2, 3] and not terminal.interrupted.any()
    assert terminal.group_reward.tolist() == [1.0, 1.0, -1.0, -1.0]
    assert terminal.reward.tolist() == [0.0] * 4  # no individual reward (ball_touch 0)
    assert terminal.group_id.tolist() == [1, 1, 2, 2] and terminal.team_id.tolist() == [0, 0, 1, 1]
    assert env.ended.tolist() == [True, False] and env.winner.tolist() == [0, -1]
    assert decision.agent_id.tolist() == list(range(8))  # field 0 starts over; everybody decides
    assert not decision.group_reward.any() and not decision.reward.any()
    assert env._steps.tolist() == [0, 1]
    assert not decision.obs[0][:4, :176].any() and decision.obs[0][4:, :176].any()  # field 0's stacks cleared
    assert abs(env.arena.pos[0, 4, 0]) <= 2.5  # the ball back near the centre
    # The other way: purple scores in blue's net (-x).
    quiet(env)
    put(env, 1, 4, -15.0, 2.0, vx=-20.0)
    _, terminal = step(env)
    assert terminal.agent_id.tolist() == [4, 5, 6, 7]
    assert terminal.group_reward.tolist() == [-1.0, -1.0, 1.0, 1.0] and env.winner.tolist() == [-1, 1]


def test_a_ball_beside_the_goal_mouth_does_not_score():
    env = make(1)
    quiet(env)
    put(env, 0, 4, 14.0, 5.5, vx=20.0)  # against the end wall beside the mouth (|z| > 4.15)
    for _ in range(3):
        _, terminal = step(env)
        assert len(terminal) == 0
    assert env.arena.pos[0, 4, 0] == pytest.approx(15.5 - BALL_RADIUS, abs=1e-3)


def test_timeout_interrupts_both_groups():
    env = make(2)
    quiet(env)
    env._steps[:] = [MAX_DECISIONS - 1, 5]
    decision, terminal = step(env)
    assert terminal.agent_id.tolist() == [0, 1, 2, 3] and terminal.interrupted.all()
    assert not terminal.group_reward.any() and env.winner.tolist() == [-1, -1] and env.ended.tolist() == [True, False]
    assert len(decision) == 8


def test_lateral_overrides_forward_and_keeps_the_kick_power():
    """Branch 1 (lateral) replaces branch 0's move; forward still sets kick power 1 (pitfall 2)."""
    env = make(3)
    quiet(env)
    a = np.zeros((12, 3), np.int32)
    a[0] = (1, 0, 0)  # field 0: forward
    a[4] = (1, 1, 0)  # field 1: forward + right: right only
    a[8] = (0, 1, 0)  # field 2: right
    step(env, a)
    vel = env.arena.vel[:, 0]  # agent 0 of each field, facing +x; its right is -z
    assert vel[0, 0] > 5.0 and abs(vel[1, 0]) < 1e-5
    np.testing.assert_allclose(vel[:, 1], vel[:, 2], atol=1e-6)
    assert abs(vel[0, 1]) < 1e-5 and vel[1, 1] < -1.0


def test_turning_is_two_degrees_per_physics_step():
    env = make(1)
    quiet(env)
    a = np.zeros((4, 3), np.int32)
    a[0] = (0, 0, 2)  # yaw + (to the right)
    a[1] = (0, 0, 1)
    step(env, a)
    np.testing.assert_allclose(env.arena.heading[:2, 0], [np.pi / 2 + np.radians(10), np.pi / 2 - np.radians(10)],
                               atol=1e-5)  # fmt: skip


def test_kick_needs_kick_power():
    """A ball rolling into a standing agent stops dead (restitution 0) unless the agent chose forward
    (here with a lateral move, which keeps it nearly in place): then it flies back at ~13.3 m/s."""
    env = make(2)
    quiet(env)
    for f in range(2):
        put(env, f, BLUE0, 0.0, 0.0, heading=np.pi / 2)
        put(env, f, 4, 0.5 + BALL_RADIUS + 0.05, 0.0, vx=-5.0)
    a = np.zeros((8, 3), np.int32)
    a[4] = (1, 1, 0)  # field 1: kick power 1
    step(env, a)
    ball_v = env.arena.vel[0, 4]
    assert abs(ball_v[0]) < 0.5
    assert ball_v[1] > 0.8 * KICK_DV and ball_v[1] < 1.05 * KICK_DV


def test_ball_touch_parameter_pays_each_touch():
    env = make(1, ball_touch=1.0)
    quiet(env)
    put(env, 0, BLUE0, 0.0, 0.0, heading=np.pi / 2)
    put(env, 0, 4, 0.5 + BALL_RADIUS + 0.05, 0.0, vx=-5.0)
    decision, _ = step(env)
    assert decision.reward.tolist() == pytest.approx([0.2, 0.0, 0.0, 0.0])
    with pytest.raises(EnvError, match="ball_touch"):
        make_env("soccertwos", num_areas=1, seed=0, parameters={"ball_touch": float("nan")})
    with pytest.raises(EnvError):
        make_env("soccertwos", num_areas=1, seed=0, parameters={"time_penalty": 1.0})


def mirror(env: SoccerTwosEnv, src: int, dst: int) -> None:
    """Field dst := field src turned 180 degrees with the colours swapped (blue k <-> purple k)."""
    ar = env.arena
    swap = [PURPLE0, PURPLE1, BLUE0, BLUE1, 4]
    for k, j in enumerate(swap):
        ar.pos[:, j, dst] = -ar.pos[:, k, src]
        ar.vel[:, j, dst] = -ar.vel[:, k, src]
        if k < 4:
            ar.heading[j, dst] = ar.heading[k, src] + np.pi
    env._touching[:, dst] = env._touching[swap[:4], src]


def test_blue_and_purple_see_mirrored_worlds():
    """The same situation turned 180 degrees with the colours swapped gives each agent the observations of
    its counterpart, on every step, under swapped actions: one policy plays both sides."""
    env = make(2, seed=3)
    rng = np.random.default_rng(1)
    for _ in range(5):  # a situation from play
        step(env, rng.integers(0, 3, (8, 3)))
    mirror(env, 0, 1)
    env._steps[:] = 0
    first = env._observe(np.arange(2), restart=True)[0]
    swap = [PURPLE0, PURPLE1, BLUE0, BLUE1]
    for o in first:
        np.testing.assert_allclose(o[1][swap], o[0], atol=1e-4)
    for _ in range(3):
        a = rng.integers(0, 3, (2, 4, 3))
        a[1] = a[0][swap]
        decision, terminal = step(env, a)
        assert len(terminal) == 0
        for o in decision.obs:
            o = o.reshape(2, 4, -1)
            np.testing.assert_allclose(o[1][swap], o[0], atol=2e-3)


def random_policy(env: SoccerTwosEnv, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 3, (env.n, 4, 3)).astype(np.int32)


def scripted_blue(env: SoccerTwosEnv, rng: np.random.Generator) -> np.ndarray:
    """Blue plays the scripted player, purple at random."""
    a = random_policy(env, rng)
    a[:, :2] = scripted_actions(env, BEHAVIOR).reshape(env.n, 4, 3)[:, :2]
    return a


def play(policy: Policy, fields: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every field's first game: winners [fields] (0 blue, 1 purple, -1 timed out) and lengths in decisions."""
    env = make(fields, seed)
    rng = np.random.default_rng(seed)
    winner = np.full(fields, -2)
    length = np.zeros(fields, int)
    while (winner == -2).any():
        before = env._steps.copy()
        step(env, policy(env, rng))
        first = env.ended & (winner == -2)
        winner[first] = env.winner[first]
        length[first] = before[first] + 1
    return winner, length


def test_scores_scripted_against_random():
    winner, length = play(scripted_blue, 48)
    decided = winner >= 0
    assert decided.mean() > 0.9 and (winner[decided] == 0).mean() >= 0.9 and length.mean() < 150
    assert SCRIPTED_WIN_RATE >= 0.95


def test_scores_random_against_random():
    winner, length = play(random_policy, 64)
    decided = winner >= 0
    assert 0.3 < (~decided).mean() < 0.8  # random play mostly times out
    assert 0.2 < (winner[decided] == 0).mean() < 0.8 and length.mean() > 400
    assert 0.3 < RANDOM_DRAW_RATE < 0.8


def test_render():
    env = make(3)
    quiet(env)
    put(env, 1, 4, 5.0, 3.0)
    pictures = env.render([0, 1])
    assert pictures.dtype == np.uint8 and pictures.shape[0] == 2 and pictures.shape[3] == 3
    assert not np.array_equal(pictures[0], pictures[1])


def test_over_the_wire_from_an_env_process():
    """Served by mlx-env over ML-Agents' gRPC protocol, the env steps as in-process (observations, team ids,
    group ids, rewards, group rewards, interruptions; rows team by team, as they cross the wire) under the
    scripted players (goals) and random actions."""

    def scripted(env, decision):
        a = scripted_actions(env, BEHAVIOR)
        return ActionTuple(np.zeros((len(a), 0), np.float32), a)

    _, paid = step_side_by_side("soccertwos", BEHAVIOR, 4, 100, scripted, same_ids=False)
    assert paid > 0
    step_side_by_side("soccertwos", BEHAVIOR, 2, 30, random_actions(0), same_ids=False)


def test_team_ids_cross_the_wire():
    """Blue and purple go over the wire as SoccerTwos?team=0 and ?team=1 and come back as team ids."""
    from mlx.envs.unity.env import UnityEnv, remote_command

    remote = UnityEnv(command=remote_command("soccertwos"), base_port=0, num_areas=2, seed=2)
    try:
        assert remote.teams(BEHAVIOR) == (0, 1)
        decision, _ = remote.get_steps(BEHAVIOR)
        assert decision.team_id is not None and sorted(decision.team_id.tolist()) == [0, 0, 0, 0, 1, 1, 1, 1]
    finally:
        remote.close()
