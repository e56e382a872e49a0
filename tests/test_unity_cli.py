"""`python -m mlx env=unity ...` end to end: env processes launched like Unity builds, restarts, config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlx.config import ConfigError, validate
from tests.conftest import compose_tree, mlx_command, run_mlx


def launcher(folder: Path, env_name: str) -> Path:
    """A stand-in for a Unity build: an executable that runs a native env as an ML-Agents env process."""
    path = folder / f"{env_name}_build.sh"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mlx.envs.unity.remote {env_name} "$@"\n')
    path.chmod(0o755)
    return path


def stats_rows(workdir: Path, run_id: str) -> list[dict]:
    lines = (workdir / "results" / run_id / "run_logs" / "stats.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["env=unity", "env.num_envs=2"], "env.path=null waits for the Unity Editor"),
        (["env=3dball", "env.path=/bin/true"], "env.path is only for env=unity"),
        (["env=unity", "env.subprocess=true"], "env.subprocess=true is for native envs"),
        (["env=unity", "env.path=x", "env.timeout_wait=0"], "env.timeout_wait must be > 0"),
        (["env=unity", "env.path=x", "env.max_lifetime_restarts=-2"], "env.max_lifetime_restarts must be >= 0"),
        (["env=unity", "env.path=x", "env.base_port=65535", "env.num_envs=2"], "env.base_port must leave room"),
        (["env=unity", "env.base_port=0"], "env.base_port=0 (any free port) needs env.path"),
        (["env=3dball", "env.num_envs=0"], "env.num_envs must be > 0"),
    ],
)
def test_bad_env_process_settings_are_refused_by_name(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(compose_tree(*overrides))


def test_a_tuned_config_applies_to_a_remote_env_by_name():
    tree = compose_tree("env=unity", "env.path=x", "tuned=3dball_ppo")
    assert tree["trainer"]["hyperparameters"]["batch_size"] == 64  # upstream 3DBall PPO values
    assert tree["trainer"]["time_horizon"] == 1000


def test_a_killed_env_process_is_restarted_and_training_continues(workdir):
    build = launcher(workdir, "3dball")
    cmd = mlx_command(
        "env=unity",
        f"env.path={build}",
        "env.num_envs=2",
        "env.num_areas=4",
        "env.base_port=0",
        "env.timeout_wait=30",
        "tuned=3dball_ppo",
        "trainer.hyperparameters.buffer_size=400",
        "trainer.hyperparameters.batch_size=50",
        "trainer.summary_freq=400",
        "trainer.max_steps=4000",
        "seed=2",
        "run_id=k",
        "tracking=none",
        "progress=plain",
    )
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    lines: list[str] = []
    killed = None
    deadline = time.monotonic() + 240
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if killed is None and line.startswith("[INFO] 3DBall. Step: 800."):
                launched = [ln for ln in lines if ln.startswith("[INFO] Launched env worker 1 ")]
                killed = int(launched[0].split("pid ")[1].split(")")[0])
                os.kill(killed, signal.SIGKILL)
            assert time.monotonic() < deadline, "the run did not finish in time"
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert proc.returncode == 0, out[-2000:] + (proc.stderr.read() if proc.stderr else "")
    assert killed is not None
    assert f"pid {killed}) was killed by signal 9" in out and "restarting it (restart 1)" in out
    steps = [r["step"] for r in stats_rows(workdir, "k")]
    assert steps[-1] == 4000 and 800 in steps  # summaries before and after the crash, to the end
    assert (workdir / "results" / "k" / "3DBall" / "3DBall-4000.pt").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)


def test_env_statistics_reach_stats_jsonl(workdir):
    fake = Path(__file__).with_name("fake_envs.py")
    build = workdir / "stats_build.sh"
    build.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{fake}" stats "$@"\n')
    build.chmod(0o755)
    proc = run_mlx(
        "env=unity",
        f"env.path={build}",
        "env.num_areas=2",
        "env.base_port=0",
        "trainer.hyperparameters.buffer_size=100",
        "trainer.hyperparameters.batch_size=50",
        "trainer.summary_freq=100",
        "trainer.max_steps=200",
        "seed=1",
        "run_id=s",
        "tracking=none",
        "progress=plain",
        cwd=workdir,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = stats_rows(workdir, "s")
    assert rows[0]["Custom/Steps"] == 50  # SUM over the period: 50 env steps of 2 agents = 100 agent steps
    assert rows[0]["Custom/Average"] == 3.0
    assert 0 <= rows[0]["Custom/Position"] <= 20


@pytest.mark.learning
def test_ppo_learns_3dball_with_the_env_in_two_processes_over_grpc(workdir):
    """The acceptance run: 3DBall in 2 `mlx-env` processes (12 areas each) launched like Unity builds, the
    upstream tuned PPO settings named with tuned=3dball_ppo, to a mean reward of 95."""
    console = Path(sys.executable).with_name("mlx-env")
    build = (
        [f"env.path={console}", "env.env_args=[3dball]"]
        if console.exists()
        else [f"env.path={launcher(workdir, '3dball')}"]
    )
    proc = run_mlx(
        "env=unity",
        *build,
        "env.num_envs=2",
        "env.num_areas=12",
        "env.base_port=0",
        "tuned=3dball_ppo",
        "stop_at_reward=95",
        "seed=1",
        "run_id=g",
        "tracking=none",
        "progress=plain",
        cwd=workdir,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = stats_rows(workdir, "g")
    best = max((r for r in rows if r["mean_reward"] is not None), key=lambda r: r["mean_reward"])
    assert best["mean_reward"] >= 95 and best["step"] <= 500_000
    assert "Reached stop_at_reward=95.0" in proc.stdout
    assert proc.stdout.count("Connected to env worker") == 2
    config = (workdir / "results" / "g" / "configuration.yaml").read_text()
    assert "batch_size: 64" in config  # the tuned 3DBall values applied


def test_native_num_envs_are_more_areas_in_process_or_env_processes_with_subprocess(tmp_path):
    """env.num_envs for a native env: num_envs x num_areas areas of one vectorised env (the default, and the
    fastest: benchmarks/grpc_throughput.py), or one `mlx.envs.unity.remote` process per copy with env.subprocess."""
    from mlx.envs.unity.env import UnityEnv
    from mlx.training.run import Run

    job = Run(validate(compose_tree("env=basic", "env.num_envs=3", "env.num_areas=2", f"results_dir={tmp_path}")))
    job.build()
    assert job.env is not None and not isinstance(job.env, UnityEnv)
    job.env.reset()
    assert len(job.env.get_steps("Basic")[0]) == 6
    job.env.close()
    job = Run(
        validate(
            compose_tree(
                "env=basic",
                "env.num_envs=2",
                "env.num_areas=2",
                "env.subprocess=true",
                "env.base_port=0",
                f"results_dir={tmp_path}",
            )
        )
    )
    job.build()
    try:
        assert isinstance(job.env, UnityEnv) and len(job.env.pids) == 2
        job.env.reset()
        decision, _ = job.env.get_steps("Basic")
        assert sorted(decision.agent_id.tolist()) == [0, 1, 2, 3]
    finally:
        assert job.env is not None
        job.env.close()
