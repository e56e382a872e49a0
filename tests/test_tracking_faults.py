"""The tracking store as a fault: unusable stores refused in one line, a locked store that never stops
training nor loses a summary, no duplicate points after resume, `python -m mlx.tracking sync`, and
passwords redacted everywhere. Real SQLite MLflow stores in tmp_path; nothing of MLflow is mocked."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlx.config import TrackingSettings
from mlx.errors import RunError, TrackingError, fail
from mlx.tracking.secrets import redact, redact_tree
from mlx.tracking.store import is_transient
from mlx.tracking.sync import main as sync_main
from mlx.tracking.sync import sync
from mlx.tracking.tracker import PROBE, SYNC_FILE, MlflowTracker, read_rows, row_metrics
from mlx.training.checkpoints import truncate_stats
from tests.conftest import TINY_3DBALL, run_mlx

FAST = {"window": 0.4, "retry_every": 0.3, "busy_timeout": 0.2, "finish_wait": 5.0}


# ---- helpers ----------------------------------------------------------------------------------
def uri_of(path: Path) -> str:
    return f"sqlite:///{path}"


TEMPLATE: list[Path] = []  # a migrated MLflow store, copied for each test: MLflow's migrations take seconds


def open_tracker(tmp_path: Path, resume: str | None = None, **options: object) -> MlflowTracker:
    db = tmp_path / "mlruns.db"
    if TEMPLATE and not db.exists():
        shutil.copy(TEMPLATE[0], db)
    settings = TrackingSettings(uri=uri_of(db))
    logs = tmp_path / "run" / "run_logs"
    logs.mkdir(parents=True, exist_ok=True)
    return MlflowTracker(settings, "exp", "run", {"mlx.run_id": "run"}, resume, run_logs=logs, **{**FAST, **options})


def row(step: int, value: float = 1.0, behavior: str = "B") -> dict:
    return {
        "behavior": behavior,
        "step": step,
        "time_elapsed": step / 100,
        "mean_reward": value,
        "std_reward": 0.5,
        "episodes": 3,
        "steps_per_sec": round(100 + step / 7, 1),
        "Environment/Cumulative Reward": value,
        "Policy/Entropy": 1.25,
    }


def summary(tracker: MlflowTracker, step: int, value: float = 1.0) -> float:
    """What Summaries.write does: the row to stats.jsonl, then to the tracker; returns the call's seconds."""
    stats = tracker.stats
    assert stats is not None
    with open(stats, "a") as f:
        f.write(json.dumps(row(step, value)) + "\n")
    start = time.monotonic()
    tracker.log_summary(row(step, value))
    return time.monotonic() - start


def history(tmp_path: Path, run_id: str, key: str = "Environment/Cumulative Reward") -> list[tuple[int, float]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri_of(tmp_path / "mlruns.db"))
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def client_of(tmp_path: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri_of(tmp_path / "mlruns.db"))


@contextlib.contextmanager
def locked(db: Path, seconds: float | None = None) -> Iterator[threading.Event]:
    """An exclusive SQLite lock on db, held by another thread until the block ends (or `seconds`)."""
    release = threading.Event()
    taken = threading.Event()

    def hold() -> None:
        con = sqlite3.connect(db, isolation_level=None, timeout=30)
        con.execute("BEGIN EXCLUSIVE")
        taken.set()
        release.wait(seconds)
        con.execute("ROLLBACK")
        con.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(30)
    try:
        yield release
    finally:
        release.set()
        thread.join(30)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """path read-only, also for root (who ignores permission bits): chattr +i."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode:
            pytest.skip("root without chattr: cannot make a file read-only")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)])
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MLflow SQLite store with one run (MLflow's migrations take a moment: made once)."""
    folder = tmp_path_factory.mktemp("store")
    tracker = open_tracker(folder)
    tracker.finish()
    return folder / "mlruns.db"


@pytest.fixture(autouse=True)
def template(good_db: Path) -> Iterator[None]:
    TEMPLATE[:] = [good_db]
    yield
    TEMPLATE.clear()


# ---- start: unusable stores, one line ----------------------------------------------------------
def _corrupt(tmp: Path, good: Path) -> str:
    (tmp / "x.db").write_bytes(os.urandom(8192))
    return uri_of(tmp / "x.db")


def _truncated(tmp: Path, good: Path) -> str:
    data = good.read_bytes()
    (tmp / "x.db").write_bytes(data[: len(data) // 3])
    return uri_of(tmp / "x.db")


def _text_file(tmp: Path, good: Path) -> str:
    (tmp / "x.db").write_text("not a database\n")
    return uri_of(tmp / "x.db")


def _folder(tmp: Path, good: Path) -> str:
    (tmp / "x.db").mkdir()
    return uri_of(tmp / "x.db")


def _missing_dir(tmp: Path, good: Path) -> str:
    return uri_of(tmp / "no" / "such" / "x.db")


def _parent_is_file(tmp: Path, good: Path) -> str:
    (tmp / "file").write_text("")
    return uri_of(tmp / "file" / "x.db")


START_CASES = {
    "corrupt db": (_corrupt, "not a SQLite database"),
    "truncated db": (_truncated, "damaged"),
    "text file as db": (_text_file, "not a SQLite database"),
    "folder as db": (_folder, "is a folder"),
    "missing directory": (_missing_dir, "does not exist"),
    "parent is a file": (_parent_is_file, "is not a folder"),
    "unknown scheme": (lambda tmp, good: "foo://user:pw@host/x", "no store for scheme 'foo'"),
    "typo in scheme": (lambda tmp, good: "sqllite:///mlruns.db", "no store for scheme 'sqllite'"),
    "empty uri": (lambda tmp, good: " ", "tracking.uri is empty"),
    "host:port without scheme": (lambda tmp, good: "localhost:5000", "write http://localhost:5000"),
}


@pytest.mark.parametrize("case", list(START_CASES))
def test_an_unusable_store_is_refused_in_one_line(case, tmp_path, good_db):
    make, expected = START_CASES[case]
    uri = make(tmp_path, good_db)
    with pytest.raises(TrackingError) as info:
        MlflowTracker(TrackingSettings(uri=uri), "exp", "run", {}, run_logs=tmp_path, **FAST)
    text = str(info.value)
    assert "\n" not in text and len(text) < 400, text
    assert expected in text and "tracking.uri" in text and "tracking=none" in text, text
    assert "pw@" not in text  # the password of a URI never shows


def test_the_schemes_accepted_without_importing_mlflow_are_all_mlflow_stores():
    from mlx.tracking.store import BUILTIN_SCHEMES, known_schemes

    assert known_schemes() >= BUILTIN_SCHEMES


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_store_is_refused_in_one_line(what, tmp_path, good_db):
    shutil.copy(good_db, tmp_path / "mlruns.db")
    target = tmp_path / "mlruns.db" if what == "file" else tmp_path
    with read_only(target), pytest.raises(TrackingError) as info:
        MlflowTracker(TrackingSettings(uri=uri_of(tmp_path / "mlruns.db")), "exp", "run", {}, **FAST)
    assert "read-only" in str(info.value) and "tracking=none" in str(info.value)


def test_a_store_locked_for_longer_than_the_start_window_is_refused_in_one_line(tmp_path, good_db):
    shutil.copy(good_db, tmp_path / "mlruns.db")
    with locked(tmp_path / "mlruns.db"), pytest.raises(TrackingError) as info:
        open_tracker(tmp_path, start_window=0.5)
    assert "did not answer" in str(info.value) and "\n" not in str(info.value)


def test_an_unreachable_server_is_refused_with_its_password_redacted(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    uri = f"http://alice:hunter2@127.0.0.1:{port}"
    with pytest.raises(TrackingError) as info:
        MlflowTracker(TrackingSettings(uri=uri), "exp", "run", {}, **{**FAST, "start_window": 0.3})
    text = str(info.value)
    assert "hunter2" not in text and "alice:***@127.0.0.1" in text and "\n" not in text


# ---- resumed runs the store lost ---------------------------------------------------------------
@pytest.mark.parametrize("how", ["deleted", "unknown id"])
def test_resume_of_a_run_missing_from_the_store_starts_a_new_one(how, tmp_path, capsys):
    first = open_tracker(tmp_path, params={"lr": 0.1})
    for step in (100, 200, 300):
        summary(first, step)
    first.finish("KILLED")
    old = first.run_id if how == "deleted" else "0" * 32
    if how == "deleted":
        client_of(tmp_path).delete_run(old)
    truncate_stats(first.stats, 200)
    again = open_tracker(tmp_path, old, resume_step=200, params={"lr": 0.1})
    summary(again, 300, 3.0)
    again.finish()
    err = capsys.readouterr().err
    assert err.count("[WARNING]") == 1 and f"MLflow run {old} is not in" in err
    assert again.run_id != old
    assert history(tmp_path, again.run_id) == [(100, 1.0), (200, 1.0), (300, 3.0)]  # the whole record, once
    assert client_of(tmp_path).get_run(again.run_id).data.params == {"lr": "0.1"}
    assert json.loads((again.run_logs / SYNC_FILE).read_text())["run_id"] == again.run_id


# ---- mid-run: a locked store -------------------------------------------------------------------
def test_a_locked_store_mid_run_warns_once_never_blocks_and_loses_nothing(tmp_path, capsys):
    import logging

    logged: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = logged.append  # type: ignore[method-assign]
    logging.getLogger("mlflow.store.db.utils").addHandler(handler)
    tracker = open_tracker(tmp_path)
    for step in (1, 2, 3):
        summary(tracker, step)
    assert tracker.flush(10)
    slowest = 0.0
    with locked(tmp_path / "mlruns.db"):
        for step in range(4, 12):
            slowest = max(slowest, summary(tracker, step))
            time.sleep(0.3)  # training goes on while the store is locked (2.4 s: past the 0.4 s window)
    assert tracker.flush(20)
    for step in (12, 13):
        summary(tracker, step)
    tracker.finish()
    out, err = capsys.readouterr()
    assert slowest < 0.15  # the training thread never waits on the store (a call waits 0.2 s on the lock)
    assert err.count("[WARNING]") == 1 and "unreachable" in err and "database is locked" in err, err
    assert out.count("answers again") == 1
    assert history(tmp_path, tracker.run_id) == [(s, 1.0) for s in range(1, 14)]
    assert [s for s, _ in history(tmp_path, tracker.run_id, PROBE)] == list(range(1, 14))
    assert json.loads((tracker.run_logs / SYNC_FILE).read_text())["sent"] == {"B": 13}
    assert client_of(tmp_path).get_run(tracker.run_id).info.status == "FINISHED"
    logging.getLogger("mlflow.store.db.utils").removeHandler(handler)
    assert not [r for r in logged if r.levelno >= logging.ERROR]  # no MLflow traceback per failed call


def test_a_store_locked_past_the_end_keeps_the_records_for_sync(tmp_path, capsys):
    tracker = open_tracker(tmp_path, finish_wait=1.0)
    summary(tracker, 1)
    assert tracker.flush(10)
    root = tracker.run_logs.parent
    (root / "configuration.yaml").write_text("tracking:\n  uri: " + uri_of(tmp_path / "mlruns.db") + "\n")
    with locked(tmp_path / "mlruns.db"):
        for step in (2, 3, 4):
            summary(tracker, step)
        (root / "B.onnx").write_bytes(b"onnx")
        tracker.log_artifact(root / "B.onnx")
        tracker.finish("FINISHED")
    err = capsys.readouterr().err
    assert f"python -m mlx.tracking sync {root}" in err and err.count("[WARNING]") == 2  # unreachable; not sent
    state = json.loads((tracker.run_logs / SYNC_FILE).read_text())
    assert state["sent"] == {"B": 1} and state["end_status"] == "FINISHED"
    assert client_of(tmp_path).get_run(tracker.run_id).info.status == "RUNNING"
    assert sync_main([str(root)]) == 0
    assert history(tmp_path, tracker.run_id) == [(s, 1.0) for s in range(1, 5)]
    client = client_of(tmp_path)
    assert client.get_run(tracker.run_id).info.status == "FINISHED"
    names = {f.path for f in client.list_artifacts(tracker.run_id)}
    assert {"B.onnx", "configuration.yaml"} <= names
    assert sync(root) == (0, 0, tracker.run_id)  # idempotent: nothing more to send
    assert history(tmp_path, tracker.run_id) == [(s, 1.0) for s in range(1, 5)]


def test_a_store_that_refuses_for_good_warns_once_and_training_goes_on(tmp_path, capsys):
    tracker = open_tracker(tmp_path)
    summary(tracker, 1)
    assert tracker.flush(10)
    client_of(tmp_path).delete_run(tracker.run_id)  # e.g. someone deletes the run in the UI mid-training
    for step in (2, 3, 4):
        summary(tracker, step)
    tracker.finish()
    err = capsys.readouterr().err
    assert "MLflow refused a call" in err and "python -m mlx.tracking sync" in err
    assert all(len(line) < 600 for line in err.splitlines())
    assert json.loads((tracker.run_logs / SYNC_FILE).read_text())["sent"] == {"B": 1}


# ---- resume: no duplicate points --------------------------------------------------------------
def test_resume_removes_points_logged_after_the_checkpoint(tmp_path):
    first = open_tracker(tmp_path)
    for step in range(400, 2001, 400):
        summary(first, step, 1.0)
    assert first.flush(10)
    first.close()  # killed: no end recorded
    truncate_stats(first.stats, 1200)  # what restore() does for a checkpoint at 1200
    again = open_tracker(tmp_path, first.run_id, resume_step=1200)
    for step in range(1600, 2401, 400):
        summary(again, step, 2.0)
    again.finish()
    expected = [(400, 1.0), (800, 1.0), (1200, 1.0), (1600, 2.0), (2000, 2.0), (2400, 2.0)]
    assert again.run_id == first.run_id
    for key in row_metrics(row(0)):
        assert [s for s, _ in history(tmp_path, first.run_id, key)] == [s for s, _ in expected], key
    assert history(tmp_path, first.run_id) == expected
    latest = client_of(tmp_path).get_run(first.run_id).data.metrics
    assert latest["Environment/Cumulative Reward"] == 2.0


def test_resume_replays_summaries_the_killed_process_never_sent(tmp_path):
    first = open_tracker(tmp_path)
    summary(first, 100)
    assert first.flush(10)
    first.close()
    with open(first.stats, "a") as f:  # written to stats.jsonl while the store was away, then killed
        for step in (200, 300, 400):
            f.write(json.dumps(row(step)) + "\n")
        f.write('{"behavior": "B", "st')  # a line cut short by the kill
    truncate_stats(first.stats, 300)
    again = open_tracker(tmp_path, first.run_id, resume_step=300)
    summary(again, 400, 4.0)
    again.finish()
    assert history(tmp_path, first.run_id) == [(100, 1.0), (200, 1.0), (300, 1.0), (400, 4.0)]


def test_a_replay_sends_nothing_mlflow_already_has_even_without_the_cursor(tmp_path):
    tracker = open_tracker(tmp_path)
    for step in (1, 2, 3):
        summary(tracker, step)
    tracker.finish()
    root = tracker.run_logs.parent
    (root / "configuration.yaml").write_text(yaml.safe_dump({"tracking": {"uri": uri_of(tmp_path / "mlruns.db")}}))
    state = json.loads((tracker.run_logs / SYNC_FILE).read_text())
    state["sent"] = {}  # a process killed between MLflow's commit and the cursor's write
    (tracker.run_logs / SYNC_FILE).write_text(json.dumps(state))
    sent, _, run_id = sync(root)
    assert sent == 0 and run_id == tracker.run_id
    assert history(tmp_path, tracker.run_id) == [(1, 1.0), (2, 1.0), (3, 1.0)]


# ---- sync: bad input --------------------------------------------------------------------------
def test_sync_of_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    assert sync_main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a run folder" in err


def test_sync_refuses_a_redacted_uri_and_says_where_the_secret_goes(tmp_path, capsys):
    (tmp_path / "run_logs").mkdir()
    (tmp_path / "configuration.yaml").write_text("tracking:\n  uri: postgresql://u:***@db/mlflow\n")
    assert sync_main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--tracking-uri" in err and "MLFLOW_TRACKING_URI" in err and err.count("\n") == 1


def test_python_m_mlx_tracking_names_its_commands():
    from mlx.tracking.__main__ import main

    assert main(["nope"]) == 2 and main([]) == 2 and main(["--help"]) == 0


# ---- secrets ----------------------------------------------------------------------------------
REDACT_CASES = [
    ("postgresql://user:secret@host/db", "postgresql://user:***@host/db"),
    ("postgresql+psycopg2://user:secret@host:5432/db", "postgresql+psycopg2://user:***@host:5432/db"),
    (
        "mysql+pymysql://root:hunter2@db:3306/mlflow?charset=utf8",
        "mysql+pymysql://root:***@db:3306/mlflow?charset=utf8",
    ),
    ("http://user:pw@host:5000", "http://user:***@host:5000"),
    ("https://u:p%40ss@h/x?token=abc&x=1", "https://u:***@h/x?token=***&x=1"),
    ("http://user:p@ss@host/x", "http://user:***@host/x"),
    ("s3://b/p?X-Amz-Signature=abcd&X-Amz-Credential=k", "s3://b/p?X-Amz-Signature=***&X-Amz-Credential=***"),
    ("ws://h?access_key=AKIA&secret_key=zz", "ws://h?access_key=***&secret_key=***"),
    ("Driver=x;Server=h;Password=pw;Uid=u", "Driver=x;Server=h;Password=***;Uid=u"),
    ("sqlite:///db?api_key=k&mode=ro", "sqlite:///db?api_key=***&mode=ro"),
    ("x db_password=zz;", "x db_password=***;"),
    (
        "error at tracking.uri=http://a:b@c and postgresql://u:v@w/d",
        "error at tracking.uri=http://a:***@c and postgresql://u:***@w/d",
    ),
    ("'postgresql://u:pw@h/db'", "'postgresql://u:***@h/db'"),
    # nothing secret: unchanged
    ("sqlite:///mlruns.db", "sqlite:///mlruns.db"),
    ("http://host:5000", "http://host:5000"),
    ("postgresql://user@host/db", "postgresql://user@host/db"),
    ("http://host:5000?email=a@b", "http://host:5000?email=a@b"),
    ("journal:///optuna.log", "journal:///optuna.log"),
    ("bypass=1 key=value", "bypass=1 key=value"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), REDACT_CASES)
def test_redact(text, expected):
    assert redact(text) == expected
    assert redact(redact(text)) == expected  # idempotent


def test_redact_tree_masks_every_string_and_keeps_the_rest():
    tree = {"tracking": {"uri": "http://u:pw@h", "tags": {}}, "n": 3, "l": ["x?token=t", 1.5, None], "t": ("a:b",)}
    assert redact_tree(tree) == {"tracking": {"uri": "http://u:***@h", "tags": {}}, "n": 3,
                                 "l": ["x?token=***", 1.5, None], "t": ("a:b",)}  # fmt: skip
    assert tree["tracking"]["uri"] == "http://u:pw@h"  # a copy


def test_params_tags_and_the_uploaded_configuration_are_redacted(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    config = root / "configuration.yaml"
    secret = {"tracking": {"uri": "postgresql://u:s3cret@db/mlflow"}, "sweep": {"storage": "mysql://a:b0b@h/o"}}
    config.write_text(yaml.safe_dump(secret))
    params = {"tracking.uri": "postgresql://u:s3cret@db/mlflow", "sweep.storage": "mysql://a:b0b@h/o", "lr": 3}
    shutil.copy(TEMPLATE[0], tmp_path / "mlruns.db")
    settings = TrackingSettings(uri=uri_of(tmp_path / "mlruns.db"))
    tracker = MlflowTracker(settings, "exp", "run", {"mlx.overrides": "tracking.uri=http://x:tok@h"},
                            run_logs=root, params=params, config=config, **FAST)  # fmt: skip
    tracker.finish()
    client = client_of(tmp_path)
    run = client.get_run(tracker.run_id)
    assert run.data.params == {"tracking.uri": "postgresql://u:***@db/mlflow", "sweep.storage": "mysql://a:***@h/o",
                               "lr": "3"}  # fmt: skip
    assert run.data.tags["mlx.overrides"] == "tracking.uri=http://x:***@h"
    uploaded = Path(client.download_artifacts(tracker.run_id, "configuration.yaml", str(tmp_path)))
    text = uploaded.read_text()
    assert "s3cret" not in text and "b0b" not in text and "u:***@db" in text
    assert "s3cret" in config.read_text()  # the run folder's own file is the base for resume: kept as it is


def test_a_user_error_line_is_redacted(capsys):
    with pytest.raises(SystemExit):
        fail(RunError("cannot reach postgresql://me:topsecret@db/x"))
    err = capsys.readouterr().err
    assert "topsecret" not in err and "me:***@db" in err


def test_a_sweep_parent_run_logs_redacted_params_and_refuses_an_unusable_store(tmp_path):
    from mlx.sweep.tracking import open_parent_run

    shutil.copy(TEMPLATE[0], tmp_path / "mlruns.db")
    settings = TrackingSettings(uri=uri_of(tmp_path / "mlruns.db"))
    parent = open_parent_run(settings, "exp", "sw", "optuna", {"sweep.storage": "postgresql://o:pw9@h/db"})
    assert parent is not None
    assert client_of(tmp_path).get_run(parent.run_id).data.params == {"sweep.storage": "postgresql://o:***@h/db"}
    with pytest.raises(TrackingError):
        open_parent_run(TrackingSettings(uri="nope://x"), "exp", "sw", "grid", {})


# ---- classification and rows ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (sqlite3.OperationalError("database is locked"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("read timed out"), True),
        (RuntimeError("API request failed: Max retries exceeded with url"), True),
        (RuntimeError("API request failed with response code 503"), True),
        (sqlite3.DatabaseError("database disk image is malformed"), False),
        (sqlite3.OperationalError("attempt to write a readonly database"), False),
        (ValueError("Run '0' not found"), False),
    ],
)
def test_is_transient(exc, transient):
    assert is_transient(exc) is transient
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = exc
    assert is_transient(wrapped) is transient


def test_row_metrics_are_what_a_summary_logged_before():
    metrics = row_metrics(row(400, 2.5))
    assert metrics == {
        "Environment/Cumulative Reward": 2.5,
        "Policy/Entropy": 1.25,
        "Environment/Cumulative Reward Std": 0.5,
        "Environment/Steps Per Second": row(400)["steps_per_sec"],
    }
    no_episode = {**row(1), "mean_reward": None, "std_reward": None, "Environment/Cumulative Reward": None}
    assert "Environment/Cumulative Reward Std" not in row_metrics(no_episode)


def test_read_rows_skips_garbage(tmp_path):
    path = tmp_path / "stats.jsonl"
    path.write_bytes(b'{"behavior": "B", "step": 1}\n\xff\xfe\n[1, 2]\n{"behavior": 3, "step": 1}\n{"behav')
    assert read_rows(path) == [{"behavior": "B", "step": 1}]


# ---- end to end -------------------------------------------------------------------------------
TINY = [*TINY_3DBALL]


@pytest.mark.slow
def test_a_run_with_a_password_in_an_unreachable_tracking_uri_prints_it_nowhere(workdir):
    """~25 s: the start retries an unreachable server for 10 s (in-process version: the test above)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_mlx(*TINY, "trainer.max_steps=400", "run_id=pw", f"tracking.uri=http://bob:sw0rdfish@127.0.0.1:{port}",
                   cwd=workdir)  # fmt: skip
    assert proc.returncode == 2
    assert "sw0rdfish" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlx: error: tracking.uri=http://bob:***@127.0.0.1"), proc.stderr


@pytest.mark.slow
def test_a_store_locked_for_60_s_mid_run_loses_no_summary_and_duplicates_none(workdir):
    """Acceptance: a real PPO 3DBall run; another process holds an exclusive lock on mlruns.db for 60 s
    mid-run; training goes on, and MLflow ends with every summary exactly once."""
    # ~4000 steps/s on a laptop core: 400k steps outlast the lock, 200 summaries
    args = [*TINY, "trainer.summary_freq=2000", "trainer.checkpoint_interval=50000", "trainer.max_steps=400000",
            "run_id=locked", "tracking.uri=sqlite:///mlruns.db"]  # fmt: skip
    root = workdir / "results" / "locked"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "mlx", *args], cwd=workdir, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    stats = root / "run_logs" / "stats.jsonl"
    deadline = time.monotonic() + 120
    while not (stats.exists() and len(read_rows(stats)) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
         "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60); c.execute('ROLLBACK')",
         str(workdir / "mlruns.db")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    at_lock = len(read_rows(stats))
    holder.wait(120)
    during = len(read_rows(stats)) - at_lock
    assert proc.poll() is None, "the run ended before the lock: raise max_steps"
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert during >= 3, "training did not go on while the store was locked"
    (workdir / "out.txt").write_text(out + "\n----\n" + err)
    assert err.count("[WARNING] MLflow store unreachable") == 1, err
    assert "Traceback" not in err and "[SQL:" not in err, err[-3000:]
    assert "answers again" in out, out[-3000:]
    rows = read_rows(stats)
    run_id = json.loads((root / "run_logs" / "training_status.json").read_text())["metadata"]["mlflow_run_id"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns.db'}")
    for key in ("Environment/Cumulative Reward", PROBE, "Policy/Entropy"):
        steps = sorted(m.step for m in client.get_metric_history(run_id, key))
        assert steps == [
            r["step"] for r in rows if key != "Environment/Cumulative Reward" or r["mean_reward"] is not None
        ]
    assert client.get_run(run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_a_run_killed_past_its_checkpoint_then_resumed_has_every_step_once_in_mlflow(workdir):
    """A real run killed (SIGKILL) after summaries past its last checkpoint, then resumed: the killed
    process's points after the checkpoint are gone, the resumed run's are there, each step once."""
    import signal

    args = [*TINY, "trainer.summary_freq=400", "trainer.checkpoint_interval=2000", "trainer.max_steps=200000",
            "run_id=dup", "tracking.uri=sqlite:///mlruns.db"]  # fmt: skip
    root = workdir / "results" / "dup"
    status_path = root / "run_logs" / "training_status.json"
    proc = subprocess.Popen([sys.executable, "-m", "mlx", *args], cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"))  # fmt: skip
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:  # a checkpoint, then summaries past it, sent to MLflow
            status = json.loads(status_path.read_text()) if status_path.exists() else {}
            ckpts = status.get("3DBall", {}).get("checkpoints", [])
            sync_file = root / "run_logs" / SYNC_FILE
            sent = json.loads(sync_file.read_text()).get("sent", {}).get("3DBall", 0) if sync_file.exists() else 0
            if ckpts and sent % 2000 >= 800:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    last_ckpt = max(c["steps"] for c in json.loads(status_path.read_text())["3DBall"]["checkpoints"])
    run_id = json.loads(status_path.read_text())["metadata"]["mlflow_run_id"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns.db'}")
    before = sorted(m.step for m in client.get_metric_history(run_id, PROBE))
    assert before[-1] > last_ckpt, (before, last_ckpt)  # the killed process logged points past the checkpoint
    end = last_ckpt + 4000
    resumed = run_mlx(*args[:-3], f"trainer.max_steps={end}", "run_id=dup", "resume=true",
                      "tracking.uri=sqlite:///mlruns.db", cwd=workdir)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    rows = read_rows(root / "run_logs" / "stats.jsonl")
    assert [r["step"] for r in rows] == list(range(400, end + 1, 400))
    after = sorted(m.step for m in client.get_metric_history(run_id, PROBE))
    assert after == [r["step"] for r in rows]  # every summary once
    values = {m.step: m.value for m in client.get_metric_history(run_id, PROBE)}
    assert all(values[r["step"]] == r["steps_per_sec"] for r in rows)  # MLflow holds what stats.jsonl holds
