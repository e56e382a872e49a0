"""Tennis (mlx.envs.native.tennis): the env contract, teams, every point rule from a scripted state, the
mirrored observations (swapping sides swaps what the players see), rendering, the documented scores of
a scripted player against a random one, and the env served over gRPC."""

from __future__ import annotations

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, DecisionSteps, EnvError, TerminalSteps
from mlx.envs.checker import check_env
from mlx.envs.native.tennis import (
    BEHAVIOR,
    FLOOR_Y,
    FRAME,
    MAX_DECISIONS,
    NOBODY,
    RANDOM_LENGTH,
    RANDOM_WIN,
    SCRIPTED_LENGTH,
    SCRIPTED_WIN,
    SERVICE,
    UNSET,
    TennisEnv,
    points_won,
    random_actions,
    score_points,
    scripted_actions,
)
from tests.wire import team_major, team_order

A, B = 0, 1


def act(env: TennisEnv, actions: np.ndarray) -> None:
    a = np.asarray(actions, np.float32).reshape(-1, 3)
    env.set_actions(BEHAVIOR, ActionTuple(a, np.zeros((len(a), 0), np.int32)))


def still(env: TennisEnv) -> np.ndarray:
    """Rackets standing still, vertical, not jumping."""
    return np.zeros((2 * env.n, 3), np.float32)


def setup(
    env: TennisEnv,
    ball: tuple[float, float, float, float],
    last_hit: int = NOBODY,
    last_floor: int = SERVICE,
    net_flag: bool = False,
    rackets: tuple[float, float] = (-3.0, 3.0),
) -> None:
    """Area 0 in a given state: the ball (x, y, vx, vy), the rule state, both rackets resting on their
    floors at the given x, vertical."""
    env.ball[0] = ball
    env.racket[0] = 0.0
    env.racket[0, :, 0] = rackets
    env.racket[0, :, 1] = FLOOR_Y + 0.494
    env.tilt[0] = 0.0
    env.last_hit[0], env.last_floor[0], env.net_flag[0] = last_hit, last_floor, net_flag
    env.touching[0] = False
    env._steps[0] = 0


def play_until_point(env: TennisEnv, limit: int = 40) -> TerminalSteps:
    """Step with still rackets until area 0's point ends; its TerminalSteps rows (A, then B)."""
    for _ in range(limit):
        act(env, still(env))
        env.step()
        _, terminal = env.get_steps(BEHAVIOR)
        rows = terminal.agent_id < 2
        if rows.any():
            return TerminalSteps(
                [terminal.obs[0][rows]],
                terminal.reward[rows],
                terminal.agent_id[rows],
                terminal.interrupted[rows],
                team_id=terminal.team_id[rows],
            )
    raise AssertionError("the point did not end")


def assert_won_by(terminal: TerminalSteps, winner: int) -> None:
    assert terminal.agent_id.tolist() == [0, 1] and terminal.team_id.tolist() == [0, 1]
    assert terminal.reward.tolist() == ([1.0, -1.0] if winner == A else [-1.0, 1.0])
    assert not terminal.interrupted.any()
    assert points_won(terminal).tolist() == ([1, 0] if winner == A else [0, 1])


def fresh(areas: int = 1, seed: int = 0) -> TennisEnv:
    env = TennisEnv(num_areas=areas, seed=seed)
    env.reset()
    return env


# ---- contract, specs, teams -------------------------------------------------------------------------------


def test_env_contract():
    check_env(lambda seed: make_env("tennis", num_areas=3, seed=seed), steps=200)


def test_specs_teams_and_first_observations():
    env = make_env("tennis", num_areas=3, seed=0)
    spec = env.behavior_specs[BEHAVIOR]
    assert [o.shape for o in spec.observation_specs] == [(27,)]
    assert spec.action_spec.continuous_size == 3 and spec.action_spec.discrete_branches == ()
    assert env.teams(BEHAVIOR) == (0, 1)
    with pytest.raises(EnvError, match="Nope"):
        env.teams("Nope")
    env.reset()
    decision, terminal = env.get_steps(BEHAVIOR)
    assert decision.agent_id.tolist() == [0, 1, 2, 3, 4, 5]
    assert decision.team_id.tolist() == [0, 1, 0, 1, 0, 1] and decision.group_id is None
    assert len(terminal) == 0 and terminal.team_id is not None and terminal.team_id.shape == (0,)
    obs = decision.obs[0]
    assert (obs[:, : 2 * FRAME] == 0).all()  # the stack holds only the first frame
    own_x, own_y, ball_y = obs[:, 18], obs[:, 19], obs[:, 23]
    assert ((own_x <= -6) & (own_x >= -8)).all()  # both see themselves at U(6, 8) left of the net
    assert (own_y == -1.5).all() and (ball_y == 6.0).all()
    ball_x = obs[:, 22].reshape(3, 2)
    np.testing.assert_array_equal(ball_x[:, 0], -ball_x[:, 1])  # one ball, mirrored for B
    assert (np.abs(ball_x) >= 6).all() and (np.abs(ball_x) <= 8).all()
    act(env, still(env))
    env.step()
    decision, terminal = env.get_steps(BEHAVIOR)
    assert decision.team_id.tolist() == [0, 1, 0, 1, 0, 1] and terminal.team_id.shape == (0,)


def test_parameters():
    env = make_env("tennis", num_areas=2, seed=0, parameters={"scale": 1.0})
    env.reset()
    assert env.radius.tolist() == [0.5, 0.5]
    with pytest.raises(EnvError, match="scale"):
        make_env("tennis", num_areas=1, seed=0, parameters={"scale": 0.0})
    with pytest.raises(EnvError, match="angle|unknown"):
        make_env("tennis", num_areas=1, seed=0, parameters={"angle": 55.0})


# ---- point rules ---------------------------------------------------------------------------------------


def test_serve_not_returned_loses():
    env = fresh()
    setup(env, (-7.0, 6.0, 0.0, 0.0))  # dropped over A's half, rackets elsewhere
    assert_won_by(play_until_point(env), B)
    env = fresh()
    setup(env, (7.5, 6.0, 0.0, 0.0))
    assert_won_by(play_until_point(env), A)


def test_ball_on_own_floor_after_own_hit_loses():
    env = fresh()
    setup(env, (-5.0, -5.0, 0.0, -5.0), last_hit=A, last_floor=UNSET)
    terminal = play_until_point(env)
    assert_won_by(terminal, B)
    ball_y = terminal.obs[0][0, 23]  # the terminal observation is the moment of the bounce
    assert ball_y == pytest.approx(FLOOR_Y + 0.25)


def test_first_bounce_counts_and_the_second_loses():
    env = fresh()
    setup(env, (5.0, -6.3, 0.0, -5.0), last_hit=A, last_floor=UNSET, rackets=(-3.0, 9.0))
    act(env, still(env))
    env.step()  # lands on B's floor once: recorded, no point
    assert len(env.get_steps(BEHAVIOR)[1]) == 0
    assert env.last_floor[0] == B and env.net_flag[0] and env.ball[0, 3] > 0
    assert_won_by(play_until_point(env), A)  # it comes down on B's floor again


def test_a_hit_is_recorded_and_a_double_hit_loses():
    env = fresh()
    setup(env, (-3.0, -5.5, 0.0, -3.0), last_hit=B, last_floor=B, net_flag=True)  # onto A's racket
    act(env, still(env))
    env.step()
    assert len(env.get_steps(BEHAVIOR)[1]) == 0
    assert env.last_hit[0] == A and env.last_floor[0] == UNSET and env.ball[0, 3] > 0
    env = fresh()
    setup(env, (-3.0, -5.5, 0.0, -3.0), last_hit=A, last_floor=UNSET, net_flag=True)
    assert_won_by(play_until_point(env, limit=1), B)


def test_net_loses_only_before_the_net_flag():
    env = fresh()
    setup(env, (-0.5, -6.6, 9.0, 0.5), last_hit=A, last_floor=UNSET, net_flag=False)
    assert_won_by(play_until_point(env, limit=1), B)
    env = fresh()
    setup(env, (0.5, -6.6, -9.0, 0.5), last_hit=B, last_floor=UNSET, net_flag=False)
    assert_won_by(play_until_point(env, limit=1), A)
    env = fresh()
    setup(env, (-0.5, -6.6, 9.0, 0.5), last_hit=A, last_floor=UNSET, net_flag=True)
    act(env, still(env))
    env.step()  # bounced off the net: no point
    assert len(env.get_steps(BEHAVIOR)[1]) == 0 and env.ball[0, 2] < 0


def test_back_walls_long_shots_and_winners():
    env = fresh()
    setup(env, (11.0, -3.0, 9.0, 0.0), last_hit=A, last_floor=UNSET)  # A hit long
    assert_won_by(play_until_point(env, limit=1), B)
    env = fresh()
    setup(env, (11.0, -3.0, 9.0, 0.0), last_hit=A, last_floor=B)  # bounced on B's floor: A's winner
    assert_won_by(play_until_point(env, limit=1), A)
    env = fresh()
    setup(env, (11.0, -3.0, 9.0, 0.0), last_hit=B, last_floor=UNSET)  # B hit into its own wall
    assert_won_by(play_until_point(env, limit=1), A)
    env = fresh()
    setup(env, (-11.0, -3.0, -9.0, 0.0), last_hit=B, last_floor=UNSET)  # B hit long
    assert_won_by(play_until_point(env, limit=1), A)


def test_timeout_interrupts_both_players():
    env = fresh(areas=2)
    env._steps[:] = MAX_DECISIONS - 1
    act(env, still(env))
    env.step()
    decision, terminal = env.get_steps(BEHAVIOR)
    assert terminal.agent_id.tolist() == [0, 1, 2, 3] and terminal.interrupted.all()
    assert terminal.reward.tolist() == [0.0] * 4 and terminal.team_id.tolist() == [0, 1, 0, 1]
    assert points_won(terminal).tolist() == [0, 0]
    assert decision.reward.tolist() == [0.0] * 4 and (decision.obs[0][:, :18] == 0).all()  # new points


def test_rackets_stay_on_their_half_and_hover_when_jumping():
    env = fresh()
    for _ in range(10):
        act(env, [[1.0, 1.0, 1.0], [1.0, 1.0, -1.0]])  # both run at the net and jump
        env.step()
    x = env.racket[0, :, 0]  # clamped to 1 m from the net before each physics step's move of 0.6 m
    assert -1.0 <= x[0] <= -0.4 and 0.4 <= x[1] <= 1.0 and x[0] == -x[1]
    assert env.racket[0, :, 1].min() > -1.6  # hovering near -1.5 and above
    own = env.get_steps(BEHAVIOR)[0].obs[0][:, 18:]
    assert own[0, 0] == own[1, 0]
    np.testing.assert_allclose(own[:, 8], [np.deg2rad(55), -np.deg2rad(55)])  # the tilt, own frame


# ---- mirroring ---------------------------------------------------------------------------------------------


def mirror(src: TennisEnv, dst: TennisEnv) -> None:
    """dst := src with the players' sides swapped (x -> -x, A <-> B)."""
    dst.ball[:] = src.ball * [-1, 1, -1, 1]
    dst.racket[:] = src.racket[:, ::-1] * [-1, 1, -1, 1]
    dst.tilt[:] = src.tilt[:, ::-1]
    dst.radius[:] = src.radius
    swap = np.array([B, A])
    dst.last_hit[:] = np.where(src.last_hit >= 0, swap[np.maximum(src.last_hit, 0)], src.last_hit)
    dst.last_floor[:] = np.where((src.last_floor == A) | (src.last_floor == B), 1 - src.last_floor, src.last_floor)
    dst.net_flag[:] = src.net_flag
    dst.touching[:] = src.touching[:, ::-1]
    dst._steps[:] = src._steps
    dst.stack.data[:] = src.stack.data.reshape(src.n, 2, -1)[:, ::-1].reshape(2 * src.n, -1)


def test_swapping_sides_swaps_what_the_players_see():
    n = 32
    one, two = fresh(n, seed=0), fresh(n, seed=5)
    mirror(one, two)
    rng = np.random.default_rng(0)
    live = np.ones(n, bool)
    swapped = np.arange(2 * n).reshape(n, 2)[:, ::-1].reshape(-1)
    decided = 0
    for _ in range(40):
        actions = random_actions(one.get_steps(BEHAVIOR)[0], rng)
        actions[0::2] = scripted_actions(DecisionSteps([one.get_steps(BEHAVIOR)[0].obs[0][0::2]], None, None))
        act(one, actions)
        act(two, actions[swapped])
        one.step()
        two.step()
        (d1, t1), (d2, t2) = one.get_steps(BEHAVIOR), two.get_steps(BEHAVIOR)
        # Points decided in the same areas, with the rewards swapped, the terminal observations swapped.
        ended1, ended2 = t1.agent_id[0::2] // 2, t2.agent_id[0::2] // 2
        np.testing.assert_array_equal(ended1[live[ended1]], ended2[live[ended2]])
        keep1, keep2 = live[t1.agent_id // 2], live[t2.agent_id // 2]
        r1, r2 = t1.reward[keep1].reshape(-1, 2), t2.reward[keep2].reshape(-1, 2)
        np.testing.assert_array_equal(r1, r2[:, ::-1])
        o1, o2 = t1.obs[0][keep1].reshape(-1, 2, 27), t2.obs[0][keep2].reshape(-1, 2, 27)
        np.testing.assert_allclose(o1, o2[:, ::-1], atol=1e-4)
        decided += int((r1 != 0).any(axis=1).sum())
        live[ended1] = False  # the next points start from different draws
        rows = np.repeat(live, 2)
        np.testing.assert_allclose(d1.obs[0][rows], d2.obs[0][swapped][rows], atol=1e-4)
    assert decided >= 5 and live.any()


# ---- pictures, scores -----------------------------------------------------------------------------------


def test_render():
    env = fresh(3)
    act(env, random_actions(env.get_steps(BEHAVIOR)[0], np.random.default_rng(0)))
    env.step()
    pictures = env.render([0, 2])
    assert pictures.dtype == np.uint8 and pictures.shape == (2, 182, 320, 3)
    assert not np.array_equal(pictures[0], pictures[1])
    assert env.render().shape[0] == 3


def test_scores_scripted_against_random_and_random_against_random():
    won, decided, length = score_points((scripted_actions, random_actions), areas=128, decisions=500)
    assert won[0] / decided >= 0.95 and abs(won[0] / decided - SCRIPTED_WIN) < 0.02
    assert abs(length - SCRIPTED_LENGTH) < 3
    won, decided, _ = score_points((random_actions, scripted_actions), areas=128, decisions=500, seed=1)
    assert won[1] / decided >= 0.95  # from either side
    won, decided, length = score_points((random_actions, random_actions), areas=128, decisions=500)
    assert abs(won[0] / decided - RANDOM_WIN) < 0.03 and abs(length - RANDOM_LENGTH) < 2


# ---- over the wire ------------------------------------------------------------------------------------------


def test_served_over_grpc_steps_as_in_process():
    """Served by mlx-env over ML-Agents' gRPC protocol, the env steps as in-process: observations, team
    ids (``Tennis?team=0`` and ``?team=1`` on the wire: every A, then every B, compared in that order),
    rewards (the points) and interruptions of every player; no groups. Agent ids, renewed per episode on
    the wire, are not compared. (tests.wire.step_side_by_side would do, but it counts group rewards, which
    Tennis has none of.)"""
    from mlx.envs.unity.env import UnityEnv, remote_command

    areas, seed = 4, 2
    remote = UnityEnv(command=remote_command("tennis"), base_port=0, num_areas=areas, seed=seed)
    native = make_env("tennis", areas, seed)
    rng = np.random.default_rng(0)
    try:
        native.reset()
        for _ in range(60):
            (d, t), (native_d, native_t) = remote.get_steps(BEHAVIOR), native.get_steps(BEHAVIOR)
            for got, want in ((d, team_major(native_d)), (t, team_major(native_t))):
                np.testing.assert_array_equal(got.obs[0], want.obs[0])
                np.testing.assert_array_equal(got.team_id, want.team_id)
                np.testing.assert_array_equal(got.reward, want.reward)
                assert got.group_id is None and want.group_id is None
            np.testing.assert_array_equal(t.interrupted, team_major(native_t).interrupted)
            a = random_actions(native_d, rng)
            a[0::2] = scripted_actions(native_d)[0::2]  # A plays well: points are won and lost
            remote.set_actions(BEHAVIOR, ActionTuple(a[team_order(native_d)], np.zeros((len(a), 0), np.int32)))
            act(native, a)
            remote.step()
            native.step()
    finally:
        remote.close()
    assert native.points.sum() >= 3
