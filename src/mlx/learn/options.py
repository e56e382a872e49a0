"""mlagents-learn's command line, spelled as upstream spells it (release 20-22, plus the options older
releases had), with upstream's defaults shown in the help.

Every option defaults to "not given" (argparse.SUPPRESS): as upstream, an option overrides the YAML's own
setting only when it is on the command line, and the YAML (else mlx's default, which equals upstream's where
both exist) decides the rest. ``OPTION_NAMES`` lets ``python -m mlx`` recognise an ML-Agents habit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

PROG = "mlx-learn"
SUPPRESS = argparse.SUPPRESS


def _flag(parser: argparse._ActionsContainer, name: str, text: str, dest: str | None = None) -> None:
    kwargs = {"dest": dest} if dest else {}
    parser.add_argument(name, action="store_true", default=SUPPRESS, help=text, **kwargs)


def _value(parser: argparse._ActionsContainer, name: str, kind: type, text: str, dest: str | None = None) -> None:
    kwargs = {"dest": dest} if dest else {}
    parser.add_argument(name, type=kind, default=SUPPRESS, help=text, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The parser: mlagents-learn's options and help, plus --mlx for mlx overrides."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train with an ML-Agents trainer config, as mlagents-learn does, as an mlx run (python -m mlx). "
        "The YAML is read as is (every ML-Agents format); the options keep mlagents-learn's names and defaults. "
        "Prints the equivalent python -m mlx command first.",
        epilog="Example: mlx-learn config/ppo/3DBall.yaml --run-id=first  (a native port: no Unity needed)",
    )
    p.add_argument(
        "trainer_config_path",
        nargs="?",
        type=Path,
        default=None,
        help="the ML-Agents trainer config YAML (default: none, ML-Agents' default settings for every behaviour)",
    )
    _value(
        p,
        "--env",
        str,
        "a Unity build (or any ML-Agents env process) to launch, or the name of an mlx native env (e.g. 3dball); "
        "default: the native env named like the config's behaviours, else wait for the Unity Editor",
        dest="env_path",
    )
    _flag(p, "--resume", "continue the run --run-id from its last checkpoint (python -m mlx resume=true)")
    _flag(p, "--deterministic", "act on the policy's mean / most likely action (network_settings.deterministic)")
    _flag(p, "--force", "overwrite the run --run-id if it exists (force=true)")
    _value(p, "--run-id", str, "the run's name: results/<run-id>/ (default: ppo)")
    _value(p, "--initialize-from", str, "start from the weights of this earlier run id (initialize_from=...)")
    _value(p, "--seed", int, "random seed; -1 draws one (default: -1)")
    _flag(
        p,
        "--inference",
        "act with the run's trained policy without training (mode=evaluate; use with --run-id of a trained run)",
    )
    _value(p, "--base-port", int, "first port for env processes (default: 5005; the Editor listens on 5004)")
    _value(p, "--num-envs", int, "copies of the env (default: 1)")
    _value(p, "--num-areas", int, "training areas per env (default: 1 for Unity builds, the native env's own)")
    _flag(p, "--debug", "debug logging and run_logs/timers.json (debug=true)")
    p.add_argument(
        "--env-args",
        nargs=argparse.REMAINDER,
        default=SUPPRESS,
        help="arguments for the Unity build: everything after this option (give it last)",
    )
    _value(p, "--max-lifetime-restarts", int, "restarts of a crashed env over the run; -1: no limit (default: 10)")
    _value(p, "--restarts-rate-limit-n", int, "restarts allowed per period; -1: no limit (default: 1)")
    _value(p, "--restarts-rate-limit-period-s", int, "the period of --restarts-rate-limit-n in seconds (default: 60)")
    _value(p, "--results-dir", str, "where run folders go (default: results)")
    _value(p, "--timeout-wait", int, "seconds to wait for an env's message (default: 60)")
    engine = p.add_argument_group("Engine Configuration (Unity builds)")
    _value(engine, "--width", int, "window width in pixels (default: 84)")
    _value(engine, "--height", int, "window height in pixels (default: 84)")
    _value(engine, "--quality-level", int, "QualitySettings.SetQualityLevel (default: 5)")
    _value(engine, "--time-scale", float, "Time.timeScale, at most 100 (default: 20)")
    _value(engine, "--target-frame-rate", int, "Application.targetFrameRate; -1: none (default: -1)")
    _value(engine, "--capture-frame-rate", int, "Time.captureFramerate (default: 60)")
    _flag(engine, "--no-graphics", "launch builds with -nographics -batchmode")
    _flag(engine, "--no-graphics-monitor", "no graphics for the builds, except the first one (to watch it)")
    torch = p.add_argument_group("Torch Configuration")
    _value(torch, "--torch-device", str, "cpu, cuda, cuda:<N> or mps (default: the accelerator, if any)")
    old = p.add_argument_group("Options of older ML-Agents releases")
    _value(old, "--curriculum", Path, "(<= 0.16) a curriculum JSON file, or a folder of them")
    _value(old, "--sampler", Path, "(<= 0.16) a parameter randomization (sampler) YAML file")
    _value(old, "--lesson", int, "(<= 0.16) the curriculum lesson to start at (lesson=...)")
    _value(old, "--keep-checkpoints", int, "(<= 0.15) checkpoints to keep (trainer.keep_checkpoints)")
    _value(old, "--save-freq", int, "(<= 0.15) steps between checkpoints (trainer.checkpoint_interval)")
    _flag(old, "--cpu", "(<= 0.15) train on the CPU (torch_settings.device=cpu)")
    _flag(old, "--load", "(deprecated by ML-Agents: --resume) continue the run --run-id", dest="load_model")
    _flag(old, "--train", "(deprecated by ML-Agents: training is the default) no effect", dest="train_model")
    own = p.add_argument_group("mlx")
    own.add_argument(
        "--mlx",
        action="append",
        default=SUPPRESS,
        metavar="KEY=VALUE",
        help="an mlx override for the run, repeatable (e.g. --mlx trainer.max_steps=2000 --mlx tracking=none); "
        "applied last, after what the options map to",
    )
    return p


def option_names() -> frozenset[str]:
    """Every --option of mlx-learn (mlagents-learn's own), for python -m mlx to point ML-Agents habits here."""
    names = {s for action in build_parser()._actions for s in action.option_strings if s.startswith("--")}
    return frozenset(names - {"--help", "--mlx"})
