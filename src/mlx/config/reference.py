"""The settings reference (docs/settings.md), generated from the schema: every key with its type, default and
meaning, so the page cannot fall behind the code.

    python -m mlx.config.reference > docs/settings.md

The meaning of a setting is its comment in the dataclass: the comment lines right above the field,
the comment at the end of its line, or both (read from the source with ``tokenize``; a subclass that only changes a
default inherits its base's comment). A section's introduction is its class docstring. tests/test_cli_help.py
regenerates the page and compares it with the committed one, and refuses a setting without a comment.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import io
import re
import textwrap
import tokenize
import typing
from typing import Any

from omegaconf import MISSING

from mlx.config.env import EngineSettings, EnvSettings
from mlx.config.modes import EvaluateSettings, RecordSettings, WatchSettings
from mlx.config.network import NetworkSettings
from mlx.config.reward_signals import REWARD_SIGNALS
from mlx.config.run import MlxConfig, TorchSettings, TrackingSettings
from mlx.config.sweep import SweepSchema
from mlx.config.trainer import TRAINER_SETTINGS, BehavioralCloningSettings, SelfPlaySettings, TrainerSettings

HEADER = """# Settings reference

Every setting of mlx, generated from the schema (the dataclasses in `src/mlx/config/`) by
`python -m mlx.config.reference > docs/settings.md`; do not edit by hand. Set any of them on the command line
(`python -m mlx trainer.max_steps=100000`), in an experiment file (`conf/experiment/`) or a sweep. Defaults
here are the schema's; a config group option changes some of them (`conf/trainer/<name>.yaml`, the tuned
values of `conf/tuned/<env>_<trainer>.yaml`, `conf/env/<name>.yaml`): `python -m mlx --cfg job [overrides]`
prints the values a run will use. `null` is YAML's None. Names and meanings follow ML-Agents' training
configuration where the setting is ML-Agents' (`mlx-learn` reads its YAML files as they are).
"""


@functools.cache
def _comments(cls: type) -> dict[str, str]:
    """Field name -> its comment, for the fields that ``cls`` itself declares."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    comments: dict[int, str] = {}  # line number (1-based) -> comment text
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out: dict[str, str] = {}
    field_line = re.compile(r"^    ([A-Za-z_]\w*)\s*:")
    for number, line in enumerate(lines, start=1):
        match = field_line.match(line)
        if not match:
            continue
        above, n = [], number - 1
        while n >= 1 and lines[n - 1].lstrip().startswith("#"):
            above.insert(0, comments[n])
            n -= 1
        text = " ".join([*above, comments.get(number, "")]).strip()
        if text:
            out[match[1]] = text
    return out


def describe(cls: type, name: str) -> str:
    """A field's comment: its own class's, else the nearest base class's that declares it with one."""
    for klass in cls.__mro__:
        text = _comments(klass).get(name)
        if text:
            return text
    return ""


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return "any"
    if hint is type(None):
        return "null"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return " / ".join(m.value for m in hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is dict:
        return f"mapping of {_type_name(args[1])}" if args else "mapping"
    if origin is list:
        return f"list of {_type_name(args[0])}" if args else "list"
    if dataclasses.is_dataclass(hint):
        return "block"
    return getattr(hint, "__name__", str(hint))


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return MISSING


def _value(value: Any) -> str:
    if value is MISSING or value == MISSING:
        return "(required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (dict, list)) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass a field holds (also ``X | None``), for flattening it into dotted keys."""
    candidates = [hint, *typing.get_args(hint)]
    return next((c for c in candidates if isinstance(c, type) and dataclasses.is_dataclass(c)), None)


def rows(cls: type, prefix: str, elsewhere: dict[type, str]) -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every field of ``cls``; nested blocks become dotted keys, or one
    row pointing at their own section (``elsewhere``)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        key, hint, text = f"{prefix}{f.name}", hints[f.name], describe(cls, f.name)
        nested = _dataclass_of(hint)
        if nested is not None and nested in elsewhere:
            where = f"its keys: {elsewhere[nested]}"
            default = "null" if _default(f) is None else ""
            out.append((key, _type_name(hint), default, f"{text}; {where}" if text else where))
            continue
        if nested is not None:
            default = _default(f)
            if default is None:  # an optional block, off by default: its keys when it is turned on
                out.append((key, _type_name(hint), "null", text))
            elif text:
                out.append((key, "block", "", text))
            out += rows(nested, f"{key}.", elsewhere)
            continue
        out.append((key, _type_name(hint), _value(_default(f)), text))
    return out


def _doc(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    own = cls.__dict__.get("__doc__")
    return " ".join(doc.split()) if own and not doc.startswith(cls.__name__ + "(") else ""


def section(title: str, intro: str, table: list[tuple[str, str, str, str]]) -> str:
    lines = [f"## {title}", ""]
    if intro:
        lines += [intro, ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [
        f"| `{k}` | {_cell(t)} | `{_cell(d)}` | {_cell(x)} |" if d else f"| `{k}` | {_cell(t)} |  | {_cell(x)} |"
        for k, t, d, x in table
    ]
    return "\n".join(lines) + "\n"


SECTIONS: list[tuple[str, str, type]] = [
    ("env", "env", EnvSettings),
    ("engine_settings", "engine_settings", EngineSettings),
    ("tracking", "tracking", TrackingSettings),
    ("torch_settings", "torch_settings", TorchSettings),
    ("evaluate", "evaluate (mode=evaluate)", EvaluateSettings),
    ("watch", "watch (mode=watch)", WatchSettings),
    ("record", "record (mode=record)", RecordSettings),
    ("sweep", "sweep (sweep=<name>, sweeps/<name>.yaml)", SweepSchema),
]


def reference() -> str:
    """The whole page."""
    own_sections = {cls: f"the {key} section" for key, _, cls in SECTIONS}
    parts = [HEADER]
    top = rows(MlxConfig, "", own_sections)
    top = [("trainer", "block", "", x) if k == "trainer" else (k, t, d, x) for k, t, d, x in top]
    parts.append(section("Top level", _doc(MlxConfig), top))
    nested = {NetworkSettings: "as in the trainer.network_settings section"}
    blocks = {
        NetworkSettings: "the trainer.network_settings section",
        BehavioralCloningSettings: "the trainer.behavioral_cloning section",
    }
    common = [r for r in rows(TrainerSettings, "trainer.", blocks) if not r[0].startswith("trainer.hyperparameters")]
    common = [(k, t, "ppo" if k == "trainer.trainer_type" else d, x) for k, t, d, x in common]
    parts.append(section("trainer (every trainer type)", _doc(TrainerSettings), common))
    for name, settings in TRAINER_SETTINGS.items():
        hyper = typing.get_type_hints(settings)["hyperparameters"]
        parts.append(
            section(
                f"trainer.hyperparameters (trainer={name})", _doc(hyper), rows(hyper, "trainer.hyperparameters.", {})
            )
        )
    parts.append(
        section(
            "trainer.network_settings", _doc(NetworkSettings), rows(NetworkSettings, "trainer.network_settings.", {})
        )
    )
    parts.append(
        section(
            "trainer.behavioral_cloning",
            _doc(BehavioralCloningSettings),
            rows(BehavioralCloningSettings, "trainer.behavioral_cloning.", {}),
        )
    )
    parts.append(
        section(
            "trainer.self_play (a block turns it on)",
            _doc(SelfPlaySettings),
            rows(SelfPlaySettings, "trainer.self_play.", {}),
        )
    )
    for name, signal in REWARD_SIGNALS.items():
        parts.append(
            section(
                f"trainer.reward_signals.{name} (reward_signals={name})",
                _doc(signal),
                rows(signal, f"trainer.reward_signals.{name}.", nested),
            )
        )
    for key, title, cls in SECTIONS:
        parts.append(section(title, _doc(cls), rows(cls, f"{key}.", {})))
    return "\n".join(parts)


def undocumented() -> list[str]:
    """Keys whose field has no comment (the test refuses them: every setting says what it does)."""
    return [line.split("`")[1] for line in reference().splitlines() if line.startswith("| `") and line.endswith("|  |")]


if __name__ == "__main__":
    print(reference(), end="")
