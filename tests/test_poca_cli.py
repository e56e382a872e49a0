"""trainer=poca as users run it: on an env without groups (a group of one), with a learned reward signal and
cameras, resumed, evaluated and recorded; and the settings POCA refuses, each in one line."""

from __future__ import annotations

import json

import pytest

from tests.conftest import assert_refused, run_mlx

SMALL = ("trainer.hyperparameters.batch_size=64", "trainer.hyperparameters.buffer_size=512", "tracking=none")


def rows(workdir, run_id: str) -> list[dict]:
    return [json.loads(x) for x in (workdir / f"results/{run_id}/run_logs/stats.jsonl").read_text().splitlines()]


def test_no_groups_is_a_group_of_one_and_the_run_resumes_and_evaluates(workdir):
    """3DBall sends no group ids: POCA trains each agent as a group of one (no group statistic, the usual
    console line), and the run resumes and is evaluated and recorded like any other."""
    proc = run_mlx("trainer=poca", "env=3dball", "trainer.max_steps=2000", "trainer.summary_freq=1000", "run_id=b",
                   *SMALL, cwd=workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Std of Reward" in proc.stdout and "Group" not in proc.stdout
    assert all("mean_group_reward" not in r and r["Losses/Baseline Loss"] is not None for r in rows(workdir, "b"))
    again = run_mlx("run_id=b", "resume=true", "trainer.max_steps=3000", "tracking=none", cwd=workdir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Resume changes trainer.max_steps: 2000 -> 3000" in again.stdout
    assert rows(workdir, "b")[-1]["step"] >= 3000
    evaluated = run_mlx("mode=evaluate", "run_id=b", "evaluate.episodes=5", "tracking=none", cwd=workdir)
    assert evaluated.returncode == 0 and "Evaluated 5 episodes" in evaluated.stdout, evaluated.stderr[-2000:]
    recorded = run_mlx("mode=record", "run_id=b", "record.episodes=2", "tracking=none", cwd=workdir)
    assert recorded.returncode == 0, recorded.stderr[-2000:]
    assert (workdir / "results/b/demos/3DBall.demo").stat().st_size > 0


def test_group_run_with_curiosity_reports_group_statistics_and_is_watched(workdir):
    proc = run_mlx("trainer=poca", "env=sacrifice", "reward_signals=[extrinsic,curiosity]", "trainer.max_steps=3000",
                   "trainer.summary_freq=1500", "run_id=c", *SMALL, cwd=workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Mean Group Reward:" in proc.stdout
    last = rows(workdir, "c")[-1]
    for name in (
        "Environment/Group Cumulative Reward",
        "Policy/Extrinsic Baseline Estimate",
        "Policy/Curiosity Baseline Estimate",
        "Losses/Baseline Loss",
        "Losses/Curiosity Forward Loss",
    ):
        assert last.get(name) is not None, name
    assert last["mean_group_reward"] == last["Environment/Group Cumulative Reward"]
    # Watched: each area is one group (2 agents), its episodes and returns counted per group.
    watched = run_mlx("mode=watch", "run_id=c", "watch.areas=2", "watch.episodes=1", "tracking=none", cwd=workdir)
    assert watched.returncode == 0, watched.stderr[-2000:]
    assert (workdir / "results/c/Sacrifice.gif").stat().st_size > 0
    assert "max_frames" not in watched.stdout  # each area's group episodes were counted (ids 0..3, 2 per area)
    assert int(watched.stdout.split(" episodes)")[0].rsplit(" ", 1)[1]) >= 2


def test_cameras_reach_the_attention_critic(workdir):
    proc = run_mlx("trainer=poca", "env=visual3dball", "trainer.max_steps=300", "trainer.summary_freq=300",
                   "trainer.hyperparameters.batch_size=32", "trainer.hyperparameters.buffer_size=128", "run_id=v",
                   "tracking=none", cwd=workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (workdir / "results/v/Visual3DBall.onnx").exists()


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("+trainer.self_play={window: 10}", ("trainer.self_play: env sacrifice has one team", "remove self_play")),
        ("trainer.hyperparameters.shared_critic=true", ("shared_critic", "remove it")),
        ("trainer.network_settings.hidden_units=30", ("hidden_units", "multiple of 4")),
    ],
)
def test_refused_in_one_line(workdir, override, words):
    assert_refused(run_mlx("trainer=poca", "env=sacrifice", override, "tracking=none", cwd=workdir), *words)


def test_groups_train_over_grpc_from_env_processes(workdir):
    """Sacrifice in two env processes (ML-Agents' gRPC protocol, as a Unity build with groups): group ids
    and group rewards cross the wire (kept apart per process: test_merge_groups.py), and POCA trains on them."""
    proc = run_mlx("trainer=poca", "env=sacrifice", "env.num_envs=2", "env.num_areas=4", "env.subprocess=true",
                   "env.base_port=0", "trainer.max_steps=6000", "trainer.summary_freq=3000", "run_id=g",
                   "progress=plain", *SMALL, cwd=workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("Mean Group Reward:") == 2
    table = rows(workdir, "g")
    assert all(r["mean_group_reward"] is not None and r["Losses/Baseline Loss"] is not None for r in table)
