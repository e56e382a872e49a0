"""An ML-Agents trainer config plus mlagents-learn's options -> one mlx experiment and the overrides of an
mlx run (``python -m mlx experiment=<name> ...``).

The YAML goes through the importer as is (mlx.import_mlagents: every format, strict keys, ML-Agents' value
coercion). The importer makes one experiment per distinct behaviour configuration; a run trains all the
behaviours of a file, so those experiments become one: the first is the base (``trainer``), each other
behaviour gets a ``behaviors.<name>`` section holding only what differs (mlx merges it over ``trainer``).
The options become command-line overrides, so the printed command teaches mlx's spelling of each.
"""

from __future__ import annotations

import argparse
import copy
import re
import shlex
from pathlib import Path
from typing import Any

from mlx.config import CONF_DIR
from mlx.errors import ConfigError
from mlx.import_mlagents.translate import Experiment, env_options, sanitise

# Native envs whose behaviours are not named like the env (the importer matches one name to one env).
# tests/test_learn.py checks these names against the env modules.
MULTI_BEHAVIOUR_ENVS: dict[str, frozenset[str]] = {
    "walljump": frozenset({"SmallWallJump", "BigWallJump"}),
    "strikersvsgoalie": frozenset({"Striker", "Goalie"}),
}
RUN_ID_DEFAULT = "ppo"  # mlagents-learn's default --run-id


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def native_env(behaviours: list[str], experiments: list[Experiment]) -> str | None:
    """The native env the config's behaviours belong to: the importer's choice (an env named like the
    behaviour), or an env whose behaviours include all of them; None when mlx has no port."""
    chosen = {exp.overrides.get("env") for exp in experiments}
    if len(chosen) == 1 and None not in chosen:
        return str(chosen.pop())
    for env, names in MULTI_BEHAVIOUR_ENVS.items():
        if set(behaviours) <= names:
            return env
    return None


def env_by_name(value: str) -> str | None:
    """--env naming an mlx native env (3dball, 3DBall) rather than a file: that env's option name."""
    if Path(value).exists():
        return None
    return env_options().get(_key(value))


def _diff(base: dict[str, Any], other: dict[str, Any], where: str) -> dict[str, Any]:
    """What ``other`` changes when merged over ``base`` (mlx's deep merge): differing keys, recursively.
    A block on in the base and off here is written as null; a reward signal of the base that this
    behaviour lacks cannot be removed by a merge, so it is refused."""
    out: dict[str, Any] = {}
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            inner = _diff(base[key], value, f"{where}.{key}")
            if inner:
                out[key] = inner
        elif key not in base or base[key] != value:
            out[key] = copy.deepcopy(value)
    for key in base:
        if key not in other:
            out[key] = None  # e.g. self_play off for this behaviour only
    return out


def _same_signals(first: Experiment, exp: Experiment) -> None:
    """One mlx run has one list of reward signals (the reward_signals group); their settings may differ."""
    mine, theirs = list(first.body["trainer"]["reward_signals"]), list(exp.body["trainer"]["reward_signals"])
    if sorted(mine) != sorted(theirs):
        raise ConfigError(
            f"behaviours {', '.join(first.behaviours)} use reward signals {', '.join(mine)} and "
            f"{', '.join(exp.behaviours)} use {', '.join(theirs)}; one mlx run has one list of reward signals: "
            "give these behaviours separate YAML files"
        )


def combine(experiments: list[Experiment], name: str) -> Experiment:
    """The importer's experiments of one file as one experiment: the first is the base, the others'
    behaviours get behaviors.<name> sections with what differs (PPO and SAC behaviours may mix)."""
    first = experiments[0]
    if len(experiments) == 1:
        exp = Experiment(name, *_fields(first))
        exp.overrides = {**first.overrides, "tuned": None}
        return exp
    body = copy.deepcopy(first.body)
    sections: dict[str, Any] = {}
    for exp in experiments[1:]:
        _same_signals(first, exp)
        changed = _section(first, exp)
        for behaviour in exp.behaviours:
            sections[behaviour] = copy.deepcopy(changed)
    body["behaviors"] = sections
    behaviours = [b for exp in experiments for b in exp.behaviours]
    unmapped = list(dict.fromkeys(u for exp in experiments for u in exp.unmapped))
    notes = list(dict.fromkeys(n for exp in experiments for n in exp.notes if "one of " not in n))
    notes.append(f"behaviors.<name>: what {', '.join(sections)} change(s) from {', '.join(first.behaviours)}")
    kept = {k: v for exp in experiments for k, v in exp.kept.items()}
    warnings = list(dict.fromkeys(w for exp in experiments for w in exp.warnings))
    overrides = {**first.overrides, "tuned": None}  # every trainer setting is the file's: tuned/ sets nothing
    return Experiment(name, behaviours, overrides, body, unmapped, notes, kept, warnings)


def _section(first: Experiment, exp: Experiment) -> dict[str, Any]:
    """The behaviors.<name> section of ``exp``'s behaviours over ``first``'s trainer. A behaviour of another
    trainer type (mlx.config.run: it starts from its own trainer's hyperparameter defaults and shares the
    rest) names its type and writes all its hyperparameters; everything else is what differs."""
    base, theirs = first.body["trainer"], exp.body["trainer"]
    if exp.overrides["trainer"] == first.overrides["trainer"]:
        return _diff(base, theirs, "trainer")
    rest = _diff(
        {k: v for k, v in base.items() if k != "hyperparameters"},
        {k: v for k, v in theirs.items() if k != "hyperparameters"},
        "trainer",
    )
    own = {"trainer_type": exp.overrides["trainer"], "hyperparameters": copy.deepcopy(theirs["hyperparameters"])}
    return {**own, **rest}


def _fields(exp: Experiment) -> tuple[Any, ...]:
    return exp.behaviours, exp.overrides, exp.body, exp.unmapped, exp.notes, exp.kept, exp.warnings


def experiment_name(config: Path | None, trainer_type: str) -> str:
    """As the importer names it: the file's name and the trainer type (3DBall.yaml -> 3dball_ppo)."""
    base = sanitise(config.stem) if config is not None else "mlagents_defaults"
    return base if base.endswith(f"_{trainer_type}") else f"{base}_{trainer_type}"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _quote(value: Any) -> str:
    """A value as a Hydra override value: quoted when Hydra's grammar would read it otherwise."""
    text = str(value)
    if not isinstance(value, str) or re.fullmatch(r"[A-Za-z0-9_./:\-+]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def overrides(args: argparse.Namespace, exp: Experiment, native: str | None) -> tuple[list[str], list[str]]:
    """mlagents-learn's options given -> (mlx overrides, notes for the user). Only options on the command
    line are mapped, so the YAML's own checkpoint/env/engine/torch settings (in the experiment) stay
    unless an option overrides them, as upstream."""
    given = vars(args)
    out: list[str] = []
    notes: list[str] = []
    sections = list(exp.body.get("behaviors", {}))

    def trainer(key: str, value: str) -> None:  # upstream applies these to every behaviour
        out.append(f"trainer.{key}={value}")
        for behaviour in sections:
            section = exp.body["behaviors"][behaviour]
            if key.startswith("hyperparameters.") and "trainer_type" in section:
                continue  # another trainer's hyperparameters: the same name is another setting
            if _has(section, key):
                out.append(f"behaviors.{_quote(behaviour)}.{key}={value}")

    env_path = given.get("env_path")
    if env_path is not None:
        named = env_by_name(env_path)
        if named is not None:
            out.append(f"env={named}")
        else:
            out += ["env=unity", f"env.path={_quote(env_path)}"]
    elif exp.overrides.get("env") is None and native is not None:
        out.append(f"env={native}")
    elif exp.overrides.get("env") is None:
        out.append("env=unity")
        who = ", ".join(exp.behaviours)
        notes.append(
            f"mlx has no native env for {who}: waiting for the Unity Editor (press Play), or give --env=<build> "
            "(or --env=<native env>)"
        )
    run_id = given.get("run_id")
    if run_id is None and "run_id" not in exp.body:
        run_id = RUN_ID_DEFAULT
    if run_id is not None:
        out.append(f"run_id={_quote(run_id)}")
    simple = {
        "seed": "seed",
        "results_dir": "results_dir",
        "initialize_from": "initialize_from",
        "lesson": "lesson",
        "base_port": "env.base_port",
        "num_envs": "env.num_envs",
        "num_areas": "env.num_areas",
        "timeout_wait": "env.timeout_wait",
        "max_lifetime_restarts": "env.max_lifetime_restarts",
        "restarts_rate_limit_n": "env.restarts_rate_limit_n",
        "restarts_rate_limit_period_s": "env.restarts_rate_limit_period_s",
        "width": "engine_settings.width",
        "height": "engine_settings.height",
        "quality_level": "engine_settings.quality_level",
        "time_scale": "engine_settings.time_scale",
        "target_frame_rate": "engine_settings.target_frame_rate",
        "capture_frame_rate": "engine_settings.capture_frame_rate",
        "torch_device": "torch_settings.device",
    }
    for option, key in simple.items():
        if option in given:
            out.append(f"{key}={_quote(given[option])}")
    if given.get("cpu"):
        out.append("torch_settings.device=cpu")
    if "env_args" in given:
        out.append(f"env.env_args=[{','.join(_quote(a) for a in given['env_args'])}]")
    for option, key in (("no_graphics", "engine_settings.no_graphics"), ("force", "force"), ("debug", "debug")):
        if given.get(option):
            out.append(f"{key}=true")
    if given.get("no_graphics_monitor"):
        out.append("engine_settings.no_graphics_monitor=true")
    if given.get("load_model"):
        notes.append("--load is deprecated by ML-Agents: --resume (continuing the run)")
    if given.get("train_model"):
        notes.append("--train is deprecated by ML-Agents and has no effect: training is the default")
    if given.get("inference"):
        if "initialize_from" in given:
            raise ConfigError(
                "--inference acts with the policy of the run --run-id (mlx's mode=evaluate): give --run-id=<the "
                "trained run> instead of --initialize-from"
            )
        # upstream's inference samples actions unless --deterministic; mlx's evaluation defaults to the mean
        out += ["mode=evaluate", f"evaluate.deterministic={_bool(bool(given.get('deterministic')))}"]
    else:
        if given.get("resume") or given.get("load_model"):
            out.append("resume=true")
        if given.get("deterministic"):
            trainer("network_settings.deterministic", "true")
    if "keep_checkpoints" in given:
        trainer("keep_checkpoints", str(given["keep_checkpoints"]))
    if "save_freq" in given:
        trainer("checkpoint_interval", str(given["save_freq"]))
    for item in given.get("mlx", []):  # trainer.<key> reaches every behaviour of the file, as upstream's options
        key, eq, value = item.partition("=")
        if eq and key.startswith("trainer.") and not key.startswith("trainer.reward_signals"):
            trainer(key.removeprefix("trainer."), value)
        else:
            out.append(item)
    return out, notes


def _has(section: dict[str, Any], dotted: str) -> bool:
    """A behaviours section sets this key itself (so the trainer-wide override would not reach it)."""
    node: Any = section
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def command(config: Path | None, name: str, mlx_overrides: list[str], merged: bool) -> str:
    """The equivalent mlx commands: import the file once as experiment/<name>.yaml, then run it. A file the
    importer splits (``merged``) is one experiment here, so only the run is shown."""
    run = ["python", "-m", "mlx", "--config-dir", ".", f"experiment={name}", *mlx_overrides]
    shown = " ".join(shlex.quote(a) for a in run)
    if config is None or merged:
        return shown
    return f"python -m mlx.import_mlagents {shlex.quote(str(config))} --out experiment/{name}.yaml && {shown}"


def conf_has_experiment(name: str) -> bool:
    """mlx's own conf/experiment/ has an experiment of this name (the run's must not shadow it)."""
    return (Path(CONF_DIR) / "experiment" / f"{name}.yaml").exists()
