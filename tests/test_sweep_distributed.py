"""Many workers, one study: two `python -m mlx -m sweep=...` processes share an Optuna study in a real
PostgreSQL server on loopback and log to a real MLflow tracking server backed by the same PostgreSQL.
Every trial must run exactly once: one trial number, one results folder, one MLflow child run."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter

import optuna
from mlflow.tracking import MlflowClient

from tests.conftest import mlx_command
from tests.servers import mlflow_server, postgres

N_TRIALS = 8

SWEEP = f"""\
# @package _global_
defaults:
  - override /env: 3dball
  - override /trainer: ppo
env:
  num_areas: 4
trainer:
  max_steps: 2000
  summary_freq: 500
  checkpoint_interval: 1000
  hyperparameters:
    buffer_size: 500
    batch_size: 50
progress: plain
tracking:
  log_checkpoints: false
sweep:
  study_name: shared
  n_trials: {N_TRIALS}
  sampler: {{type: random}}
  pruner: {{type: median, n_startup_trials: 3}}
  search_space:
    trainer.hyperparameters.learning_rate: {{type: float, low: 1.0e-5, high: 1.0e-2, log: true}}
    trainer.hyperparameters.num_epoch: {{type: int, low: 1, high: 4}}
"""


def test_two_workers_share_a_postgres_study_and_an_mlflow_server_each_trial_once(workdir):
    (workdir / "sweeps").mkdir()
    (workdir / "sweeps" / "shared.yaml").write_text(SWEEP)
    (workdir / "artifacts").mkdir()
    with postgres(("optuna", "mlflow")) as pg, mlflow_server(f"{pg}/mlflow", workdir / "artifacts") as tracking:
        storage_url = f"{pg}/optuna"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        logs = [open(workdir / f"worker{i}.log", "w") for i in range(2)]  # noqa: SIM115 - closed below
        try:
            workers = [
                subprocess.Popen(
                    mlx_command("-m", "sweep=shared", f"sweep.storage={storage_url}", f"tracking.uri={tracking}"),
                    cwd=workdir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
                for log in logs
            ]
            codes = [w.wait(timeout=500) for w in workers]
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
                    w.wait()
            for log in logs:
                log.close()
        output = "\n".join((workdir / f"worker{i}.log").read_text()[-3000:] for i in range(2))
        assert codes == [0, 0], output

        storage = optuna.storages.RDBStorage(storage_url)
        trials = storage.get_all_trials(storage.get_study_id_from_name("shared"))
        states = Counter(t.state.name for t in trials)
        assert set(states) <= {"COMPLETE", "PRUNED"}, (states, output)
        # Workers check the budget just before asking, so they may overshoot by a trial each, never lose one.
        assert N_TRIALS <= len(trials) <= N_TRIALS + 1, output
        assert sorted(t.number for t in trials) == list(range(len(trials)))
        pids = {t.system_attrs["mlx:worker"]["pid"] for t in trials}
        assert pids == {w.pid for w in workers}, "both workers should have run trials"

        # Exactly once: one results folder per trial, each with one unbroken curve.
        run_ids = [t.user_attrs["mlx.run_id"] for t in trials]
        assert sorted(run_ids) == sorted(f"shared-trial{t.number}" for t in trials)
        folders = sorted(p.name for p in (workdir / "results").iterdir() if p.name.startswith("shared-"))
        assert folders == sorted(run_ids)
        for run_id in run_ids:
            rows = (workdir / "results" / run_id / "run_logs" / "stats.jsonl").read_text().splitlines()
            steps = [json.loads(r)["step"] for r in rows]
            assert steps == sorted(set(steps)) and steps[0] == 500

        # The MLflow server received them: one parent for the study (a second one made in the same instant
        # by the other worker is deleted), one child run per trial, tagged with its state.
        client = MlflowClient(tracking_uri=tracking)
        experiment = client.get_experiment_by_name("3dball")
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        parents = [r for r in runs if r.data.tags.get("mlx.sweep_role") == "parent"]
        assert len(parents) == 1
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
        assert Counter(int(c.data.tags["mlx.trial"]) for c in children) == Counter(t.number for t in trials)
        by_number = {t.number: t for t in trials}
        for child in children:
            trial = by_number[int(child.data.tags["mlx.trial"])]
            assert child.data.tags["mlx.trial_state"] == trial.state.name
            assert child.data.tags["mlx.run_id"] == trial.user_attrs["mlx.run_id"]
            assert child.info.run_name.startswith(f"trial{trial.number} ")  # then its sampled values
            assert child.info.status == "FINISHED"
        stats = [a.path for a in client.list_artifacts(children[0].info.run_id, "run_logs")]
        # artifacts went through the server too
        names = ["3DBall_curves.png", "mlx.log", "stats.jsonl", "timers.json"]
        assert stats == [f"run_logs/{name}" for name in names]
