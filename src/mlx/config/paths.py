"""Where mlx finds its files: the conf/ folder Hydra composes, and the checkout that relative demo paths
fall back to (the committed demos/), found without importing the app."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
# conf/ at the repository root (MLX_CONF_DIR overrides it): Hydra's config folder.
CONF_DIR = Path(os.environ.get("MLX_CONF_DIR", REPO_ROOT / "conf"))


def resolve_demo_path(path: str | os.PathLike[str]) -> Path:
    """A demo path as given, or, if relative and absent there, relative to the mlx checkout (where the
    committed ``demos/`` live), so configs naming ``demos/<file>.demo`` work from any directory."""
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute():
        return p
    repo = REPO_ROOT / p
    return repo if repo.exists() else p
