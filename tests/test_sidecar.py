"""MLflow in its own process (mlx.tracking.sidecar): a run tracked through it looks in MLflow as one
tracked in-process; a store it refuses is refused in the same words (once the run asks: it trains while
the child opens the store); its warnings reach the run's console; a lost child costs one warning, never
the run; a child whose run is gone exits. Real SQLite stores, real child processes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlx.config import TrackingSettings
from mlx.errors import TrackingError
from mlx.tracking.sidecar import Sidecar, SidecarTracker, prepare, take_prepared
from mlx.tracking.tracker import MlflowTracker

FAST = {"window": 0.4, "retry_every": 0.3, "busy_timeout": 0.2, "finish_wait": 10.0}


def row(step: int) -> dict:
    return {"behavior": "B", "step": step, "time_elapsed": 1.0, "mean_reward": float(step), "std_reward": 0.0,
            "episodes": 3, "steps_per_sec": 100.0, "Environment/Cumulative Reward": float(step)}  # fmt: skip


def open_tracker(tmp_path: Path, **options: object) -> SidecarTracker:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logs = tmp_path / "run" / "run_logs"
    logs.mkdir(parents=True, exist_ok=True)
    sidecar = Sidecar(uri, "exp")
    return SidecarTracker(
        sidecar, TrackingSettings(uri=uri), "exp", "run", {"mlx.run_id": "run"}, None, run_logs=logs,
        **{**FAST, **options},
    )  # fmt: skip


def test_a_run_tracked_through_the_sidecar_is_in_mlflow_as_ever(tmp_path: Path):
    tracker = open_tracker(tmp_path, params={"trainer.hyperparameters.batch_size": 64})
    assert tracker.run_id and tracker.experiment_id
    for step in (100, 200, 300):
        tracker.log_summary(row(step))
    policy = tmp_path / "run" / "B.onnx"
    policy.write_bytes(b"not really onnx")
    tracker.log_artifact(policy)
    assert tracker.flush(20)
    tracker.finish("FINISHED")
    assert tracker.sidecar.proc.returncode == 0  # the child ended with the run's tracking
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["mlx.run_id"] == "run"
    assert run.data.params == {"trainer.hyperparameters.batch_size": "64"}
    history = client.get_metric_history(tracker.run_id, "Environment/Cumulative Reward")
    assert [(m.step, m.value) for m in history] == [(100, 100.0), (200, 200.0), (300, 300.0)]
    assert [f.path for f in client.list_artifacts(tracker.run_id)] == ["B.onnx"]


def test_an_unusable_store_is_refused_in_the_in_process_trackers_words(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'mlflow.db'}"
    with pytest.raises(TrackingError) as here:
        MlflowTracker(TrackingSettings(uri=uri), "exp", "run", {}, **FAST)
    sidecar = Sidecar(uri, "exp")
    tracker = SidecarTracker(sidecar, TrackingSettings(uri=uri), "exp", "run", {}, None, **FAST)
    tracker.log_summary(row(100))  # sent while the child opens the store: dropped once it is refused
    with pytest.raises(TrackingError) as there:
        tracker.started()  # the run polls without waiting after each update, and waits at the end
    assert str(there.value) == str(here.value)
    assert sidecar.proc.poll() is not None  # refused: the child is ended, nothing waits on it


def test_the_childs_warnings_reach_the_runs_console(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sidecar = Sidecar(uri, "exp")
    tracker = SidecarTracker(sidecar, TrackingSettings(uri=uri), "exp", "run", {}, "0" * 32, **FAST)
    tracker.finish("FINISHED")
    err = capsys.readouterr().err
    assert f"[WARNING] MLflow run {'0' * 32} is not in" in err  # said in the child, printed here


def test_a_lost_child_costs_one_warning_and_never_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    tracker = open_tracker(tmp_path)
    tracker.sidecar.proc.kill()
    tracker.sidecar.proc.wait()
    deadline = time.monotonic() + 10
    while not tracker.sidecar.gone and time.monotonic() < deadline:
        time.sleep(0.05)
    for step in (100, 200):
        tracker.log_summary(row(step))
    tracker.log_artifact(tmp_path / "anything")
    tracker.finish("FINISHED")
    err = capsys.readouterr().err
    assert err.count("[WARNING] The MLflow tracking process ended") == 1
    assert f"python -m mlx.tracking sync {tmp_path / 'run'}" in err


def test_a_child_whose_run_is_gone_exits(tmp_path: Path):
    tracker = open_tracker(tmp_path)
    tracker.log_summary(row(100))
    assert tracker.sidecar.proc.stdin is not None
    tracker.sidecar.proc.stdin.close()  # what the run's death (kill -9) does to the child's stdin
    assert tracker.sidecar.proc.wait(20) == 0


def test_a_prepared_child_serves_only_its_store(tmp_path: Path):
    prepare(f"sqlite:///{tmp_path / 'a.db'}", "exp")
    assert take_prepared(f"sqlite:///{tmp_path / 'b.db'}") is None  # another store: that child is ended
    assert take_prepared(f"sqlite:///{tmp_path / 'a.db'}") is None  # and none is left
    prepare(f"sqlite:///{tmp_path / 'a.db'}", "exp")
    sidecar = take_prepared(f"sqlite:///{tmp_path / 'a.db'}")
    assert sidecar is not None
    sidecar.close()
    assert sidecar.proc.returncode == 0
