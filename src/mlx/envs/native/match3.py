"""Match3: a vectorised numpy port of Unity ML-Agents' Match3 example (Match3Agent, Match3Board, the
package's Match3Sensor and Match3Actuator); the board rules are in mlx.envs.native.match3_board.

Each area is one board of at most 9 rows x 8 columns holding cells of 6 colours, each normal or one of
2 special types (worth 1, 2 or 3 points when cleared). At every episode start a board draws its size
(rows uniform in 6..9, columns in 6..8) and a settled random filling (no line of three), reshuffled
until some move is valid. One decision per step (the scene's training path, FastUpdate):

* the chosen move is made if it is valid (an invalid one, possible only when masks are ignored,
  does nothing); then lines of >= 3 equal colours are cleared, cells fall and new random ones fill
  the gaps, until the board is settled: reward 0.01 per point cleared, cascades included;
* a board left with no valid move is settled anew (upstream's shuffle);
* after MAX_MOVES = 500 decisions the episode is interrupted (EpisodeInterrupted, never terminal): the
  500th decision is its last observation, so an episode makes 499 moves; MaxStep is not used.

Observations are upstream's two Match3Sensors as the visual-observation prefab (Match3VisualObs) gives
them to Python: a one-hot of the colour, [9, 8, 6], and of the special type, [9, 8, 3], indexed
[row, column, type] with row 0 the bottom row (the PNG encoding's flip is compensated upstream, so the
decoded image is in board order); cells outside the board's current size are all zeros. They go through
the ``match3`` visual encoder that upstream's config selects (tuned/match3_ppo.yaml).

Actions: one branch of 127 moves on the max board (Move.FromMoveIndex, match3_board.MOVES): index
c + 7 r (0..62) swaps cell (r, c) with its right neighbour, 63 + c + 8 r (63..126) with the cell above. The
action mask allows exactly the valid moves of the current board (Match3Actuator.WriteDiscreteActionMask;
a board always has one, so upstream's "leave the last index on" fallback never arises).

Behaviour name ``Match3VisualObs``; 8 areas (the scene's agent count is unknown; chosen). Environment
parameters ``minRows`` 6 and ``minColumns`` 6 (Match3Board's MinRows / MinColumns; whole numbers up to
9 and 8, read at each board's next episode start): ``minRows=9 minColumns=8`` plays the fixed 9 x 8 board
of the older visual prefab. There this port's heuristics reproduce upstream's published scores per
episode (masked random 34.1 vs 34.2, greedy 37.0-37.2 vs 37.0), so upstream probably measured them on
that board; on the default 6..9 x 6..8 boards they score about 32 and 35 (smaller boards cascade less).
The vector-observation prefab (Match3VectorObs: the same one-hots flattened to 432 + 216 floats) is
not provided. The two upstream heuristics are here as baselines:
``random_actions`` (a uniform valid move: Match3SimpleHeuristic) and ``greedy_actions`` (the move of
highest immediate points, ties broken uniformly: Match3SmartHeuristic); ``greedy_heuristic`` has the
signature ``record.heuristic`` takes.

Choices of this port: one RNG per env (seeded) draws sizes, cells and specials for all boards, instead
of a per-board System.Random; pictures (``render``) are 24-pixel squares per cell, colour by type, a
white dot for special 1 and a white plus for special 2, row 0 at the bottom.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from mlx.envs.api import ActionSpec, ActionTuple, BaseEnv, BehaviorSpec, DecisionSteps, ObservationSpec
from mlx.envs.native import match3_board as mb
from mlx.envs.native.base import NativeEnv
from mlx.errors import EnvError

BEHAVIOR_NAME = "Match3VisualObs"
MAX_MOVES = 500
REWARD_PER_POINT = 0.01
MIN_ROWS, MIN_COLS = 6, 6  # defaults of minRows / minColumns
NUM_AREAS = 8

_F32 = np.float32
# One-hot tables: row 0 (colour EMPTY + 1, or outside the board) is all zeros.
_COLOUR_ONE_HOT = np.vstack([np.zeros((1, mb.NUM_COLOURS)), np.eye(mb.NUM_COLOURS)]).astype(_F32)
_SPECIAL_ONE_HOT = np.vstack([np.zeros((1, mb.NUM_SPECIALS + 1)), np.eye(mb.NUM_SPECIALS + 1)]).astype(_F32)

# Pictures: per colour an RGB (chosen), EMPTY last; white marks for specials.
CELL_PX = 24
_COLOURS = np.array(
    [(220, 50, 47), (60, 180, 75), (40, 110, 230), (240, 200, 40), (150, 70, 200), (245, 130, 40), (30, 30, 36)],
    np.uint8,
)


def _sprites() -> np.ndarray:
    """[7 colours (EMPTY last), 3 specials, CELL_PX, CELL_PX, 3] uint8: every cell's picture."""
    y, x = np.mgrid[0:CELL_PX, 0:CELL_PX] + 0.5
    d = np.stack([y - CELL_PX / 2, x - CELL_PX / 2])
    tile = (np.abs(d) <= CELL_PX / 2 - 2).all(axis=0)  # a 2-pixel gap between cells
    dot = (d**2).sum(axis=0) <= (CELL_PX / 6) ** 2
    plus = ((np.abs(d[0]) <= 1.5) | (np.abs(d[1]) <= 1.5)) & (np.abs(d) <= CELL_PX / 3).all(axis=0)
    out = np.empty((len(_COLOURS), 3, CELL_PX, CELL_PX, 3), np.uint8)
    out[:] = _COLOURS[-1]
    for k, rgb in enumerate(_COLOURS[:-1]):
        out[k, :, tile] = rgb
        out[k, 1, dot] = 255
        out[k, 2, plus] = 255
    return out


class Match3Env(NativeEnv):
    """``num_areas`` Match3 boards, one agent each (agent id = area index), behaviour Match3VisualObs."""

    behaviors = (BEHAVIOR_NAME,)
    parameter_defaults = {"minRows": float(MIN_ROWS), "minColumns": float(MIN_COLS)}
    max_decisions = MAX_MOVES - 1  # decisions after the first: the 500th is the episode's last observation

    def __init__(
        self, num_areas: int = NUM_AREAS, seed: int = 0, parameters: Mapping[str, float] | None = None
    ) -> None:
        spec = BehaviorSpec(
            observation_specs=(
                ObservationSpec(shape=(mb.MAX_ROWS, mb.MAX_COLS, mb.NUM_COLOURS), name="Match3 Sensor (cells)"),
                ObservationSpec(shape=(mb.MAX_ROWS, mb.MAX_COLS, mb.NUM_SPECIALS + 1), name="Match3 Sensor (special)"),
            ),
            action_spec=ActionSpec(discrete_branches=(mb.NUM_MOVES,)),
        )
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        self.colour = np.full((n, mb.MAX_ROWS, mb.MAX_COLS), mb.EMPTY, np.int8)
        self.special = np.zeros((n, mb.MAX_ROWS, mb.MAX_COLS), np.int8)
        self.rows = np.zeros(n, np.int64)
        self.cols = np.zeros(n, np.int64)
        self._within = np.zeros((n, mb.MAX_ROWS, mb.MAX_COLS), bool)
        self._valid = np.zeros((n, mb.NUM_MOVES), bool)
        self._action: np.ndarray | None = None
        self.shuffles = np.zeros(n, np.int64)  # per area: boards settled anew for want of a valid move
        self._pictures: np.ndarray | None = None
        # The heuristics' own tie-breaking draws (upstream seeds them apart from the board, RandomSeed + 1).
        self.heuristic_rng = np.random.default_rng([seed, 1])

    # ------------------------------------------------------------------------------------------------
    # NativeEnv hooks
    # ------------------------------------------------------------------------------------------------

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        self._action = discrete[:, 0].astype(np.int64)

    def _no_actions(self) -> None:
        self._action = None  # no move until set_actions (ML-Agents' empty action: the board still settles)

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        """Make the chosen valid moves, resolve every board's cascades, reshuffle boards without a move."""
        if self._action is not None:
            made = self._valid[self._ids, self._action]
            boards = np.flatnonzero(made)
            mb.swap(self.colour, self.special, boards, self._action[boards])
        points = mb.cascade(self.colour, self.special, self._within, self._rng)
        self._valid = self._moves(np.arange(self.n))
        self._reshuffle(np.arange(self.n))
        return (points * REWARD_PER_POINT).astype(_F32), np.zeros(self.n, bool)

    def _observe(self) -> list[np.ndarray]:
        return self._restart_observations(np.arange(self.n))

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        """The two sensors: colour and special one-hots, zeros outside the board (see the module doc)."""
        colour = self.colour[idx]
        special = np.where(colour >= 0, self.special[idx] + 1, 0)
        return [_COLOUR_ONE_HOT[colour + 1], _SPECIAL_ONE_HOT[special]]

    def _mask(self) -> list[np.ndarray]:
        return [self._valid.copy()]

    def _reset_areas(self, idx: np.ndarray) -> None:
        """OnEpisodeBegin: a new board size, a settled filling, reshuffled until a move is valid."""
        m = idx.size
        self.rows[idx] = self._rng.integers(int(self._params["minRows"]), mb.MAX_ROWS + 1, m)
        self.cols[idx] = self._rng.integers(int(self._params["minColumns"]), mb.MAX_COLS + 1, m)
        self._within[idx] = mb.inside(self.rows[idx], self.cols[idx])
        self._settle(idx)
        self._valid[idx] = self._moves(idx)
        self._reshuffle(idx)

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        """Whole numbers from 6 (smaller boards may have no valid move for long) to the max board."""
        for key, top in (("minRows", mb.MAX_ROWS), ("minColumns", mb.MAX_COLS)):
            value = values[key]
            if value != int(value) or not 6 <= value <= top:
                raise EnvError(f"environment parameter '{key}' must be a whole number in 6..{top} (got {value})")

    # ------------------------------------------------------------------------------------------------
    # boards
    # ------------------------------------------------------------------------------------------------

    def _settle(self, idx: np.ndarray) -> None:
        colour, special = self.colour[idx], self.special[idx]
        mb.settle(colour, special, self._within[idx], self._rng)
        self.colour[idx], self.special[idx] = colour, special

    def _moves(self, idx: np.ndarray) -> np.ndarray:
        return mb.evaluate_moves(self.colour[idx], self.special[idx])[0]

    def _reshuffle(self, idx: np.ndarray) -> None:
        """Boards idx without a valid move are settled anew until they have one (Match3Agent.FastUpdate)."""
        stuck = idx[~self._valid[idx].any(axis=1)]
        while stuck.size:
            self.shuffles[stuck] += 1
            self._settle(stuck)
            self._valid[stuck] = self._moves(stuck)
            stuck = stuck[~self._valid[stuck].any(axis=1)]

    # ------------------------------------------------------------------------------------------------
    # baselines, state access, pictures
    # ------------------------------------------------------------------------------------------------

    def move_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Every board's (valid [n, 127], greedy points [n, 127]) for the current boards."""
        return mb.evaluate_moves(self.colour, self.special, score=True)

    def greedy_actions(self, rng: np.random.Generator, agent_ids: np.ndarray | None = None) -> np.ndarray:
        """Match3SmartHeuristic for the given agents (all by default): [m] the valid move of most immediate
        points (Match3ExampleActuator.EvalMovePoints), ties broken uniformly at random."""
        idx = self._ids if agent_ids is None else np.asarray(agent_ids, np.int64)
        valid, points = mb.evaluate_moves(self.colour[idx], self.special[idx], score=True)
        best = np.where(valid, points, -1)
        top = best == best.max(axis=1, keepdims=True)
        return np.where(top, rng.random(top.shape), -1.0).argmax(axis=1)

    def state(self) -> dict[str, np.ndarray]:
        """Copies of every board: colour and special [n, 9, 8] (EMPTY outside), rows, cols, decisions taken."""
        return {
            "colour": self.colour.copy(),
            "special": self.special.copy(),
            "rows": self.rows.copy(),
            "cols": self.cols.copy(),
            "steps": self._steps.copy(),
        }

    def debug_set_state(
        self, areas: Sequence[int] | np.ndarray, colour: np.ndarray, special: np.ndarray | None = None
    ) -> None:
        """Put given boards [m, 9, 8] (colour, special; EMPTY marks the cells outside the board, which must
        be the rows and columns above its size) into areas so tests can build exact situations. The
        current DecisionSteps (observations, masks) are refreshed, rewards and step counts kept; no cascade
        or reshuffle runs until the next step."""
        self._require_reset("debug_set_state")
        idx = np.asarray(areas, np.int64)
        colour = np.asarray(colour, np.int8).reshape(idx.size, mb.MAX_ROWS, mb.MAX_COLS)
        special = np.zeros_like(colour) if special is None else np.asarray(special, np.int8).reshape(colour.shape)
        real = colour >= 0
        rows, cols = real.any(axis=2).sum(axis=1), real.any(axis=1).sum(axis=1)
        if (real != mb.inside(rows, cols)).any() or (colour >= mb.NUM_COLOURS).any():
            raise EnvError("debug_set_state: each board must be a full rows x cols block of colours 0..5 at (0, 0)")
        if ((special < 0) | (special > mb.NUM_SPECIALS)).any():
            raise EnvError(f"debug_set_state: special types must be in 0..{mb.NUM_SPECIALS}")
        self.colour[idx], self.special[idx] = colour, np.where(real, special, 0)
        self.rows[idx], self.cols[idx] = rows, cols
        self._within[idx] = real
        self._valid[idx] = self._moves(idx)
        self._publish(self._observe(), self._decisions[0].reward, self._mask())

    def render(self, areas: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """Pictures of the boards (all by default): uint8 [m, 9 * 24, 8 * 24, 3], row 0 at the bottom."""
        idx = self._ids if areas is None else np.asarray(areas, np.int64)
        if self._pictures is None:
            self._pictures = _sprites()
        colour = np.where(self.colour[idx] >= 0, self.colour[idx], len(_COLOURS) - 1)
        cells = self._pictures[colour, self.special[idx]][:, ::-1]  # [m, R, C, px, px, 3], top row first
        m = idx.size
        return np.ascontiguousarray(cells.transpose(0, 1, 3, 2, 4, 5)).reshape(
            m, mb.MAX_ROWS * CELL_PX, mb.MAX_COLS * CELL_PX, 3
        )


def random_actions(decision: DecisionSteps, rng: np.random.Generator) -> np.ndarray:
    """Match3SimpleHeuristic: a uniform random valid move per deciding agent, [m] (ActionSpec.random)."""
    spec = ActionSpec(discrete_branches=(mb.NUM_MOVES,))
    return spec.random(len(decision), rng, decision.action_mask).discrete[:, 0]


def greedy_heuristic(env: BaseEnv, behavior: str, decision: DecisionSteps) -> ActionTuple:
    """The greedy heuristic with the signature ``record.heuristic`` takes (mlx.modes.record):
    ``record.heuristic=mlx.envs.native.match3:greedy_heuristic`` records its games as demonstrations."""
    if not isinstance(env, Match3Env):
        raise EnvError(f"greedy_heuristic plays env=match3 only, not {type(env).__name__}")
    moves = env.greedy_actions(env.heuristic_rng, decision.agent_id)
    return ActionTuple(np.zeros((len(moves), 0), _F32), moves[:, None].astype(np.int32))


def play_episodes(env: Match3Env, act: Callable[[DecisionSteps], np.ndarray], episodes: int) -> np.ndarray:
    """Scores (summed rewards) of the first ``episodes`` episodes to start on ``env`` (reset here), each
    area playing until its share has ended; ``act`` gives the move [m] of each deciding agent.

    Every area plays ceil(episodes / areas) whole episodes, so no area's ending early biases the mean.
    """
    per_area = -(-episodes // env.n)
    env.reset()
    score = np.zeros(env.n)
    done: list[np.ndarray] = []
    ended = np.zeros(env.n, np.int64)
    while (ended < per_area).any():
        decision, _ = env.get_steps(BEHAVIOR_NAME)
        moves = np.asarray(act(decision), np.int32)
        env.set_actions(BEHAVIOR_NAME, ActionTuple(np.zeros((env.n, 0), _F32), moves[:, None]))
        env.step()
        decision, terminal = env.get_steps(BEHAVIOR_NAME)
        ids = terminal.agent_id
        score[ids] += terminal.reward
        keep = ids[ended[ids] < per_area]
        done.append(score[keep].copy())
        ended[ids] += 1
        score[ids] = 0.0
        score += decision.reward
    return np.concatenate(done)[:episodes]
