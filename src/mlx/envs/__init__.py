"""Environments: the batched multi-agent API, native example envs, adapters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mlx.envs.base import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    ObservationSpec,
    TerminalSteps,
)


def _ball3d(**kwargs: Any) -> BaseEnv:
    from mlx.envs.ball3d import Ball3DEnv

    return Ball3DEnv(**kwargs)


def _ball3d_hard(**kwargs: Any) -> BaseEnv:
    from mlx.envs.ball3d_hard import Ball3DHardEnv

    return Ball3DHardEnv(**kwargs)


def _basic(**kwargs: Any) -> BaseEnv:
    from mlx.envs.basic import BasicEnv

    return BasicEnv(**kwargs)


# Env config name (conf/env/<name>.yaml, `env=<name>`) -> factory taking num_areas, seed, parameters.
NATIVE_ENVS: Mapping[str, Callable[..., BaseEnv]] = {
    "3dball": _ball3d,
    "3dballhard": _ball3d_hard,
    "basic": _basic,
}


def make_env(name: str, num_areas: int, seed: int, parameters: Mapping[str, float] | None = None) -> BaseEnv:
    """Build a native env by its config name; unknown names fail with the list of known ones."""
    try:
        factory = NATIVE_ENVS[name]
    except KeyError:
        known = ", ".join(sorted(NATIVE_ENVS))
        raise EnvError(f"unknown env '{name}'; available: {known}") from None
    return factory(num_areas=num_areas, seed=seed, parameters=dict(parameters or {}))


__all__ = [
    "ActionSpec",
    "ActionTuple",
    "BaseEnv",
    "BehaviorSpec",
    "DecisionSteps",
    "EnvError",
    "NATIVE_ENVS",
    "ObservationSpec",
    "TerminalSteps",
    "make_env",
]
