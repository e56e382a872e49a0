"""mode=evaluate on envs with several teams (Tennis, SoccerTwos, StrikersVsGoalie, a Unity build with
``?team=N``): one policy plays a team against another policy, and the games are counted.

``evaluate.policy`` (null: the run's newest checkpoint) plays ``evaluate.team`` (null: the lowest team id);
``evaluate.opponent`` plays every other team: ``random`` (uniform among allowed actions), a ``.pt``
checkpoint or ``.onnx`` policy (an older checkpoint of the same run, another run's), or null (the run's
newest policy: a mirror match). In asymmetric games the opponent's file is the other behaviour's.

A game is one finished episode of the evaluated team as self-play's ELO sees it
(mlx.trainers.ghost.elo.finished_games: done, not a timeout, the whole group done), counted once per group
(a 2-agent soccer team's goal is one game), won, drawn or lost by the sign of the last individual + group
reward; timeouts are counted apart. Games are counted in the order they end until ``evaluate.episodes``
have: every area starts at once, so with many more games than areas the order barely favours short games.
The report gives the win rate among decided games (wins / (wins + losses)) with its 95% Wilson interval,
the rate over all games, and the share of games not lost (a goalie's measure: a timeout is a goal kept out).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mlx.config import RunConfig
from mlx.envs.api import BaseEnv, BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.errors import ConfigError, RunError
from mlx.modes.policy import Policy, RandomPolicy, load_policy, policy_file
from mlx.trainers.ghost.elo import final_rewards, finished_games
from mlx.trainers.ghost.trainer import teams_of
from mlx.training.output import say


def env_teams(env: BaseEnv) -> dict[str, tuple[int, ...]]:
    return {name: tuple(env.teams(name)) for name in env.behavior_specs}


def is_match(env: BaseEnv) -> bool:
    """Whether the env's agents play in more than one team."""
    return len({t for teams in env_teams(env).values() for t in teams}) > 1


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95% for z = 1.96); (0, 1) without trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def _one_per_group(terminal: TerminalSteps, rows: np.ndarray) -> np.ndarray:
    """``rows`` with one row per nonzero group (a team's game counts once however many mates it has)."""
    if terminal.group_id is None or not len(rows):
        return rows
    groups = terminal.group_id[rows]
    _, first = np.unique(groups, return_index=True)
    keep = np.zeros(len(rows), bool)
    keep[groups == 0] = True
    keep[first[groups[first] != 0]] = True
    return rows[keep]


@dataclass
class Tally:
    """The evaluated team's games so far."""

    wins: int = 0
    draws: int = 0
    losses: int = 0
    timeouts: int = 0

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses + self.timeouts

    def add(self, decision: DecisionSteps, terminal: TerminalSteps) -> None:
        """One step of the evaluated team's agents (their rows only)."""
        if not len(terminal):
            return
        finished = finished_games(decision, terminal)
        rows = _one_per_group(terminal, np.flatnonzero(finished))
        final = final_rewards(terminal, rows)
        self.wins += int((final > 0).sum())
        self.losses += int((final < 0).sum())
        self.draws += int((final == 0).sum())
        self.timeouts += len(_one_per_group(terminal, np.flatnonzero(np.asarray(terminal.interrupted, bool))))

    def report(self) -> dict[str, float]:
        decided = self.wins + self.losses
        low, high = wilson(self.wins, decided)
        return {
            **asdict(self),
            "games": self.games,
            "win_rate_decided": self.wins / decided if decided else float("nan"),
            "win_rate_decided_ci95": [low, high],
            "win_rate_all": self.wins / self.games if self.games else float("nan"),
            "not_lost_all": (self.games - self.losses) / self.games if self.games else float("nan"),
        }


def _policy(cfg: RunConfig, name: str, spec: BehaviorSpec, source: str | None, setting: str, seed: int) -> Policy:
    if source == "random":
        return RandomPolicy(spec.action_spec, seed)
    return load_policy(cfg, name, spec, policy_file(cfg, name, source, setting), cfg.evaluate.deterministic)


def describe(source: str | None) -> str:
    return "the run's newest policy" if source is None else source if source == "random" else str(Path(source))


def play_match(cfg: RunConfig, env: BaseEnv) -> dict:
    """Play ``evaluate.episodes`` games of the evaluated team; returns the report (also printed)."""
    settings = cfg.evaluate
    teams = env_teams(env)
    every = sorted({t for ts in teams.values() for t in ts})
    team = every[0] if settings.team is None else settings.team
    if team not in every:
        raise ConfigError(f"evaluate.team={team}: env {cfg.env.name} has teams {', '.join(map(str, every))}")
    policies: dict[tuple[str, int], Policy] = {}
    for k, (name, spec) in enumerate(env.behavior_specs.items()):
        for t in teams[name]:
            mine = t == team
            source = settings.policy if mine else settings.opponent
            setting = "evaluate.policy" if mine else "evaluate.opponent"
            policies[name, t] = _policy(cfg, name, spec, source, setting, cfg.seed + 7 * k + t)
    tally = Tally()
    steps = 0
    env.reset()
    while tally.games < settings.episodes and steps < settings.max_steps:
        for name, spec in env.behavior_specs.items():
            decision, terminal = env.get_steps(name)
            d_team, t_team = teams_of(decision), teams_of(terminal)
            if team in teams[name]:
                tally.add(decision.take(d_team == team), terminal.take(t_team == team))
                steps += int((d_team == team).sum())
            actions = spec.action_spec.empty(len(decision))
            for t in np.unique(d_team).tolist():
                policy = policies.get((name, int(t)))
                if policy is None:  # a team first seen mid-run plays as an opponent
                    policy = policies[name, int(t)] = _policy(
                        cfg, name, spec, settings.opponent, "evaluate.opponent", cfg.seed + 1000 + int(t)
                    )
                policy.forget(terminal.agent_id[t_team == t])
                rows = d_team == t
                actions.put(rows, policy.act(decision.take(rows)))
            if len(decision):
                env.set_actions(name, actions)
        env.step()
    if tally.games == 0:
        raise RunError(f"no game of team {team} ended within evaluate.max_steps={settings.max_steps} agent steps")
    report = tally.report()
    low, high = report["win_rate_decided_ci95"]
    say(
        f"[INFO] Team {team} ({describe(settings.policy)}) against {describe(settings.opponent)}: "
        f"{tally.games} games: {tally.wins} won, {tally.draws} drawn, {tally.losses} lost, {tally.timeouts} timed out. "
        f"Win rate among decided games: {report['win_rate_decided']:.3f} (95% CI {low:.3f}-{high:.3f}); "
        f"over all games: {report['win_rate_all']:.3f}.",
    )
    return {"team": team, "policy": describe(settings.policy), "opponent": describe(settings.opponent), **report}
