"""Time to reward: seconds and steps for the command users type to reach a mean reward, per seed.

    python benchmarks/time_to_reward.py --env 3dball --trainer ppo [--seeds 1 2 3] [--target 95]
    python benchmarks/time_to_reward.py --env 3dball --trainer sac
    python benchmarks/time_to_reward.py --env pushblock --target 4.5 [--override env.num_areas=32 ...]
    python benchmarks/time_to_reward.py --env worm --target 800      # MuJoCo; upstream's budget 7M steps
    python benchmarks/time_to_reward.py --env crawler --target 3000  # 10M steps upstream
    python benchmarks/time_to_reward.py --env walker --target 2500   # 30M steps upstream

Runs `python -m mlx trainer=<t> env=<e> seed=S stop_at_reward=<target>` (tuned upstream settings, MLflow
off) in a subprocess per seed and reads its stats.jsonl: seconds (the run's own clock) and steps to the
target, end-to-end agent-steps/s. For 3DBall, PPO also measures the env alone at 4096 agents and SAC its
gradient updates per second and the replay buffer's bytes at capacity. Writes
benchmarks/results/<trainer>_<env>.json. Targets on a 2-core machine: 3DBall PPO <= 30 s to 95 and env
>= 5M agent-steps/s; 3DBall SAC <= 90 s to 95.
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


def sac_update_speed(seconds: float = 5.0) -> dict:
    """Gradient updates per second and replay-buffer bytes with the tuned 3DBall SAC settings."""
    import torch
    from hydra import compose, initialize_config_dir

    from mlx.config import CONF_DIR, register_configs, validate
    from mlx.envs import make_env
    from mlx.trainers.sac.trainer import SACTrainer

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = validate(compose("config", overrides=["trainer=sac", "env=3dball", "run_id=bench", "seed=0"]))
    torch.set_num_threads(cfg.torch_settings.num_threads)
    env = make_env("3dball", 12, seed=0)
    trainer = SACTrainer("3DBall", env.behavior_specs["3DBall"], cfg.trainer, cfg.reward_signals, torch.device("cpu"))
    env.reset()
    for _ in range(500):  # fill the buffer with 6000 transitions, no updates yet
        d, t = env.get_steps("3DBall")
        env.set_actions("3DBall", trainer.process(d, t))
        env.step()
    trainer.update_steps = 10**9  # stop the trainer's own schedule; we call updates directly below
    updates = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.update_steps = 1
        trainer.step = int(trainer.hp.steps_per_update * 50) + 1  # owes exactly 50 updates
        trainer.update()
        updates += trainer.update_steps - 1
    return {
        "gradient_updates_per_sec": round(updates / (time.perf_counter() - start), 1),
        "replay_buffer_bytes_at_capacity": trainer.buffer.nbytes,
        "replay_buffer_capacity": trainer.buffer.capacity,
    }


def train_once(env: str, trainer: str, seed: int, target: float, workdir: Path, overrides: list[str]) -> dict:
    run_id = f"bench-{trainer}-{env}-{seed}"
    cmd = [
        sys.executable,
        "-m",
        "mlx",
        f"trainer={trainer}",
        f"env={env}",
        f"seed={seed}",
        f"run_id={run_id}",
        f"stop_at_reward={target}",
        "tracking=none",
        "progress=plain",
        *overrides,
    ]
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
    parser.add_argument("--env", default="3dball")
    parser.add_argument("--trainer", choices=["ppo", "sac"], default="ppo")
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for every run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--target", type=float, default=95.0)
    parser.add_argument("--env-agents", type=int, default=4096)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            result = train_once(args.env, args.trainer, seed, args.target, Path(tmp), args.override)
            runs.append(result)
            print(json.dumps(result))
    reached = [r for r in runs if r["reached"]]
    summary = {
        "benchmark": f"{args.env} {args.trainer.upper()} to mean reward {args.target:g}",
        "overrides": args.override,
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "runs": runs,
        "reached": f"{len(reached)}/{len(runs)}",
        "median_seconds_to_target": float(np.median([r["seconds_to_target"] for r in reached])) if reached else None,
        "median_steps_to_target": float(np.median([r["steps_to_target"] for r in reached])) if reached else None,
        "median_end_to_end_agent_steps_per_sec": float(np.median([r["end_to_end_agent_steps_per_sec"] for r in runs])),
    }
    if args.env == "3dball" and args.trainer == "ppo":
        summary[f"env_only_agent_steps_per_sec_at_{args.env_agents}"] = round(env_only_steps_per_sec(args.env_agents))
    elif args.env == "3dball":
        summary.update(sac_update_speed())
    out = HERE / "results" / f"{args.trainer}_{args.env}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
