"""Experiment tracking: MLflow (default, an embedded SQLite store) or none.

Uses MlflowClient rather than mlflow's fluent API so no global "active run" leaks between runs in one
process (sweeps, tests), and so a resumed run appends to its original MLflow run by id.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlx.config import TrackingSettings


class Tracker:
    """No tracking: every call does nothing. The MLflow tracker overrides each method."""

    run_id: str | None = None

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None: ...

    def finish(self, status: str = "FINISHED") -> None: ...


class MlflowTracker(Tracker):
    def __init__(
        self,
        settings: TrackingSettings,
        experiment_name: str,
        run_name: str,
        tags: Mapping[str, str],
        resume_run_id: str | None = None,
    ) -> None:
        from mlflow.tracking import MlflowClient  # lazy for start-up speed (mlflow)

        self.settings = settings
        self.client = MlflowClient(tracking_uri=settings.uri)
        experiment = self.client.get_experiment_by_name(experiment_name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(experiment_name)
        if resume_run_id is not None:
            self.run_id = resume_run_id
            self.client.update_run(resume_run_id, status="RUNNING")
        else:
            run = self.client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
            self.run_id = run.info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param  # lazy for start-up speed (mlflow)

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric  # lazy for start-up speed (mlflow)

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for i in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[i : i + 500])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


def run_tags(settings: TrackingSettings) -> dict[str, str]:
    """Tags from the tracking settings: the user's own, and a sweep job's parent run, sweep id and trial.
    `mlflow.parentRunId` is what nests a run under its sweep in the MLflow UI."""
    tags = {str(k): str(v) for k, v in settings.tags.items()}
    if settings.parent_run_id:
        tags["mlflow.parentRunId"] = settings.parent_run_id
    if settings.sweep_id:
        tags["mlx.sweep_id"] = settings.sweep_id
    if settings.trial is not None:
        tags["mlx.trial"] = str(settings.trial)
    return tags


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: MLflow params are flat."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def make_tracker(
    settings: TrackingSettings,
    experiment_name: str,
    run_name: str,
    tags: Mapping[str, str],
    resume_run_id: str | None,
) -> Tracker:
    if settings.backend == "none":
        return Tracker()
    return MlflowTracker(settings, experiment_name, run_name, tags, resume_run_id)
