"""What a job knows about the multirun it belongs to: its overrides and its MLflow tags (its run_id
suffix is the ``${mlx_job:}`` resolver of mlx.config.resolvers)."""

from __future__ import annotations

from mlx.config.resolvers import multirun_job_num

# Overrides the sweepers add to each job: bookkeeping, not part of what the job tried.
INTERNAL_KEYS = ("tracking.parent_run_id", "tracking.sweep_id", "tracking.trial", "tracking.run_name")


def job_overrides() -> list[str]:
    """This job's command-line overrides without the sweepers' bookkeeping ones."""
    from hydra.core.hydra_config import HydraConfig  # lazy for start-up speed (hydra)

    if not HydraConfig.initialized():
        return []
    task = HydraConfig.get().overrides.task
    return [o for o in task if o.lstrip("+").split("=", 1)[0] not in INTERNAL_KEYS]


def job_tags() -> dict[str, str]:
    """MLflow tags of a multirun job: its overrides (what it tried) and its number."""
    num = multirun_job_num()
    if num is None:
        return {}
    return {"mlx.overrides": " ".join(job_overrides()), "mlx.job": str(num)}
