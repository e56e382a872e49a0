"""A run folder owns its files (issue 17, classes 2-4 and the OS part of 10): one writer at a time (the
lock), checkpoint paths relative to the run folder and rotation inside it, a copied folder is a run of
its own, every ending but a crash of mlx keeps the work, and OS problems are one line."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch

from mlx.errors import EnvDisconnected, RunError, Stopped, TrainingError, describe
from mlx.training.checkpoints import checkpoint_file, owned
from mlx.training.lock import LOCK_NAME, RunLock
from mlx.training.stops import TRACKING_DIR, deferred_stop
from tests.conftest import TINY_3DBALL, run_mlx, start_mlx

# A small 3DBall run: 4 areas (a summary every 100 env steps at summary_freq=400).
TINY = [*TINY_3DBALL, "trainer.summary_freq=400"]
SAC = [
    "trainer=sac",
    "env=3dball",
    "env.num_areas=4",
    "trainer.hyperparameters.buffer_size=1000",
    "trainer.hyperparameters.batch_size=32",
    "trainer.hyperparameters.save_replay_buffer=true",
    "progress=plain",
]


# ---- helpers ------------------------------------------------------------------------------------
def compose_cfg(results: Path, *overrides: str):
    """The DictConfig `python -m mlx <overrides>` would run, composed in-process (no start-up cost)."""
    from hydra import compose, initialize_config_dir

    from mlx.config import CONF_DIR, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[*TINY, "tracking=none", f"results_dir={results}", *overrides])


def train(results: Path, *overrides: str) -> float | None:
    from mlx.training.run import run

    return run(compose_cfg(results, *overrides))


def digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links not followed) and the sha256 of its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def status_of(root: Path) -> dict:
    return json.loads((root / "run_logs" / "training_status.json").read_text())


def checkpoint_steps(root: Path) -> list[int]:
    return [c["steps"] for c in status_of(root).get("3DBall", {}).get("checkpoints", [])]


def stats_steps(root: Path) -> list[int]:
    path = root / "run_logs" / "stats.jsonl"
    if not path.exists():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (json.JSONDecodeError, KeyError):
            continue  # a row being written
    return steps


def saved_step(root: Path) -> int:
    """The step of checkpoint.pt, what resume loads."""
    from mlx.training.checkpoints import load_checkpoint

    return int(load_checkpoint(root / "3DBall" / "checkpoint.pt")["trainer"]["step"])


def start(workdir: Path, *args: str) -> subprocess.Popen[str]:
    return start_mlx(*args, cwd=workdir)


def wait_for(predicate, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mlx: error: "), stderr[-3000:]
    return lines[0]


# ---- training_status.json paths and rotation ----------------------------------------------------
@pytest.mark.parametrize(
    "stored, expected",
    [
        ("3DBall/3DBall-800.pt", "3DBall/3DBall-800.pt"),  # mlx's own entries: relative to the run folder
        ("/somewhere/results/a/3DBall/3DBall-800.pt", "3DBall/3DBall-800.pt"),  # older absolute entries
        ("results/a/3DBall/3DBall-800.pt", "3DBall/3DBall-800.pt"),  # ML-Agents' cwd-relative entries
        ("../../other/3DBall/3DBall-800.pt", "3DBall/3DBall-800.pt"),  # climbing out maps in, by name
        ("../../etc/passwd", None),  # not a checkpoint: never a file to delete
        ("3DBall/checkpoint.pt", None),  # the newest checkpoint is not rotated through the status
        ("", None),
        ("..", None),
    ],
)
def test_status_entries_name_files_inside_the_run_folder(tmp_path, stored, expected):
    got = checkpoint_file(tmp_path, "3DBall", stored)
    assert (None if got is None else got.relative_to(tmp_path).as_posix()) == expected


def test_owned_resolves_links(tmp_path):
    root, other = tmp_path / "a", tmp_path / "b"
    (root / "3DBall").mkdir(parents=True)
    (other / "3DBall").mkdir(parents=True)
    (other / "3DBall" / "3DBall-5.pt").write_bytes(b"x")
    (root / "3DBall" / "3DBall-5.pt").symlink_to(other / "3DBall" / "3DBall-5.pt")
    assert not owned(root, root / "3DBall" / "3DBall-5.pt")
    assert owned(root, root / "3DBall" / "3DBall-6.pt")


@pytest.mark.parametrize("legacy", [False, True], ids=["relative", "legacy-absolute-paths"])
def test_a_copied_run_folder_resumes_as_its_own_run(tmp_path, legacy):
    """cp -r results/a results/b; run_id=b resume=true: a's files are untouched (rotation in b only, even
    with the absolute paths older versions stored) and b gets a new MLflow run, a's stays as it was."""
    from mlflow.tracking import MlflowClient

    results, uri = tmp_path / "results", f"sqlite:///{tmp_path / 'mlruns.db'}"
    common = ["trainer.checkpoint_interval=400", "trainer.keep_checkpoints=1", "tracking=mlflow", f"tracking.uri={uri}"]
    train(results, *common, "run_id=a", "trainer.max_steps=800")
    a, b = results / "a", results / "b"
    shutil.copytree(a, b)
    if legacy:  # what this version's predecessors wrote: the original's paths, absolute
        status = status_of(b)
        for entry in status["3DBall"]["checkpoints"]:
            entry["file_path"] = str(a.resolve() / entry["file_path"])
        status["metadata"].pop("run_folder")
        (b / "run_logs" / "training_status.json").write_text(json.dumps(status))
    before = digest(a)
    a_mlflow = status_of(a)["metadata"]["mlflow_run_id"]
    client = MlflowClient(tracking_uri=uri)
    a_history = [(m.step, m.value) for m in client.get_metric_history(a_mlflow, "Environment/Cumulative Reward")]

    train(results, *common, "run_id=b", "resume=true", "trainer.max_steps=1600")

    assert digest(a) == before
    assert checkpoint_steps(b) == [1600] and not (b / "3DBall" / "3DBall-800.pt").exists()
    meta = status_of(b)["metadata"]
    assert meta["mlflow_run_id"] != a_mlflow and meta["run_folder"] == str(b.resolve())
    assert status_of(b)["3DBall"]["checkpoints"][0]["file_path"] == "3DBall/3DBall-1600.pt"
    assert client.get_run(a_mlflow).info.status == "FINISHED"
    assert [(m.step, m.value) for m in client.get_metric_history(a_mlflow, "Environment/Cumulative Reward")] == (
        a_history
    )
    assert client.get_run(meta["mlflow_run_id"]).info.status == "FINISHED"

    # The same folder resumed again keeps its (new) MLflow run.
    train(results, *common, "run_id=b", "resume=true", "trainer.max_steps=2000")
    assert status_of(b)["metadata"]["mlflow_run_id"] == meta["mlflow_run_id"]


def test_rotation_does_not_follow_a_link_out_of_the_run_folder(tmp_path):
    results = tmp_path / "results"
    common = ["trainer.checkpoint_interval=400", "trainer.keep_checkpoints=1"]
    train(results, *common, "run_id=victim", "trainer.max_steps=400")
    train(results, *common, "run_id=a", "trainer.max_steps=400")
    listed = results / "a" / "3DBall" / "3DBall-400.pt"
    listed.unlink()
    listed.symlink_to(results / "victim" / "3DBall" / "3DBall-400.pt")
    before = digest(results / "victim")
    train(results, *common, "run_id=a", "resume=true", "trainer.max_steps=800")
    assert digest(results / "victim") == before
    assert checkpoint_steps(results / "a") == [800]


# ---- the lock -----------------------------------------------------------------------------------
def test_the_lock_refuses_a_second_holder_until_released(tmp_path):
    first = RunLock.acquire(tmp_path / "run", "x")
    with pytest.raises(RunError) as err:
        RunLock.acquire(tmp_path / "run", "x")
    assert f"run_id 'x' is being written by process {os.getpid()} since " in str(err.value)
    assert "stop it or choose another run_id" in str(err.value)
    first.release()
    first.release()  # idempotent
    RunLock.acquire(tmp_path / "run", "x").release()
    assert (tmp_path / "run" / LOCK_NAME).read_bytes() == b""  # emptied, not removed


def test_force_and_resume_are_refused_while_a_run_writes_the_folder(tmp_path):
    """In-process: the lock is taken before force deletes anything, and the live folder is untouched."""
    results = tmp_path / "results"
    train(results, "run_id=live", "trainer.max_steps=400")
    before = digest(results / "live")
    holder = RunLock.acquire(results / "live", "live")  # the live writer
    try:
        for extra in ("force=true", "resume=true"):
            with pytest.raises(RunError, match=rf"being written by process {os.getpid()}"):
                train(results, "run_id=live", "trainer.max_steps=800", extra)
        with pytest.raises(RunError, match="already exists"):  # refused before the lock is even asked
            train(results, "run_id=live", "trainer.max_steps=800")
    finally:
        holder.release()
    after = digest(results / "live")
    after.pop(LOCK_NAME), before.pop(LOCK_NAME)
    assert after == before


def test_a_new_run_refused_after_taking_the_lock_leaves_no_folder(tmp_path, monkeypatch):
    """The lock comes before the env starts (its logs go to the run folder); a start the env then refuses
    leaves nothing behind, not even the lock file or the folder made for it."""
    import mlx.training.run as run_module
    from mlx.errors import ConfigError

    def open_env(cfg, logs):
        raise ConfigError("env.parameters.mass: refused")

    monkeypatch.setattr(run_module, "open_env", open_env)
    with pytest.raises(ConfigError):
        train(tmp_path / "results", "run_id=x", "trainer.max_steps=400")
    assert not (tmp_path / "results" / "x").exists()


def test_a_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(workdir):
    """A real run in a subprocess; resume=true on it exits 2 with one line naming its PID (force=true, in
    process for speed, is refused the same way before deleting anything); after kill -9 (no checkpoint
    yet: the default checkpoint_interval) resume takes the lock over and starts the folder's run from step 0."""
    args = [*TINY, "trainer.max_steps=10000000", "run_id=live", "tracking=none"]
    root = workdir / "results" / "live"
    proc = start(workdir, *args)
    try:
        wait_for(lambda: len(stats_steps(root)) >= 2, proc)
        refused = run_mlx(*args, "resume=true", cwd=workdir)
        assert refused.returncode == 2
        line = one_error_line(refused.stderr)
        assert f"run_id 'live' is being written by process {proc.pid} since" in line, line
        with pytest.raises(RunError, match=rf"run_id 'live' is being written by process {proc.pid} since"):
            train(workdir / "results", "run_id=live", "force=true")
        assert proc.poll() is None and (root / "configuration.yaml").exists()  # the live run goes on
        rows = len(stats_steps(root))
        wait_for(lambda: len(stats_steps(root)) > rows, proc)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    train(workdir / "results", "run_id=live", "resume=true", "trainer.max_steps=800")
    assert checkpoint_steps(root) == [800] and stats_steps(root) == [400, 800]


# ---- endings that keep the work -----------------------------------------------------------------
def test_sighup_saves_and_stops_like_ctrl_c(workdir):
    """A closed terminal: SIGHUP (sent twice, as the kernel and the shell each send it) saves a
    checkpoint no older than the last summary before it, exits 129, and resume continues from it."""
    args = [*TINY, "trainer.max_steps=10000000", "run_id=hup", "tracking=none"]
    root = workdir / "results" / "hup"
    proc = start(workdir, *args)
    wait_for(lambda: len(stats_steps(root)) >= 2, proc)
    last = stats_steps(root)[-1]
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.05)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGHUP, err[-2000:]
    assert "SIGHUP: stopping after this step" in err and "Interrupted: saved" in out
    assert "continue with run_id=hup resume=true" in out
    saved = saved_step(root)
    assert saved >= last and checkpoint_steps(root) == [saved]
    train(workdir / "results", "run_id=hup", "resume=true", f"trainer.max_steps={saved + 800}")
    steps = stats_steps(root)
    assert steps == sorted(set(steps)) and steps[-1] >= saved + 400


def test_sigterm_while_the_env_starts_saves_step_0_and_resume_works(tmp_path, monkeypatch, capsys):
    """The README's case: a run stopped right after its start (here while its env starts) still leaves a
    checkpoint, at step 0, and the hint it prints resumes it (no "nothing to resume", no "already exists")."""
    import mlx.training.run as run_module

    real_open_env = run_module.open_env

    def open_env(cfg, logs):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the env is being made
        return real_open_env(cfg, logs)

    monkeypatch.setattr(run_module, "open_env", open_env)
    results = tmp_path / "results"
    with pytest.raises(Stopped) as stop:
        train(results, "run_id=early", "trainer.max_steps=4000")
    assert stop.value.signum == signal.SIGTERM
    assert "Interrupted: saved" in capsys.readouterr().out
    root = results / "early"
    assert checkpoint_steps(root) == [0] and saved_step(root) == 0
    monkeypatch.setattr(run_module, "open_env", real_open_env)
    train(results, "run_id=early", "resume=true", "trainer.max_steps=800")
    assert stats_steps(root) == [400, 800]


def test_resume_without_a_checkpoint_starts_the_folder_over(tmp_path, capsys):
    """A run that ended before its first checkpoint (here: a crash in a summary hook, which saves
    nothing) is resumed from step 0 in its own folder, with a line saying so."""
    from mlx.training.run import run

    results = tmp_path / "results"

    def crash(name, step, mean):
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        run(compose_cfg(results, "run_id=early", "trainer.max_steps=4000"), on_summary=crash)
    root = results / "early"
    assert (root / "configuration.yaml").exists() and not (root / "3DBall" / "checkpoint.pt").exists()
    capsys.readouterr()
    train(results, "run_id=early", "resume=true", "trainer.max_steps=800")
    out = capsys.readouterr().out
    assert f"3DBall. No checkpoint in {root / '3DBall'}: training starts from step 0" in out
    assert stats_steps(root) == [400, 800] and checkpoint_steps(root) == [800]


def _tracking_failure() -> Exception:
    """An exception escaping the tracker (a store that stays unusable): raised from code in mlx.tracking."""
    namespace: dict = {}
    code = "def fail():\n    raise RuntimeError('the tracking store went away')\n"
    exec(compile(code, str(TRACKING_DIR / "tracker.py"), "exec"), namespace)  # noqa: S102 - a frame in mlx.tracking
    try:
        namespace["fail"]()
    except RuntimeError as exc:
        return exc
    raise AssertionError


@pytest.mark.parametrize(
    "where, make, saves",
    [
        ("env", lambda: EnvDisconnected("the env exceeded its restart limit (3 restarts)"), True),
        ("tracker", _tracking_failure, True),
        ("env", lambda: TrainingError("the env sent a non-finite observation; the last checkpoint is kept"), False),
        ("env", lambda: ValueError("a bug in mlx"), False),
    ],
    ids=["env-restart-limit", "tracking-failure", "training-error", "bug"],
)
def test_a_failure_mid_run_saves_first_unless_the_state_is_suspect(tmp_path, monkeypatch, where, make, saves):
    """The run fails after its checkpoint at 400, at step 600: EnvError and tracking failures save step 600
    first and re-raise; a TrainingError (NaN) keeps the last good checkpoint, as does a bug."""
    import mlx.training.run as run_module
    from mlx.tracking.tracker import Tracker

    calls = {"n": 0}
    real_open_env = run_module.open_env

    def open_env(cfg, logs):
        env, params = real_open_env(cfg, logs)
        real_step = env.step

        def step():
            calls["n"] += 1
            if where == "env" and calls["n"] == 151:  # 4 areas: agent step 600
                raise make()
            real_step()

        env.step = step
        return env, params

    def log_summary(self, row):
        if row["step"] >= 600:
            raise make()

    monkeypatch.setattr(run_module, "open_env", open_env)
    monkeypatch.setattr(Tracker, "log_summary", log_summary)
    results = tmp_path / "results"
    with pytest.raises(type(make())):
        train(
            results, "run_id=f", "trainer.max_steps=4000", "trainer.checkpoint_interval=400", "trainer.summary_freq=200"
        )
    root = results / "f"
    assert checkpoint_steps(root) == ([400, 600] if saves else [400])
    assert saved_step(root) == (600 if saves else 400)
    assert RunLock.acquire(root, "f")  # released


# ---- OS problems --------------------------------------------------------------------------------
def test_a_file_as_results_dir_is_one_line(workdir):
    (workdir / "afile").write_text("")
    proc = run_mlx(*TINY, "trainer.max_steps=400", "run_id=x", "tracking=none", "results_dir=afile", cwd=workdir)
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert "cannot write the run folder" in line and "afile" in line and "choose another results_dir" in line


@pytest.mark.parametrize(
    "code, fix",
    [
        (errno.EACCES, "choose a results_dir you can write"),
        (errno.EROFS, "choose a results_dir on a writable file system"),
        (errno.ENOSPC, "free some space"),
    ],
)
def test_an_unwritable_results_dir_is_one_line_and_writes_nothing(tmp_path, monkeypatch, code, fix):
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.is_relative_to(tmp_path / "results"):
            raise OSError(code, os.strerror(code), str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(RunError) as err:
        train(tmp_path / "results", "run_id=x", "trainer.max_steps=400")
    line = describe(err.value)
    assert "\n" not in line and os.strerror(code) in line and fix in line and "results/x" in line
    assert not (tmp_path / "results").exists()


def test_results_dir_under_a_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(RunError, match="cannot write the run folder .*a part of the path is a file"):
        train(tmp_path / "afile" / "results", "run_id=x", "trainer.max_steps=400")


@pytest.mark.parametrize("phase", ["step-file", "checkpoint.pt", "replay-buffer", "stats"])
def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch, phase):
    """ENOSPC while a part of the checkpoint at 800 (or the summary at 1200) is written: one line, no .tmp
    left, the previous checkpoint stays what resume loads, and the run resumes once there is space."""
    import numpy as np

    import mlx.training.summaries as summaries

    real_save, real_savez, real_open = torch.save, np.savez, open
    tmp_names = {"step-file": ".3DBall-800.pt.tmp", "checkpoint.pt": ".checkpoint.pt.tmp"}
    full, buffers = {"on": True}, []

    def enospc(path):
        Path(path).write_bytes(b"partial")  # what a full disk leaves: part of the file
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    def save(obj, path, *args, **kwargs):
        name = Path(path).name
        at_800 = isinstance(obj, dict) and obj.get("trainer", {}).get("step", 0) >= 800
        if full["on"] and at_800 and name == tmp_names.get(phase):
            enospc(path)
        return real_save(obj, path, *args, **kwargs)

    def savez(path, *args, **kwargs):
        buffers.append(path)
        if full["on"] and phase == "replay-buffer" and len(buffers) == 2:  # the buffer saved at step 800
            enospc(path)
        return real_savez(path, *args, **kwargs)

    def stats_open(path, mode="r", *args, **kwargs):
        if full["on"] and phase == "stats" and len(stats_steps(Path(path).parents[1])) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(np, "savez", savez)
    monkeypatch.setattr(summaries, "open", stats_open, raising=False)
    results = tmp_path / "results"
    args = [*SAC, "run_id=full", "trainer.checkpoint_interval=400", "trainer.keep_checkpoints=5"]
    with pytest.raises(RunError) as err:
        train(results, *args, "trainer.max_steps=2000")
    line = describe(err.value)
    assert "\n" not in line and "No space left on device" in line and "free some space" in line
    root = results / "full"
    assert not [p for p in root.rglob("*.tmp")]
    kept = 800 if phase == "stats" else 400  # the summary at 1200 fails: the checkpoint at 800 is kept
    assert checkpoint_steps(root)[-1] == kept and saved_step(root) == kept
    assert (root / "3DBall" / "3DBall-800.pt").exists() == (phase == "stats")
    full["on"] = False
    train(results, *args, "resume=true", "trainer.max_steps=1200")
    assert checkpoint_steps(root) == [400, 800, 1200] and stats_steps(root) == [400, 800, 1200]


# ---- signals ------------------------------------------------------------------------------------
def test_deferred_stop_takes_each_signal_between_steps():
    event, seen = threading.Event(), []
    with deferred_stop(event, seen.append):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert event.is_set() and seen == [signal.SIGTERM]
        os.kill(os.getpid(), signal.SIGTERM)  # repeated: ignored, the stop is under way
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.01)
        assert seen == [signal.SIGTERM]
        with pytest.raises(Stopped) as stop:  # a second Ctrl-C stops at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        assert stop.value.at_once and stop.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# ---- SIGTERM at a random moment (acceptance) ----------------------------------------------------
SUMMARY = 200  # the resolution of the measurement: a stats row every 200 steps
TRIALS = list(range(20))
DEFAULT_TRIALS = [0]  # the default suite's version: one PPO and one SAC trial


@pytest.fixture(scope="module")
def sibling(tmp_path_factory) -> Path:
    """A finished run beside the trials: no trial may touch a byte of it."""
    workdir = tmp_path_factory.mktemp("sigterm")
    proc = run_mlx(
        *TINY,
        "trainer.max_steps=800",
        "trainer.checkpoint_interval=400",
        "run_id=sibling",
        "tracking=none",
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stderr
    return workdir


def sigterm_trial(workdir: Path, trainer: str, seed: int) -> dict:
    """Start a run and SIGTERM it at a random moment of the run: a random delay after the run began (its
    folder's lock taken: the env, set-up and training follow), then resume it to the end. The moment is
    measured by the last stats.jsonl row on disk just before the signal is sent: the run was at least
    that far when the signal arrived, so the checkpoint must be at least there too. (Before the lock,
    during interpreter start-up and composing, there is no run whose work could be lost.)"""
    rng = random.Random(f"{trainer}-{seed}")
    base = SAC if trainer == "sac" else TINY
    run_id = f"{trainer}-{seed}"
    root = workdir / "results" / run_id
    args = [*base, f"seed={seed}", f"trainer.summary_freq={SUMMARY}", f"run_id={run_id}", "tracking=none"]
    sibling_before = digest(workdir / "results" / "sibling")
    proc = start(workdir, *args, "trainer.max_steps=10000000")
    wait_for(lambda: (root / LOCK_NAME).exists(), proc)
    delay = rng.uniform(0.0, 6.0)
    time.sleep(delay)
    assert proc.poll() is None
    recorded = max(stats_steps(root), default=0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert (root / "configuration.yaml").exists()  # a signal during the env's start stops at step 0
    saved = saved_step(root)
    assert saved >= recorded, (saved, recorded)
    assert checkpoint_steps(root)[-1] == saved
    assert f"continue with run_id={run_id} resume=true" in out
    resume = ["resume=true", f"trainer.max_steps={saved + 2 * SUMMARY}"]
    resumed = run_mlx(*args, *resume, cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first = re.search(r"\[INFO\] 3DBall\. Step: (\d+)\.", resumed.stdout)
    assert first and int(first.group(1)) == (saved // SUMMARY + 1) * SUMMARY  # continued from the saved step
    # every summary_freq step once, and each session's final summary (at the step it stopped at) once
    final = checkpoint_steps(root)[-1]
    every = range(SUMMARY, saved + 2 * SUMMARY + 1, SUMMARY)
    assert stats_steps(root) == sorted({*every, *([saved] if saved else []), final})
    assert digest(workdir / "results" / "sibling") == sibling_before
    return {"delay": round(delay, 2), "recorded": recorded, "saved": saved, "rc": proc.returncode}


@pytest.mark.parametrize(
    "trainer, seed",
    [
        pytest.param(t, s, id=f"{t}-{s}", marks=() if s in DEFAULT_TRIALS else pytest.mark.slow)
        for t in ("ppo", "sac")
        for s in TRIALS
    ],
)
def test_sigterm_at_a_random_moment_loses_nothing(sibling, trainer, seed):
    result = sigterm_trial(sibling, trainer, seed)
    print(f"SIGTERM trial {trainer}-{seed}: {result}")
