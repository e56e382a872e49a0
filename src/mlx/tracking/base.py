"""What a run's tracking looks like to the training loop: a Tracker, several at once (Trackers), and the
stats.jsonl rows every tracker records.

Kept apart from the writers (mlx.tracking.tracker: MLflow, mlx.tracking.tensorboard: event files) so each
builds on it without importing another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The fields of a stats.jsonl row that are not ML-Agents statistics (the rest of a row are, by name).
ROW_FIELDS = (
    "behavior",
    "step",
    "time_elapsed",
    "mean_reward",
    "std_reward",
    "episodes",
    "steps_per_sec",
    "mean_group_reward",  # the group statistic itself is a metric already
)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """stats.jsonl's summary rows (a line cut short by a kill, or garbage, is skipped)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("behavior"), str) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


class Tracker:
    """No tracking: every call does nothing. Each writer overrides what it records."""

    run_id: str | None = None  # the MLflow run, where there is one (training_status.json records it)
    experiment_id: str | None = None  # its MLflow experiment

    def started(self, wait: bool = True) -> bool:
        """Whether the run's record is open (run_id known). A writer that opens it in the background (the
        MLflow process) answers at once when not ``wait``, and raises here a store refused by then."""
        return True

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_summary(self, row: Mapping[str, Any]) -> None: ...

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None: ...

    def log_model(self, path: Path, name: str) -> None:
        """A policy file (.onnx) as a model of the run, where the writer has models (MLflow)."""

    def supersede(self, old_run_id: str) -> None:
        """force=true: mark the run this one replaces (MLflow: tagged, then deleted)."""

    def finish(self, status: str = "FINISHED") -> None: ...


class Trackers(Tracker):
    """Several trackers as one (MLflow and TensorBoard by default): each call goes to each, in order."""

    def __init__(self, trackers: Sequence[Tracker]) -> None:
        self.trackers = list(trackers)

    @property  # type: ignore[override]
    def run_id(self) -> str | None:
        return next((t.run_id for t in self.trackers if t.run_id is not None), None)

    @property  # type: ignore[override]
    def experiment_id(self) -> str | None:
        return next((t.experiment_id for t in self.trackers if t.experiment_id is not None), None)

    def started(self, wait: bool = True) -> bool:
        return all([t.started(wait) for t in self.trackers])

    def log_params(self, params: Mapping[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.log_params(params)

    def log_summary(self, row: Mapping[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.log_summary(row)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        for tracker in self.trackers:
            tracker.log_artifact(path, artifact_path)

    def log_model(self, path: Path, name: str) -> None:
        for tracker in self.trackers:
            tracker.log_model(path, name)

    def supersede(self, old_run_id: str) -> None:
        for tracker in self.trackers:
            tracker.supersede(old_run_id)

    def finish(self, status: str = "FINISHED") -> None:
        """Every tracker finishes even when one fails; the first failure is raised afterwards."""
        error: BaseException | None = None
        for tracker in self.trackers:
            try:
                tracker.finish(status)
            except Exception as exc:  # noqa: BLE001 - re-raised below, once the others are closed
                error = error or exc
        if error is not None:
            raise error
