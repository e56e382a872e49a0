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

from collections.abc import Mapping
from typing import Any

from mlx.config.checks import plain


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
    return "\n".join([head, *_lines(plain(settings), 0)])


def tuned_file() -> str:
    """The tuned defaults this run composed (conf/tuned/<env>_<trainer>.yaml), "none" when no file was
    applied (no file for the pair, or an experiment that leaves tuned/ out); "unknown" outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    from mlx.config import CONF_DIR

    if not HydraConfig.initialized():
        return "unknown (not composed by Hydra)"
    choice = HydraConfig.get().runtime.choices.get("tuned")
    if not choice or not (CONF_DIR / "tuned" / f"{choice}.yaml").is_file():
        return "none"
    return f"conf/tuned/{choice}.yaml"


def tracking_line(backend: str, uri: str, tensorboard: bool) -> str:
    """Where the run's metrics go, as the banner says it (a URI's password redacted)."""
    from mlx.tracking.secrets import redact

    parts = [f"MLflow {redact(uri)}"] if backend == "mlflow" else []
    if tensorboard or backend == "tensorboard":
        parts.append("TensorBoard (tensorboard --logdir <results_dir>)")
    return ", ".join(parts) or "none (console, stats.jsonl and mlx.log only)"


def start_banner(rows: Mapping[str, str], head: str) -> str:
    """The run's start banner: ``head``, then one aligned ``name: value`` line per row, as one block."""
    width = max(len(name) for name in rows) + 1
    return "\n".join([f"[INFO] {head}", *(f"[INFO]   {name + ':':<{width}} {value}" for name, value in rows.items())])
