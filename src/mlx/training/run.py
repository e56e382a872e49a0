"""One training run: results folder, env, trainers, tracking, the loop with its callbacks, the final files.

The files and their layout are mlx.training.checkpoints'; the loop is mlx.training.loop's, its side
concerns mlx.training.callbacks'. A run is crash-safe: files are written atomically, Ctrl-C, SIGTERM and
SIGHUP are taken between two steps (deferred_stop) and save a checkpoint to resume from, and a checkpoint
restores every random generator, so a resumed run continues exactly. One process writes a run folder at a
time (mlx.training.lock), and every ending but a crash of mlx itself keeps the work done (see run()).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from omegaconf import DictConfig

import mlx
import mlx.tracking
from mlx.config import RunConfig, validate
from mlx.envs.api import BaseEnv
from mlx.errors import EnvError, RunError, Stopped, TrainingError, is_os_problem, one_line_error, os_problem
from mlx.params.curriculum import EnvironmentParameterManager
from mlx.tracking.tracker import Tracker, flatten, make_tracker, run_tags
from mlx.trainers.registry import RLTrainer, make_trainer
from mlx.training.callbacks import (
    CheckpointEvery,
    Curriculum,
    OnSummary,
    ProgressLine,
    StopAtReward,
    SummaryHook,
)
from mlx.training.checkpoints import (
    RunPaths,
    TrainingStatus,
    atomic_write,
    load_checkpoint,
    save_checkpoint,
    truncate_stats,
)
from mlx.training.lock import LOCK_NAME, RunLock
from mlx.training.loop import Callback, Loop
from mlx.training.setup import configure_process, open_env, seeded
from mlx.training.summaries import REWARD, Progress, Summaries


class Run:
    """Everything one training run owns; `train()` runs the loop."""

    def __init__(
        self, cfg: RunConfig, on_summary: SummaryHook | None = None, tags: Mapping[str, str] | None = None
    ) -> None:
        self.cfg = cfg
        self.on_summary = on_summary
        self.tags = dict(tags or {})  # extra MLflow tags (a multirun job's overrides)
        self.paths = RunPaths.of(cfg)
        self.status = TrainingStatus()
        self.tracker: Tracker = Tracker()
        self.trainers: dict[str, RLTrainer] = {}
        self.env: BaseEnv | None = None
        self.elapsed_before = 0.0
        self.loop: Loop | None = None
        self.interrupt = threading.Event()  # set by Ctrl-C/SIGTERM/SIGHUP while run() runs under deferred_stop
        self.signum = int(signal.SIGINT)  # the signal that set it
        self.lock: RunLock | None = None  # held while this process writes the run folder
        self.parameters: EnvironmentParameterManager | None = None  # environment_parameters, when given

    # ---- set-up -------------------------------------------------------------------------------
    def lock_folder(self) -> None:
        """Take the run folder's lock (idempotent), before anything in it changes; a live writer refuses."""
        if self.lock is None:
            self.lock = RunLock.acquire(self.paths.root, self.cfg.run_id)

    def prepare_folder(self) -> None:
        cfg, paths = self.cfg, self.paths
        if not (cfg.resume and not paths.root.exists()):  # nothing to resume is refused below, creating nothing
            self.lock_folder()
        exists = paths.configuration.exists()
        if cfg.resume:
            if not exists:
                raise RunError(f"nothing to resume: {paths.root} has no run; start it without resume=true")
        elif exists:
            if not cfg.force:
                raise RunError(
                    f"run_id '{cfg.run_id}' already exists in {paths.root}; pass resume=true to continue it, "
                    "force=true to overwrite it, or choose another run_id"
                )
            for child in paths.root.iterdir():
                if child.name in (".hydra", LOCK_NAME):
                    continue
                if child == paths.run_logs:  # keep the logs env processes launched by build() write to
                    for log in child.iterdir():
                        if not log.name.startswith("Player-"):
                            shutil.rmtree(log) if log.is_dir() else log.unlink()
                    continue
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        paths.run_logs.mkdir(parents=True, exist_ok=True)
        if cfg.resume:
            self.status = TrainingStatus.load(paths.status)
        atomic_write(paths.configuration, yaml.safe_dump(cfg.resolved, sort_keys=False).encode())

    def build(self) -> None:
        """Env and trainers first: a bad env name or parameter is refused before any file is written."""
        cfg = self.cfg
        configure_process(cfg)
        device = torch.device(cfg.torch_settings.device)
        self.env, self.parameters = open_env(cfg, self.paths.run_logs)
        params = self.parameters
        for name, spec in self.env.behavior_specs.items():
            self.trainers[name] = make_trainer(
                name, spec, cfg.trainer_for(name), cfg.signals_for(name), device, cfg.seed
            )
        if params is not None:  # episode returns feed the curriculum's reward buffers as trainers report them
            for name, trainer in self.trainers.items():
                trainer.stats.watch(REWARD, lambda returns, behavior=name: params.record_rewards(behavior, returns))

    def restore(self) -> None:
        """resume: the newest checkpoint of each behaviour; initialize_from: another run's weights."""
        cfg = self.cfg
        if cfg.resume:
            for name, trainer in self.trainers.items():
                path = self.paths.latest_checkpoint(name)
                if not path.exists():  # stopped before its first checkpoint: the folder's run starts over
                    print(f"[INFO] {name}. No checkpoint in {path.parent}: training starts from step 0", flush=True)
                    continue
                state = load_checkpoint(path)
                trainer.load_state_dict(state["trainer"])
                trainer.load_extras(self.paths.behavior_dir(name))
                self.elapsed_before = max(self.elapsed_before, float(state.get("time_elapsed", 0.0)))
            truncate_stats(self.paths.stats, min(t.step for t in self.trainers.values()))
            if self.parameters is not None:  # lessons as of the last checkpoint (ML-Agents' GlobalTrainingStatus)
                assert self.env is not None
                changed = self.parameters.load_state(self.status.behaviors)
                self.parameters.apply(self.env, changed)
                for name in changed:
                    print(f"[INFO] Resumed: {self.parameters.describe(name)}", flush=True)
        elif cfg.initialize_from or any(cfg.trainer_for(n).init_path for n in self.trainers):
            for name, trainer in self.trainers.items():
                init_path = cfg.trainer_for(name).init_path
                if init_path:  # ML-Agents' per-behaviour init_path: a checkpoint file
                    path, source = Path(init_path), f"trainer.init_path={init_path}"
                else:
                    path = Path(cfg.results_dir) / str(cfg.initialize_from) / name / "checkpoint.pt"
                    source = f"initialize_from={cfg.initialize_from}"
                if not path.exists():
                    raise RunError(f"{source}: no checkpoint at {path}; name a finished run_id or a .pt file")
                try:
                    trainer.load_weights(load_checkpoint(path)["trainer"])
                except (RuntimeError, KeyError) as exc:
                    raise RunError(f"{source}: its network does not fit this run's ({one_line_error(exc)})") from None

    def start_tracking(self) -> None:
        cfg = self.cfg
        resume_id = self.tracking_resume_id()
        self.tracker = make_tracker(
            cfg.tracking,
            cfg.tracking.experiment_name or cfg.env.name,
            cfg.run_id,
            {
                "mlx.run_id": cfg.run_id,
                "mlx.env": cfg.env.name,
                "mlx.trainer": cfg.trainer.trainer_type,
                "mlx.seed": str(cfg.seed),
                **run_tags(cfg.tracking),
                **self.tags,
            },
            resume_id,
        )
        if resume_id is None:
            self.tracker.log_params(flatten(cfg.resolved))
            self.tracker.log_artifact(self.paths.configuration)
        self.status.metadata.update(
            mlx_version=mlx.__version__,
            torch_version=torch.__version__,
            mlflow_run_id=self.tracker.run_id,
            run_id=cfg.run_id,
            run_folder=str(self.paths.root.resolve()),
        )
        self.status.save(self.paths.status)

    def tracking_resume_id(self) -> str | None:
        """The MLflow run a resumed run continues: the one in training_status.json, unless this folder is
        not the one that MLflow run belongs to (a copy, or a move: cp -r results/a results/b), which gets
        its own MLflow run rather than writing into the original's."""
        meta = self.status.metadata
        resume_id = meta.get("mlflow_run_id") if self.cfg.resume else None
        if resume_id is None:
            return None
        origin = meta.get("run_folder")  # absent in runs made before it was recorded: their run_id tells
        here = str(self.paths.root.resolve())
        if (origin == here) if origin is not None else (meta.get("run_id", self.cfg.run_id) == self.cfg.run_id):
            return str(resume_id)
        print(
            f"[INFO] {self.paths.root} was made as {origin or meta.get('run_id')}: a new MLflow run tracks it",
            flush=True,
        )
        return None

    # ---- the loop -----------------------------------------------------------------------------
    def save_checkpoint(self, name: str, elapsed: float, final: bool = False) -> Path:
        loop, params = self.loop, self.parameters
        return save_checkpoint(
            self.paths,
            self.status,
            self.trainers[name],
            self.cfg.trainer_for(name).keep_checkpoints,
            elapsed,
            None if loop is None else loop.last_reward.get(name),
            final,
            None if params is None else params.state(),
        )

    def callbacks(self) -> list[Callback]:
        """The run's side concerns, in the order their hooks run."""
        cfg = self.cfg
        settings = {name: cfg.trainer_for(name) for name in self.trainers}
        out: list[Callback] = []
        if self.parameters is not None:
            out.append(Curriculum(self.parameters, {name: s.max_steps for name, s in settings.items()}))
        if cfg.stop_at_reward is not None:
            out.append(StopAtReward(cfg.stop_at_reward, self.parameters))
        if self.on_summary is not None:
            out.append(OnSummary(self.on_summary))
        steps = {name: trainer.step for name, trainer in self.trainers.items()}
        out.append(CheckpointEvery(settings, steps, self.save_checkpoint))
        if cfg.progress == "auto" and sys.stderr.isatty():
            out.append(ProgressLine(Progress(True)))
        return out

    def train(self) -> float | None:
        """The loop, then the final checkpoints, policies and curves; returns the mean of the last rewards."""
        assert self.env is not None
        settings = {name: self.cfg.trainer_for(name) for name in self.trainers}
        summaries = Summaries(self.paths.stats, self.tracker)
        loop = self.loop = Loop(
            self.env, self.trainers, settings, summaries, self.callbacks(), self.interrupt, self.elapsed_before
        )
        loop.run()
        for name in self.trainers:
            path = self.save_checkpoint(name, loop.elapsed, final=True)
            loop.call("on_final_checkpoint", name)
            print(f"[INFO] {name}. Saved final checkpoint {path} and policy {self.paths.policy(name)}", flush=True)
            self.tracker.log_artifact(self.paths.policy(name))
            if self.cfg.tracking.log_checkpoints:
                self.tracker.log_artifact(path, f"checkpoints/{name}")
        if self.paths.stats.exists():  # a run that ended before its first summary has none
            self.tracker.log_artifact(self.paths.stats, "run_logs")
        self.write_curves()
        rewards = [r for r in loop.last_reward.values() if r is not None]
        return float(np.mean(rewards)) if rewards else None

    def write_curves(self) -> None:
        """run_logs/<Behavior>_curves.png from stats.jsonl (mlx.tracking.curves), logged to MLflow. A drawing failure
        only warns: the final checkpoints and policies are saved by then."""
        from mlx.tracking.curves import write_run_curves  # lazy for start-up speed: matplotlib

        try:
            paths = write_run_curves(self.paths.root, list(self.trainers))
        except Exception as exc:  # noqa: BLE001 - a plotting library's failure must not fail a finished run
            print(f"[WARNING] Learning curves not drawn: {type(exc).__name__}: {one_line_error(exc)}", flush=True)
            return
        for path in paths:
            print(f"[INFO] Learning curves: {path}", flush=True)
            self.tracker.log_artifact(path, "run_logs")

    def save_current(self) -> dict[str, Path]:
        """A checkpoint of each behaviour at its current step (step 0 included), unless its newest one is at
        that step already; {} before the loop started (restore() has not run: nothing new to keep)."""
        if self.loop is None or not self.loop.started:
            return {}
        saved = {}
        for name, trainer in self.trainers.items():
            entries = self.status.behaviors.get(name, {}).get("checkpoints", [])
            if entries and entries[-1].get("steps") == trainer.step and self.paths.latest_checkpoint(name).exists():
                saved[name] = self.paths.behavior_dir(name) / f"{name}-{trainer.step}.pt"
            else:
                saved[name] = self.save_checkpoint(name, self.loop.elapsed)
        return saved

    def interrupted(self) -> None:
        """Ctrl-C, SIGTERM or SIGHUP between two steps: keep the work done so far in a checkpoint, so
        resume=true continues from here."""
        for name, path in self.save_current().items():
            say(f"\n[INFO] {name}. Interrupted: saved {path}; continue with run_id={self.cfg.run_id} resume=true")

    def failed(self, exc: BaseException) -> None:
        """Before an ending that leaves the trainers consistent (see saves_before): save, so nothing is lost."""
        if not saves_before(exc):
            return
        try:
            saved = self.save_current()
        except Exception as err:  # noqa: BLE001 - the original failure is the one to report
            say(f"[WARNING] No checkpoint could be saved after the failure: {one_line_error(err)}")
            return
        for name, path in saved.items():
            say(
                f"[INFO] {name}. Saved {path} before stopping; once fixed, continue: "
                f"run_id={self.cfg.run_id} resume=true"
            )

    def close(self, status: str) -> None:
        if self.env is not None:
            self.env.close()
        self.tracker.finish(status)

    def stopped_by(self, signum: int) -> None:
        self.signum = signum

    def finish(self, status: str) -> None:
        """close(), then give the run folder's lock back. A failing close only warns when the run is already
        ending otherwise (KILLED, FAILED: that error is the one to report); the lock is released either way."""
        try:
            self.close(status)
        except Exception as exc:
            if status == "FINISHED":
                raise
            say(f"[WARNING] Closing the run failed too: {type(exc).__name__}: {one_line_error(exc)}")
        finally:
            if self.lock is not None:
                self.lock.release()


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
    """Print a line to stdout; a closed terminal (after SIGHUP) or a broken pipe must not stop a save."""
    with contextlib.suppress(OSError, ValueError):
        print(line, flush=True)


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


def run(
    dict_cfg: DictConfig, on_summary: SummaryHook | None = None, tags: Mapping[str, str] | None = None
) -> float | None:
    """Run one training job from a composed Hydra config; returns the last mean reward.

    Endings: a stop signal saves a checkpoint, closes tracking as KILLED and raises Stopped (exit 128 +
    signal); a failure that leaves the trainers consistent saves them first (saves_before); a full or
    unwritable disk is one RunError line with the previous checkpoint kept."""
    cfg = seeded(validate(dict_cfg))
    job = Run(cfg, on_summary, tags)
    status = "FAILED"
    with deferred_stop(job.interrupt, job.stopped_by):
        try:
            if job.paths.configuration.exists():  # a run's folder: lock it before its env writes logs there
                job.lock_folder()
            job.build()
            job.prepare_folder()
            job.restore()
            job.start_tracking()
            result = job.train()
            status = "FINISHED"
            return result
        except KeyboardInterrupt as exc:
            status = "KILLED"
            if not getattr(exc, "at_once", False):
                job.interrupted()
            raise Stopped(getattr(exc, "signum", job.signum)) from None
        except Exception as exc:
            job.failed(exc)
            if isinstance(exc, OSError) and is_os_problem(exc):
                raise os_problem(
                    exc, "the run folder" if exc.filename else f"the run folder {job.paths.root}"
                ) from None
            raise
        finally:
            job.finish(status)
