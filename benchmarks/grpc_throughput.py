"""3DBall agent-steps per second in-process vs over ML-Agents' gRPC protocol (1 and 4 env processes).

    python benchmarks/grpc_throughput.py [--areas 12 64] [--procs 1 4] [--seconds 3] [--train-steps 24000]

Two measurements, each in-process and over gRPC with the env in ``python -m mlx.envs.unity.remote`` processes
(what ``env=unity`` launching mlx-env, or ``env.subprocess=true``, runs):

* env only: random actions, set_actions / step / get_steps as the run loop calls them, for about
  --seconds after a warm-up. In-process uses one vectorised env with procs x areas areas (what
  ``env.num_envs`` does for native envs); over gRPC, ``procs`` processes of ``areas`` areas each.
* training: ``python -m mlx`` PPO with the tuned 3DBall settings for --train-steps agent steps; the
  rate is the run's own steps_per_sec over its last summary window (start-up excluded).

The overhead is in-process rate / gRPC rate (target <= 2x). The env-only rows also give the CPU time of
every process involved per agent-step (trainer and env processes, from /proc), which other jobs on a
shared machine disturb far less than wall time. Writes benchmarks/results/grpc_throughput.json with the
machine's load average, since timings on a shared machine are only indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mlx.envs import BaseEnv, make_env
from mlx.envs.unity.env import UnityEnv, remote_command

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "grpc_throughput.json"
WARMUP_STEPS = 30


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) of this process and the given ones (Linux /proc)."""
    total = time.process_time()
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def env_rate(env: BaseEnv, seconds: float, seed: int = 0) -> tuple[float, float]:
    """Agent-steps per second of random play (decisions counted after each step), and CPU microseconds
    per agent-step of every process involved (unlike wall time, barely affected by other jobs)."""
    pids = [p for p in getattr(env, "pids", []) if p is not None]
    rng = np.random.default_rng(seed)
    env.reset()
    names = list(env.behavior_specs)

    def run(steps: int) -> int:
        total = 0
        for _ in range(steps):
            for name in names:
                d, _ = env.get_steps(name)
                env.set_actions(name, env.behavior_specs[name].action_spec.random(len(d), rng))
            env.step()
            total += sum(len(env.get_steps(name)[0]) for name in names)
        return total

    run(WARMUP_STEPS)
    agent_steps, start, cpu = 0, time.perf_counter(), cpu_seconds(pids)
    while time.perf_counter() - start < seconds:
        agent_steps += run(10)
    cpu = cpu_seconds(pids) - cpu
    return agent_steps / (time.perf_counter() - start), 1e6 * cpu / agent_steps


def measure_env(areas: int, procs: int, seconds: float) -> dict:
    native = make_env("3dball", num_areas=areas * procs, seed=0)
    in_process, in_cpu = env_rate(native, seconds)
    native.close()
    remote = UnityEnv(command=remote_command("3dball"), num_envs=procs, num_areas=areas, base_port=0, seed=0)
    try:
        grpc_rate, grpc_cpu = env_rate(remote, seconds)
    finally:
        remote.close()
    return {
        "areas_per_process": areas,
        "processes": procs,
        "agents": areas * procs,
        "in_process_agent_steps_per_sec": round(in_process),
        "grpc_agent_steps_per_sec": round(grpc_rate),
        "overhead": round(in_process / grpc_rate, 2),
        "in_process_cpu_us_per_agent_step": round(in_cpu, 2),
        "grpc_cpu_us_per_agent_step": round(grpc_cpu, 2),
        "cpu_overhead": round(grpc_cpu / in_cpu, 2),
    }


def train_rate(overrides: list[str], steps: int) -> float:
    """steps_per_sec of the last summary window of a PPO 3DBall run with the tuned settings."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "mlx",
            *overrides,
            "tuned=3dball_ppo",
            f"trainer.max_steps={steps}",
            f"trainer.summary_freq={steps // 2}",
            "seed=1",
            "run_id=b",
            "tracking=none",
            "progress=plain",
        ]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-1000:]}")
        rows = [json.loads(x) for x in (Path(tmp) / "results/b/run_logs/stats.jsonl").read_text().splitlines()]
        return float(rows[-1]["steps_per_sec"])


def measure_training(areas: int, procs: int, steps: int) -> dict:
    in_process = train_rate(["env=3dball", f"env.num_areas={areas}", f"env.num_envs={procs}"], steps)
    grpc_rate = train_rate(
        [
            "env=unity",
            f"env.path={Path(sys.executable).with_name('mlx-env')}",
            "env.env_args=[3dball]",
            f"env.num_envs={procs}",
            f"env.num_areas={areas}",
            "env.base_port=0",
        ],
        steps,
    )
    return {
        "areas_per_process": areas,
        "processes": procs,
        "agents": areas * procs,
        "in_process_agent_steps_per_sec": round(in_process),
        "grpc_agent_steps_per_sec": round(grpc_rate),
        "overhead": round(in_process / grpc_rate, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--areas", type=int, nargs="+", default=[12, 64])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--train-steps", type=int, default=24000, help="0 skips the training measurement")
    args = parser.parse_args()
    load_before = os.getloadavg()
    env_rows = [measure_env(a, p, args.seconds) for a in args.areas for p in args.procs]
    header = f"{'measure':<9} {'areas':>5} {'procs':>5} {'in-process/s':>13} {'gRPC/s':>10} {'overhead':>8}"
    print(header + f" {'CPU us/step in':>14} {'gRPC':>7} {'ratio':>6}")
    for r in env_rows:
        print(
            f"{'env':<9} {r['areas_per_process']:>5} {r['processes']:>5} {r['in_process_agent_steps_per_sec']:>13} "
            f"{r['grpc_agent_steps_per_sec']:>10} {r['overhead']:>7}x {r['in_process_cpu_us_per_agent_step']:>14} "
            f"{r['grpc_cpu_us_per_agent_step']:>7} {r['cpu_overhead']:>5}x"
        )
    train_rows = []
    if args.train_steps:
        train_rows = [measure_training(12, p, args.train_steps) for p in args.procs]
        for r in train_rows:
            print(
                f"{'training':<9} {r['areas_per_process']:>5} {r['processes']:>5} "
                f"{r['in_process_agent_steps_per_sec']:>13} {r['grpc_agent_steps_per_sec']:>10} {r['overhead']:>7}x"
            )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "3DBall agent-steps/s in-process vs over gRPC",
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                },
                "env_only": env_rows,
                "training_ppo": train_rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
