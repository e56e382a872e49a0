"""Which team learns: ML-Agents' GhostController, one per run, shared by every ghost trainer.

The first team to subscribe learns; the others wait in a queue. Changing the learning team puts the
current one at the back of the queue, takes the next, and asks for a full env reset (the run loop resets
the env and every trainer's partial trajectories). A team first seen mid-run (a Unity build that adds
``?team=2``) joins the queue, as upstream. The controller also brokers ELO between the learning team's
ghost trainer and the ghost trainer that plays the opponents (the same one in symmetric games).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from mlx.trainers.ghost.elo import elo_change

if TYPE_CHECKING:
    from mlx.trainers.ghost.trainer import GhostTrainer


class GhostController:
    def __init__(self) -> None:
        self.learning_team: int | None = None
        self.queue: deque[int] = deque()
        self.ghosts: dict[int, GhostTrainer] = {}  # team id -> the ghost trainer of its behaviour
        self.changes = 0  # learning-team changes so far: ghosts swap opponents when they see a new one
        self.reset_requested = False  # a change is asked for: the run loop resets the env, then it happens

    def subscribe(self, team: int, ghost: GhostTrainer) -> None:
        if team in self.ghosts:
            return
        self.ghosts[team] = ghost
        if self.learning_team is None:
            self.learning_team = team
        elif team != self.learning_team and team not in self.queue:  # a resumed run's queue may hold it
            self.queue.append(team)

    def change_learning_team(self) -> None:
        """Ask for the next team to learn. The change happens with the env reset that follows this step
        (``apply_change``), so every behaviour sees one learning team throughout a step."""
        if self.queue:
            self.reset_requested = True

    def apply_change(self) -> None:
        """At the env reset: the learning team goes to the back of the queue, the next one learns."""
        if not self.reset_requested:
            return
        assert self.learning_team is not None
        self.queue.append(self.learning_team)
        self.learning_team = self.queue.popleft()
        self.changes += 1
        self.reset_requested = False

    def elo_change(self, rating: float, result: float) -> float:
        """The learner's ELO change after one game of result ``result`` against the opponents now playing;
        the opponents' rating (their ghost's current snapshot slot) loses what the learner gains."""
        others = [g for team, g in self.ghosts.items() if team != self.learning_team]
        if not others:
            return 0.0
        opponent = others[-1]  # upstream reads the last non-learning team's ghost (one opponent team)
        change = elo_change(rating, opponent.opponent_elo, result)
        opponent.opponent_elo -= change
        return change

    def state(self) -> dict[str, Any]:
        return {
            "learning_team": self.learning_team,
            "queue": list(self.queue),
            "changes": self.changes,
            "pending": self.reset_requested,  # a checkpoint between the request and the reset
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """A resumed run's learning team and queue (every ghost saves the same; loading twice is harmless).
        Teams the checkpoint knows but this env did not report yet stay queued for when they appear."""
        self.learning_team = state["learning_team"]
        self.queue = deque(state["queue"])
        self.changes = int(state["changes"])
        self.reset_requested = bool(state.get("pending", False))
