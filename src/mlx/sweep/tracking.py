"""MLflow records of a sweep: one parent run per sweep, each job's run nested under it.

Jobs create their own runs (mlx.training.run, with `mlflow.parentRunId`, `mlx.sweep_id` and `mlx.trial` tags from
tracking.parent_run_id / sweep_id / trial); the sweeper adds what only it knows once a trial ends (its
Optuna state, its objective) and records a FAILED child for a trial that failed before its run existed.

Workers on several hosts share one parent: each looks for the sweep's parent and creates one only when
there is none; if two created one at the same moment, every worker keeps the oldest and deletes its own.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlx.config import TrackingSettings
from mlx.tracking.mlflow_run import EXPERIMENT_KIND, legacy_store_hint
from mlx.tracking.secrets import redact
from mlx.tracking.store import check_store

SWEEP_ID = "mlx.sweep_id"
ROLE = "mlx.sweep_role"
KIND = "mlx.sweep_kind"
TRIAL = "mlx.trial"
TRIAL_STATE = "mlx.trial_state"
OVERRIDES = "mlx.overrides"
PARENT = "mlflow.parentRunId"


def _experiment_id(client: Any, name: str) -> str:
    from mlflow.exceptions import MlflowException  # lazy for start-up speed (mlflow)

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, tags=dict([EXPERIMENT_KIND]))  # the UI's model-training view
    except MlflowException:  # created by another worker in between
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _parents(client: Any, experiment_id: str, sweep_id: str) -> list[Any]:
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{SWEEP_ID}` = '{sweep_id}' and tags.`{ROLE}` = 'parent'",
        max_results=100,
    )
    return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))


class ParentRun:
    """The sweep's parent run; methods are thin wrappers that keep MLflow's client out of the sweepers."""

    def __init__(self, client: Any, run_id: str, experiment_id: str, sweep_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.sweep_id = sweep_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param  # lazy for start-up speed (mlflow)

        have = self.client.get_run(self.run_id).data.params
        items = [Param(k, redact(str(v))[:6000]) for k, v in params.items() if k not in have]
        for i in range(0, len(items), 100):
            batch = items[i : i + 100]
            try:
                self.client.log_batch(self.run_id, params=batch)
            except Exception:
                # Workers sharing the study open the same parent run and may log its params at the same moment
                # (PostgreSQL then refuses the second insert); that is fine if the values that landed are ours.
                now = self.client.get_run(self.run_id).data.params
                if any(now.get(p.key) != p.value for p in batch):
                    raise

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            text = redact(str(value))[:5000]
            try:
                self.client.set_tag(self.run_id, key, text)
            except Exception:
                # Workers sharing the study may set the same tag of the parent run at the same moment: the
                # server's upsert then inserts twice and PostgreSQL refuses the second (seen with
                # mlx.best_overrides). The row exists now, so a second call updates it; a real error repeats.
                self.client.set_tag(self.run_id, key, text)

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        self.client.log_metric(self.run_id, key, float(value), step=step)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """A text file whose content holds a password (a storage URL) is uploaded as a redacted copy."""
        text = path.read_text(errors="replace") if path.suffix in (".yaml", ".yml", ".json", ".txt") else None
        if text is not None and redact(text) != text:
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / path.name
                copy.write_text(redact(text))
                self.client.log_artifact(self.run_id, str(copy), artifact_path)
            return
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def record_child(
        self,
        child_run_id: str | None,
        tags: Mapping[str, Any],
        metrics: Mapping[str, float],
        error: str | None = None,
    ) -> str:
        """Tag a job's run once its outcome is known; create a FAILED one if the job never made a run."""
        if child_run_id is None:
            run = self.client.create_run(
                self.experiment_id,
                run_name=str(tags.get("run_name", "failed")),
                tags={PARENT: self.run_id, SWEEP_ID: self.sweep_id},
            )
            child_run_id = run.info.run_id
            self.client.set_terminated(child_run_id, status="FAILED")
        for key, value in tags.items():
            if key != "run_name":
                self.client.set_tag(child_run_id, key, redact(str(value))[:5000])
        if error:
            self.client.set_tag(child_run_id, "mlx.error", redact(error)[:5000])
        for key, value in metrics.items():
            self.client.log_metric(child_run_id, key, float(value))
        return child_run_id

    def mark_killed(self, child_run_id: str) -> None:
        self.client.set_terminated(child_run_id, status="KILLED")

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


def open_parent_run(
    settings: TrackingSettings, experiment: str, sweep_id: str, kind: str, params: Mapping[str, Any]
) -> ParentRun | None:
    """Find the sweep's parent run (a rerun, another worker) or create it; None without MLflow."""
    if settings.backend != "mlflow":
        return None
    from mlflow.tracking import MlflowClient  # lazy for start-up speed (mlflow)

    if hint := legacy_store_hint(settings.uri):  # said here: the parent run creates mlflow.db before any job
        print(hint, flush=True)
    check_store(settings.uri)  # an unusable store is refused in one line, before any job starts
    client = MlflowClient(tracking_uri=settings.uri)
    experiment_id = _experiment_id(client, experiment)
    found = _parents(client, experiment_id, sweep_id)
    if found:
        chosen = found[0]
        client.update_run(chosen.info.run_id, status="RUNNING")
    else:
        mine = client.create_run(
            experiment_id, run_name=sweep_id, tags={SWEEP_ID: sweep_id, ROLE: "parent", KIND: kind}
        )
        chosen = _parents(client, experiment_id, sweep_id)[0]
        if chosen.info.run_id != mine.info.run_id:
            client.delete_run(mine.info.run_id)  # another worker's parent is older: use it
    parent = ParentRun(client, chosen.info.run_id, experiment_id, sweep_id)
    parent.log_params(params)
    return parent


def mlflow_run_id_of(results_dir: str, run_id: str) -> str | None:
    """The MLflow run a job recorded in its training_status.json (None if it never got that far)."""
    path = Path(results_dir) / run_id / "run_logs" / "training_status.json"
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    meta = data.get("metadata") if isinstance(data, dict) else None
    run_id = meta.get("mlflow_run_id") if isinstance(meta, dict) else None
    return run_id if isinstance(run_id, str) else None
