"""Grids: `python -m mlx -m seed=1,2,3 trainer.hyperparameters.learning_rate=1e-4,3e-4`.

Hydra's basic sweeper semantics (every combination, in batches of max_batch_size, through the configured
launcher), plus what makes the jobs one experiment in MLflow: a parent run named after the sweep, and
`tracking.sweep_id` / `tracking.parent_run_id` on every job so each job's run is nested under it and
tagged with its overrides. A failed job does not stop the others; the sweep then ends with its error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from omegaconf import OmegaConf

from mlx.config import TrackingSettings
from mlx.errors import RunError, describe, user_error_types
from mlx.sweep.tracking import open_parent_run
from mlx.tracking.mlflow_run import experiment_of


def tracking_settings(config: Any) -> TrackingSettings:
    values = OmegaConf.to_container(config.tracking, resolve=True)
    assert isinstance(values, dict)
    return TrackingSettings(**values)


def experiment_name(config: Any) -> str:
    """The experiment of the sweep's parent run: the one its jobs' runs go to (mlx.training.run)."""
    return str(
        OmegaConf.select(config, "tracking.experiment_name")
        or experiment_of(str(OmegaConf.select(config, "env.name")), OmegaConf.select(config, "env.id"))
    )


def run_name_override(job: list[str], swept: set[str], prefix: str = "") -> str:
    """The job's MLflow run name, its swept values (``learning_rate=0.0003,seed=2``: each key's last part
    unless two swept keys share it) after ``prefix``, as the tracking.run_name override the job is launched
    with."""
    values = [o.split("=", 1) for o in job if "=" in o and o.split("=", 1)[0] in swept]
    short = [k.rsplit(".", 1)[-1] for k, _ in values]
    names = short if len(set(short)) == len(short) else [k for k, _ in values]
    text = prefix + (",".join(f"{n}={v}" for n, (_, v) in zip(names, values, strict=True)) or "job")
    quoted = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"tracking.run_name='{quoted}'"


def run_grid(sweeper: Any, arguments: list[str]) -> list[Any]:
    config = sweeper.config
    parser = OverridesParser.create(config_loader=sweeper.hydra_context.config_loader)
    batches = BasicSweeper.split_arguments(parser.parse_overrides(arguments), sweeper.max_batch_size)
    n_jobs = sum(len(batch) for batch in batches)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")
    sweep_id = (
        f"{OmegaConf.select(config, 'trainer.trainer_type')}-{OmegaConf.select(config, 'env.name')}-{sweep_dir.name}"
    )
    parent = open_parent_run(
        tracking_settings(config),
        experiment_name(config),
        sweep_id,
        "grid",
        {"sweep.arguments": " ".join(arguments), "sweep.jobs": n_jobs},
    )
    swept = {o.get_key_element() for o in parser.parse_overrides(arguments) if o.is_sweep_override()}
    internal = [f"tracking.sweep_id={sweep_id}"]
    if parent is not None:
        internal.append(f"tracking.parent_run_id={parent.run_id}")
    where = f"; MLflow parent run {parent.run_id}" if parent else ""
    print(f"[INFO] Sweep {sweep_id}: {n_jobs} jobs{where}.", flush=True)

    returns: list[Any] = []
    failed: list[Any] = []
    status = "KILLED"
    try:
        job_idx = 0
        for batch in batches:
            jobs = [list(job) + internal + [run_name_override(job, swept)] for job in batch]
            sweeper.validate_batch_is_legal(jobs)
            results = sweeper.launcher.launch(jobs, initial_job_idx=job_idx)
            job_idx += len(jobs)
            for result in results:
                if result.status == JobStatus.FAILED:
                    failed.append(result)
                    print(
                        f"[WARNING] Job {' '.join(result.overrides or [])} failed: {describe(result._return_value)}",
                        file=sys.stderr,
                        flush=True,
                    )
            returns.append(results)
        status = "FAILED" if failed else "FINISHED"
    finally:
        if parent is not None:
            parent.finish(status)
    if failed:
        exc = failed[0]._return_value
        if isinstance(exc, user_error_types()):
            shown = " ".join(o for o in failed[0].overrides or [] if not o.startswith("tracking."))
            raise RunError(f"{len(failed)} of {n_jobs} jobs failed; the first ({shown}): {describe(exc)}") from exc
        raise exc
    return returns
