"""An ML-Agents trainer config plus mlagents-learn's options -> one mlx experiment and the overrides of an
mlx run (``python -m mlx experiment=<name> ...``).

The YAML goes through the importer as is (mlx.import_mlagents: every format, strict keys, ML-Agents' value
coercion, one experiment per scene with ``behaviors.<name>`` sections, the native port by behaviour names).
The options become command-line overrides, so the printed command teaches mlx's spelling of each.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

from mlx.config import CONF_DIR
from mlx.errors import ConfigError
from mlx.import_mlagents.translate import Experiment, env_options

RUN_ID_DEFAULT = "ppo"  # mlagents-learn's default --run-id


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def env_by_name(value: str) -> str | None:
    """--env naming an mlx native env (3dball, 3DBall) rather than a file: that env's option name."""
    if Path(value).exists():
        return None
    return env_options().get(_key(value))


def choose(experiments: list[Experiment], config: Path | None, native: str | None) -> Experiment:
    """The one experiment a run trains. The importer makes several only for a file holding several scenes
    (an old catalogue like trainer_config.yaml: --env=<native env> picks one) or behaviours of one scene with
    different sets of reward signals (one mlx run has one set): anything else is refused in one line."""
    if len(experiments) == 1:
        return experiments[0]
    picked = [exp for exp in experiments if native is not None and exp.overrides.get("env") == native]
    if len(picked) == 1:
        return picked[0]
    runs = "; ".join(f"{exp.name}: {', '.join(exp.behaviours)}" for exp in experiments)
    scenes = len({exp.overrides.get("env") for exp in experiments}) > 1
    why = (
        "behaviours of several scenes: pick one with --env=<native env>"
        if scenes
        else "behaviours with different sets of reward signals, which one mlx run cannot mix: split the file"
    )
    raise ConfigError(f"{config} holds {len(experiments)} mlx runs ({runs}): {why}")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _quote(value: Any) -> str:
    """A value as a Hydra override value: quoted when Hydra's grammar would read it otherwise."""
    text = str(value)
    if not isinstance(value, str) or re.fullmatch(r"[A-Za-z0-9_./:\-+]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def overrides(args: argparse.Namespace, exp: Experiment) -> tuple[list[str], list[str]]:
    """mlagents-learn's options given -> (mlx overrides, notes for the user). Only options on the command
    line are mapped, so the YAML's own checkpoint/env/engine/torch settings (in the experiment) stay
    unless an option overrides them, as upstream."""
    given = vars(args)
    # Every trainer setting is the file's: the importer writes them all and leaves mlx's tuned/ out.
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


def command(config: Path | None, name: str, mlx_overrides: list[str]) -> str:
    """The equivalent mlx commands: import the file once as experiment/<name>.yaml, then run it."""
    run = ["python", "-m", "mlx", "--config-dir", ".", f"experiment={name}", *mlx_overrides]
    shown = " ".join(shlex.quote(a) for a in run)
    if config is None:
        return shown
    env = next((o.partition("=")[2] for o in mlx_overrides if o.startswith("env=")), None)
    chosen = f" --env {env}" if env is not None else ""  # the importer asks which env a portless file trains on
    return f"python -m mlx.import_mlagents {shlex.quote(str(config))}{chosen} --out experiment/{name}.yaml && {shown}"


def conf_has_experiment(name: str) -> bool:
    """mlx's own conf/experiment/ has an experiment of this name (the run's must not shadow it)."""
    return (Path(CONF_DIR) / "experiment" / f"{name}.yaml").exists()
