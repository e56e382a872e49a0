"""Environments: the batched multi-agent API (mlx.envs.api), the registry, native envs, Unity and Gymnasium."""

from __future__ import annotations

from mlx.envs.api import BaseEnv, EnvError
from mlx.envs.registry import ADAPTER_ENVS, NATIVE_ENVS, env_class, make_env

__all__ = ["ADAPTER_ENVS", "BaseEnv", "EnvError", "NATIVE_ENVS", "env_class", "make_env"]
