"""One training run: results folder, env, trainers, the collect/update loop, summaries, checkpoints.

results/<run_id>/ holds configuration.yaml (every option resolved), run_logs/stats.jsonl (one row per
summary), run_logs/training_status.json (checkpoints per behaviour, the MLflow run id) and, per
behaviour, <Behavior>/<Behavior>-<step>.pt checkpoints plus checkpoint.pt (the newest, used to resume).
Files are written atomically, so a run killed at any moment leaves the last checkpoint intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import yaml
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

import mlx
from mlx.config import ConfigError, RunConfig, validate
from mlx.envs import make_env
from mlx.envs.api import BaseEnv
from mlx.errors import RunError, one_line_error
from mlx.params.curriculum import EnvironmentParameterManager
from mlx.tracking.tracker import Tracker, flatten, make_tracker, run_tags
from mlx.trainers.base import StatSummary
from mlx.trainers.registry import RLTrainer, make_trainer

REWARD = "Environment/Cumulative Reward"

# Called after each summary with (behaviour, step, mean reward or None when no episode ended); returning
# True ends the run there, final checkpoint saved, as stop_at_reward does. Sweeps use it to report to
# Optuna and to stop a pruned trial.
SummaryHook = Callable[[str, int, "float | None"], bool]


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@dataclass
class RunPaths:
    root: Path

    @property
    def configuration(self) -> Path:
        return self.root / "configuration.yaml"

    @property
    def run_logs(self) -> Path:
        return self.root / "run_logs"

    @property
    def stats(self) -> Path:
        return self.run_logs / "stats.jsonl"

    @property
    def status(self) -> Path:
        return self.run_logs / "training_status.json"

    def behavior_dir(self, behavior: str) -> Path:
        return self.root / behavior

    def latest_checkpoint(self, behavior: str) -> Path:
        return self.behavior_dir(behavior) / "checkpoint.pt"

    def policy(self, behavior: str) -> Path:
        """The final policy as ONNX, where ML-Agents puts it: results/<run_id>/<Behavior>.onnx."""
        return self.root / f"{behavior}.onnx"


@dataclass
class TrainingStatus:
    """run_logs/training_status.json: ML-Agents' layout plus mlx's metadata (MLflow run, elapsed time)."""

    behaviors: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> TrainingStatus:
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise RunError(f"{path} is corrupt ({exc}); remove it or start a new run_id") from None
        meta = data.pop("metadata", {})
        return cls(behaviors=data, metadata=meta)

    def save(self, path: Path) -> None:
        data = dict(self.behaviors)
        data["metadata"] = self.metadata
        atomic_write(path, json.dumps(data, indent=2).encode())


class Progress:
    """A live status line on a TTY; nothing otherwise (summary lines are printed either way)."""

    def __init__(self, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.enabled = enabled
        self.stream = stream
        self._last = 0.0
        self._shown = False

    def due(self) -> bool:
        """True at most four times a second, and never when disabled: callers format text only then."""
        if not self.enabled:
            return False
        now = time.monotonic()
        if now - self._last < 0.25:
            return False
        self._last = now
        return True

    def update(self, text: str) -> None:
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False


class Summaries:
    """Turns trainer statistics into the ML-Agents console line, stats.jsonl rows and tracker metrics."""

    def __init__(self, path: Path, tracker: Tracker, progress: Progress) -> None:
        self.path = path
        self.tracker = tracker
        self.progress = progress

    def write(
        self, behavior: str, step: int, elapsed: float, steps_per_sec: float, stats: dict[str, StatSummary]
    ) -> float | None:
        reward = stats.get(REWARD)
        self.progress.clear()
        head = f"[INFO] {behavior}. Step: {step}. Time Elapsed: {elapsed:.3f} s."
        if reward is None:
            print(f"{head} No episode was completed since last summary. Training.", flush=True)
        else:
            print(f"{head} Mean Reward: {reward.mean:.3f}. Std of Reward: {reward.std:.3f}. Training.", flush=True)
        row: dict[str, Any] = {
            "behavior": behavior,
            "step": step,
            "time_elapsed": round(elapsed, 3),
            "mean_reward": reward.mean if reward else None,
            "std_reward": reward.std if reward else None,
            "episodes": reward.count if reward else 0,
            "steps_per_sec": round(steps_per_sec, 1),
        }
        row.update({name: s.mean for name, s in sorted(stats.items())})
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        metrics = {name: s.mean for name, s in stats.items()}
        if reward:
            metrics["Environment/Cumulative Reward Std"] = reward.std
        metrics["Environment/Steps Per Second"] = steps_per_sec
        self.tracker.log_metrics(metrics, step)
        return reward.mean if reward else None


def truncate_stats(path: Path, max_step: int) -> None:
    """On resume, drop summary rows written after the checkpoint so the curve continues seamlessly."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= max_step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError):
            continue  # a line cut short by a kill
    atomic_write(path, ("\n".join(kept) + "\n" if kept else "").encode())


class Run:
    """Everything one training run owns; `train()` is the loop."""

    def __init__(
        self, cfg: RunConfig, on_summary: SummaryHook | None = None, tags: Mapping[str, str] | None = None
    ) -> None:
        self.cfg = cfg
        self.on_summary = on_summary
        self.tags = dict(tags or {})  # extra MLflow tags (a multirun job's overrides)
        self.paths = RunPaths(Path(cfg.results_dir) / cfg.run_id)
        self.status = TrainingStatus()
        self.tracker: Tracker = Tracker()
        self.trainers: dict[str, RLTrainer] = {}
        self.env: BaseEnv | None = None
        self.elapsed_before = 0.0
        self.elapsed = 0.0
        self.started = False  # set once the loop runs: before that there is nothing new to save
        self.interrupt = threading.Event()  # set by Ctrl-C while train() runs under deferred_interrupt
        self.next_summary: dict[str, int] = {}
        self.next_checkpoint: dict[str, int] = {}
        self.last_reward: dict[str, float | None] = {}
        self.checkpoint_every: dict[str, int] = {}
        self.parameters: EnvironmentParameterManager | None = None  # environment_parameters, when given

    # ---- set-up -------------------------------------------------------------------------------
    def prepare_folder(self) -> None:
        cfg, paths = self.cfg, self.paths
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
                if child.name == ".hydra":
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
        torch.set_num_threads(cfg.torch_settings.num_threads)
        # numpy's BLAS too (acting, envs): by default OpenBLAS starts a thread per core, and its spinning
        # threads made two WallJump runs side by side on 2 cores 2.6x slower each.
        threadpool_limits(cfg.torch_settings.num_threads, user_api="blas")
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        device = torch.device(cfg.torch_settings.device)
        if cfg.env.name == "unity" or cfg.env.subprocess:  # envs in their own processes, over gRPC
            from mlx.envs.unity.env import make_unity_env

            self.env = make_unity_env(cfg.env, cfg.engine_settings, cfg.seed, self.paths.run_logs)
        else:  # num_envs copies of a native env are more areas of one vectorised env (measured fastest)
            areas = cfg.env.num_areas * cfg.env.num_envs
            self.env = make_env(cfg.env.name, areas, cfg.seed, cfg.env.parameters, cfg.env.id, cfg.env.kwargs)
        specs = self.env.behavior_specs
        for name in cfg.behaviors:
            if name not in specs:
                raise ConfigError(
                    f"behaviors.{name}: env={cfg.env.name} has no behaviour '{name}'; its behaviours: "
                    f"{', '.join(sorted(specs))}"
                )
        for name, spec in specs.items():
            self.trainers[name] = make_trainer(
                name, spec, cfg.trainer_for(name), cfg.signals_for(name), device, cfg.seed
            )
        if cfg.environment_parameters:
            self.parameters = EnvironmentParameterManager(cfg.environment_parameters, cfg.seed, cfg.lesson)
            self.parameters.check_behaviors(specs, cfg.env.name)
            self.parameters.apply(self.env)
            for name, trainer in self.trainers.items():
                trainer.stats.watch(REWARD, self._reward_listener(name))

    def _reward_listener(self, behavior: str) -> Callable[[np.ndarray], None]:
        """Episode returns of a behaviour go to the curriculum's reward buffer as trainers report them."""
        params = self.parameters
        assert params is not None
        return lambda returns: params.record_rewards(behavior, returns)

    def restore(self) -> None:
        """resume: the newest checkpoint of each behaviour; initialize_from: another run's weights."""
        cfg = self.cfg
        if cfg.resume:
            for name, trainer in self.trainers.items():
                path = self.paths.latest_checkpoint(name)
                if not path.exists():
                    raise RunError(f"nothing to resume: {path} does not exist; start without resume=true")
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
        for name, trainer in self.trainers.items():
            t = cfg.trainer_for(name)
            interval = (t.max_steps // t.keep_checkpoints) if t.even_checkpoints else t.checkpoint_interval
            self.next_summary[name] = (trainer.step // t.summary_freq + 1) * t.summary_freq
            self.next_checkpoint[name] = (trainer.step // interval + 1) * interval
            self.checkpoint_every[name] = interval

    def start_tracking(self) -> None:
        cfg = self.cfg
        resume_id = self.status.metadata.get("mlflow_run_id") if cfg.resume else None
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
        )
        self.status.save(self.paths.status)

    # ---- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, name: str, elapsed: float, final: bool = False) -> Path:
        trainer = self.trainers[name]
        folder = self.paths.behavior_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "trainer": trainer.state_dict(),
            "behavior": name,
            "behavior_spec": repr(trainer.spec),
            "time_elapsed": elapsed,
            "mlx_version": mlx.__version__,
        }
        path = folder / f"{name}-{trainer.step}.pt"
        atomic_torch_save(state, path)
        atomic_torch_save(state, self.paths.latest_checkpoint(name))
        trainer.export(path.with_suffix(".onnx"))  # ML-Agents writes <Behavior>-<step>.onnx beside each .pt
        trainer.save_extras(folder)
        entry = self.status.behaviors.setdefault(name, {"checkpoints": [], "final_checkpoint": None})
        entry["checkpoints"] = [c for c in entry["checkpoints"] if c["steps"] != trainer.step]
        entry["checkpoints"].append(
            {
                "steps": trainer.step,
                "file_path": str(path),
                "reward": self.last_reward.get(name),
                "creation_time": time.time(),
            }
        )
        keep = self.cfg.trainer_for(name).keep_checkpoints
        while len(entry["checkpoints"]) > keep:
            old = entry["checkpoints"].pop(0)
            Path(old["file_path"]).unlink(missing_ok=True)
            Path(old["file_path"]).with_suffix(".onnx").unlink(missing_ok=True)
        if final:
            entry["final_checkpoint"] = str(path)
            shutil.copyfile(path.with_suffix(".onnx"), self.paths.policy(name))
        self.status.metadata["time_elapsed"] = elapsed
        if self.parameters is not None:  # lesson numbers saved with the checkpoints they belong to
            self.status.behaviors.update(self.parameters.state())
        self.status.save(self.paths.status)
        return path

    # ---- the loop -----------------------------------------------------------------------------
    def train(self) -> float | None:
        assert self.env is not None
        cfg, env = self.cfg, self.env
        settings = {name: cfg.trainer_for(name) for name in self.trainers}
        max_steps = {name: s.max_steps for name, s in settings.items()}
        summaries = Summaries(
            self.paths.stats,
            self.tracker,
            Progress(cfg.progress == "auto" and sys.stderr.isatty()),
        )
        start = time.perf_counter()
        window_start = {name: (start, tr.step) for name, tr in self.trainers.items()}
        done = {name: tr.step >= max_steps[name] for name, tr in self.trainers.items()}
        reached = dict.fromkeys(self.trainers, False)
        env.reset()
        self.started = True
        params = self.parameters
        stop = False
        while not all(done.values()):
            if self.interrupt.is_set():  # Ctrl-C (deferred_interrupt), taken between steps: nothing half-done
                raise KeyboardInterrupt
            for name, trainer in self.trainers.items():
                decision, terminal = env.get_steps(name)
                env.set_actions(name, trainer.process(decision, terminal))
            if params is not None:
                params.before_step(env)  # fresh draws for envs that take one value at a time
            env.step()
            for stat in env.drain_stats():  # what the env reports itself (Unity's stats side channel)
                for trainer in self.trainers.values():
                    trainer.stats.add_env_stat(stat)
            elapsed = self.elapsed = self.elapsed_before + time.perf_counter() - start
            for name, trainer in self.trainers.items():
                t = settings[name]
                if trainer.ready_to_update():
                    if trainer.step < t.max_steps:
                        trainer.update()
                    else:  # past its max_steps it only acts while other behaviours train (ML-Agents)
                        trainer.discard_experience()
                if trainer.step >= self.next_summary[name]:
                    self.next_summary[name] = (trainer.step // t.summary_freq + 1) * t.summary_freq
                    now = time.perf_counter()
                    t0, s0 = window_start[name]
                    sps = (trainer.step - s0) / max(now - t0, 1e-9)
                    window_start[name] = (now, trainer.step)
                    if params is not None:
                        for param, number in params.lesson_numbers().items():
                            trainer.stats.add(f"Environment/Lesson Number/{param}", number)
                    mean = summaries.write(name, trainer.step, elapsed, sps, trainer.stats.summarise())
                    if mean is not None:
                        self.last_reward[name] = mean
                    if cfg.stop_at_reward is not None:
                        # The latest mean counts (a curriculum makes rewards fall between lessons), and only
                        # once every curriculum is at its last lesson: the task, not an easier version.
                        last = self.last_reward.get(name)
                        reached[name] = (
                            last is not None and last >= cfg.stop_at_reward and (params is None or params.completed())
                        )
                    if self.on_summary is not None and self.on_summary(name, trainer.step, mean):
                        print(f"[INFO] {name}. Stopped early at step {trainer.step} (on_summary).", flush=True)
                        stop = True
                if trainer.step >= self.next_checkpoint[name]:
                    every = self.checkpoint_every[name]
                    self.next_checkpoint[name] = (trainer.step // every + 1) * every
                    self.save_checkpoint(name, elapsed)
                done[name] = trainer.step >= t.max_steps or reached[name]
                if summaries.progress.due():
                    t0, s0 = window_start[name]
                    sps = (trainer.step - s0) / max(time.perf_counter() - t0, 1e-9)
                    summaries.progress.update(
                        f"{name} step {trainer.step}/{t.max_steps} [{100 * trainer.step / t.max_steps:.0f}%] "
                        f"{sps:.0f} steps/s, last mean reward {self.last_reward.get(name) or 0:.2f}, {elapsed:.0f} s"
                    )
            if params is not None:
                self._advance_lessons(params, max_steps)
            if stop or (cfg.stop_at_reward is not None and all(reached.values())):
                break
        summaries.progress.clear()
        elapsed = self.elapsed_before + time.perf_counter() - start
        for name in self.trainers:
            path = self.save_checkpoint(name, elapsed, final=True)
            if reached[name]:
                print(
                    f"[INFO] {name}. Reached stop_at_reward={cfg.stop_at_reward} at step {self.trainers[name].step}.",
                    flush=True,
                )
            print(f"[INFO] {name}. Saved final checkpoint {path} and policy {self.paths.policy(name)}", flush=True)
            self.tracker.log_artifact(self.paths.policy(name))
            if self.cfg.tracking.log_checkpoints:
                self.tracker.log_artifact(path, f"checkpoints/{name}")
        if self.paths.stats.exists():  # a run that ended before its first summary has none
            self.tracker.log_artifact(self.paths.stats, "run_logs")
        self.write_curves()
        rewards = [r for r in self.last_reward.values() if r is not None]
        return float(np.mean(rewards)) if rewards else None

    def write_curves(self) -> None:
        """run_logs/<Behavior>_curves.png from stats.jsonl (mlx.tracking.curves), logged to MLflow. A drawing failure
        only warns: the final checkpoints and policies are saved by then."""
        from mlx.tracking.curves import write_run_curves

        try:
            paths = write_run_curves(self.paths.root, list(self.trainers))
        except Exception as exc:  # noqa: BLE001 - a plotting library's failure must not fail a finished run
            print(f"[WARNING] Learning curves not drawn: {type(exc).__name__}: {one_line_error(exc)}", flush=True)
            return
        for path in paths:
            print(f"[INFO] Learning curves: {path}", flush=True)
            self.tracker.log_artifact(path, "run_logs")

    def _advance_lessons(self, params: EnvironmentParameterManager, max_steps: dict[str, int]) -> None:
        """ML-Agents' reset_env_if_ready: move curricula on, send the new values, reset if a lesson asks."""
        assert self.env is not None
        changed, must_reset = params.update({n: tr.step for n, tr in self.trainers.items()}, max_steps)
        if not changed:
            return
        for name in changed:
            print(f"[INFO] {params.describe(name)}", flush=True)
        params.apply(self.env, changed)
        if must_reset:  # every area starts afresh with the new values; partial trajectories are dropped
            self.env.reset()
            for trainer in self.trainers.values():
                trainer.reset_trajectories()

    def interrupted(self) -> None:
        """Ctrl-C: keep the work done so far in a checkpoint, so resume=true continues from here."""
        if not self.started:
            return
        elapsed = self.elapsed
        for name in self.trainers:
            path = self.save_checkpoint(name, elapsed)
            print(
                f"\n[INFO] {name}. Interrupted: saved {path}; continue with run_id={self.cfg.run_id} resume=true",
                flush=True,
            )

    def close(self, status: str) -> None:
        if self.env is not None:
            self.env.close()
        self.tracker.finish(status)


@contextlib.contextmanager
def deferred_interrupt(event: threading.Event) -> Iterator[None]:
    """Ctrl-C sets ``event``, which the training loop checks between steps, rather than raising wherever the
    signal lands (inside a checkpoint write, or holding a lock the clean-up then waits for). A second
    Ctrl-C interrupts at once. Outside the main thread (signals cannot be caught there) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        print("\n[INFO] Stopping after this step (Ctrl-C again to stop at once).", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise RunError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
            "it may be truncated or from another program"
        ) from None


def seeded(cfg: RunConfig) -> RunConfig:
    """seed=-1 (ML-Agents' default) means a random seed; record the one drawn so the run can be repeated."""
    if cfg.seed < 0:
        cfg.seed = int.from_bytes(os.urandom(4), "little") % 2**31
        cfg.resolved["seed"] = cfg.seed
    return cfg


def run(
    dict_cfg: DictConfig, on_summary: SummaryHook | None = None, tags: Mapping[str, str] | None = None
) -> float | None:
    """Run one training job from a composed Hydra config; returns the last mean reward."""
    cfg = seeded(validate(dict_cfg))
    job = Run(cfg, on_summary, tags)
    job.build()
    status = "FAILED"
    try:
        job.prepare_folder()
        job.restore()
        job.start_tracking()
        with deferred_interrupt(job.interrupt):
            result = job.train()
        status = "FINISHED"
        return result
    except KeyboardInterrupt:
        job.interrupted()
        status = "KILLED"
        raise
    finally:
        job.close(status)
