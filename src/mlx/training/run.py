"""One training run: results folder, env, trainers, tracking, the loop with its callbacks, the final files.

The files and their layout are mlx.training.checkpoints'; the loop is mlx.training.loop's, its side
concerns mlx.training.callbacks'. A run is crash-safe: files are written atomically, Ctrl-C, SIGTERM and
SIGHUP are taken between two steps (deferred_stop) and save a checkpoint to resume from, and a checkpoint
restores every random generator, so a resumed run continues exactly. One process writes a run folder at a
time (mlx.training.lock), and every ending but a crash of mlx itself keeps the work done (see run()).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import yaml
from omegaconf import DictConfig

import mlx
from mlx.config import RunConfig, validate
from mlx.config.resume import RECORD_DIR, Change, changes, check_resumable, flatten, load_saved
from mlx.envs.api import BaseEnv
from mlx.errors import RunError, Stopped, is_os_problem, one_line_error, os_problem
from mlx.params.curriculum import EnvironmentParameterManager
from mlx.tracking.curves import FinalCurves, draw_here
from mlx.tracking.mlflow_run import experiment_of, legacy_store_hint, open_hint, run_params, source_tags
from mlx.tracking.store import check_store
from mlx.tracking.tensorboard import behavior_settings
from mlx.tracking.tracker import SYNC_FILE, SyncState, Tracker, make_tracker, run_tags
from mlx.trainers.ghost import with_self_play
from mlx.trainers.registry import RLTrainer, make_trainer
from mlx.training.banner import hyperparameter_banner, start_banner, tracking_line, tuned_file
from mlx.training.callbacks import (
    CheckpointEvery,
    Curriculum,
    OnSummary,
    PhaseSplit,
    ProgressLine,
    StopAtReward,
    SummaryHook,
    TrackingStart,
)
from mlx.training.checkpoints import (
    STATE_MISMATCH,
    RunPaths,
    TrainingStatus,
    atomic_write,
    init_checkpoint,
    load_checkpoint,
    resume_trainer,
    save_checkpoint,
    truncate_stats,
)
from mlx.training.lock import LOCK_NAME, RunLock
from mlx.training.loop import Callback, Loop
from mlx.training.output import LOG_NAME, RunLogFile, capture, say, warn
from mlx.training.setup import configure_process, open_env, seeded
from mlx.training.stops import deferred_stop, saves_before
from mlx.training.summaries import Progress, Summaries
from mlx.training.timers import Timers, debug_logging


class Run:
    """Everything one training run owns; `train()` runs the loop."""

    def __init__(
        self,
        cfg: RunConfig,
        on_summary: SummaryHook | None = None,
        tags: Mapping[str, str] | None = None,
        record: Mapping[str, str] | None = None,
    ) -> None:
        self.cfg = cfg
        self.record = dict(record or {})  # Hydra's record of the command line (mlx.config.record)
        self.resume_changes: list[Change] = []  # what a resume changes (check_start)
        self.started_fresh = False  # prepare_folder took the folder for a new run
        self.on_summary = on_summary
        self.tags = dict(tags or {})  # extra MLflow tags (a multirun job's overrides)
        self.paths = RunPaths.of(cfg)
        self.status = TrainingStatus()
        self.tracker: Tracker = Tracker()
        self.superseded: str | None = None  # force=true: the MLflow run of the folder this run replaces
        self.experiment = ""  # the MLflow experiment's name
        self.tracking_said = False  # tracking_started has said where the MLflow run is
        self.curves: FinalCurves | None = None  # the final curves' child, once the loop starts
        self.trainers: dict[str, RLTrainer] = {}
        self.env: BaseEnv | None = None
        self.elapsed_before = 0.0
        self.loop: Loop | None = None
        self.interrupt = threading.Event()  # set by Ctrl-C/SIGTERM/SIGHUP while run() runs under deferred_stop
        self.signum = int(signal.SIGINT)  # the signal that set it
        self.lock: RunLock | None = None  # held while this process writes the run folder
        self.seed_drawn = False  # seed=-1: the banner says the seed was drawn
        self.log_file: RunLogFile | None = None  # run_logs/mlx.log, opened once the folder is taken
        self.parameters: EnvironmentParameterManager | None = None  # environment_parameters, when given
        # run_logs/timers.json: from here to the end of the run (set-up, the loop's phases, the final files)
        self.timers = Timers()
        self.timers.metadata.update(
            mlx_version=mlx.__version__, pytorch_version=torch.__version__, numpy_version=np.__version__
        )

    # ---- set-up -------------------------------------------------------------------------------
    def check_start(self) -> None:
        """Everything that can refuse the start, before any file is written or env launched: the run_id
        (taken, or nothing to resume), what a resume changes (mlx.config.resume), initialize_from's files,
        the tracking store."""
        cfg, paths = self.cfg, self.paths
        exists = paths.configuration.exists()
        if cfg.resume:
            saved = load_saved(paths.root)
            if saved is None:
                raise RunError(f"nothing to resume: {paths.root} has no run; start it without resume=true")
            self.resume_changes = changes(saved, cfg.resolved)
            check_resumable(self.resume_changes, cfg.run_id)
        elif exists and not cfg.force:
            raise RunError(
                f"run_id '{cfg.run_id}' already exists in {paths.root}; pass resume=true to continue it, "
                "force=true to overwrite it, or choose another run_id"
            )
        if cfg.initialize_from and not cfg.resume:
            other = Path(cfg.results_dir) / str(cfg.initialize_from)
            if not (other / "configuration.yaml").is_file():
                raise RunError(f"initialize_from={cfg.initialize_from}: no run in {other}; name a finished run_id")
        if cfg.tracking.backend == "mlflow":  # an unusable store refuses the start before any file is written
            check_store(cfg.tracking.uri)

    def lock_folder(self) -> None:
        """Take the run folder's lock (idempotent), before anything in it changes; a live writer refuses."""
        if self.lock is None:
            self.lock = RunLock.acquire(self.paths.root, self.cfg.run_id)

    def prepare_folder(self) -> None:
        """Take the folder: clear it (force), or record what a resume changes; then the configuration and,
        for a new run, Hydra's record of its command line (mlx.config.record)."""
        cfg, paths = self.cfg, self.paths
        exists = paths.configuration.exists()
        if exists and not cfg.resume:  # force=true (check_start refused the rest)
            try:  # the MLflow run of the run force=true replaces (start_tracking marks it); a corrupt file: none
                old = TrainingStatus.load(paths.status).metadata.get("mlflow_run_id") if paths.status.exists() else None
            except RunError:
                old = None
            self.superseded = old if isinstance(old, str) else None
            for child in paths.root.iterdir():
                if child.name == LOCK_NAME:  # held by this process
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
            self.record_resume()
        elif self.record:
            folder = paths.root / RECORD_DIR
            folder.mkdir(exist_ok=True)
            for file_name, text in self.record.items():
                atomic_write(folder / file_name, text.encode())
        self.started_fresh = not cfg.resume
        atomic_write(paths.configuration, yaml.safe_dump(cfg.resolved, sort_keys=False).encode())
        if self.log_file is not None:  # the lines so far, then the rest as they come
            self.log_file.open(paths.run_logs / LOG_NAME, append=cfg.resume)

    def record_resume(self) -> None:
        """Print each setting this resume changes and append it, with the command line, to
        run_logs/resumes.jsonl; the configuration it replaces is kept as run_logs/configuration-<n>.yaml."""
        paths = self.paths
        log = paths.run_logs / "resumes.jsonl"
        number = 1 + (sum(1 for _ in log.open()) if log.exists() else 0)
        for change in self.resume_changes:
            say(f"[INFO] Resume changes {change.describe()}")
        if self.resume_changes:
            shutil.copyfile(paths.configuration, paths.run_logs / f"configuration-{number}.yaml")
        row = {
            "resume": number,
            "time": time.time(),
            "overrides": yaml.safe_load(self.record.get("overrides.yaml", "[]")),
            "changes": [c.as_json() for c in self.resume_changes],
        }
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def undo_start(self) -> None:
        """A new run that failed before its loop began leaves its run_id free again: the files that take
        it (configuration, record, status) go; env logs stay for the diagnosis."""
        if not self.started_fresh or (self.loop is not None and self.loop.started):
            return
        paths = self.paths
        paths.configuration.unlink(missing_ok=True)
        paths.status.unlink(missing_ok=True)
        if self.log_file is not None:
            self.log_file.discard()
        (paths.run_logs / LOG_NAME).unlink(missing_ok=True)
        shutil.rmtree(paths.root / RECORD_DIR, ignore_errors=True)

    def build(self) -> None:
        """Env and trainers first: a bad env name or parameter is refused before any file is written."""
        cfg = self.cfg
        configure_process(cfg)
        device = torch.device(cfg.torch_settings.resolved_device())
        self.env, self.parameters = open_env(cfg, self.paths.run_logs)
        params = self.parameters
        for name, spec in self.env.behavior_specs.items():
            self.trainers[name] = make_trainer(
                name, spec, cfg.trainer_for(name), cfg.signals_for(name), device, cfg.seed
            )
        self.trainers = with_self_play(self.trainers, cfg.trainer_for, self.env, cfg.env.name, cfg.seed)
        if params is not None:  # episode returns feed the curriculum's reward buffers as trainers report them
            for name, trainer in self.trainers.items():
                params.watch(trainer.stats, name)

    def announce(self) -> None:
        """The start banner (what runs where, with which seed, tuned file, tracking and device), then each
        behaviour's hyperparameters and a warning for a behaviour too short for a periodic summary."""
        cfg, paths = self.cfg, self.paths
        if cfg.resume:
            state = "resuming"
        elif paths.configuration.exists():
            state = "new, replacing the run in its folder (force=true)"
        else:
            state = "new"
        areas = f"{cfg.env.num_areas} areas" + (f" x {cfg.env.num_envs} envs" if cfg.env.num_envs > 1 else "")
        rows = {
            "results": str(paths.root.resolve()),
            "seed": f"{cfg.seed} (drawn for seed=-1)" if self.seed_drawn else str(cfg.seed),
            "env": f"{cfg.env.name}, {areas}",
            "trainers": ", ".join(f"{name} {cfg.trainer_for(name).trainer_type}" for name in self.trainers),
            "tuned": tuned_file(),
            "tracking": tracking_line(cfg.tracking.backend, cfg.tracking.uri, cfg.tracking.tensorboard),
            "device": cfg.torch_settings.resolved_device(),
            "log": str(paths.run_logs / LOG_NAME),
        }
        say(start_banner(rows, f"mlx {mlx.__version__}: run '{cfg.run_id}' ({state})"))
        for name in self.trainers:
            settings = cfg.trainer_for(name)
            say(hyperparameter_banner(name, behavior_settings(cfg, name)))
            if settings.summary_freq > settings.max_steps:
                warn(
                    f"[WARNING] {name}. summary_freq ({settings.summary_freq}) exceeds max_steps "
                    f"({settings.max_steps}): one summary at the end"
                )

    def restore(self) -> None:
        """resume: the newest checkpoint of each behaviour; initialize_from: another run's weights."""
        cfg = self.cfg
        if cfg.resume:
            for name, trainer in self.trainers.items():
                path = self.paths.latest_checkpoint(name)
                if not path.exists():  # stopped before its first checkpoint: the folder's run starts over
                    say(f"[INFO] {name}. No checkpoint in {path.parent}: training starts from step 0")
                    continue
                elapsed = resume_trainer(trainer, path)
                trainer.load_extras(self.paths.behavior_dir(name))
                self.elapsed_before = max(self.elapsed_before, elapsed)
                say(f"[INFO] {name}. Resuming from step {trainer.step} ({path})")
            truncate_stats(self.paths.stats, self.resume_steps())  # each behaviour's rows after its own checkpoint
            if self.parameters is not None:  # lessons as of the last checkpoint (ML-Agents' GlobalTrainingStatus)
                assert self.env is not None
                changed = self.parameters.load_state(self.status.behaviors)
                self.parameters.apply(self.env, changed)
                for name in changed:
                    say(f"[INFO] Resumed: {self.parameters.describe(name)}")
        else:
            for name, trainer in self.trainers.items():
                found = init_checkpoint(cfg, name)  # initialize_from and init_path, resolved as ML-Agents does
                if found is None:
                    continue
                path, source = found
                try:
                    trainer.load_weights(load_checkpoint(path)["trainer"])
                except STATE_MISMATCH as exc:
                    raise RunError(f"{source}: its network does not fit this run's ({one_line_error(exc)})") from None
                say(f"[INFO] {name}. Initializing from {path}.")

    def start_tracking(self) -> None:
        """The MLflow run (a resumed run's own, or a new one if the store lost it) and the TensorBoard event
        files. On resume each first removes the points the old process logged after the checkpoint and
        records what it missed."""
        cfg = self.cfg
        resume_id = self.tracking_resume_id()
        experiment = cfg.tracking.experiment_name or experiment_of(cfg.env.name, cfg.env.id)
        if cfg.tracking.backend == "mlflow" and (hint := legacy_store_hint(cfg.tracking.uri)):
            say(hint)
        self.tracker = make_tracker(
            cfg.tracking,
            experiment,
            cfg.tracking.run_name or cfg.run_id,
            {
                **source_tags(),
                "mlx.run_id": cfg.run_id,
                "mlx.env": cfg.env.name,
                # "ppo+sac" when behaviours use different trainers
                "mlx.trainer": "+".join(dict.fromkeys(cfg.trainer_for(b).trainer_type for b in self.trainers))
                or cfg.trainer.trainer_type,
                "mlx.seed": str(cfg.seed),
                **run_tags(cfg.tracking),
                **self.tags,
            },
            resume_id,
            run_logs=self.paths.run_logs,
            # what a user compares runs by (mlx.tracking.mlflow_run.is_param), logged (redacted) when the MLflow
            # run is new; the whole configuration is the configuration.yaml artifact
            params=run_params(flatten(cfg.resolved)),
            config=self.paths.configuration,  # uploaded as a redacted copy
            resume_step=self.resume_steps() if cfg.resume else None,
            run_folder=self.paths.root,  # TensorBoard's event files go in its behaviour folders
            hyperparameters={name: behavior_settings(cfg, name) for name in self.trainers},
        )
        self.experiment = experiment
        if self.resume_changes:  # the MLflow run keeps its first params; what a resume changed goes beside them
            self.tracker.log_artifact(self.paths.run_logs / "resumes.jsonl", "run_logs")
        self.status.metadata.update(
            mlx_version=mlx.__version__,
            torch_version=torch.__version__,
            mlflow_run_id=resume_id,
            run_id=cfg.run_id,
            run_folder=str(self.paths.root.resolve()),
        )
        if not self.tracking_started(wait=False):
            self.status.save(self.paths.status)

    def tracking_started(self, wait: bool) -> bool:
        """Once the MLflow run exists (opened beside training: TrackingStart), say where it is, mark the run
        force=true replaces, record its id; False until then (``wait``). Raises a store refused by then."""
        if self.tracking_said:
            return True
        if not self.tracker.started(wait):
            return False
        self.tracking_said = True
        cfg, run_id = self.cfg, self.tracker.run_id
        if self.superseded and run_id not in (None, self.superseded):
            self.tracker.supersede(self.superseded)
            say(f"[INFO] force=true: the earlier MLflow run {self.superseded} of run_id '{cfg.run_id}' is marked "
                  f"deleted and tagged mlx.superseded_by={run_id}")  # fmt: skip
        if run_id is not None and self.tracker.experiment_id is not None:
            say(open_hint(cfg.tracking.uri, self.experiment, self.tracker.experiment_id, run_id))
        self.status.metadata.update(mlflow_run_id=run_id)
        self.status.save(self.paths.status)
        return True

    def resume_steps(self) -> dict[str, int]:
        """Each behaviour's step as restored: its own checkpoint's (behaviours step at their own rates), 0
        without one; what a resume keeps of each behaviour's records (stats.jsonl, MLflow, event files)."""
        return {name: trainer.step for name, trainer in self.trainers.items()}

    def tracking_resume_id(self) -> str | None:
        """The MLflow run a resumed run continues: the one in training_status.json, unless this folder is
        not the one that MLflow run belongs to (a copy, or a move: cp -r results/a results/b), which gets
        its own MLflow run rather than writing into the original's."""
        meta = self.status.metadata  # names the MLflow run once known; before, mlflow_sync.json may (a kill)
        resume_id = meta.get("mlflow_run_id") or SyncState(self.paths.run_logs / SYNC_FILE).run_id
        if not self.cfg.resume or resume_id is None:
            return None
        origin = meta.get("run_folder")  # absent in runs made before it was recorded: their run_id tells
        here = str(self.paths.root.resolve())
        if (origin == here) if origin is not None else (meta.get("run_id", self.cfg.run_id) == self.cfg.run_id):
            return str(resume_id)
        say(f"[INFO] {self.paths.root} was made as {origin or meta.get('run_id')}: a new MLflow run tracks it")
        return None

    # ---- the loop -----------------------------------------------------------------------------
    def save_checkpoint(self, name: str, elapsed: float, final: bool = False) -> Path:
        loop, params = self.loop, self.parameters
        path = save_checkpoint(
            self.paths,
            self.status,
            self.trainers[name],
            self.cfg.trainer_for(name).keep_checkpoints,
            elapsed,
            None if loop is None else loop.last_reward.get(name),
            final,
            None if params is None else params.state(),
        )
        self.tracking_started(wait=True)  # then the status names its MLflow run (resume continues that one)
        self.write_timers()
        return path

    def write_timers(self) -> None:
        """run_logs/timers.json as it stands (at each checkpoint and at the end), once the loop has started."""
        if self.loop is not None and self.loop.started:
            atomic_write(self.paths.run_logs / "timers.json", self.timers.dumps())

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
        out.append(TrackingStart(self.tracking_started))
        out.append(PhaseSplit())
        if cfg.progress == "auto" and sys.stderr.isatty() and not cfg.debug:  # debug's lines would cut into it
            out.append(ProgressLine(Progress(True)))
        return out

    def train(self) -> float | None:
        """The loop, then the final checkpoints, policies and curves; returns the mean of the last rewards."""
        assert self.env is not None
        timers = self.timers
        timers.add("setup", timers.elapsed())  # everything from the start until the loop: env, trainers, tracking
        settings = {name: self.cfg.trainer_for(name) for name in self.trainers}
        summaries = Summaries(self.paths.stats, self.tracker, timers)
        loop = self.loop = Loop(
            self.env,
            self.trainers,
            settings,
            summaries,
            self.callbacks(),
            self.interrupt,
            self.elapsed_before,
            timers,
            self.cfg.debug,
        )
        self.curves = FinalCurves(self.paths.root, list(self.trainers))  # matplotlib imported as the loop runs
        loop.run()
        with timers.block("final_save"):
            curves = self.curves
            curves.draw_now()  # drawn while the checkpoints and policies are saved
            for name in self.trainers:
                with timers.block("checkpoint"):
                    path = self.save_checkpoint(name, loop.elapsed, final=True)
                loop.call("on_final_checkpoint", name)
                say(f"[INFO] {name}. Saved final checkpoint {path} and policy {self.paths.policy(name)}")
                self.tracker.log_artifact(self.paths.policy(name))
                self.tracker.log_model(self.paths.policy(name), name)  # the same policy as an MLflow model
                if self.cfg.tracking.log_checkpoints:
                    self.tracker.log_artifact(path, f"checkpoints/{name}")
            if self.paths.stats.exists():  # a run that ended before its first summary has none
                self.tracker.log_artifact(self.paths.stats, "run_logs")
            with timers.block("curves"):
                self.write_curves(curves)
            if self.log_file is not None and self.log_file.path is not None:  # the log as of the final files
                self.tracker.log_artifact(self.log_file.path, "run_logs")
        self.write_timers()  # rewritten once more as the run closes (finish); MLflow gets this one
        self.tracker.log_artifact(self.paths.run_logs / "timers.json", "run_logs")
        rewards = [r for r in loop.last_reward.values() if r is not None]
        return float(np.mean(rewards)) if rewards else None

    def write_curves(self, curves: FinalCurves | None = None) -> None:
        """run_logs/<Behavior>_curves.png (mlx.tracking.curves), logged to MLflow: collected from the run's
        ``curves`` child, or drawn here (a stopped run)."""
        for path in curves.paths() if curves is not None else draw_here(self.paths.root, list(self.trainers)):
            say(f"[INFO] Learning curves: {path}")
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
        saved = self.save_current()
        for name, path in saved.items():
            say(f"\n[INFO] {name}. Interrupted: saved {path}; continue with run_id={self.cfg.run_id} resume=true")
        if saved and self.paths.stats.exists():  # the curves up to the final summary the loop wrote
            self.write_curves()

    def failed(self, exc: BaseException) -> None:
        """Before an ending that leaves the trainers consistent (see saves_before): save, so nothing is lost."""
        if not saves_before(exc):
            return
        try:
            saved = self.save_current()
        except Exception as err:  # noqa: BLE001 - the original failure is the one to report
            warn(f"[WARNING] No checkpoint could be saved after the failure: {one_line_error(err)}")
            return
        for name, path in saved.items():
            say(
                f"[INFO] {name}. Saved {path} before stopping; once fixed, continue: "
                f"run_id={self.cfg.run_id} resume=true"
            )

    def record_failure(self, exc: BaseException) -> None:
        """The error that ends the run as mlx.log's last line (the console shows it on stderr, mlx.errors.fail)."""
        from mlx.errors import describe, user_error_types
        from mlx.tracking.secrets import redact

        line = describe(exc) if isinstance(exc, user_error_types()) else f"{type(exc).__name__}: {one_line_error(exc)}"
        if self.log_file is not None:
            self.log_file.note(f"mlx: error: {redact(line)}")

    def close(self, status: str) -> None:
        if self.env is not None:
            self.env.close()
        self.tracker.finish(status)

    def stopped_by(self, signum: int) -> None:
        self.signum = signum

    def finish(self, status: str) -> None:
        """close(), then give the run folder's lock back. A failing close only warns when the run is already
        ending otherwise (KILLED, FAILED: that error is the one to report); the lock is released either way.
        timers.json is written first, whatever the ending: where the time went helps diagnose a failure too."""
        try:
            self.write_timers()
        except OSError as exc:
            warn(f"[WARNING] {self.paths.run_logs / 'timers.json'} not written: {one_line_error(exc)}")
        if self.curves is not None:
            self.curves.dismiss()  # drawn by now, or not to be drawn by it (a failed or stopped run)
        try:
            self.close(status)
        except Exception as exc:
            if status == "FINISHED":
                raise
            warn(f"[WARNING] Closing the run failed too: {type(exc).__name__}: {one_line_error(exc)}")
        finally:
            if self.lock is not None:
                self.release_folder()

    def release_folder(self) -> None:
        """Give the lock back; a new run refused before its loop (undo_start) leaves no folder it created."""
        assert self.lock is not None
        abandoned = self.lock.created and not (self.loop is not None and self.loop.started)
        abandoned = abandoned and not self.paths.configuration.exists()
        self.lock.release(remove=abandoned)
        if abandoned:
            for folder in (self.paths.run_logs, self.paths.root):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when empty: env logs stay for the diagnosis


def run(
    dict_cfg: DictConfig,
    on_summary: SummaryHook | None = None,
    tags: Mapping[str, str] | None = None,
    record: Mapping[str, str] | None = None,
) -> float | None:
    """Run one training job from a composed Hydra config (``record``: Hydra's record of the command line,
    mlx.config.record, written into a new run's folder); returns the last mean reward.

    Endings: a stop signal saves a checkpoint, closes tracking as KILLED and raises Stopped (exit 128 +
    signal); a failure that leaves the trainers consistent saves them first (saves_before); a full or
    unwritable disk is one RunError line with the previous checkpoint kept."""
    cfg = validate(dict_cfg)
    drawn = cfg.seed < 0
    job = Run(seeded(cfg), on_summary, tags, record)
    job.seed_drawn = drawn
    status = "FAILED"
    with deferred_stop(job.interrupt, job.stopped_by), debug_logging(cfg.debug), capture() as job.log_file:
        try:
            job.check_start()
            job.lock_folder()  # before the env (its logs go to the run folder) and every file of the run
            job.build()
            job.announce()
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
            job.undo_start()
            raise Stopped(getattr(exc, "signum", job.signum)) from None
        except Exception as exc:
            job.failed(exc)
            if isinstance(exc, OSError) and is_os_problem(exc):
                problem = os_problem(exc, "the run folder" if exc.filename else f"the run folder {job.paths.root}")
                job.record_failure(problem)
                job.undo_start()
                raise problem from None
            job.record_failure(exc)
            job.undo_start()
            raise
        except BaseException:
            job.undo_start()
            raise
        finally:
            job.finish(status)
