"""`python -m mlx.import_mlagents <config.yaml>`: an ML-Agents trainer config as an mlx experiment.

ML-Agents users bring config files; this turns one into `conf/experiment/<name>.yaml`, selected with
`python -m mlx experiment=<name>`. It reads every format ML-Agents has used:

- the current nested format (`behaviors`, `default_settings`, `environment_parameters`, `env_settings`,
  `engine_settings`, `checkpoint_settings`, `torch_settings`, `debug`), also a run's `configuration.yaml`;
- the 0.17-0.18 format (`behaviors` plus top-level `curriculum` and `parameter_randomization`);
- the old flat format (<= 0.16: a `default` section and one section of flat keys per behaviour, with the
  curriculum and sampler in separate files, given here as `--curriculum` and `--sampler`).

Keys are checked as strictly as ML-Agents checks them (an unknown key is an error naming its dotted path),
values are coerced as ML-Agents coerces them (`max_steps: 5.0e5` is a number). Every setting with an mlx
counterpart is written; every trainer setting is written out with ML-Agents' defaults filled in, so the
experiment alone decides the trainer tree whatever `tuned/` holds. A setting mlx cannot apply is never
dropped silently: it is printed on stderr with its dotted path and listed at the top of the file. The
generated file is composed with Hydra and checked with `mlx.config.validate` before anything is written.

Exit codes: 0 imported (warnings may have been printed); 1 with `--strict` when something could not be
mapped (nothing written); 2 bad input (unreadable file, YAML syntax error, unknown key, wrong type,
unknown trainer type, a result mlx refuses), with one line on stderr.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import enum
import math
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import yaml

PROG = "mlx.import_mlagents"
USAGE_ERROR = 2
UNMAPPED_STRICT = 1


class ConfigImportError(ValueError):
    """The input cannot be imported; the message names the file or key and the fix."""


# ---------------------------------------------------------------------------------------------------
# Reading: bytes -> YAML tree, with the failures ML-Agents users meet named plainly.


def read_yaml(path: Path) -> Any:
    """Parse one YAML file. A UTF-8 (or UTF-16) byte-order mark, which Windows editors write and which
    breaks ML-Agents on Windows (the first key becomes '\\ufeffbehaviors'), is accepted transparently."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigImportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigImportError(f"{path}: is a directory, not a YAML file") from None
    except OSError as exc:
        raise ConfigImportError(f"{path}: cannot read ({exc.strerror})") from None
    # utf-8-sig strips a UTF-8 BOM if there is one; a UTF-16 BOM means the file is UTF-16
    encoding = "utf-16" if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ConfigImportError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    try:
        tree = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(str(p) for p in (exc.problem, exc.context) if p)
        raise ConfigImportError(f"{where}: YAML syntax error: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigImportError(f"{path}: YAML error: {' '.join(str(exc).split())}") from None
    if tree is None:
        raise ConfigImportError(f"{path}: the file is empty")
    return tree


# ---------------------------------------------------------------------------------------------------
# ML-Agents' schema: which keys exist where, their types and defaults (settings.py of ML-Agents and
# seed 003). A coercer turns a YAML value into the typed value or raises with the dotted path.

Coercer = Callable[[Any, str], Any]


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise ConfigImportError(f"{path} must be a number (got {value!r})")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):  # YAML 1.1 reads 5.0e5 and 1e-3 as strings; ML-Agents converts them
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigImportError(f"{path} must be a number (got {value!r})")


def INT(value: Any, path: str) -> int:  # noqa: N802 - reads as a type in the schema tables
    number = _number(value, path)
    if isinstance(number, float):
        if not math.isfinite(number) or number != int(number):
            raise ConfigImportError(f"{path} must be a whole number (got {value!r})")
        return int(number)
    return number


def FLOAT(value: Any, path: str) -> float:  # noqa: N802
    return _number(value, path)


def BOOL(value: Any, path: str) -> bool:  # noqa: N802
    if not isinstance(value, bool):
        raise ConfigImportError(f"{path} must be true or false (got {value!r})")
    return value


def STR(value: Any, path: str) -> str:  # noqa: N802
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigImportError(f"{path} must be a string (got {value!r})")
    return str(value)


def STR_LIST(value: Any, path: str) -> list[str]:  # noqa: N802
    if isinstance(value, str):
        return value.split()
    if not isinstance(value, list):
        raise ConfigImportError(f"{path} must be a list of strings (got {value!r})")
    return [STR(v, f"{path}[{i}]") for i, v in enumerate(value)]


def choice(*allowed: str) -> Coercer:
    def check(value: Any, path: str) -> str:
        if value not in allowed:
            raise ConfigImportError(f"{path} must be one of {', '.join(allowed)} (got {value!r})")
        return value

    return check


@dataclass(frozen=True)
class Opt:
    """A key whose value may be null (ML-Agents' Optional[...])."""

    inner: Any


SCHEDULE = choice("linear", "constant")
ENCODER = choice("simple", "nature_cnn", "resnet", "match3", "fully_connected")
CONDITIONING = choice("hyper", "none")

MEMORY = {"sequence_length": INT, "memory_size": INT}
NETWORK = {
    "normalize": BOOL,
    "hidden_units": INT,
    "num_layers": INT,
    "vis_encode_type": ENCODER,
    "memory": Opt(MEMORY),
    "goal_conditioning_type": CONDITIONING,  # the name in ML-Agents' settings.py
    "conditioning_type": CONDITIONING,  # the name in its configuration reference (seed 003)
    "deterministic": BOOL,
    "max_num_agents": INT,  # some releases: the POCA attention's agent count
}
HYPER_COMMON = {"batch_size": INT, "buffer_size": INT, "learning_rate": FLOAT, "learning_rate_schedule": SCHEDULE}
POCA_HYPER = {
    **HYPER_COMMON,
    "beta": FLOAT,
    "epsilon": FLOAT,
    "lambd": FLOAT,
    "num_epoch": INT,
    "beta_schedule": SCHEDULE,
    "epsilon_schedule": SCHEDULE,
}
PPO_HYPER = {**POCA_HYPER, "shared_critic": BOOL}
SAC_HYPER = {
    **HYPER_COMMON,
    "buffer_init_steps": INT,
    "init_entcoef": FLOAT,
    "save_replay_buffer": BOOL,
    "tau": FLOAT,
    "steps_per_update": FLOAT,
    "reward_signal_steps_per_update": FLOAT,
}
HYPERPARAMETERS = {"ppo": PPO_HYPER, "sac": SAC_HYPER, "poca": POCA_HYPER}
# Trainer types ML-Agents knows that mlx has no trainer for, and what the experiment uses instead.
STAND_INS = {
    "poca": (
        "ppo",
        "MA-POCA (centralised critic, group rewards) is not in mlx yet; written as trainer=ppo, whose "
        "hyperparameters POCA shares (agents learn independently)",
    )
}

SIGNAL_BASE = {"gamma": FLOAT, "strength": FLOAT, "network_settings": NETWORK}
CURIOSITY = {**SIGNAL_BASE, "learning_rate": FLOAT, "encoding_size": Opt(INT)}
REWARD_SIGNALS = {
    "extrinsic": SIGNAL_BASE,
    "curiosity": CURIOSITY,
    "rnd": CURIOSITY,
    "gail": {**CURIOSITY, "use_actions": BOOL, "use_vail": BOOL, "demo_path": STR},
}
BEHAVIORAL_CLONING = {
    "demo_path": STR,
    "steps": INT,
    "strength": FLOAT,
    "samples_per_update": INT,
    "num_epoch": Opt(INT),
    "batch_size": Opt(INT),
}
SELF_PLAY = {
    "save_steps": INT,
    "team_change": INT,
    "swap_steps": INT,
    "window": INT,
    "play_against_latest_model_ratio": FLOAT,
    "initial_elo": FLOAT,
}
TRAINER = {
    "trainer_type": STR,
    "hyperparameters": "hyperparameters",  # checked against HYPERPARAMETERS[trainer_type]
    "network_settings": NETWORK,
    "reward_signals": "reward_signals",
    "init_path": Opt(STR),
    "keep_checkpoints": INT,
    "even_checkpoints": BOOL,
    "checkpoint_interval": INT,
    "max_steps": INT,
    "time_horizon": INT,
    "summary_freq": INT,
    "threaded": BOOL,
    "self_play": Opt(SELF_PLAY),
    "behavioral_cloning": Opt(BEHAVIORAL_CLONING),
    "framework": Opt(STR),  # deprecated; ML-Agents drops it with a warning
}
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
ENGINE_SETTINGS = {
    "width": INT,
    "height": INT,
    "quality_level": INT,
    "time_scale": FLOAT,
    "target_frame_rate": INT,
    "capture_frame_rate": INT,
    "no_graphics": BOOL,
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
ENGINE_DEFAULTS = {
    "width": 84,
    "height": 84,
    "quality_level": 5,
    "time_scale": 20,
    "target_frame_rate": -1,
    "capture_frame_rate": 60,
    "no_graphics": False,
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
# Trainer keys with no mlx counterpart, and the value that asks for nothing.
TRAINER_NO_OP = {"self_play": None, "behavioral_cloning": None}
NETWORK_NO_OP = {"deterministic": False, "max_num_agents": 4}

SAMPLERS = {
    "uniform": {"min_value": FLOAT, "max_value": FLOAT, "seed": INT},
    "gaussian": {"mean": FLOAT, "st_dev": FLOAT, "seed": INT},
    "multirangeuniform": {"intervals": "intervals", "seed": INT},
    "constant": {"value": FLOAT, "seed": INT},
}
COMPLETION_CRITERIA = {
    "behavior": STR,
    "measure": choice("progress", "reward"),
    "min_lesson_length": INT,
    "signal_smoothing": BOOL,
    "threshold": FLOAT,
    "require_reset": BOOL,
}


def unknown_key(path: str, key: Any, allowed: Any, what: str | None = None) -> ConfigImportError:
    """One line naming the key's dotted path, the closest allowed key, and the allowed keys (or `what`)."""
    names = sorted(str(a) for a in allowed)
    close = difflib.get_close_matches(str(key), names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    where = f"{path}.{key}" if path else str(key)
    return ConfigImportError(f"unknown key '{where}'{hint}; {what or 'allowed there: ' + ', '.join(names)}")


def mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigImportError(f"{path} must be a mapping of settings (got {value!r})")
    return dict(value)


def check(value: Any, schema: Any, path: str) -> Any:
    """Check and coerce `value` against `schema` (a coercer, an Opt, or a dict of keys)."""
    if isinstance(schema, Opt):
        return None if value is None else check(value, schema.inner, path)
    if isinstance(schema, dict):
        section = mapping(value, path)
        out = {}
        for key, item in section.items():
            if key not in schema:
                raise unknown_key(path, key, schema)
            out[key] = check(item, schema[key], f"{path}.{key}")
        return out
    if value is None:
        raise ConfigImportError(f"{path} must not be empty (null)")
    return schema(value, path)


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
            f"{path}.trainer_type: unknown trainer type '{trainer_type}'; ML-Agents has "
            f"{', '.join(HYPERPARAMETERS)} (mlx trains ppo and sac; poca is imported as ppo)"
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
    batch = (out.get("hyperparameters") or {}).get("batch_size", 128 if trainer_type == "sac" else 1024)
    if memory and memory.get("sequence_length", 64) > batch:
        raise ConfigImportError(
            f"{path}.network_settings.memory.sequence_length must be <= hyperparameters.batch_size ({batch}), "
            "as ML-Agents requires"
        )
    if memory and memory.get("memory_size", 128) % 2:
        raise ConfigImportError(f"{path}.network_settings.memory.memory_size must be even (ML-Agents requires it)")
    return out


def check_sampler(value: Any, path: str) -> Any:
    """A sampler (or a constant): ML-Agents' ParameterRandomizationSettings.structure."""
    if isinstance(value, bool):
        raise ConfigImportError(f"{path} must be a number or a sampler (got {value!r})")
    if isinstance(value, (int, float)):
        return value
    section = mapping(value, path)
    for key in section:
        if key not in ("sampler_type", "sampler_parameters"):
            raise unknown_key(path, key, ("sampler_type", "sampler_parameters"))
    kind = section.get("sampler_type")
    if kind not in SAMPLERS:
        raise ConfigImportError(f"{path}.sampler_type must be one of {', '.join(SAMPLERS)} (got {kind!r})")
    if "sampler_parameters" not in section:
        raise ConfigImportError(f"{path}.sampler_parameters is missing")
    params = mapping(section["sampler_parameters"], f"{path}.sampler_parameters")
    out: dict[str, Any] = {}
    for key, item in params.items():
        where = f"{path}.sampler_parameters.{key}"
        if key not in SAMPLERS[kind]:
            raise unknown_key(f"{path}.sampler_parameters", key, SAMPLERS[kind])
        if key == "intervals":
            if not isinstance(item, list) or not all(isinstance(iv, list) and len(iv) == 2 for iv in item):
                raise ConfigImportError(f"{where} must be a list of [min, max] pairs (got {item!r})")
            out[key] = [[FLOAT(a, where), FLOAT(b, where)] for a, b in item]
        else:
            out[key] = check(item, SAMPLERS[kind][key], where)
    return {"sampler_type": kind, "sampler_parameters": out}


def check_environment_parameters(value: Any, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in mapping(value, path).items():
        where = f"{path}.{name}"
        if isinstance(spec, Mapping) and "curriculum" in spec:
            for key in spec:
                if key != "curriculum":
                    raise unknown_key(where, key, ("curriculum",))
            lessons = spec["curriculum"]
            if not isinstance(lessons, list) or not lessons:
                raise ConfigImportError(f"{where}.curriculum must be a non-empty list of lessons")
            checked = []
            for i, lesson in enumerate(lessons):
                lpath = f"{where}.curriculum[{i}]"
                lesson = mapping(lesson, lpath)
                for key in lesson:
                    if key not in ("name", "value", "completion_criteria"):
                        raise unknown_key(lpath, key, ("name", "value", "completion_criteria"))
                if "value" not in lesson:
                    raise ConfigImportError(f"{lpath}.value is missing")
                item: dict[str, Any] = {"name": STR(lesson.get("name", f"Lesson{i}"), f"{lpath}.name")}
                item["value"] = check_sampler(lesson["value"], f"{lpath}.value")
                criteria = lesson.get("completion_criteria")
                if criteria is not None:
                    item["completion_criteria"] = check(criteria, COMPLETION_CRITERIA, f"{lpath}.completion_criteria")
                elif i < len(lessons) - 1:
                    raise ConfigImportError(
                        f"{lpath}.completion_criteria is missing; every lesson but the last needs one"
                    )
                checked.append(item)
            out[name] = {"curriculum": checked}
        else:
            out[name] = check_sampler(spec, where)
    return out


# ---------------------------------------------------------------------------------------------------
# Older formats -> the nested one. Each returns the nested tree plus notes about what it converted.


FLAT_PPO = ("beta", "epsilon", "lambd", "num_epoch")
FLAT_SAC = ("buffer_init_steps", "init_entcoef", "tau", "steps_per_update", "save_replay_buffer")
FLAT_COMMON = ("batch_size", "buffer_size", "learning_rate", "learning_rate_schedule")
FLAT_NETWORK = ("hidden_units", "num_layers", "normalize", "vis_encode_type")
FLAT_TRAINER = (
    "max_steps",
    "time_horizon",
    "summary_freq",
    "keep_checkpoints",
    "checkpoint_interval",
    "init_path",
    "threaded",
    "reward_signals",
    "self_play",
    "behavioral_cloning",
)
FLAT_MEMORY = ("use_recurrent", "sequence_length", "memory_size")
# Keys of the flat format mlx has no place for, and why (the warning a user sees).
FLAT_UNMAPPED = {
    "train_interval": "SAC's train_interval was replaced by steps_per_update in ML-Agents 0.16 (set "
    "trainer.hyperparameters.steps_per_update to about agents x num_update / train_interval)",
    "num_update": "SAC's num_update was replaced by steps_per_update in ML-Agents 0.16 (set "
    "trainer.hyperparameters.steps_per_update to about agents x num_update / train_interval)",
    "demo_path": "demonstrations are for the behavioral cloning trainers, which mlx does not have",
    "batches_per_epoch": "a setting of the behavioral cloning trainers, which mlx does not have",
    "brain_to_imitate": "a setting of the online behavioral cloning trainer, which mlx does not have",
    "summary_path": "mlx writes statistics under results_dir/run_id",
    "model_path": "mlx writes checkpoints under results_dir/run_id",
}
FLAT_LEGACY_CURIOSITY = ("use_curiosity", "curiosity_strength", "curiosity_enc_size")
FLAT_KEYS = set(
    ("trainer", "gamma", *FLAT_PPO, *FLAT_SAC, *FLAT_COMMON, *FLAT_NETWORK, *FLAT_TRAINER, *FLAT_MEMORY)
    + tuple(FLAT_UNMAPPED)
    + ("pretraining",)
    + FLAT_LEGACY_CURIOSITY
)
OLD_BC_TRAINERS = ("offline_bc", "online_bc")
FLAT_TYPES: dict[str, Any] = {
    **PPO_HYPER,
    **SAC_HYPER,
    **{k: NETWORK[k] for k in FLAT_NETWORK},
    # sections (reward_signals, self_play, ...) are checked after conversion, at the same paths
    **{k: v for k, v in TRAINER.items() if k in FLAT_TRAINER and not isinstance(v, (str, Opt))},
    "use_recurrent": BOOL,
    "sequence_length": INT,
    "memory_size": INT,
    "gamma": FLOAT,
    "use_curiosity": BOOL,
    "curiosity_strength": FLOAT,
    "curiosity_enc_size": INT,
}


@dataclass
class Source:
    """The input in ML-Agents' nested format, with where each behaviour's settings came from."""

    tree: dict[str, Any]
    fmt: str  # "nested", "0.17" or "flat"
    behaviour_paths: dict[str, str]  # behaviour -> dotted path of its section in the input
    default_path: str | None  # "default_settings" / "default", if the input had one
    own: dict[str, dict[str, Any]]  # behaviour -> its own section (before defaults were merged in)
    unmapped: list[tuple[str, str]] = field(default_factory=list)  # found while converting (whole file)
    unmapped_by: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # ... per behaviour
    skipped: list[tuple[str, str]] = field(default_factory=list)  # behaviours that cannot be imported


def convert_flat_section(name: str, merged: dict[str, Any], own: dict[str, Any], src: Source) -> dict[str, Any]:
    """One behaviour of the old flat format as a nested behaviour section."""
    path = name
    unmapped = src.unmapped_by.setdefault(name, [])

    def origin(key: str) -> str:
        return f"{path}.{key}" if key in own else f"default.{key}"

    for key in merged:
        if key not in FLAT_KEYS:
            where = origin(key).rsplit(".", 1)[0]
            if key in TRAINER:
                raise ConfigImportError(
                    f"'{where}' mixes formats: '{key}' is a key of the nested format (put the behaviour under "
                    "'behaviors:'), the others are old flat keys"
                )
            raise unknown_key(where, key, FLAT_KEYS, "it is not a key of ML-Agents' old flat format")
    merged = dict(merged)
    for key, value in merged.items():  # coerce here so that errors name the flat key
        coerce = FLAT_TYPES.get(key)
        if coerce is not None and value is not None:
            merged[key] = check(value, coerce, origin(key))
    trainer = merged.get("trainer")
    if trainer is None:
        raise ConfigImportError(
            f"{path}: no 'trainer' (the old flat format needs trainer: ppo or sac, here or in default)"
        )
    trainer = STR(trainer, origin("trainer"))
    if trainer not in ("ppo", "sac", *OLD_BC_TRAINERS):
        raise ConfigImportError(
            f"{origin('trainer')}: unknown trainer '{trainer}'; the old flat format has ppo, sac, offline_bc, online_bc"
        )
    out: dict[str, Any] = {"trainer_type": trainer}
    own_keys = {"ppo": FLAT_PPO, "sac": FLAT_SAC}.get(trainer, ())
    other_keys = {"ppo": FLAT_SAC, "sac": FLAT_PPO}.get(trainer, ())
    hyper = {k: merged[k] for k in (*FLAT_COMMON, *own_keys) if k in merged}
    if hyper:
        out["hyperparameters"] = hyper
    network = {k: merged[k] for k in FLAT_NETWORK if k in merged}
    if merged.get("use_recurrent"):
        network["memory"] = {k: merged[k] for k in ("sequence_length", "memory_size") if k in merged}
    if network:
        out["network_settings"] = network
    for key in FLAT_TRAINER:
        if key in merged:
            out[key] = merged[key]
    other = {"ppo": "sac", "sac": "ppo"}.get(trainer, "")
    for key in other_keys:  # the other trainer's keys: old ML-Agents ignored them (silently when inherited)
        if key in own:
            unmapped.append((f"{path}.{key}", f"a {other} setting; {trainer} ignores it, as old ML-Agents did"))
    for key, reason in FLAT_UNMAPPED.items():
        if key in merged:
            unmapped.append((origin(key), reason))
    if isinstance(merged.get("pretraining"), Mapping):  # renamed behavioral_cloning in ML-Agents 0.14
        out["behavioral_cloning"] = dict(merged["pretraining"])
    signals = out.get("reward_signals")
    if "gamma" in merged:  # before 0.8 the discount was a flat key; 0.8 moved it into reward_signals
        if signals is None:
            out["reward_signals"] = signals = {"extrinsic": {"gamma": merged["gamma"], "strength": 1.0}}
        else:
            unmapped.append(
                (
                    origin("gamma"),
                    "ignored, as ML-Agents >= 0.8 ignores it: the discount is reward_signals.<signal>.gamma",
                )
            )
    if merged.get("use_curiosity"):  # 0.7's curiosity keys, converted as its migration guide says
        signals = out.setdefault("reward_signals", {"extrinsic": {"gamma": 0.99, "strength": 1.0}})
        curiosity: dict[str, Any] = {"gamma": (signals.get("extrinsic") or {}).get("gamma", 0.99)}
        if "curiosity_strength" in merged:
            curiosity["strength"] = merged["curiosity_strength"]
        if "curiosity_enc_size" in merged:
            curiosity["encoding_size"] = merged["curiosity_enc_size"]
        signals.setdefault("curiosity", curiosity)
    if isinstance(signals, Mapping) and "reward_signal_num_update" in signals:
        signals = dict(signals)
        signals.pop("reward_signal_num_update")
        out["reward_signals"] = signals
        unmapped.append(
            (
                f"{path}.reward_signals.reward_signal_num_update",
                "old SAC setting; its successor is trainer.hyperparameters.reward_signal_steps_per_update",
            )
        )
    if isinstance(out.get("self_play"), Mapping) and "play_against_current_self_ratio" in out["self_play"]:
        play = dict(out["self_play"])  # renamed in 0.14
        play["play_against_latest_model_ratio"] = play.pop("play_against_current_self_ratio")
        out["self_play"] = play
    return out


def convert_flat(doc: dict[str, Any], src_path: Path) -> Source:
    default = mapping(doc.get("default"), "default")
    src = Source({}, "flat", {}, "default" if "default" in doc else None, {})
    behaviors: dict[str, Any] = {}
    for name, section in doc.items():
        if name == "default":
            continue
        own = mapping(section, str(name))
        merged = {**default, **own}  # old ML-Agents: a shallow update of a copy of default
        src.own[str(name)] = own
        src.behaviour_paths[str(name)] = str(name)
        behaviors[str(name)] = convert_flat_section(str(name), merged, own, src)
    if not behaviors and default:  # default alone applied to every behaviour of the scene
        src.own["default"] = default
        src.behaviour_paths["default"] = "default"
        behaviors["default"] = convert_flat_section("default", default, default, src)
    if not behaviors:
        raise ConfigImportError(f"{src_path}: no behaviours found (neither 'behaviors' nor old flat sections)")
    src.tree = {"behaviors": behaviors}
    return src


def convert_old_curriculum(doc: Any, prefix: str, behaviour: str | None = None) -> dict[str, Any]:
    """Old curricula (<= 0.18: per behaviour measure/thresholds/parameters lists; <= 0.14 one JSON per
    brain, `behaviour` its file name) as ML-Agents' environment_parameters curricula, lesson i taking the
    i-th value. `prefix` starts the path of each key in messages ('file.yaml:' or 'curriculum.')."""
    tree = mapping(doc, prefix.rstrip(":."))
    if behaviour is not None:
        tree = {behaviour: tree}
    allowed = ("measure", "thresholds", "min_lesson_length", "signal_smoothing", "parameters")
    out: dict[str, Any] = {}
    for name, spec in tree.items():
        where = f"{prefix}{name}"
        spec = mapping(spec, where)
        for key in spec:
            if key not in allowed:
                raise unknown_key(where, key, allowed)
        for key in ("measure", "thresholds", "parameters"):
            if key not in spec:
                raise ConfigImportError(f"{where}.{key} is missing")
        thresholds = spec["thresholds"]
        if not isinstance(thresholds, list):
            raise ConfigImportError(f"{where}.thresholds must be a list")
        for pname, values in mapping(spec["parameters"], f"{where}.parameters").items():
            if not isinstance(values, list) or len(values) != len(thresholds) + 1:
                raise ConfigImportError(
                    f"{where}.parameters.{pname} needs {len(thresholds) + 1} values (one more than thresholds)"
                )
            lessons = []
            for i, value in enumerate(values):
                lesson: dict[str, Any] = {"name": f"Lesson{i}", "value": value}
                if i < len(thresholds):
                    lesson["completion_criteria"] = {
                        "measure": spec["measure"],
                        "behavior": name,
                        "signal_smoothing": spec.get("signal_smoothing", False),
                        "min_lesson_length": spec.get("min_lesson_length", 1),
                        "threshold": thresholds[i],
                    }
                lessons.append(lesson)
            out[str(pname)] = {"curriculum": lessons}
    return out


def convert_old_sampler(doc: Any, prefix: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Old sampler files (`sampler-type: uniform` with flat arguments) as ML-Agents samplers; `prefix`
    starts the path of each key in messages ('file.yaml:' or 'parameter_randomization.')."""
    out: dict[str, Any] = {}
    unmapped: list[tuple[str, str]] = []
    for name, spec in mapping(doc, prefix.rstrip(":.")).items():
        if name in ("resampling-interval", "episode-length"):
            unmapped.append((f"{prefix}{name}", "ignored, as ML-Agents >= 0.17 ignores it"))
            continue
        spec = mapping(spec, f"{prefix}{name}")
        if "sampler_parameters" in spec:  # already the new shape
            out[str(name)] = spec
            continue
        kind = spec.get("sampler-type", spec.get("sampler_type"))
        kind = {"multirange_uniform": "multirangeuniform"}.get(kind, kind)
        params = {k: v for k, v in spec.items() if k not in ("sampler-type", "sampler_type")}
        out[str(name)] = {"sampler_type": kind, "sampler_parameters": params}
    return out, unmapped


def load_curriculum_option(path: Path) -> dict[str, Any]:
    """--curriculum: one YAML file for all behaviours, one JSON file, or a folder of JSON files."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".yaml", ".yml"))
        if not files:
            raise ConfigImportError(f"{path}: no curriculum files (*.json, *.yaml) in this folder")
        out: dict[str, Any] = {}
        for f in files:
            out.update(convert_old_curriculum(read_yaml(f), f"{f}:", behaviour=f.stem))
        return out
    doc = read_yaml(path)
    single = isinstance(doc, Mapping) and "measure" in doc  # one behaviour's curriculum, named by the file
    return convert_old_curriculum(doc, f"{path}:", behaviour=path.stem if single else None)


def normalise(doc: Any, path: Path, curriculum: Path | None, sampler: Path | None) -> Source:
    """Any supported format -> ML-Agents' nested format, checked key by key."""
    if not isinstance(doc, Mapping):
        raise ConfigImportError(f"{path}: the top level must be a mapping of settings (got {type(doc).__name__})")
    doc = dict(doc)
    nested = any(k in doc for k in (*TOP_LEVEL, *LEGACY_TOP_LEVEL))
    if nested:
        for key in doc:
            if key not in TOP_LEVEL and key not in LEGACY_TOP_LEVEL:
                raise unknown_key("", key, TOP_LEVEL)
        behaviors = mapping(doc.get("behaviors"), "behaviors")
        fmt = "0.17" if any(k in doc for k in LEGACY_TOP_LEVEL) else "nested"
        src = Source(doc, fmt, {str(b): f"behaviors.{b}" for b in behaviors}, None, {})
        src.own = {str(b): mapping(s, f"behaviors.{b}") for b, s in behaviors.items()}
        if doc.get("default_settings") is not None:
            src.default_path = "default_settings"
        if not behaviors and src.default_path is None:
            raise ConfigImportError(f"{path}: no behaviours: add a 'behaviors' section (or default_settings)")
    else:
        for key in doc:  # a misspelt top-level key would otherwise read as an old flat behaviour section
            if difflib.get_close_matches(str(key), TOP_LEVEL, n=1, cutoff=0.8):
                raise unknown_key("", key, TOP_LEVEL)
        src = convert_flat(doc, path)
    tree = src.tree
    params: dict[str, Any] = {}
    legacy_sampler = tree.pop("parameter_randomization", None)
    legacy_curriculum = tree.pop("curriculum", None)
    if sampler is not None:
        if legacy_sampler is not None:
            raise ConfigImportError(f"{path} has parameter_randomization and --sampler was given too; give one")
        legacy_sampler, sampler_doc_path = read_yaml(sampler), f"{sampler}:"
    else:
        sampler_doc_path = "parameter_randomization."
    if legacy_sampler is not None:
        converted, notes = convert_old_sampler(legacy_sampler, sampler_doc_path)
        params.update(converted)
        src.unmapped.extend(notes)
    if curriculum is not None:
        if legacy_curriculum is not None:
            raise ConfigImportError(f"{path} has a curriculum section and --curriculum was given too; give one")
        lessons = load_curriculum_option(curriculum)
    else:
        lessons = convert_old_curriculum(legacy_curriculum, "curriculum.") if legacy_curriculum is not None else {}
    for name, spec in lessons.items():
        if name in params:  # as ML-Agents' upgrade did: the sampler wins
            src.unmapped.append((f"curriculum.{name}", "the parameter also has a sampler; the sampler is kept"))
        else:
            params[name] = spec
    if params:
        if tree.get("environment_parameters"):
            raise ConfigImportError(
                f"{path} has environment_parameters and old curriculum/sampler settings too; give one"
            )
        tree["environment_parameters"] = params
    return src


# ---------------------------------------------------------------------------------------------------
# Translation: one checked behaviour (plus the run-level sections) -> one mlx experiment.


@dataclass
class Experiment:
    name: str
    behaviours: list[str]
    overrides: dict[str, Any]  # config group -> option (defaults-list overrides)
    body: dict[str, Any]
    unmapped: list[tuple[str, str]]
    notes: list[str]
    # unmapped sections by their key path in ML-Agents' nested format, kept as comments
    kept: dict[tuple[str, ...], Any] = field(default_factory=dict)
    # mapped settings that still need something from the user before a run (e.g. a .demo file)
    warnings: list[str] = field(default_factory=list)


def deep_update(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """ML-Agents' deep_update_dict: nested mappings merge, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def plain(value: Any) -> Any:
    """A dataclass instance as YAML-ready builtins (enums as their values)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def env_options() -> dict[str, str]:
    """conf/env options a behaviour name can select: '3DBall' and '3dball' both match env=3dball."""
    from mlx.config import CONF_DIR

    names = (p.stem for p in (Path(CONF_DIR) / "env").glob("*.yaml"))
    return {re.sub(r"[^a-z0-9]", "", n.lower()): n for n in names if n not in ("gym", "unity")}


def signal_options() -> set[str]:
    """Reward signals mlx can run: a settings class in mlx.config and a reward_signals/ group option."""
    from mlx.config import CONF_DIR
    from mlx.config import REWARD_SIGNALS as MLX_SIGNALS

    return {n for n in MLX_SIGNALS if (Path(CONF_DIR) / "reward_signals" / f"{n}.yaml").exists()}


class Translator:
    """Builds one experiment; records every setting it cannot apply with its path in the input."""

    def __init__(self, src: Source, behaviour: str) -> None:
        self.src = src
        self.behaviour = behaviour
        self.unmapped: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.kept: dict[tuple[str, ...], Any] = {}

    def origin(self, *keys: str) -> str:
        """The dotted path of a behaviour setting in the input: its own section, else the defaults."""
        if self.src.fmt == "flat":  # nested key -> the flat key it came from
            if keys[0] == "trainer_type":
                keys = ("trainer",)
            elif keys[0] == "hyperparameters" and len(keys) > 1:
                keys = keys[1:]
            elif keys[0] == "network_settings" and len(keys) > 1:
                keys = ("use_recurrent",) if keys[1] == "memory" else keys[1:]
        section: Any = self.src.own.get(self.behaviour, {})
        found = True
        for key in keys:
            if isinstance(section, Mapping) and key in section:
                section = section[key]
            else:
                found = False
                break
        base = self.src.behaviour_paths.get(self.behaviour, self.behaviour)
        if not found and self.src.default_path:
            base = self.src.default_path
        return ".".join((base, *keys))

    def skip(self, path: str, reason: str) -> None:
        self.unmapped.append((path, reason))

    def keep(self, keys: tuple[str, ...], value: Any) -> None:
        """Keep an unmapped section, at its place in ML-Agents' nested format, for the file's comments."""
        root = ("default_settings",) if self.behaviour == "default_settings" else ("behaviors", self.behaviour)
        self.kept[(*root, *keys)] = value

    def demo_path(self, path: str, keys: tuple[str, ...]) -> str:
        """Unity's demonstrations live in its project; mlx ships its own recordings of the same tasks in
        demos/ (same file names), used when the given path is not here. A missing file is written as given,
        with a warning: the run refuses it until a .demo is recorded or another path is given."""
        from mlx.formats.demo import REPO_ROOT, resolve_demo_path

        where = self.origin(*keys)
        if resolve_demo_path(path).exists():
            return path
        ours = f"demos/{PurePath(path.replace(chr(92), '/')).name}"
        if (REPO_ROOT / ours).is_file():
            self.notes.append(f"{where}: {path} -> {ours} (mlx's recording of the same task, see demos/README.md)")
            return ours
        self.warnings.append(
            f"{where}: no .demo file at '{path}'; record one with python -m mlx mode=record (see demos/README.md) "
            "and set its path before running"
        )
        return path

    def trainer(self, settings: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """-> (mlx trainer option, trainer body without reward_signals, reward signal bodies)."""
        from mlx.config import TRAINER_SETTINGS

        source_type = settings["trainer_type"]
        trainer_type = source_type
        if source_type in STAND_INS:
            trainer_type, reason = STAND_INS[source_type]
            self.skip(self.origin("trainer_type"), f"{source_type}: {reason}")
        mlx_settings = TRAINER_SETTINGS[trainer_type]()
        body = plain(mlx_settings)
        body.pop("trainer_type")
        body.pop("reward_signals")
        for key, value in settings.items():
            if key in ("trainer_type", "reward_signals"):
                continue
            if key == "hyperparameters":
                for hkey, hvalue in value.items():
                    if hkey in body["hyperparameters"]:
                        body["hyperparameters"][hkey] = hvalue
                    else:
                        self.skip(self.origin(key, hkey), f"mlx's {trainer_type} has no {hkey}")
            elif key == "network_settings":
                body["network_settings"] = self.network(value, body["network_settings"], trainer_type, (key,))
            elif key == "threaded":
                if value:
                    self.skip(
                        self.origin(key),
                        "mlx steps the env and updates the model in one thread (same learning, no overlap)",
                    )
            elif key == "behavioral_cloning":  # null: off, which mlx's default block (demo_path null) is
                if value is None:
                    continue
                body[key] = {**body[key], **value}
                if value.get("demo_path") is not None:
                    body[key]["demo_path"] = self.demo_path(str(value["demo_path"]), (key, "demo_path"))
            elif key in body:
                body[key] = value
            elif key == "framework":
                self.notes.append(f"{self.origin(key)}: ignored, as ML-Agents ignores it (deprecated)")
            elif value != TRAINER_NO_OP.get(key, object()):
                reasons = {
                    "self_play": "mlx has no self-play yet",
                }
                self.skip(self.origin(key), reasons.get(key, f"mlx has no {key}"))
                if isinstance(value, dict):
                    self.keep((key,), value)
        signals = self.reward_signals(settings.get("reward_signals"))
        return trainer_type, body, signals

    def network(
        self, value: dict[str, Any], base: dict[str, Any], trainer_type: str, keys: tuple[str, ...]
    ) -> dict[str, Any]:
        out = dict(base)
        for key, item in value.items():
            path = self.origin(*keys, key)
            if key in ("goal_conditioning_type", "conditioning_type"):
                out["conditioning_type"] = item
            elif key == "memory":
                out["memory"] = None if item is None else {**plain(_memory_defaults()), **item}
            elif key in out:
                out[key] = item
            elif item != NETWORK_NO_OP.get(key, object()):
                reasons = {
                    "deterministic": "mlx trains with sampled actions; evaluate deterministically with mlx's "
                    "evaluation mode instead",
                    "max_num_agents": "a POCA setting; mlx has no POCA",
                }
                self.skip(path, reasons.get(key, f"mlx's network_settings has no {key}"))
        return out

    def reward_signals(self, signals: dict[str, Any] | None) -> dict[str, Any]:
        from mlx.config import REWARD_SIGNALS as MLX_SIGNALS

        if signals is None:  # ML-Agents' default: extrinsic with gamma 0.99, strength 1.0
            signals = {"extrinsic": {}}
        available = signal_options()
        out: dict[str, Any] = {}
        for name, values in signals.items():
            path = self.origin("reward_signals", name)
            if name not in available:
                self.skip(path, f"mlx has no {name} reward signal yet (it has {', '.join(sorted(available))})")
                self.keep(("reward_signals", name), values)
                continue
            body = plain(MLX_SIGNALS[name]())
            for key, item in values.items():
                kpath = f"{path}.{key}"
                if key == "network_settings":
                    if "network_settings" in body:
                        body[key] = self.network(item, body[key], "ppo", ("reward_signals", name, key))
                    else:
                        self.notes.append(f"{kpath}: ignored, as ML-Agents ignores it ({name} has no network)")
                elif key == "encoding_size":
                    if item is None:
                        continue
                    if "network_settings" in values:
                        self.notes.append(f"{kpath}: ignored, as ML-Agents ignores it when network_settings is given")
                    else:  # ML-Agents: the deprecated encoding_size sets the hidden units
                        body.setdefault("network_settings", {})["hidden_units"] = item
                        self.notes.append(f"{kpath} (deprecated) -> network_settings.hidden_units: {item}")
                elif key == "demo_path" and item is not None:
                    body[key] = self.demo_path(str(item), ("reward_signals", name, key))
                elif key in body:
                    body[key] = item
                else:
                    self.skip(kpath, f"mlx's {name} has no {key}")
            out[name] = body
        if not out:
            self.skip(
                self.origin("reward_signals"),
                "none of its reward signals exists in mlx, so the experiment uses extrinsic (the env reward, "
                "gamma 0.99, strength 1.0) instead",
            )
            out["extrinsic"] = plain(MLX_SIGNALS["extrinsic"]())
        return out

    def run_level(self, tree: dict[str, Any], overrides: dict[str, Any], body: dict[str, Any]) -> None:
        """env_settings, engine_settings, checkpoint_settings, torch_settings, debug, environment_parameters."""
        env = check(tree.get("env_settings"), ENV_SETTINGS, "env_settings")
        env_body: dict[str, Any] = {}
        for key, value in env.items():
            if value == ENV_DEFAULTS[key]:
                continue
            path = f"env_settings.{key}"
            if key == "env_path":
                overrides["env"] = "unity"
                env_body["path"] = value
            elif key == "env_args":
                if env.get("env_path") is None:
                    self.skip(path, "arguments for a Unity build, and no env_path is given")
                else:
                    env_body["env_args"] = value
            elif key == "seed":
                body["seed"] = value
            else:
                env_body[key] = value
        engine = check(tree.get("engine_settings"), ENGINE_SETTINGS, "engine_settings")
        engine_body = {k: v for k, v in engine.items() if v != ENGINE_DEFAULTS[k]}
        if engine_body:
            body["engine_settings"] = engine_body
        checkpoint = check(tree.get("checkpoint_settings"), CHECKPOINT_SETTINGS, "checkpoint_settings")
        for key, value in checkpoint.items():
            if value == CHECKPOINT_DEFAULTS[key]:
                continue
            path = f"checkpoint_settings.{key}"
            if key in ("resume", "load_model"):
                body["resume"] = value
            elif key in ("run_id", "initialize_from", "force", "results_dir"):
                body[key] = value
            elif key == "inference":
                self.skip(path, "mlx's training runs always train; evaluate a trained policy with its evaluation mode")
            else:
                self.skip(path, "ML-Agents' deprecated --train flag; mlx always trains")
        device = check(tree.get("torch_settings"), TORCH_SETTINGS, "torch_settings").get("device")
        if device is not None:
            body["torch_settings"] = {"device": device}
        if check(tree.get("debug", False), BOOL, "debug"):
            self.skip("debug", "mlx has no debug switch; its logs are always complete")
        params = tree.get("environment_parameters")
        if params:
            checked = check_environment_parameters(params, "environment_parameters")
            rest: dict[str, Any] = {}
            for name, spec in checked.items():
                constant = _constant(spec)
                if constant is not None:
                    env_body.setdefault("parameters", {})[name] = constant
                else:
                    rest[name] = spec
            if rest:
                body["environment_parameters"] = rest  # kept only if mlx accepts it (see verify)
        if env_body:
            body["env"] = env_body

    def defaults_note(self) -> None:
        if self.src.default_path == "default_settings":
            self.notes.append("default_settings merged into the behaviour, as ML-Agents does")


def _memory_defaults() -> Any:
    from mlx.config import MemorySettings

    return MemorySettings()


def _constant(spec: Any) -> float | None:
    """An environment parameter that is one number (a plain value or a constant sampler)."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return float(spec)
    if isinstance(spec, Mapping) and spec.get("sampler_type") == "constant":
        return float(spec["sampler_parameters"].get("value", 0.0))
    return None


def sanitise(name: str) -> str:
    """An option name Hydra accepts on the command line: lower case letters, digits, underscores."""
    out = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return out or "imported"


def translate(src: Source, base_name: str, add_trainer_suffix: bool) -> list[Experiment]:
    """All behaviours of the input -> experiments; identical behaviours share one experiment."""
    tree = src.tree
    default = tree.get("default_settings")
    behaviours = src.own if src.fmt == "flat" else mapping(tree.get("behaviors"), "behaviors")
    only_defaults = src.fmt != "flat" and not behaviours
    if only_defaults:
        behaviours = {"default_settings": {}}  # only default_settings: it applies to every behaviour
    translated: list[tuple[str, Experiment, str | None]] = []
    for name in behaviours:
        if src.fmt == "flat":
            section = tree["behaviors"][name]
            path = src.behaviour_paths[name]
        else:
            own = behaviours[name]
            base = mapping(default, "default_settings")
            if default is not None and "reward_signals" not in base:
                # ML-Agents fills default_settings with its defaults first, so its extrinsic signal is
                # merged with (not replaced by) the behaviour's reward_signals
                base["reward_signals"] = {"extrinsic": {}}
            section = deep_update(base, mapping(own, f"behaviors.{name}"))
            path = "default_settings" if only_defaults else f"behaviors.{name}"
        if src.fmt == "flat" and section.get("trainer_type") in OLD_BC_TRAINERS:
            src.skipped.append(
                (
                    path,
                    f"trainer {section['trainer_type']}: ML-Agents removed its behavioral cloning trainers in "
                    "0.15 and mlx has none; this behaviour is not imported",
                )
            )
            continue
        settings = check_trainer(section, path)
        t = Translator(src, name)
        t.unmapped.extend(src.unmapped_by.get(name, []))
        t.defaults_note()
        trainer_type, trainer_body, signals = t.trainer(settings)
        overrides: dict[str, Any] = {"trainer": trainer_type, "reward_signals": list(signals)}
        body: dict[str, Any] = {"trainer": {**trainer_body, "reward_signals": signals}}
        t.run_level(tree, overrides, body)
        env = env_options().get(re.sub(r"[^a-z0-9]", "", str(name).lower()))
        exp = Experiment("", [str(name)], overrides, body, t.unmapped, t.notes, t.kept, t.warnings)
        translated.append((str(name), exp, env))
    if not translated:
        reasons = "; ".join(f"{p}: {r}" for p, r in src.skipped)
        raise ConfigImportError(f"nothing to import: {reasons}")

    def key(exp: Experiment) -> str:
        unmapped = [
            (re.sub(rf"^{re.escape(src.behaviour_paths.get(b, b))}\b", "*", p), r)
            for b in exp.behaviours
            for p, r in exp.unmapped
        ]
        return repr((exp.overrides, exp.body, sorted(unmapped)))

    groups: dict[str, list[tuple[str, Experiment, str | None]]] = {}
    for item in translated:
        groups.setdefault(key(item[1]), []).append(item)
    experiments: list[Experiment] = []
    several = len(groups) > 1
    used: set[str] = set()
    for members in groups.values():
        first = members[0][1]
        names = [m[0] for m in members]
        envs = {m[2] for m in members}
        env = envs.pop() if len(envs) == 1 else None
        if env is not None and "env" not in first.overrides:
            first.overrides["env"] = env
            first.notes.append(f"env={env}: the behaviour name {names[0]} is an mlx env; env=<name> picks another")
        elif "env" not in first.overrides:
            first.notes.append("no mlx env is named like the behaviour: choose one on the command line (env=<name>)")
        unmapped = list(first.unmapped)
        kept = dict(first.kept)
        for _, other, _ in members[1:]:
            unmapped.extend(p for p in other.unmapped if p not in unmapped)
            kept.update(other.kept)
        name = base_name
        if several:
            name = f"{base_name}_{sanitise(names[0])}"
        if add_trainer_suffix:
            source_type = _source_trainer_type(src, names[0])
            if not name.endswith(f"_{source_type}"):
                name = f"{name}_{source_type}"
        stem, n = name, 1
        while name in used:  # behaviour names that differ only in case or punctuation
            n += 1
            name = f"{stem}_{n}"
        used.add(name)
        warnings = [w for _, m, _ in members for w in m.warnings]
        warnings = list(dict.fromkeys(warnings))
        experiments.append(Experiment(name, names, first.overrides, first.body, unmapped, first.notes, kept, warnings))
    if several:
        for exp in experiments:
            exp.notes.append(
                f"one of {len(experiments)} experiments from this file: mlx trains one trainer config per run and "
                "the behaviours' settings differ"
            )
    return experiments


def _source_trainer_type(src: Source, behaviour: str) -> str:
    if src.fmt == "flat":
        return str(src.tree["behaviors"][behaviour].get("trainer_type", "ppo"))
    section = deep_update(mapping(src.tree.get("default_settings"), "default_settings"), src.own.get(behaviour, {}))
    return str(section.get("trainer_type", "ppo"))


# ---------------------------------------------------------------------------------------------------
# Rendering and checking the result.


def render(exp: Experiment, source: Path, fmt: str) -> str:
    lines = ["# @package _global_"]
    who = ", ".join(exp.behaviours)
    kind = {"flat": "old flat format", "0.17": "0.17-0.18 format", "nested": "nested format"}[fmt]
    lines.append(f"# Imported by `python -m {PROG}` from the ML-Agents config {source.name}")
    lines.append(f"# ({kind}), behaviour{'s' if len(exp.behaviours) > 1 else ''} {who}.")
    lines.append(f"# Run: python -m mlx experiment={exp.name}")
    lines.append("# Every trainer setting is written out (ML-Agents' defaults filled in), so tuned/ and network=")
    lines.append("# do not change it; change a setting on the command line, e.g. trainer.max_steps=1000000.")
    if exp.unmapped:
        lines.append("#")
        lines.append(
            f"# NOT MAPPED ({len(exp.unmapped)}): these settings of the ML-Agents file are NOT applied by mlx:"
        )
        for path, reason in exp.unmapped:
            lines.append(f"#   {path}: {reason}")
    if exp.kept:
        nested: dict[str, Any] = {}
        for keys, value in exp.kept.items():
            node = nested
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = value
        lines.append("#")
        lines.append("# The unmapped sections in ML-Agents' format, for when mlx supports them:")
        dumped = yaml.safe_dump(nested, sort_keys=False, default_flow_style=False)
        lines.extend(f"#   {line}" for line in dumped.splitlines())
    if exp.notes or exp.warnings:
        lines.append("#")
        lines.append("# Notes:")
        lines.extend(f"#   {note}" for note in [*exp.warnings, *exp.notes])
    lines.append("defaults:")
    for group, option in exp.overrides.items():
        shown = f"[{', '.join(option)}]" if isinstance(option, list) else option
        lines.append(f"  - override /{group}: {shown}")
    lines.append("")
    lines.append(yaml.safe_dump(exp.body, sort_keys=False, default_flow_style=False).rstrip())
    return "\n".join(lines) + "\n"


def verify(experiments: list[Experiment], source: Path, fmt: str) -> dict[str, str]:
    """Compose each experiment with Hydra over a copy of conf/ and validate it as a run would.
    environment_parameters (samplers, curricula) are kept only if this mlx accepts them; otherwise they
    move to the unmapped list with mlx's reason. Returns name -> file text."""
    from hydra import initialize_config_dir

    from mlx.config import CONF_DIR, register_configs

    register_configs()
    texts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="mlx-import-") as tmp:
        conf = Path(tmp) / "conf"
        shutil.copytree(CONF_DIR, conf)
        (conf / "experiment").mkdir(exist_ok=True)
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            for exp in experiments:
                texts[exp.name] = verify_one(exp, conf / "experiment", source, fmt)
    return texts


def verify_one(exp: Experiment, folder: Path, source: Path, fmt: str) -> str:
    from hydra import compose

    from mlx.config import ConfigError, validate
    from mlx.errors import describe, user_error_types

    who = ", ".join(exp.behaviours)
    while True:
        text = render(exp, source, fmt)
        (folder / f"{exp.name}.yaml").write_text(text, encoding="utf-8")
        try:
            # .demo files may be recorded after importing (warned about above); runs check them
            validate(compose("config", overrides=[f"experiment={exp.name}"]), check_files=False)
            return text
        except ConfigError as exc:
            if "environment_parameters" not in exp.body or "environment_parameters" not in str(exc):
                raise ConfigImportError(f"the imported settings of {who} are refused by mlx: {exc}") from None
            for name, spec in exp.body.pop("environment_parameters").items():
                exp.unmapped.append((f"environment_parameters.{name}", f"not accepted by this mlx ({exc})"))
                exp.kept[("environment_parameters", name)] = spec
        except user_error_types() as exc:
            raise ConfigImportError(f"the experiment for {who} does not compose: {describe(exc)}") from None


# ---------------------------------------------------------------------------------------------------
# Command line.


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Import an ML-Agents trainer config (any format) as an mlx experiment "
        "(python -m mlx experiment=<name>). Settings mlx cannot apply are listed on stderr and in the file.",
    )
    parser.add_argument("config", type=Path, help="the ML-Agents trainer config YAML")
    parser.add_argument(
        "--out",
        type=Path,
        help="a folder (default: mlx's conf/experiment/), or a .yaml file whose name (lower case) names the "
        "experiment; several experiments from one config become <name>_<behaviour>.yaml",
    )
    parser.add_argument("--name", help="experiment name (default: the config's file name and trainer, e.g. 3dball_ppo)")
    parser.add_argument("--curriculum", type=Path, help="old (<= 0.16) curriculum file or folder of JSON files")
    parser.add_argument("--sampler", type=Path, help="old (<= 0.16) parameter randomization (sampler) file")
    parser.add_argument("--force", action="store_true", help="overwrite existing experiment files")
    parser.add_argument("--strict", action="store_true", help="exit 1 and write nothing if any setting is unmapped")
    return parser.parse_args(argv)


def destinations(experiments: list[Experiment], out: Path | None) -> dict[str, Path]:
    """<name>.yaml in the --out folder (or the folder of a --out file, whose name gave the experiment's
    name), else in conf/experiment/: Hydra finds an option by its file name, which must end in .yaml."""
    from mlx.config import CONF_DIR

    if out is None:
        folder = Path(CONF_DIR) / "experiment"
    elif out.suffix in (".yaml", ".yml"):
        folder = out.parent
    else:
        folder = out
    return {e.name: folder / f"{e.name}.yaml" for e in experiments}


def how_to_run(path: Path, name: str) -> str:
    """The command that selects a written experiment: conf/experiment/ needs nothing, another folder
    named experiment/ joins Hydra's search path, anything else must be moved there first."""
    from mlx.config import CONF_DIR

    if path.parent.resolve() == (Path(CONF_DIR) / "experiment").resolve():
        return f"python -m mlx experiment={name}"
    if path.parent.name == "experiment" and path.stem == name:
        return f"python -m mlx experiment={name} hydra.searchpath=[file://{path.parent.parent.resolve()}]"
    return f"move it to conf/experiment/{name}.yaml, then python -m mlx experiment={name}"


def run(args: argparse.Namespace) -> int:
    src = normalise(read_yaml(args.config), args.config, args.curriculum, args.sampler)
    if args.out is not None and args.out.suffix in (".yaml", ".yml"):
        base = sanitise(args.name or args.out.stem)
        suffix = False
    else:
        base = sanitise(args.name or args.config.stem)
        suffix = args.name is None
    experiments = translate(src, base, suffix)
    for exp in experiments:  # found while converting old formats: attach to every experiment
        exp.unmapped[:0] = [u for u in src.unmapped if u not in exp.unmapped]
    texts = verify(experiments, args.config, src.fmt)
    paths = destinations(experiments, args.out)
    unmapped = [(p, r) for p, r in src.skipped]
    for exp in experiments:
        unmapped.extend(u for u in exp.unmapped if u not in unmapped)
    for path, reason in unmapped:
        print(f"{PROG}: warning: not mapped: {path}: {reason}", file=sys.stderr)
    for warning in dict.fromkeys(w for exp in experiments for w in exp.warnings):
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if args.strict and unmapped:
        print(f"{PROG}: error: {len(unmapped)} setting(s) not mapped (--strict); nothing written", file=sys.stderr)
        return UNMAPPED_STRICT
    existing = [p for p in paths.values() if p.exists()]
    if existing and not args.force:
        raise ConfigImportError(f"{existing[0]} exists; pass --force to overwrite it, or --name/--out for another")
    for exp in experiments:
        path = paths[exp.name]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(texts[exp.name], encoding="utf-8")
        print(f"wrote {path} ({', '.join(exp.behaviours)}): {how_to_run(path, exp.name)}")
    if len(experiments) > 1:
        print(f"{len(experiments)} experiments: the behaviours' settings differ and mlx trains one config per run")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ConfigImportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
