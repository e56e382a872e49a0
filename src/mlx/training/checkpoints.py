"""The run's files: where they live, atomic writes, checkpoints and run_logs/training_status.json.

results/<run_id>/ holds configuration.yaml (every option resolved), run_logs/stats.jsonl (one row per
summary), run_logs/training_status.json (checkpoints per behaviour, named relative to the run folder; the
MLflow run id and the folder the run belongs to) and, per behaviour, <Behavior>/<Behavior>-<step>.pt
checkpoints plus checkpoint.pt (the newest, used to resume). Files are written atomically, so a run killed
at any moment leaves the last checkpoint intact; a run deletes only files inside its own folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import mlx
from mlx.config import RunConfig
from mlx.errors import RunError, os_problem
from mlx.trainers.base import RLTrainer


def atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename it, so readers never see half a file. On failure (a full
    disk) the temporary file is removed and ``path`` keeps its previous content."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise RunError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
            "it may be truncated or from another program"
        ) from None


class RunPaths:
    """Where a run's files are (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.configuration = root / "configuration.yaml"
        self.run_logs = root / "run_logs"
        self.stats = self.run_logs / "stats.jsonl"
        self.status = self.run_logs / "training_status.json"

    @classmethod
    def of(cls, cfg: RunConfig) -> RunPaths:
        return cls(Path(cfg.results_dir) / cfg.run_id)

    def behavior_dir(self, behavior: str) -> Path:
        return self.root / behavior

    def latest_checkpoint(self, behavior: str) -> Path:
        return self.behavior_dir(behavior) / "checkpoint.pt"

    def policy(self, behavior: str) -> Path:
        """The final policy as ONNX, where ML-Agents puts it: results/<run_id>/<Behavior>.onnx."""
        return self.root / f"{behavior}.onnx"


def checkpoint_file(root: Path, behavior: str, stored: str) -> Path | None:
    """The file a training_status.json entry names, always inside this run folder: entries are stored
    relative to the run folder ("3DBall/3DBall-800.pt"); older absolute or cwd-relative ones (which name
    the folder the run was created in, not a copy of it) are mapped here by file name. None for an entry
    that names no checkpoint file."""
    name = Path(str(stored)).name
    if not name.endswith(".pt") or name in (".pt", "checkpoint.pt"):
        return None
    return root / behavior / name


def owned(root: Path, path: Path) -> bool:
    """Whether ``path`` (links resolved) lies inside the run folder ``root``: the only files a run deletes."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


@dataclass
class TrainingStatus:
    """run_logs/training_status.json: ML-Agents' layout plus mlx's metadata (MLflow run, elapsed time)."""

    behaviors: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> TrainingStatus:
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise RunError(f"{path} is corrupt ({exc}); remove it or start a new run_id") from None
        meta = data.pop("metadata", {})
        return cls(behaviors=data, metadata=meta)

    def save(self, path: Path) -> None:
        data = dict(self.behaviors)
        data["metadata"] = self.metadata
        atomic_write(path, json.dumps(data, indent=2).encode())


def save_checkpoint(
    paths: RunPaths,
    status: TrainingStatus,
    trainer: RLTrainer,
    keep: int,
    elapsed: float,
    reward: float | None,
    final: bool = False,
    lessons: Mapping[str, dict[str, Any]] | None = None,
) -> Path:
    """<Behavior>-<step>.pt (with its .onnx) and checkpoint.pt, the oldest beyond ``keep`` removed, and the
    status file naming them (with the curriculum's ``lessons``, saved with the checkpoints they belong to).
    The final checkpoint's policy is also copied to results/<run_id>/<Behavior>.onnx.

    checkpoint.pt (what resume loads) is replaced after the step's other files, so a write that fails (a
    full disk) leaves the previous checkpoint in charge: the new step's files and temporary files are
    removed and a one-line RunError says what happened. Only files inside the run folder are ever deleted."""
    name = trainer.behavior_name
    folder = paths.behavior_dir(name)
    path = folder / f"{name}-{trainer.step}.pt"
    onnx = path.with_suffix(".onnx")
    existed = path.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "trainer": trainer.state_dict(),
            "behavior": name,
            "behavior_spec": repr(trainer.spec),
            "time_elapsed": elapsed,
            "mlx_version": mlx.__version__,
        }
        atomic_torch_save(state, path)
        trainer.export(onnx)  # ML-Agents writes <Behavior>-<step>.onnx beside each .pt
        trainer.save_extras(folder)
        atomic_torch_save(state, paths.latest_checkpoint(name))
    except OSError as exc:
        for tmp in folder.glob(".*.tmp"):  # this process holds the run's lock: every .tmp here is its own
            tmp.unlink(missing_ok=True)
        if not existed:
            path.unlink(missing_ok=True)
            onnx.unlink(missing_ok=True)
        raise os_problem(exc, f"the checkpoint of {name} at step {trainer.step}") from None
    entry = status.behaviors.setdefault(name, {"checkpoints": [], "final_checkpoint": None})
    entry["checkpoints"] = [c for c in entry["checkpoints"] if c["steps"] != trainer.step]
    entry["checkpoints"].append(
        {"steps": trainer.step, "file_path": relative(paths, path), "reward": reward, "creation_time": time.time()}
    )
    while len(entry["checkpoints"]) > keep:
        old = checkpoint_file(paths.root, name, entry["checkpoints"].pop(0).get("file_path", ""))
        if old is not None and old != path and owned(paths.root, old):
            old.unlink(missing_ok=True)
            old.with_suffix(".onnx").unlink(missing_ok=True)
    try:
        if final:
            entry["final_checkpoint"] = relative(paths, path)
            atomic_write(paths.policy(name), onnx.read_bytes())
        status.metadata["time_elapsed"] = elapsed
        if lessons is not None:
            status.behaviors.update(lessons)
        status.save(paths.status)
    except OSError as exc:
        raise os_problem(exc, f"the training status of {name} at step {trainer.step}") from None
    return path


def relative(paths: RunPaths, path: Path) -> str:
    """``path`` as training_status.json stores it: relative to the run folder, so a copy stays its own."""
    return path.relative_to(paths.root).as_posix()


def truncate_stats(path: Path, max_step: int) -> None:
    """On resume, drop summary rows written after the checkpoint so the curve continues seamlessly."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= max_step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError):
            continue  # a line cut short by a kill
    atomic_write(path, ("\n".join(kept) + "\n" if kept else "").encode())
