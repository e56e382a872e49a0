"""`python -m mlx` end to end with tiny budgets: results layout, MLflow, refusal, resume, SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import yaml

from tests.conftest import TINY_3DBALL, run_mlx, start_mlx

# A small but real 3DBall run: 4 areas, summaries every 400 agent steps, checkpoints every 800.
TINY = [*TINY_3DBALL, "trainer.summary_freq=400", "trainer.checkpoint_interval=800", "trainer.keep_checkpoints=2"]


def stats_rows(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "run_logs" / "stats.jsonl").read_text().splitlines()]


def test_run_leaves_ml_agents_layout_and_tracks_in_mlflow(workdir):
    proc = run_mlx(*TINY, "trainer.max_steps=2000", "run_id=tiny", "tracking.uri=sqlite:///mlruns.db", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    root = workdir / "results" / "tiny"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[INFO] 3DBall. Step:")]
    assert len(lines) == 5
    assert re.fullmatch(
        r"\[INFO\] 3DBall\. Step: 400\. Time Elapsed: \d+\.\d{3} s\. "
        r"(Mean Reward: -?\d+\.\d{3}\. Std of Reward: \d+\.\d{3}\.|No episode was completed since last summary\.)"
        r" Training\.",
        lines[0],
    ), lines[0]

    config = yaml.safe_load((root / "configuration.yaml").read_text())
    assert config["trainer"]["hyperparameters"]["buffer_size"] == 400
    assert config["trainer"]["network_settings"]["normalize"] is True  # tuned 3DBall defaults applied
    assert config["seed"] == 3

    rows = stats_rows(root)
    assert [r["step"] for r in rows] == [400, 800, 1200, 1600, 2000]
    for key in (
        "mean_reward",
        "std_reward",
        "episodes",
        "time_elapsed",
        "steps_per_sec",
        "Environment/Cumulative Reward",
        "Losses/Policy Loss",
        "Losses/Value Loss",
        "Policy/Learning Rate",
        "Policy/Entropy",
    ):
        assert key in rows[-1], key

    status = json.loads((root / "run_logs" / "training_status.json").read_text())
    ckpts = status["3DBall"]["checkpoints"]
    assert [c["steps"] for c in ckpts] == [1600, 2000]  # keep_checkpoints=2 pruned the older ones
    assert status["3DBall"]["final_checkpoint"].endswith("3DBall-2000.pt")
    assert (root / "3DBall" / "checkpoint.pt").exists()
    assert not (root / "3DBall" / "3DBall-800.pt").exists()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns.db'}")
    run = client.get_run(status["metadata"]["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.hyperparameters.buffer_size"] == "400"
    history = client.get_metric_history(run.info.run_id, "Environment/Cumulative Reward")
    assert [m.step for m in history] == [r["step"] for r in rows if r["episodes"]]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "configuration.yaml" in artifacts and "checkpoints" in artifacts

    # The same run_id again is refused, and nothing already saved is touched.
    again = run_mlx(*TINY, "trainer.max_steps=2000", "run_id=tiny", "tracking=none", cwd=workdir)
    assert again.returncode == 2
    assert "already exists" in again.stderr and "resume=true" in again.stderr
    assert stats_rows(root) == rows

    # resume=true with a larger budget continues the step count and the curve.
    more = run_mlx(
        *TINY, "trainer.max_steps=2800", "run_id=tiny", "resume=true", "tracking.uri=sqlite:///mlruns.db", cwd=workdir
    )
    assert more.returncode == 0, more.stderr
    assert [r["step"] for r in stats_rows(root)] == [400, 800, 1200, 1600, 2000, 2400, 2800]
    resumed = client.get_run(status["metadata"]["mlflow_run_id"])
    assert resumed.info.status == "FINISHED"
    assert max(m.step for m in client.get_metric_history(run.info.run_id, "Losses/Value Loss")) == 2800


def test_initialize_from_starts_a_new_count_from_old_weights(workdir):
    assert run_mlx(*TINY, "trainer.max_steps=800", "run_id=src", "tracking=none", cwd=workdir).returncode == 0
    proc = run_mlx(*TINY, "trainer.max_steps=800", "run_id=dst", "initialize_from=src", "tracking=none", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert [r["step"] for r in stats_rows(workdir / "results" / "dst")] == [400, 800]
    missing = run_mlx(*TINY, "run_id=x", "initialize_from=nope", "tracking=none", cwd=workdir)
    assert missing.returncode == 2 and "initialize_from=nope" in missing.stderr
    other_net = run_mlx(
        *TINY,
        "run_id=y",
        "initialize_from=src",
        "trainer.network_settings.hidden_units=32",
        "tracking=none",
        cwd=workdir,
    )
    assert other_net.returncode == 2 and "does not fit" in other_net.stderr

    # The weights really are the source run's: compare in-process before any training.
    import torch
    from hydra import compose, initialize_config_dir

    from mlx.config import CONF_DIR, register_configs, validate
    from mlx.training.run import Run

    register_configs()
    src = torch.load(workdir / "results/src/3DBall/checkpoint.pt", weights_only=True)["trainer"]["module"]
    for how in ("initialize_from=src", f"trainer.init_path={workdir / 'results/src/3DBall/3DBall-800.pt'}"):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = validate(compose("config", overrides=[*TINY, "run_id=z", how, f"results_dir={workdir / 'results'}"]))
        job = Run(cfg)
        job.build()
        job.restore()
        mine = job.trainers["3DBall"].module.state_dict()
        assert all(torch.equal(mine[k], v) for k, v in src.items()), how
        assert job.trainers["3DBall"].step == 0


def test_resume_without_a_run_is_refused(workdir):
    proc = run_mlx(*TINY, "run_id=ghost", "resume=true", "tracking=none", cwd=workdir)
    assert proc.returncode == 2
    assert "nothing to resume" in proc.stderr


def test_sigkill_then_resume_continues_from_the_last_checkpoint(workdir):
    args = [*TINY, "trainer.max_steps=8000", "run_id=killed", "tracking.uri=sqlite:///mlruns.db"]
    root = workdir / "results" / "killed"
    proc = start_mlx(*args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status_path = root / "run_logs" / "training_status.json"
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            if status_path.exists():
                status = json.loads(status_path.read_text())
                if len(status.get("3DBall", {}).get("checkpoints", [])) >= 2:
                    break
            if proc.poll() is not None:
                raise AssertionError("the run ended before it could be killed; raise max_steps")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    status = json.loads(status_path.read_text())
    last_ckpt = max(c["steps"] for c in status["3DBall"]["checkpoints"])
    assert last_ckpt < 8000
    before = [r["step"] for r in stats_rows(root)]

    resumed = run_mlx(*args, "resume=true", cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    first_line = next(ln for ln in resumed.stdout.splitlines() if ln.startswith("[INFO] 3DBall. Step:"))
    assert int(re.search(r"Step: (\d+)\.", first_line).group(1)) == last_ckpt + 400
    steps = [r["step"] for r in stats_rows(root)]
    assert steps == list(range(400, 8001, 400)), (before, steps)
    times = [r["time_elapsed"] for r in stats_rows(root)]
    assert times == sorted(times)  # elapsed time continues too
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns.db'}")
    runs = client.search_runs([client.get_experiment_by_name("3dball").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"


def test_sac_resume_restores_the_saved_replay_buffer(workdir):
    args = [
        "trainer=sac",
        "env=3dball",
        "env.num_areas=4",
        "seed=2",
        "run_id=sacr",
        "tracking=none",
        "trainer.hyperparameters.save_replay_buffer=true",
        "trainer.hyperparameters.buffer_size=1000",
        "trainer.hyperparameters.batch_size=32",
        "trainer.summary_freq=400",
        "trainer.checkpoint_interval=800",
        "progress=plain",
    ]
    assert run_mlx(*args, "trainer.max_steps=1600", cwd=workdir).returncode == 0
    import numpy as np

    saved = np.load(workdir / "results/sacr/3DBall/replay_buffer.npz")
    assert int(saved["size"]) == 1000  # 1600 transitions into a 1000-slot ring: bounded
    more = run_mlx(*args, "trainer.max_steps=2000", "resume=true", cwd=workdir)
    assert more.returncode == 0, more.stderr
    assert [r["step"] for r in stats_rows(workdir / "results/sacr")] == [400, 800, 1200, 1600, 2000]


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(workdir):
    args = [
        *TINY,
        "trainer.max_steps=200000",
        "trainer.checkpoint_interval=100000",
        "run_id=intr",
        "tracking.uri=sqlite:///mlruns.db",
    ]
    root = workdir / "results" / "intr"
    proc = start_mlx(*args, cwd=workdir)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
        (root / "run_logs" / "stats.jsonl").exists() and len(stats_rows(root)) >= 3
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted: saved" in out and "resume=true" in out
    status = json.loads((root / "run_logs" / "training_status.json").read_text())
    saved = status["3DBall"]["checkpoints"][-1]["steps"]
    assert saved >= 1200 and (root / "3DBall" / f"3DBall-{saved}.pt").exists()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns.db'}")
    assert client.get_run(status["metadata"]["mlflow_run_id"]).info.status == "KILLED"
    resumed = run_mlx(
        *args[:-4], f"trainer.max_steps={saved + 800}", "run_id=intr", "resume=true", "tracking=none", cwd=workdir
    )
    assert resumed.returncode == 0, resumed.stderr
    assert stats_rows(root)[-1]["step"] >= saved + 400


def test_non_finite_observations_stop_the_run_and_keep_the_last_checkpoint(tmp_path):
    """An env that starts emitting NaN observations mid-run: training stops with TrainingError, and the
    checkpoints written before are intact and finite."""
    import math

    import pytest
    import torch
    from hydra import compose, initialize_config_dir

    from mlx.config import CONF_DIR, register_configs, validate
    from mlx.errors import describe
    from mlx.trainers import TrainingError
    from mlx.training.run import Run

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = validate(compose("config", overrides=[*TINY, "run_id=nan", "tracking=none", f"results_dir={tmp_path}"]))
    job = Run(cfg)
    job.build()
    env = job.env
    real_get_steps = env.get_steps
    calls = {"n": 0}

    def poisoned(name):
        decision, terminal = real_get_steps(name)
        calls["n"] += 1
        if calls["n"] > 300:  # after 1200 agent steps, i.e. after the checkpoint at 800
            decision.obs[0][:] = math.nan
        return decision, terminal

    env.get_steps = poisoned
    job.prepare_folder()
    job.restore()
    job.start_tracking()
    with pytest.raises(TrainingError) as err:
        job.train()
    line = describe(err.value)
    assert "non-finite observation" in line and "3DBall" in line and "\n" not in line
    state = torch.load(tmp_path / "nan/3DBall/checkpoint.pt", weights_only=True)
    assert state["trainer"]["step"] >= 800
    assert all(torch.isfinite(v).all() for v in state["trainer"]["module"].values() if v.is_floating_point())


def test_nan_loss_stops_with_advice_before_touching_the_weights():
    import math

    import pytest
    import torch

    from mlx.config import ExtrinsicSettings, PPOHyperparameters, PPOSettings
    from mlx.envs import make_env
    from mlx.trainers import TrainingError
    from mlx.trainers.ppo.trainer import PPOTrainer

    env = make_env("3dball", 4, seed=0)
    settings = PPOSettings(hyperparameters=PPOHyperparameters(batch_size=16, buffer_size=64), time_horizon=8)
    trainer = PPOTrainer(
        "3DBall", env.behavior_specs["3DBall"], settings, {"extrinsic": ExtrinsicSettings()}, torch.device("cpu")
    )
    env.reset()
    while not trainer.ready_to_update():
        d, t = env.get_steps("3DBall")
        env.set_actions("3DBall", trainer.process(d, t))
        env.step()
    with torch.no_grad():
        trainer.module.critic.heads.bias.fill_(math.nan)  # a diverged value head
    before = {k: v.clone() for k, v in trainer.module.actor.state_dict().items()}
    with pytest.raises(TrainingError, match=r"PPO loss became nan at step \d+.*learning_rate"):
        trainer.update()
    after = trainer.module.actor.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_run_uses_torch_settings_num_threads_for_numpy_blas_too(tmp_path):
    """OpenBLAS defaults to a thread per core; two runs side by side then spin against each other."""
    from hydra import compose, initialize_config_dir
    from threadpoolctl import threadpool_info, threadpool_limits

    from mlx.config import CONF_DIR, register_configs, validate
    from mlx.training.run import Run

    register_configs()
    with threadpool_limits(limits=None):  # restore this process's BLAS settings afterwards
        for threads in (2, 1) if (os.cpu_count() or 1) > 1 else (1,):
            overrides = [*TINY, "run_id=t", "tracking=none", f"torch_settings.num_threads={threads}"]
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                cfg = validate(compose("config", overrides=[*overrides, f"results_dir={tmp_path}"]))
            job = Run(cfg)
            job.build()
            job.env.close()
            blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
            assert blas and all(lib["num_threads"] == threads for lib in blas)


def test_a_typo_is_refused_before_the_heavy_libraries_are_imported(tmp_path):
    """Issue 22: a bad override costs Hydra's composition only; PyTorch, Lightning, MLflow, matplotlib and
    ONNX are imported when a run (or a mode) needs them."""
    import sys

    script = (
        "import sys, atexit\n"
        "atexit.register(lambda: sys.stderr.write('LOADED ' + ' '.join(sorted(sys.modules)) + '\\n'))\n"
        "from mlx.__main__ import main\n"
        "sys.argv = ['mlx', 'trainer.hyperparameters.batch_sise=64']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown key 'trainer.hyperparameters.batch_sise'" in proc.stderr
    loaded = set(next(line for line in proc.stderr.splitlines() if line.startswith("LOADED ")).split()[1:])
    heavy = {"torch", "lightning", "mlflow", "matplotlib", "onnx", "onnxruntime", "scipy", "sqlalchemy"}
    assert not heavy & {name.split(".")[0] for name in loaded}


def test_a_resume_finds_its_mlflow_run_in_mlflow_sync_json_and_refuses_nothing_for_a_hostile_id(workdir):
    """The MLflow run opens beside training, so a process killed before the status named it left its id only in
    run_logs/mlflow_sync.json (written as the run is created): resume continues that run. A hostile id there
    (a path, not a run) costs a new MLflow run and one warning, nothing else."""
    from mlflow.tracking import MlflowClient

    args = [*TINY, "run_id=sync", "tracking.uri=sqlite:///mlruns.db"]
    assert run_mlx(*args, "trainer.max_steps=800", cwd=workdir).returncode == 0
    status_path = workdir / "results" / "sync" / "run_logs" / "training_status.json"
    sync_path = status_path.with_name("mlflow_sync.json")
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("3dball").experiment_id

    status = json.loads(status_path.read_text())
    first = status["metadata"].pop("mlflow_run_id")
    status_path.write_text(json.dumps(status))
    assert json.loads(sync_path.read_text())["run_id"] == first
    resumed = run_mlx(*args, "trainer.max_steps=1200", "resume=true", cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert [r.info.run_id for r in client.search_runs([experiment])] == [first]

    status = json.loads(status_path.read_text())
    status["metadata"].pop("mlflow_run_id")
    status_path.write_text(json.dumps(status))
    sync = json.loads(sync_path.read_text())
    sync["run_id"] = "../../../etc/passwd"
    sync_path.write_text(json.dumps(sync))
    again = run_mlx(*args, "trainer.max_steps=1600", "resume=true", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "is not in" in again.stderr and again.stderr.count("\n") == 1, again.stderr
    runs = client.search_runs([experiment])
    assert len(runs) == 2 and first in {r.info.run_id for r in runs}
