"""`python -m mlx.tracking sync results/<run_id>`: send MLflow what a run recorded while its store failed.

Sends the summaries of run_logs/stats.jsonl that MLflow does not have yet (after the cursor in
run_logs/mlflow_sync.json, and not already there with the same value; under the metric names the run
started with, mlx.tracking.keys), the files a finished run uploads
when they are missing from the MLflow run (configuration.yaml as a redacted copy, stats.jsonl, the
learning curves, the final policies), and the run's end status when it was not recorded. Running it
again sends nothing: it is idempotent. The store is the run's tracking.uri (from its configuration.yaml),
or --tracking-uri, or MLFLOW_TRACKING_URI; a run whose MLflow run is gone gets a new one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mlx.config import TrackingSettings
from mlx.config.resume import flatten
from mlx.errors import RunError
from mlx.tracking.secrets import redact
from mlx.tracking.store import describe_uri
from mlx.tracking.tracker import SYNC_FILE, MlflowTracker, SyncState, read_rows, run_tags

USAGE_ERROR = 2


def expected_files(root: Path) -> list[tuple[Path, str | None]]:
    """The files a finished run uploads (those present): (file, artifact folder)."""
    files: list[tuple[Path, str | None]] = [(root / "configuration.yaml", None)]
    logs = root / "run_logs"
    files.append((logs / "stats.jsonl", "run_logs"))
    files += [(p, "run_logs") for p in sorted(logs.glob("*_curves.png"))]
    files += [(p, None) for p in sorted(root.glob("*.onnx"))]
    return [(p, folder) for p, folder in files if p.is_file()]


def uploaded(client: Any, run_id: str, folder: str | None) -> set[str]:
    return {Path(f.path).name for f in client.list_artifacts(run_id, folder) if not f.is_dir}


def settings_of(root: Path, uri: str | None) -> tuple[dict[str, Any], TrackingSettings]:
    path = root / "configuration.yaml"
    try:
        tree = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RunError(
            f"{path} cannot be read ({type(exc).__name__}); give a run folder such as results/<run_id>"
        ) from None
    if not isinstance(tree, dict):
        raise RunError(f"{path} is not a run's configuration; give a run folder such as results/<run_id>")
    tracking = tree.get("tracking") if isinstance(tree.get("tracking"), dict) else {}
    settings = TrackingSettings(
        uri=uri or os.environ.get("MLFLOW_TRACKING_URI") or str(tracking.get("uri") or "sqlite:///mlflow.db"),
        experiment_name=tracking.get("experiment_name"),
        tags={str(k): str(v) for k, v in (tracking.get("tags") or {}).items()},
        parent_run_id=tracking.get("parent_run_id"),
        sweep_id=tracking.get("sweep_id"),
        trial=tracking.get("trial"),
    )
    if "***" in settings.uri:
        raise RunError(
            f"{describe_uri(settings.uri)} holds a redacted password; pass --tracking-uri or MLFLOW_TRACKING_URI"
        )
    return tree, settings


def sync(root: Path, uri: str | None = None, wait: float = 60.0) -> tuple[int, int, str]:
    """Send what MLflow lacks of the run in ``root``; (summaries sent, files sent, MLflow run id)."""
    if not (root / "run_logs").is_dir():
        raise RunError(f"{root} is not a run folder (no run_logs/); give one such as results/<run_id>")
    tree, settings = settings_of(root, uri)
    state = SyncState(root / "run_logs" / SYNC_FILE)
    run_id = state.run_id
    if run_id is None:  # a run from before mlflow_sync.json existed
        try:
            status = json.loads((root / "run_logs" / "training_status.json").read_text())
            run_id = status.get("metadata", {}).get("mlflow_run_id")
        except (OSError, ValueError, AttributeError):
            run_id = None
    env = tree.get("env") if isinstance(tree.get("env"), dict) else {}
    name = str(tree.get("run_id") or root.name)
    tags = {"mlx.run_id": name, "mlx.env": str(env.get("name", "")), **run_tags(settings)}
    tracker = MlflowTracker(
        settings,
        settings.experiment_name or str(env.get("name") or "Default"),
        name,
        tags,
        run_id,
        run_logs=root / "run_logs",
        params=flatten(tree),
        config=root / "configuration.yaml",
        mark_running=False,
        finish_wait=wait,
    )
    fresh = tracker.run_id != run_id
    if not fresh:
        have: dict[str | None, set[str]] = {}
        for path, folder in expected_files(root):
            if path.name not in have.setdefault(folder, uploaded(tracker.client, tracker.run_id, folder)):
                tracker.log_artifact(path, folder)
    else:
        for path, folder in expected_files(root):
            if path.name != "configuration.yaml":  # the new run queued it already
                tracker.log_artifact(path, folder)
    done = tracker.flush(wait)
    tracker.close()
    if not done:
        reason = tracker.broken or f"the store did not take them in {wait:.0f} s"
        raise RunError(f"{describe_uri(settings.uri)}: {reason}; nothing is lost, try again when the store answers")
    return tracker.sent_rows, tracker.sent_files, str(tracker.run_id)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlx.tracking sync",
        description="Send MLflow the summaries, files and end status a run recorded while its store failed.",
    )
    parser.add_argument("run", help="a run folder, e.g. results/<run_id>")
    parser.add_argument("--tracking-uri", help="the MLflow store (default: the run's tracking.uri)")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a busy store (default 60)")
    args = parser.parse_args(argv)
    root = Path(args.run)
    try:
        rows, files, run_id = sync(root, args.tracking_uri, args.wait)
    except RunError as exc:
        print(f"mlx.tracking sync: error: {redact(str(exc))}", file=sys.stderr)
        return USAGE_ERROR
    total = len(read_rows(root / "run_logs" / "stats.jsonl"))
    print(f"MLflow run {run_id}: sent {rows} summaries and {files} files ({total} summaries in stats.jsonl).")
    return 0
