"""A misspelt key on the command line, refused before Hydra, OmegaConf, numpy or PyTorch are imported.

Composing the config only to learn that ``trainer.hyperparameters.batch_sise`` does not exist costs a
user half a second of imports; this module answers from ``config_keys.json``, the key tree of mlx's
schemas written by ``python -m mlx.keycheck`` (tests/test_keycheck.py fails when it is stale). It only ever
refuses a key that no trainer has; anything it cannot judge (``+``/``~`` overrides, open sections, a config
folder of the user's, a key valid for some other trainer) goes on to Hydra, whose check is the real one.
The line it prints is the one Hydra's path prints (mlx.errors.describe).

Tree format: a node is ``null`` (a setting), ``"*"`` (an open section: any key below is the app's to check)
or an object of child nodes; an object holding ``"*"`` also lets keys other than its named ones through.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from mlx.errors import did_you_mean, paths_named

KEYS_FILE = Path(__file__).with_name("config_keys.json")
OPEN = "*"
DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
# The only Hydra flags that leave the command line to overrides: the others take a value in the next word
# (-sc query=bash, --cfg job) or bring the user's own config files, whose keys are not in the index.
PLAIN_FLAGS = ("-m", "--multirun")


def unknown_key(argv: list[str], index: dict[str, Any] | None = None) -> str | None:
    """The one-line error for the first override in ``argv`` (the command line less the program) whose key
    exists for no trainer, or None."""
    if os.environ.get("MLX_CONF_DIR") or any(a.startswith("-") and a not in PLAIN_FLAGS for a in argv):
        return None
    if index is None:
        try:
            index = json.loads(KEYS_FILE.read_text())
        except (OSError, ValueError):
            return None  # an install without the index: Hydra checks as before
    try:
        return _first_unknown(argv, index)
    except (KeyError, TypeError, AttributeError):  # an index of another shape (edited, truncated): Hydra checks
        return None


def _first_unknown(argv: list[str], index: dict[str, Any]) -> str | None:
    overrides = [a.partition("=") for a in argv if not a.startswith(("-", "+", "~"))]
    keys = [(k, v) for k, eq, v in overrides if eq and DOTTED.fullmatch(k)]
    chosen = dict(keys)
    trainers: dict[str, Any] = index["trainer"]
    choice = chosen.get("trainer")
    if choice is None and "experiment" not in chosen and "sweep" not in chosen:
        choice = index["default_trainer"]  # nothing else on the command line picks the trainer
    union = dict(index["root"], trainer=merge(list(trainers.values())))
    for key, _ in keys:
        parts = key.split(".")
        at = missing_at(union, parts)
        if at is None:
            continue
        shown = dict(index["root"], trainer=trainers[choice]) if choice in trainers else union
        return message(key, at, shown, parts)
    return None


def missing_at(tree: dict[str, Any], parts: list[str]) -> int | None:
    """The position in ``parts`` of the first name the tree does not have, or None (known, or not judged)."""
    node: Any = tree
    for i, part in enumerate(parts):
        if node is None:
            return None  # a setting given a dotted child: Hydra says what is wrong with that
        if node == OPEN:
            return None
        if part not in node:
            return None if OPEN in node else i
        node = node[part]
    return None


def message(key: str, at: int, tree: dict[str, Any], parts: list[str]) -> str:
    """Hydra's path's line: the unknown key, a near name or the full path of a deeper key of that name, and
    the keys allowed where it was given."""
    node: Any = tree
    for part in parts[:at]:
        nxt = node.get(part) if isinstance(node, dict) else None
        node = nxt if isinstance(nxt, dict) else {}
    known = sorted(k for k in node if k != OPEN)
    full = ".".join(parts[: at + 1])
    # A reward signal's setting is named only when nothing else has the name (the run may not use that signal).
    paths = paths_named(tree, parts[at], unless=full)
    hint = did_you_mean(parts[at], [p for p in paths if ".reward_signals." not in p] or paths, known)
    allowed = f"; allowed keys there: {', '.join(known)}" if known else ""
    return f"unknown key '{full}'{hint}{allowed}"


def merge(trees: list[Any]) -> Any:
    """The union of key trees: a key is known when any tree knows it."""
    if any(t == OPEN for t in trees):
        return OPEN
    dicts = [t for t in trees if isinstance(t, dict)]
    if not dicts:
        return None
    keys = {k for t in dicts for k in t}
    return {k: merge([t[k] for t in dicts if k in t]) for k in sorted(keys)}


def build_index() -> dict[str, Any]:
    """The key tree of mlx's schemas and conf/'s groups (imports the config package: not for start-up)."""
    import yaml

    from mlx.config import CONF_DIR, REWARD_SIGNALS, TRAINER_SETTINGS, MlxConfig

    root = schema_tree(MlxConfig)
    groups = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir())
    for group in groups:  # group choices (network=lstm, curriculum=...) are keys of the command line too
        root.setdefault(group, OPEN)
    root["hydra"] = OPEN  # Hydra's own settings: Hydra checks them
    signals: dict[str, Any] = {name: schema_tree(cls) for name, cls in REWARD_SIGNALS.items()}
    signals[OPEN] = OPEN  # another name: the reward_signals check says which exist
    trainers = {}
    for name, cls in TRAINER_SETTINGS.items():
        tree = schema_tree(cls)
        tree["reward_signals"] = signals
        trainers[name] = tree
    root.pop("trainer", None)
    defaults = yaml.safe_load((CONF_DIR / "config.yaml").read_text())["defaults"]
    default_trainer = next(d["trainer"] for d in defaults if isinstance(d, dict) and "trainer" in d)
    return {"default_trainer": default_trainer, "root": root, "trainer": trainers}


def schema_tree(cls: type) -> dict[str, Any]:
    """A dataclass schema's key tree: nested dataclasses are closed nodes; dicts and Any are open."""
    import dataclasses
    import types
    import typing

    hints = typing.get_type_hints(cls)
    tree: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(inner) == 1:
            kind = inner[0]
        if dataclasses.is_dataclass(kind):
            tree[f.name] = schema_tree(kind)  # type: ignore[arg-type]
        elif kind is Any or typing.get_origin(kind) in (dict, typing.Dict) or kind is dict:  # noqa: UP006
            tree[f.name] = OPEN
        else:
            tree[f.name] = None
    return tree


def index_text() -> str:
    """config_keys.json's text as the schemas give it now."""
    return json.dumps(build_index(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    KEYS_FILE.write_text(index_text())
    print(f"wrote {KEYS_FILE}", file=sys.stderr)
