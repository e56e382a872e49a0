"""ML-Agents' ELO rating for self-play (facts sheet §3.4), as pure functions.

Upstream updates the learning policy's rating after each finished game of the learning team by
``result - expected`` with no K-factor (K = 1, where chess uses 16-32): ratings move slowly, by at most 1
per game. mlx keeps that so ELO curves read as upstream's do.
"""

from __future__ import annotations


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
