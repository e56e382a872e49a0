"""The run's files: where they live, atomic writes, checkpoints and run_logs/training_status.json.

results/<run_id>/ holds configuration.yaml (every option resolved), run_logs/stats.jsonl (one row per
summary), run_logs/training_status.json (checkpoints per behaviour, named relative to the run folder; the
MLflow run id and the folder the run belongs to) and, per behaviour, <Behavior>/<Behavior>-<step>.pt
checkpoints plus checkpoint.pt (the newest, used to resume). Files are written atomically, so a run killed
at any moment leaves the last checkpoint intact; a run deletes only files inside its own folder.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import mlx
from mlx.config import RunConfig
from mlx.errors import RunError, one_line_error, os_problem
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


SAFE_LOADING = "only tensors and plain data are loaded"
# What a trainer's load_state_dict raises on a state of another shape: a missing key, a tensor of another
# size, a value of another type (bugs in mlx itself raise other errors and keep their traceback).
STATE_MISMATCH = (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents, read by torch's weights_only unpickler: tensors, numbers, strings and
    containers of them, never an object whose unpickling could run code (a crafted .pt is refused, nothing in it run).
    Anything but an mlx checkpoint (a dict with a ``trainer`` dict) is one RunError naming the file."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr: one line only
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"it names {found.group(1)}" if found else "it is not a torch checkpoint"
        raise RunError(
            f"checkpoint {path} was refused without running anything ({what}): {SAFE_LOADING}; "
            "give a .pt file written by mlx"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        text = re.sub(r"^\[enforce fail at [^\]]*\][\s.]*", "", one_line_error(exc))
        reason = text.split(". ")[0][:160]  # torch's first sentence; the rest is advice for its developers
        raise RunError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}{': ' + reason if reason else ''}); "
            "it may be truncated or from another program; give a .pt file written by mlx"
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("trainer"), dict):
        raise RunError(
            f"checkpoint {path} is not an mlx checkpoint (a dict with a 'trainer' entry, {SAFE_LOADING}); "
            "give a .pt file written by mlx"
        )
    elapsed = state.get("time_elapsed", 0.0)
    if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or not math.isfinite(elapsed):
        raise RunError(f"checkpoint {path} is corrupt: time_elapsed is {elapsed!r:.40}; give a .pt file written by mlx")
    return state


def resume_trainer(trainer: RLTrainer, path: Path) -> float:
    """Put a checkpoint's full state (weights, optimiser, step, RNGs) into ``trainer``; returns the run's
    elapsed time at that checkpoint. A state that does not fit the trainer is one RunError."""
    state = load_checkpoint(path)
    spec = state.get("behavior_spec")
    if isinstance(spec, str) and spec != repr(trainer.spec):
        raise RunError(
            f"checkpoint {path} was trained on another {trainer.behavior_name} (observations/actions {spec[:200]}, "
            f"now {trainer.spec!r}); resume with the run's own env, or start a new run_id"
        )
    try:
        trainer.load_state_dict(state["trainer"])
    except STATE_MISMATCH as exc:
        raise RunError(
            f"checkpoint {path} does not fit this run's {trainer.behavior_name} trainer ({one_line_error(exc)[:160]}); "
            "resume with the run's own settings (run_id=<id> resume=true alone), or start a new run_id"
        ) from None
    return float(state.get("time_elapsed", 0.0))


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
        fix = "restore it, or remove it to resume from the checkpoints alone (the MLflow run and lessons start anew)"
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError) as exc:  # ValueError: not JSON, not UTF-8
            raise RunError(f"{path} cannot be read ({one_line_error(exc)[:120]}); {fix}") from None
        problem = status_problem(data)
        if problem:
            raise RunError(f"{path} is corrupt: {problem}; {fix}")
        meta = data.pop("metadata", {})
        return cls(behaviors=data, metadata=meta)

    def save(self, path: Path) -> None:
        data = dict(self.behaviors)
        data["metadata"] = self.metadata
        atomic_write(path, json.dumps(data, indent=2).encode())


def _is_number(value: Any) -> bool:
    """A finite JSON number (an int of any size is finite; math.isfinite would overflow on a huge one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _checkpoint_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "is not an object"
    steps, file_path = entry.get("steps"), entry.get("file_path")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        return f"has steps {steps!r:.40}, not a step count"
    if not isinstance(file_path, str):
        return f"has file_path {file_path!r:.40}, not a path"
    return None


def status_problem(data: Any) -> str | None:
    """What is wrong with a training_status.json's contents (None: the fields mlx reads have their types):
    an object of behaviours (checkpoints, final_checkpoint) and curriculum lessons (lesson_num, smoothing)
    plus ``metadata``."""
    if not isinstance(data, dict):
        return f"it holds a {type(data).__name__}, not an object"
    meta = data.get("metadata", {})
    if not isinstance(meta, dict):
        return "metadata is not an object"
    if not isinstance(meta.get("mlflow_run_id"), (str, type(None))):
        return "metadata.mlflow_run_id is not a string"
    if "time_elapsed" in meta and not _is_number(meta["time_elapsed"]):
        return "metadata.time_elapsed is not a number"
    for name, entry in data.items():
        if name == "metadata":
            continue
        if not isinstance(entry, dict):
            return f"'{name}' is not an object"
        checkpoints = entry.get("checkpoints", [])
        if not isinstance(checkpoints, list):
            return f"'{name}'.checkpoints is not a list"
        for i, checkpoint in enumerate(checkpoints):
            problem = _checkpoint_problem(checkpoint)
            if problem:
                return f"'{name}'.checkpoints[{i}] {problem}"
        if not isinstance(entry.get("final_checkpoint"), (str, type(None))):
            return f"'{name}'.final_checkpoint is not a path"
        lesson = entry.get("lesson_num", 0)
        if isinstance(lesson, bool) or not isinstance(lesson, int):
            return f"'{name}'.lesson_num is not an integer"
        if "smoothing" in entry and not _is_number(entry["smoothing"]):
            return f"'{name}'.smoothing is not a number"
    return None


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
    entry.update(trainer.status())
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


def truncate_stats(path: Path, steps: int | Mapping[str, int]) -> None:
    """On resume, drop the summary rows written after the checkpoint so each curve continues seamlessly.
    ``steps``: each behaviour's own checkpoint step (behaviours step at their own rates: one behaviour's
    rows after another's checkpoint are kept; a behaviour missing from it has no checkpoint: its rows go),
    or one step for every row. Lines that are no row (cut short by a kill) go too."""
    if not path.exists():
        return
    kept = []
    for line in path.read_bytes().decode(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a line cut short by a kill
        step = row.get("step") if isinstance(row, dict) else None
        if isinstance(steps, int):
            last: int | None = steps
        else:
            behavior = row.get("behavior") if isinstance(row, dict) else None
            last = int(steps.get(behavior, 0)) if isinstance(behavior, str) else None
        if last is not None and _is_number(step) and step <= last:
            kept.append(line)
    atomic_write(path, ("\n".join(kept) + "\n" if kept else "").encode())


def init_checkpoint(cfg: RunConfig, behavior: str) -> tuple[Path, str] | None:
    """The checkpoint a new run initialises ``behavior`` from, and the setting that names it (for messages);
    None: it starts from scratch. ML-Agents' rule: with initialize_from, a behaviour without init_path takes
    results/<initialize_from>/<behavior>/checkpoint.pt and a bare file name in init_path is looked up in
    that same folder; any other init_path (a path with a folder) is used as given, as it is without
    initialize_from. The file must be a .pt checkpoint that exists: otherwise one RunError line naming the
    setting and what the folder holds."""
    init_path = cfg.trainer_for(behavior).init_path
    key = f"behaviors.{behavior}.init_path" if behavior in cfg.behaviors else "trainer.init_path"
    if cfg.initialize_from:
        folder = Path(cfg.results_dir) / str(cfg.initialize_from) / behavior
        if not init_path:
            path, source = folder / "checkpoint.pt", f"initialize_from={cfg.initialize_from}"
        elif Path(init_path).parent == Path("."):
            path, source = folder / init_path, f"{key}={init_path} (in initialize_from={cfg.initialize_from})"
        else:
            path, source = Path(init_path), f"{key}={init_path}"
    elif init_path:
        path, source = Path(init_path), f"{key}={init_path}"
    else:
        return None
    if path.suffix != ".pt":
        raise RunError(f"{source}: {path} is not a .pt checkpoint; name a checkpoint file such as checkpoint.pt")
    if not path.is_file():
        raise RunError(f"{source}: no checkpoint at {path}; {_checkpoints_in(path.parent)}")
    return path, source


def _checkpoints_in(folder: Path, shown: int = 8) -> str:
    """What a missing checkpoint's folder offers instead, for the error message."""
    if not folder.is_dir():
        return f"{folder} does not exist (name a finished run_id, or the full path of a .pt file)"
    found = sorted((p.name for p in folder.glob("*.pt")), key=lambda n: (n != "checkpoint.pt", n))
    if not found:
        return f"{folder} holds no .pt checkpoint"
    more = f" and {len(found) - shown} more" if len(found) > shown else ""
    return f"{folder} holds {', '.join(found[:shown])}{more}"
