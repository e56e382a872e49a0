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
    """Fold a multi-line library message (Hydra, OmegaConf) into one readable line."""
    lines = [ln.strip() for ln in str(message).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("full_key:", "object_type=", "Config search path"))]
    text = " ".join(lines)
    text = re.sub(r"\s+", " ", text)
    return text.replace(": ", ": ", 1)


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


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> float | None:
    from mlx.run import run

    return run(cfg)


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
            print(f"mlx: error: {one_line(str(exc))}", file=sys.stderr)
            sys.exit(USAGE_ERROR)
        raise


if __name__ == "__main__":
    main()
