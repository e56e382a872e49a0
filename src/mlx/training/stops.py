"""How a run stops: signals taken between two steps (deferred_stop), and which failures save first.

Ctrl-C, SIGTERM (cluster schedulers, `kill`) and SIGHUP (a closed terminal) all end a run the same way:
the loop finishes its step, a checkpoint and the policy are saved, tracking is closed as KILLED, and the
process exits with 128 + the signal's number. Failures that leave the trainers as they were after their
last update (an env gone for good, a tracking store failing) save a checkpoint before their error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlx.tracking
from mlx.errors import EnvError, Stopped, TrainingError, is_os_problem
from mlx.training import output

TRACKING_DIR = Path(mlx.tracking.__file__).parent  # the tracking package: a failure raised in it is the store's


def saves_before(exc: BaseException) -> bool:
    """Whether a run ending with ``exc`` saves its trainers first: an env that went away or exceeded its
    restart limit (EnvError) and a tracking store failure leave them as they were after their last update.
    Not a TrainingError (a NaN loss or observation may have reached the weights or the normaliser: the
    last periodic checkpoint stays the one to resume from), a full or read-only disk (nothing can be
    written), or a bug in mlx (its state is unknown)."""
    if isinstance(exc, TrainingError) or is_os_problem(exc):
        return False
    return isinstance(exc, EnvError) or raised_in(exc, TRACKING_DIR)


def raised_in(exc: BaseException, folder: Path) -> bool:
    """Whether any frame of ``exc``'s traceback runs code from ``folder`` (the tracking package)."""
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).is_relative_to(folder):
            return True
        tb = tb.tb_next
    return False


def say(line: str) -> None:
    """A line of run output (mlx.training.output: console and mlx.log); a closed terminal (after SIGHUP)
    or a broken pipe must not stop a save."""
    level = logging.WARNING if line.startswith("[WARNING]") else logging.INFO
    output.say(line, level)


SIGNAL_NAMES = {int(signal.SIGINT): "Ctrl-C", int(signal.SIGTERM): "SIGTERM", int(signal.SIGHUP): "SIGHUP"}


@contextlib.contextmanager
def deferred_stop(event: threading.Event, record: Callable[[int], None] = lambda signum: None) -> Iterator[None]:
    """Ctrl-C, SIGTERM (schedulers, `kill`) and SIGHUP (a closed terminal) set ``event``, which the training
    loop checks between steps, rather than raising wherever the signal lands (inside a checkpoint write,
    or holding a lock the clean-up then waits for); ``record`` gets the signal's number. A second Ctrl-C
    stops at once (Stopped with at_once, no save); a repeated SIGTERM or SIGHUP is ignored, since a shell
    and the kernel each send SIGHUP when a terminal closes. After SIGHUP, standard streams that are a
    terminal go to /dev/null, so that writing to the closed terminal cannot fail the save. Outside the
    main thread (signals cannot be caught there) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            detach_terminal()
        if event.is_set():
            if signum == signal.SIGINT:
                raise Stopped(signum, at_once=True)
            return
        record(signum)
        event.set()
        again = "Ctrl-C again to stop at once" if signum == signal.SIGINT else "kill -9 to stop at once"
        with contextlib.suppress(OSError, ValueError):
            print(
                f"\n[INFO] {SIGNAL_NAMES.get(signum, signum)}: stopping after this step and saving a checkpoint "
                f"({again}).",
                file=sys.stderr,
                flush=True,
            )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def detach_terminal() -> None:
    """Point stdout and stderr at /dev/null where they are a terminal (a hung-up one fails every write)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    for fd in (1, 2):
        try:
            if os.isatty(fd):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)
        except OSError:
            continue
