"""Self-play: ML-Agents' ghost trainer (facts sheet §3), wrapped around any trainer (PPO, SAC, POCA).

A behaviour with a ``self_play`` block gets a `GhostTrainer` around its real trainer. Every env step it
splits the behaviour's agents by ``team_id``: the learning team's rows go to the real trainer (which acts,
records and learns as ever: its step counts only them), the other teams' rows are played by frozen copies
of the actor (``mlx.modes.policy.TorchPolicy``, sampling as upstream's ghost policies do, or acting on the
mean and argmax with network_settings.deterministic) and teach nothing. Around that, upstream's cycle:

* every ``save_steps`` learning steps the current actor (and normaliser) is saved into a window of
  ``window`` snapshots (a ring: the oldest is replaced), with the current ELO as that snapshot's rating;
  the initial policy is the first snapshot;
* every ``swap_steps`` opponent steps (counted over the rows the opponents play), and whenever the learning
  team changes, each opponent team draws what it plays: the latest policy with probability
  ``play_against_latest_model_ratio``, else a uniformly drawn snapshot; what it drew is frozen until the
  next swap;
* every ``team_change`` learning steps the `GhostController` (one per run) hands learning to the next
  team; the run loop then resets the env and drops partial trajectories, as upstream;
* ELO (``mlx.trainers.ghost.elo``): each learning-team agent whose game ended (done, not a timeout, and
  its whole group done) scores 1 / 0 / 0.5 by the sign of its last individual + group reward; its rating
  and the current opponent's snapshot rating move by result - expected (K = 1). Reported as
  ``Self-play/ELO`` and appended to the console line.

Symmetric games (Tennis, SoccerTwos: one behaviour, teams 0 and 1) have one ghost trainer for both teams;
asymmetric ones (StrikersVsGoalie) one per behaviour, coordinated by the shared controller: while one
behaviour learns, the other is played entirely by its snapshots and its real trainer waits.

Checkpoints hold the snapshots, their ratings, what each opponent team plays, the counters and the
controller's learning team and queue, so a killed run resumes with the same learning team, opponents and
ELO; training_status.json records each behaviour's ELO as upstream does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlx.config import SelfPlaySettings
from mlx.envs.api import ActionTuple, DecisionSteps, TerminalSteps
from mlx.modes.policy import ActingModule, TorchPolicy
from mlx.stat_names import ELO
from mlx.trainers.base import RLTrainer
from mlx.trainers.ghost.controller import GhostController
from mlx.trainers.ghost.elo import final_rewards, finished_games, game_result

Weights = dict[str, torch.Tensor]
_ACTING = ("actor.", "normalizer.")  # what a snapshot keeps of the module: the part that acts


def teams_of(steps: DecisionSteps | TerminalSteps) -> np.ndarray:
    """Each agent's team (0 when the env sends none)."""
    return steps.team_id if steps.team_id is not None else np.zeros(len(steps), np.int64)


class GhostTrainer:
    """The self-play wrapper of one behaviour's trainer (see the module doc). Everything it does not
    override is the wrapped trainer's (``__getattr__``), so the loop, callbacks and checkpoints treat it
    as any trainer."""

    def __init__(
        self,
        inner: RLTrainer,
        settings: SelfPlaySettings,
        teams: Sequence[int],
        controller: GhostController,
        seed: int,
    ) -> None:
        self.inner = inner
        self.self_play = settings
        self.controller = controller
        self.teams: list[int] = []
        self.rng = np.random.default_rng([seed, 0x5E1F])  # opponent draws; its own stream, saved in checkpoints
        self.snapshots: list[Weights] = []
        self.elos = [float(settings.initial_elo)] * (settings.window + 1)  # one per snapshot slot, then current
        self.save_slot = 0  # the ring's next slot
        self.current_opponent = -1  # the snapshot slot the opponents play (-1: the latest policy)
        self.last_save = 0  # learning steps at the last snapshot
        self.last_swap = 0  # ghost steps at the last draw of opponents
        self.ghost_step = 0  # steps the opponents played
        self.last_team_change = 0  # learning steps when this behaviour's team last took over
        self.changes_seen = controller.changes
        self.opponents: dict[int, TorchPolicy] = {}  # team -> the frozen policy playing it
        self.playing: dict[int, Weights] = {}  # team -> the weights it plays (a snapshot or a copy of the latest)
        self._save_snapshot()  # upstream: the initial policy is the first snapshot
        for team in teams:
            self._join(int(team))
        self._swap()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["inner"], name)

    # ---- ratings ------------------------------------------------------------------------------
    @property
    def current_elo(self) -> float:
        return self.elos[-1]

    @property
    def opponent_elo(self) -> float:
        """The rating of what this behaviour's opponent teams play now (the controller reads and moves it)."""
        return self.elos[self.current_opponent]

    @opponent_elo.setter
    def opponent_elo(self, value: float) -> None:
        self.elos[self.current_opponent] = value

    # ---- what the loop calls ----------------------------------------------------------------
    @property
    def learning(self) -> bool:
        return self.controller.learning_team in self.teams

    @property
    def step(self) -> int:
        return self.inner.step

    @property
    def reset_requested(self) -> bool:
        return self.controller.reset_requested

    def process(self, decision: DecisionSteps, terminal: TerminalSteps) -> ActionTuple:
        if self.controller.changes != self.changes_seen:  # the learning team changed at the last env reset
            self.changes_seen = self.controller.changes
            if self.learning:  # this behaviour's team takes over: its steps count from now
                self.last_team_change = self.inner.step
            self._swap()
            self.last_swap = self.ghost_step
        d_team, t_team = teams_of(decision), teams_of(terminal)
        for team in np.unique(np.concatenate([d_team, t_team])).tolist():
            if team not in self.controller.ghosts:  # a team first seen mid-run queues (upstream)
                self._join(int(team))
                self._load_opponent(int(team), self._latest())
        actions = self.inner.spec.action_spec.empty(len(decision))
        learning_team = self.controller.learning_team
        if self.learning:
            d_rows = d_team == learning_team
            mine = decision.take(d_rows), terminal.take(t_team == learning_team)
            actions.put(d_rows, self.inner.process(*mine))
            self._rate_games(*mine)
        for team in np.unique(t_team[t_team != learning_team]).tolist():  # their memories end with them
            self.opponents[int(team)].forget(terminal.agent_id[t_team == team])
        for team in np.unique(d_team[d_team != learning_team]).tolist():
            rows = d_team == team
            actions.put(rows, self.opponents[int(team)].act(decision.take(rows)))
            self.ghost_step += int(rows.sum())
        self._advance()
        return actions

    def ready_to_update(self) -> bool:
        return self.learning and self.inner.ready_to_update()

    def update(self) -> None:
        self.inner.update()

    def reset_trajectories(self) -> None:
        """After the env was reset (a team change, a curriculum lesson): no partial trajectory survives."""
        self.inner.reset_trajectories()
        for policy in self.opponents.values():
            policy.memories.agents.reset()
        self.controller.apply_change()  # a requested team change happens with the reset (the first ghost's)

    # ---- the cycle ----------------------------------------------------------------------------
    def _advance(self) -> None:
        """Upstream's order after each step: team change (asked for; it happens with the env reset, and
        the opponents are drawn again at the next step), snapshot, then opponents' swap."""
        sp = self.self_play
        step = self.inner.step
        if self.learning:
            if step - self.last_team_change > sp.steps_to_change_team or self._done_while_others_train():
                self.controller.change_learning_team()
                self.last_team_change = step
            if step - self.last_save > sp.save_steps:
                self._save_snapshot()
                self.last_save = step
        if self.ghost_step - self.last_swap > sp.swap_steps:
            self._swap()
            self.last_swap = self.ghost_step

    def _done_while_others_train(self) -> bool:
        """Past its max_steps a behaviour learns nothing more: hand learning on at once to another behaviour
        that still trains (asymmetric games) rather than play out team_change steps."""
        if self.inner.step < self.settings.max_steps or self.controller.reset_requested:
            return False
        return any(g.inner.step < g.settings.max_steps for g in self.controller.ghosts.values() if g is not self)

    def _latest(self) -> Weights:
        state = self.inner.module.state_dict()
        return {k: v.detach().clone() for k, v in state.items() if k.startswith(_ACTING)}

    def _save_snapshot(self) -> None:
        weights = self._latest()
        if len(self.snapshots) < self.self_play.window:
            self.snapshots.append(weights)
        else:
            self.snapshots[self.save_slot] = weights
        self.elos[self.save_slot] = self.current_elo
        self.save_slot = (self.save_slot + 1) % self.self_play.window

    def _swap(self) -> None:
        """Each opponent team draws what it plays until the next swap."""
        for team in self.teams:
            if team == self.controller.learning_team:
                continue
            if self.rng.uniform() < 1.0 - self.self_play.play_against_latest_model_ratio:
                self.current_opponent = int(self.rng.integers(len(self.snapshots)))
                weights = self.snapshots[self.current_opponent]
            else:
                self.current_opponent = -1
                weights = self._latest()
            self._load_opponent(team, weights)

    def _join(self, team: int) -> None:
        self.teams.append(team)
        self.controller.subscribe(team, self)

    def _load_opponent(self, team: int, weights: Weights) -> None:
        policy = self.opponents.get(team)
        if policy is None:
            module = ActingModule(self.inner.spec, self.inner.settings)
            policy = self.opponents[team] = TorchPolicy(
                module, self.inner.behavior_name, self.inner.spec, module.actor.deterministic
            )
        policy.module.load_weights(weights)
        policy.memories.agents.reset()
        self.playing[team] = weights

    def _rate_games(self, decision: DecisionSteps, terminal: TerminalSteps) -> None:
        """ELO after each finished game of a learning-team agent: done, not interrupted, whole group done."""
        if not len(terminal):
            return
        done = finished_games(decision, terminal)
        if not done.any():
            return
        final = final_rewards(terminal, done)
        for reward in final.tolist():  # one rating update per finished game of an agent (upstream)
            change = self.controller.elo_change(self.current_elo, game_result(reward))  # moves the opponent's first
            self.elos[-1] += change
            self.inner.stats.add(ELO, self.current_elo)

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        ghost = {
            "snapshots": self.snapshots,
            "elos": list(self.elos),
            "save_slot": self.save_slot,
            "current_opponent": self.current_opponent,
            "last_save": self.last_save,
            "last_swap": self.last_swap,
            "ghost_step": self.ghost_step,
            "last_team_change": self.last_team_change,
            "teams": list(self.teams),
            "playing": self.playing,
            "rng": self.rng.bit_generator.state,
            "controller": self.controller.state(),
        }
        return {**self.inner.state_dict(), "self_play": ghost}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)
        ghost = state.get("self_play")
        if ghost is None:  # a checkpoint from before self-play was turned on: self-play starts now
            return
        window = self.self_play.window
        if len(ghost["elos"]) != window + 1:
            raise ValueError(f"its self-play window is {len(ghost['elos']) - 1}, this run's self_play.window {window}")
        self.controller.load_state(ghost["controller"])
        self.changes_seen = self.controller.changes
        self.snapshots = [self._checked(w) for w in ghost["snapshots"]]
        self.elos = [float(e) for e in ghost["elos"]]
        for key in ("save_slot", "current_opponent", "last_save", "last_swap", "ghost_step", "last_team_change"):
            setattr(self, key, int(ghost[key]))
        self.rng.bit_generator.state = ghost["rng"]
        for team in ghost["teams"]:
            if team not in self.teams:
                self._join(int(team))
        for team, weights in ghost["playing"].items():
            self._load_opponent(int(team), self._checked(weights))

    def _checked(self, weights: Weights) -> Weights:
        """A saved snapshot must have the actor's tensors, names and shapes (else ValueError: the resume is
        refused in one line, rather than a swap failing mid-run)."""
        latest = self._latest()
        if not isinstance(weights, dict) or weights.keys() != latest.keys():
            raise ValueError("a self-play snapshot does not hold this actor's weights")
        if any(not isinstance(w, torch.Tensor) or w.shape != latest[k].shape for k, w in weights.items()):
            raise ValueError("a self-play snapshot's weights have other shapes than this actor's")
        return weights

    def status(self) -> dict[str, Any]:
        """What training_status.json records for this behaviour beside its checkpoints (upstream: elo)."""
        return {"elo": self.current_elo}

    def export(self, path: Path) -> Path:
        return self.inner.export(path)
