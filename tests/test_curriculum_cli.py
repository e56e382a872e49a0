"""`python -m mlx` with environment parameters: refusals at start-up (one line, exit 2), lessons in the
statistics, a killed run resumed in its lesson, two behaviours with their own max_steps."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import TINY_3DBALL, run_mlx, start_mlx

TINY = [*TINY_3DBALL, "trainer.summary_freq=400"]
# Lesson 0 ends at 5% of max_steps; lesson 1 asks for a reward 3DBall never gives, so only a restored
# lesson number can put a resumed run back in lesson 1 (a lost one would leave it in lesson 0 for 20
# episodes, then print the lesson change again).
CURRICULUM = (
    "+environment_parameters.scale={curriculum: ["
    "{name: Small, value: 1.0, completion_criteria: {behavior: 3DBall, measure: progress, threshold: 0.05, "
    "min_lesson_length: 20}}, "
    "{name: Medium, value: 1.2, completion_criteria: {behavior: 3DBall, measure: reward, threshold: 1000}}, "
    "{name: Large, value: 1.4}]}"
)


def stats_rows(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "run_logs" / "stats.jsonl").read_text().splitlines()]


BAD = [
    (
        "+environment_parameters.scale={curriculum: [{value: 1, completion_criteria: {behavior: 3DBall, "
        "measure: progress, threshold: 0.5}}, {value: 2, completion_criteria: {behavior: 3DBall, "
        "measure: progress, threshold: 0.2}}, {value: 3}]}",
        ["environment_parameters.scale.curriculum[1].completion_criteria.threshold", "must not decrease"],
    ),
    (
        "+environment_parameters.scale={curriculum: [{completion_criteria: {behavior: 3DBall, threshold: 0.5}}, "
        "{value: 2}]}",
        ["environment_parameters.scale.curriculum[0].value is missing"],
    ),
    (
        "+environment_parameters.scale={curriculum: [{value: 1, completion_criteria: {behavior: 3DBall, "
        "measure: steps}}, {value: 2}]}",
        ["completion_criteria.measure must be 'progress' or 'reward'", "steps"],
    ),
    (
        "+environment_parameters.scale={curriculum: [{value: 1, completion_criteria: {behavior: 3DBal, "
        "measure: progress, threshold: 0.5}}, {value: 2}]}",
        ["'3DBal' is not a behaviour of env=3dball", "3DBall"],
    ),
    (
        "+environment_parameters.mass={sampler_type: uniform, sampler_parameters: {min_value: 10, max_value: 0.5}}",
        ["environment_parameters.mass.sampler_parameters", "greater than max_value"],
    ),
    ("env=walljump +behaviors.BigWallJum.max_steps=100", ["behaviors.BigWallJum", "BigWallJump, SmallWallJump"]),
]


@pytest.mark.parametrize(("override", "words"), BAD, ids=[b[0][:60] for b in BAD])
def test_malformed_parameters_are_refused_with_one_line(workdir, override, words):
    args = override.partition(" ")[::2] if override.startswith("env=") else ("env=3dball", override)
    proc = run_mlx(*args, "tracking=none", "run_id=bad", cwd=workdir, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mlx: error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not list(workdir.glob("results/bad/*/checkpoint.pt"))


def test_sigkill_then_resume_keeps_the_lesson(workdir):
    args = [
        *TINY,
        CURRICULUM,
        "trainer.max_steps=8000",
        "trainer.checkpoint_interval=800",
        "run_id=les",
        "tracking=none",
    ]
    root = workdir / "results" / "les"
    status_path = root / "run_logs" / "training_status.json"
    proc = start_mlx(*args, cwd=workdir, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if status_path.exists():
                status = json.loads(status_path.read_text())
                if status.get("scale", {}).get("lesson_num") == 1:
                    break
            if proc.poll() is not None:
                raise AssertionError("the run ended before it could be killed; raise max_steps")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Parameter 'scale' is now 1.2: lesson 1 'Medium'" in out
    status = json.loads(status_path.read_text())
    assert status["scale"]["lesson_num"] == 1  # ML-Agents' training_status layout
    saved = max(c["steps"] for c in status["3DBall"]["checkpoints"])

    resumed = run_mlx(*args, "resume=true", cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert "[INFO] Resumed: Parameter 'scale' is now 1.2: lesson 1 'Medium'" in resumed.stdout
    assert "[INFO] Parameter 'scale'" not in resumed.stdout  # no lesson change happened again
    after = [r for r in stats_rows(root) if r["step"] > saved]
    assert after and all(r["Environment/Lesson Number/scale"] == 1 for r in after)


def test_lesson_override_starts_later(workdir):
    proc = run_mlx(*TINY, CURRICULUM, "lesson=2", "trainer.max_steps=800", "run_id=late", "tracking=none", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    rows = stats_rows(workdir / "results" / "late")
    assert [r["Environment/Lesson Number/scale"] for r in rows] == [2, 2]


def test_two_behaviours_train_with_their_own_max_steps_and_lessons(workdir):
    proc = run_mlx(
        "env=walljump",
        "curriculum=walljump",
        "env.num_areas=6",
        "seed=1",
        "trainer.max_steps=1600",
        "behaviors.SmallWallJump.max_steps=800",
        "trainer.summary_freq=400",
        "trainer.checkpoint_interval=800",
        "progress=plain",
        "tracking=none",
        "run_id=wj",
        cwd=workdir,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    root = workdir / "results" / "wj"
    rows = stats_rows(root)
    by = {name: [r for r in rows if r["behavior"] == name] for name in ("SmallWallJump", "BigWallJump")}
    assert [r["step"] // 400 * 400 for r in by["SmallWallJump"]][:2] == [400, 800]
    assert max(r["step"] for r in by["BigWallJump"]) >= 1600
    for r in rows:  # every behaviour reports every curriculum's lesson
        assert {"Environment/Lesson Number/big_wall_height", "Environment/Lesson Number/small_wall_height"} <= set(r)
    status = json.loads((root / "run_logs" / "training_status.json").read_text())
    assert status["SmallWallJump"]["final_checkpoint"] and status["BigWallJump"]["final_checkpoint"]
    assert {"big_wall_height", "small_wall_height"} <= set(status)
    config = (root / "configuration.yaml").read_text()
    assert "behaviors:" in config and "environment_parameters:" in config
