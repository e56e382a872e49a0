"""The typed shape of the `sweep:` node (part of mlx.config.MlxConfig, so Hydra types sweeps/<name>.yaml).

Typed so that every key exists with its default even when a sweep file leaves it out: a worker can say
`sweep.storage=postgresql://...` or `sweep.pruner.type=none` on the command line for any sweep, and a
misspelt key fails while Hydra composes. Values (ranges, names, URLs) are checked by mlx.sweep.settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ObjectiveSettings:
    """What one trial is worth.

    mean_reward: the mean cumulative reward of the last `last_n` summaries (maximize).
    steps_to_reward: the agent steps until a summary's mean reward reaches `target` (minimize); the run
    stops there. A trial that never gets there scores max_steps * (1 + shortfall), the shortfall being
    how far its best summary stayed below the target relative to |target|, so near misses still rank.
    """

    type: str = "mean_reward"  # mean_reward or steps_to_reward
    last_n: int = 3  # mean_reward: summaries averaged
    target: float | None = None  # steps_to_reward: the mean reward to reach


@dataclass
class SamplerSettings:
    type: str = "tpe"  # tpe, cmaes, random, gp
    seed: int | None = None  # per worker: give each worker its own seed, or none
    n_startup_trials: int | None = None  # tpe, gp, cmaes: random trials first (None: Optuna's default)


@dataclass
class PrunerSettings:
    """Steps here are agent steps, the x axis of every summary (trainer.summary_freq apart)."""

    type: str = "median"  # median, successive_halving, hyperband, none
    n_startup_trials: int = 5  # median: trials that must finish before any is pruned
    n_warmup_steps: int = 0  # median: a trial is never pruned before this step
    min_resource: int | None = None  # successive_halving, hyperband: first rung (None: trainer.summary_freq)
    max_resource: int | None = None  # hyperband: last rung (None: trainer.max_steps)
    reduction_factor: int = 3  # successive_halving, hyperband


@dataclass
class SweepSchema:
    study_name: str | None = None  # names the study, its MLflow parent run and its trials' run_ids
    storage: str = "sqlite:///optuna.db"  # an SQLAlchemy URL (sqlite, postgresql, mysql) or journal:///file
    direction: str | None = None  # maximize or minimize; None: the objective's own
    objective: ObjectiveSettings = field(default_factory=ObjectiveSettings)
    n_trials: int = 20  # trials the study holds when done, over every worker and every rerun
    n_jobs: int = 1  # trials this worker launches together (in parallel with hydra/launcher=joblib)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    pruner: PrunerSettings = field(default_factory=PrunerSettings)
    search_space: Any = None  # config key -> {type: float|int|categorical, ...} or a list of choices
    heartbeat_interval: float = 20.0  # seconds between "still running" marks on this worker's trials
    stale_after: float = 120.0  # a trial of another host not marked for this long is taken as dead
    load_error: str | None = None  # set when the sweep file did not parse (reported when it is chosen)
