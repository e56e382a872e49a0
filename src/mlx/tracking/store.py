"""The tracking store as a thing that fails: checks before a run starts, transient vs lasting failures,
retries with back-off, and removing metric points a resumed run will log again.

A store that cannot work at all (unknown scheme, a file that is not a SQLite database, a read-only file
or folder, a folder that does not exist) is refused at the start in one line naming tracking.uri and the
fix. A store that is only busy or away for a while (SQLite's "database is locked" while the MLflow UI or
another job writes, a server that does not answer) is retried; what "a while" means is the caller's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from mlx.errors import TrackingError, one_line_error
from mlx.tracking.secrets import redact

T = TypeVar("T")

FIX = "fix tracking.uri (e.g. tracking.uri=sqlite:///mlflow.db) or train without MLflow: tracking=none"
SQLITE_HEADER = b"SQLite format 3\x00"
# Substrings of the messages of failures that pass by themselves: a lock held by another writer, a server
# or database that is restarting, unreachable or overloaded.
TRANSIENT = (
    "database is locked",
    "database table is locked",
    "database is busy",
    "sqlite_busy",
    "connection refused",
    "connection reset",
    "connection aborted",
    "connectionerror",
    "max retries exceeded",
    "timed out",
    "timeout",
    "temporarily unavailable",
    "temporary failure",
    "name or service not known",
    "could not connect",
    "server closed the connection",
    "lost connection",
    "too many connections",
    "broken pipe",
    "remote end closed",
    "response code 429",
    "response code 500",
    "response code 502",
    "response code 503",
    "response code 504",
    "service unavailable",
    "bad gateway",
)


def describe_uri(uri: str) -> str:
    return f"tracking.uri={redact(uri)}"


def why(exc: BaseException) -> str:
    """A library failure as one short line with no password and no SQL statement in it."""
    text = str(exc).split("\n[SQL:")[0].split("(Background on this error")[0]
    return redact(f"{type(exc).__name__}: {one_line_error(Exception(text))}")[:300]


def is_transient(exc: BaseException) -> bool:
    """True for failures that pass by themselves (a lock, a server away); False for lasting ones."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # MLflow wraps SQLAlchemy's and requests' errors
        seen.add(id(current))
        if isinstance(current, (ConnectionError, TimeoutError)):
            return True
        text = f"{type(current).__name__} {current}".lower()
        if any(marker in text for marker in TRANSIENT):
            return True
        current = current.__cause__ or current.__context__
    return False


def retry(call: Callable[[], T], window: float, first_delay: float = 0.1, max_delay: float = 2.0) -> T:
    """``call()``, again after transient failures with exponential back-off (jittered) until ``window``
    seconds have passed since the first try; a lasting failure, or the last transient one, is raised."""
    start = time.monotonic()
    delay = first_delay
    while True:
        try:
            with quietly():
                return call()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() - start + delay > window:
                raise
        time.sleep(delay * (0.5 + random.random() / 2))
        delay = min(delay * 2, max_delay)


def sqlite_path(uri: str) -> Path | None:
    """The file of a sqlite:/// URI (None for other stores and for an in-memory database)."""
    if not uri.startswith("sqlite:"):
        return None
    rest = uri[len("sqlite:") :].split("?", 1)[0]
    if not rest.startswith("///"):
        return None
    path = rest[3:]
    return Path(path) if path and path != ":memory:" else None


# The stores MLflow itself registers; a scheme outside this set asks MLflow (plugins register more), which
# costs its import (about 1.2 s) only for such a URI.
BUILTIN_SCHEMES = frozenset({"", "file", "http", "https", "databricks", "sqlite", "postgresql", "mysql", "mssql"})


def known_schemes() -> set[str]:
    from mlflow.tracking._tracking_service import utils  # lazy for start-up speed (mlflow)

    registry = getattr(utils, "_tracking_store_registry", None)
    found = set(getattr(registry, "_registry", {}) or ())
    return found or set(BUILTIN_SCHEMES)


def check_store(uri: str) -> None:
    """Refuse, in one line, a tracking store that cannot work whatever happens next."""
    where = describe_uri(uri)
    if not isinstance(uri, str) or not uri.strip():
        raise TrackingError(f"tracking.uri is empty; {FIX}")
    if "://" not in uri and re.match(r"^[\w.-]+:\d+(/|$)", uri):  # MLflow would make a folder of it
        raise TrackingError(f"{where}: looks like host:port without a scheme; write http://{redact(uri)}, or {FIX}")
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme not in BUILTIN_SCHEMES and scheme not in known_schemes():
        known = ", ".join(sorted(s for s in known_schemes() if s))
        raise TrackingError(f"{where}: MLflow has no store for scheme '{scheme}' (known: {known}); {FIX}")
    path = sqlite_path(uri)
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise TrackingError(f"{where}: the folder {folder} {what}; create it, {FIX}")
    if path.exists():
        if path.is_dir():
            raise TrackingError(f"{where}: {path} is a folder, not a database file; {FIX}")
        try:
            with open(path, "rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise TrackingError(f"{where}: {path} cannot be read ({exc.strerror}); {FIX}") from None
        if head and head != SQLITE_HEADER:
            raise TrackingError(f"{where}: {path} is not a SQLite database (corrupt or another file); "
                                f"move it away or {FIX}")  # fmt: skip
        if not os.access(path, os.W_OK):
            raise TrackingError(f"{where}: {path} is read-only; make it writable (chmod u+w) or {FIX}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TrackingError(
            f"{where}: the folder {folder} is read-only (SQLite writes a journal beside {path.name}); "
            f"make it writable or {FIX}"
        )


def start_error(uri: str, exc: BaseException, doing: str) -> TrackingError:
    """The one line for a store that failed while a run was starting."""
    where = describe_uri(uri)
    text = str(exc).lower()
    if "malformed" in text or "not a database" in text or "file is encrypted" in text:
        hint = "the database file is damaged; move it away (keep a copy) or"
    elif "readonly" in text or "read-only" in text:
        hint = "the store is read-only; make it writable or"
    elif is_transient(exc):
        hint = "the store did not answer (locked by another process, or the server is away); try again, or"
    else:
        hint = "the store refused it; check it, or"
    return TrackingError(f"{where}: {doing} failed ({why(exc)}); {hint} {FIX}")


def rewind_sql(client: Any, run_id: str, cut: Callable[[str], int | None]) -> int | None:
    """Delete the run's metric points of each key logged for steps after ``cut(key)`` (None: keep the key's
    points; a resume cuts each behaviour's keys at its own checkpoint) and recompute its latest values;
    returns how many were deleted, or None when the store is not a SQL database (nothing can be deleted)."""
    store = client._tracking_client.store
    maker = getattr(store, "ManagedSessionMaker", None)
    if maker is None:
        return None
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric  # lazy (mlflow)

    with maker(read_only=False) as session:
        keys = [k for (k,) in session.query(SqlMetric.key).filter(SqlMetric.run_uuid == run_id).distinct()]
        by_step: dict[int, list[str]] = {}
        for key in keys:
            if (step := cut(key)) is not None:
                by_step.setdefault(step, []).append(key)
        deleted = 0
        for step, group in by_step.items():
            for i in range(0, len(group), 500):  # within every database's limit of bound parameters
                later = session.query(SqlMetric).filter(
                    SqlMetric.run_uuid == run_id, SqlMetric.key.in_(group[i : i + 500]), SqlMetric.step > step
                )
                deleted += later.delete(synchronize_session=False)
        if not deleted:
            return 0
        session.query(SqlLatestMetric).filter(SqlLatestMetric.run_uuid == run_id).delete(synchronize_session=False)
        latest: dict[str, Any] = {}
        for m in session.query(SqlMetric).filter(SqlMetric.run_uuid == run_id):
            old = latest.get(m.key)
            if old is None or (m.step, m.timestamp, m.value) > (old.step, old.timestamp, old.value):
                latest[m.key] = m
        for m in latest.values():
            session.add(
                SqlLatestMetric(
                    run_uuid=run_id, key=m.key, value=m.value, timestamp=m.timestamp, step=m.step, is_nan=m.is_nan
                )
            )
    return int(deleted)


_BUSY_TIMEOUTS: dict[int, int] = {}


def set_busy_timeout(client: Any, seconds: float) -> None:
    """How long one call waits on a SQLite lock before it fails (MLflow's sessions set 20 s): the retry
    window is then the tracker's to choose. Nothing for other stores."""
    engine = getattr(client._tracking_client.store, "engine", None)
    if engine is None or engine.dialect.name != "sqlite":
        return
    from sqlalchemy import event  # lazy for start-up speed (sqlalchemy)

    first = id(engine) not in _BUSY_TIMEOUTS
    _BUSY_TIMEOUTS[id(engine)] = max(1, int(seconds * 1000))
    if first:

        def rewrite(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> Any:
            if statement.lstrip().upper().startswith("PRAGMA BUSY_TIMEOUT"):
                statement = f"PRAGMA busy_timeout = {_BUSY_TIMEOUTS[id(engine)]};"
            return statement, params

        event.listen(engine, "before_cursor_execute", rewrite, retval=True)


class Quiet(logging.Filter):
    """Drops MLflow's own error logs (a traceback per failed call) while the tracker makes a call: the
    tracker retries and reports a failure in one line itself."""

    local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "on", False) or record.levelno >= logging.CRITICAL


def quiet_mlflow() -> None:
    """Install Quiet on MLflow's loggers once."""
    for name in ("mlflow.store.db.utils", "mlflow.store.tracking.sqlalchemy_store", "mlflow.utils.rest_utils"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, Quiet) for f in logger.filters):
            logger.addFilter(Quiet())


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """MLflow's error logs dropped in this thread while the block runs."""
    before = getattr(Quiet.local, "on", False)
    Quiet.local.on = True
    try:
        yield
    finally:
        Quiet.local.on = before
