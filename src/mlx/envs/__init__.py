"""Environments: the batched multi-agent API, native example envs, adapters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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


def _ball3d(**kwargs: Any) -> BaseEnv:
    from mlx.envs.native.ball3d import Ball3DEnv

    return Ball3DEnv(**kwargs)


def _ball3d_hard(**kwargs: Any) -> BaseEnv:
    from mlx.envs.native.ball3d_hard import Ball3DHardEnv

    return Ball3DHardEnv(**kwargs)


def _basic(**kwargs: Any) -> BaseEnv:
    from mlx.envs.native.basic import BasicEnv

    return BasicEnv(**kwargs)


def _gridworld(**kwargs: Any) -> BaseEnv:
    from mlx.envs.native.gridworld import GridWorldEnv

    return GridWorldEnv(**kwargs)


def _visual3dball(**kwargs: Any) -> BaseEnv:
    from mlx.envs.native.visual3dball import Visual3DBallEnv

    return Visual3DBallEnv(**kwargs)


def _pushblock(**kwargs: Any) -> BaseEnv:
    from mlx.envs.native.pushblock import PushBlockEnv

    return PushBlockEnv(**kwargs)


def _pyramids(**kwargs: Any) -> BaseEnv:
    from mlx.envs.native.pyramids import PyramidsEnv

    return PyramidsEnv(**kwargs)


def _hallway(**kwargs: Any) -> BaseEnv:
    from mlx.envs.native.hallway import HallwayEnv

    return HallwayEnv(**kwargs)


def _walljump(**kwargs: Any) -> BaseEnv:
    from mlx.envs.native.walljump import WallJumpEnv

    return WallJumpEnv(**kwargs)


# Env config name (conf/env/<name>.yaml, `env=<name>`) -> factory taking num_areas, seed, parameters.
NATIVE_ENVS: Mapping[str, Callable[..., BaseEnv]] = {
    "3dball": _ball3d,
    "3dballhard": _ball3d_hard,
    "basic": _basic,
    "gridworld": _gridworld,
    "visual3dball": _visual3dball,
    "hallway": _hallway,
    "pushblock": _pushblock,
    "pyramids": _pyramids,
    "walljump": _walljump,
}


def _gym(**kwargs: Any) -> BaseEnv:
    from mlx.envs.gym.adapter import GymEnv

    return GymEnv(**kwargs)


# Envs from other libraries (`env=gym env.id=...`): factories that also take env_id and env_kwargs.
ADAPTER_ENVS: Mapping[str, Callable[..., BaseEnv]] = {
    "gym": _gym,
}


def make_env(
    name: str,
    num_areas: int,
    seed: int,
    parameters: Mapping[str, float] | None = None,
    env_id: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> BaseEnv:
    """Build an env by its config name; unknown names fail with the list of known ones.

    env_id and env_kwargs (config: env.id, env.kwargs) select and configure an adapted env (env=gym).
    """
    if name in ADAPTER_ENVS:
        return ADAPTER_ENVS[name](
            env_id=env_id,
            num_areas=num_areas,
            seed=seed,
            parameters=dict(parameters or {}),
            env_kwargs=dict(env_kwargs or {}),
        )
    try:
        factory = NATIVE_ENVS[name]
    except KeyError:
        known = ", ".join(sorted({**NATIVE_ENVS, **ADAPTER_ENVS}))
        raise EnvError(f"unknown env '{name}'; available: {known}") from None
    if env_id is not None or env_kwargs:
        raise EnvError(f"env '{name}' is a native env: env.id and env.kwargs are only for env=gym; remove them")
    return factory(num_areas=num_areas, seed=seed, parameters=dict(parameters or {}))


__all__ = [
    "ActionSpec",
    "ActionTuple",
    "BaseEnv",
    "BehaviorSpec",
    "DecisionSteps",
    "ADAPTER_ENVS",
    "EnvError",
    "NATIVE_ENVS",
    "ObservationSpec",
    "TerminalSteps",
    "make_env",
]
