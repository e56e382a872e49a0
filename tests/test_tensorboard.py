"""TensorBoard event files (mlx.tracking.tensorboard), read back with TensorBoard's own reader: ML-Agents' tags
at the summary steps with stats.jsonl's values, the settings as text, resume without a step twice, and which
`tracking=` choice writes them."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2

from mlx.config import TrackingSettings, validate
from mlx.errors import ConfigError
from mlx.tracking.base import Tracker, Trackers, read_rows
from mlx.tracking.tensorboard import (
    HIDDEN,
    PREFIX,
    TEXT_TAG,
    TensorboardTracker,
    crc32c,
    event,
    frame,
    read_events,
    records,
    scalar_value,
    settings_text,
    text_value,
)
from mlx.tracking.tracker import MlflowTracker, make_tracker
from tests.conftest import TINY_3DBALL, compose_tree, run_mlx, start_mlx

RUN = [*TINY_3DBALL, "trainer.summary_freq=500", "trainer.checkpoint_interval=2000"]
SETTINGS = {"trainer_type": "ppo", "hyperparameters": {"batch_size": 50, "learning_rate": 0.0003}, "max_steps": 10}


def accumulator(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})  # 0: keep every point
    acc.Reload()
    return acc


def statistics(row: dict) -> dict[str, float]:
    """The ML-Agents statistics of a stats.jsonl row (what TensorBoard gets), as float32 like TensorBoard."""
    skip = {"behavior", "step", "time_elapsed", "mean_reward", "std_reward", "episodes", "steps_per_sec"}
    skip |= {"mean_group_reward", *HIDDEN}
    return {k: float(np.float32(v)) for k, v in row.items() if k not in skip and isinstance(v, float | int)}


def assert_matches_stats(folder: Path, stats: Path) -> None:
    """Every statistic of every stats.jsonl row is a TensorBoard scalar at the row's step, once, with its
    value; TensorBoard has nothing else."""
    rows = read_rows(stats)
    assert rows
    acc = accumulator(folder)
    expected: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for tag, value in statistics(row).items():
            expected.setdefault(tag, []).append((row["step"], value))
    assert sorted(acc.Tags()["scalars"]) == sorted(expected)
    for tag, points in expected.items():
        assert [(e.step, e.value) for e in acc.Scalars(tag)] == points, tag


# ---- the file format ---------------------------------------------------------------------------------------
def test_crc32c_and_tfrecord_framing():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(b"") == 0
    blob = frame(b"first") + frame(b"second")
    assert [data for _, data in records(blob)] == [b"first", b"second"]
    assert [data for _, data in records(blob[:-3])] == [b"first"]  # a record cut short by a kill is left out
    damaged = bytearray(blob)
    damaged[len(frame(b"first")) + 9] ^= 0xFF  # the second record's length CRC
    assert [data for _, data in records(bytes(damaged))] == [b"first"]


def test_events_parse_as_tensorboards_own_protobuf_messages():
    scalar = event_pb2.Event.FromString(event(12000, values=[scalar_value("Policy/Entropy", 1.25)], wall_time=5.5))
    assert (scalar.step, scalar.wall_time) == (12000, 5.5)
    assert [(v.tag, v.simple_value) for v in scalar.summary.value] == [("Policy/Entropy", 1.25)]
    huge = event_pb2.Event.FromString(event(1, values=[scalar_value("x", 1e39), scalar_value("y", -1e39)]))
    assert [v.simple_value for v in huge.summary.value] == [float("inf"), float("-inf")]
    text = event_pb2.Event.FromString(event(0, values=[text_value(TEXT_TAG, "a:\tb")]))
    (value,) = text.summary.value
    assert value.tag == TEXT_TAG and value.metadata.plugin_data.plugin_name == "text"
    assert value.tensor.dtype == 7 and value.tensor.string_val == [b"a:\tb"]
    assert [d.size for d in value.tensor.tensor_shape.dim] == [1]
    start = event_pb2.Event.FromString(event(7, session_status=1))
    assert start.step == 7 and start.session_log.status == event_pb2.SessionLog.START
    version = event_pb2.Event.FromString(event(0, file_version="brain.Event:2"))
    assert version.file_version == "brain.Event:2" and version.source_metadata.writer == "mlx"


def test_settings_text_is_mlagents_layout():
    text = settings_text({"trainer_type": "ppo", "hyperparameters": {"batch_size": 64}, "memory": None})
    assert text == "\ttrainer_type:\tppo\n\thyperparameters:\t\n\t  batch_size:\t64\n\tmemory:\tNone"


# ---- the tracker in-process ----------------------------------------------------------------------------------
def rows_to(stats: Path, tracker: Tracker, steps: range, offset: float = 0.0) -> None:
    """Summary rows as Summaries writes them: stats.jsonl first, then the tracker."""
    with stats.open("a") as f:
        for step in steps:
            row = {"behavior": "B", "step": step, "time_elapsed": 1.0, "mean_reward": 0.5, "std_reward": 0.1,
                   "episodes": 3, "steps_per_sec": 99.0, "Environment/Cumulative Reward": step / 1000 + offset,
                   "Policy/Entropy": 1.5, "Is Training": 1.0}  # fmt: skip
            f.write(json.dumps(row) + "\n")
            tracker.log_summary(row)


def truncate(stats: Path, step: int) -> None:
    """What a resume does to stats.jsonl (mlx.training.checkpoints.truncate_stats)."""
    kept = [line for line in stats.read_text().splitlines() if json.loads(line)["step"] <= step]
    stats.write_text("".join(line + "\n" for line in kept))


def test_resume_rewinds_the_files_and_records_what_they_lack(tmp_path):
    stats = tmp_path / "run_logs" / "stats.jsonl"
    stats.parent.mkdir()
    first = TensorboardTracker(tmp_path, {"B": SETTINGS})
    rows_to(stats, first, range(100, 501, 100))
    first.finish()
    (old,) = (tmp_path / "B").glob(PREFIX + "*")
    old.write_bytes(old.read_bytes()[:-5])  # the killed process's last record, cut short
    truncate(stats, 300)  # a resume from the checkpoint at step 300
    second = TensorboardTracker(tmp_path, {"B": {**SETTINGS, "max_steps": 20}}, resume_step=300, stats=stats)
    rows_to(stats, second, range(400, 701, 100), offset=10.0)
    second.finish()
    assert_matches_stats(tmp_path / "B", stats)  # 100..700 once, 400.. with the resumed values
    assert "Is Training" not in accumulator(tmp_path / "B").Tags()["scalars"]  # hidden, as upstream does
    events, clean = read_events(old)
    assert clean and max(e.step for e in events) == 300  # the old file itself holds nothing after the checkpoint
    texts = accumulator(tmp_path / "B").Tensors(TEXT_TAG)
    assert [t.step for t in texts] == [0, 300]  # the resumed process's settings at its step
    assert b"max_steps:\t20" in texts[1].tensor_proto.string_val[0]

    # tracking.tensorboard switched on at a resume of a run that wrote no event files: stats.jsonl fills them
    shutil.rmtree(tmp_path / "B")
    truncate(stats, 600)
    third = TensorboardTracker(tmp_path, {"B": SETTINGS}, resume_step=600, stats=stats)
    rows_to(stats, third, range(700, 801, 100), offset=20.0)
    third.finish()
    assert_matches_stats(tmp_path / "B", stats)


def test_a_fresh_run_deletes_event_files_left_in_its_folders(tmp_path, capsys):
    (tmp_path / "B").mkdir()
    stale = tmp_path / "B" / f"{PREFIX}1.host.1.0"
    stale.write_bytes(frame(event(5, values=[scalar_value("Policy/Entropy", 9.0)])))
    tracker = TensorboardTracker(tmp_path, {"B": SETTINGS})
    tracker.finish()
    assert not stale.exists() and "Deleting TensorBoard data" in capsys.readouterr().err
    assert accumulator(tmp_path / "B").Tags()["scalars"] == []


def test_tracking_choices_make_the_trackers_they_name(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    options = {"run_logs": tmp_path / "run_logs", "run_folder": tmp_path, "hyperparameters": {"B": SETTINGS}}
    (tmp_path / "run_logs").mkdir()

    def make(**settings: object) -> Tracker:
        tracker = make_tracker(TrackingSettings(uri=uri, **settings), "exp", "run", {}, None, **options)
        tracker.finish()
        return tracker

    both = make()
    assert isinstance(both, Trackers) and both.run_id is not None
    assert [type(t) for t in both.trackers] == [MlflowTracker, TensorboardTracker]
    assert type(make(tensorboard=False)) is MlflowTracker
    assert type(make(backend="tensorboard")) is TensorboardTracker
    assert type(make(backend="none", tensorboard=True)) is TensorboardTracker
    assert type(make(backend="none", tensorboard=False)) is Tracker


@pytest.mark.parametrize(
    ("overrides", "backend", "tensorboard"),
    [([], "mlflow", True), (["tracking=tensorboard"], "tensorboard", True), (["tracking=none"], "none", False),
     (["tracking.tensorboard=false"], "mlflow", False), (["tracking=none", "tracking.tensorboard=true"], "none", True)],
)  # fmt: skip
def test_the_tracking_group_picks_the_combination(overrides, backend, tensorboard):
    tracking = validate(compose_tree("env=3dball", "run_id=x", *overrides)).tracking
    assert (tracking.backend, tracking.tensorboard) == (backend, tensorboard)


def test_tensorboard_switched_off_under_tracking_tensorboard_is_refused():
    with pytest.raises(ConfigError, match="records nothing; use tracking=none"):
        validate(compose_tree("env=3dball", "run_id=x", "tracking=tensorboard", "tracking.tensorboard=false"))


# ---- real runs -------------------------------------------------------------------------------------------------
def test_a_run_writes_mlagents_tags_at_the_summary_steps(workdir):
    """Default tracking: MLflow and the event file in results/<run>/<Behavior>/, beside the checkpoints."""
    proc = run_mlx(*RUN, "trainer.max_steps=2000", "run_id=a", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = workdir / "results" / "a" / "3DBall"
    (file,) = folder.glob(PREFIX + "*")
    assert (folder / "checkpoint.pt").exists() and (workdir / "mlflow.db").exists()
    assert_matches_stats(folder, workdir / "results" / "a" / "run_logs" / "stats.jsonl")
    tags = accumulator(folder).Tags()["scalars"]
    upstream = ["Environment/Cumulative Reward", "Environment/Episode Length", "Policy/Entropy", "Policy/Learning Rate",
                "Policy/Extrinsic Value Estimate", "Losses/Policy Loss", "Losses/Value Loss"]  # fmt: skip
    assert set(upstream) <= set(tags)
    assert [e.step for e in accumulator(folder).Scalars("Policy/Entropy")] == [500, 1000, 1500, 2000]
    (text,) = accumulator(folder).Tensors(TEXT_TAG)
    assert text.step == 0
    assert b"\ttrainer_type:\tppo\n" in text.tensor_proto.string_val[0]
    assert b"\t  batch_size:\t50\n" in text.tensor_proto.string_val[0]


def test_a_resume_from_a_checkpoint_older_than_the_last_summary_has_each_step_once(workdir):
    """As after a kill past a checkpoint: the run reached 4000, its checkpoint says 2000."""
    args = [*RUN, "tracking=tensorboard", "run_id=r"]
    first = run_mlx(*args, "trainer.max_steps=4000", cwd=workdir)
    assert first.returncode == 0, first.stderr[-2000:]
    folder = workdir / "results" / "r" / "3DBall"
    shutil.copyfile(folder / "3DBall-2000.pt", folder / "checkpoint.pt")
    resumed = run_mlx(*args, "trainer.max_steps=5000", "resume=true", cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming from step 2000" in resumed.stdout
    stats = workdir / "results" / "r" / "run_logs" / "stats.jsonl"
    assert [r["step"] for r in read_rows(stats)] == list(range(500, 5001, 500))
    assert_matches_stats(folder, stats)
    assert len(list(folder.glob(PREFIX + "*"))) == 2  # a file per process, as upstream
    assert not (workdir / "mlflow.db").exists()


def test_tracking_none_writes_no_event_file_and_sweep_jobs_write_their_own(workdir):
    none = run_mlx(*RUN, "trainer.max_steps=1000", "run_id=n", "tracking=none", cwd=workdir)
    assert none.returncode == 0, none.stderr[-2000:]
    assert (workdir / "results" / "n" / "3DBall" / "checkpoint.pt").exists()
    assert not list((workdir / "results").rglob(PREFIX + "*"))
    sweep = run_mlx(
        "-m",
        "trainer.hyperparameters.learning_rate=1e-4,3e-4",
        *RUN,
        "trainer.max_steps=1000",
        "tracking=tensorboard",
        cwd=workdir,
    )
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    jobs = [p.parent for p in (workdir / "results").glob("*/run_logs") if p.parent.name != "n"]
    assert len(jobs) == 2
    for job in jobs:
        assert len(list((job / "3DBall").glob(PREFIX + "*"))) == 1
        assert_matches_stats(job / "3DBall", job / "run_logs" / "stats.jsonl")
    assert not (workdir / "mlflow.db").exists()  # tracking=tensorboard opens no MLflow parent run either


def test_a_killed_run_leaves_a_readable_file_with_every_summary(workdir):
    """SIGKILL mid-run: the event file reads cleanly and holds the summaries stats.jsonl has (each is flushed
    right after its stats.jsonl line, so at most the last one can be missing)."""
    proc = start_mlx(*RUN, "trainer.max_steps=1000000", "run_id=k", "tracking=tensorboard", cwd=workdir)
    stats = workdir / "results" / "k" / "run_logs" / "stats.jsonl"
    deadline = time.monotonic() + 240
    try:
        while len(read_rows(stats)) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    folder = workdir / "results" / "k" / "3DBall"
    (file,) = folder.glob(PREFIX + "*")
    assert read_events(file)[1]  # no record cut short
    steps = [r["step"] for r in read_rows(stats)]
    shown = [e.step for e in accumulator(folder).Scalars("Policy/Entropy")]
    assert shown in (steps, steps[:-1]) and len(shown) >= 3


def test_a_resume_over_garbage_event_files_goes_on(tmp_path):
    """Hostile or damaged files named like event files (random bytes, a record claiming a huge length) are
    left as they are; the resumed run writes its own file."""
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / f"{PREFIX}1.h.1.0").write_bytes(bytes(range(256)) * 20)
    (tmp_path / "B" / f"{PREFIX}2.h.1.0").write_bytes(b"\xff" * 12 + b"\x00" * 100)
    stats = tmp_path / "run_logs" / "stats.jsonl"
    stats.parent.mkdir()
    tracker = TensorboardTracker(tmp_path, {"B": SETTINGS}, resume_step=0, stats=stats)
    rows_to(stats, tracker, range(100, 201, 100))
    tracker.finish()
    assert len(list((tmp_path / "B").glob(PREFIX + "*"))) == 3
