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

from mlx.envs.api import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    EnvParameters,
    ObservationSpec,
    TerminalSteps,
)

BEHAVIOR = "Basic"
START, SMALL_GOAL, LARGE_GOAL, MIN_POS, MAX_POS = 10, 7, 17, 0, 20
OBS_SIZE = 20
STEP_PENALTY, SMALL_REWARD, LARGE_REWARD = -0.01, 0.1, 1.0


class BasicEnv(BaseEnv):
    def __init__(self, num_areas: int = 1, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        if num_areas < 1:
            raise EnvError(f"num_areas must be >= 1 (got {num_areas})")
        self.params = EnvParameters(defaults={}, values=dict(parameters or {}))
        self.n = num_areas
        self.ids = np.arange(num_areas, dtype=np.int32)
        self.position = np.full(num_areas, START, dtype=np.int64)
        self.spec = BehaviorSpec((ObservationSpec((OBS_SIZE,), "OneHotPosition"),), ActionSpec(discrete_branches=(3,)))
        self.move = np.zeros(num_areas, dtype=np.int64)
        self._decision: DecisionSteps | None = None
        self._terminal: TerminalSteps | None = None
        self._eye = np.eye(OBS_SIZE + 1, OBS_SIZE, dtype=np.float32)  # row 20 (never reached) is all zeros

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR: self.spec}

    def _obs(self, position: np.ndarray) -> np.ndarray:
        return self._eye[position]

    def reset(self) -> None:
        self.position[:] = START
        self.move[:] = 0
        self._decision = DecisionSteps([self._obs(self.position)], np.zeros(self.n, np.float32), self.ids)
        self._terminal = TerminalSteps(
            [np.zeros((0, OBS_SIZE), np.float32)], np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(0, bool)
        )

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        if behavior_name != BEHAVIOR:
            raise EnvError(f"unknown behaviour '{behavior_name}'; this env has: {BEHAVIOR}")
        disc = np.asarray(actions.discrete)
        if disc.shape != (self.n, 1):
            raise EnvError(f"Basic expects discrete actions of shape ({self.n}, 1), got {disc.shape}")
        # 0 no-op, 1 left, 2 right -> -1/0/+1
        self.move = np.array([0, -1, 1])[np.clip(disc[:, 0], 0, 2)]

    def step(self) -> None:
        if self._decision is None:
            self.reset()
        pos = np.clip(self.position + self.move, MIN_POS, MAX_POS)
        reward = np.full(self.n, STEP_PENALTY, dtype=np.float32)
        small, large = pos == SMALL_GOAL, pos == LARGE_GOAL
        reward += np.where(small, SMALL_REWARD, 0.0).astype(np.float32) + np.where(large, LARGE_REWARD, 0.0).astype(
            np.float32
        )
        done = small | large
        self._terminal = TerminalSteps(
            [self._obs(pos[done])], reward[done], self.ids[done], np.zeros(int(done.sum()), bool)
        )
        pos[done] = START
        self.position = pos
        self.move[:] = 0
        self._decision = DecisionSteps([self._obs(pos)], np.where(done, 0.0, reward).astype(np.float32), self.ids)

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        if behavior_name != BEHAVIOR:
            raise EnvError(f"unknown behaviour '{behavior_name}'; this env has: {BEHAVIOR}")
        if self._decision is None or self._terminal is None:
            raise EnvError("call reset() before get_steps()")
        return self._decision, self._terminal

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Pictures [m, 36, 252, 3] of the line, 12 pixels per position: the small goal (a small green
        square at 7), the large goal (a large one at 17) and the agent (blue) where it stands."""
        from mlx.envs.native.render import FLOOR, VOID, Canvas, tag_colour

        position = self.position[slice(None) if areas is None else areas]
        canvas = Canvas((MIN_POS - 0.5, -1.5, MAX_POS + 0.5, 1.5), scale=1 / 12)
        out = canvas.blank(len(position), VOID)
        canvas.fill(out, (MIN_POS + MAX_POS) / 2, 0.0, (MAX_POS - MIN_POS + 1) / 2, 0.5, FLOOR)
        canvas.fill(out, SMALL_GOAL, 0.0, 0.2, 0.2, tag_colour("goal"))
        canvas.fill(out, LARGE_GOAL, 0.0, 0.45, 0.45, tag_colour("goal"))
        canvas.fill(out, position, 0.0, 0.35, 0.35, tag_colour("agent"))
        return out
