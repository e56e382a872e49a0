"""Env-only throughput: agent-steps per second of native envs under random actions.

    python benchmarks/env_throughput.py [--envs 3dball] [--agents 1 12 64 4096] [--seconds 3]

An agent-step is one decision of one agent (for 3DBall: 5 physics steps). Each measurement builds the
env with that many areas, resets it, warms up, then loops set_actions / step / get_steps (what a
trainer does) for about --seconds, cycling through random action batches drawn beforehand so that
drawing them is not timed (random actions ignore action masks: GridWorld's masked moves are then blocked
no-ops). Envs in MASKED, where an unmasked move is almost always a no-op (Match3: about 11 of 127 moves
are valid), instead draw each step's actions among the allowed ones, and that draw is timed. Prints a
table, with the bytes of one agent's observations (all specs, float32), and writes
benchmarks/results/env_throughput.json: the measured envs' rows replace their earlier ones, other envs'
rows are kept. Envs come from ENVS (config name -> how to build one), so a new env is one more entry there.
Target for 3DBall on a 2-core machine: >= 5M agent-steps/s at 4096 areas.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mlx.envs import NATIVE_ENVS, BaseEnv, make_env
from mlx.envs.api import ActionTuple

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "env_throughput.json"
DEFAULT_AGENTS = [1, 12, 64, 4096]
ACTION_BATCHES = 64  # random action batches cycled through during a measurement
WARMUP_STEPS = 50
WARMUP_SECONDS = 2.0  # warm-up stops at WARMUP_STEPS or after this long (camera envs at 1024 areas)
CHUNK_SECONDS = 0.1  # steps between clock reads take about this long


def _native(name: str) -> Callable[[int, int], BaseEnv]:
    return lambda num_areas, seed: make_env(name, num_areas=num_areas, seed=seed)


# Env name -> factory(num_areas, seed). Every native env registered in mlx.envs is measurable.
ENVS: dict[str, Callable[[int, int], BaseEnv]] = {name: _native(name) for name in NATIVE_ENVS}
MASKED = {"match3"}  # envs measured with masked random actions (see the module docstring)


def measure(
    factory: Callable[[int, int], BaseEnv], num_areas: int, seconds: float, seed: int = 0, masked: bool = False
) -> dict:
    """Steps one env for about ``seconds`` (after a warm-up) and returns its rates (``masked``: actions
    drawn every step among those the masks allow)."""
    env = factory(num_areas, seed)
    rng = np.random.default_rng(seed)
    env.reset()
    names = list(env.behavior_specs)
    counts = {name: len(env.get_steps(name)[0]) for name in names}
    # Enough actions for every agent of a behaviour; envs whose deciding agents vary from step to step
    # (WallJump: each area's agent is one of two behaviours per episode) take the first n rows.
    cap = max(num_areas, *counts.values())
    batches = [
        {name: env.behavior_specs[name].action_spec.random(cap, rng) for name in names} for _ in range(ACTION_BATCHES)
    ]
    deciding = dict(counts)

    def run(steps: int, offset: int) -> int:
        agent_steps = 0
        for i in range(steps):
            acts = batches[(offset + i) % ACTION_BATCHES]
            for name in names:
                a, n = acts[name], deciding[name]
                if masked:
                    decision = env.get_steps(name)[0]
                    a = env.behavior_specs[name].action_spec.random(n, rng, decision.action_mask)
                    env.set_actions(name, a)
                    continue
                env.set_actions(name, a if n == cap else ActionTuple(a.continuous[:n], a.discrete[:n]))
            env.step()
            for name in names:
                deciding[name] = len(env.get_steps(name)[0])
                agent_steps += deciding[name]
        return agent_steps

    warm_start = time.perf_counter()
    warm = 0
    while warm < WARMUP_STEPS and (warm < 2 or time.perf_counter() - warm_start < WARMUP_SECONDS):
        run(1, warm)
        warm += 1
    step_time = (time.perf_counter() - warm_start) / warm
    # Chunks of steps between clock reads, sized so that reading the clock costs nothing.
    chunk = max(1, int(CHUNK_SECONDS / step_time))
    steps = agent_steps = 0
    start = time.perf_counter()
    while True:
        agent_steps += run(chunk, steps)
        steps += chunk
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    obs_bytes = sum(4 * int(np.prod(o.shape)) for spec in env.behavior_specs.values() for o in spec.observation_specs)
    env.close()
    return {
        "num_areas": num_areas,
        "agents": sum(counts.values()),
        "obs_bytes_per_agent": obs_bytes,
        "steps": steps,
        "seconds": round(elapsed, 3),
        "us_per_step": round(elapsed / steps * 1e6, 1),
        "agent_steps_per_sec": round(agent_steps / elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["3dball"], choices=sorted(ENVS))
    parser.add_argument(
        "--agents",
        type=int,
        nargs="+",
        default=DEFAULT_AGENTS,
        help="numbers of areas to measure (3DBall: one agent per area)",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    results: dict[str, list[dict]] = {}
    if args.out.exists():  # keep the rows of envs not measured this time
        results = json.loads(args.out.read_text()).get("results", {})
    print(f"{'env':12s} {'areas':>6s} {'agents':>7s} {'us/step':>10s} {'agent-steps/s':>15s} {'obs B/agent':>12s}")
    for name in args.envs:
        results[name] = []
        for areas in args.agents:
            row = measure(ENVS[name], areas, args.seconds, masked=name in MASKED)
            results[name].append(row)
            print(
                f"{name:12s} {areas:6d} {row['agents']:7d} {row['us_per_step']:10.1f} "
                f"{row['agent_steps_per_sec']:15,d} {row['obs_bytes_per_agent']:12,d}",
                flush=True,
            )

    summary = {
        "benchmark": "env-only agent-steps/s under random actions",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "processor": platform.processor() or platform.machine(),
        },
        "seconds_per_measurement": args.seconds,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
