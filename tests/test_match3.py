"""Match3: the board rules against cell-by-cell references of upstream's loops, the move encoding, masks,
rewards, episode ends, observations, parameters, the heuristics, and the env contract (local and gRPC)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.checker import check_env
from mlx.envs.native import match3_board as mb
from mlx.envs.native.match3 import BEHAVIOR_NAME, MAX_MOVES, Match3Env, greedy_heuristic, play_episodes, random_actions

R, C = mb.MAX_ROWS, mb.MAX_COLS
POINTS = [1, 2, 3]


def random_boards(m: int, seed: int, colours: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Boards of random sizes 3..9 x 3..8 with few colours (many lines and valid moves), EMPTY outside."""
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(3, R + 1, m), rng.integers(3, C + 1, m)
    within = mb.inside(rows, cols)
    colour = np.where(within, rng.integers(0, colours, (m, R, C)), mb.EMPTY).astype(np.int8)
    special = np.where(within, rng.integers(0, 3, (m, R, C)), 0).astype(np.int8)
    return colour, special


def size(board: np.ndarray) -> tuple[int, int]:
    real = board >= 0
    return int(real.any(axis=1).sum()), int(real.any(axis=0).sum())


def ref_mark(board: np.ndarray) -> np.ndarray:
    """MarkMatchedCells as upstream loops it: from every cell, the run going up and going right."""
    rows, cols = size(board)
    marked = np.zeros(board.shape, bool)
    for r in range(rows):
        for c in range(cols):
            for dr, dc in ((1, 0), (0, 1)):
                n = 1
                while r + n * dr < rows and c + n * dc < cols and board[r + n * dr, c + n * dc] == board[r, c]:
                    n += 1
                if n >= 3:
                    for k in range(n):
                        marked[r + k * dr, c + k * dc] = True
    return marked


def ref_half(board, special, r, c, value, value_special, came_from, reach):
    """EvalHalfMove / SimpleIsMoveValid's half: (completes a line, points) for a cell arriving at (r, c)."""
    rows, cols = size(board)
    counts, scores = {}, {}
    for d in ((1, 0), (-1, 0), (0, -1), (0, 1)):
        counts[d] = scores[d] = 0
        if d == came_from:
            continue
        rr, cc = r + d[0], c + d[1]
        while 0 <= rr < rows and 0 <= cc < cols and board[rr, cc] == value and counts[d] < reach:
            counts[d] += 1
            scores[d] += POINTS[special[rr, cc]]
            rr, cc = rr + d[0], cc + d[1]
    vertical = counts[(1, 0)] + counts[(-1, 0)] >= 2
    horizontal = counts[(0, -1)] + counts[(0, 1)] >= 2
    if not (vertical or horizontal):
        return False, 0
    pts = POINTS[value_special]
    pts += (scores[(1, 0)] + scores[(-1, 0)]) * vertical + (scores[(0, -1)] + scores[(0, 1)]) * horizontal
    return True, pts


def ref_moves(board: np.ndarray, special: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every move index decoded as Move.FromMoveIndex does, judged and scored cell by cell."""
    rows, cols = size(board)
    valid = np.zeros(mb.NUM_MOVES, bool)
    points = np.zeros(mb.NUM_MOVES, np.int64)
    for i in range(mb.NUM_MOVES):
        if i < (C - 1) * R:
            r, c = divmod(i, C - 1)
            r2, c2, d = r, c + 1, (0, 1)
        else:
            r, c = divmod(i - (C - 1) * R, C)
            r2, c2, d = r + 1, c, (1, 0)
        if max(r, r2) >= rows or max(c, c2) >= cols or board[r, c] == board[r2, c2]:
            continue
        back = (-d[0], -d[1])
        ok1, p1 = ref_half(board, special, r2, c2, board[r, c], special[r, c], back, 99)
        ok2, p2 = ref_half(board, special, r, c, board[r2, c2], special[r2, c2], d, 99)
        valid[i] = ok1 or ok2
        points[i] = p1 + p2 if valid[i] else 0
    return valid, points


def test_move_indices_are_upstreams_encoding():
    assert mb.NUM_MOVES == 9 * 7 + 8 * 8 == 127
    assert mb.MOVES[0].tolist() == [0, 0, 0, 1]  # (row 0, col 0) with its right neighbour
    assert mb.MOVES[7 * 2 + 3].tolist() == [2, 3, 2, 4]  # index col + row * (C - 1)
    assert mb.MOVES[62].tolist() == [8, 6, 8, 7]
    assert mb.MOVES[63].tolist() == [0, 0, 1, 0]  # first vertical: (0, 0) with the cell above
    assert mb.MOVES[63 + 5 + 8 * 4].tolist() == [4, 5, 5, 5]  # (C - 1) * R + col + row * C
    assert mb.MOVES[126].tolist() == [7, 7, 8, 7]


def test_marking_equals_upstreams_runs_on_random_boards():
    colour, _ = random_boards(200, seed=1, colours=3)
    got = mb.mark(colour)
    for b in range(len(colour)):
        np.testing.assert_array_equal(got[b], ref_mark(colour[b]), err_msg=f"board {b}")
    assert got.any() and not got.all()


def test_clear_scores_by_special_type_and_drop_keeps_each_columns_order():
    colour = np.full((1, R, C), mb.EMPTY, np.int8)
    colour[0, :4, :3] = [[0, 0, 0], [1, 2, 3], [4, 5, 1], [2, 3, 4]]  # a 4 x 3 board, a line along row 0
    special = np.zeros_like(colour)
    special[0, 0, :3] = [0, 1, 2]
    marked = mb.mark(colour)
    assert marked[0].sum() == 3 and marked[0, 0, :3].all()
    assert mb.clear(colour, special, marked).tolist() == [1 + 2 + 3]
    assert (colour[0, 0, :3] == mb.EMPTY).all() and (special[0, 0, :3] == 0).all()
    mb.drop(colour, special)
    np.testing.assert_array_equal(colour[0, :3, :3], [[1, 2, 3], [4, 5, 1], [2, 3, 4]])
    assert (colour[0, 3:, :] == mb.EMPTY).all()
    within = mb.inside(np.array([4]), np.array([3]))
    mb.fill(colour, special, within, np.random.default_rng(0))
    assert (colour[0][within[0]] >= 0).all() and (colour[0][~within[0]] == mb.EMPTY).all()


def test_valid_moves_and_greedy_points_equal_upstreams_loops():
    colour, special = random_boards(150, seed=2)
    valid, points = mb.evaluate_moves(colour, special, score=True)
    valid_only, zeros = mb.evaluate_moves(colour, special)
    np.testing.assert_array_equal(valid_only, valid)
    assert not zeros.any()
    for b in range(len(colour)):
        want_valid, want_points = ref_moves(colour[b], special[b])
        np.testing.assert_array_equal(valid[b], want_valid, err_msg=f"board {b}")
        np.testing.assert_array_equal(points[b], want_points, err_msg=f"board {b}")
    assert valid.any(axis=1).mean() > 0.9 and (points[valid] >= 3).all() and points.max() > 9


def test_settled_boards_have_no_line_and_fill_draws_upstreams_specials():
    rng = np.random.default_rng(3)
    rows, cols = rng.integers(6, R + 1, 500), rng.integers(6, C + 1, 500)
    within = mb.inside(rows, cols)
    colour = np.zeros((500, R, C), np.int8)
    special = np.zeros_like(colour)
    mb.settle(colour, special, within, rng)
    assert not mb.mark(colour).any()
    assert ((colour >= 0) == within).all()
    kinds = np.bincount(special[within], minlength=3) / within.sum()
    np.testing.assert_allclose(kinds, [0.7, 0.2, 0.1], atol=0.01)
    np.testing.assert_allclose(np.bincount(colour[within]) / within.sum(), [1 / 6] * 6, atol=0.01)


def test_contract_and_spec():
    check_env(lambda seed: make_env("match3", num_areas=3, seed=seed), steps=40)
    spec = make_env("match3", 1, 0).behavior_specs[BEHAVIOR_NAME]
    assert [o.shape for o in spec.observation_specs] == [(9, 8, 6), (9, 8, 3)]
    assert spec.action_spec.discrete_branches == (127,) and spec.action_spec.continuous_size == 0


def stepped(env: Match3Env, moves: np.ndarray) -> None:
    env.set_actions(BEHAVIOR_NAME, ActionTuple(np.zeros((env.n, 0), np.float32), moves[:, None].astype(np.int32)))
    env.step()


def test_observations_masks_and_rewards_follow_the_boards():
    env = make_env("match3", 6, 4)
    assert isinstance(env, Match3Env)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(30):
        decision, _ = env.get_steps(BEHAVIOR_NAME)
        state = env.state()
        within = state["colour"] >= 0
        cells, specials = decision.obs
        assert (cells.sum(axis=-1) == within).all() and (specials.sum(axis=-1) == within).all()
        np.testing.assert_array_equal(cells.argmax(-1)[within], state["colour"][within])
        np.testing.assert_array_equal(specials.argmax(-1)[within], state["special"][within])
        assert not mb.mark(state["colour"]).any()  # every decision sees a settled board
        for b in range(env.n):
            np.testing.assert_array_equal(
                decision.action_mask[0][b], ref_moves(state["colour"][b], state["special"][b])[0]
            )
        # The step's reward is the cascade of the chosen moves, drawn with the env's own generator.
        moves = env.greedy_actions(rng)
        colour, special, twin = state["colour"], state["special"], copy.deepcopy(env._rng)
        mb.swap(colour, special, np.arange(env.n), moves)
        points = mb.cascade(colour, special, colour >= 0, twin)
        shuffles = env.shuffles.copy()
        stepped(env, moves)
        decision, _ = env.get_steps(BEHAVIOR_NAME)
        np.testing.assert_allclose(decision.reward, points * 0.01, rtol=1e-6)
        same = env.shuffles == shuffles  # a board left without a move is settled anew after scoring
        np.testing.assert_array_equal(env.state()["colour"][same], colour[same])
        assert (points >= 3).all()


def test_a_move_the_mask_forbids_changes_nothing():
    env = make_env("match3", 4, 5)
    env.reset()
    before = env.state()
    mask = env.get_steps(BEHAVIOR_NAME)[0].action_mask[0]
    invalid = np.argmin(mask, axis=1)  # a masked move on every board
    assert not mask[np.arange(4), invalid].any()
    stepped(env, invalid)
    decision, _ = env.get_steps(BEHAVIOR_NAME)
    same = env.shuffles == 0
    np.testing.assert_array_equal(env.state()["colour"][same], before["colour"][same])
    assert (decision.reward == 0).all()


def test_episodes_are_interrupted_after_500_decisions_with_new_boards():
    env = make_env("match3", 2, 6)
    env.reset()
    rng = np.random.default_rng(1)
    for k in range(1, MAX_MOVES):
        decision, terminal = env.get_steps(BEHAVIOR_NAME)
        assert len(terminal) == 0 and env.state()["steps"].tolist() == [k - 1] * 2
        stepped(env, env.greedy_actions(rng))
    decision, terminal = env.get_steps(BEHAVIOR_NAME)  # the 500th decision is the last observation
    assert terminal.agent_id.tolist() == [0, 1] and terminal.interrupted.all() and (terminal.reward > 0).all()
    assert (decision.reward == 0).all() and env.state()["steps"].tolist() == [0, 0]
    assert env.episodes.tolist() == [2, 2]


def test_board_sizes_and_parameters():
    env = make_env("match3", 400, 7)
    env.reset()
    s = env.state()
    assert sorted(set(s["rows"].tolist())) == [6, 7, 8, 9] and sorted(set(s["cols"].tolist())) == [6, 7, 8]
    fixed = make_env("match3", 50, 7, {"minRows": 9.0, "minColumns": 8.0})
    fixed.reset()
    assert (fixed.state()["rows"] == 9).all() and (fixed.state()["cols"] == 8).all()
    for key, value in (("minRows", 10.0), ("minColumns", 5.0), ("minRows", 7.5)):
        with pytest.raises(EnvError, match=f"'{key}' must be a whole number in 6"):
            make_env("match3", 1, 0, {key: value})
    with pytest.raises(EnvError, match="unknown environment parameter 'rows'"):
        make_env("match3", 1, 0, {"rows": 9.0})


def test_greedy_picks_a_valid_move_of_most_points_with_random_ties():
    env = make_env("match3", 64, 8)
    env.reset()
    valid, points = env.move_points()
    picks = [env.greedy_actions(np.random.default_rng(k)) for k in range(8)]
    best = np.where(valid, points, -1).max(axis=1)
    for p in picks:
        assert valid[np.arange(64), p].all() and (points[np.arange(64), p] == best).all()
    assert any((p != picks[0]).any() for p in picks[1:])  # ties are broken at random
    decision, _ = env.get_steps(BEHAVIOR_NAME)
    actions = greedy_heuristic(env, BEHAVIOR_NAME, decision)
    assert actions.discrete.shape == (64, 1) and (points[np.arange(64), actions.discrete[:, 0]] == best).all()


def test_play_episodes_scores_whole_episodes():
    env = make_env("match3", 3, 9)
    rng = np.random.default_rng(0)
    scores = play_episodes(env, lambda d: random_actions(d, rng), 4)
    assert scores.shape == (4,) and (scores > 20).all()  # about 6.4 points a move, 499 moves
    assert env.episodes.tolist() == [3, 3, 3]  # every area played 2 whole episodes, then began a third


def test_debug_set_state_checks_the_board():
    env = make_env("match3", 1, 0)
    env.reset()
    board = np.full((R, C), mb.EMPTY)
    board[:6, :7] = np.arange(42).reshape(6, 7) % 5
    env.debug_set_state([0], board[None])
    assert env.state()["rows"].tolist() == [6] and env.state()["cols"].tolist() == [7]
    board[0, 0] = mb.EMPTY
    with pytest.raises(EnvError, match="full rows x cols block"):
        env.debug_set_state([0], board[None])


@pytest.mark.parametrize("png", [False, True], ids=["float", "png"])
def test_an_env_process_serves_the_same_boards_and_masks(png):
    """mlx-env match3 over gRPC steps exactly like the env in-process: both one-hot images (as floats, or
    as PNGs, 3 channels each) and the 127-move masks."""
    from mlx.envs.unity.env import UnityEnv, remote_command

    remote = UnityEnv(command=remote_command("match3") + (["--png"] if png else []), base_port=0, num_areas=3, seed=4)
    native = make_env("match3", 3, 4)
    try:
        assert remote.behavior_specs == native.behavior_specs
        native.reset()
        rng = np.random.default_rng(0)
        spec = native.behavior_specs[BEHAVIOR_NAME].action_spec
        masked = 0
        for _ in range(12):
            (d, t), (nd, nt) = remote.get_steps(BEHAVIOR_NAME), native.get_steps(BEHAVIOR_NAME)
            for got, want in zip(d.obs + t.obs, nd.obs + nt.obs, strict=True):
                np.testing.assert_array_equal(got, want)
            assert d.action_mask is not None and nd.action_mask is not None
            np.testing.assert_array_equal(d.action_mask[0], nd.action_mask[0])
            np.testing.assert_array_equal(d.reward, nd.reward)
            masked += int((~d.action_mask[0]).sum())
            actions = spec.random(len(d), rng, d.action_mask)
            remote.set_actions(BEHAVIOR_NAME, actions)
            native.set_actions(BEHAVIOR_NAME, actions)
            remote.step()
            native.step()
        assert masked > 12 * 3 * 100  # most moves are masked on every board
    finally:
        remote.close()
