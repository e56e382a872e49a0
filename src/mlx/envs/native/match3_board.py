"""Match3 boards as arrays: the rules of ML-Agents' Match3 example (``Match3Board``, the package's
``AbstractBoard``, ``Move``), vectorised over boards. mlx.envs.native.match3 is the env built on them.

A set of m boards is two int8 arrays ``colour`` and ``special`` of shape [m, MAX_ROWS, MAX_COLS],
indexed [board, row, column], row 0 at the bottom (gravity pulls toward it), plus each board's current
size (``rows``, ``cols``: [m]). Cells outside a board's current size, and cleared cells until refilled,
hold colour EMPTY (-1) and special 0; every function keeps that, so "colour >= 0" means "a real cell".

Every rule is a handful of array operations over all boards at once; the only Python loops are over
cascade rounds (until no board has a match), over the at most 8 cells of a line a move is scored along,
and over the four directions of a move. No function loops over boards.
"""

from __future__ import annotations

import numpy as np

MAX_ROWS, MAX_COLS = 9, 8
NUM_COLOURS = 6  # cell types 0..5
NUM_SPECIALS = 2  # special types 1 ("sphere") and 2 ("plus"); 0 is a normal cell
EMPTY = -1
POINTS = np.array([1, 2, 3], np.int64)  # points of a cleared cell by special type
SPECIAL_DRAW = np.array([2, 1, 1, 0, 0, 0, 0, 0, 0, 0], np.int8)  # GetRandomSpecialType: uniform over N = 10
# Moves on the max board (Move.FromMoveIndex): first every "cell (r, c) with its right neighbour", index
# c + r * (C - 1), then every "cell (r, c) with the one above", index (C - 1) * R + c + r * C.
NUM_HORIZONTAL = MAX_ROWS * (MAX_COLS - 1)
NUM_MOVES = NUM_HORIZONTAL + (MAX_ROWS - 1) * MAX_COLS  # 127


def _move_table() -> np.ndarray:
    """[NUM_MOVES, 4]: (row, col, other row, other col) of every move index."""
    h = [(r, c, r, c + 1) for r in range(MAX_ROWS) for c in range(MAX_COLS - 1)]
    v = [(r, c, r + 1, c) for r in range(MAX_ROWS - 1) for c in range(MAX_COLS)]
    return np.array(h + v, np.int64)


MOVES = _move_table()
MOVES.flags.writeable = False

# Directions (row step, col step) and, per direction a cell arrives from, the side it must not count.
UP, DOWN, LEFT, RIGHT = (1, 0), (-1, 0), (0, -1), (0, 1)
_PAD = max(MAX_ROWS, MAX_COLS)  # a line from any cell ends inside this padding


def inside(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """[m, R, C] bool: the cells within each board's current size."""
    r = np.arange(MAX_ROWS)[None, :, None] < np.asarray(rows)[:, None, None]
    c = np.arange(MAX_COLS)[None, None, :] < np.asarray(cols)[:, None, None]
    return r & c


def mark(colour: np.ndarray) -> np.ndarray:
    """MarkMatchedCells: [m, R, C] bool, every cell on a horizontal or vertical run of >= 3 equal colours.

    A run of length L >= 3 is the union of its length-3 windows, so marking every uniform window of three
    real cells marks exactly the cells of every run (runs may cross or overlap).
    """
    real = colour >= 0
    marked = np.zeros(colour.shape, bool)
    h = real[:, :, :-2] & (colour[:, :, :-2] == colour[:, :, 1:-1]) & (colour[:, :, 1:-1] == colour[:, :, 2:])
    v = real[:, :-2, :] & (colour[:, :-2, :] == colour[:, 1:-1, :]) & (colour[:, 1:-1, :] == colour[:, 2:, :])
    marked[:, :, :-2] |= h
    marked[:, :, 1:-1] |= h
    marked[:, :, 2:] |= h
    marked[:, :-2, :] |= v
    marked[:, 1:-1, :] |= v
    marked[:, 2:, :] |= v
    return marked


def clear(colour: np.ndarray, special: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """ClearMatchedCells, in place: marked cells score POINTS[special] and become empty; returns [m] points."""
    points = (POINTS[special] * marked).sum(axis=(1, 2))
    colour[marked] = EMPTY
    special[marked] = 0
    return points


def drop(colour: np.ndarray, special: np.ndarray) -> None:
    """DropCells, in place: in every column the real cells fall toward row 0 keeping their order."""
    order = np.argsort(colour < 0, axis=1, kind="stable")  # per column: real cells first, in row order
    colour[:] = np.take_along_axis(colour, order, axis=1)
    special[:] = np.take_along_axis(special, order, axis=1)
    special[colour < 0] = 0


def fill(colour: np.ndarray, special: np.ndarray, within: np.ndarray, rng: np.random.Generator) -> None:
    """FillFromAbove, in place: every empty cell within the board gets a random colour and special type."""
    empty = within & (colour < 0)
    k = int(empty.sum())
    if k:
        colour[empty] = rng.integers(0, NUM_COLOURS, k)
        special[empty] = SPECIAL_DRAW[rng.integers(0, SPECIAL_DRAW.size, k)]


def cascade(colour: np.ndarray, special: np.ndarray, within: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Repeat {mark; clear; drop; fill} on every board until none has a match; returns [m] points.

    Each round works on the boards that still have a match (the others are settled and stay so).
    """
    points = np.zeros(colour.shape[0], np.int64)
    active = np.arange(colour.shape[0])
    while active.size:
        c, s = colour[active], special[active]
        marked = mark(c)
        matched = marked.any(axis=(1, 2))
        if not matched.any():
            break
        active, c, s, marked = active[matched], c[matched], s[matched], marked[matched]
        points[active] += clear(c, s, marked)
        drop(c, s)
        fill(c, s, within[active], rng)
        colour[active], special[active] = c, s
    return points


def settle(colour: np.ndarray, special: np.ndarray, within: np.ndarray, rng: np.random.Generator) -> None:
    """InitSettled, in place: a random board, then cascades until it has no match (their points are lost)."""
    colour[:] = EMPTY
    special[:] = 0
    fill(colour, special, within, rng)
    cascade(colour, special, within, rng)


def _padded(a: np.ndarray, value: int) -> np.ndarray:
    out = np.full((a.shape[0], MAX_ROWS + 2 * _PAD, MAX_COLS + 2 * _PAD), value, a.dtype)
    out[:, _PAD:-_PAD, _PAD:-_PAD] = a
    return out


def _shifted(p: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """[m, R, C]: the padded array p seen from every cell moved by (dr, dc)."""
    return p[:, _PAD + dr : _PAD + dr + MAX_ROWS, _PAD + dc : _PAD + dc + MAX_COLS]


def _arrive(
    pc: np.ndarray, ps: np.ndarray | None, k: np.ndarray, skip: tuple[int, int], reach: int
) -> tuple[np.ndarray, np.ndarray]:
    """A cell of colour k[q] arriving at each cell q, from the neighbour on side ``skip`` (not counted):
    whether it completes a line (>= 2 equal neighbours up + down, or left + right), and with ``ps``
    the points of the neighbours on each completed line (Match3ExampleActuator.EvalHalfMove).

    ``reach`` bounds how far a line is followed: 2 decides validity; MAX_ROWS scores whole lines.
    """
    count: dict[tuple[int, int], np.ndarray | int] = {skip: 0}
    score: dict[tuple[int, int], np.ndarray | int] = {skip: 0}
    for d in (UP, DOWN, LEFT, RIGHT):
        if d == skip:
            continue
        going = _shifted(pc, *d) == k
        n = going.astype(np.int8)
        pts = going * POINTS[_shifted(ps, *d)] if ps is not None else 0
        for t in range(2, reach + 1):
            going &= _shifted(pc, d[0] * t, d[1] * t) == k
            n += going
            if ps is not None:
                pts += going * POINTS[_shifted(ps, d[0] * t, d[1] * t)]
        count[d], score[d] = n, pts
    vertical = count[UP] + count[DOWN] >= 2
    horizontal = count[LEFT] + count[RIGHT] >= 2
    points = vertical * (score[UP] + score[DOWN]) + horizontal * (score[LEFT] + score[RIGHT])
    return vertical | horizontal, points


def evaluate_moves(colour: np.ndarray, special: np.ndarray, score: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every move of every board: (valid [m, NUM_MOVES] bool, points [m, NUM_MOVES] int64).

    Valid (SimpleIsMoveValid plus the range check): both cells real and of different colours, and after
    the swap one of them completes a line of >= 3. Points (only with ``score``, else zeros): the example
    actuator's EvalMovePoints, summed over both swapped cells: the arriving cell's points plus those of
    the cells on each line it completes; cascades are not looked at.
    """
    m = colour.shape[0]
    reach = max(MAX_ROWS, MAX_COLS) if score else 2
    pc = _padded(colour, EMPTY)
    ps = _padded(special, 0) if score else None
    valid, points = [], []
    right = (np.s_[:, :, :-1], np.s_[:, :, 1:])  # (each move's own cell, the neighbour it swaps with)
    up = (np.s_[:, :-1, :], np.s_[:, 1:, :])
    # The low cell arrives at the high one coming from the low side (LEFT / DOWN), and the other way round.
    for low, high, into_high, into_low in ((*right, LEFT, RIGHT), (*up, DOWN, UP)):
        ok = (colour[low] >= 0) & (colour[high] >= 0) & (colour[low] != colour[high])
        halves = []
        total = np.zeros(ok.shape, np.int64)
        for src, dst, skip in ((low, high, into_high), (high, low, into_low)):
            k = np.full(colour.shape, EMPTY, np.int8)
            k[dst] = colour[src]
            lined, pts = _arrive(pc, ps, k, skip, reach)
            half = lined[dst]
            halves.append(half)
            if score:
                total += half * (POINTS[special[src]] + pts[dst])
        good = ok & (halves[0] | halves[1])
        valid.append(good)
        points.append(np.where(good, total, 0))
    return (
        np.concatenate([v.reshape(m, -1) for v in valid], axis=1),
        np.concatenate([p.reshape(m, -1) for p in points], axis=1),
    )


def swap(colour: np.ndarray, special: np.ndarray, boards: np.ndarray, moves: np.ndarray) -> None:
    """MakeMove for valid moves, in place: swap the two cells' (colour, special) of move moves[i] on board
    boards[i] (boards distinct)."""
    r1, c1, r2, c2 = MOVES[moves].T
    colour[boards, r1, c1], colour[boards, r2, c2] = colour[boards, r2, c2], colour[boards, r1, c1]
    special[boards, r1, c1], special[boards, r2, c2] = special[boards, r2, c2], special[boards, r1, c1]
