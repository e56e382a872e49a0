"""ML-Agents' ELO rating for self-play (facts sheet §3.4), as pure functions.

Upstream updates the learning policy's rating after each finished game of the learning team by
``result - expected`` with no K-factor (K = 1, where chess uses 16-32): ratings move slowly, by at most 1
per game. mlx keeps that so ELO curves read as upstream's do.
"""

from __future__ import annotations

import numpy as np

from mlx.envs.api import DecisionSteps, TerminalSteps


def expected_score(rating: float, opponent: float) -> float:
    """The chance to win that the ratings predict: q1 / (q1 + q2) with q = 10^(rating / 400), written in
    the logistic form that does not overflow for large ratings."""
    return 1.0 / (1.0 + 10.0 ** ((opponent - rating) / 400.0))


def game_result(final_reward: float) -> float:
    """1 for a win, 0 for a loss, 0.5 for a draw, from the last step's individual + group reward (upstream:
    the sign decides; only exactly 0 is a draw)."""
    return 1.0 if final_reward > 0 else 0.0 if final_reward < 0 else 0.5


def elo_change(rating: float, opponent: float, result: float) -> float:
    """What the learner's rating gains (and the opponent's loses) after one game: result - expected."""
    return result - expected_score(rating, opponent)


def finished_games(decision: DecisionSteps, terminal: TerminalSteps) -> np.ndarray:
    """Which agents of ``terminal`` finished a game (bool per row): their episode ended without a timeout
    and, in a group, no groupmate plays on (upstream: done, not interrupted, all group dones reached).
    ``decision`` is the same step's DecisionSteps of the same agents' team."""
    done = ~np.asarray(terminal.interrupted, bool)
    if terminal.group_id is not None and decision.group_id is not None and len(terminal):
        going_on = decision.group_id[~np.isin(decision.agent_id, terminal.agent_id)]  # mates still playing
        done &= (terminal.group_id == 0) | ~np.isin(terminal.group_id, going_on)
    return done


def final_rewards(terminal: TerminalSteps, rows: np.ndarray) -> np.ndarray:
    """The last step's individual + group reward of the agents at ``rows``: what decides a game."""
    final = terminal.reward[rows].astype(np.float64)
    if terminal.group_reward is not None:
        final += terminal.group_reward[rows]
    return final
