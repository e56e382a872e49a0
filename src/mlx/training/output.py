"""What a run shows, through Python's logging: the ``mlx`` logger prints each line to the console exactly as
written (``[INFO] 3DBall. Step: ...``, on stdout as mlx always printed), and while a training run lasts
its lines also go to ``results/<run_id>/run_logs/mlx.log`` with a timestamp each; debug=true adds the
DEBUG lines to both.

The console handler is installed once, when this module is imported, and the ``mlx`` logger stops
propagating (Hydra's root handler would print every line twice). It looks ``sys.stdout`` up at each line,
so pytest's capture and a detached terminal (mlx.training.stops.detach_terminal) are followed, and a
closed or broken stdout never fails a run that is saving its work.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

LOGGER_NAME = "mlx"
log = logging.getLogger("mlx.run")


class Console(logging.Handler):
    """Each record's message as it is, on the current sys.stdout (sys.stderr for a record said with
    ``stderr=True``: warnings that must not mix into a piped stdout)."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(OSError, ValueError):  # a hung-up terminal, a closed pipe
            stream = sys.stderr if getattr(record, "stderr", False) else sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()


LOG_NAME = "mlx.log"  # in results/<run_id>/run_logs/, beside stats.jsonl and timers.json


class RunLogFile(logging.Handler):
    """results/<run_id>/run_logs/mlx.log: the console's lines, each with the time it was written. Lines
    before the run folder is taken are held (a refused start must not touch an existing run's log, and a
    force=true start that fails before it clears the folder leaves the old log as it was), then written
    when `open` is called; after `discard` (a new run undone) nothing more is kept."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.pending: list[str] | None = []
        self.stream: TextIO | None = None
        self.path: Path | None = None

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record) + "\n"
        if self.stream is None:
            if self.pending is not None:
                self.pending.append(text)
            return
        with contextlib.suppress(OSError, ValueError):  # a full disk must not stop the run: the console has it
            self.stream.write(text)
            self.stream.flush()

    def open(self, path: Path, append: bool) -> None:
        """Start writing ``path`` (appending on resume, replacing otherwise) with the lines held so far."""
        self.path = path
        self.stream = path.open("a" if append else "w", encoding="utf-8")
        with contextlib.suppress(OSError, ValueError):
            self.stream.writelines(self.pending or [])
            self.stream.flush()
        self.pending = []

    def note(self, line: str) -> None:
        """A line for the file only (the error that ended the run: the console shows it on stderr)."""
        self.handle(logging.makeLogRecord({"name": "mlx.run", "msg": line, "levelno": logging.ERROR}))

    def discard(self) -> None:
        """Stop keeping lines (the file is the caller's to remove)."""
        self.pending = None
        self._close_stream()

    def _close_stream(self) -> None:
        if self.stream is not None:
            with contextlib.suppress(OSError, ValueError):
                self.stream.close()
            self.stream = None

    def close(self) -> None:
        self._close_stream()
        super().close()


def console() -> logging.Logger:
    """The ``mlx`` logger with its console handler (idempotent), at INFO unless set otherwise."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, Console) for h in logger.handlers):
        handler = Console()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return logger


def say(line: str, level: int = logging.INFO, stderr: bool = False) -> None:
    """One line (or block) of run output: console (stdout, or stderr) and, during a run, mlx.log."""
    with contextlib.suppress(OSError, ValueError):
        log.log(level, line, extra={"stderr": stderr})


def warn(line: str) -> None:
    say(line, logging.WARNING)


@contextlib.contextmanager
def capture() -> Iterator[RunLogFile]:
    """While the block runs, every ``mlx`` line is also kept for the run's mlx.log (RunLogFile.open)."""
    handler = RunLogFile()
    logger = console()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def mode_log(run_folder: Path | None) -> Iterator[None]:
    """A mode's lines (evaluate, watch, record) also appended to the run's mlx.log, when there is a run
    folder with run_logs/: what a run's policy did after training stays beside the training's own lines."""
    with capture() as handler:
        logs = run_folder / "run_logs" if run_folder is not None else None
        if logs is not None and logs.is_dir():
            with contextlib.suppress(OSError):  # a read-only results folder: the console still shows it all
                handler.open(logs / LOG_NAME, append=True)
        yield


console()
