"""Optuna searches: `python -m mlx -m sweep=<name>` (sweeps/<name>.yaml).

The sweeper asks the study for up to `n_jobs` trials, turns each trial's parameters into Hydra overrides
(so a search dimension can be any config key or a config group choice, composed exactly as on the command
line), launches them through the configured Hydra launcher, and tells the study how each ended: COMPLETE
with its objective, PRUNED (the pruner stopped it at a summary), or FAIL (its error recorded; the study
goes on). Trials report their objective at every summary through Run's on_summary hook (TrialTask).

Run it again, or on other hosts with the same `sweep.storage`, and the workers share the study: each asks
for trials until `n_trials` are done; trials of a killed worker are retried from their last checkpoint
(study.py). The best trial's overrides are written beside the results as a reusable experiment config.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict

from mlx.config import register_resolvers, validate
from mlx.errors import ConfigError, describe, user_error_types
from mlx.sweep.grid import experiment_name, run_name_override, tracking_settings
from mlx.sweep.jobs import job_overrides
from mlx.sweep.objective import Reporter, read_history
from mlx.sweep.settings import (
    Dimension,
    ObjectiveSettings,
    PrunerSettings,
    SweepSettings,
    dimension_from_override,
    parse_settings,
)
from mlx.sweep.study import (
    ERROR,
    KILLED,
    RETRY_OF,
    RETRY_RUN_ID,
    RUN_ID,
    Heartbeat,
    budget,
    make_pruner,
    open_storage,
    open_study,
    recover_dead_trials,
)
from mlx.sweep.tracking import OVERRIDES, TRIAL, TRIAL_STATE, mlflow_run_id_of, open_parent_run
from mlx.tracking.secrets import redact
from mlx.training.checkpoints import atomic_write

ALL_FAILED_LIMIT = 3  # this many finished trials, all failed: the sweep itself is wrong, stop it


@dataclass
class TrialOutcome:
    value: float | None
    pruned: bool
    reached: bool
    last_step: int


def checkpoint_step(results_dir: str | Path, run_id: str) -> int | None:
    """The step every behaviour of a run can resume from (None: no checkpoint to resume)."""
    steps = checkpoint_steps(results_dir, run_id)
    return min(steps.values()) if steps else None


def checkpoint_steps(results_dir: str | Path, run_id: str) -> dict[str, int] | None:
    """The step each behaviour of a run resumes from, its own latest checkpoint's (None: a behaviour has no
    checkpoint, the trial starts anew)."""
    root = Path(results_dir) / run_id
    try:
        status = json.loads((root / "run_logs" / "training_status.json").read_bytes())
        steps: dict[str, int] = {}
        for name, entry in status.items():
            if name == "metadata" or "lesson_num" in entry:  # a curriculum's lesson, not a behaviour
                continue
            checkpoints = entry.get("checkpoints") or []
            if not checkpoints or not (root / name / "checkpoint.pt").exists():
                return None
            steps[name] = max(int(c["steps"]) for c in checkpoints)
    except (OSError, ValueError, RecursionError, AttributeError, TypeError, KeyError):
        return None  # no status, or not one mlx wrote: the trial starts anew
    return steps or None


@dataclass
class TrialTask:
    """The task function of every trial job (picklable, so the joblib launcher can ship it to workers)."""

    storage_url: str
    study_name: str
    objective: ObjectiveSettings
    pruner: PrunerSettings
    summary_freq: int
    max_steps: int
    param_names: tuple[str, ...]

    def __call__(self, cfg: DictConfig) -> TrialOutcome:
        # lazy for start-up speed: optuna, and torch through the training run
        import optuna

        from mlx.training.run import run

        register_resolvers()
        number = int(cfg.tracking.trial)
        storage = open_storage(self.storage_url)
        study = optuna.load_study(
            study_name=self.study_name,
            storage=storage,
            sampler=optuna.samplers.RandomSampler(),  # unused: the sweeper samples; the job only reports
            pruner=make_pruner(self.pruner, self.summary_freq, self.max_steps),
        )
        study_id = storage.get_study_id_from_name(self.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        trial = optuna.trial.Trial(study, trial_id)
        history: dict[str, list[tuple[int, float | None]]] = {}
        if cfg.resume:
            results_dir, run_id = str(cfg.results_dir), str(cfg.run_id)
            steps = checkpoint_steps(results_dir, run_id)  # each behaviour's rows up to its own checkpoint
            history = read_history(Path(results_dir) / run_id / "run_logs" / "stats.jsonl", steps)
        reported = storage.get_trial(trial_id).intermediate_values.keys()
        reporter = Reporter(self.objective, int(cfg.trainer.max_steps), trial, history, reported)
        params = [o for o in job_overrides() if o.lstrip("+").split("=", 1)[0] in self.param_names]
        run(cfg, on_summary=reporter, tags={"mlx.overrides": " ".join(params)})
        return TrialOutcome(reporter.value(), reporter.pruned, reporter.reached, reporter.last_step)


class Search:
    """One worker of one study: setup checks, the ask/launch/tell loop, the best trial's files."""

    def __init__(self, sweeper: Any, arguments: list[str]) -> None:
        self.sweeper = sweeper
        self.config = sweeper.config
        node = OmegaConf.to_container(self.config.sweep, resolve=True, enum_to_str=True)
        self.settings: SweepSettings = parse_settings(node)
        self.sweep_name = OmegaConf.select(self.config, "hydra.runtime.choices.sweep") or self.settings.study_name
        parser = OverridesParser.create(config_loader=sweeper.hydra_context.config_loader)
        parsed = parser.parse_overrides(arguments)
        self.fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        dims = {d.name: d for d in self.settings.search_space}
        for override in parsed:
            if override.is_sweep_override():  # `key=a,b` or `key=interval(...)` on the command line
                dim = dimension_from_override(override)
                dims[dim.name] = dim
        self.dims: list[Dimension] = list(dims.values())
        user_run_id = [o.value() for o in parsed if not o.is_sweep_override() and o.get_key_element() == "run_id"]
        self.run_id_prefix = str(user_run_id[-1]) if user_run_id else self.settings.study_name
        self.results_dir = str(OmegaConf.select(self.config, "results_dir"))
        self.summary_freq = int(OmegaConf.select(self.config, "trainer.summary_freq"))
        self.max_steps = int(OmegaConf.select(self.config, "trainer.max_steps"))
        self.parent: Any = None

    # ---- checks before anything runs ----------------------------------------------------------------
    def check_space(self) -> None:
        """Every search key must compose and validate for at least one of its values, so a typo ends the
        sweep at once instead of failing every trial."""
        loader = self.sweeper.hydra_context.config_loader
        base = [*self.fixed, "run_id=sweep-check"]

        def attempt(extra: list[str]) -> None:
            cfg = loader.load_sweep_config(self.config, [*base, *extra])
            with open_dict(cfg):
                del cfg["hydra"]  # as a job sees it (Hydra's run_job drops it too)
            validate(cfg)

        try:
            attempt([])
        except user_error_types() as exc:
            raise ConfigError(f"sweep {self.sweep_name}: the trials' config is refused: {describe(exc)}") from None
        # A composition costs most of a second: try every key at once at each end of its range first,
        # and look key by key only when that fails.
        try:
            for end in (0, -1):
                attempt([dim.override(dim.candidates()[end]) for dim in self.dims])
            return
        except user_error_types():
            pass
        for dim in self.dims:
            errors = []
            for value in dim.candidates():
                try:
                    attempt([dim.override(value)])
                    break
                except user_error_types() as exc:
                    errors.append(exc)
            else:
                raise ConfigError(f"sweep.search_space.{dim.name}: {describe(errors[0])}") from None

    # ---- the loop ---------------------------------------------------------------------------------------
    def job_overrides(self, trial: Any, study_id: int) -> list[str]:
        storage = open_storage(self.settings.storage)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        params = trial_overrides(self, trial)
        run_id = trial.user_attrs.get(RETRY_RUN_ID) or f"{self.run_id_prefix}-trial{trial.number}"
        extra = [f"run_id={run_id}", f"tracking.trial={trial.number}", f"tracking.sweep_id={self.settings.study_name}"]
        # the MLflow run's name: the trial and its sampled values (trial7 learning_rate=0.00031,beta=0.004)
        extra.append(run_name_override(params, {p.split("=", 1)[0] for p in params}, f"trial{trial.number} "))
        if self.parent is not None:
            extra.append(f"tracking.parent_run_id={self.parent.run_id}")
        if RETRY_OF in trial.user_attrs:
            step = checkpoint_step(self.results_dir, run_id)
            if step is not None:  # the dead trial's work continues from its last checkpoint
                extra.append("resume=true")
                dead = trial.user_attrs[RETRY_OF]
                for old in open_study_trials(storage, study_id):
                    if old.number == dead:
                        for s, v in old.intermediate_values.items():
                            if s <= step:
                                storage.set_trial_intermediate_value(trial_id, s, v)
            else:  # killed before its first checkpoint: start over in the same folder
                extra.append("force=true")
                self.mark_killed(run_id)
        storage.set_trial_user_attr(trial_id, RUN_ID, run_id)
        return [*self.fixed, *params, *extra]

    def mark_killed(self, run_id: str) -> None:
        """The MLflow run of a dead trial that starts over: KILLED, so it is not taken for a result."""
        old = mlflow_run_id_of(self.results_dir, run_id)
        if self.parent is not None and old is not None:
            self.parent.mark_killed(old)
            self.parent.client.set_tag(old, TRIAL_STATE, "KILLED")

    def tell(self, study: Any, trial: Any, result: Any, job_overrides: list[str]) -> str:
        from optuna.trial import TrialState  # lazy for start-up speed

        error = None
        value = None
        if result.status == JobStatus.COMPLETED:
            outcome: TrialOutcome = result._return_value
            value = outcome.value
            if outcome.pruned:
                state = TrialState.PRUNED
            elif value is None:
                state = TrialState.FAIL
                error = (
                    "no episode ended in any summary, so the trial has no reward; raise trainer.max_steps "
                    "or lower trainer.summary_freq"
                )
            else:
                state = TrialState.COMPLETE
        else:
            exc = result._return_value
            state = TrialState.FAIL
            error = describe(exc)
            if not isinstance(exc, user_error_types()):
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                print(tb, file=sys.stderr, flush=True)
        if error is not None:
            storage = open_storage(self.settings.storage)
            study_id = storage.get_study_id_from_name(self.settings.study_name)
            storage.set_trial_user_attr(
                storage.get_trial_id_from_study_id_trial_number(study_id, trial.number), ERROR, error
            )
        if state == TrialState.PRUNED and trial.intermediate_values:  # Optuna's value of a pruned trial
            value = trial.intermediate_values[max(trial.intermediate_values)]
        # MLflow first, the study last: the study is the commit point. A worker killed in between leaves
        # the trial RUNNING, so it is retried (from its final checkpoint) and recorded again.
        self.record_in_mlflow(trial, state.name, value, error)
        if state == TrialState.COMPLETE:
            study.tell(trial.number, value, skip_if_finished=True)
        else:
            study.tell(trial.number, state=state, skip_if_finished=True)
        what = f"value {value:.4g}" if value is not None else error
        print(f"[INFO] Trial {trial.number} {state.name}: {what}.", flush=True)
        if state == TrialState.FAIL:
            print(f"[WARNING] Trial {trial.number} failed: {error}", file=sys.stderr, flush=True)
        return state.name

    def record_in_mlflow(self, trial: Any, state: str, value: float | None, error: str | None) -> None:
        if self.parent is None:
            return
        run_id = trial.user_attrs.get(RETRY_RUN_ID) or f"{self.run_id_prefix}-trial{trial.number}"
        child = mlflow_run_id_of(self.results_dir, run_id)
        if child is not None:  # make sure the folder's run is this sweep's (not a stale folder's)
            tags = self.parent.client.get_run(child).data.tags
            mine = {str(trial.number), str(trial.user_attrs.get(RETRY_OF))}
            if tags.get("mlx.sweep_id") != self.settings.study_name or tags.get(TRIAL) not in mine:
                child = None
        params = " ".join(trial_overrides(self, trial))
        tags: dict[str, Any] = {TRIAL: trial.number, TRIAL_STATE: state, OVERRIDES: params, "run_name": run_id}
        if RETRY_OF in trial.user_attrs:
            tags["mlx.retry_of"] = trial.user_attrs[RETRY_OF]
        metrics = {"objective": value} if value is not None else {}
        self.parent.record_child(child, tags, metrics, error)

    def run(self) -> list[Any]:
        from optuna.trial import TrialState  # lazy for start-up speed

        s = self.settings
        self.check_space()
        study = open_study(s, self.summary_freq, self.max_steps)
        storage = open_storage(s.storage)
        study_id = storage.get_study_id_from_name(s.study_name)
        self.parent = open_parent_run(
            tracking_settings(self.config),
            experiment_name(self.config),
            s.study_name,
            "optuna",
            {
                "sweep.name": self.sweep_name,
                "sweep.storage": redact(s.storage),
                "sweep.direction": s.direction,
                "sweep.objective": s.objective.type,
                "sweep.n_trials": s.n_trials,
                "sweep.sampler": s.sampler.type,
                "sweep.pruner": s.pruner.type,
                "sweep.search_space": " ".join(f"{d.name}:{d.distribution()}" for d in self.dims),
            },
        )
        task = TrialTask(
            s.storage,
            s.study_name,
            s.objective,
            s.pruner,
            self.summary_freq,
            self.max_steps,
            tuple(d.name for d in self.dims),
        )
        launcher = self.sweeper.make_launcher(task)
        distributions = {d.name: d.distribution() for d in self.dims}
        heartbeat = Heartbeat(storage, s.heartbeat_interval)
        where = f"; MLflow parent run {self.parent.run_id}" if self.parent else ""
        print(f"[INFO] Study {s.study_name} in {redact(s.storage)}: {s.n_trials} trials, {s.n_jobs} at a time{where}.")
        returns: list[Any] = []
        status = "KILLED"
        job_idx = 0
        try:
            while True:
                for number in recover_dead_trials(study, storage, study_id, s.stale_after, heartbeat.me):
                    print(f"[INFO] Trial {number}'s worker is gone: marked FAIL, queued again to resume.", flush=True)
                new_allowed, waiting = budget(study.get_trials(deepcopy=False), s.n_trials)
                batch = []
                while len(batch) < s.n_jobs and (new_allowed > 0 or waiting > 0):
                    asked = study.ask(distributions)
                    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, asked.number)
                    heartbeat.add(trial_id)
                    trial = storage.get_trial(trial_id)  # a FrozenTrial: params, user and system attrs
                    if "fixed_params" in trial.system_attrs:  # popped from the queue (enqueue_trial)
                        waiting -= 1
                    else:
                        new_allowed -= 1
                    batch.append(trial)
                if not batch:
                    break
                jobs = [self.job_overrides(trial, study_id) for trial in batch]
                results = launcher.launch(jobs, initial_job_idx=job_idx)
                job_idx += len(jobs)
                for trial, result, job in zip(batch, results, jobs, strict=True):
                    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
                    self.tell(study, storage.get_trial(trial_id), result, job)  # reloaded: user_attrs set since
                    heartbeat.discard(trial_id)
                returns.append(results)
                self.check_not_all_failed(study)
            status = "FINISHED"
        except KeyboardInterrupt:
            raise  # status stays KILLED: a rerun retries this worker's running trials
        except Exception:
            status = "FAILED"
            raise
        finally:
            heartbeat.stop()
            if self.parent is not None:
                self.parent.finish(status)
        self.report_best(study, TrialState)
        return returns

    def check_not_all_failed(self, study: Any) -> None:
        from optuna.trial import TrialState  # lazy for start-up speed

        finished = [
            t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and not t.user_attrs.get(KILLED)
        ]
        if len(finished) >= ALL_FAILED_LIMIT and all(t.state == TrialState.FAIL for t in finished):
            last = finished[-1].user_attrs.get(ERROR, "see the log above")
            raise ConfigError(
                f"sweep {self.sweep_name}: all {len(finished)} finished trials failed, the last with: {last}"
            )

    # ---- the result ---------------------------------------------------------------------------------------
    def report_best(self, study: Any, TrialState: Any) -> None:  # noqa: N803 - the enum, imported lazily
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        counts = {state.name: 0 for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        for t in study.get_trials(deepcopy=False):
            if t.state.name in counts:
                counts[t.state.name] += 1
        print(
            f"[INFO] Study {self.settings.study_name}: "
            + ", ".join(f"{n} {name.lower()}" for name, n in counts.items())
            + ".",
            flush=True,
        )
        if not complete:
            print("[WARNING] No trial completed: no best trial to write.", file=sys.stderr, flush=True)
            return
        best = study.best_trial
        folder = write_best(self, best)
        print(f"[INFO] Best trial {best.number}: value {best.value:.4g}; {' '.join(trial_overrides(self, best))}")
        print(f"[INFO] Wrote {folder}/best_overrides.yaml; train with it: {reuse_command(self, folder)}", flush=True)
        if self.parent is not None:
            self.parent.set_tags(
                {"mlx.best_trial": best.number, "mlx.best_overrides": " ".join(trial_overrides(self, best))}
            )
            self.parent.log_metric("best_value", best.value, step=len(study.get_trials(deepcopy=False)))
            self.parent.log_artifact(folder / "best_overrides.yaml")
            self.parent.log_artifact(folder / "experiment" / f"{self.settings.study_name}_best.yaml", "experiment")


def open_study_trials(storage: Any, study_id: int) -> list[Any]:
    return storage.get_all_trials(study_id, deepcopy=False)


def trial_overrides(search: Search, trial: Any) -> list[str]:
    return [dim.override(trial.params[dim.name]) for dim in search.dims if dim.name in trial.params]


def reuse_command(search: Search, folder: Path) -> str:
    return f"python -m mlx -cd {folder} experiment={search.settings.study_name}_best"


def experiment_config(search: Search, best: Any) -> str:
    """The best trial as a Hydra experiment config: the sweep's env and trainer plus the best values.

    Budgets (max_steps, summary_freq) are left out on purpose: the tuned defaults apply, so the file
    trains the winner at full length. Group choices become `override /group: option` entries."""
    choices = OmegaConf.to_container(search.config.hydra.runtime.choices)
    assert isinstance(choices, dict)
    defaults: list[dict[str, Any]] = []
    groups = {"env": choices.get("env"), "trainer": choices.get("trainer")}
    values: dict[str, Any] = {}
    for dim in search.dims:
        if dim.name not in best.params:
            continue
        value = best.params[dim.name]
        if dim.name in choices:
            groups[dim.name] = value
        else:
            node = values
            *parents, leaf = dim.name.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    for group, option in groups.items():
        if option is not None:
            defaults.append({f"override /{group}": option})
    body: dict[str, Any] = {}
    if defaults:
        body["defaults"] = defaults
    body.update(values)
    folder = Path(search.results_dir) / "sweeps" / search.settings.study_name
    head = (
        "# @package _global_\n"
        f"# Best trial ({best.number}, value {best.value:.6g}) of Optuna study {search.settings.study_name} "
        f"({redact(search.settings.storage)}),\n"
        f"# written by mlx's sweeper. Train with it: {reuse_command(search, folder)}\n"
    )
    return head + yaml.safe_dump(body, sort_keys=False)


def write_best(search: Search, best: Any) -> Path:
    folder = Path(search.results_dir) / "sweeps" / search.settings.study_name
    (folder / "experiment").mkdir(parents=True, exist_ok=True)
    record = {
        "study_name": search.settings.study_name,
        "storage": redact(search.settings.storage),  # uploaded to MLflow with the record
        "direction": search.settings.direction,
        "objective": search.settings.objective.type,
        "best_trial": best.number,
        "value": float(best.value),
        "run_id": best.user_attrs.get(RUN_ID),
        "overrides": trial_overrides(search, best),
        "experiment": str(folder / "experiment" / f"{search.settings.study_name}_best.yaml"),
        "command": reuse_command(search, folder),
    }
    atomic_write(folder / "best_overrides.yaml", yaml.safe_dump(record, sort_keys=False).encode())
    path = folder / "experiment" / f"{search.settings.study_name}_best.yaml"
    atomic_write(path, experiment_config(search, best).encode())
    return folder


def run_search(sweeper: Any, arguments: list[str]) -> list[Any]:
    return Search(sweeper, arguments).run()
