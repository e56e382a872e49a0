"""Parameter randomisation on 3DBall: a policy trained on random masses and scales against one trained on
the default ball, both evaluated at the extremes of the ranges.

    python benchmarks/randomization_3dball.py [--seeds 1 2 3] [--episodes 100] [--max-steps 500000] [--work DIR]

Trains two PPO policies per seed with the upstream settings (tuned=3dball_ppo, 12 areas, MLflow off), one run
at a time (a run already finished in ``--work`` is reused):

    python -m mlx env=3dball seed=S run_id=rand-plain-S                               # mass 1, scale 1
    python -m mlx env=3dball seed=S run_id=rand-randomized-S sampler=3dball_randomize  # upstream 3DBall_randomize

then evaluates each (``python -m mlx mode=evaluate run_id=<id> env.parameters.mass=M
env.parameters.scale=S env.parameters.gravity=G``, deterministic actions, ``--episodes`` episodes) at the
default ball, at the four corners of the upstream ranges (mass 0.5 / 10, scale 0.75 / 3), and at gravity 4
and 40 (default 9.81; upstream's config does not randomise it). Writes
benchmarks/results/randomization_3dball.json and prints a table. The claim it checks, per seed: the randomised
policy keeps a mean return >= 90 at every corner, where the plain one does worse. (Mass does not change 3DBall's
dynamics, in Unity or here: the platform is kinematic. Nor does the ball's radius: a rolling sphere's
acceleration does not depend on it. But a larger ball sits higher, so the plain policy sees a height above the
platform it never saw in training.)
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
# (mass, scale, gravity): the default ball, the four corners of upstream's ranges, then gravity far beyond
# Earth's (not randomised by upstream's config): a check that the plain policy's robustness is not an artefact
# of mass and scale alone.
CONDITIONS = [
    (1.0, 1.0, 9.81),
    (0.5, 0.75, 9.81),
    (0.5, 3.0, 9.81),
    (10.0, 0.75, 9.81),
    (10.0, 3.0, 9.81),
    (1.0, 1.0, 4.0),
    (1.0, 1.0, 40.0),
]
CORNERS = range(1, 5)  # the rows the claim is about
TARGET = 90.0


def train(run_id: str, seed: int, extra: list[str], args: argparse.Namespace, work: Path) -> dict:
    start = time.perf_counter()
    run_dir = work / "results" / run_id
    status = run_dir / "run_logs" / "training_status.json"
    reused = status.exists() and "final_checkpoint" in json.loads(status.read_text())["3DBall"]
    if not reused:
        mlx(
            "env=3dball",
            f"seed={seed}",
            f"run_id={run_id}",
            f"trainer.max_steps={args.max_steps}",
            "tracking=none",
            "progress=plain",
            *extra,
            cwd=work,
        )
    rows = stats_rows(run_dir)
    return {
        "reused": reused,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "training_seconds": rows[-1]["time_elapsed"],
        "steps": rows[-1]["step"],
        "final_mean_reward": rows[-1]["mean_reward"],
    }


def evaluate(
    run_id: str, seed: int, mass: float, scale: float, gravity: float, args: argparse.Namespace, work: Path
) -> dict:
    mlx(
        "env=3dball",
        "mode=evaluate",
        f"run_id={run_id}",
        f"seed={seed}",
        f"env.parameters.mass={mass}",
        f"env.parameters.scale={scale}",
        f"env.parameters.gravity={gravity}",
        f"evaluate.episodes={args.episodes}",
        "tracking=none",
        cwd=work,
    )
    report = json.loads((work / "results" / run_id / "run_logs" / "evaluation.json").read_text())["3DBall"]
    return {
        "mass": mass,
        "scale": scale,
        "gravity": gravity,
        "mean_return": report["mean_return"],
        "std_return": report["std_return"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
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
        "seeds": args.seeds,
        "episodes": args.episodes,
        "max_steps": args.max_steps,
        "conditions": [{"mass": m, "scale": s, "gravity": g} for m, s, g in CONDITIONS],
        "corners": list(CORNERS),
        "runs": {},
    }
    for seed in args.seeds:
        runs = result["runs"][str(seed)] = {}
        for name, extra in policies.items():
            run_id = f"rand-{name}-{seed}"
            print(f"seed {seed}: training {name} ({' '.join(extra) or 'default ball'}) ...", flush=True)
            trained = train(run_id, seed, extra, args, work)
            evals = [evaluate(run_id, seed, m, s, g, args, work) for m, s, g in CONDITIONS]
            worst = min(evals[i]["mean_return"] for i in CORNERS)
            runs[name] = {"training": trained, "evaluations": evals, "worst_corner": worst}
            for e in evals:
                print(
                    f"  {name:10s} mass {e['mass']:5.2f} scale {e['scale']:4.2f} gravity {e['gravity']:5.2f}: "
                    f"{e['mean_return']:7.2f}",
                    flush=True,
                )
        runs["randomized_keeps_target_at_corners"] = runs["randomized"]["worst_corner"] >= TARGET
        runs["plain_worse_at_corners"] = runs["plain"]["worst_corner"] < runs["randomized"]["worst_corner"]
    every = result["runs"].values()
    result["randomized_keeps_target_at_corners"] = all(r["randomized_keeps_target_at_corners"] for r in every)
    result["plain_worse_at_corners"] = all(r["plain_worse_at_corners"] for r in every)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    seeds = " / ".join(str(s) for s in args.seeds)
    print(f"\nmean return over {args.episodes} episodes, seeds {seeds}\n")
    print("| mass | scale | gravity | plain | randomized |\n| --- | --- | --- | --- | --- |")
    for i, (m, s, g) in enumerate(CONDITIONS):
        cells = [
            " / ".join(f"{result['runs'][str(seed)][name]['evaluations'][i]['mean_return']:.1f}" for seed in args.seeds)
            for name in policies
        ]
        print(f"| {m:g} | {s:g} | {g:g} | {cells[0]} | {cells[1]} |")
    print(
        f"\nrandomized >= {TARGET:g} at every corner: {result['randomized_keeps_target_at_corners']}; "
        f"plain worse at the corners: {result['plain_worse_at_corners']}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
