"""Learning tests: fixed seeds, the upstream budget, a reward threshold. These are the product."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_mlx, train_to

# (trainer, env, target, upstream max_steps): the command a user types, with a fixed seed.
CASES = [
    ("ppo", "3dball", 95, 500_000),
    ("sac", "3dball", 95, 200_000),
    ("sac", "basic", 0.9, 500_000),  # discrete SAC
    ("ppo", "basic", 0.9, 500_000),
    ("ppo", "3dballhard", 95, 500_000),  # velocity inferred from the 9-decision stack
]
# Cases taking minutes: kept out of the default suite (pytest -m slow).
SLOW_CASES = [
    ("ppo", "pushblock", 4.5, 2_000_000),  # 600k steps, ~4.5 min on 2 shared cores
]
PARAMS = [pytest.param(*c, id=f"{c[0]}-{c[1]}") for c in CASES] + [
    pytest.param(*c, id=f"{c[0]}-{c[1]}", marks=pytest.mark.slow) for c in SLOW_CASES
]


@pytest.mark.learning
@pytest.mark.parametrize(("trainer", "env", "target", "budget"), PARAMS)
def test_learns_to_the_benchmark_within_the_upstream_budget(workdir, trainer, env, target, budget):
    proc, best = train_to(workdir, target, f"trainer={trainer}", f"env={env}")
    assert best["mean_reward"] >= target, best
    assert best["step"] <= budget
    assert f"Reached stop_at_reward={float(target)}" in proc.stdout


# Gymnasium envs (env=gym env.id=..., tuned/gym/<id>_<trainer>.yaml): (trainer, Gymnasium id, target, tuned max_steps).
GYM_CASES = [
    ("ppo", "CartPole-v1", 475, 100_000),
    ("sac", "Pendulum-v1", -200, 50_000),
]


@pytest.mark.learning
@pytest.mark.parametrize(
    ("trainer", "env_id", "target", "budget"), [pytest.param(*c, id=f"{c[0]}-gym-{c[1]}") for c in GYM_CASES]
)
def test_learns_a_gymnasium_env(workdir, trainer, env_id, target, budget):
    proc = run_mlx(
        f"trainer={trainer}",
        "env=gym",
        f"env.id={env_id}",
        "seed=1",
        "run_id=a",
        f"stop_at_reward={target}",
        "tracking=none",
        "progress=plain",
        cwd=workdir,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in (workdir / "results/a/run_logs/stats.jsonl").read_text().splitlines()]
    best = max((r for r in rows if r["mean_reward"] is not None), key=lambda r: r["mean_reward"])
    assert best["mean_reward"] >= target, rows[-1]
    assert best["step"] <= budget
    assert f"Reached stop_at_reward={float(target)}" in proc.stdout
