"""Where mlx finds its files: the conf/ folder Hydra composes, the project's sweeps/ and the committed demos/
that relative demo paths fall back to, found without importing the app.

In a checkout (``pip install -e .`` or PYTHONPATH=src) the three folders sit at the repository root; a wheel
carries them inside the package (mlx/conf, mlx/sweeps, mlx/demos: setup.py maps them there), so an
installed mlx never needs the checkout. DATA_ROOT is whichever of the two holds them.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    """The installed package when it carries conf/ (a wheel), else the checkout's root (src/mlx -> ../..)."""
    if (PACKAGE_DIR / "conf" / "config.yaml").is_file():
        return PACKAGE_DIR
    return PACKAGE_DIR.parents[1]


DATA_ROOT = _data_root()
# Hydra's config folder (MLX_CONF_DIR overrides it).
CONF_DIR = Path(os.environ.get("MLX_CONF_DIR", DATA_ROOT / "conf"))
# The project's search spaces (mlx.sweep.files adds ./sweeps and $MLX_SWEEPS_DIR).
SWEEPS_DIR = DATA_ROOT / "sweeps"


def resolve_demo_path(path: str | os.PathLike[str]) -> Path:
    """A demo path as given, or, if relative and absent there, relative to DATA_ROOT (where the committed
    ``demos/`` live), so configs naming ``demos/<file>.demo`` work from any directory and when installed."""
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute():
        return p
    ours = DATA_ROOT / p
    return ours if ours.exists() else p


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a ``python -m mlx...`` child process (the MLflow sidecar, the curves): this
    process's, with this mlx first on PYTHONPATH, so the child runs the same code whatever its sys.path."""
    src = str(PACKAGE_DIR.parent)
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}
