"""mlx's own command-line pages: ``--help`` (modes, config groups, main keys, docs), ``--version``, and bash
completion for both ``mlx`` and ``python -m mlx``.

Hydra's generic help lists groups without saying what they are for; this page is written for a user who
has never seen conf/. The group options are read from the same places Hydra composes from (conf/, the env
registry, the sweeps folders), so they cannot fall behind. Nothing heavy is imported: `mlx --help` answers
in well under a second. Hydra's own page stays at ``--hydra-help``.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from pathlib import Path

from mlx.config.paths import CONF_DIR

DISTRIBUTION = "mlx-mlagents"  # this project on the package index (README: "Which mlx?")
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # a checkout: README.md and docs/ live here

# The groups a user picks from, in the order a command line usually names them, with one line each.
GROUPS = {
    "trainer": "the algorithm: PPO, SAC or MA-POCA with ML-Agents' defaults",
    "env": "the environment: a native scene, gym (env.id=<Gymnasium id>) or unity (env.path=<build>)",
    "network": "replace the tuned network settings (sizes, LSTM memory, visual encoder)",
    "reward_signals": "extrinsic, curiosity, rnd, gail; several at once: reward_signals=[extrinsic,curiosity]",
    "curriculum": "lessons that change env parameters as the reward grows",
    "sampler": "environment parameters drawn at random (domain randomisation)",
    "tracking": "where metrics go: MLflow and TensorBoard files, TensorBoard files only, or none",
    "sweep": "an Optuna search over hyperparameters (sweeps/<name>.yaml), run with -m",
    "experiment": "a whole saved experiment, e.g. one imported from an ML-Agents YAML",
}

MODES = {
    "train": "learn (the default); resume=true continues a run, initialize_from=<run_id> starts from one",
    "evaluate": "play the trained policy of run_id without learning; mean and std of episode returns",
    "watch": "render the trained policy's episodes to a GIF or MP4 (watch.path=...)",
    "record": "write the trained policy's (or a heuristic's) episodes as an ML-Agents .demo file",
}

KEYS = {
    "run_id=<name>": "the run's folder under results_dir (default <trainer>-<env>-<time>)",
    "seed=<n>": "random seed (-1: a random one)",
    "trainer.max_steps=<n>": "agent steps to train for",
    "trainer.hyperparameters.learning_rate=<x>": "and every other ML-Agents hyperparameter by its name",
    "trainer.network_settings.hidden_units=<n>": "network width (num_layers, normalize, memory, ...)",
    "env.num_areas=<n>": "copies of the scene stepped together",
    "resume=true / force=true": "continue run_id / overwrite it",
    "torch_settings.device=cpu|cuda": "where the networks run (default: cuda when there is a GPU)",
    "progress=auto|plain": "a live progress line on a terminal, or plain lines",
    "debug=true": "debug log lines and per-update timers",
    "stop_at_reward=<x>": "stop once the mean reward reaches x",
}


def _names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def group_options(group: str) -> list[str]:
    """The options of one group, from where Hydra composes them (schemas are never among them)."""
    names = set(_names(CONF_DIR / group))
    if group == "env":
        from mlx.envs.registry import NATIVE_ENVS  # a mapping of import paths: imports no env

        names |= set(NATIVE_ENVS)
    if group == "sweep":
        from mlx.sweep.files import sweep_dirs

        for folder in sweep_dirs():
            names |= set(_names(folder))
    return sorted(names)


def _docs() -> list[str]:
    """Where the documentation is: the checkout's files when there is one (an editable install)."""
    readme, docs = PROJECT_ROOT / "README.md", PROJECT_ROOT / "docs"
    if readme.is_file() and docs.is_dir():
        return [
            f"  {readme}",
            f"  {docs / 'settings.md'}  (every setting: type, default, meaning)",
            f"  {docs}/  (architecture, envs, sweeps, curriculum, imitation, unity, deploy)",
        ]
    return ["  README.md and docs/ (docs/settings.md: every setting) in mlx's source repository"]


def _wrap(items: list[str], indent: int, width: int = 100) -> str:
    lines, line = [], ""
    for item in items:
        if line and len(line) + len(item) + 1 > width - indent:
            lines.append(line)
            line = ""
        line = f"{line} {item}" if line else item
    lines.append(line)
    return ("\n" + " " * indent).join(lines)


def help_text(prog: str) -> str:
    """The page ``mlx --help`` prints."""
    out = [
        f"{prog}: ML-Agents' trainers (PPO, SAC, MA-POCA) without Unity, configured with Hydra.",
        "",
        f"usage: {prog} [group=option ...] [key=value ...]        one run",
        f"       {prog} -m key=a,b,c ... | -m sweep=<name>        a grid or an Optuna search (multirun)",
        f"       {prog} --cfg job [overrides]                     print the composed configuration, run nothing",
        "",
        "examples:",
        f"  {prog} env=3dball trainer=ppo seed=1",
        f"  {prog} env=gym env.id=CartPole-v1 trainer.max_steps=50000",
        f"  {prog} mode=evaluate run_id=ppo-3dball-20250101-120000",
        "",
        "modes (mode=...):",
    ]
    out += [f"  {name:<10}{line}" for name, line in MODES.items()]
    out += ["", "config groups (group=option):"]
    for group, line in GROUPS.items():
        out.append(f"  {group:<16}{line}")
        out.append(" " * 18 + _wrap(group_options(group) or ["(none)"], 18))
    out += ["", "most used keys (any setting: key=value; a key the schema lacks: +key=value):"]
    width = max(map(len, KEYS)) + 2
    out += [f"  {key:<{width}}{line}" for key, line in KEYS.items()]
    out += [
        "",
        "ML-Agents habits: mlx-learn <trainer_config.yaml> --run-id=<id> takes mlagents-learn's command line;",
        "  python -m mlx.import_mlagents <config.yaml> turns an ML-Agents config into experiment=<name>.",
        "",
        "flags:",
        "  --version                 mlx's version (with torch's and Hydra's)",
        "  --cfg job|hydra|all       print the configuration instead of running (--resolve: resolved)",
        "  -m, --multirun            run a grid or sweep",
        f'  -sc install=bash          tab completion: add  eval "$({prog} -sc install=bash)"  to ~/.bashrc',
        "  --hydra-help              Hydra's own flags",
        "",
        "docs:",
        *_docs(),
    ]
    return "\n".join(out)


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def version_text() -> str:
    """``mlx --version``: mlx's version (the installed distribution's, else the source tree's), then torch,
    Hydra and Python, read from the installed metadata without importing them."""
    from mlx import __version__

    mlx_version = _dist_version(DISTRIBUTION) or __version__
    others = [
        f"{label} {_dist_version(dist) or 'not installed'}"
        for label, dist in (("torch", "torch"), ("Hydra", "hydra-core"))
    ]
    python = ".".join(map(str, sys.version_info[:3]))
    return f"mlx {mlx_version} ({', '.join(others)}, Python {python})"


# Bash completion for `mlx` and for `python -m mlx` (python, python3, python3.X, any path to them): Hydra's
# own script completes `python <script.py>` and `<app>` only. Completions come from Hydra's query
# (`-sc query=bash`), which knows the groups, their options and the config's keys.
BASH_COMPLETION = r"""# mlx tab completion (bash; zsh after `autoload -U bashcompinit && bashcompinit`)
_mlx_completion()
{
    local words=($COMP_LINE) helper
    COMPREPLY=()
    if [ "${words[0]##*/}" == "mlx" ]; then
        helper="${words[0]}"
    elif [[ "${words[0]##*/}" =~ ^python[0-9.]*$ ]] && [ "${words[1]}" == "-m" ] && [ "${words[2]}" == "mlx" ]; then
        helper="${words[0]} -m mlx"
    else
        return 0  # another python program: bash's default (file names)
    fi
    local choices
    choices=$(COMP_POINT=$COMP_POINT COMP_LINE=$COMP_LINE $helper -sc query=bash 2>/dev/null)
    local cur="${COMP_LINE:0:$COMP_POINT}"
    cur="${cur##* }"
    COMPREPLY=($(compgen -o nospace -W "$choices" -- "$cur"))
}
COMP_WORDBREAKS=${COMP_WORDBREAKS//=}
complete -o nospace -o default -F _mlx_completion mlx
# python -m mlx: other python command lines keep bash's default completion (file names)
complete -o nospace -o default -F _mlx_completion python python3
"""

PYTHON_M_MLX = re.compile(r"^\s*\S*python[0-9.]*\s+-m\s+mlx(?=\s|$)")


def completion_line(line: str) -> str:
    """Hydra's query strips ``python <script>`` or ``<app>`` from the completed line but not
    ``python -m mlx``: rewrite that prefix as ``mlx`` (the cursor moves with it)."""
    return PYTHON_M_MLX.sub("mlx", line, count=1)


def completion_env() -> None:
    """Before Hydra answers a completion query: the line as Hydra can parse it, COMP_POINT moved with it."""
    line = os.environ.get("COMP_LINE", "")
    new = completion_line(line)
    if new != line:
        point = int(os.environ.get("COMP_POINT", len(line)) or len(line))
        os.environ["COMP_LINE"] = new
        os.environ["COMP_POINT"] = str(max(0, point - (len(line) - len(new))))


BASH_UNINSTALL = "complete -r mlx python python3 2>/dev/null; unset -f _mlx_completion\n"


def shell_completion_script(argv: list[str]) -> str | None:
    """mlx's script for ``-sc install=bash`` / ``-sc uninstall=bash`` (also ``--shell-completion``); None for
    anything else (a query, fish: Hydra answers those)."""
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag in ("-sc", "--shell-completion"):
            return {"install=bash": BASH_COMPLETION, "uninstall=bash": BASH_UNINSTALL}.get(value)
    return None
