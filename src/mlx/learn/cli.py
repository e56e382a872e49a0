"""`mlx-learn`: parse mlagents-learn's command line, import the YAML, print the equivalent mlx command, run it.

The experiment is rendered into a temporary folder that joins Hydra's search path for this run
(``--config-dir <tmp>``, which, unlike ``hydra.searchpath=``, also serves the compositions a resume makes
to rebase the run's settings): mlx's own conf/ is never written to, the user's working folder gets
nothing but results/ (as with mlagents-learn), and the run composes, validates, refuses and records exactly
as ``python -m mlx experiment=<name> ...`` does (run_id checks, resume, results layout). A resume imports the
file again under the same experiment name, so an unchanged file is no change to the run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from mlx.errors import USAGE_ERROR, ConfigError
from mlx.learn.options import PROG, build_parser
from mlx.learn.run import choose, command, conf_has_experiment, env_by_name, overrides


def parse_args(argv: list[str]) -> argparse.Namespace:
    """mlagents-learn's options; ``--env-args`` takes the rest of the line, as upstream."""
    return build_parser().parse_args(argv)


def prepare(args: argparse.Namespace) -> tuple[str, str, list[str], list[str], str]:
    """-> (experiment name, its file text, the mlx overrides, notes, the equivalent command). Raises
    ConfigError on bad input."""
    from mlx.import_mlagents.cli import imported, render, warn  # lazy: yaml, hydra (start-up of --help)
    from mlx.import_mlagents.reading import read_yaml
    from mlx.import_mlagents.translate import sanitise

    config: Path | None = args.trainer_config_path
    doc = read_yaml(config) if config is not None else {"default_settings": {}}
    source = config if config is not None else Path("<ML-Agents defaults>")
    base = sanitise(config.stem) if config is not None else "mlagents_defaults"
    curriculum, sampler = getattr(args, "curriculum", None), getattr(args, "sampler", None)
    src, experiments = imported(doc, source, curriculum, sampler, base, True)
    env_path = getattr(args, "env_path", None)
    exp = choose(experiments, config, env_by_name(env_path) if env_path is not None else None)
    warn(src, [exp], PROG)
    if conf_has_experiment(exp.name):  # mlx's own conf/experiment/ comes first in Hydra's search path
        exp.name = f"{exp.name}_imported"
    mlx_overrides, notes = overrides(args, exp)
    shown = command(config, exp.name, mlx_overrides)
    return exp.name, render(exp, source, src.fmt, shown), mlx_overrides, notes, shown


def run_mlx(mlx_argv: list[str]) -> int:
    """``python -m mlx <mlx_argv>`` in this process: its exit code (user errors exit 2 with one line)."""
    from mlx.__main__ import main as mlx_main

    saved = sys.argv
    sys.argv = ["mlx", *mlx_argv]
    try:
        mlx_main(end_process=False)  # mlx-learn goes on after the run (its temporary config folder)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv = saved
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mlx-learn`` and ``python -m mlx.learn``: 0 trained, 2 refused (one line on stderr)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        name, text, mlx_overrides, notes, shown = prepare(args)
    except ConfigError as exc:  # the importer's refusals (missing file, unknown key) and mlx-learn's own
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(f"{PROG}: as mlx commands: {shown}", flush=True)
    for note in notes:
        print(f"{PROG}: {note}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mlx-learn-") as tmp:
        folder = Path(tmp) / "experiment"
        folder.mkdir()
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
        return run_mlx(["--config-dir", tmp, f"experiment={name}", *mlx_overrides])
