"""The hyperparameter banner a run prints per behaviour at its start, in mlagents-learn's layout: users
compare it with upstream's log to see that the same settings are in force.

    [INFO] Hyperparameters for behavior name 3DBall:
    <TAB>trainer_type:<TAB>ppo
    <TAB>hyperparameters:<TAB>
    <TAB>  batch_size:<TAB>64

Each setting is a tab, two spaces per level of nesting, the name, a colon, a tab and the value (Python's
``str`` of it: True, None, 0.0003), as upstream writes its settings tree.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any


def _plain(value: Any) -> Any:
    """Settings (dataclasses, or dicts of them) as nested dicts in field order; enums as their values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _lines(tree: Mapping[str, Any], depth: int) -> list[str]:
    out = []
    for key, value in tree.items():
        indent = "\t" + "  " * depth
        if isinstance(value, Mapping):
            out.append(f"{indent}{key}:\t")
            out += _lines(value, depth + 1)
        else:
            out.append(f"{indent}{key}:\t{value}")
    return out


def hyperparameter_banner(behavior: str, settings: Mapping[str, Any]) -> str:
    """The banner of one behaviour's settings tree (``mlx.tracking.tensorboard.behavior_settings``: the same
    tree TensorBoard's hyperparameter text shows), one block of lines printed at once, so behaviours never
    interleave."""
    head = f"[INFO] Hyperparameters for behavior name {behavior}: "
    return "\n".join([head, *_lines(_plain(settings), 0)])
