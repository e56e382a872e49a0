"""An existing run is the base of what acts on it: `resume=true` and `mode=evaluate|watch|record`.

A run's ``configuration.yaml`` (every option, resolved) is what it trained with. Rebuilding the config
from the command line instead would silently swap the env, trainer, hyperparameters or stop_at_reward
for conf/'s defaults, so `run_id=x resume=true` alone must mean "this run, as it was". The command line
still applies on top, as a *delta*: Hydra composes the run's original overrides (``.hydra/overrides.yaml``)
once without and once with the new ones, and exactly the keys that differ between those two are set in
the saved tree. Group choices (``tracking=none``) and repeated original overrides (``env=3dball`` again)
thus behave as a Hydra user expects, and nothing the user did not type changes, even when conf/'s
defaults moved since the run started.

What a checkpoint cannot follow (another trainer type, network shape, set of reward signals, env) is
refused for resume in one line; everything else is applied, printed and recorded by the run
(mlx.training.run), with the history kept in ``run_logs/resumes.jsonl``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlx.errors import ConfigError, RunError

# The record mlx writes in a run folder when a start is accepted (Hydra's layout, see mlx.__main__).
RECORD_DIR = ".hydra"
OVERRIDES_FILE = "overrides.yaml"
CONFIGURATION_FILE = "configuration.yaml"
MAX_RECORD_BYTES = 10 * 2**20  # a run's configuration is a few KB; a bigger file is not one

# Keys that say what to do with the run rather than how it trains: never recorded as a change.
OPERATIONAL = ("resume", "force", "mode", "progress", "debug", "evaluate", "watch", "record")

# Keys a checkpoint cannot follow: changing them on resume is refused (prefix match on dotted keys).
FIXED = (
    "trainer.trainer_type",
    "env.name",
    "env.id",
    "trainer.network_settings",
)
# ...and, inside each reward signal, the parts that shape its networks.
FIXED_IN_SIGNALS = ("encoding_size", "network_settings")
# Keys under a fixed prefix that change how the networks are used, not their shape: a resume may change them.
FOLLOWABLE = ("trainer.network_settings.deterministic",)

Compose = Callable[[Sequence[str]], Mapping[str, Any]]


class _Absent:
    """A key that is not in the tree at all (unlike a key set to null)."""

    def __repr__(self) -> str:
        return "(unset)"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Change:
    """One setting a resumed run changes: ``key`` (dotted), its value before and after (ABSENT: no key)."""

    key: str
    before: Any
    after: Any

    def describe(self) -> str:
        return f"{self.key}: {_show(self.before)} -> {_show(self.after)}"

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "before": None if self.before is ABSENT else self.before,
            "after": None if self.after is ABSENT else self.after,
        }


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def run_folder(tree: Mapping[str, Any]) -> Path | None:
    """The folder of the run the composed tree names, or None when run_id is not a plain folder name (the
    validation refuses it then; no path outside results_dir is ever read)."""
    run_id = str(tree.get("run_id") or "")
    if not run_id or "/" in run_id or "\\" in run_id or run_id in (".", ".."):
        return None
    return Path(str(tree.get("results_dir", "results"))) / run_id


def acts_on_existing_run(tree: Mapping[str, Any]) -> bool:
    """resume=true, or a mode that acts with a run's policy: the run's own settings are the base."""
    return bool(tree.get("resume")) or str(tree.get("mode", "train")) != "train"


def _read_yaml(path: Path) -> Any:
    """A small YAML file of mlx's, read safely; RunError naming the file when it cannot be."""
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            raise RunError(
                f"{path} is {path.stat().st_size} bytes, not a run's record; restore it or start a new run_id"
            )
        return yaml.safe_load(path.read_bytes().decode())
    except (OSError, UnicodeDecodeError, RecursionError, yaml.YAMLError) as exc:
        raise RunError(
            f"{path} cannot be read ({type(exc).__name__}); restore it from a backup or start a new run_id"
        ) from None


def load_saved(folder: Path) -> dict[str, Any] | None:
    """The run's configuration.yaml as a tree; None when the folder holds no run."""
    path = folder / CONFIGURATION_FILE
    if not path.is_file():
        return None
    tree = _read_yaml(path)
    if not isinstance(tree, dict) or not all(isinstance(k, str) for k in tree):
        raise RunError(f"{path} is not a run configuration; restore it from a backup or start a new run_id")
    return tree


def load_original_overrides(folder: Path) -> list[str]:
    """The command-line overrides the run started with; [] for runs started before mlx recorded them, or when
    the record is unreadable (the delta is then taken from conf/'s defaults, see rebase)."""
    path = folder / RECORD_DIR / OVERRIDES_FILE
    if not path.is_file():
        return []
    try:
        overrides = _read_yaml(path)
    except RunError:
        return []
    return [o for o in overrides if isinstance(o, str)] if isinstance(overrides, list) else []


def override_key(override: str) -> str:
    """``+a.b=1`` -> ``a.b``; ``env=gym`` -> ``env``: what a later override of the same thing replaces."""
    return override.split("=", 1)[0].lstrip("+~")


def merged_overrides(original: Sequence[str], new: Sequence[str]) -> list[str]:
    """The original overrides with the new ones after them, each key once (the new one wins)."""
    replaced = {override_key(o) for o in new}
    return [o for o in original if override_key(o) not in replaced] + list(new)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: MLflow's flat params and a resume's changed keys alike; an empty
    mapping is a leaf of its own (so that adding to it is a change)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """Every dotted key whose value differs, in a stable order."""
    old, new = flatten(before), flatten(after)
    keys = list(old) + [k for k in new if k not in old]
    return [
        Change(k, old.get(k, ABSENT), new.get(k, ABSENT))
        for k in keys
        if not _same(old.get(k, ABSENT), new.get(k, ABSENT))
    ]


def _set(tree: dict[str, Any], key: str, value: Any, present: bool) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if not present:
                return
            child = node[part] = {}
        node = child
    if present:
        node[parts[-1]] = value
    else:
        node.pop(parts[-1], None)


def apply(saved: Mapping[str, Any], delta: Sequence[Change]) -> dict[str, Any]:
    """``saved`` with each changed key set to its new value, or removed where the change unsets it."""
    tree = copy.deepcopy(dict(saved))
    for change in delta:
        _set(tree, change.key, change.after, change.after is not ABSENT)
    return tree


def rebase(saved: Mapping[str, Any], original: Sequence[str], new: Sequence[str], compose: Compose) -> dict[str, Any]:
    """The saved tree with the new overrides applied as a delta (module docstring)."""
    try:
        without = compose(list(original))
    except Exception:  # noqa: BLE001 - the original command line no longer composes (a conf file moved, a
        # search path not given again): the delta is then what the new command line changes from conf/
        original, without = [], compose([])
    try:
        with_new = compose(merged_overrides(original, new))
    except Exception as exc:  # noqa: BLE001 - Hydra's and OmegaConf's composition errors alike
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"resume: {' '.join(new)} does not fit the run's own settings ({first}); resume with "
            "run_id=<id> resume=true and only the settings to change"
        ) from None
    delta = [c for c in diff(without, with_new) if c.key != "run_id"]
    return apply(saved, delta)


def changes(saved: Mapping[str, Any], effective: Mapping[str, Any]) -> list[Change]:
    """What a resume changes in how the run trains (operational keys left out)."""
    return [c for c in diff(saved, effective) if c.key.split(".", 1)[0] not in OPERATIONAL]


def _fixed(key: str) -> bool:
    parts = key.split(".")
    if parts[0] == "behaviors" and len(parts) > 2:  # behaviors.<name>.<trainer key>: as trainer.<key>
        parts = ["trainer", *parts[2:]]
    dotted = ".".join(parts)
    if dotted in FOLLOWABLE:
        return False
    if any(dotted == f or dotted.startswith(f + ".") for f in FIXED):
        return True
    if parts[:2] == ["trainer", "reward_signals"]:
        return len(parts) <= 3 or parts[3] in FIXED_IN_SIGNALS  # a signal added or removed, or reshaped
    return False


def check_resumable(found: Sequence[Change], run_id: str) -> None:
    """Refuse, in one line, a change the run's checkpoints cannot follow (the most telling one first)."""
    fixed = [c for c in found if _fixed(c.key)]
    fixed.sort(key=lambda c: next((i for i, f in enumerate(FIXED) if c.key.startswith(f)), len(FIXED)))
    if fixed:
        raise ConfigError(
            f"resume: {fixed[0].describe()} changes what run '{run_id}' has trained (its trainer, networks, "
            f"reward signals or env); drop that override, or start a new run_id (initialize_from={run_id} "
            "takes its weights where the networks match)"
        )
