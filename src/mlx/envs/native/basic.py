"""Basic (ML-Agents example): walk left or right along a line to the better of two goals.

A faithful port, exact up to floating point: the agent starts at position 10 of [0, 20]; its
observation is a one-hot of its position (length 20); actions (1 branch of 3) are 0 no-op, 1 left,
2 right. Every step costs 0.01; reaching position 7 gives +0.1 and reaching 17 gives +1, either ending
the episode. A decision every step, no step limit. The best return is 1 - 7 * 0.01 = 0.93.
All areas step together with array operations; one agent per area, ids 0..num_areas-1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.envs.native.base import NativeEnv
from mlx.envs.native.render import FLOOR, VOID, Canvas, tag_colour

BEHAVIOR = "Basic"
START, SMALL_GOAL, LARGE_GOAL, MIN_POS, MAX_POS = 10, 7, 17, 0, 20
OBS_SIZE = 20
STEP_PENALTY, SMALL_REWARD, LARGE_REWARD = -0.01, 0.1, 1.0
MOVES = np.array([0, -1, 1])  # action 0 no-op, 1 left, 2 right


class BasicEnv(NativeEnv):
    behaviors = (BEHAVIOR,)

    def __init__(self, num_areas: int = 1, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec((ObservationSpec((OBS_SIZE,), "OneHotPosition"),), ActionSpec(discrete_branches=(3,)))
        super().__init__(num_areas, seed, parameters, spec)
        self.position = np.full(self.n, START, dtype=np.int64)
        self.move = np.zeros(self.n, dtype=np.int64)
        self._eye = np.eye(OBS_SIZE + 1, OBS_SIZE, dtype=np.float32)  # row 20 (never reached) is all zeros

    def _reset_areas(self, idx: np.ndarray) -> None:
        self.position[idx] = START

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        return [self._eye[self.position[idx]]]

    def _observe(self) -> list[np.ndarray]:
        return [self._eye[self.position]]

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        self.move = MOVES[discrete[:, 0]]

    def _no_actions(self) -> None:
        self.move[:] = 0

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        pos = np.clip(self.position + self.move, MIN_POS, MAX_POS)
        reward = np.full(self.n, STEP_PENALTY, dtype=np.float32)
        small, large = pos == SMALL_GOAL, pos == LARGE_GOAL
        reward += np.where(small, SMALL_REWARD, 0.0).astype(np.float32) + np.where(large, LARGE_REWARD, 0.0).astype(
            np.float32
        )
        self.position = pos
        return reward, small | large

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Pictures [m, 36, 252, 3] of the line, 12 pixels per position: the small goal (a small green
        square at 7), the large goal (a large one at 17) and the agent (blue) where it stands."""
        position = self.position[slice(None) if areas is None else areas]
        canvas = Canvas((MIN_POS - 0.5, -1.5, MAX_POS + 0.5, 1.5), scale=1 / 12)
        out = canvas.blank(len(position), VOID)
        canvas.fill(out, (MIN_POS + MAX_POS) / 2, 0.0, (MAX_POS - MIN_POS + 1) / 2, 0.5, FLOOR)
        canvas.fill(out, SMALL_GOAL, 0.0, 0.2, 0.2, tag_colour("goal"))
        canvas.fill(out, LARGE_GOAL, 0.0, 0.45, 0.45, tag_colour("goal"))
        canvas.fill(out, position, 0.0, 0.35, 0.35, tag_colour("agent"))
        return out
