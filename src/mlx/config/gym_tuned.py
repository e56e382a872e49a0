"""Tuned settings per Gymnasium id: ``${mlx_gym_tuned:<key>}`` in conf/tuned/gym_<trainer>.yaml.

Hydra picks a tuned file from group choices only (``optional tuned: ${env}_${trainer}``); a Gymnasium id is
a value (env.id), which the defaults list cannot see. So tuned/gym_<trainer>.yaml lists the settings that
any id may tune, each as this resolver, and the resolver answers, when the config is resolved, with the
value that conf/tuned/gym/<env.id>_<trainer>.yaml sets, or ML-Agents' default (the schema's) when there is
no such file or the file leaves the key out. An id without a file thus trains with ML-Agents' defaults,
not with another id's settings; the command line still wins (it replaces the interpolation).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mlx.errors import ConfigError

MISSING_KEY = object()


def tuned_file(conf_dir: Path, env_id: str | None, trainer_type: str) -> Path | None:
    """conf/tuned/gym/<id>_<trainer>.yaml when it exists (an id with a namespace, ALE/Pong-v5, is a subfolder)."""
    if not env_id or not isinstance(env_id, str):
        return None
    parts = PurePosixPath(env_id).parts
    if any(p in ("", ".", "..") for p in parts) or PurePosixPath(env_id).is_absolute():
        return None  # not a Gymnasium id; the env check names the problem
    path = conf_dir / "tuned" / "gym" / f"{env_id}_{trainer_type}.yaml"
    return path if path.is_file() else None


@cache
def _load(path: Path, trainer_type: str) -> DictConfig:
    """A per-id file, checked against the trainer's schema once (a misspelt key fails by name)."""
    from mlx.config.trainer import TRAINER_SETTINGS

    try:
        tree = OmegaConf.load(path)
        OmegaConf.merge(OmegaConf.structured(TRAINER_SETTINGS[trainer_type]), tree)
    except Exception as exc:  # noqa: BLE001 - any failure to read or match the schema is the file's problem
        raise ConfigError(f"{path}: {str(exc).splitlines()[0]} (fix or remove the file)") from None
    if not isinstance(tree, DictConfig):
        raise ConfigError(f"{path}: holds no mapping of trainer settings (fix or remove the file)")
    return tree


def schema_default(trainer_type: str, key: str) -> Any:
    """ML-Agents' default of a trainer setting: the trainer's schema, or a reward signal's for
    reward_signals.<signal>.<setting>."""
    from mlx.config.reward_signals import REWARD_SIGNALS
    from mlx.config.trainer import TRAINER_SETTINGS

    parts = key.split(".")
    if parts[0] == "reward_signals" and len(parts) > 2 and parts[1] in REWARD_SIGNALS:
        value: Any = _defaults(REWARD_SIGNALS[parts[1]])
        parts = parts[2:]
    else:
        value = _defaults(TRAINER_SETTINGS[trainer_type])
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            raise ConfigError(f"${{mlx_gym_tuned:{key}}}: trainer.{key} is no {trainer_type} setting (fix conf/tuned)")
        value = value[part]
    return copy.deepcopy(value)


@cache
def _defaults(schema: type) -> dict[str, Any]:
    """A dataclass schema's defaults as plain containers (built once: each resolution asks again)."""
    tree = OmegaConf.to_container(OmegaConf.structured(schema))
    assert isinstance(tree, dict)
    return tree


def gym_tuned(key: str, *, _root_: DictConfig) -> Any:
    """The resolver: the tuned value of trainer.<key> for the run's Gymnasium id, else ML-Agents' default."""
    from mlx.config.paths import CONF_DIR

    env_id = OmegaConf.select(_root_, "env.id", default=None, throw_on_missing=False)
    trainer_type = OmegaConf.select(_root_, "trainer.trainer_type", default=None, throw_on_missing=False)
    if not isinstance(trainer_type, str):
        raise ConfigError(f"${{mlx_gym_tuned:{key}}} is used outside a trainer config (trainer.trainer_type unset)")
    path = tuned_file(Path(CONF_DIR), env_id, trainer_type)
    if path is not None:
        value = OmegaConf.select(_load(path, trainer_type), key, default=MISSING_KEY)
        if value is not MISSING_KEY:
            return OmegaConf.to_container(value) if isinstance(value, DictConfig) else value
    return schema_default(trainer_type, key)
