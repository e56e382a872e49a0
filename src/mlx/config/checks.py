"""Small checks shared by the settings classes: each names the dotted key it checks, so an error says
where to look and what to write instead."""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mlx.config.paths import resolve_demo_path
from mlx.errors import ConfigError

# The largest whole number a setting may hold: counts beyond it are no longer exact as floats (step
# counters, schedules), and no count a run can reach comes near it.
MAX_INT = 2**53


def plain(value: Any) -> Any:
    """Settings (dataclasses, mappings and lists of them) as builtins in field order, enums as their values:
    what YAML files and the hyperparameter banner are written from."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def numbers(value: Any, key: str) -> None:
    """One rule for every setting, so new ones get it for free: every float under ``value`` (a dataclass,
    mapping, list or scalar) is finite and every int is within +-MAX_INT; ConfigError names the dotted key."""
    if value is None or isinstance(value, (bool, str, bytes, Enum)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number (got {value})")
    elif isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ConfigError(f"{key}={value} is out of range: a whole number setting must lie within +-2**53")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            numbers(getattr(value, f.name), f"{key}.{f.name}")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            numbers(v, f"{key}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            numbers(v, f"{key}[{i}]")


def at_most(value: float, limit: float, key: str, why: str) -> None:
    """An upper bound, with the reason for it in the message."""
    if value > limit:
        raise ConfigError(f"{key} must be at most {limit:g} (got {value:g}): {why}")


def close_match(name: str, allowed: Iterable[str]) -> str:
    """' (did you mean X?)' for a misspelt key, or ''."""
    found = difflib.get_close_matches(name, list(allowed), n=1)
    return f" (did you mean '{found[0]}'?)" if found else ""


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
        hint = close_match(unknown[0], names)
        raise ConfigError(f"unknown key '{key}.{unknown[0]}'{hint}; allowed keys: {', '.join(sorted(names))}")
    built = cls(**values)
    numbers(built, key)
    return built


def build_nested(cls: type, values: Any, key: str) -> Any:
    """Like build, for settings with nested dataclasses (network_settings): typed by OmegaConf."""
    values = mapping(values, key)
    try:
        built = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), values))
    except OmegaConfBaseException as exc:
        where = f"{key}.{exc.full_key}" if getattr(exc, "full_key", None) else key
        raise ConfigError(f"{where}: {str(exc).splitlines()[0]}") from None
    numbers(built, key)
    return built


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
