"""The env processes behind a UnityEnv: one record per worker, how to find and run them, when to restart.

A worker is one copy of the environment (a Unity build, the Editor, or ``python -m mlx.envs.unity.remote``)
connected to its own port. mlx.envs.unity.env launches, restarts and stops them; this module holds what it
needs to know about them: the executable, ML-Agents' restart limits, the log's last lines for errors, and
the last-resort kill at interpreter exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlx.envs.api import BehaviorSpec, EnvError
from mlx.envs.unity.communicator_objects.messages_pb2 import UnityOutputProto
from mlx.envs.unity.rpc import EnvServer

LOG_TAIL_LINES = 8


@dataclass(frozen=True)
class RestartPolicy:
    """ML-Agents' limits on relaunching crashed envs (-1: no limit)."""

    max_lifetime_restarts: int = 10
    rate_limit_n: int = 1
    rate_limit_period_s: float = 60.0

    def refusal(self, restarts: int, recent: Sequence[float], now: float) -> str | None:
        """Why one more restart is not allowed, or None if it is."""
        if self.max_lifetime_restarts != -1 and restarts >= self.max_lifetime_restarts:
            return f"it was restarted {restarts} times already (env.max_lifetime_restarts={self.max_lifetime_restarts})"
        window = [t for t in recent if now - t < self.rate_limit_period_s]
        if self.rate_limit_n != -1 and len(window) >= self.rate_limit_n:
            return (
                f"it was restarted {len(window)} time(s) in the last {self.rate_limit_period_s:g} s "
                f"(env.restarts_rate_limit_n={self.rate_limit_n}, "
                f"env.restarts_rate_limit_period_s={self.rate_limit_period_s:g})"
            )
        return None


@dataclass
class Worker:
    """One env process (or the Editor) on its port, with its restart history and what it last said."""

    index: int
    port: int
    server: EnvServer
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    restarts: int = 0
    restart_times: list[float] = field(default_factory=list)
    specs: dict[str, BehaviorSpec] = field(default_factory=dict)  # wire name -> spec
    output: UnityOutputProto | None = None  # its last message, not yet merged

    def describe(self) -> str:
        pid = f", pid {self.proc.pid}" if self.proc is not None else ""
        return f"env worker {self.index} (port {self.port}{pid})"


def find_executable(path: str) -> str:
    """The file to run for env.path, trying the names a Unity build has on each platform."""
    p = Path(path).expanduser()
    candidates = [p, p.with_name(p.name + ".x86_64"), p.with_name(p.name + ".x86"), p.with_name(p.name + ".exe")]
    if p.suffix == ".app" or p.with_name(p.name + ".app").is_dir():
        app = p if p.suffix == ".app" else p.with_name(p.name + ".app")
        macos = app / "Contents" / "MacOS"
        candidates += sorted(macos.iterdir()) if macos.is_dir() else []
    for c in candidates:
        if c.is_file():
            if not os.access(c, os.X_OK):
                raise EnvError(f"env.path {c} is not executable; make it so (chmod +x {c})")
            return str(c.resolve())
    found = shutil.which(path)
    if found:
        return found
    tried = ", ".join(str(c) for c in candidates[:4])
    raise EnvError(f"env.path: no executable at {path} (tried {tried}); give the path of a Unity build or launcher")


def log_tail(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()][-LOG_TAIL_LINES:]
    return f"; last lines of {path}: " + " | ".join(ln.strip() for ln in lines) if lines else ""


def kill_all(workers: list[Worker]) -> None:
    """Last resort at interpreter exit: no env process outlives the trainer."""
    for w in workers:
        if w.proc is not None and w.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(w.proc.pid, signal.SIGKILL)


def remote_command(env_name: str, python: str | None = None) -> list[str]:
    """The argv that runs a native mlx env as an ML-Agents environment process (see mlx.envs.unity.remote)."""
    return [python or sys.executable, "-m", "mlx.envs.unity.remote", env_name]
