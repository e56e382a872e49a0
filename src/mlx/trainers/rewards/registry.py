"""Reward signal name (config `trainer.reward_signals.<name>`, module `mlx.trainers.rewards.<name>`) -> its
class: the one table to extend."""

from __future__ import annotations

from typing import Any

import torch

from mlx.envs.api import BehaviorSpec
from mlx.trainers.rewards.base import ExtrinsicSignal, RewardSignal
from mlx.trainers.rewards.curiosity import CuriositySignal
from mlx.trainers.rewards.gail import GAILSignal
from mlx.trainers.rewards.rnd import RNDSignal

# Config name -> class; every class is built as cls(spec, settings, behavior).
REWARD_SIGNALS: dict[str, type[RewardSignal]] = {
    "extrinsic": ExtrinsicSignal,
    "curiosity": CuriositySignal,
    "rnd": RNDSignal,
    "gail": GAILSignal,
}


def make_reward_signal(
    name: str, spec: BehaviorSpec, settings: Any, device: torch.device, behavior: str = ""
) -> RewardSignal:
    """Build the reward signal named in the config for one behaviour (``behavior`` names it in errors)."""
    if name not in REWARD_SIGNALS:
        raise ValueError(f"unknown reward signal '{name}'")
    return REWARD_SIGNALS[name](spec, settings, behavior).to(device)
