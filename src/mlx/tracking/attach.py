"""Results made after training (mode=evaluate's report, mode=watch's video) attached to the MLflow run of the
training they evaluate, so the run's page holds them beside its curves.

The MLflow run is the one the run folder's training_status.json names, in the store its configuration.yaml
names (where the training wrote it, whatever this command's tracking.uri). The files are on disk already:
a store that fails, or a run MLflow no longer has, costs one line and never the command.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import yaml

from mlx.tracking.base import read_rows
from mlx.tracking.secrets import redact
from mlx.tracking.store import quiet_mlflow, quietly, why
from mlx.training.output import say


def training_run(root: Path, default_uri: str) -> tuple[str, str] | None:
    """(MLflow run id, store URI) of the training in run folder ``root``, or None when it had no MLflow run
    (tracking=none, a folder copied from elsewhere) or its files cannot be read."""
    try:
        status = json.loads((root / "run_logs" / "training_status.json").read_bytes())
        meta = status.get("metadata") if isinstance(status, dict) else None
        run_id = meta.get("mlflow_run_id") if isinstance(meta, dict) else None
        folder = meta.get("run_folder") if isinstance(meta, dict) else None
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(run_id, str) or (isinstance(folder, str) and folder != str(root.resolve())):
        return None
    uri = default_uri
    try:
        config = yaml.safe_load((root / "configuration.yaml").read_text())
        tracking = config.get("tracking") if isinstance(config, dict) else None
        if isinstance(tracking, dict) and isinstance(tracking.get("uri"), str):
            uri = tracking["uri"]
    except (OSError, yaml.YAMLError):
        pass
    return run_id, uri


def flat_metrics(report: Mapping[str, object], prefix: str) -> dict[str, float]:
    """{'3DBall': {'mean_return': 1.0}} -> {'<prefix>/3DBall/mean_return': 1.0}: the report's numbers."""
    out: dict[str, float] = {}
    for key, value in report.items():
        name = f"{prefix}/{key}"
        if isinstance(value, Mapping):
            out.update(flat_metrics(value, name))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def attach(
    root: Path,
    default_uri: str,
    files: list[tuple[Path, str]],
    metrics: Mapping[str, float] | None = None,
) -> str | None:
    """Log ``files`` (path, artifact folder) and ``metrics`` (at the run's last summary step) to the MLflow
    run of the training in ``root``; returns that run's id, or None when nothing was attached."""
    found = training_run(root, default_uri)
    if found is None:
        return None
    run_id, uri = found
    rows = read_rows(root / "run_logs" / "stats.jsonl")
    step = max((int(r["step"]) for r in rows), default=0)
    try:
        from mlflow.entities import Metric  # lazy for start-up speed (mlflow)
        from mlflow.tracking import MlflowClient

        quiet_mlflow()
        with quietly():
            client = MlflowClient(tracking_uri=uri)
            if client.get_run(run_id).info.lifecycle_stage == "deleted":
                return None
            for path, folder in files:
                if path.exists():
                    client.log_artifact(run_id, str(path), folder)
            if metrics:
                now = int(time.time() * 1000)
                items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
                for i in range(0, len(items), 900):
                    client.log_batch(run_id, metrics=items[i : i + 900])
    except Exception as exc:  # noqa: BLE001 - the files are written; MLflow is a copy of them
        say(redact(f"[WARNING] Not attached to MLflow run {run_id}: {why(exc)}"), logging.WARNING, stderr=True)
        return None
    say(f"[INFO] Attached to MLflow run {run_id}: {', '.join(f'{d}/{p.name}' for p, d in files)}")
    return run_id
