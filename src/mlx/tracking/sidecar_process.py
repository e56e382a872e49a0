"""The MLflow process's side of mlx.tracking.sidecar (``python -m mlx.tracking.sidecar_process``): one
request per line on stdin, replies and console lines on stdout, an MlflowTracker doing the work."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any


class _Forward(logging.Handler):
    """The child's mlx lines, sent to the run's process (which prints and logs them)."""

    def __init__(self, out: IO[str], lock: threading.Lock) -> None:
        super().__init__(logging.DEBUG)
        self.out, self.pipe_lock = out, lock  # not ``lock``: logging.Handler's own, held around emit

    def emit(self, record: logging.LogRecord) -> None:
        message = {
            "say": record.getMessage(),
            "level": record.levelno,
            "stderr": bool(getattr(record, "stderr", False)),
        }
        _write(self.out, self.pipe_lock, message)


def _write(out: IO[str], lock: threading.Lock, message: Mapping[str, Any]) -> None:
    with lock, contextlib.suppress(OSError, ValueError):
        out.write(json.dumps(message) + "\n")
        out.flush()


def _serve() -> None:
    """The child's loop: one request per stdin line, in order; exits when stdin ends."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything printed by a library goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    lock = threading.Lock()
    from mlx.training.output import console

    logger = console()
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(_Forward(out, lock))
    tracker: Any = None
    for raw in sys.stdin:
        message = json.loads(raw)
        op, number = message["op"], message["id"]
        reply: dict[str, Any] = {"id": number}
        try:
            if op == "prepare":
                _warm(message["uri"], message.get("experiment"))
                continue  # no reply: start redoes (and reports) whatever failed here
            if tracker is None and op not in ("start", "flush", "finish"):
                continue  # the start was refused: the run raises that, and these have nowhere to go
            if op == "start":
                tracker = _start(message)
                reply.update(run_id=tracker.run_id, experiment_id=tracker.experiment_id)
                # While the run trains, import what the final model upload needs (mlflow.onnx, onnx: about a
                # second, ml_dtypes' initialisation included), so the run's finish does not wait on it.
                threading.Thread(target=_warm_model_upload, name="mlx-warm-onnx", daemon=True).start()
            elif op == "row":
                tracker.log_summary(message["row"])
                continue
            elif op == "artifact":
                tracker.log_artifact(Path(message["path"]), message.get("artifact_path"))
                continue
            elif op == "model":
                tracker.log_model(Path(message["path"]), message["name"])
                continue
            elif op == "params":
                tracker.log_params(message["params"])
                continue
            elif op == "supersede":
                tracker.supersede(message["old"])
                continue
            elif op == "flush":
                reply["ok"] = tracker is not None and tracker.flush(float(message["timeout"]))
            elif op == "finish":
                if tracker is not None:
                    tracker.finish(message["status"])
                _write(out, lock, reply)
                # Everything is sent: end without the interpreter's teardown of mlflow, SQLAlchemy and onnx
                # (about a second, which the run's process would wait for).
                sys.stderr.flush()
                os._exit(0)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the run, which decides
            reply["error"] = {"type": type(exc).__name__, "message": str(exc)}
        _write(out, lock, reply)
    # stdin ended without a finish: the run's process is gone (killed). Exit now, as an in-process tracker
    # would have: the sender thread is a daemon, and the records are in stats.jsonl / mlflow_sync.json.
    os._exit(0)


def _warm(uri: str, experiment: str | None) -> None:
    """Import mlflow and open the store (creating or migrating it), as the run's start will need; a store
    that fails here is left for ``start`` to refuse in its own words."""
    from mlx.tracking.store import check_store, quiet_mlflow, quietly

    try:
        check_store(uri)
        quiet_mlflow()
        from mlflow.tracking import MlflowClient

        with quietly():
            client = MlflowClient(tracking_uri=uri)
            if experiment:
                client.get_experiment_by_name(experiment)
    except Exception:  # noqa: BLE001 - see the docstring
        return


def _warm_model_upload() -> None:
    with contextlib.suppress(Exception):  # the upload itself reports what fails
        import mlflow.onnx  # noqa: F401
        import onnx  # noqa: F401
        from mlflow.utils import requirements_utils

        # MLflow's map of installed packages, which log_model's requirement check builds on first use (0.5 s
        # scanning every installed distribution); private, hence the suppress: without it the upload is slower.
        requirements_utils._init_modules_to_packages_map()
        requirements_utils._init_packages_to_modules_map()


def _start(message: Mapping[str, Any]) -> Any:
    from mlx.config import TrackingSettings
    from mlx.tracking.tracker import MlflowTracker

    options = dict(message["options"])
    for key in ("run_logs", "config"):
        if options.get(key) is not None:
            options[key] = Path(options[key])
    return MlflowTracker(TrackingSettings(**message["settings"]), *message["args"], **options)


if __name__ == "__main__":
    _serve()
