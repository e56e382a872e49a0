"""Trainers (RL algorithms): config group `trainer=<name>` -> module `mlx.trainers.<name>`."""

from __future__ import annotations

from typing import Any

import torch

from mlx.config import TrainerSettings
from mlx.envs.api import BehaviorSpec
from mlx.trainers.base import RLTrainer, TrainingError


def make_trainer(
    behavior_name: str,
    spec: BehaviorSpec,
    settings: TrainerSettings,
    reward_signals: dict[str, Any],
    device: torch.device,
    seed: int = 0,
) -> RLTrainer:
    """Build the trainer named by settings.trainer_type for one behaviour."""
    if settings.trainer_type == "ppo":
        from mlx.trainers.ppo.trainer import PPOTrainer

        return PPOTrainer(behavior_name, spec, settings, reward_signals, device)  # type: ignore[arg-type]
    if settings.trainer_type == "sac":
        from mlx.trainers.sac.trainer import SACTrainer

        return SACTrainer(behavior_name, spec, settings, reward_signals, device, seed)  # type: ignore[arg-type]
    raise ValueError(f"unknown trainer_type '{settings.trainer_type}'")


__all__ = ["RLTrainer", "TrainingError", "make_trainer"]
