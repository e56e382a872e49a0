"""Typed configuration: ML-Agents' setting names and defaults (seed 003), validated at start-up.

Hydra composes ``conf/``; the dataclasses here are the schemas of those YAML files (served to Hydra by
mlx.config.store), so a misspelt key or a wrong type fails during composition. ``validate()`` then turns
the composed tree into these dataclasses and calls each one's ``check`` for what types cannot say (sizes,
ranges, relations), raising ``ConfigError`` with the dotted key and the fix.

Modules by concern: network, reward_signals, trainer, env, modes, parameters (environment_parameters) and
samplers, sweep (the sweep: node), run (MlxConfig, RunConfig, validate), store (the schemas for Hydra),
resolvers, paths, checks, reference (docs/settings.md from the schema). The names below are the package's
public face, imported across mlx.
"""

from mlx.config.env import EngineSettings, EnvSettings
from mlx.config.modes import EvaluateSettings, RecordSettings, WatchSettings
from mlx.config.network import ConditioningType, EncoderType, MemorySettings, NetworkSettings
from mlx.config.paths import CONF_DIR, REPO_ROOT, resolve_demo_path
from mlx.config.resolvers import register_resolvers
from mlx.config.reward_signals import (
    REWARD_SIGNALS,
    CuriositySettings,
    ExtrinsicSettings,
    GAILSettings,
    LearnedSignalSettings,
    RewardSignalSettings,
    RNDSettings,
)
from mlx.config.run import MlxConfig, RunConfig, TorchSettings, TrackingSettings, validate
from mlx.config.store import register_configs
from mlx.config.trainer import (
    TRAINER_SETTINGS,
    BehavioralCloningSettings,
    Hyperparameters,
    POCAHyperparameters,
    POCASettings,
    PPOHyperparameters,
    PPOSettings,
    SACHyperparameters,
    SACSettings,
    ScheduleType,
    SelfPlaySettings,
    TrainerSettings,
)
from mlx.errors import ConfigError

__all__ = [
    "CONF_DIR",
    "REPO_ROOT",
    "REWARD_SIGNALS",
    "TRAINER_SETTINGS",
    "BehavioralCloningSettings",
    "SelfPlaySettings",
    "ConditioningType",
    "ConfigError",
    "CuriositySettings",
    "EncoderType",
    "EngineSettings",
    "EnvSettings",
    "EvaluateSettings",
    "ExtrinsicSettings",
    "GAILSettings",
    "Hyperparameters",
    "LearnedSignalSettings",
    "MemorySettings",
    "MlxConfig",
    "NetworkSettings",
    "POCAHyperparameters",
    "POCASettings",
    "PPOHyperparameters",
    "PPOSettings",
    "RNDSettings",
    "RecordSettings",
    "RewardSignalSettings",
    "RunConfig",
    "SACHyperparameters",
    "SACSettings",
    "ScheduleType",
    "TorchSettings",
    "TrackingSettings",
    "TrainerSettings",
    "WatchSettings",
    "register_configs",
    "register_resolvers",
    "resolve_demo_path",
    "validate",
]
