"""Translation: one checked behaviour (plus the run-level sections) -> one mlx experiment. Every setting
is written with mlx's defaults (the schema's dataclasses) filled in; what mlx cannot apply is recorded with
its dotted path in the input, never dropped silently."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from mlx.config import CONF_DIR, DATA_ROOT, TRAINER_SETTINGS, MemorySettings, resolve_demo_path
from mlx.config import REWARD_SIGNALS as MLX_SIGNALS
from mlx.config.checks import mapping, plain
from mlx.config.trainer import threaded_problem
from mlx.envs.registry import NATIVE_BEHAVIORS
from mlx.errors import ConfigImportError
from mlx.import_mlagents.legacy import OLD_BC_TRAINERS, Source
from mlx.import_mlagents.reading import BOOL, check
from mlx.import_mlagents.schema import (
    CHECKPOINT_DEFAULTS,
    CHECKPOINT_SETTINGS,
    ENGINE_DEFAULTS,
    ENGINE_SETTINGS,
    ENV_DEFAULTS,
    ENV_SETTINGS,
    NETWORK_NO_OP,
    TORCH_SETTINGS,
    TRAINER_NO_OP,
    check_trainer,
    environment_parameters,
)


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


def env_options() -> dict[str, str]:
    """conf/env options a behaviour name can select: '3DBall' and '3dball' both match env=3dball."""
    names = (p.stem for p in (Path(CONF_DIR) / "env").glob("*.yaml"))
    return {re.sub(r"[^a-z0-9]", "", n.lower()): n for n in names if n not in ("gym", "unity")}


def signal_options() -> set[str]:
    """Reward signals mlx can run: a settings class in mlx.config and a reward_signals/ group option."""
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
        where = self.origin(*keys)
        if resolve_demo_path(path).exists():
            return path
        ours = f"demos/{PurePath(path.replace(chr(92), '/')).name}"
        if (DATA_ROOT / ours).is_file():
            self.notes.append(f"{where}: {path} -> {ours} (mlx's recording of the same task, see demos/README.md)")
            return ours
        self.warnings.append(
            f"{where}: no .demo file at '{path}'; record one with python -m mlx mode=record (see demos/README.md) "
            "and set its path before running"
        )
        return path

    def trainer(self, settings: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """-> (mlx trainer option, trainer body without reward_signals, reward signal bodies)."""
        trainer_type = settings["trainer_type"]
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
                body["threaded"] = bool(value)  # checked below, once memory and self_play are known
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
                self.skip(self.origin(key), f"mlx has no {key}")
                if isinstance(value, dict):
                    self.keep((key,), value)
        if body.get("self_play") is None:  # off: not written
            body.pop("self_play", None)
        if body.get("threaded"):
            memory = (body.get("network_settings") or {}).get("memory") is not None
            why = threaded_problem(trainer_type, memory, body.get("self_play") is not None)
            if why is not None:
                body["threaded"] = False
                self.skip(self.origin("threaded"), f"mlx runs it unthreaded: {why}")
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
                out["memory"] = None if item is None else {**plain(MemorySettings()), **item}
            elif key == "deterministic" and keys[0] == "reward_signals":  # only the policy acts
                if item:
                    self.notes.append(f"{path}: ignored, as ML-Agents ignores it (the signal's network does not act)")
            elif key in out:
                out[key] = item
            elif item != NETWORK_NO_OP.get(key, object()):
                reasons = {
                    "max_num_agents": "mlx's POCA critic attends over however many agents are present, with no "
                    "fixed maximum",
                }
                self.skip(path, reasons.get(key, f"mlx's network_settings has no {key}"))
        return out

    def reward_signals(self, signals: dict[str, Any] | None) -> dict[str, Any]:
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
            body["debug"] = True  # DEBUG logging, a timer block per behaviour (timers.json is always written)
        params = tree.get("environment_parameters")
        if params:
            checked = environment_parameters(params, "environment_parameters")
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
    translated: list[tuple[str, Experiment]] = []
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
        exp = Experiment("", [str(name)], overrides, body, t.unmapped, t.notes, t.kept, t.warnings)
        translated.append((str(name), exp))
    if not translated:
        reasons = "; ".join(f"{p}: {r}" for p, r in src.skipped)
        raise ConfigImportError(f"nothing to import: {reasons}")

    parts: dict[str | None, list[tuple[str, Experiment]]] = {}
    if env_for([n for n, _ in translated]) is None:  # a catalogue of scenes (the old trainer_config.yaml)
        for item in translated:
            parts.setdefault(env_for([item[0]]), []).append(item)
    else:
        parts[None] = translated
    experiments: list[Experiment] = []
    for env, members in parts.items():
        name = base_name if len(parts) == 1 else f"{base_name}_{env or 'unported'}"
        experiments.extend(_experiments(src, name, add_trainer_suffix, members, len(parts)))
    used: set[str] = set()
    for exp in experiments:
        stem, n = exp.name, 1
        while exp.name in used:  # behaviour names that differ only in case or punctuation
            n += 1
            exp.name = f"{stem}_{n}"
        used.add(exp.name)
    return experiments


def _experiments(
    src: Source, name: str, add_trainer_suffix: bool, members: list[tuple[str, Experiment]], scenes: int
) -> list[Experiment]:
    """Behaviours of one scene: one run trains them all (the first behaviour's settings are `trainer`, the
    others' differences behaviors.<name> sections), unless their sets of reward signals differ: a behaviour
    section can change a signal, not remove one, so those behaviours get one experiment per setting group."""
    if len({repr(sorted(e.overrides["reward_signals"])) for _, e in members}) == 1:
        exp = _one_experiment(src, name, add_trainer_suffix, members)
        if scenes > 1:
            exp.notes.append(f"one of {scenes} scenes of this file: the behaviours of the others are elsewhere")
        return [exp]

    def key(exp: Experiment) -> str:
        unmapped = [
            (re.sub(rf"^{re.escape(src.behaviour_paths.get(b, b))}\b", "*", p), r)
            for b in exp.behaviours
            for p, r in exp.unmapped
        ]
        return repr((exp.overrides, exp.body, sorted(unmapped)))

    groups: dict[str, list[tuple[str, Experiment]]] = {}
    for item in members:
        groups.setdefault(key(item[1]), []).append(item)
    experiments = [_one_experiment(src, f"{name}_{sanitise(g[0][0])}", add_trainer_suffix, g) for g in groups.values()]
    for exp in experiments:
        exp.notes.append(
            f"one of {len(experiments)} experiments for these behaviours: they use different sets of reward "
            "signals, which one mlx run cannot mix"
        )
    return experiments


def _delta(base: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """What ``new`` changes in ``base``: the keys to write in a behaviors.<name> section."""
    out: dict[str, Any] = {}
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            if sub := _delta(base[k], v):
                out[k] = sub
        elif k not in base or base[k] != v:
            out[k] = v
    return out


def _one_experiment(
    src: Source, name: str, add_trainer_suffix: bool, members: list[tuple[str, Experiment]]
) -> Experiment:
    """Behaviours trained by one run: the first one's trainer settings, the others' in behaviors.<name>."""
    first = members[0][1]
    names = [m[0] for m in members]
    body = copy.deepcopy(first.body)
    base = body["trainer"]
    behaviours: dict[str, Any] = {}
    for behaviour, exp in members[1:]:
        own = exp.body["trainer"]
        if exp.overrides["trainer"] == first.overrides["trainer"]:
            section = _delta(base, own)
        else:  # another trainer starts from its own hyperparameter defaults (mlx.config.run): write them all
            section = {"trainer_type": exp.overrides["trainer"], **_delta(base, own)}
            section["hyperparameters"] = own["hyperparameters"]
        if section:
            behaviours[behaviour] = section
    if behaviours:
        body["behaviors"] = behaviours
    env = env_for(names)
    overrides = dict(first.overrides)
    notes = list(first.notes)
    if "env" not in overrides and env is not None:
        overrides["env"] = env
        notes.append(f"env={env}: the native port with behaviour{'s' if len(names) > 1 else ''} {', '.join(names)}")
    if add_trainer_suffix:
        types = "_".join(dict.fromkeys(_source_trainer_type(src, n) for n in names))
        if not name.endswith(f"_{types}"):
            name = f"{name}_{types}"
    unmapped, kept = list(first.unmapped), dict(first.kept)
    for _, other in members[1:]:
        unmapped.extend(p for p in other.unmapped if p not in unmapped)
        kept.update(other.kept)
    warnings = list(dict.fromkeys(w for _, m in members for w in m.warnings))
    return Experiment(name, names, overrides, body, unmapped, notes, kept, warnings)


def env_for(behaviours: list[str]) -> str | None:
    """The native port whose behaviours include all of these names, else one named like them (by letters
    and digits, case aside: '3DBall' selects env=3dball), else None."""
    found = {env for env, names in NATIVE_BEHAVIORS.items() if set(behaviours) <= set(names)}
    if len(found) == 1:
        return found.pop()
    options = env_options()
    named = {options.get(re.sub(r"[^a-z0-9]", "", b.lower())) for b in behaviours}
    return named.pop() if len(named) == 1 and None not in named else None


def _source_trainer_type(src: Source, behaviour: str) -> str:
    if src.fmt == "flat":
        return str(src.tree["behaviors"][behaviour].get("trainer_type", "ppo"))
    section = deep_update(mapping(src.tree.get("default_settings"), "default_settings"), src.own.get(behaviour, {}))
    return str(section.get("trainer_type", "ppo"))
