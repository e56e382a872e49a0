"""`python -m mlx`: the Hydra app. Composes conf/, validates, runs.

Errors a user can fix (a config typo, a wrong type, an unknown group option, a refused run_id) end
with one line on stderr naming the problem and the fix, and exit code 2; nothing already saved is lost.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import TYPE_CHECKING, Any

from mlx.errors import ConfigError, fail, is_os_problem, os_problem, user_error_types
from mlx.keycheck import unknown_key

if TYPE_CHECKING:
    from omegaconf import DictConfig

# Hydra, OmegaConf, the config package (numpy) and the sweeper are imported in _main, after the checks that
# need none of them (mlx's own pages, ML-Agents habits, a misspelt key: mlx.keycheck), so those answer fast.


def _app() -> Any:
    """The Hydra app (built on first use: importing Hydra is most of a refused command's time)."""
    import hydra

    from mlx.config import CONF_DIR

    return hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_run)()


def _run(cfg: DictConfig) -> float | None:
    """One job of the Hydra app: validate, then train or run the chosen mode."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from mlx.config.record import hydra_record, on_existing_run, write_mode_record
    from mlx.config.resume import run_folder
    from mlx.sweep.jobs import job_tags

    try:
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
        if cfg.get("sweep") is not None and not multirun:
            choice = HydraConfig.get().runtime.choices.get("sweep")
            raise ConfigError(f"sweep={choice} is an Optuna search: run it with -m (python -m mlx -m sweep={choice})")
        record = hydra_record(cfg)
        cfg = on_existing_run(cfg)
        # Each mode is imported once chosen, for start-up speed (torch; lightning for training only).
        mode = cfg.get("mode")
        if mode in ("evaluate", "record", "watch"):
            from mlx.training.output import mode_log  # light: logging only

            with mode_log(run_folder({k: OmegaConf.select(cfg, k) for k in ("run_id", "results_dir")})):
                result = _mode(cfg, mode)
            write_mode_record(cfg, record)
            return result
        from mlx.training.output import say  # light: logging only

        # Within a second of the command: PyTorch and the env take seconds more before the banner.
        say(f"mlx: starting run '{cfg.get('run_id')}' ({'resuming' if cfg.get('resume') else 'training'}) ...")
        if not multirun:
            _prepare_tracking(cfg)
        from mlx.training.run import run

        return run(cfg, tags=job_tags(), record=record)
    except user_error_types() as exc:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # a sweep records the failed job and goes on
        fail(exc)  # exits here, before Hydra adds its own multi-line report
        return None


def _prepare_tracking(cfg: DictConfig) -> None:
    """One run of ``python -m mlx``: once its settings are valid, MLflow's process starts importing mlflow and
    opening the store while this one imports PyTorch (mlx.tracking.sidecar)."""
    from mlx.config import validate

    settings = validate(cfg)
    if settings.tracking.backend != "mlflow":
        return
    from mlx.tracking.mlflow_run import experiment_of
    from mlx.tracking.sidecar import prepare

    tracking = settings.tracking
    prepare(tracking.uri, tracking.experiment_name or experiment_of(settings.env.name, settings.env.id))


def _mode(cfg: DictConfig, mode: str) -> float | None:
    """Run mode=evaluate, record or watch; evaluate's result is the sweep objective."""
    if mode == "evaluate":
        from mlx.modes.evaluate import evaluate

        return evaluate(cfg)
    if mode == "record":
        from mlx.modes.record import record as record_demos

        record_demos(cfg)
        return None
    from mlx.modes.watch import watch

    watch(cfg)
    return None


INTEGRAL_FLOAT = re.compile(r"[+-]?\d+(\.0*)?([eE]\+?\d+)?|[+-]?\d*\.\d+[eE]\+?\d+")


def integral_float_for_int(exc: BaseException, argv: list[str]) -> bool:
    """ML-Agents' YAML loader takes ``max_steps: 5.0e5`` for an int setting; Hydra's grammar reads 5.0e5 as a
    float, which an int field refuses at composition. When that refusal names an override of ``argv`` whose
    value is a whole number written as a float, rewrite it as the int (in place) and say to retry."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    key = str(getattr(cause, "full_key", "") or "")
    if not key or "could not be converted to Integer" not in str(cause):
        return False
    for i, arg in enumerate(argv[1:], start=1):
        name, eq, value = arg.partition("=")
        if eq and name.lstrip("+") == key and INTEGRAL_FLOAT.fullmatch(value):
            number = float(value)
            if number.is_integer() and abs(number) <= 2**53:
                argv[i] = f"{name}={int(number)}"
                return True
    return False


def null_block_error(exc: BaseException) -> bool:
    """OmegaConf's failures (an assertion, an AttributeError) when an override sets a key inside a block that
    is null, or gives such a block whole: it cannot fill an optional structured block that is null."""
    text = str(exc)
    return (isinstance(exc, AssertionError) and "Unexpected type for root: NoneType" in text) or (
        isinstance(exc, AttributeError) and "'NoneType' object has no attribute 'get'" in text and "full_key" in text
    )


def inside_null_block(argv: list[str], text: str) -> str:
    """The one line for ``null_block_error``: which block is off and how to turn it on."""
    named = re.search(r"full_key: (\S+)", text)
    keys = [arg.partition("=")[0].lstrip("+") for arg in argv[1:] if "=" in arg and not arg.startswith("-")]
    key = (
        named[1]
        if named
        else next((k for k in keys if ".memory." in k), next((k for k in keys if k.count(".") >= 2), ""))
    )
    block = key if named else key.rsplit(".", 1)[0]
    if block.endswith("network_settings.memory"):
        return (
            f"{key}: {block} is off (null) and cannot be filled from the command line; turn memory on with "
            f"network=lstm (memory_size 128, sequence_length 64), then set {block}.memory_size=... as you like"
        )
    return f"{key or 'an override'}: {block or 'its block'} is off (null); turn it on first (its config group or file)"


def mlagents_habit(argv: list[str]) -> str | None:
    """The one line for an mlagents-learn command line given to python -m mlx (a trainer config YAML first,
    or one of mlagents-learn's --options): it names mlx-learn with the same arguments. Hydra's own flags
    (--multirun, --cfg, --help, --config-dir, ...) are not mlagents-learn options and pass."""
    first = argv[0] if argv else ""
    yaml_file = first.endswith((".yaml", ".yml")) and "=" not in first and os.path.isfile(first)
    flags = [a.partition("=")[0] for a in argv if a.startswith("--")]
    if not yaml_file and not flags:
        return None
    from mlx.learn.options import option_names  # only for a command line that may be an ML-Agents habit

    names = option_names()
    habit = next((f for f in flags if f in names), None)
    if not yaml_file and habit is None:
        return None
    what = f"{first} is an ML-Agents trainer config" if yaml_file else f"{habit} is an mlagents-learn option"
    import shlex

    return f"{what}: run mlx-learn {shlex.join(argv)} (mlagents-learn's command line), or give mlx overrides here"


DISTRIBUTION = "mlx-mlagents"  # this project on the package index; "mlx" there is Apple's array framework


def warn_if_apple_mlx() -> None:
    """Both distributions install the import package ``mlx``: in one environment their files mix and
    uninstalling either breaks the other. Say so once, in one line, where it matters."""
    from importlib import metadata

    try:
        files = metadata.distribution("mlx").files or []
    except metadata.PackageNotFoundError:
        return
    if not any(f.parts[:1] == ("mlx",) and f.name.startswith("core.") for f in files):  # Apple's compiled core
        return
    print(
        f"mlx: warning: Apple's MLX (pip package 'mlx') is installed here too; it and this project "
        f"('{DISTRIBUTION}') share the import name mlx and overwrite each other's files: use separate "
        "virtual environments",
        file=sys.stderr,
    )


def main(end_process: bool = True) -> None:
    """Entry point: mlx's own pages (--help, --version, bash completion), else the Hydra app; a reader that
    stops early (``mlx --help | head``) ends it quietly, as Unix tools end. ``end_process``: after a run or
    mode that loaded PyTorch, end the process at once (``exit_without_teardown``); in-process callers
    (mlx-learn) pass False."""
    try:
        _main()
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's final flush
        if end_process and "torch" in sys.modules:
            exit_without_teardown(0)
    except BrokenPipeError:
        # Python's recipe: point stdout at devnull so the exit's flush does not fail again; 128 + SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)


def exit_without_teardown(code: int) -> None:
    """End the process as Python would, less the interpreter's teardown of every module: the atexit handlers
    run (logging's shutdown and any library's) and the standard streams are flushed, then os._exit. With
    PyTorch, Lightning and their extensions loaded that teardown alone took 1.1 s after a 3DBall run (quiet
    2-core machine), a second the user waited for with nothing left to do. Every file of the run is
    written and closed by then, and the MLflow process has finished."""
    import atexit

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's; elsewhere exit normally
    if run_exit_handlers is None:
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _own_page(argv: list[str]) -> str | None:
    """The text of mlx's --help, --version or bash completion script, when argv asks for one."""
    if "--help" in argv or "-h" in argv:
        from mlx.cli_help import help_text

        prog = "mlx" if os.path.basename(sys.argv[0]) == "mlx" else "python -m mlx"
        return help_text(prog)
    if "--version" in argv:
        from mlx.cli_help import version_text

        return version_text()
    if "-sc" in argv or "--shell-completion" in argv:
        from mlx.cli_help import completion_env, shell_completion_script

        completion_env()  # a query for `python -m mlx ...`: the line as Hydra parses it
        return shell_completion_script(argv)
    return None


def _main() -> None:
    warn_if_apple_mlx()  # on stderr, before anything: --version and --help included
    page = _own_page(sys.argv[1:])
    if page is not None:
        print(page)
        return
    habit = mlagents_habit(sys.argv[1:])
    if habit is not None:
        print(f"mlx: error: {habit}", file=sys.stderr)
        sys.exit(2)
    typo = unknown_key(sys.argv[1:])
    if typo is not None:  # printed here: mlx.errors.fail would import OmegaConf to classify it
        print(f"mlx: error: {typo}", file=sys.stderr)
        sys.exit(2)
    from mlx.config import register_configs
    from mlx.sweep.files import register_sweeps

    register_configs()
    register_sweeps()
    # Let exceptions reach us instead of Hydra's multi-line report, so we can print one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        while True:
            try:
                _app()
                break
            except Exception as exc:  # noqa: BLE001 - only a whole-number float for an int setting is retried
                if not integral_float_for_int(exc, sys.argv):
                    raise
    except KeyboardInterrupt as exc:  # a stop signal (mlx.errors.Stopped) or Ctrl-C elsewhere
        sys.exit(128 + getattr(exc, "signum", 2))
    except Exception as exc:  # noqa: BLE001 - classify below, re-raise bugs untouched
        if isinstance(exc, user_error_types()):
            fail(exc)
        if null_block_error(exc):  # OmegaConf's report of a null block being set from the command line
            fail(ConfigError(inside_null_block(sys.argv, str(exc))))
        if isinstance(exc, OSError) and is_os_problem(exc):  # e.g. Hydra creating results/<run_id>
            fail(os_problem(exc, "the run folder"))
        raise


if __name__ == "__main__":
    main()
