"""Reward signals: config `trainer.reward_signals.<name>` -> module `mlx.trainers.rewards.<name>`."""

from __future__ import annotations

from typing import Any

import torch

from mlx.envs.api import BehaviorSpec
from mlx.trainers.rewards.base import ExtrinsicSignal, RewardSignal, SignalBatch


def make_reward_signal(
    name: str, spec: BehaviorSpec, settings: Any, device: torch.device, behavior: str = ""
) -> RewardSignal:
    """Build the reward signal named in the config for one behaviour (``behavior`` names it in errors)."""
    if name == "extrinsic":
        signal: RewardSignal = ExtrinsicSignal(spec, settings)
    elif name == "curiosity":
        from mlx.trainers.rewards.curiosity import CuriositySignal

        signal = CuriositySignal(spec, settings)
    elif name == "rnd":
        from mlx.trainers.rewards.rnd import RNDSignal

        signal = RNDSignal(spec, settings)
    elif name == "gail":
        from mlx.trainers.rewards.gail import GAILSignal

        signal = GAILSignal(spec, settings, behavior)
    else:
        raise ValueError(f"unknown reward signal '{name}'")
    return signal.to(device)


__all__ = ["RewardSignal", "SignalBatch", "make_reward_signal"]
