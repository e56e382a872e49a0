"""Sweeps end to end, as a user runs them (`python -m mlx -m ...` in subprocesses, tiny 3DBall budgets):
a grid through the joblib launcher nested under one MLflow parent and compared; an Optuna search that
prunes, records its best, and survives a SIGKILL; bad sweep input refused in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from mlx.sweep.search import checkpoint_step
from tests.conftest import mlx_command, run_mlx

optuna.logging.set_verbosity(optuna.logging.WARNING)

TINY = [
    "env=3dball",
    "env.num_areas=4",
    "trainer.hyperparameters.buffer_size=400",
    "trainer.hyperparameters.batch_size=50",
    "trainer.summary_freq=400",
    "trainer.max_steps=2000",
    "tracking.log_checkpoints=false",
    "progress=plain",
]


def mlflow_runs(uri: str, experiment: str = "3dball") -> list:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    return client.search_runs([exp.experiment_id], max_results=1000)


def split_parent(runs: list, sweep_id: str | None = None) -> tuple:
    parents = [r for r in runs if r.data.tags.get("mlx.sweep_role") == "parent"]
    if sweep_id is not None:
        parents = [r for r in parents if r.data.tags.get("mlx.sweep_id") == sweep_id]
    assert len(parents) == 1, [p.info.run_name for p in parents]
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def test_grid_runs_as_children_of_one_parent_in_parallel_and_compare_plots_them(workdir):
    proc = run_mlx(
        "-m",
        "seed=1,2",
        "trainer.hyperparameters.learning_rate=1e-4,3e-3",
        *TINY,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        cwd=workdir,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    parent, children = split_parent(mlflow_runs(f"sqlite:///{workdir}/mlflow.db"))
    sweep_id = parent.data.tags["mlx.sweep_id"]
    assert parent.info.status == "FINISHED" and parent.info.run_name == sweep_id
    assert len(children) == 4
    combos = set()
    for child in children:
        tags, params = child.data.tags, child.data.params
        assert child.info.status == "FINISHED"
        assert tags["mlx.sweep_id"] == sweep_id
        lr, seed = params["trainer.hyperparameters.learning_rate"], params["seed"]
        overrides = tags["mlx.overrides"].split()
        assert f"seed={seed}" in overrides and f"trainer.hyperparameters.learning_rate={float(lr):g}" in overrides
        assert not any(o.startswith("tracking.parent_run_id") for o in overrides)
        combos.add((float(lr), int(seed)))
        assert child.info.run_name == f"seed={seed},learning_rate={float(lr):g}"  # named by its swept values
    assert combos == {(1e-4, 1), (1e-4, 2), (3e-3, 1), (3e-3, 2)}
    # Each job its own run_id and results folder, none shared.
    run_ids = sorted(c.data.tags["mlx.run_id"] for c in children)
    assert run_ids == [f"{sweep_id}-{i}" for i in range(4)]
    for run_id in run_ids:
        rows = (workdir / "results" / run_id / "run_logs" / "stats.jsonl").read_text().splitlines()
        assert [json.loads(r)["step"] for r in rows] == [400, 800, 1200, 1600, 2000]

    out = workdir / "curves.png"
    cmp = subprocess.run(
        [*mlx_command()[:2], "mlx.tracking.compare", "--sweep", sweep_id, "--out", str(out)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cmp.returncode == 0, cmp.stderr
    lines = cmp.stdout.splitlines()
    assert lines[0].startswith("4 runs in 2 groups")
    rows = [ln for ln in lines if ln.startswith("learning_rate=")]
    assert sorted(r.split()[0] for r in rows) == ["learning_rate=0.0001", "learning_rate=0.003"]
    for row in rows:
        cells = row.split()
        assert cells[1] == "2" and cells[3] == "±" and cells[-1] == "1,2", row
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


SWEEP = """\
# @package _global_
defaults:
  - override /env: 3dball
  - override /trainer: ppo
env:
  num_areas: 4
trainer:
  max_steps: 3000
  summary_freq: 500
  checkpoint_interval: 1000
  keep_checkpoints: 2
  hyperparameters:
    buffer_size: 500
    batch_size: 50
progress: plain
tracking:
  log_checkpoints: false
sweep:
  study_name: tiny_ppo
  storage: sqlite:///optuna.db
  objective: {type: mean_reward, last_n: 2}
  n_trials: 12
  sampler: {type: random, seed: 0}
  pruner: {type: median, n_startup_trials: 2, n_warmup_steps: 0}
  search_space:
    trainer.hyperparameters.learning_rate: {type: float, low: 1.0e-6, high: 3.0e-2, log: true}
    trainer.hyperparameters.num_epoch: {type: int, low: 1, high: 6}
"""


def study_trials(workdir: Path) -> list:
    from sqlalchemy.exc import IntegrityError, OperationalError

    url = f"sqlite:///{workdir}/optuna.db"
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 30}})
    except (OperationalError, IntegrityError):  # the worker is creating the tables right now: look again later
        return []
    try:
        study_id = storage.get_study_id_from_name("tiny_ppo")
    except KeyError:
        return []
    finally:
        storage.remove_session()
    return storage.get_all_trials(study_id)


def kill_mid_trial(workdir: Path, log_path: Path) -> list:
    """Start a worker, SIGKILL it once 3 trials are done and the running one has a checkpoint; return the
    trials the kill left RUNNING (empty when the kill landed between two trials)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            mlx_command("-m", "sweep=tiny_ppo"), cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            trials = study_trials(workdir) if (workdir / "optuna.db").exists() else []
            running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
            if sum(t.state.is_finished() for t in trials) >= 3 and running:
                run_id = running[0].user_attrs.get("mlx.run_id")
                if run_id and checkpoint_step(workdir / "results", run_id) is not None:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and proc.returncode is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the worker was not killed mid-sweep: {log_path.read_text()[-3000:]}"
    return [t for t in study_trials(workdir) if t.state == optuna.trial.TrialState.RUNNING]


def test_optuna_sweep_prunes_records_best_and_resumes_after_sigkill(workdir):
    (workdir / "sweeps").mkdir()
    (workdir / "sweeps" / "tiny_ppo.yaml").write_text(SWEEP)
    killed: list = []
    resumable = None
    for attempt in range(3):  # a kill can land between two trials, or before a new one's first checkpoint
        left = kill_mid_trial(workdir, workdir / f"killed{attempt}.log")
        killed += left
        with_checkpoint = [t for t in left if checkpoint_step(workdir / "results", t.user_attrs["mlx.run_id"])]
        if with_checkpoint:
            resumable = with_checkpoint[0]
            break
    assert resumable is not None, "no kill landed in a trial with a checkpoint"

    rerun = run_mlx("-m", "sweep=tiny_ppo", cwd=workdir, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    trials = study_trials(workdir)
    states = optuna.trial.TrialState
    originals = [t for t in trials if "mlx.retry_of" not in t.user_attrs]
    assert len(originals) == 12  # n_trials: kills cost no slot
    killed_numbers = sorted(t.number for t in killed)
    assert sorted(t.number for t in trials if t.user_attrs.get("mlx.killed")) == killed_numbers
    assert all(t.state == states.FAIL for t in trials if t.number in killed_numbers)
    retries = {t.user_attrs["mlx.retry_of"]: t for t in trials if "mlx.retry_of" in t.user_attrs}
    assert sorted(retries) == killed_numbers  # one retry each, same values, same folder
    for dead in killed:
        assert retries[dead.number].params == dead.params
        assert retries[dead.number].user_attrs["mlx.run_id"] == dead.user_attrs["mlx.run_id"]
    assert all(t.state in (states.COMPLETE, states.PRUNED) for t in trials if t.number not in killed_numbers)
    pruned = [t for t in trials if t.state == states.PRUNED]
    assert pruned, "the median pruner pruned nothing"
    for t in pruned:  # each stopped at the summary it was pruned at (possibly the last one)
        rows = (workdir / "results" / t.user_attrs["mlx.run_id"] / "run_logs" / "stats.jsonl").read_text()
        assert json.loads(rows.splitlines()[-1])["step"] == max(t.intermediate_values)
    assert any(max(t.intermediate_values) < 3000 for t in pruned), "no trial was stopped before max_steps"

    # The retry resumed the killed trial's folder: one continuous curve, no step twice.
    run_id = resumable.user_attrs["mlx.run_id"]
    launched = [ln for ln in (rerun.stdout + rerun.stderr).splitlines() if f"run_id={run_id} " in ln]
    assert launched and "resume=true" in launched[0], launched
    rows = (workdir / "results" / run_id / "run_logs" / "stats.jsonl").read_text().splitlines()
    steps = [json.loads(r)["step"] for r in rows]
    assert steps == list(range(500, steps[-1] + 1, 500))
    # Every trial ran exactly once: one results folder per original trial, one MLflow child run each.
    folders = sorted(p.name for p in (workdir / "results").iterdir() if p.name.startswith("tiny_ppo-trial"))
    assert folders == sorted(t.user_attrs["mlx.run_id"] for t in originals)
    parent, children = split_parent(mlflow_runs(f"sqlite:///{workdir}/mlflow.db"), "tiny_ppo")
    restarted = [c for c in children if c.data.tags.get("mlx.trial_state") == "KILLED"]  # killed before a checkpoint
    assert all(
        c.info.status == "KILLED" and c.data.tags.get("mlx.run_id", c.info.run_name) in folders for c in restarted
    )
    children = [c for c in children if c not in restarted]
    assert sorted(c.data.tags.get("mlx.run_id", c.info.run_name) for c in children) == folders
    final = {t.number: t for t in trials}
    for child in children:
        trial = final[int(child.data.tags["mlx.trial"])]
        lr = child.data.params["trainer.hyperparameters.learning_rate"]
        assert child.info.run_name.startswith(
            f"trial{child.data.tags['mlx.trial']} "
        ) or child.info.run_name.startswith(
            f"trial{trial.user_attrs.get('mlx.retry_of')} "
        )  # the trial (or the trial it retries) and its sampled values
        assert float(child.info.run_name.split("learning_rate=")[1].split(",")[0]) == pytest.approx(float(lr))
        assert child.data.tags["mlx.trial_state"] == trial.state.name and child.info.status == "FINISHED"
    # The best trial is recorded: in the study, the parent run and a reusable experiment config.
    best = yaml.safe_load((workdir / "results" / "sweeps" / "tiny_ppo" / "best_overrides.yaml").read_text())
    study_best = max((t for t in trials if t.state == states.COMPLETE), key=lambda t: t.value)
    assert best["best_trial"] == study_best.number and best["value"] == pytest.approx(study_best.value)
    assert parent.data.metrics["best_value"] == pytest.approx(study_best.value)
    experiment = workdir / "results" / "sweeps" / "tiny_ppo" / "experiment" / "tiny_ppo_best.yaml"
    text = experiment.read_text()
    assert text.startswith("# @package _global_") and "override /trainer: ppo" in text
    lr = study_best.params["trainer.hyperparameters.learning_rate"]
    shown = run_mlx("-cd", str(experiment.parent.parent), "experiment=tiny_ppo_best", "--cfg", "job", cwd=workdir)
    resolved = yaml.safe_load(shown.stdout)
    assert resolved["trainer"]["hyperparameters"]["learning_rate"] == pytest.approx(lr)
    assert resolved["trainer"]["max_steps"] == 500000  # the tuned full budget, not the sweep's


BAD = [
    # (overrides, words the one line must contain)
    (
        ["-m", "sweep=3dball_ppo", "+sweep.search_space.trainer.hyperparameters.learnin_rate=[0.1,0.2]"],
        ["learnin_rate"],
    ),
    (["-m", "sweep=3dball_ppo", "sweep.search_space=null"], ["search_space is empty"]),
    (["-m", "sweep=3dball_ppo", "sweep.storage=nosuch://db"], ["sweep.storage", "nosuch"]),
    (["-m", "sweep=3dball_ppo", "sweep.direction=maximise"], ["sweep.direction", "maximize or minimize"]),
    (["-m", "sweep=3dball_ppo", "sweep.pruner.type=patient"], ["sweep.pruner.type", "median"]),
    (["-m", "sweep=nope"], ["sweep/nope", "3dball_ppo"]),
    (["sweep=3dball_ppo"], ["-m"]),
]


@pytest.mark.parametrize(("overrides", "words"), BAD, ids=[" ".join(b[0][1:] or b[0]) for b in BAD])
def test_bad_sweeps_are_refused_with_one_clear_line(workdir, overrides, words):
    proc = run_mlx(*overrides, "tracking=none", cwd=workdir, timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mlx: error: ")
    for word in words:
        assert word in lines[0], lines[0]
    assert not (workdir / "optuna.db").exists()  # refused before the study was opened
    assert not list(workdir.glob("results/*/3DBall/checkpoint.pt"))  # nothing trained
