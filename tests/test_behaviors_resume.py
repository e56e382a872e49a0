"""Runs with several behaviours (WallJump's SmallWallJump and BigWallJump, StrikersVsGoalie's Striker and
Goalie), which step at their own rates: a resume keeps each behaviour's records up to its own checkpoint
(stats.jsonl, MLflow, TensorBoard), and MLflow names each behaviour's metrics "<Behavior>/<name>" while a
single-behaviour run keeps ML-Agents' names. Real MLflow SQLite stores and real files; nothing mocked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mlx.config import TrackingSettings
from mlx.sweep.objective import read_history
from mlx.tracking.base import read_rows
from mlx.tracking.keys import PROBE, MetricNames
from mlx.tracking.sync import sync
from mlx.tracking.tensorboard import TensorboardTracker
from mlx.tracking.tracker import SYNC_FILE, MlflowTracker
from mlx.training.checkpoints import truncate_stats
from tests.conftest import run_mlx
from tests.test_tensorboard import accumulator, statistics

FAST = {"window": 0.4, "retry_every": 0.3, "busy_timeout": 0.2, "finish_wait": 10.0}
REWARD = "Environment/Cumulative Reward"
SETTINGS = {"trainer_type": "ppo", "max_steps": 10}


def row(behavior: str, step: int, value: float = 1.0) -> dict:
    return {"behavior": behavior, "step": step, "time_elapsed": step / 100, "mean_reward": value,
            "std_reward": 0.5, "episodes": 3, "steps_per_sec": round(100 + step / 7, 1), REWARD: value,
            "Policy/Entropy": 1.25}  # fmt: skip


def write(stats: Path, rows: list[dict], tracker=None) -> None:
    """What Summaries.write does: each row to stats.jsonl, then to the tracker."""
    with stats.open("a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
            if tracker is not None:
                tracker.log_summary(r)


# Striker steps twice as fast as Goalie: at the kill Striker is at 1000, Goalie at 500; their last
# checkpoints are at 800 and 300.
STRIKER, GOALIE = range(100, 1001, 100), range(100, 501, 100)
CHECKPOINTS = {"Striker": 800, "Goalie": 300}


def assert_folder_matches(folder: Path, stats: Path) -> None:
    """The event files of one behaviour's folder hold each statistic of each of its stats.jsonl rows at the
    row's step, once, with its value, and nothing else."""
    expected: dict[str, list[tuple[int, float]]] = {}
    for r in read_rows(stats):
        if r["behavior"] == folder.name:
            for tag, value in statistics(r).items():
                expected.setdefault(tag, []).append((r["step"], value))
    acc = accumulator(folder)
    assert expected and sorted(acc.Tags()["scalars"]) == sorted(expected)
    for tag, points in expected.items():
        assert [(e.step, e.value) for e in acc.Scalars(tag)] == points, (folder.name, tag)


def two_behaviour_rows() -> list[dict]:
    rows = [row("Striker", s) for s in STRIKER] + [row("Goalie", s) for s in GOALIE]
    return sorted(rows, key=lambda r: r["time_elapsed"])


# ---- stats.jsonl -------------------------------------------------------------------------------------------
def test_truncate_keeps_each_behaviours_rows_up_to_its_own_checkpoint(tmp_path):
    stats = tmp_path / "stats.jsonl"
    write(stats, [*two_behaviour_rows(), row("Keeper", 100)])
    with stats.open("a") as f:
        f.write('{"behavior": "Striker", "st')  # cut short by a kill
    # a resumed sweep trial's history (mlx.sweep.objective) is what the resume keeps
    history = read_history(stats, CHECKPOINTS)
    steps = {name: [s for s, _ in points] for name, points in history.items()}
    assert steps == {"Striker": list(range(100, 801, 100)), "Goalie": [100, 200, 300]}
    truncate_stats(stats, CHECKPOINTS)  # Keeper: no checkpoint, it starts from 0
    kept = read_rows(stats)
    assert [r["step"] for r in kept if r["behavior"] == "Striker"] == list(range(100, 801, 100))
    assert [r["step"] for r in kept if r["behavior"] == "Goalie"] == [100, 200, 300]
    assert len(kept) == len(stats.read_text().splitlines()) == 11
    truncate_stats(stats, 200)  # one step for every behaviour, as before
    assert [(r["behavior"], r["step"]) for r in read_rows(stats)] == [
        (b, s) for b, s in ((r["behavior"], r["step"]) for r in kept) if s <= 200
    ]


# ---- TensorBoard -------------------------------------------------------------------------------------------
def test_event_files_rewind_each_behaviour_to_its_own_checkpoint(tmp_path):
    stats = tmp_path / "stats.jsonl"
    behaviors = {"Striker": SETTINGS, "Goalie": SETTINGS}
    first = TensorboardTracker(tmp_path, behaviors)
    write(stats, two_behaviour_rows(), first)
    first.finish()  # killed after these summaries
    truncate_stats(stats, CHECKPOINTS)
    again = TensorboardTracker(tmp_path, behaviors, resume_step=CHECKPOINTS, stats=stats)
    write(stats, [row("Striker", s, 2.0) for s in (900, 1000)] + [row("Goalie", s, 2.0) for s in (400, 500)], again)
    again.finish()
    for name in behaviors:
        assert_folder_matches(tmp_path / name, stats)  # each step once, with its latest value
    points = [(e.step, e.value) for e in accumulator(tmp_path / "Striker").Scalars(REWARD)]
    assert points == [(s, 1.0) for s in range(100, 801, 100)] + [(900, 2.0), (1000, 2.0)]


# ---- MLflow ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A migrated MLflow store, copied for each test (MLflow's migrations take seconds)."""
    db = tmp_path_factory.mktemp("template") / "mlruns.db"
    MlflowTracker(TrackingSettings(uri=f"sqlite:///{db}"), "exp", "run", {}, **FAST).finish()
    return db


def open_tracker(tmp_path: Path, template: Path, resume: str | None = None, **options) -> MlflowTracker:
    db = tmp_path / "mlruns.db"
    if not db.exists():
        tmp_path.mkdir(parents=True, exist_ok=True)
        shutil.copy(template, db)
    logs = tmp_path / "run" / "run_logs"
    logs.mkdir(parents=True, exist_ok=True)
    settings = TrackingSettings(uri=f"sqlite:///{db}")
    return MlflowTracker(settings, "exp", "run", {}, resume, run_logs=logs, **{**FAST, **options})


def history(tracker: MlflowTracker, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in tracker.client.get_metric_history(tracker.run_id, key))


def test_single_behaviour_runs_keep_mlagents_names_and_several_are_prefixed(tmp_path, template):
    assert MetricNames(["B"]).row(row("B", 1)) == MetricNames([]).row(row("B", 1))
    assert set(MetricNames(["B"]).row(row("B", 1))) == {REWARD, "Policy/Entropy", PROBE, f"{REWARD} Std"}
    names = MetricNames(["Small", "Big", "Big/Jump"])
    assert set(names.row(row("Big", 1))) == {f"Big/{k}" for k in (REWARD, "Policy/Entropy", PROBE, f"{REWARD} Std")}
    assert names.owner("Big/Jump/Policy/Entropy") == "Big/Jump" and names.owner("Evaluation/Big/x") is None
    one = open_tracker(tmp_path / "one", template, behaviors=["B"])
    write(one.stats, [row("B", 100)], one)
    one.finish()
    assert set(one.client.get_run(one.run_id).data.metrics) == {REWARD, "Policy/Entropy", PROBE, f"{REWARD} Std"}


def test_a_resume_rewinds_each_behaviours_metrics_to_its_own_checkpoint(tmp_path, template):
    first = open_tracker(tmp_path, template, behaviors=["Striker", "Goalie"])
    assert first.flush(20)  # its start's replay done: stats.jsonl is empty until now
    for r in two_behaviour_rows():  # the Goalie's summaries after 200 reach only stats.jsonl (the store away)
        write(first.stats, [r], None if r["behavior"] == "Goalie" and r["step"] > 200 else first)
    assert first.flush(20)
    first.close()  # killed: no end recorded
    # an evaluation attached at the last step: a key of no behaviour, which no resume logs again
    first.client.log_metric(first.run_id, "Evaluation/Striker/mean_return", 3.0, step=1000)
    state = json.loads((first.run_logs / SYNC_FILE).read_text())
    assert state["behaviors"] == ["Striker", "Goalie"] and state["sent"] == {"Striker": 1000, "Goalie": 200}
    truncate_stats(first.stats, CHECKPOINTS)
    again = open_tracker(tmp_path, template, first.run_id, resume_step=CHECKPOINTS, behaviors=["Striker", "Goalie"])
    write(again.stats, [row("Goalie", s, 2.0) for s in (400, 500)] + [row("Striker", s, 2.0) for s in (900, 1000)])
    for r in read_rows(again.stats)[-4:]:
        again.log_summary(r)
    again.finish()
    assert again.run_id == first.run_id
    assert history(again, f"Striker/{REWARD}") == [(s, 1.0) for s in range(100, 801, 100)] + [(900, 2.0), (1000, 2.0)]
    goalie = [(100, 1.0), (200, 1.0), (300, 1.0), (400, 2.0), (500, 2.0)]
    assert history(again, f"Goalie/{REWARD}") == goalie  # 300 replayed from stats.jsonl
    for name in ("Striker", "Goalie"):  # every key of every summary: each step once
        steps = [r["step"] for r in read_rows(again.stats) if r["behavior"] == name]
        assert [s for s, _ in history(again, f"{name}/{PROBE}")] == sorted(steps)
    assert history(again, REWARD) == []  # no curve mixes the two
    assert history(again, "Evaluation/Striker/mean_return") == [(1000, 3.0)]
    latest = again.client.get_run(again.run_id).data.metrics
    assert latest[f"Striker/{REWARD}"] == 2.0 and latest[f"Goalie/{REWARD}"] == 2.0
    assert json.loads((again.run_logs / SYNC_FILE).read_text())["sent"] == {"Striker": 1000, "Goalie": 500}


def test_sync_sends_a_multi_behaviour_run_under_the_names_it_started_with(tmp_path, template):
    tracker = open_tracker(tmp_path, template, behaviors=["Striker", "Goalie"])
    write(tracker.stats, [row("Striker", 100)], tracker)
    assert tracker.flush(20)
    tracker.close()
    write(tracker.stats, [row("Striker", 200), row("Goalie", 100)])  # the store was away: only stats.jsonl
    root = tracker.run_logs.parent
    store = {"tracking": {"uri": f"sqlite:///{tmp_path / 'mlruns.db'}"}}
    (root / "configuration.yaml").write_text(yaml.safe_dump(store))
    assert sync(root) == (2, 2, tracker.run_id)  # the summaries; configuration.yaml and stats.jsonl
    assert history(tracker, f"Striker/{REWARD}") == [(100, 1.0), (200, 1.0)]
    assert history(tracker, f"Goalie/{REWARD}") == [(100, 1.0)]
    assert history(tracker, REWARD) == []
    assert sync(root)[0] == 0  # the replay's check finds each behaviour's points under its own names


def test_compare_names_the_behaviour_to_pass(tmp_path, template, capsys):
    from mlx.tracking import compare

    tracker = open_tracker(tmp_path, template, behaviors=["Striker", "Goalie"])
    write(tracker.stats, two_behaviour_rows(), tracker)
    tracker.finish()
    uri = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlruns.db'}", "--experiment", "exp"]
    assert compare.main(uri) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --behavior Goalie (behaviours: Goalie, Striker)" in err, err
    assert compare.main([*uri, "--behavior", "Keeper"]) == 2
    assert "'Keeper/Environment/Cumulative Reward'" in capsys.readouterr().err
    assert compare.main([*uri, "--behavior", "Striker", "--out", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert f"metric: Striker/{REWARD}" in out and "1000" in out and (tmp_path / "c.png").exists()


# ---- a real two-behaviour run, resumed -----------------------------------------------------------------------
def test_a_walljump_resume_keeps_each_behaviours_curve(workdir):
    """BigWallJump outpaces SmallWallJump; its newest periodic checkpoint (as after a kill past it) is later
    than SmallWallJump's last step: the rows between stay in stats.jsonl, MLflow and the event files, each
    step once."""
    args = ["env=walljump", "env.num_areas=2", "trainer.summary_freq=200", "trainer.checkpoint_interval=400",
            "trainer.hyperparameters.buffer_size=256", "trainer.hyperparameters.batch_size=64",
            "trainer.network_settings.hidden_units=16", "trainer.network_settings.num_layers=1",
            "trainer.time_horizon=32", "seed=1", "progress=plain", "run_id=w"]  # fmt: skip
    first = run_mlx(*args, "trainer.max_steps=600", "behaviors.SmallWallJump.max_steps=600", cwd=workdir)
    assert first.returncode == 0, first.stderr[-3000:]
    root = workdir / "results" / "w"
    stats = root / "run_logs" / "stats.jsonl"
    before = read_rows(stats)
    small = max(r["step"] for r in before if r["behavior"] == "SmallWallJump")
    big = root / "BigWallJump"
    last = max(r["step"] for r in before if r["behavior"] == "BigWallJump")
    saved = max(int(p.stem.rsplit("-", 1)[1]) for p in big.glob("BigWallJump-*.pt") if not p.stem.endswith(f"-{last}"))
    shutil.copyfile(big / f"BigWallJump-{saved}.pt", big / "checkpoint.pt")
    assert small < saved < last
    more = ["trainer.max_steps=800", "++behaviors.SmallWallJump.max_steps=800"]
    resumed = run_mlx("run_id=w", "resume=true", *more, cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"BigWallJump. Resuming from step {saved}" in resumed.stdout
    assert f"SmallWallJump. Resuming from step {small}" in resumed.stdout
    after = read_rows(stats)
    cut = {"SmallWallJump": small, "BigWallJump": saved}
    for name, step in cut.items():
        kept = [r for r in before if r["behavior"] == name and r["step"] <= step]
        mine = [r for r in after if r["behavior"] == name]
        assert mine[: len(kept)] == kept, name  # nothing up to its own checkpoint lost
        steps = [r["step"] for r in mine]
        assert steps == sorted(set(steps)) and steps[-1] > step, name  # each step once, and on from there
        assert_folder_matches(root / name, stats)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    run_id = json.loads((root / "run_logs" / SYNC_FILE).read_text())["run_id"]
    for name in cut:
        points = sorted((m.step, m.value) for m in client.get_metric_history(run_id, f"{name}/{PROBE}"))
        assert points == [(r["step"], r["steps_per_sec"]) for r in after if r["behavior"] == name], name
    assert not client.get_metric_history(run_id, PROBE)
