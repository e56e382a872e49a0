"""ML-Agents' trainer-config schema (its settings.py), as mlx's own schema plus what only ML-Agents has.

mlx keeps ML-Agents' names and defaults, so the key tables of a behaviour section (hyperparameters per
trainer type, network_settings, reward_signals, behavioral_cloning) are derived from mlx.config's
dataclasses; added here are the keys ML-Agents has and mlx has not (self_play, POCA, goal_conditioning_type,
...), which the translator reports instead of dropping. The run-level sections (env_settings,
checkpoint_settings, ...) use ML-Agents' own names and defaults. environment_parameters are checked by
mlx's own parser (mlx.config.parameters), once.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any

from mlx.config import (
    REWARD_SIGNALS as MLX_SIGNALS,
)
from mlx.config import (
    TRAINER_SETTINGS,
    BehavioralCloningSettings,
    EngineSettings,
    LearnedSignalSettings,
    MemorySettings,
    NetworkSettings,
    PPOHyperparameters,
    SACHyperparameters,
    TrainerSettings,
)
from mlx.config.checks import mapping
from mlx.config.parameters import parse_environment_parameters
from mlx.errors import ConfigImportError
from mlx.import_mlagents.reading import BOOL, FLOAT, INT, STR, STR_LIST, Opt, check, choice, unknown_key


def coercer(tp: Any) -> Any:
    """The check of one field type of mlx's schema: numbers coerced as ML-Agents does, enums by value,
    Optional as Opt, a nested dataclass as its own table."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        (inner,) = (a for a in typing.get_args(tp) if a is not type(None))
        return Opt(coercer(inner))
    if dataclasses.is_dataclass(tp):
        return table(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return choice(*(member.value for member in tp))
    return {int: INT, float: FLOAT, bool: BOOL, str: STR}[tp]


def table(cls: type, **given: Any) -> dict[str, Any]:
    """Key -> check of every field of a settings dataclass; ``given`` replaces (or adds) entries."""
    hints = typing.get_type_hints(cls)
    out = {f.name: given[f.name] if f.name in given else coercer(hints[f.name]) for f in dataclasses.fields(cls)}
    return {**out, **given}


NETWORK = table(
    NetworkSettings,
    goal_conditioning_type=table(NetworkSettings)["conditioning_type"],  # its name in ML-Agents' settings.py
    max_num_agents=INT,  # some releases: the POCA attention's agent count
)
PPO_HYPER = table(PPOHyperparameters)
POCA_HYPER = {k: v for k, v in PPO_HYPER.items() if k != "shared_critic"}
SAC_HYPER = table(SACHyperparameters)
HYPERPARAMETERS = {"ppo": PPO_HYPER, "sac": SAC_HYPER, "poca": POCA_HYPER}

# ML-Agents' RewardSignalSettings: every signal has network_settings, the learned ones the deprecated
# encoding_size, and GAIL needs its demo_path.
REWARD_SIGNALS = {
    name: table(
        cls,
        network_settings=NETWORK,
        **({"encoding_size": Opt(INT)} if issubclass(cls, LearnedSignalSettings) else {}),
        **({"demo_path": STR} if "demo_path" in {f.name for f in dataclasses.fields(cls)} else {}),
    )
    for name, cls in MLX_SIGNALS.items()
}
BEHAVIORAL_CLONING = table(BehavioralCloningSettings, demo_path=STR)
SELF_PLAY = {
    "save_steps": INT,
    "team_change": INT,
    "swap_steps": INT,
    "window": INT,
    "play_against_latest_model_ratio": FLOAT,
    "initial_elo": FLOAT,
}
TRAINER = table(
    TrainerSettings,
    trainer_type=STR,
    hyperparameters="hyperparameters",  # checked against HYPERPARAMETERS[trainer_type]
    network_settings=NETWORK,
    reward_signals="reward_signals",
    behavioral_cloning=Opt(BEHAVIORAL_CLONING),
    self_play=Opt(SELF_PLAY),
    framework=Opt(STR),  # deprecated; ML-Agents drops it with a warning
)
# Trainer keys with no mlx counterpart, and the value that asks for nothing.
TRAINER_NO_OP = {"self_play": None}
NETWORK_NO_OP = {"max_num_agents": 4}

ENV_SETTINGS = {
    "env_path": Opt(STR),
    "env_args": Opt(STR_LIST),
    "base_port": INT,
    "num_envs": INT,
    "num_areas": INT,
    "timeout_wait": INT,
    "seed": INT,
    "max_lifetime_restarts": INT,
    "restarts_rate_limit_n": INT,
    "restarts_rate_limit_period_s": INT,
}
CHECKPOINT_SETTINGS = {
    "run_id": STR,
    "initialize_from": Opt(STR),
    "load_model": BOOL,
    "resume": BOOL,
    "force": BOOL,
    "train_model": BOOL,
    "inference": BOOL,
    "results_dir": STR,
}
TORCH_SETTINGS = {"device": Opt(STR)}
TOP_LEVEL = (
    "behaviors",
    "default_settings",
    "environment_parameters",
    "env_settings",
    "engine_settings",
    "checkpoint_settings",
    "torch_settings",
    "debug",
)
LEGACY_TOP_LEVEL = ("curriculum", "parameter_randomization")  # ML-Agents 0.17-0.18

# mlagents-learn's defaults for the run-level sections: a value equal to its default asks for nothing.
ENV_DEFAULTS = {
    "env_path": None,
    "env_args": None,
    "base_port": 5005,
    "num_envs": 1,
    "num_areas": 1,
    "timeout_wait": 60,
    "seed": -1,
    "max_lifetime_restarts": 10,
    "restarts_rate_limit_n": 1,
    "restarts_rate_limit_period_s": 60,
}
CHECKPOINT_DEFAULTS = {
    "run_id": "ppo",
    "initialize_from": None,
    "load_model": False,
    "resume": False,
    "force": False,
    "train_model": False,
    "inference": False,
    "results_dir": "results",
}
# engine_settings: the same names and defaults in mlx as in mlagents-learn.
ENGINE_SETTINGS = table(EngineSettings)
ENGINE_DEFAULTS = dataclasses.asdict(EngineSettings())
# Numbers inside environment_parameters that YAML 1.1 may read as text (1e-3), coerced as ML-Agents does.
PARAMETER_NUMBERS = {"threshold": FLOAT, "min_lesson_length": INT, "seed": INT}


def check_trainer(section: Any, path: str) -> dict[str, Any]:
    """One behaviour's settings, checked like ML-Agents' TrainerSettings.structure."""
    section = mapping(section, path)
    for key in section:
        if key not in TRAINER:
            raise unknown_key(path, key, TRAINER)
    out: dict[str, Any] = {}
    trainer_type = section.get("trainer_type")
    if trainer_type is None:
        if "hyperparameters" in section:
            raise ConfigImportError(
                f"{path}: hyperparameters were given but no trainer_type (ML-Agents refuses this too); "
                f"add {path}.trainer_type: ppo or sac"
            )
        trainer_type = "ppo"  # ML-Agents' default
    trainer_type = STR(trainer_type, f"{path}.trainer_type")
    if trainer_type not in HYPERPARAMETERS:
        raise ConfigImportError(
            f"{path}.trainer_type: unknown trainer type '{trainer_type}'; ML-Agents has {', '.join(HYPERPARAMETERS)}"
        )
    out["trainer_type"] = trainer_type
    for key, value in section.items():
        where = f"{path}.{key}"
        if key == "trainer_type":
            continue
        if key == "hyperparameters":
            out[key] = check(value, HYPERPARAMETERS[trainer_type], where)
        elif key == "reward_signals":
            signals = mapping(value, where)
            out[key] = {}
            for name, settings in signals.items():
                if name not in REWARD_SIGNALS:
                    raise unknown_key(where, name, REWARD_SIGNALS)
                out[key][name] = check(settings, REWARD_SIGNALS[name], f"{where}.{name}")
        else:
            out[key] = check(value, TRAINER[key], where)
    memory = (out.get("network_settings") or {}).get("memory")
    defaults = TRAINER_SETTINGS[trainer_type]().hyperparameters
    batch = (out.get("hyperparameters") or {}).get("batch_size", defaults.batch_size)
    if memory and memory.get("sequence_length", MemorySettings.sequence_length) > batch:
        # ML-Agents' own rule (mlx pads short sequences); an even memory_size is mlx's check too (validate)
        raise ConfigImportError(
            f"{path}.network_settings.memory.sequence_length must be <= hyperparameters.batch_size ({batch}), "
            "as ML-Agents requires"
        )
    return out


def environment_parameters(value: Any, path: str) -> dict[str, Any]:
    """ML-Agents' environment_parameters with their numbers coerced, checked by mlx's own parser (the one
    validate runs): a parameter mlx would refuse is bad input, named by its dotted key."""
    tree = _numbers(mapping(value, path), path)
    parse_environment_parameters(tree, path)
    return tree


def _numbers(node: Any, path: str, coerce: Any = None) -> Any:
    """``node`` with number-like text turned into numbers: every leaf of sampler_parameters, and the keys
    of PARAMETER_NUMBERS; names (lessons, behaviours, sampler types) stay text."""
    if isinstance(node, Mapping):
        out = {}
        for key, item in node.items():
            where = f"{path}.{key}"
            inner = FLOAT if key == "sampler_parameters" else coerce
            out[key] = _numbers(item, where, PARAMETER_NUMBERS.get(key, inner))
        return out
    if isinstance(node, list):
        return [_numbers(item, f"{path}[{i}]", coerce) for i, item in enumerate(node)]
    return coerce(node, path) if coerce is not None and isinstance(node, str) else node
