"""Reward at a budget: where the one-line command gets in a fixed wall-clock time, against a random policy.

    python benchmarks/reward_at_budget.py --env visualpushblock [--minutes 40] [--seed 1] [--override ...]

For envs whose upstream budget does not fit a CI machine (the camera envs: a CNN per decision, millions of
steps upstream), time_to_reward.py would only say "not reached". This runs
`python -m mlx trainer=<t> env=<e> seed=S` (the tuned upstream settings, MLflow off, one torch thread) for
``--minutes`` of wall clock, then stops it with Ctrl-C (mlx saves a checkpoint and its stats on the way
out), and reads its stats.jsonl: the learning curve (mean reward per summary), the best and the last
summary, the steps reached and end-to-end agent-steps/s. The same env under uniformly random actions
gives the baseline (``--baseline-episodes`` episodes, all areas at once: rewards do not depend on the
observations, so the camera is not needed for it and the env is built as configured). Writes
benchmarks/results/budget_<trainer>_<env>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def random_policy_reward(env_name: str, episodes: int, seed: int = 0) -> dict:
    """Mean and std of the episode return of uniformly random actions over ``episodes`` finished episodes."""
    from mlx.envs import make_env

    env = make_env(env_name, num_areas=16, seed=seed)
    (name,) = env.behavior_specs
    spec = env.behavior_specs[name].action_spec
    rng = np.random.default_rng(seed)
    env.reset()
    returns: list[float] = []
    running = np.zeros(env.num_areas)
    while len(returns) < episodes:
        decision, _ = env.get_steps(name)
        env.set_actions(name, spec.random(len(decision), rng))
        env.step()
        decision, terminal = env.get_steps(name)
        running[terminal.agent_id] += terminal.reward
        returns.extend(running[terminal.agent_id].tolist())
        running[terminal.agent_id] = 0.0
        running[decision.agent_id] += decision.reward
    env.close()
    mean, std = round(float(np.mean(returns)), 4), round(float(np.std(returns)), 4)
    return {"episodes": len(returns), "mean": mean, "std": std}


def train_for(env: str, trainer: str, seed: int, minutes: float, workdir: Path, overrides: list[str]) -> dict:
    """One training run stopped after ``minutes``; its curve and summary from stats.jsonl."""
    run_id = f"budget-{trainer}-{env}-{seed}"
    cmd = [sys.executable, "-m", "mlx", f"trainer={trainer}", f"env={env}", f"seed={seed}", f"run_id={run_id}"]
    cmd += ["tracking=none", "progress=plain", "torch_settings.num_threads=1", *overrides]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=minutes * 60)
        stopped = False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # mlx's deferred Ctrl-C: finish the step, save, exit
        out, _ = proc.communicate(timeout=600)
        stopped = True
    wall = time.perf_counter() - start
    stats = workdir / "results" / run_id / "run_logs" / "stats.jsonl"
    if not stats.exists():
        raise SystemExit(f"training wrote no stats (exit {proc.returncode}):\n{out[-3000:]}")
    rows = [json.loads(x) for x in stats.read_text().splitlines()]
    curve = [(r["step"], r["mean_reward"], r["episodes"]) for r in rows if r.get("mean_reward") is not None]
    best = max(curve, key=lambda c: c[1]) if curve else None
    last = rows[-1]
    return {
        "seed": seed,
        "stopped_at_budget": stopped,
        "process_wall_seconds": round(wall, 1),
        "steps": last["step"],
        "end_to_end_agent_steps_per_sec": round(last["step"] / last["time_elapsed"], 1),
        "best": {"step": best[0], "mean_reward": round(best[1], 4)} if best else None,
        "last": {"step": curve[-1][0], "mean_reward": round(curve[-1][1], 4)} if curve else None,
        "curve": [{"step": s, "mean_reward": round(r, 4), "episodes": e} for s, r, e in curve],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="visualpushblock")
    parser.add_argument("--trainer", choices=["ppo", "sac", "poca"], default="ppo")
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline-episodes", type=int, default=32)
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for the run")
    args = parser.parse_args()
    baseline = random_policy_reward(args.env, args.baseline_episodes)
    print(json.dumps({"random_policy": baseline}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = train_for(args.env, args.trainer, args.seed, args.minutes, Path(tmp), args.override)
    summary = {
        "benchmark": f"{args.env} {args.trainer.upper()}: mean reward after {args.minutes:g} min of wall clock",
        "command": f"python -m mlx trainer={args.trainer} env={args.env} seed={args.seed} " + " ".join(args.override),
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_at_end": os.getloadavg()[0]},
        "random_policy": baseline,
        "run": run,
    }
    out = HERE / "results" / f"budget_{args.trainer}_{args.env}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "run"} | {"best": run["best"], "last": run["last"]}))


if __name__ == "__main__":
    main()
