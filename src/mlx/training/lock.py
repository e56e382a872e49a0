"""One writer per run folder: an flock on results/<run_id>/.mlx.lock, held while a process trains the run.

A second writer (resume=true or force=true on a live run, or a new run with its run_id) is refused with one
line naming the process that holds it. The kernel drops an flock when its holder dies (kill -9, a crash,
a lost node on a shared file system that supports it), so a stale lock is taken over without asking; the
PID, host and start time written in the file are only for the message. The file stays after the run:
deleting it would let a second process lock a new file while a third still holds the old one.

evaluate, watch and record do not take it: they only read the run's checkpoints (written atomically), and
record writes its own demos/ file, which training never touches.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from mlx.errors import RunError, os_problem

LOCK_NAME = ".mlx.lock"


class RunLock:
    """An acquired lock on a run folder; ``release()`` (or process exit) gives it up."""

    def __init__(self, path: Path, fd: int, created: bool = False) -> None:
        self.path = path
        self._fd: int | None = fd
        self.created = created  # the run folder did not exist before: a refused start removes it again

    @classmethod
    def acquire(cls, root: Path, run_id: str) -> RunLock:
        """Create ``root`` if needed and lock it, or refuse in one line naming the holder."""
        path = root / LOCK_NAME
        created = not root.exists()
        try:
            root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise os_problem(exc, "the run folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(fd)
            os.close(fd)
            raise RunError(
                f"run_id '{run_id}' is being written by {holder}; stop it or choose another run_id (lock file {path})"
            ) from None
        except OSError as exc:  # a file system without locks
            os.close(fd)
            raise os_problem(exc, f"lock file {path}") from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode(), 0)
        except OSError:
            pass  # the flock is what counts; the record only names the holder in a refusal
        return cls(path, fd, created)

    def release(self, remove: bool = False) -> None:
        """Unlock (idempotent). The file is emptied, not removed (see the module docstring), unless
        ``remove``: a folder this process created for a start that was then refused."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            if remove:
                self.path.unlink()
        os.close(fd)  # closing the only descriptor of this open file releases the flock

    @property
    def held(self) -> bool:
        return self._fd is not None


def describe_holder(fd: int) -> str:
    """'process 1234 on host since 2026-12-05 12:00:00' from the lock file, or what can be said without it."""
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        pid, host, since = record["pid"], record.get("host", "?"), record.get("since", "?")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "another process"
    where = "" if host == socket.gethostname() else f" on {host}"
    return f"process {pid}{where} since {since}"
