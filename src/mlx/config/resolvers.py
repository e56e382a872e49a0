"""The resolvers conf/ uses: ``${mlx_job:}`` (a multirun job's run_id suffix), ``${mlx_mode:}`` (where a
mode's Hydra files go) and ``${mlx_gym_tuned:<key>}`` (a Gymnasium id's tuned setting, mlx.config.gym_tuned)."""

from __future__ import annotations

from omegaconf import OmegaConf

from mlx.config.gym_tuned import gym_tuned


def multirun_job_num() -> int | None:
    """This job's number inside a Hydra multirun; None in a single run (or outside Hydra)."""
    # Hydra's runtime modules load on first resolution, not with every importer of the schema.
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    num = OmegaConf.select(hc, "job.num", default=None, throw_on_missing=False)
    return None if num is None else int(num)


def job_suffix() -> str:
    """'' in a single run; '-<job number>' inside a multirun. Every job of a multirun composes the same
    `run_id` default (Hydra copies one timestamp into all of them), so jobs never share a folder."""
    num = multirun_job_num()
    return "" if num is None else f"-{num}"


def mode_suffix(mode: str) -> str:
    """'' for training; '-<mode>' for evaluate, record and watch, whose Hydra files (``.hydra-<mode>/``,
    ``mlx-<mode>.log``) then sit beside the training run's instead of overwriting them."""
    return "" if mode == "train" else f"-{mode}"


def register_resolvers() -> None:
    """Idempotent; called wherever a job config may be resolved (the app, validate, sweep workers)."""
    if not OmegaConf.has_resolver("mlx_job"):
        OmegaConf.register_new_resolver("mlx_job", job_suffix)
    if not OmegaConf.has_resolver("mlx_mode"):
        OmegaConf.register_new_resolver("mlx_mode", mode_suffix)
    if not OmegaConf.has_resolver("mlx_gym_tuned"):
        OmegaConf.register_new_resolver("mlx_gym_tuned", gym_tuned)
