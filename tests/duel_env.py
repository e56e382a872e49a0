"""Duel: a tiny two-team env for self-play tests (not an ML-Agents example).

Each area holds two agents, agent 2a in team 0 and agent 2a+1 in team 1, both deciding every step. Both see
the same one-hot cue of K = 4 targets; the agent whose discrete action names the cue while the other's does
not wins the point (+1, the other -1) and both episodes end (done, not interrupted). When both or neither
name it, a new cue is drawn; after ``max_decisions`` decisions the point is a timeout (both interrupted,
reward 0). A policy that learns the cue beats older snapshots of itself, so its ELO rises.
``draws=True`` makes "both right" a finished game with reward 0 for both (a draw).
"""

from __future__ import annotations

import numpy as np

from mlx.envs.api import ActionSpec, ActionTuple, BaseEnv, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps

K = 4
BEHAVIOR = "Duel"


class DuelEnv(BaseEnv):
    def __init__(
        self, num_areas: int = 8, seed: int = 0, max_decisions: int = 20, draws: bool = False, teams: int = 2
    ) -> None:
        self.n = num_areas
        self.rng = np.random.default_rng(seed)
        self.max_decisions = max_decisions
        self.draws = draws
        self.n_teams = teams
        self.spec = BehaviorSpec((ObservationSpec((K,)),), ActionSpec(0, (K,)))
        self.ids = np.arange(2 * num_areas, dtype=np.int32)
        self.team = np.tile(np.array([0, 1 if teams > 1 else 0], np.int32), num_areas)
        self.cue = np.zeros(num_areas, np.int64)
        self.steps = np.zeros(num_areas, np.int64)
        self.actions = np.zeros(2 * num_areas, np.int64)
        self.points = np.zeros(2, np.int64)  # points won by team 0 and team 1 (tests read it)
        self._decision: DecisionSteps | None = None
        self._terminal: TerminalSteps | None = None

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR: self.spec}

    def teams(self, behavior_name: str) -> tuple[int, ...]:
        super().teams(behavior_name)
        return (0, 1) if self.n_teams > 1 else (0,)

    def _obs(self) -> np.ndarray:
        return np.repeat(np.eye(K, dtype=np.float32)[self.cue], 2, axis=0)

    def _publish(self, reward: np.ndarray, ended: np.ndarray, interrupted: np.ndarray, last: np.ndarray) -> None:
        self._decision = DecisionSteps([self._obs()], reward, self.ids, None, None, None, self.team)
        rows = np.repeat(ended, 2)
        self._terminal = TerminalSteps(
            [last[rows]], reward[rows], self.ids[rows], np.repeat(interrupted[ended], 2), None, None, self.team[rows]
        )

    def reset(self) -> None:
        self.cue = self.rng.integers(K, size=self.n)
        self.steps[:] = 0
        zeros = np.zeros(2 * self.n, np.float32)
        self._publish(zeros, np.zeros(self.n, bool), np.zeros(self.n, bool), self._obs())

    def step(self) -> None:
        right = (self.actions == np.repeat(self.cue, 2)).reshape(self.n, 2)
        win0, win1 = right[:, 0] & ~right[:, 1], right[:, 1] & ~right[:, 0]
        both = right[:, 0] & right[:, 1]
        reward = np.zeros((self.n, 2), np.float32)
        reward[win0] = (1.0, -1.0)
        reward[win1] = (-1.0, 1.0)
        self.points += (int(win0.sum()), int(win1.sum()))
        self.steps += 1
        finished = win0 | win1 | (both & self.draws)
        timeout = ~finished & (self.steps >= self.max_decisions)
        ended = finished | timeout
        last = self._obs()
        self.cue = np.where(ended | ~finished, self.rng.integers(K, size=self.n), self.cue)
        self.steps[ended] = 0
        reward = reward.reshape(-1)
        self._publish(np.where(np.repeat(ended, 2), 0.0, reward).astype(np.float32), ended, timeout, last)
        assert self._terminal is not None
        self._terminal.reward = reward[np.repeat(ended, 2)]

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        assert self._decision is not None and self._terminal is not None
        return self._decision, self._terminal

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        self.actions = actions.discrete[:, 0].astype(np.int64)


class AsymmetricDuel(DuelEnv):
    """Duel as two behaviours with different specs: ``Left`` (team 0, the cue) and ``Right`` (team 1, the
    cue and a constant 1), as StrikersVsGoalie's Striker and Goalie are two behaviours of two teams."""

    def __init__(self, num_areas: int = 8, seed: int = 0, max_decisions: int = 20) -> None:
        super().__init__(num_areas, seed, max_decisions)
        self.right_spec = BehaviorSpec((ObservationSpec((K + 1,)),), ActionSpec(0, (K,)))
        self.side = self.team == 1

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {"Left": self.spec, "Right": self.right_spec}

    def teams(self, behavior_name: str) -> tuple[int, ...]:
        return {"Left": (0,), "Right": (1,)}[behavior_name]

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        decision, terminal = super().get_steps(BEHAVIOR)
        right = behavior_name == "Right"
        d, t = decision.take(self.side == right), terminal.take(terminal.team_id == int(right))
        if right:
            d.obs = [np.concatenate([d.obs[0], np.ones((len(d), 1), np.float32)], axis=1)]
            t.obs = [np.concatenate([t.obs[0], np.ones((len(t), 1), np.float32)], axis=1)]
        return d, t

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        rows = self.side == (behavior_name == "Right")
        self.actions[rows] = actions.discrete[:, 0]
