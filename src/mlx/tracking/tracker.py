"""Experiment tracking: MLflow (default, an embedded SQLite store) and TensorBoard event files
(mlx.tracking.tensorboard), each on or off (make_tracker); an MLflow store that fails never stops
training, and loses nothing.

Uses MlflowClient rather than mlflow's fluent API so no global "active run" leaks between runs in one
process (sweeps, tests), and so a resumed run appends to its original MLflow run by id.

How a run survives its store (see also mlx.tracking.store):
- Start: the store is checked and the MLflow run created in the calling thread; a store that cannot
  work is refused in one line (TrackingError) before training starts. A resumed run whose MLflow run is
  gone from the store (deleted, another store) gets a new MLflow run, with one warning line.
- Training: the run's thread only queues (``log_summary``, ``log_artifact``, ``finish``); one sender
  thread makes every MLflow call, in order, so a locked or absent store never blocks a training step. A
  transient failure (a SQLite lock held by the MLflow UI or a parallel job, a server away) is retried with
  exponential back-off; past ``window`` seconds the tracker is "offline": one warning line, then one try
  every ``retry_every`` seconds, and when the store answers again everything queued is sent, in order,
  with one line saying so. The record meanwhile is run_logs/stats.jsonl (written by Summaries before the
  tracker sees a row); ``run_logs/mlflow_sync.json`` holds the MLflow run id and the cursor: the last step
  of each behaviour whose summary MLflow has, written after each batch MLflow accepted.
- End: ``finish`` waits up to ``finish_wait`` seconds for the queue; what is still unsent (summaries, files,
  the run's end status) stays recorded in mlflow_sync.json, named in one warning line with the command
  that sends it later: ``python -m mlx.tracking sync results/<run_id>`` (also done by a resume).
- Metric names (mlx.tracking.keys): a run with one behaviour logs ML-Agents' names ("Environment/Cumulative
  Reward"), a run with several "<Behavior>/<name>" ("BigWallJump/Environment/Cumulative Reward"), so that
  no MLflow curve mixes two behaviours; the run's behaviours are given at the start (make_tracker: the
  behaviours of ``hyperparameters``) and kept in mlflow_sync.json for a resume and for sync.
- No duplicate points after resume. Each behaviour resumes from its own checkpoint (at step S_b: the
  behaviours of one run step at their own rates) and logs its summaries after S_b again, while the killed
  process may have sent some of them already. Design: the cursor tells exactly what was sent, and on a SQL
  store (SQLite, PostgreSQL, MySQL: every default and usual setup) each behaviour's points after its S_b
  are deleted through MLflow's own SQLAlchemy models before the resumed run sends anything (the other
  behaviours' points stay), so MLflow ends with what stats.jsonl holds (which resume truncates at each
  S_b as well).
  Deferring every send until a checkpoint covers it would need no deletion, but the live view would lag
  by a checkpoint_interval (500k steps by default): rejected. On a tracking server (http), where MLflow
  has no way to delete a point, the summaries up to the cursor are not sent again: each step stays
  once, with the first process's values. Replays also skip a summary whose step MLflow already holds
  with the same value, so a process killed between MLflow's commit and the cursor's write sends nothing
  twice either.
- Secrets: params and tags are logged redacted (mlx.tracking.secrets), and a text file uploaded as an
  artifact (configuration.yaml) is uploaded as a redacted copy.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlx.config import TrackingSettings
from mlx.tracking.base import Tracker, Trackers, read_rows
from mlx.tracking.keys import PROBE as PROBE  # re-exported: the name a replay checks, for tests and tools
from mlx.tracking.keys import MetricNames, ResumeSteps, resume_step_of
from mlx.tracking.keys import row_metrics as row_metrics
from mlx.tracking.mlflow_run import EXPERIMENT_KIND, log_onnx_model
from mlx.tracking.secrets import redact
from mlx.tracking.store import (
    check_store,
    describe_uri,
    is_transient,
    quiet_mlflow,
    quietly,
    retry,
    rewind_sql,
    set_busy_timeout,
    start_error,
    why,
)
from mlx.tracking.tensorboard import TensorboardTracker
from mlx.training.output import say

SYNC_FILE = "mlflow_sync.json"
BATCH = 900  # metrics per log_batch (MLflow takes at most 1000)
MODEL_MARK = "mlflow-model:"  # a pending file that is to be logged as an MLflow model (its name follows)
TEXT_SUFFIXES = (".yaml", ".yml", ".json", ".txt", ".cfg", ".ini", ".md")


def warn(text: str) -> None:
    """A tracking problem: on stderr, and in the run's mlx.log (the run goes on; the files hold its data)."""
    say(redact(text), logging.WARNING, stderr=True)


class SyncState:
    """run_logs/mlflow_sync.json: the MLflow run, the cursor, and what is still to send."""

    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: kept in memory only (never a stand-in such as /dev/null: saves replace files)
        self.run_id: str | None = None
        self.sent: dict[str, int] = {}
        self.behaviors: list[str] | None = None  # the run's behaviours: they name its metrics (mlx.tracking.keys)
        self.pending_files: list[list[str | None]] = []
        self.end_status: str | None = None
        self.known = False  # read from an existing file
        self.lock = threading.Lock()  # the sender thread and finish() both save
        if path is None:
            return
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        if isinstance(data, dict):
            self.known = True
            self.run_id = data.get("run_id") if isinstance(data.get("run_id"), str) else None
            sent = data.get("sent") if isinstance(data.get("sent"), dict) else {}
            self.sent = {str(k): int(v) for k, v in sent.items() if isinstance(v, int)}
            names = data.get("behaviors")
            if isinstance(names, list) and all(isinstance(b, str) for b in names):
                self.behaviors = names
            files = data.get("pending_files") if isinstance(data.get("pending_files"), list) else []
            self.pending_files = [list(f) for f in files if isinstance(f, list) and len(f) == 2]
            self.end_status = data.get("end_status") if isinstance(data.get("end_status"), str) else None

    def save(self) -> None:
        with self.lock:
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        data = {
            "run_id": self.run_id,
            "sent": self.sent,
            "behaviors": self.behaviors,
            "pending_files": self.pending_files,
            "end_status": self.end_status,
        }
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, self.path)
        except OSError:  # the run folder is not ours to fail on; the next save tries again
            pass


class MlflowTracker(Tracker):
    def __init__(
        self,
        settings: TrackingSettings,
        experiment_name: str,
        run_name: str,
        tags: Mapping[str, str],
        resume_run_id: str | None = None,
        *,
        run_logs: Path | None = None,
        params: Mapping[str, Any] | None = None,
        config: Path | None = None,
        resume_step: ResumeSteps | None = None,
        behaviors: Sequence[str] | None = None,
        window: float = 10.0,
        retry_every: float = 15.0,
        finish_wait: float = 30.0,
        start_window: float = 10.0,
        mark_running: bool = True,
        busy_timeout: float | None = None,
    ) -> None:
        from mlflow.tracking import MlflowClient  # lazy for start-up speed (mlflow)

        self.settings = settings
        self.uri = settings.uri
        self.window, self.retry_every, self.finish_wait = window, retry_every, finish_wait
        self.run_logs = run_logs
        self.stats = run_logs / "stats.jsonl" if run_logs is not None else None
        # No run folder (a sweep's parent run, a mode attaching to a run): the state lives in memory only.
        self.state = SyncState(run_logs / SYNC_FILE if run_logs is not None else None)
        check_store(self.uri)
        quiet_mlflow()
        # MLflow retries an unreachable server by itself for minutes; the back-off here is bounded instead.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

        def start(call: Any, doing: str) -> Any:
            try:
                return retry(call, start_window)
            except Exception as exc:  # noqa: BLE001 - every failure of a store at start is the user's to fix
                raise start_error(self.uri, exc, doing) from None

        self.client = start(lambda: MlflowClient(tracking_uri=self.uri), "opening the store")
        experiment = start(lambda: self.client.get_experiment_by_name(experiment_name), "reading the experiment")
        if busy_timeout is not None:
            set_busy_timeout(self.client, busy_timeout)
        if experiment is None:
            experiment_id = start(lambda: self._create_experiment(experiment_name), "creating the experiment")
        else:
            experiment_id = experiment.experiment_id
            if EXPERIMENT_KIND[0] not in experiment.tags:  # made by an older mlx: show it as model training too
                start(lambda: self.client.set_experiment_tag(experiment_id, *EXPERIMENT_KIND), "tagging the experiment")
        self.experiment_id: str = experiment_id
        self.experiment_name = experiment_name
        run = start(lambda: self._find(resume_run_id), "reading the run") if resume_run_id else None
        if resume_run_id and run is None:
            warn(
                f"[WARNING] MLflow run {resume_run_id} is not in {describe_uri(self.uri)} (deleted, or another "
                "store): this run's records go to a new MLflow run"
            )
        fresh = run is None
        if fresh:
            tags = {k: redact(str(v)) for k, v in tags.items()}
            created = start(
                lambda: self.client.create_run(experiment_id, run_name=run_name, tags=tags), "creating a run"
            )
            self.run_id = created.info.run_id
        else:
            self.run_id = resume_run_id
            if mark_running:
                start(lambda: self.client.update_run(resume_run_id, status="RUNNING"), "reopening the run")
        if self.state.run_id != self.run_id:
            known_run = self.state.known and self.state.run_id is not None
            self.state.sent, self.state.pending_files, self.state.end_status = {}, [], None
            if not fresh and not known_run and self.stats is not None:
                # a run recorded before this file existed logged every summary live: all of stats.jsonl
                for row in read_rows(self.stats):
                    name = row["behavior"]
                    self.state.sent[name] = max(self.state.sent.get(name, 0), row["step"])
            self.state.run_id = self.run_id
        if behaviors is None:  # sync, or a caller that does not say: as the run started, else its summaries
            known = self.state.behaviors
            if known is None:
                known = [r["behavior"] for r in read_rows(self.stats)] if self.stats is not None else []
            behaviors = known
        self.names = MetricNames(behaviors)
        self.state.behaviors = self.names.behaviors
        self.state.save()

        self._ops: deque[tuple[Any, ...]] = deque()
        self._cv = threading.Condition()
        self._closing = False
        self._broken: str | None = None
        self._offline_since: float | None = None
        self._offline = False
        self._stopped = False
        self._wake = threading.Event()
        self._tmp = tempfile.TemporaryDirectory(prefix="mlx-tracking-")
        if fresh:
            if params:
                self._ops.append(("params", dict(params)))
            if config is not None and config.exists():
                self._ops.append(("artifact", str(config), None))
        if not fresh and resume_step is not None:
            self._ops.append(("rewind", resume_step))
        for path, artifact_path in self.state.pending_files:
            if path is not None and artifact_path is not None and artifact_path.startswith(MODEL_MARK):
                self._ops.append(("model", path, artifact_path[len(MODEL_MARK) :]))
            elif path is not None:
                self._ops.append(("artifact", path, artifact_path))
        if self.stats is not None:
            self._ops.append(("replay",))
        if self.state.end_status and not mark_running:
            self._ops.append(("end", self.state.end_status))
        self.sent_rows = 0
        self.sent_files = 0
        self._thread = threading.Thread(target=self._loop, name="mlx-tracking", daemon=True)
        self._thread.start()

    # ---- start ------------------------------------------------------------------------------
    def _create_experiment(self, name: str) -> str:
        from mlflow.exceptions import MlflowException  # lazy for start-up speed (mlflow)

        try:
            return self.client.create_experiment(name, tags=dict([EXPERIMENT_KIND]))
        except MlflowException:  # created by another job in between
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def _find(self, run_id: str) -> Any:
        """The MLflow run with this id, or None when the store has no such run (or only a deleted one)."""
        from mlflow.exceptions import MlflowException  # lazy for start-up speed (mlflow)

        try:
            run = self.client.get_run(run_id)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        return None if run.info.lifecycle_stage == "deleted" else run

    # ---- what the training thread calls: queue and return ------------------------------------
    def _queue(self, op: tuple[Any, ...]) -> None:
        with self._cv:
            self._ops.append(op)
            self._cv.notify()

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._queue(("params", dict(params)))

    def log_summary(self, row: Mapping[str, Any]) -> None:
        self._queue(("row", dict(row)))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self._queue(("artifact", str(path), artifact_path))

    def log_model(self, path: Path, name: str) -> None:
        self._queue(("model", str(path), name))

    def supersede(self, old_run_id: str) -> None:
        self._queue(("supersede", old_run_id))

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued is sent (True) or ``timeout`` seconds passed (False)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._ops and self._broken is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.5))
        return not self._ops

    def finish(self, status: str = "FINISHED") -> None:
        """Send what is queued and the run's end; what the store does not take in ``finish_wait`` seconds
        stays recorded for ``python -m mlx.tracking sync``, named in one warning line."""
        self._queue(("end", status))
        self._wake.set()
        if self._offline:
            say(f"[INFO] Waiting up to {self.finish_wait:.0f} s for the MLflow store to take this run's records.")
        sent = self.flush(self.finish_wait)
        with self._cv:
            self._closing = True
            self._stopped = not sent
            self._cv.notify_all()
            if not sent:
                rows = sum(1 for op in self._ops if op[0] == "row")
                files = [op for op in self._ops if op[0] == "artifact"]
                models = [[op[1], MODEL_MARK + op[2]] for op in self._ops if op[0] == "model"]
                self.state.pending_files = [[op[1], op[2]] for op in files] + models
                self.state.end_status = status
                self.state.save()
                root = self.run_logs.parent if self.run_logs is not None else Path(".")
                reason = self._broken or "the store does not answer"
                warn(
                    f"[WARNING] MLflow ({describe_uri(self.uri)}) did not take this run's records: {reason}; "
                    f"{rows} summaries, {len(files)} files and the run's end are kept in {root}: send them "
                    f"with: python -m mlx.tracking sync {root}"
                )
        if sent:
            self._tmp.cleanup()

    @property
    def broken(self) -> str | None:
        """Why the store refused a call for good (None while it works or is only away)."""
        return self._broken

    def close(self) -> None:
        """Stop the sender thread without recording an end (``python -m mlx.tracking sync``)."""
        with self._cv:
            self._closing = self._stopped = True
            self._cv.notify_all()
        self._wake.set()
        self._thread.join(timeout=1.0)

    # ---- the sender thread --------------------------------------------------------------------
    def _next(self) -> list[tuple[Any, ...]] | None:
        """The next op (consecutive summary rows together, for one call); None once closed."""
        with self._cv:
            while not self._ops and not self._closing:
                self._cv.wait()
            if not self._ops or self._broken is not None or self._stopped:
                return None
            batch = [self._ops[0]]
            if batch[0][0] == "row":
                size = len(self.names.row(batch[0][1]))
                for more in list(self._ops)[1:]:
                    if more[0] != "row":
                        break
                    size += len(self.names.row(more[1]))
                    if size > BATCH:
                        break
                    batch.append(more)
            return batch

    def _loop(self) -> None:
        delay = 0.1
        while (batch := self._next()) is not None:
            started = time.monotonic()
            try:
                with quietly():
                    self._send(batch)
            except Exception as exc:  # noqa: BLE001 - a tracking failure must never end training
                if not is_transient(exc):
                    with self._cv:
                        self._broken = f"MLflow refused a call ({why(exc)})"
                        self._cv.notify_all()
                    warn(
                        f"[WARNING] {describe_uri(self.uri)}: {self._broken}; training goes on and "
                        "stats.jsonl keeps every summary: send them later with python -m mlx.tracking sync"
                    )
                    return
                if self._offline_since is None:
                    self._offline_since = started
                now = time.monotonic()
                if not self._offline and now - self._offline_since >= self.window:
                    self._offline = True
                    warn(
                        f"[WARNING] MLflow store unreachable ({describe_uri(self.uri)}: {why(exc)}); training "
                        "goes on, summaries are kept in stats.jsonl and sent when the store answers again"
                    )
                wait = self.retry_every if self._offline else delay
                delay = min(delay * 2, 2.0)
                self._wake.wait(wait)  # finish() wakes it: the run's end is worth a try at once
                self._wake.clear()
                continue
            if self._offline:
                with self._cv:
                    queued = sum(1 for op in self._ops if op[0] == "row") - sum(1 for op in batch if op[0] == "row")
                say(f"[INFO] MLflow store answers again: sending the {queued} summaries it missed.")
            self._offline_since, self._offline, delay = None, False, 0.1
            with self._cv:
                for _ in batch:
                    self._ops.popleft()
                self._cv.notify_all()

    def _send(self, batch: Sequence[tuple[Any, ...]]) -> None:
        """One MLflow call (one try) for an op, or for a batch of summary rows."""
        kind = batch[0][0]
        if kind == "row":
            rows = [op[1] for op in batch if op[1]["step"] > self.state.sent.get(op[1]["behavior"], -1)]
            self._send_rows(rows)
        elif kind == "params":
            self._send_params(batch[0][1])
        elif kind == "artifact":
            self._send_file(Path(batch[0][1]), batch[0][2])
        elif kind == "model":
            self._send_model(Path(batch[0][1]), batch[0][2])
        elif kind == "supersede":
            self._supersede(batch[0][1])
        elif kind == "rewind":
            self._rewind(batch[0][1])
        elif kind == "replay":
            self._replay()
        elif kind == "end":
            self.client.set_terminated(self.run_id, status=batch[0][1])
            self.state.end_status = None
            self.state.save()

    def _send_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        from mlflow.entities import Metric  # lazy for start-up speed (mlflow)

        if not rows:
            return
        now = int(time.time() * 1000)
        items = [Metric(k, v, now, int(row["step"])) for row in rows for k, v in self.names.row(row).items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, metrics=items[i : i + BATCH])
        for row in rows:
            name = row["behavior"]
            self.state.sent[name] = max(self.state.sent.get(name, -1), int(row["step"]))
        self.state.save()
        self.sent_rows += len(rows)

    def _send_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param  # lazy for start-up speed (mlflow)

        have = self.client.get_run(self.run_id).data.params  # a retried batch may have landed already
        items = [Param(k, redact(str(v))[:6000]) for k, v in params.items() if k not in have]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def _send_file(self, path: Path, artifact_path: str | None) -> None:
        original = str(path)
        if not path.exists():
            return
        if path.suffix in TEXT_SUFFIXES and path.stat().st_size < 50_000_000:
            text = path.read_text(errors="replace")
            clean = redact(text)
            if clean != text:  # upload a redacted copy under the same name
                folder = Path(self._tmp.name) / str(len(os.listdir(self._tmp.name)))
                folder.mkdir()
                path = folder / path.name
                path.write_text(clean)
        self.client.log_artifact(self.run_id, str(path), artifact_path)
        self.sent_files += 1
        if [original, artifact_path] in self.state.pending_files:
            self.state.pending_files.remove([original, artifact_path])
            self.state.save()

    def _send_model(self, path: Path, name: str) -> None:
        """The policy as an MLflow logged model (ONNX flavour); a policy MLflow cannot take (an onnx
        library that refuses it) costs only that model, with one warning line: the .onnx artifact stays."""
        if not path.exists():
            return
        try:
            log_onnx_model(self.client, self.run_id, path, name)
            if [str(path), MODEL_MARK + name] in self.state.pending_files:
                self.state.pending_files.remove([str(path), MODEL_MARK + name])
                self.state.save()
        except Exception as exc:  # noqa: BLE001 - a store failure is retried; anything else is this model's only
            if is_transient(exc):
                raise
            warn(f"[WARNING] {path} not logged as an MLflow model ({why(exc)}); it stays an artifact of the run")

    def _supersede(self, old_run_id: str) -> None:
        """Tag the replaced run with this one's id and delete it (MLflow keeps it restorable: mlflow gc
        removes it for good); a run already gone from the store needs nothing."""
        from mlflow.exceptions import MlflowException  # lazy for start-up speed (mlflow)

        try:
            self.client.set_tag(old_run_id, "mlx.superseded_by", self.run_id)
            self.client.delete_run(old_run_id)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise

    def _rewind(self, steps: ResumeSteps) -> None:
        """Each behaviour's points after its checkpoint (``steps``) deleted, and the cursor moved back."""
        deleted = rewind_sql(self.client, self.run_id, lambda key: self.names.cut(steps, key))
        if deleted is None:  # no SQL store: what was sent stays, and is not sent again (see the docstring)
            return
        self.state.sent = {name: min(sent, resume_step_of(steps, name)) for name, sent in self.state.sent.items()}
        self.state.save()

    def _replay(self) -> None:
        """Send the rows of stats.jsonl MLflow does not have yet (after the cursor, and not already there
        with the same value), in order."""
        assert self.stats is not None
        rows = [r for r in read_rows(self.stats) if r["step"] > self.state.sent.get(r["behavior"], -1)]
        if not rows:
            return
        have: dict[str, set[tuple[int, float]]] = {}
        for name in dict.fromkeys(r["behavior"] for r in rows):
            history = self.client.get_metric_history(self.run_id, self.names.probe(name))
            have[name] = {(m.step, m.value) for m in history}
        rows = [r for r in rows if (r["step"], float(r.get("steps_per_sec") or 0.0)) not in have[r["behavior"]]]
        rows.sort(key=lambda r: r["step"])
        for i in range(0, len(rows), 50):
            self._send_rows(rows[i : i + 50])


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


def make_tracker(
    settings: TrackingSettings,
    experiment_name: str,
    run_name: str,
    tags: Mapping[str, str],
    resume_run_id: str | None,
    *,
    run_folder: Path | None = None,
    hyperparameters: Mapping[str, Mapping[str, Any]] | None = None,
    **options: Any,
) -> Tracker:
    """The run's trackers, as ``tracking=`` chooses: MLflow (backend mlflow) and TensorBoard event files in
    ``run_folder`` (tracking.tensorboard; ``hyperparameters``: each behaviour's settings, written once).
    ``options`` go to MlflowTracker (run_logs, params, config, resume_step: each behaviour's checkpoint step,
    ...); resume_step and run_logs' stats.jsonl serve the event files' resume too (mlx.tracking.tensorboard).
    The behaviours of ``hyperparameters`` name MLflow's metrics (mlx.tracking.keys)."""
    trackers: list[Tracker] = []
    if settings.backend == "mlflow":  # first: an unusable store refuses the start before any file is written
        if hyperparameters is not None:
            options.setdefault("behaviors", list(hyperparameters))
        from mlx.tracking.sidecar import SidecarTracker, take_prepared

        sidecar = take_prepared(settings.uri)  # python -m mlx started one: MLflow's work beside the run's
        args = (experiment_name, run_name, tags, resume_run_id)
        trackers.append(
            SidecarTracker(sidecar, settings, *args, **options)
            if sidecar
            else MlflowTracker(settings, *args, **options)
        )
    if settings.tensorboard and run_folder is not None:
        run_logs = options.get("run_logs")
        try:
            trackers.append(
                TensorboardTracker(
                    run_folder,
                    hyperparameters or {},
                    options.get("resume_step"),
                    run_logs / "stats.jsonl" if run_logs is not None else None,
                )
            )
        except BaseException:
            for tracker in trackers:  # the MLflow run just opened ends as the start did
                tracker.finish("FAILED")
            raise
    if not trackers:
        return Tracker()
    return trackers[0] if len(trackers) == 1 else Trackers(trackers)
