"""A group behaviour is scored by its mean group reward (upstream's benchmarks): the console line, the
summary rows, stop_at_reward's value, the learning curves and a sweep's objective all read it."""

from __future__ import annotations

import json

from mlx.stat_names import GROUP_REWARD, REWARD
from mlx.sweep.objective import read_history
from mlx.tracking.curves import panels, row_score, write_curves
from mlx.tracking.tracker import Tracker, row_metrics
from mlx.trainers.base import StatSummary
from mlx.training.summaries import Summaries


def stats(reward: float, group: float | None) -> dict[str, StatSummary]:
    out = {REWARD: StatSummary(reward, 0.5, 4)}
    if group is not None:
        out[GROUP_REWARD] = StatSummary(group, 0.1, 2)
    return out


def test_group_behaviour_rows_console_and_score(tmp_path, capsys):
    path = tmp_path / "stats.jsonl"
    summaries = Summaries(path, Tracker())
    assert summaries.write("Solo", 100, 1.0, 10.0, stats(2.0, None)) == 2.0
    assert summaries.write("Team", 100, 1.0, 10.0, stats(0.0, 0.75)) == 0.75
    # A later summary in which no group ended scores None, not the individual reward.
    assert summaries.write("Team", 200, 2.0, 10.0, stats(0.5, None)) is None
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("Mean Reward: 2.000. Std of Reward: 0.500. Training.")
    assert out[1].endswith("Mean Reward: 0.000. Mean Group Reward: 0.750. Training.")
    assert out[2].endswith("Mean Reward: 0.500. Std of Reward: 0.500. Training.")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert "mean_group_reward" not in rows[0] and rows[1]["mean_group_reward"] == 0.75
    assert rows[2]["mean_group_reward"] is None
    assert [row_score(r) for r in rows] == [2.0, 0.75, None]
    assert "mean_group_reward" not in row_metrics(rows[1]) and row_metrics(rows[1])[GROUP_REWARD] == 0.75
    assert read_history(path) == {"Solo": [(100, 2.0)], "Team": [(100, 0.75), (200, None)]}
    assert panels(rows[1:])[:2] == [GROUP_REWARD, REWARD] and panels(rows[:1])[0] == REWARD
    assert write_curves(path, "Team", tmp_path / "team.png") is not None
    assert (tmp_path / "team.png").stat().st_size > 0


def test_curriculum_reward_measure_reads_the_group_reward_of_a_group_behaviour():
    from mlx.config.parameters import parse_environment_parameters
    from mlx.params.curriculum import EnvironmentParameterManager
    from mlx.trainers.base import StatsRecorder

    criteria = {"behavior": "Team", "measure": "reward", "threshold": 0.5, "min_lesson_length": 2}
    params = parse_environment_parameters({"p": {"curriculum": [{"value": 1.0, "completion_criteria": criteria},
                                                                 {"value": 2.0}]}})  # fmt: skip
    manager = EnvironmentParameterManager(params, run_seed=0)
    stats = StatsRecorder()
    manager.watch(stats, "Team")
    stats.add(REWARD, [0.0, 0.0])  # before any group reward: individual returns count
    assert list(manager.reward_buffers["Team"]) == [0.0, 0.0]
    stats.add(GROUP_REWARD, [1.0])  # a group behaviour now: the buffer restarts from group returns
    stats.add(REWARD, [0.0])
    stats.add(GROUP_REWARD, [1.0])
    assert list(manager.reward_buffers["Team"]) == [1.0, 1.0]
    assert manager.update({"Team": 10}, {"Team": 100}) == (["p"], False)
