"""What makes an mlx run look, in MLflow, like the runs its users know: the store plain `mlflow ui` opens,
the model-training view, params a user compares, source/user/command tags, a line saying where to open the
run, and the final policy as an ONNX logged model.

Kept apart from the sender (mlx.tracking.tracker) so each stays small; nothing here imports mlflow at module
level (start-up speed).
"""

from __future__ import annotations

import getpass
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# MLflow 3's own default (mlflow.store.tracking.DEFAULT_TRACKING_URI): what plain `mlflow ui`, `mlflow server`
# and mlflow.search_runs() open in the working folder.
DEFAULT_URI = "sqlite:///mlflow.db"
LEGACY_DB = "mlruns.db"  # mlx's default before it followed MLflow's

# The MLflow UI's experiment kind: "custom_model_development" is the classic runs table (model training),
# as opposed to the GenAI traces view. MLflow 3.17's UI picks the view from its workflowType switch (the
# URL's ?workflowType=machine_learning, then the browser's last choice), earlier 3.x UIs from this tag:
# mlx sets both, the tag on every experiment it creates and the parameter in every link it prints.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
ML_VIEW = "workflowType=machine_learning"

# Params: what tells two runs' learning apart. The rest of the configuration (modes' settings, paths,
# tracking, engine and process settings) is in the run's configuration.yaml artifact.
PARAM_PREFIXES = ("trainer.", "behaviors.", "env.", "environment_parameters.", "lesson")
PARAM_KEYS = ("seed", "initialize_from", "environment_parameters", "behaviors")
NOT_PARAMS = {
    "env.bind",
    "env.base_port",
    "env.path",
    "env.subprocess",
    "env.timeout_wait",
    "env.max_lifetime_restarts",
    "env.restarts_rate_limit_n",
    "env.restarts_rate_limit_period_s",
    "env.max_message_mb",
}
NOT_TRAINER = ("checkpoint_interval", "keep_checkpoints", "even_checkpoints", "summary_freq", "threaded", "init_path")


def experiment_of(env_name: str, env_id: str | None) -> str:
    """The default experiment: the env's name, or for Gymnasium (env=gym) its id (CartPole-v1), one
    experiment per environment either way."""
    return str(env_id) if env_name == "gym" and env_id else env_name


def is_param(key: str) -> bool:
    """True for a flattened configuration key a user compares runs by (hyperparameters, network, reward
    signals, env and its parameters, seed); False for bookkeeping (watch.*, record.*, tracking.*, ...)."""
    if key in NOT_PARAMS:
        return False
    if key.startswith(("trainer.", "behaviors.")) and key.rsplit(".", 1)[-1] in NOT_TRAINER:
        return False
    return key in PARAM_KEYS or key.startswith(PARAM_PREFIXES)


def run_params(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The MLflow params of a run from its flattened configuration: the keys is_param keeps, unset ones
    (None, empty) left out so that the runs table shows only what was set."""
    kept = {k: v for k, v in flat.items() if is_param(k) and v is not None and v != {} and v != []}
    for prefix in {k.rsplit(".", 1)[0] for k in flat if k.endswith(".behavioral_cloning.demo_path")}:
        if flat.get(f"{prefix}.demo_path") is None:  # no demonstrations: its settings do nothing
            kept = {k: v for k, v in kept.items() if not k.startswith(f"{prefix}.")}
    return kept


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed: `python -m mlx ...` when run as a module, else the script's name and args."""
    argv = list(sys.argv if argv is None else argv)
    head = argv[0] if argv else "mlx"
    if Path(head).name == "__main__.py" and Path(head).parent.name == "mlx":
        words = ["python", "-m", "mlx"]
    else:
        words = [Path(head).name or "mlx"]
    return shlex.join(words + argv[1:])


def source_tags(argv: list[str] | None = None, folder: Path | None = None) -> dict[str, str]:
    """MLflow's source and user tags (the UI's Source and User columns), the exact command (mlx.command),
    mlx's version, and the git commit of the working folder's repository when it is one (where a user keeps
    the configs a run was composed from; the UI shows it as the run's Git Commit)."""
    import mlx

    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        user = os.environ.get("USER", "unknown")
    command = command_line(argv)
    tags = {
        "mlflow.source.name": command.split(" ", 1)[0] if not command.startswith("python -m mlx") else "mlx",
        "mlflow.source.type": "LOCAL",
        "mlflow.user": user,
        "mlx.command": command,
        "mlx.version": mlx.__version__,
    }
    if commit := git_commit(folder or Path.cwd()):
        tags["mlflow.source.git.commit"] = commit
    return tags


def git_commit(folder: Path) -> str | None:
    """HEAD's commit of the git repository holding ``folder``, read from its files (no git process: this
    runs at every start); None outside a repository or for anything unexpected (a detached worktree layout,
    a ref only in a reftable)."""
    try:
        for parent in (folder.resolve(), *folder.resolve().parents):
            dot = parent / ".git"
            if dot.is_file():  # a worktree or submodule: "gitdir: <path>"
                text = _small_text(dot)
                if not text.startswith("gitdir:"):
                    return None
                dot = (parent / text[len("gitdir:") :].strip()).resolve()
            if not dot.is_dir():
                continue
            head = _small_text(dot / "HEAD")
            if not head.startswith("ref:"):
                return head if _is_sha(head) else None
            ref = head[len("ref:") :].strip()
            common = dot / "commondir"  # a worktree's refs live in the main repository
            roots = [dot] + ([(dot / _small_text(common)).resolve()] if common.is_file() else [])
            for root in roots:
                if (root / ref).is_file():
                    sha = _small_text(root / ref)
                    return sha if _is_sha(sha) else None
            for root in roots:
                packed = root / "packed-refs"
                if packed.is_file():
                    for line in packed.read_text(encoding="utf-8").splitlines():
                        sha, _, name = line.partition(" ")
                        if name == ref and _is_sha(sha):
                            return sha
            return None
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _small_text(path: Path) -> str:
    """A git pointer file's text (HEAD, a ref, .git's gitdir line): a few bytes; more is not one."""
    with path.open("rb") as f:
        return f.read(4096).decode("utf-8").strip()


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def legacy_store_hint(uri: str, folder: Path | None = None) -> str | None:
    """One warning line when the default store is about to be created beside an older mlx's mlruns.db: the
    new runs go to mlflow.db (what plain `mlflow ui` opens); the old ones stay readable where they are."""
    folder = folder or Path.cwd()
    if uri != DEFAULT_URI or (folder / "mlflow.db").exists() or not (folder / LEGACY_DB).exists():
        return None
    return (
        f"[WARNING] {LEGACY_DB} here holds runs of an older mlx; new runs go to mlflow.db (MLflow's default, "
        f"what plain `mlflow ui` opens). Browse the old ones with: mlflow ui --backend-store-uri "
        f"sqlite:///{LEGACY_DB} (or keep one store: mv {LEGACY_DB} mlflow.db before the next run, or "
        f"tracking.uri=sqlite:///{LEGACY_DB})"
    )


def open_hint(uri: str, experiment_name: str, experiment_id: str, run_id: str) -> str:
    """The line a run prints at start: its MLflow run, experiment, and how to open it in the UI."""
    page = f"#/experiments/{experiment_id}/runs/{run_id}?{ML_VIEW}"
    head = f"[INFO] MLflow run {run_id} in experiment '{experiment_name}'"
    if uri.startswith(("http://", "https://")):
        return f"{head}: {uri.rstrip('/')}/{page}"
    if uri == DEFAULT_URI:
        return f"{head}: mlflow ui, then http://127.0.0.1:5000/{page}"
    return f"{head}: mlflow ui --backend-store-uri {uri}, then http://127.0.0.1:5000/{page}"


def onnx_signature(model: Any) -> Any:
    """The ModelSignature of an ONNX policy: its graph's inputs (the observation specs, action masks) and
    outputs (the action specs), as tensors with a free batch dimension."""
    import numpy as np
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec  # lazy for start-up speed (mlflow)
    from onnx import helper

    def spec(value: Any) -> Any:
        kind = value.type.tensor_type
        shape = tuple(-1 if (d.dim_param or not d.dim_value) else d.dim_value for d in kind.shape.dim)
        return TensorSpec(np.dtype(helper.tensor_dtype_to_np_dtype(kind.elem_type)), shape, value.name)

    initializers = {i.name for i in model.graph.initializer}
    inputs = [spec(v) for v in model.graph.input if v.name not in initializers]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([spec(v) for v in model.graph.output]))


def log_onnx_model(client: Any, run_id: str, path: Path, name: str) -> str:
    """Log the policy file at ``path`` as an MLflow model (ONNX flavour, with its signature) of the run;
    returns the logged model's id. Called from the tracker's sender thread: onnx and mlflow.onnx take about
    a second to import, and the save writes a copy of the model."""
    import mlflow.onnx  # lazy: about 1 s
    import onnx
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    model = onnx.load(str(path))
    run = client.get_run(run_id)
    # created here so that it belongs to the run's experiment (log_model alone picks the active experiment)
    logged = client.create_logged_model(run.info.experiment_id, name=name, source_run_id=run_id, model_type="policy")
    with _use_tracking_uri(client.tracking_uri):
        info = mlflow.onnx.log_model(
            model,
            name=name,
            run_id=run_id,
            model_id=logged.model_id,
            signature=onnx_signature(model),
            pip_requirements=[f"onnx=={onnx.__version__}", "onnxruntime"],  # no slow inference of them
            save_as_external_data=False,
        )
    return str(info.model_id)
