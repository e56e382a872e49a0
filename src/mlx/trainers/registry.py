"""Trainer name (config `trainer=<name>`, settings.trainer_type) -> its class: the one table to extend."""

from __future__ import annotations

from typing import Any

from mlx.config import TrainerSettings
from mlx.envs.api import BehaviorSpec
from mlx.memory import check_trainer, spec_sizes
from mlx.trainers.base import RLTrainer
from mlx.trainers.poca.trainer import POCATrainer
from mlx.trainers.ppo.trainer import PPOTrainer
from mlx.trainers.sac.trainer import SACTrainer

TRAINERS: dict[str, type[RLTrainer]] = {
    "ppo": PPOTrainer,
    "sac": SACTrainer,
    "poca": POCATrainer,
}


def make_trainer(behavior_name: str, spec: BehaviorSpec, settings: TrainerSettings, *args: Any) -> RLTrainer:
    """Build the trainer named by settings.trainer_type for one behaviour; ``args``: the rest of
    RLTrainer's arguments (reward signal settings, device, seed)."""
    if settings.trainer_type not in TRAINERS:
        raise ValueError(f"unknown trainer_type '{settings.trainer_type}'")
    # Before any buffer is allocated: its size, now that the observations' size is known.
    check_trainer(settings, "trainer", *spec_sizes(spec), behavior=behavior_name)
    return TRAINERS[settings.trainer_type](behavior_name, spec, settings, *args)


__all__ = ["TRAINERS", "RLTrainer", "make_trainer"]
