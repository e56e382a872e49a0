"""Real servers on loopback for the distributed-sweep tests: PostgreSQL and an MLflow tracking server.

PostgreSQL comes from the `pgserver` wheel (the server binaries, installed by `pip install -e '.[dev]'`);
it is started here with initdb + postgres on 127.0.0.1 and a free port, trust authentication, in a
temporary data folder. PostgreSQL refuses to run as root, so as root (CI) it runs as the `nobody` user.
A missing install fails the test with the command that fixes it; nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

INSTALL_HINT = "install the dev extra: .venv/bin/pip install -e '.[dev]' (it brings pgserver and psycopg)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path:
    """The server binaries inside the pgserver wheel (found without importing it: we only need files)."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"PostgreSQL server binaries are missing (package pgserver); {INSTALL_HINT}")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        pytest.fail(f"pgserver has no postgres binary at {bin_dir}; {INSTALL_HINT}")
    return bin_dir


def _as_user() -> dict:
    """PostgreSQL will not run as root: run it as nobody then (it only needs its own data folder)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "nobody", "group": "nogroup" if _group_exists("nogroup") else "nobody"}


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _wait_port(port: int, proc: subprocess.Popen, log: Path, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s: {log.read_text()[-2000:]}")


@contextmanager
def postgres(databases: tuple[str, ...] = ("optuna", "mlflow")) -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1; yields 'postgresql://postgres@127.0.0.1:<port>' (add /<db>)."""
    bin_dir = postgres_bin()
    try:
        import psycopg
    except ImportError:
        pytest.fail(f"the PostgreSQL driver psycopg is missing; {INSTALL_HINT}")
    user = _as_user()
    # Not under pytest's tmp_path: that is private to root, and the server may run as nobody.
    root = Path(tempfile.mkdtemp(prefix="mlx-pg-"))
    if user:
        shutil.chown(root, user["user"], user["group"])
        # nobody may not be able to reach the venv (a clone in a private folder): run a copy of the
        # binaries from here, in the wheel's layout (they find lib/, share/ and the vendored
        # ../../../pgserver.libs relative to bin/).
        site = bin_dir.parents[2]
        for part in ("bin", "lib", "share"):
            shutil.copytree(bin_dir.parent / part, root / "pgserver" / "pginstall" / part, symlinks=True)
        shutil.copytree(site / "pgserver.libs", root / "pgserver.libs", symlinks=True)
        bin_dir = root / "pgserver" / "pginstall" / "bin"
        os.chmod(root, 0o755)
    data, log = root / "data", root / "postgres.log"
    init = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "utf8"],
        capture_output=True,
        text=True,
        **user,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed ({init.returncode}): {init.stderr[-2000:]}")
    port = free_port()
    with open(log, "w") as log_file:
        proc = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(root)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            **user,
        )
    try:
        _wait_port(port, proc, log, "postgres", 30)
        url = f"postgresql://postgres@127.0.0.1:{port}"
        for _ in range(50):  # listening comes a moment before accepting logins
            try:
                conn = psycopg.connect(f"{url}/postgres", autocommit=True)
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        else:
            pytest.fail(f"postgres on port {port} accepts no connection: {log.read_text()[-2000:]}")
        with conn:
            for db in databases:
                conn.execute(f"CREATE DATABASE {db}")
        yield url
    finally:
        proc.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown: no waiting for clients
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def mlflow_server(backend_uri: str, artifacts: Path) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 backed by `backend_uri`; yields its http:// tracking URI."""
    port = free_port()
    log = artifacts.parent / "mlflow-server.log"
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow)] if mlflow.exists() else [sys.executable, "-m", "mlflow"]
    with open(log, "w") as log_file:
        proc = subprocess.Popen(
            [
                *command,
                "server",
                "--backend-store-uri",
                backend_uri,
                "--artifacts-destination",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_port(port, proc, log, "mlflow server", 120)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server at {uri} is not healthy: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield uri
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """The server and the workers it started (its own process group)."""
    for sig, wait in ((15, 3), (9, 10)):  # a test server: its data is thrown away, no need to be patient
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
