"""Older ML-Agents formats -> the current nested one: the 0.17-0.18 top-level curriculum and
parameter_randomization, and the old flat format (<= 0.16) with its separate curriculum and sampler files.
Each conversion returns the nested tree plus notes about what it converted or could not."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlx.config.checks import mapping
from mlx.errors import ConfigImportError
from mlx.import_mlagents.reading import BOOL, FLOAT, INT, STR, Opt, check, read_yaml, unknown_key
from mlx.import_mlagents.schema import LEGACY_TOP_LEVEL, NETWORK, PPO_HYPER, SAC_HYPER, TOP_LEVEL, TRAINER

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
