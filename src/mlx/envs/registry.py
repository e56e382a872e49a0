"""The env registry: config name (``env=<name>``, conf/env/<name>.yaml) -> the class that builds it.

Entries are import paths ``"module:Class"``, imported when that env is built: a run loads only the env
it uses (the ten native modules together cost ~0.1 s of start-up, the Gymnasium adapter more).
Adding an env is one line here plus its own module (docs/architecture.md, "Adding a native env").
Native classes take ``num_areas``, ``seed`` and ``parameters``; adapters also ``env_id`` and ``env_kwargs``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from mlx.envs.api import BaseEnv
from mlx.errors import EnvError

NATIVE_ENVS: Mapping[str, str] = {
    "3dball": "mlx.envs.native.ball3d:Ball3DEnv",
    "3dballhard": "mlx.envs.native.ball3d_hard:Ball3DHardEnv",
    "basic": "mlx.envs.native.basic:BasicEnv",
    "crawler": "mlx.envs.native.crawler:CrawlerEnv",
    "dungeonescape": "mlx.envs.native.dungeonescape:DungeonEscapeEnv",
    "foodcollector": "mlx.envs.native.foodcollector:FoodCollectorEnv",
    "gridworld": "mlx.envs.native.gridworld:GridWorldEnv",
    "hallway": "mlx.envs.native.hallway:HallwayEnv",
    "match3": "mlx.envs.native.match3:Match3Env",
    "pushblock": "mlx.envs.native.pushblock:PushBlockEnv",
    "pushblockcollab": "mlx.envs.native.pushblockcollab:PushBlockCollabEnv",
    "pyramids": "mlx.envs.native.pyramids:PyramidsEnv",
    "sacrifice": "mlx.envs.native.sacrifice:SacrificeEnv",
    "soccertwos": "mlx.envs.native.soccertwos:SoccerTwosEnv",
    "sorter": "mlx.envs.native.sorter:SorterEnv",
    "strikersvsgoalie": "mlx.envs.native.strikersvsgoalie:StrikersVsGoalieEnv",
    "tennis": "mlx.envs.native.tennis:TennisEnv",
    "visual3dball": "mlx.envs.native.visual3dball:Visual3DBallEnv",
    "visualfoodcollector": "mlx.envs.native.visualfoodcollector:VisualFoodCollectorEnv",
    "visualhallway": "mlx.envs.native.visualhallway:VisualHallwayEnv",
    "visualpushblock": "mlx.envs.native.visualpushblock:VisualPushBlockEnv",
    "visualpyramids": "mlx.envs.native.visualpyramids:VisualPyramidsEnv",
    "walker": "mlx.envs.native.walker:WalkerEnv",
    "walljump": "mlx.envs.native.walljump:WallJumpEnv",
    "worm": "mlx.envs.native.worm:WormEnv",
}

# The behaviour names of each native env, known without building it: ML-Agents configs name behaviours,
# and the importer and mlx-learn pick the port from them (tests/test_registry.py checks them against the envs).
NATIVE_BEHAVIORS: Mapping[str, tuple[str, ...]] = {
    "3dball": ("3DBall",),
    "3dballhard": ("3DBallHard",),
    "basic": ("Basic",),
    "crawler": ("Crawler",),
    "dungeonescape": ("DungeonEscape",),
    "foodcollector": ("GridFoodCollector",),
    "gridworld": ("GridWorld",),
    "hallway": ("Hallway",),
    "match3": ("Match3VisualObs",),
    "pushblock": ("PushBlock",),
    "pushblockcollab": ("PushBlockCollab",),
    "pyramids": ("Pyramids",),
    "sacrifice": ("Sacrifice",),
    "soccertwos": ("SoccerTwos",),
    "sorter": ("Sorter",),
    "strikersvsgoalie": ("Striker", "Goalie"),
    "tennis": ("Tennis",),
    "visual3dball": ("Visual3DBall",),
    "visualfoodcollector": ("VisualFoodCollector",),
    "visualhallway": ("VisualHallway",),
    "visualpushblock": ("VisualPushBlock",),
    "visualpyramids": ("VisualPyramids",),
    "walker": ("Walker",),
    "walljump": ("SmallWallJump", "BigWallJump"),
    "worm": ("Worm",),
}

# Envs from other libraries (`env=gym env.id=...`).
ADAPTER_ENVS: Mapping[str, str] = {
    "gym": "mlx.envs.gym.adapter:GymEnv",
}


def env_class(name: str) -> type[BaseEnv]:
    """The class registered under ``name``; unknown names fail with the list of known ones."""
    path = NATIVE_ENVS.get(name) or ADAPTER_ENVS.get(name)
    if path is None:
        known = ", ".join(sorted({**NATIVE_ENVS, **ADAPTER_ENVS}))
        raise EnvError(f"unknown env '{name}'; available: {known}")
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def make_env(
    name: str,
    num_areas: int,
    seed: int,
    parameters: Mapping[str, float] | None = None,
    env_id: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> BaseEnv:
    """Build an env by its config name.

    env_id and env_kwargs (config: env.id, env.kwargs) select and configure an adapted env (env=gym).
    """
    cls = env_class(name)
    params = dict(parameters or {})
    if name in ADAPTER_ENVS:
        return cls(env_id=env_id, num_areas=num_areas, seed=seed, parameters=params, env_kwargs=dict(env_kwargs or {}))
    if env_id is not None or env_kwargs:
        raise EnvError(f"env '{name}' is a native env: env.id and env.kwargs are only for env=gym; remove them")
    return cls(num_areas=num_areas, seed=seed, parameters=params)
