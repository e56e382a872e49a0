"""Parameter randomisation on 3DBall: a policy trained on random masses and scales against one trained on
the default ball, both evaluated at the extremes of the ranges.

    python benchmarks/randomization_3dball.py [--seed 1] [--episodes 100] [--max-steps 500000]

Trains two PPO policies with the upstream settings (tuned=3dball_ppo, 12 areas, MLflow off), one run at a
time:

    python -m mlx env=3dball seed=S run_id=rand-plain                               # mass 1, scale 1
    python -m mlx env=3dball seed=S run_id=rand-randomized sampler=3dball_randomize  # upstream 3DBall_randomize

then evaluates each (``python -m mlx mode=evaluate run_id=<id> env.parameters.mass=M env.parameters.scale=S``,
deterministic actions, ``--episodes`` episodes) at the default ball and the four corners of the upstream
ranges (mass 0.5 / 10, scale 0.75 / 3). Writes benchmarks/results/randomization_3dball.json and prints a
table. The claim it checks: the randomised policy keeps a mean return >= 90 at every extreme, where the
plain one does worse. (Mass does not change 3DBall's dynamics, in Unity or here: the platform is kinematic;
scale, the ball's size, does.)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from common import mlx, stats_rows  # benchmarks/common.py

HERE = Path(__file__).resolve().parent
CONDITIONS = [(1.0, 1.0), (0.5, 0.75), (0.5, 3.0), (10.0, 0.75), (10.0, 3.0)]  # (mass, scale)
TARGET = 90.0


def train(run_id: str, extra: list[str], args: argparse.Namespace, work: Path) -> dict:
    start = time.perf_counter()
    mlx(
        "env=3dball",
        f"seed={args.seed}",
        f"run_id={run_id}",
        f"trainer.max_steps={args.max_steps}",
        "tracking=none",
        "progress=plain",
        *extra,
        cwd=work,
    )
    rows = stats_rows(work / "results" / run_id)
    return {
        "wall_seconds": round(time.perf_counter() - start, 1),
        "training_seconds": rows[-1]["time_elapsed"],
        "steps": rows[-1]["step"],
        "final_mean_reward": rows[-1]["mean_reward"],
    }


def evaluate(run_id: str, mass: float, scale: float, args: argparse.Namespace, work: Path) -> dict:
    mlx(
        "env=3dball",
        "mode=evaluate",
        f"run_id={run_id}",
        f"seed={args.seed}",
        f"env.parameters.mass={mass}",
        f"env.parameters.scale={scale}",
        f"evaluate.episodes={args.episodes}",
        "tracking=none",
        cwd=work,
    )
    report = json.loads((work / "results" / run_id / "run_logs" / "evaluation.json").read_text())["3DBall"]
    return {"mass": mass, "scale": scale, "mean_return": report["mean_return"], "std_return": report["std_return"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=500_000, help="upstream 3DBall(_randomize): 500000")
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "randomization_3dball.json")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mlx-rand-"))
    work.mkdir(parents=True, exist_ok=True)
    policies = {"plain": [], "randomized": ["sampler=3dball_randomize"]}
    result: dict = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()}, {platform.system()}",
        "seed": args.seed,
        "episodes": args.episodes,
        "max_steps": args.max_steps,
        "policies": {},
    }
    for name, extra in policies.items():
        run_id = f"rand-{name}"
        print(f"training {name} ({' '.join(extra) or 'default ball'}) ...", flush=True)
        trained = train(run_id, extra, args, work)
        evals = [evaluate(run_id, m, s, args, work) for m, s in CONDITIONS]
        result["policies"][name] = {"training": trained, "evaluations": evals}
        for e in evals:
            print(f"  {name:10s} mass {e['mass']:5.2f} scale {e['scale']:4.2f}: {e['mean_return']:7.2f}", flush=True)
    extremes = {name: min(e["mean_return"] for e in p["evaluations"][1:]) for name, p in result["policies"].items()}
    result["worst_extreme"] = extremes
    result["randomized_keeps_target_at_extremes"] = extremes["randomized"] >= TARGET
    result["plain_worse_at_extremes"] = extremes["plain"] < extremes["randomized"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| mass | scale | plain | randomized |\n| --- | --- | --- | --- |")
    for i, (m, s) in enumerate(CONDITIONS):
        plain = result["policies"]["plain"]["evaluations"][i]["mean_return"]
        rand = result["policies"]["randomized"]["evaluations"][i]["mean_return"]
        print(f"| {m:g} | {s:g} | {plain:.1f} | {rand:.1f} |")
    print(f"\nworst extreme: {extremes}; wrote {args.out}")


if __name__ == "__main__":
    main()
