"""The Optuna side of a sweep: storage, study, sampler, pruner, and the bookkeeping that lets many workers
(processes, hosts, reruns after a kill) share one study without losing or repeating a trial.

Each trial this worker runs carries a system attribute `mlx:worker` = {host, pid, start, heartbeat}; a
background thread refreshes `heartbeat`. A RUNNING trial is dead when its worker was on this host and its
process is gone (seen at once), or when its heartbeat is older than `stale_after` (any host). A dead trial
is marked FAIL (`mlx.killed`) and enqueued again with the same parameters (`mlx.retry_of`); the retry
resumes the dead trial's results folder from its last checkpoint, so the work done is kept. Budget:
trials that are not retries count toward `n_trials`, so a kill costs no slot.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from mlx.errors import ConfigError
from mlx.sweep.settings import PrunerSettings, SamplerSettings, SweepSettings, journal_path
from mlx.tracking.secrets import redact

WORKER = "mlx:worker"
RETRY_OF = "mlx.retry_of"
RETRY_RUN_ID = "mlx.retry_run_id"
KILLED = "mlx.killed"
ERROR = "mlx.error"
RUN_ID = "mlx.run_id"


@functools.lru_cache(maxsize=8)
def open_storage(url: str) -> Any:
    """One storage object per URL and process (trials of a sweep share its connection pool)."""

    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage  # lazy for start-up speed (optuna)

            path = journal_path(url)
            return JournalStorage(JournalFileBackend(path))
        engine_kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            # Several processes write one file: wait for the lock instead of failing at once.
            engine_kwargs["connect_args"] = {"timeout": 60}
        else:
            engine_kwargs["pool_pre_ping"] = True
        return _rdb_storage(url, engine_kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure to open is the same user problem
        text = " ".join(str(exc).split())[:300]
        raise ConfigError(
            f"sweep.storage: cannot open '{redact(url)}' ({type(exc).__name__}: {redact(text)})"
        ) from None


def _rdb_storage(url: str, engine_kwargs: dict[str, Any], attempts: int = 5) -> Any:
    """Workers that start together on an empty database all create Optuna's tables; the losers of that
    race get a duplicate-object error, and a moment later find the tables made: try again."""
    import optuna  # lazy for start-up speed (optuna)
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except (IntegrityError, ProgrammingError, OperationalError) as exc:
            # PostgreSQL: duplicate type/key; SQLite: "table ... already exists". Anything else is real.
            racing = not isinstance(exc, OperationalError) or "already exists" in str(exc)
            if not racing or attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def make_sampler(settings: SamplerSettings, seed_offset: int = 0) -> Any:
    """seed_offset (trials already in the study) keeps a rerun from replaying the first run's draws."""
    import optuna  # lazy for start-up speed (optuna)

    seed = None if settings.seed is None else settings.seed + seed_offset
    startup = {} if settings.n_startup_trials is None else {"n_startup_trials": settings.n_startup_trials}
    if settings.type == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **startup)
    if settings.type == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, **startup)
    if settings.type == "gp":
        return optuna.samplers.GPSampler(seed=seed, **startup)
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(settings: PrunerSettings, summary_freq: int, max_steps: int) -> Any:
    """Resources are agent steps: the first rung defaults to one summary, the last to max_steps."""
    import optuna  # lazy for start-up speed (optuna)

    if settings.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings.n_startup_trials, n_warmup_steps=settings.n_warmup_steps
        )
    min_resource = settings.min_resource or summary_freq
    if settings.type == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=min_resource, reduction_factor=settings.reduction_factor
        )
    if settings.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=min_resource,
            max_resource=settings.max_resource or max_steps,
            reduction_factor=settings.reduction_factor,
        )
    return optuna.pruners.NopPruner()


def open_study(settings: SweepSettings, summary_freq: int, max_steps: int) -> Any:
    """Create the study, or load it (a rerun, another worker); refuse one that optimises the other way."""
    import optuna  # lazy for start-up speed (optuna)

    storage = open_storage(settings.storage)
    try:
        study_id = storage.get_study_id_from_name(settings.study_name)
    except KeyError:
        study_id = None
    existing = 0
    if study_id is not None:
        directions = storage.get_study_directions(study_id)
        if len(directions) != 1 or directions[0].name.lower() != settings.direction:
            found = ", ".join(d.name.lower() for d in directions)
            raise ConfigError(
                f"sweep.direction: study '{settings.study_name}' in {settings.storage} is already set to {found}, "
                f"not {settings.direction}; use another sweep.study_name"
            )
        existing = len(storage.get_all_trials(study_id, deepcopy=False))
    return optuna.create_study(
        storage=storage,
        study_name=settings.study_name,
        direction=settings.direction,
        sampler=make_sampler(settings.sampler, existing),
        pruner=make_pruner(settings.pruner, summary_freq, max_steps),
        load_if_exists=True,
    )


# ---- workers ----------------------------------------------------------------------------------------
def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (Linux), to tell a live worker from a recycled pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else fields[19]  # a zombie is as dead as a reaped process
    except (OSError, IndexError):
        return None


def worker_identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _process_start(os.getpid())}


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now_start = _process_start(pid)
    if start is not None and os.path.exists("/proc"):
        return now_start == start
    return True


def is_dead(trial: Any, stale_after: float, me: dict[str, Any], now: float | None = None) -> bool:
    """A RUNNING trial whose worker cannot finish it."""
    now = time.time() if now is None else now
    worker = trial.system_attrs.get(WORKER)
    if worker is None:  # asked by a worker that has not tagged it yet, or by another program
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        return now - started > stale_after
    if worker.get("pid") == me["pid"] and worker.get("host") == me["host"]:
        return False  # our own
    if worker.get("host") == me["host"] and not _alive(int(worker["pid"]), worker.get("start")):
        return True
    return now - float(worker.get("heartbeat", 0.0)) > stale_after


class Heartbeat:
    """Marks this worker's running trials as alive every `interval` seconds, from a daemon thread."""

    def __init__(self, storage: Any, interval: float) -> None:
        self.storage = storage
        self.interval = interval
        self.me = worker_identity()
        self.trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mlx-sweep-heartbeat", daemon=True)
        self._thread.start()

    def mark(self, trial_id: int) -> None:
        self.storage.set_trial_system_attr(trial_id, WORKER, {**self.me, "heartbeat": time.time()})

    def add(self, trial_id: int) -> None:
        self.mark(trial_id)
        with self._lock:
            self.trial_ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self.trial_ids.discard(trial_id)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = list(self.trial_ids)
            for trial_id in ids:
                try:
                    self.mark(trial_id)
                except Exception:  # noqa: BLE001 - finished meanwhile, or a storage hiccup: next beat retries
                    continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def recover_dead_trials(study: Any, storage: Any, study_id: int, stale_after: float, me: dict[str, Any]) -> list[int]:
    """Mark dead RUNNING trials FAIL and enqueue each again; returns the numbers recovered by us.

    Marking FAIL is the claim: the storage refuses to finish a trial twice, so when two workers find the
    same dead trial only the one whose update lands enqueues its retry.
    """
    from optuna.exceptions import UpdateFinishedTrialError  # lazy for start-up speed (optuna)
    from optuna.trial import TrialState

    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_dead(trial, stale_after, me):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            storage.set_trial_user_attr(trial_id, KILLED, True)
            if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
                continue
        except (UpdateFinishedTrialError, RuntimeError):
            continue  # another worker got there first, or it finished after all
        attrs = {RETRY_OF: trial.number}
        run_id = trial.user_attrs.get(RUN_ID)
        if run_id:
            attrs[RETRY_RUN_ID] = run_id
        study.enqueue_trial(trial.params, user_attrs=attrs)
        recovered.append(trial.number)
    return recovered


def budget(trials: Iterable[Any], n_trials: int) -> tuple[int, int]:
    """(new trials still allowed, trials waiting to run). Retries replace the trial they retry."""
    from optuna.trial import TrialState  # lazy for start-up speed (optuna)

    slots = waiting = 0
    for trial in trials:
        if trial.state == TrialState.WAITING:
            waiting += 1
        if RETRY_OF not in trial.user_attrs:
            slots += 1  # WAITING ones included: they are trials someone enqueued on purpose
    return max(0, n_trials - slots), waiting
