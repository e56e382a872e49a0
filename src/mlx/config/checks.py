"""Small checks shared by the settings classes: each names the dotted key it checks, so an error says
where to look and what to write instead."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mlx.config.paths import resolve_demo_path
from mlx.errors import ConfigError


def positive(value: float, key: str) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0 (got {value})")


def non_negative(value: float, key: str) -> None:
    if value < 0:
        raise ConfigError(f"{key} must be >= 0 (got {value})")


def mapping(values: Any, key: str) -> dict[str, Any]:
    """A section as a fresh dict (None: empty), or ConfigError naming its key."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{key} must be a mapping (got {values!r})")
    return dict(values)


def build(cls: type, values: Any, key: str) -> Any:
    """Construct a flat settings dataclass from a plain dict, naming unknown keys and allowed ones."""
    values = mapping(values, key)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown key '{key}.{unknown[0]}'; allowed keys: {', '.join(sorted(names))}")
    return cls(**values)


def build_nested(cls: type, values: Any, key: str) -> Any:
    """Like build, for settings with nested dataclasses (network_settings): typed by OmegaConf."""
    values = mapping(values, key)
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), values))
    except OmegaConfBaseException as exc:
        where = f"{key}.{exc.full_key}" if getattr(exc, "full_key", None) else key
        raise ConfigError(f"{where}: {str(exc).splitlines()[0]}") from None


def demo_path(path: str | None, key: str) -> None:
    """A demonstration setting must name an existing .demo file or folder (see resolve_demo_path)."""
    if path is None:
        raise ConfigError(
            f"{key} is required: the .demo file (or folder of them) to imitate; record one with "
            "python -m mlx mode=record run_id=<trained run> record.path=<file.demo>"
        )
    found = resolve_demo_path(path)
    if not found.exists():
        raise ConfigError(f"{key}: no .demo file or folder at '{path}'")
    if found.is_file() and found.suffix != ".demo":
        raise ConfigError(f"{key}: '{path}' is not a .demo file")
