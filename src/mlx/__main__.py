"""`python -m mlx`: the Hydra app. Composes conf/, validates, runs.

Errors a user can fix (a config typo, a wrong type, an unknown group option, a refused run_id) end
with one line on stderr naming the problem and the fix, and exit code 2; nothing already saved is lost.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from mlx.config import register_configs

CONF_DIR = Path(os.environ.get("MLX_CONF_DIR", Path(__file__).resolve().parents[2] / "conf"))

USAGE_ERROR = 2


def one_line(message: str) -> str:
    """Fold a multi-line library message into one line, dropping Hydra's search-path listing and
    OmegaConf's debugging details."""
    kept = []
    for line in str(message).splitlines():
        line = line.strip()
        if line.startswith(("Config search path", "provider=")):
            break
        if not line or line.startswith(("full_key:", "object_type=", "reference_type=")):
            continue
        if line.endswith("_schema"):  # ConfigStore schemas are not options a user picks
            continue
        kept.append(line)
    text = " ".join(kept)
    text = re.sub(r"Available options in '([^']+)':", r"; available options in '\1':", text)
    return re.sub(r"\s+", " ", text).replace(" ;", ";")


def describe(exc: BaseException) -> str:
    """The one line a user sees for a configuration or run error."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and getattr(cause, "full_key", None):
        parent = getattr(cause, "parent_node", None)
        known = sorted(str(k) for k in parent) if parent is not None and hasattr(parent, "keys") else []
        hint = f"; allowed keys there: {', '.join(known)}" if known else ""
        return f"unknown key '{cause.full_key}'{hint}"
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        return f"{cause.full_key}: {one_line(str(cause))}"
    return one_line(str(exc))


def user_error_types() -> tuple[type[BaseException], ...]:
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    from mlx.config import ConfigError
    from mlx.envs.base import EnvError
    from mlx.run import RunError
    from mlx.trainers.base import TrainingError

    return (
        ConfigError,
        EnvError,
        RunError,
        TrainingError,
        HydraException,
        MissingConfigException,
        OverrideParseException,
        OmegaConfBaseException,
    )


def fail(exc: BaseException) -> None:
    print(f"mlx: error: {describe(exc)}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from mlx.config import ConfigError
    from mlx.run import run
    from mlx.sweep.jobs import job_tags

    try:
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
        if cfg.get("sweep") is not None and not multirun:
            choice = HydraConfig.get().runtime.choices.get("sweep")
            raise ConfigError(f"sweep={choice} is an Optuna search: run it with -m (python -m mlx -m sweep={choice})")
        if cfg.get("mode") == "evaluate":
            from mlx.evaluate import evaluate

            return evaluate(cfg)
        if cfg.get("mode") == "record":
            from mlx.record import record

            record(cfg)
            return None
        if cfg.get("mode") == "watch":
            from mlx.watch import watch

            watch(cfg)
            return None
        return run(cfg, tags=job_tags())
    except user_error_types() as exc:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # a sweep records the failed job and goes on
        fail(exc)  # exits here, before Hydra adds its own multi-line report
        return None


def main() -> None:
    """Entry point: run the Hydra app, turning user errors into one line and exit code 2."""
    register_configs()
    # Let exceptions reach us instead of Hydra's multi-line report, so we can print one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - classify below, re-raise bugs untouched
        if isinstance(exc, user_error_types()):
            fail(exc)
        raise


if __name__ == "__main__":
    main()
