"""The command line: translate, render each experiment as a conf/experiment file, compose and validate it
with mlx's own schema (a result mlx refuses is bad input), then write it."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir

from mlx.config import CONF_DIR, ConfigError, register_configs, validate
from mlx.errors import ConfigImportError, describe, user_error_types
from mlx.import_mlagents.legacy import normalise
from mlx.import_mlagents.reading import read_yaml
from mlx.import_mlagents.translate import Experiment, sanitise, translate

PROG = "mlx.import_mlagents"
USAGE_ERROR = 2
UNMAPPED_STRICT = 1


def render(exp: Experiment, source: Path, fmt: str, command: str) -> str:
    lines = ["# @package _global_"]
    who = ", ".join(exp.behaviours)
    kind = {"flat": "old flat format", "0.17": "0.17-0.18 format", "nested": "nested format"}[fmt]
    lines.append(f"# Imported by `python -m {PROG}` from the ML-Agents config {source.name}")
    lines.append(f"# ({kind}), behaviour{'s' if len(exp.behaviours) > 1 else ''} {who}.")
    lines.append(f"# Run: {command}")
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


def verify(experiments: list[Experiment], source: Path, fmt: str, paths: dict[str, Path]) -> dict[str, str]:
    """Compose each experiment with Hydra over a copy of conf/ and validate it as a run would.
    Returns name -> file text."""
    register_configs()
    texts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="mlx-import-") as tmp:
        conf = Path(tmp) / "conf"
        shutil.copytree(CONF_DIR, conf)
        (conf / "experiment").mkdir(exist_ok=True)
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            for exp in experiments:
                command = how_to_run(paths[exp.name], exp.name)
                texts[exp.name] = verify_one(exp, conf / "experiment", source, fmt, command)
    return texts


def verify_one(exp: Experiment, folder: Path, source: Path, fmt: str, command: str) -> str:
    who = ", ".join(exp.behaviours)
    text = render(exp, source, fmt, command)
    (folder / f"{exp.name}.yaml").write_text(text, encoding="utf-8")
    try:
        # .demo files may be recorded after importing (warned about above); runs check them
        validate(compose("config", overrides=[f"experiment={exp.name}"]), check_files=False)
    except ConfigError as exc:
        raise ConfigImportError(f"the imported settings of {who} are refused by mlx: {exc}") from None
    except user_error_types() as exc:
        raise ConfigImportError(f"the experiment for {who} does not compose: {describe(exc)}") from None
    return text


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
        help="a folder (default: experiment/ in the working folder), or a .yaml file whose name (lower case) "
        "names the experiment; several experiments from one config become <name>_<behaviour>.yaml",
    )
    parser.add_argument(
        "--env",
        help="the mlx env to train on (env=<name>: a native port, unity, gym); needed when no native port has "
        "the config's behaviours and the config names no env_path",
    )
    parser.add_argument("--name", help="experiment name (default: the config's file name and trainer, e.g. 3dball_ppo)")
    parser.add_argument("--curriculum", type=Path, help="old (<= 0.16) curriculum file or folder of JSON files")
    parser.add_argument("--sampler", type=Path, help="old (<= 0.16) parameter randomization (sampler) file")
    parser.add_argument("--force", action="store_true", help="overwrite existing experiment files")
    parser.add_argument("--strict", action="store_true", help="exit 1 and write nothing if any setting is unmapped")
    return parser.parse_args(argv)


def destinations(experiments: list[Experiment], out: Path | None) -> dict[str, Path]:
    """<name>.yaml in the --out folder (or the folder of a --out file, whose name gave the experiment's
    name), else in experiment/ of the working folder (never inside mlx's own install): Hydra finds an
    option by its file name, which must end in .yaml."""
    if out is None:
        folder = Path.cwd() / "experiment"
    elif out.suffix in (".yaml", ".yml"):
        folder = out.parent
    else:
        folder = out
    return {e.name: folder / f"{e.name}.yaml" for e in experiments}


def how_to_run(path: Path, name: str) -> str:
    """The command that selects a written experiment: conf/experiment/ needs nothing, another folder
    named experiment/ joins Hydra's search path, anything else must be moved there first."""
    if path.parent.resolve() == (Path(CONF_DIR) / "experiment").resolve():
        return f"python -m mlx experiment={name}"
    if path.parent.name == "experiment" and path.stem == name:
        return f"python -m mlx experiment={name} hydra.searchpath=[file://{path.parent.parent.resolve()}]"
    return f"move it to conf/experiment/{name}.yaml, then python -m mlx experiment={name}"


def keep_ported(experiments: list[Experiment]) -> list[Experiment]:
    """The experiments with an env (--env, env_path or a native port). Behaviours with none are refused
    (nothing may train another env silently), or left out with a warning when the file is a catalogue of
    several scenes (ML-Agents' old trainer_config.yaml)."""
    ported = [e for e in experiments if "env" in e.overrides]
    if not ported:
        who = [b for e in experiments for b in e.behaviours]
        raise ConfigImportError(
            f"no native port of mlx has the behaviour{'s' if len(who) > 1 else ''} {', '.join(who)} and the "
            "config names no env_path: say what to train on with --env (--env unity for a Unity build or the "
            "Editor, or a native env's name)"
        )
    for exp in experiments:
        if exp not in ported:
            print(
                f"{PROG}: warning: not imported: {', '.join(exp.behaviours)}: no native port has "
                f"{'them' if len(exp.behaviours) > 1 else 'it'}; import them with --env unity (or a native env)",
                file=sys.stderr,
            )
    return ported


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
        if args.env is not None:
            exp.overrides["env"] = args.env
            exp.notes.append(f"env={args.env}: given with --env")
    paths = destinations(experiments, args.out)
    texts = verify(experiments, args.config, src.fmt, paths)  # the file's own errors come first
    experiments = keep_ported(experiments)
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
        print(f"{len(experiments)} experiments: one per scene or set of reward signals (see the notes in each file)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ConfigError as exc:  # ConfigImportError, or mlx's schema refusing part of the input
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
