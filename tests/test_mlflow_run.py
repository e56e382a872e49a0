"""How mlx's runs look in MLflow (mlx.tracking.mlflow_run), without a training run: params, tags, the store
hint, the link line, grid run names, force=true's superseded run, the experiment kind."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from mlx.config import TrackingSettings
from mlx.sweep.grid import run_name_override
from mlx.tracking.attach import attach, flat_metrics
from mlx.tracking.mlflow_run import (
    DEFAULT_URI,
    command_line,
    experiment_of,
    git_commit,
    legacy_store_hint,
    open_hint,
    run_params,
    source_tags,
)
from mlx.tracking.tracker import MlflowTracker

FAST = {"window": 0.4, "retry_every": 0.3, "busy_timeout": 0.2, "finish_wait": 5.0}


def test_params_keep_what_a_user_compares_and_drop_bookkeeping():
    flat = {
        "seed": 3,
        "env.name": "3dball",
        "env.num_areas": 4,
        "env.parameters.mass": 1.0,
        "env.bind": "127.0.0.1",
        "env.base_port": 5005,
        "trainer.trainer_type": "ppo",
        "trainer.max_steps": 1000,
        "trainer.time_horizon": 64,
        "trainer.hyperparameters.learning_rate": 3e-4,
        "trainer.network_settings.hidden_units": 128,
        "trainer.reward_signals.extrinsic.gamma": 0.99,
        "trainer.checkpoint_interval": 500,
        "trainer.keep_checkpoints": 5,
        "trainer.summary_freq": 100,
        "trainer.behavioral_cloning.demo_path": None,
        "trainer.behavioral_cloning.strength": 1.0,
        "behaviors.Walker.hyperparameters.beta": 0.01,
        "behaviors.Walker.keep_checkpoints": 2,
        "watch.fps": 30,
        "record.episodes": 5,
        "evaluate.episodes": 10,
        "engine_settings.time_scale": 20,
        "tracking.uri": DEFAULT_URI,
        "force": True,
        "progress": "plain",
        "mode": "train",
        "results_dir": "results",
        "debug": False,
        "initialize_from": None,
    }
    assert set(run_params(flat)) == {
        "seed",
        "env.name",
        "env.num_areas",
        "env.parameters.mass",
        "trainer.trainer_type",
        "trainer.max_steps",
        "trainer.time_horizon",
        "trainer.hyperparameters.learning_rate",
        "trainer.network_settings.hidden_units",
        "trainer.reward_signals.extrinsic.gamma",
        "behaviors.Walker.hyperparameters.beta",
    }
    with_demo = {**flat, "trainer.behavioral_cloning.demo_path": "demos/x.demo"}
    assert run_params(with_demo)["trainer.behavioral_cloning.strength"] == 1.0


def test_source_user_and_the_command_as_typed():
    assert (
        command_line(["/x/src/mlx/__main__.py", "env=3dball", "run_id=a b"]) == "python -m mlx env=3dball 'run_id=a b'"
    )
    assert command_line(["/usr/bin/mlx", "seed=1"]) == "mlx seed=1"
    tags = source_tags(["/x/src/mlx/__main__.py", "seed=1"])
    assert tags["mlflow.source.name"] == "mlx" and tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.user"] and tags["mlx.command"] == "python -m mlx seed=1"


def test_the_git_commit_of_the_working_folders_repository(tmp_path: Path):
    """Read from .git's files as git itself resolves HEAD: a loose ref, a packed ref, a worktree, a
    detached HEAD; nothing outside a repository."""
    import subprocess

    def git(*args: str, cwd: Path = tmp_path / "repo") -> str:
        env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t", "PATH": os.environ["PATH"], "HOME": str(tmp_path)}  # fmt: skip
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout

    assert git_commit(tmp_path) is None
    (tmp_path / "repo" / "conf").mkdir(parents=True)
    git("init", "-q")
    git("commit", "-q", "--allow-empty", "-m", "a")
    head = git("rev-parse", "HEAD").strip()
    assert git_commit(tmp_path / "repo" / "conf") == head  # from a folder inside the repository
    tags = source_tags(["mlx"], tmp_path / "repo")
    assert tags["mlflow.source.git.commit"] == head and tags["mlx.version"]
    git("pack-refs", "--all")
    assert git_commit(tmp_path / "repo") == head
    git("commit", "-q", "--allow-empty", "-m", "b")
    second = git("rev-parse", "HEAD").strip()
    git("worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"), head)
    assert git_commit(tmp_path / "wt") == head and git_commit(tmp_path / "repo") == second
    git("checkout", "-q", "--detach", head)
    assert git_commit(tmp_path / "repo") == head
    # Hostile or broken repositories give no commit, never an error: garbage HEAD, a ref that is not a
    # hash, a .git file pointing nowhere, binary junk, a huge HEAD.
    bad = tmp_path / "bad"
    (bad / ".git" / "refs" / "heads").mkdir(parents=True)
    for content in (b"garbage", b"ref: refs/heads/x", b"\xff\xfe\x00junk", b"a" * 10_000_000):
        (bad / ".git" / "HEAD").write_bytes(content)
        assert git_commit(bad) is None
    (bad / ".git" / "HEAD").write_text("ref: refs/heads/x\n")
    (bad / ".git" / "refs" / "heads" / "x").write_text("not-a-sha\n")
    assert git_commit(bad) is None
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".git").write_text("gitdir: /no/such/place\n")
    assert git_commit(elsewhere) is None


def test_an_old_mlruns_db_gets_one_line_saying_how_to_open_it(tmp_path: Path):
    assert legacy_store_hint(DEFAULT_URI, tmp_path) is None  # nothing old here
    (tmp_path / "mlruns.db").write_bytes(b"")
    line = legacy_store_hint(DEFAULT_URI, tmp_path)
    assert line is not None and "\n" not in line and "mlflow ui --backend-store-uri sqlite:///mlruns.db" in line
    assert legacy_store_hint("sqlite:///mlruns.db", tmp_path) is None  # the user chose it
    (tmp_path / "mlflow.db").write_bytes(b"")
    assert legacy_store_hint(DEFAULT_URI, tmp_path) is None  # the new store exists: said once already


def test_the_link_line_and_one_experiment_per_gymnasium_id():
    line = open_hint(DEFAULT_URI, "3dball", "1", "abc")
    assert line == (
        "[INFO] MLflow run abc in experiment '3dball': mlflow ui, then "
        "http://127.0.0.1:5000/#/experiments/1/runs/abc?workflowType=machine_learning"
    )
    assert "http://mlflow:5000/#/experiments/1/runs/abc" in open_hint("http://mlflow:5000/", "e", "1", "abc")
    assert "--backend-store-uri sqlite:///x.db" in open_hint("sqlite:///x.db", "e", "1", "abc")
    assert experiment_of("gym", "CartPole-v1") == "CartPole-v1" and experiment_of("3dball", None) == "3dball"


def test_grid_jobs_are_named_by_their_swept_values():
    job = ["seed=2", "trainer.hyperparameters.learning_rate=0.0003", "env.num_areas=4"]
    swept = {"seed", "trainer.hyperparameters.learning_rate"}
    assert run_name_override(job, swept) == "tracking.run_name='seed=2,learning_rate=0.0003'"
    clash = ["trainer.hyperparameters.beta=0.1", "behaviors.A.hyperparameters.beta=0.2"]
    both = {"trainer.hyperparameters.beta", "behaviors.A.hyperparameters.beta"}
    assert run_name_override(clash, both) == (
        "tracking.run_name='trainer.hyperparameters.beta=0.1,behaviors.A.hyperparameters.beta=0.2'"
    )


def test_experiments_are_model_training_and_force_supersedes_the_old_run(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = MlflowTracker(TrackingSettings(uri=uri), "exp", "run", {}, **FAST)
    first.finish()
    second = MlflowTracker(TrackingSettings(uri=uri), "exp", "run", {}, **FAST)
    second.supersede(first.run_id)
    second.finish()
    client = MlflowClient(tracking_uri=uri)
    assert client.get_experiment(first.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    old = client.get_run(first.run_id)
    assert old.info.lifecycle_stage == "deleted" and old.data.tags["mlx.superseded_by"] == second.run_id
    shown = client.search_runs([first.experiment_id], run_view_type=ViewType.ACTIVE_ONLY)
    assert [r.info.run_id for r in shown] == [second.run_id]


def test_evaluation_results_and_videos_go_to_the_run_they_evaluate(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'train.db'}"
    tracker = MlflowTracker(TrackingSettings(uri=uri), "exp", "run", {}, **FAST)
    tracker.finish()
    root = tmp_path / "results" / "r"
    (root / "run_logs").mkdir(parents=True)
    status = {"metadata": {"mlflow_run_id": tracker.run_id, "run_folder": str(root.resolve())}}
    (root / "run_logs" / "training_status.json").write_text(json.dumps(status))
    (root / "configuration.yaml").write_text(f"tracking:\n  uri: {uri}\n")  # the training's store, not the default
    (root / "run_logs" / "stats.jsonl").write_text(json.dumps({"behavior": "B", "step": 800}) + "\n")
    report = root / "run_logs" / "evaluation.json"
    report.write_text("{}")
    metrics = flat_metrics({"B": {"mean_return": 2.5, "episodes": 4}}, "Evaluation")
    assert attach(root, DEFAULT_URI, [(report, "evaluation")], metrics) == tracker.run_id
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(tracker.run_id)
    assert run.data.metrics == {"Evaluation/B/mean_return": 2.5, "Evaluation/B/episodes": 4.0}
    assert client.get_metric_history(tracker.run_id, "Evaluation/B/mean_return")[0].step == 800
    assert [f.path for f in client.list_artifacts(tracker.run_id, "evaluation")] == ["evaluation/evaluation.json"]
    # a copied folder is another run's: nothing attached to the original
    copy = tmp_path / "results" / "copy"
    shutil.copytree(root, copy)
    assert attach(copy, DEFAULT_URI, [(report, "evaluation")]) is None


def test_a_tracker_without_a_run_folder_keeps_its_sync_state_in_memory():
    """A sweep's parent run or a mode attaching to a run has no run_logs: its state must not be saved over a
    stand-in file (an atomic save over /dev/null replaced the device node when run as root)."""
    import os
    import stat

    from mlx.tracking.tracker import SyncState

    state = SyncState(None)
    state.run_id = "r"
    state.save()
    assert state.run_id == "r" and not state.known
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
