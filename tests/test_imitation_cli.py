"""Imitation end to end: mode=record writes .demo files; PPO and SAC train and resume with GAIL and
behavioral cloning; bad demonstrations and settings end with one line naming the problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mlx.formats.demo import load_demonstration, read_demo_file
from mlx.modes.record import demo_paths
from tests.conftest import REPO, mlx_command, run_mlx

BASIC = ["env=basic", "env.num_areas=4", "tracking=none", "progress=plain", "seed=2"]


def run_with_experts(*overrides: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m mlx` with the repository importable, so record.heuristic=tests.experts:<name> resolves."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    return subprocess.run(
        mlx_command(*overrides), cwd=cwd, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.stdout[-1000:], proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mlx: error: "), proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def expert_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Basic's best behaviour, recorded by mode=record from a scripted heuristic."""
    work = tmp_path_factory.mktemp("record")
    proc = run_with_experts(*BASIC, "mode=record", "run_id=expert", "record.heuristic=tests.experts:basic_right",
                            "record.episodes=6", "record.path=demos/Right.demo", cwd=work)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[INFO] Basic. Recorded 6 episodes (48 steps, mean reward 0.930) to demos/Right.demo" in proc.stdout
    return work / "demos" / "Right.demo"


def test_record_writes_meta_data_and_refuses_to_overwrite(expert_demo, tmp_path):
    demo_file = read_demo_file(expert_demo)
    assert demo_file.meta.number_episodes == 6 and demo_file.meta.number_steps == 48
    assert demo_file.meta.mean_reward == pytest.approx(0.93)
    assert demo_file.brain_name == "Basic?team=0"
    demo = load_demonstration(expert_demo)
    assert (demo.discrete == 2).all() and len(demo) == 42
    proc = run_with_experts(*BASIC, "mode=record", "run_id=expert", "record.heuristic=random",
                            f"record.path={expert_demo}", cwd=tmp_path)  # fmt: skip
    assert "exists; pass force=true to overwrite it" in one_error_line(proc)
    proc = run_with_experts(*BASIC, "mode=record", "run_id=expert", "record.heuristic=tests.experts:nothing",
                            cwd=tmp_path)  # fmt: skip
    assert "record.heuristic=tests.experts:nothing cannot be loaded" in one_error_line(proc)
    proc = run_mlx(*BASIC, "mode=record", "run_id=x", "record.heuristic=random", "record.policy=a.pt", cwd=tmp_path)
    assert "record.policy and record.heuristic both given" in one_error_line(proc)


def test_demo_paths_for_one_and_several_behaviours():
    from mlx.config import RecordSettings

    class Cfg:
        results_dir, run_id = "results", "r"
        record = RecordSettings()

    cfg = Cfg()
    assert demo_paths(cfg, ["A"]) == {"A": Path("results/r/demos/A.demo")}  # type: ignore[arg-type]
    cfg.record = RecordSettings(path="x/e.demo")
    assert demo_paths(cfg, ["A"]) == {"A": Path("x/e.demo")}  # type: ignore[arg-type]
    assert demo_paths(cfg, ["A", "B"]) == {"A": Path("x/e-A.demo"), "B": Path("x/e-B.demo")}  # type: ignore[arg-type]
    cfg.record = RecordSettings(path="x")
    assert demo_paths(cfg, ["A", "B"]) == {"A": Path("x/A.demo"), "B": Path("x/B.demo")}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("trainer", "gail"),
    [("ppo", ["trainer.reward_signals.gail.use_actions=true"]), ("sac", ["trainer.reward_signals.gail.use_vail=true"])],
)
def test_training_with_gail_and_bc_reports_their_statistics_and_resumes(expert_demo, tmp_path, trainer, gail):
    common = [*BASIC, f"trainer={trainer}", "run_id=imitate", "reward_signals=[extrinsic,gail]",
              f"trainer.reward_signals.gail.demo_path={expert_demo}", *gail,
              f"trainer.behavioral_cloning.demo_path={expert_demo}", "trainer.behavioral_cloning.steps=1000",
              "trainer.summary_freq=200", "trainer.checkpoint_interval=400"]  # fmt: skip
    proc = run_mlx(*common, "trainer.max_steps=400", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    root = tmp_path / "results" / "imitate"
    rows = [json.loads(line) for line in (root / "run_logs" / "stats.jsonl").read_text().splitlines()]
    keys = set().union(*rows)
    expected = {"Losses/Pretraining Loss", "Losses/GAIL Loss", "Policy/GAIL Expert Estimate",
                "Policy/GAIL Policy Estimate", "Policy/Gail Reward", "Policy/Gail Value Estimate"}  # fmt: skip
    if trainer == "sac":
        expected |= {"Policy/GAIL Beta", "Losses/GAIL KL Loss"}
    assert expected <= keys, expected - keys
    state = torch.load(root / "Basic" / "checkpoint.pt", weights_only=True)["trainer"]
    assert "optimizer" in state["behavioral_cloning"] and "module" in state["reward_signals"]["gail"]
    proc = run_mlx(*common, "trainer.max_steps=1000", "resume=true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in (root / "run_logs" / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] >= 1000
    resumed = [r for r in rows if r["step"] > 400]
    assert any("Losses/Pretraining Loss" in r for r in resumed)  # BC (annealed over 1000 steps) goes on


def test_bc_with_memory_learns_from_sequences(expert_demo, tmp_path):
    proc = run_mlx(*BASIC, "run_id=lstm", "network=lstm", "trainer.network_settings.memory.sequence_length=4",
                   f"trainer.behavioral_cloning.demo_path={expert_demo}", "trainer.max_steps=512",
                   "trainer.summary_freq=256", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "results/lstm/run_logs/stats.jsonl").read_text().splitlines()]
    assert any("Losses/Pretraining Loss" in r for r in rows)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.behavioral_cloning.demo_path=missing.demo"],
         "trainer.behavioral_cloning.demo_path: no .demo file or folder at 'missing.demo'"),
        (["reward_signals=[extrinsic,gail]"], "trainer.reward_signals.gail.demo_path is required"),
        (["reward_signals=[extrinsic,gail]", "trainer.reward_signals.gail.demo_path=missing"],
         "trainer.reward_signals.gail.demo_path: no .demo file or folder at 'missing'"),
        (["trainer.behavioral_cloning.demo_path=DEMO", "trainer.behavioral_cloning.steps=-1"],
         "trainer.behavioral_cloning.steps must be >= 0"),
        (["reward_signals=[extrinsic,gail]", "trainer.reward_signals.gail.demo_path=DEMO",
          "+trainer.reward_signals.gail.network_settings.memory={memory_size:4}"],
         "the GAIL discriminator has no memory"),
        (["env=3dball", "trainer.behavioral_cloning.demo_path=DEMO"],
         "the demonstration's behaviour has 0 continuous actions and discrete branches [3], but 3DBall has 2"),
        (["env=3dball", "reward_signals=[extrinsic,gail]", "trainer.reward_signals.gail.demo_path=DEMO"],
         "trainer.reward_signals.gail.demo_path (3DBall)=DEMO: the demonstration's behaviour"),
    ],
)  # fmt: skip
def test_bad_demonstrations_and_settings_end_with_one_line(expert_demo, tmp_path, overrides, message):
    overrides = [o.replace("DEMO", str(expert_demo)) for o in overrides]
    proc = run_mlx(*BASIC, "run_id=bad", "trainer.max_steps=100", *overrides, cwd=tmp_path)
    line = one_error_line(proc)
    assert message.replace("DEMO", str(expert_demo)) in line, line
    assert not (tmp_path / "results" / "bad" / "Basic").exists()


def test_a_truncated_demo_file_ends_training_before_it_starts_with_one_line(expert_demo, tmp_path):
    cut = tmp_path / "cut.demo"
    cut.write_bytes(expert_demo.read_bytes()[:-7])
    proc = run_mlx(*BASIC, "run_id=cut", f"trainer.behavioral_cloning.demo_path={cut}", cwd=tmp_path)
    line = one_error_line(proc)
    assert f"{cut} is truncated" in line, line


def test_a_trained_policy_is_recorded_and_cloned(tmp_path):
    """mode=record from a run's checkpoint: the .demo carries the trained behaviour (Basic's 0.93)."""
    proc = run_mlx(*BASIC, "run_id=trained", "stop_at_reward=0.9", "trainer.max_steps=20000",
                   "trainer.summary_freq=1000", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_mlx(*BASIC, "mode=record", "run_id=trained", "record.episodes=8", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    path = tmp_path / "results" / "trained" / "demos" / "Basic.demo"
    meta = read_demo_file(path).meta
    assert meta.number_episodes == 8 and meta.mean_reward == pytest.approx(0.93, abs=1e-5)
    assert f"Recorded 8 episodes ({meta.number_steps} steps, mean reward 0.930) to {path.relative_to(tmp_path)}" in (
        proc.stdout
    )


@pytest.mark.skipif(sys.platform == "win32", reason="paths")
def test_relative_demo_paths_also_resolve_against_the_repository(tmp_path):
    from mlx.formats.demo import resolve_demo_path

    cwd = Path.cwd()
    os.chdir(tmp_path)  # no demos/ here: the repository's
    try:
        assert resolve_demo_path("demos/Expert3DBall.demo") == REPO / "demos" / "Expert3DBall.demo"
        (tmp_path / "demos").mkdir()
        (tmp_path / "demos" / "Expert3DBall.demo").write_bytes(b"")
        assert resolve_demo_path("demos/Expert3DBall.demo") == Path("demos/Expert3DBall.demo")  # the working dir first
    finally:
        os.chdir(cwd)
