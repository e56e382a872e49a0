"""Environments: the batched multi-agent API, the registry, native example envs, adapters."""

from __future__ import annotations

from mlx.envs.api import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    ObservationSpec,
    TerminalSteps,
)
from mlx.envs.registry import ADAPTER_ENVS, NATIVE_ENVS, env_class, make_env

__all__ = [
    "ADAPTER_ENVS",
    "ActionSpec",
    "ActionTuple",
    "BaseEnv",
    "BehaviorSpec",
    "DecisionSteps",
    "EnvError",
    "NATIVE_ENVS",
    "ObservationSpec",
    "TerminalSteps",
    "env_class",
    "make_env",
]
