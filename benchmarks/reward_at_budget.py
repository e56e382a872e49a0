"""Reward at a budget: where the one-line command gets in a fixed wall-clock time, against a random policy.

    python benchmarks/reward_at_budget.py --env visualpushblock [--minutes 40] [--seed 1] [--work DIR] [--override ...]

For envs whose upstream budget does not fit a CI machine (the camera envs: a CNN per decision, millions of
steps upstream), time_to_reward.py would only say "not reached". This runs
`python -m mlx trainer=<t> env=<e> seed=S` (the tuned upstream settings, MLflow off, one torch thread) for
``--minutes`` of wall clock, then stops it with Ctrl-C (mlx saves a checkpoint and its stats on the way
out), and reads its stats.jsonl: the learning curve (mean reward per summary), the best and the last
summary, the mean reward of the episodes that ended in the first and in the last quarter of the steps,
the steps reached and end-to-end agent-steps/s. Then mode=evaluate plays the final policy (sampled
actions, as in training) for ``--episodes`` episodes, and the same env under uniformly random actions
gives the baseline (the first episode of ``--episodes`` areas: rewards do not depend on what the agent
sees). Writes benchmarks/results/budget_<trainer>_<env>.json.
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

from common import random_policy_reward  # benchmarks/common.py

HERE = Path(__file__).resolve().parent


def weighted_mean(curve: list[tuple[int, float, int]], lo: int, hi: int) -> float | None:
    """The mean reward of the episodes that ended between steps lo and hi (summaries weighted by episodes)."""
    rows = [(r, e) for s, r, e in curve if lo < s <= hi and e]
    total = sum(e for _, e in rows)
    return round(sum(r * e for r, e in rows) / total, 4) if total else None


def evaluate(run_id: str, workdir: Path, episodes: int, overrides: list[str]) -> dict:
    """mode=evaluate on the run's final checkpoint, sampled actions (as training acts), ``episodes`` episodes."""
    env_overrides = [o for o in overrides if o.startswith("env.")]
    cmd = [sys.executable, "-m", "mlx", "mode=evaluate", f"run_id={run_id}", f"evaluate.episodes={episodes}"]
    cmd += ["evaluate.deterministic=false", "tracking=none", *env_overrides]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    report = json.loads((workdir / "results" / run_id / "run_logs" / "evaluation.json").read_text())
    (behavior,) = [k for k in report if k not in ("env", "parameters", "environment_parameters")]
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in report[behavior].items()}


def train_for(
    env: str,
    trainer: str,
    seed: int,
    minutes: float,
    workdir: Path,
    overrides: list[str],
    evaluate_episodes: int,
    train: bool = True,
) -> dict:
    """One training run stopped after ``minutes``; its curve and summary from stats.jsonl, and the
    evaluation of its final policy."""
    run_id = f"budget-{trainer}-{env}-{seed}"
    cmd = [sys.executable, "-m", "mlx", f"trainer={trainer}", f"env={env}", f"seed={seed}", f"run_id={run_id}"]
    cmd += ["tracking=none", "progress=plain", "torch_settings.num_threads=1", *overrides]
    stopped, wall, out = None, None, ""  # --report-only: the run in workdir as it is
    if train:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=minutes * 60)
            stopped = False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # mlx's deferred Ctrl-C: finish the step, save, exit
            out, _ = proc.communicate(timeout=600)
            stopped = True
        wall = round(time.perf_counter() - start, 1)
    stats = workdir / "results" / run_id / "run_logs" / "stats.jsonl"
    if not stats.exists():
        raise SystemExit(f"training wrote no stats in {stats.parent}:\n{out[-3000:]}")
    rows = [json.loads(x) for x in stats.read_text().splitlines()]
    curve = [(r["step"], r["mean_reward"], r["episodes"]) for r in rows if r.get("mean_reward") is not None]
    best = max(curve, key=lambda c: c[1]) if curve else None
    last = rows[-1]
    quarter = last["step"] // 4
    evaluation = evaluate(run_id, workdir, evaluate_episodes, overrides) if evaluate_episodes else None
    return {
        "run_dir": str(workdir / "results" / run_id),
        "evaluation_sampled_actions": evaluation,
        "first_quarter_mean_reward": weighted_mean(curve, 0, quarter),
        "last_quarter_mean_reward": weighted_mean(curve, last["step"] - quarter, last["step"]),
        "seed": seed,
        "stopped_at_budget": stopped,
        "process_wall_seconds": wall,
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
    parser.add_argument("--episodes", type=int, default=32, help="episodes of the random baseline and the evaluation")
    parser.add_argument("--work", type=Path, default=None, help="keep the run here (default: a temporary directory)")
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for the run")
    parser.add_argument("--report-only", action="store_true", help="evaluate and report the run in --work")
    args = parser.parse_args()
    if args.report_only and args.work is None:
        parser.error("--report-only reads the run in --work: give --work")
    baseline = random_policy_reward(args.env, args.episodes)
    print(json.dumps({"random_policy": baseline}), flush=True)
    if args.work is not None:  # kept: the run's checkpoints, logs and evaluation stay for a look
        args.work.mkdir(parents=True, exist_ok=True)
        train = not args.report_only
        run = train_for(args.env, args.trainer, args.seed, args.minutes, args.work, args.override, args.episodes, train)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run = train_for(args.env, args.trainer, args.seed, args.minutes, Path(tmp), args.override, args.episodes)
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
    shown = ("best", "last", "first_quarter_mean_reward", "last_quarter_mean_reward", "evaluation_sampled_actions")
    print(json.dumps({k: v for k, v in summary.items() if k != "run"} | {k: run[k] for k in shown}))


if __name__ == "__main__":
    main()
