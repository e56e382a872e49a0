"""MLflow in a process of its own: a single run's MLflow work (importing mlflow, opening or creating the
store, the run, every summary, artifact and model upload) runs beside training instead of in its way.

Why: on a new user's first 3DBall run, importing mlflow and creating ``mlflow.db`` cost seconds before the
first step, and uploading the ONNX model as an MLflow logged model seconds after the last, all on the
path the user waits on. Threads cannot overlap that with importing PyTorch and Lightning (the GIL); a
second process can, on any machine with two cores.

How: ``prepare`` (called by ``python -m mlx`` right after the configuration is valid, before PyTorch is
imported) starts ``python -m mlx.tracking.sidecar_process``, which imports mlflow and opens the store
while the run builds itself. ``SidecarTracker`` (made by ``make_tracker`` where ``MlflowTracker`` would be, when a
prepared process is waiting) then sends the run's ``start``: the child builds an ``MlflowTracker`` there,
with the same arguments, so every rule of mlx.tracking.tracker holds unchanged (refusal of an unusable
store at start, the sender thread, offline windows, the sync cursor, resume without duplicates). The run
does not wait for that start: it trains while the child creates the store (seconds for a new user's first
``mlflow.db``) and asks ``started`` after each update, so a store the child refuses is raised in this
process as the same one-line error, after the first update at the latest (the trainers are saved first, as
for any tracking failure); what is unusable before anything runs (check_store) is refused before the start.

The protocol is JSON lines: requests on the child's stdin; replies and the child's console lines on its
stdout (the child's own stdout is its stderr, so a stray print cannot break the protocol). The lines the
tracker says (warnings, "store answers again") come back and go through this process's ``mlx`` logger:
console and mlx.log as before. The child runs in its own session, so a terminal's Ctrl-C reaches only the
run, which finishes the tracker itself. When the run's process disappears (kill -9), the child's stdin
ends and it exits at once, as an in-process tracker would have died with it: what was not sent stays in
stats.jsonl and mlflow_sync.json, sent on resume or by ``python -m mlx.tracking sync``.

Runs composed in-process (sweep jobs, tests calling ``run``) keep the in-process tracker: there mlflow is
imported once for many runs, and a process per run would cost more than it hides.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlx.errors import TrackingError
from mlx.tracking.base import Tracker

START_WAIT = 180.0  # seconds for the child to import mlflow, open the store and create the run
MARGIN = 30.0  # beyond a request's own time limit (flush, finish) before the child counts as gone


class Sidecar:
    """The child process, its pipes and the thread reading its replies."""

    def __init__(self, uri: str, experiment: str | None) -> None:
        self.uri = uri
        from mlx.config.paths import child_env

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlx.tracking.sidecar_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(),
            start_new_session=True,  # a terminal's Ctrl-C is the run's to handle, not the child's
        )
        self._lock = threading.Lock()
        self._replies: dict[int, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self._next = 0
        self.gone = False
        self._reader = threading.Thread(target=self._read, name="mlx-mlflow-sidecar", daemon=True)
        self._reader.start()
        self.send({"op": "prepare", "uri": uri, "experiment": experiment})

    def _read(self) -> None:
        from mlx.training.output import say  # light: logging only

        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if "say" in message:
                say(message["say"], int(message.get("level", logging.INFO)), bool(message.get("stderr")))
                continue
            with self._arrived:
                self._replies[int(message["id"])] = message
                self._arrived.notify_all()
        with self._arrived:
            self.gone = True
            self._arrived.notify_all()

    def send(self, message: dict[str, Any]) -> int:
        """Queue a request; returns its id (replies name it)."""
        with self._lock:
            self._next += 1
            number = self._next
            if self.gone or self.proc.stdin is None:
                return number
            try:
                self.proc.stdin.write((json.dumps({**message, "id": number}) + "\n").encode())
                self.proc.stdin.flush()
            except (OSError, ValueError):  # the child is gone: the reader says so
                pass
            return number

    def wait(self, number: int, timeout: float) -> dict[str, Any] | None:
        """The reply to request ``number``, or None when the child ended or ``timeout`` passed first."""
        with self._arrived:
            self._arrived.wait_for(lambda: number in self._replies or self.gone, timeout)
            return self._replies.pop(number, None)

    def close(self, timeout: float = 10.0) -> None:
        """End the child: stdin closed (it exits), then waited for; killed if it does not."""
        with self._lock, contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_PREPARED: list[Sidecar] = []


def prepare(uri: str, experiment: str | None) -> None:
    """Start the child for this process's run (``python -m mlx``, one run): it imports mlflow and opens the
    store while the run imports PyTorch. Without a run to take it, it ends with this process."""
    if not _PREPARED:
        _PREPARED.append(Sidecar(uri, experiment))


def take_prepared(uri: str) -> Sidecar | None:
    """The prepared child when it serves ``uri`` (else it is ended: the run asked for another store)."""
    if not _PREPARED:
        return None
    sidecar = _PREPARED.pop()
    if sidecar.uri == uri and not sidecar.gone:
        return sidecar
    sidecar.close()
    return None


def _plain(value: Any) -> Any:
    """Arguments as JSON: paths as strings, mappings and lists element-wise."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # an enum or another scalar: params and tags are strings in MLflow anyway


class SidecarTracker(Tracker):
    """An MlflowTracker living in the sidecar process: the same calls, sent as messages."""

    def __init__(self, sidecar: Sidecar, settings: Any, *args: Any, **options: Any) -> None:
        import dataclasses

        self.sidecar = sidecar
        self.finish_wait = float(options.get("finish_wait", 30.0))
        run_logs = options.get("run_logs")
        self.folder = str(Path(run_logs).parent) if run_logs is not None else "results/<run_id>"
        self._warned = False
        number = sidecar.send(
            {
                "op": "start",
                "settings": _plain(dataclasses.asdict(settings)),
                "args": _plain(args),
                "options": _plain(options),
            }
        )
        self._start: int | None = number  # the start request, until its reply is taken
        self._run_id: str | None = None
        self._experiment_id: str | None = None

    def started(self, wait: bool = True) -> bool:
        """Whether the child has opened the MLflow run. Training goes on while it does (the store's creation
        takes seconds on a new user's first run); ``wait`` waits for it. A store the child refused is raised
        here, as MlflowTracker raises it."""
        if self._start is None:
            return True
        reply = self.sidecar.wait(self._start, START_WAIT if wait else 0.0)
        if reply is None and self.sidecar.gone:  # lost before it answered: as when lost later, one warning
            self._start = None
            self._lost()
            return True
        if reply is None:
            if not wait:
                return False
            self.sidecar.close()
            raise TrackingError(
                f"the MLflow tracking process did not answer in {START_WAIT:.0f} s while the run was starting; try "
                "again, or train without MLflow: tracking=tensorboard or tracking=none"
            )
        self._start = None
        if "error" in reply:
            self._warned = True  # refused, not lost: this error is the one line the run ends with
            self.sidecar.close()
            raise _error(reply["error"])
        self._run_id = reply.get("run_id")
        self._experiment_id = reply.get("experiment_id")
        return True

    @property  # type: ignore[override]
    def run_id(self) -> str | None:
        self.started()
        return self._run_id

    @property  # type: ignore[override]
    def experiment_id(self) -> str | None:
        self.started()
        return self._experiment_id

    def _send(self, message: dict[str, Any]) -> None:
        if self.sidecar.gone:
            self._lost()
            return
        self.sidecar.send(message)

    def _lost(self) -> None:
        if self._warned:
            return
        self._warned = True
        from mlx.training.output import say  # light: logging only

        say(
            "[WARNING] The MLflow tracking process ended: this run's records stay in run_logs/stats.jsonl; send "
            f"them with: python -m mlx.tracking sync {self.folder}",
            logging.WARNING,
            stderr=True,
        )

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._send({"op": "params", "params": _plain(params)})

    def log_summary(self, row: Mapping[str, Any]) -> None:
        self._send({"op": "row", "row": _plain(row)})

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self._send({"op": "artifact", "path": str(path), "artifact_path": artifact_path})

    def log_model(self, path: Path, name: str) -> None:
        self._send({"op": "model", "path": str(path), "name": name})

    def supersede(self, old_run_id: str) -> None:
        self._send({"op": "supersede", "old": old_run_id})

    def flush(self, timeout: float) -> bool:
        reply = self.sidecar.wait(self.sidecar.send({"op": "flush", "timeout": timeout}), timeout + MARGIN)
        return bool(reply and reply.get("ok"))

    def finish(self, status: str = "FINISHED") -> None:
        """As MlflowTracker.finish (up to finish_wait seconds for the queue), then the child ends."""
        try:
            if self._start is not None:
                self.started()  # a refused start is this run's error, whatever else ended it
            if self.sidecar.gone:
                self._lost()
                return
            reply = self.sidecar.wait(self.sidecar.send({"op": "finish", "status": status}), self.finish_wait + MARGIN)
            if reply is None:
                self._lost()
            elif "error" in reply:
                raise _error(reply["error"])
        finally:
            self.sidecar.close()


def _error(info: Mapping[str, Any]) -> BaseException:
    """The child's exception as this process raises it: mlx's own error classes by name, else RuntimeError."""
    import mlx.errors

    kind = getattr(mlx.errors, str(info.get("type")), None)
    message = str(info.get("message", "the MLflow tracking process failed"))
    if isinstance(kind, type) and issubclass(kind, Exception):
        return kind(message)
    return RuntimeError(f"{info.get('type')}: {message}")
