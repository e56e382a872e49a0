"""sweeps/<name>.yaml files as the options of Hydra's `sweep` config group.

DESIGN.md puts search spaces in a top-level `sweeps/` folder rather than under conf/, so they are not on
Hydra's search path as a group folder; they are read here and stored in the ConfigStore under group
`sweep` with the package their `# @package` header names (normally `_global_`, so a sweep file can pick
env and trainer with `override /env: ...` and set the trial budget). Folders searched, later ones win on a
name clash: the project's sweeps/ (inside the package when installed from a wheel), then ./sweeps in the
working directory, then $MLX_SWEEPS_DIR.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from omegaconf import OmegaConf

from mlx.config.paths import SWEEPS_DIR

HEADER = re.compile(r"^#\s*@package\s+(\S+)\s*$")


def sweep_dirs() -> list[Path]:
    dirs = [SWEEPS_DIR, Path.cwd() / "sweeps"]
    if os.environ.get("MLX_SWEEPS_DIR"):
        dirs.append(Path(os.environ["MLX_SWEEPS_DIR"]))
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def package_of(text: str) -> str:
    """The `# @package` header among the file's leading comment lines ('sweep' when there is none)."""
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        match = HEADER.match(line)
        if match:
            return match.group(1)
    return "sweep"


def register_sweeps() -> dict[str, Path]:
    """Store every sweep file as `sweep/<name>`; a file that does not parse is stored as a node whose
    `sweep.load_error` says so, and the sweeper reports it only when that sweep is chosen."""
    from hydra.core.config_store import ConfigStore  # lazy for start-up speed (hydra)

    cs = ConfigStore.instance()
    found: dict[str, Path] = {}
    for folder in sweep_dirs():
        for path in sorted(folder.glob("*.yaml")):
            found[path.stem] = path
    for name, path in found.items():
        text = path.read_text()
        package = package_of(text)
        try:
            node = OmegaConf.create(text)
        except Exception as exc:  # noqa: BLE001 - reported when the sweep is selected
            message = " ".join(str(exc).split())[:300]
            node = OmegaConf.create({"sweep": {"load_error": f"{path} does not parse: {message}"}})
            package = "_global_"
        cs.store(group="sweep", name=name, node=node, package=package, provider=str(path.parent))
    return found
