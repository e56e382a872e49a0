"""3DBall PPO benchmark: seconds and steps to mean reward 95, end-to-end agent-steps/s, env-only agent-steps/s.

    python benchmarks/ppo_3dball.py [--seeds 1 2 3] [--target 95]

Runs the command users type (`python -m mlx trainer=ppo env=3dball seed=S stop_at_reward=95`) in a
subprocess per seed, reads its stats.jsonl, and measures the env alone at 4096 agents. Writes
benchmarks/results/ppo_3dball.json. Target on a 2-core machine: <= 30 s to 95, env >= 5M agent-steps/s.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def env_only_steps_per_sec(num_areas: int, seconds: float = 3.0) -> float:
    from mlx.envs import make_env

    env = make_env("3dball", num_areas, seed=0)
    rng = np.random.default_rng(0)
    actions = env.behavior_specs["3DBall"].action_spec.random(num_areas, rng)
    env.reset()
    for _ in range(20):
        env.set_actions("3DBall", actions)
        env.step()
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            env.set_actions("3DBall", actions)
            env.step()
            env.get_steps("3DBall")
        steps += 50
    return steps * num_areas / (time.perf_counter() - start)


def train_once(seed: int, target: float, workdir: Path) -> dict:
    run_id = f"bench-ppo-{seed}"
    cmd = [sys.executable, "-m", "mlx", "trainer=ppo", "env=3dball", f"seed={seed}", f"run_id={run_id}",
           f"stop_at_reward={target}", "tracking=none", "progress=plain"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"training failed (seed {seed}):\n{proc.stderr[-3000:]}")
    rows = [json.loads(x) for x in (workdir / "results" / run_id / "run_logs" / "stats.jsonl").read_text().splitlines()]
    hit = next((r for r in rows if r["mean_reward"] is not None and r["mean_reward"] >= target), None)
    last = rows[-1]
    return {
        "seed": seed,
        "reached": hit is not None,
        "steps_to_target": hit["step"] if hit else None,
        "seconds_to_target": hit["time_elapsed"] if hit else None,
        "process_wall_seconds": round(wall, 2),
        "final_mean_reward": last["mean_reward"],
        "end_to_end_agent_steps_per_sec": round(last["step"] / last["time_elapsed"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--target", type=float, default=95.0)
    parser.add_argument("--env-agents", type=int, default=4096)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            result = train_once(seed, args.target, Path(tmp))
            runs.append(result)
            print(json.dumps(result))
    env_sps = env_only_steps_per_sec(args.env_agents)
    reached = [r for r in runs if r["reached"]]
    summary = {
        "benchmark": f"3DBall PPO to mean reward {args.target:.0f}",
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "runs": runs,
        "median_seconds_to_target": float(np.median([r["seconds_to_target"] for r in reached])) if reached else None,
        "median_steps_to_target": float(np.median([r["steps_to_target"] for r in reached])) if reached else None,
        "median_end_to_end_agent_steps_per_sec": float(np.median([r["end_to_end_agent_steps_per_sec"] for r in runs])),
        f"env_only_agent_steps_per_sec_at_{args.env_agents}": round(env_sps),
    }
    out = HERE / "results" / "ppo_3dball.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
