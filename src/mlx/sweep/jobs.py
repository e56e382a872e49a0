"""What a job knows about the multirun it belongs to: its run_id suffix and its MLflow tags.

Every job of a multirun composes the same `run_id` default (Hydra copies one timestamp into all of them),
so `${mlx_job:}` appends `-<job number>` there and nothing in a single run: jobs never share a folder.
"""

from __future__ import annotations

from omegaconf import OmegaConf

# Overrides the sweepers add to each job: bookkeeping, not part of what the job tried.
INTERNAL_KEYS = ("tracking.parent_run_id", "tracking.sweep_id", "tracking.trial")


def _multirun_job_num() -> int | None:
    from hydra.core.hydra_config import HydraConfig  # lazy for start-up speed (hydra)
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    num = OmegaConf.select(hc, "job.num", default=None, throw_on_missing=False)
    return None if num is None else int(num)


def job_suffix() -> str:
    """'' in a single run; '-<job number>' inside a multirun."""
    num = _multirun_job_num()
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


def job_overrides() -> list[str]:
    """This job's command-line overrides without the sweepers' bookkeeping ones."""
    from hydra.core.hydra_config import HydraConfig  # lazy for start-up speed (hydra)

    if not HydraConfig.initialized():
        return []
    task = HydraConfig.get().overrides.task
    return [o for o in task if o.lstrip("+").split("=", 1)[0] not in INTERNAL_KEYS]


def job_tags() -> dict[str, str]:
    """MLflow tags of a multirun job: its overrides (what it tried) and its number."""
    num = _multirun_job_num()
    if num is None:
        return {}
    return {"mlx.overrides": " ".join(job_overrides()), "mlx.job": str(num)}
