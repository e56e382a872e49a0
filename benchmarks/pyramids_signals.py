"""Pyramids' sparse reward: PPO with curiosity, with RND, and with the extrinsic reward alone.

    python benchmarks/pyramids_signals.py [--seeds 1] [--target 1.75] [--extrinsic-steps 1260000]
                                          [--variants curiosity rnd extrinsic] [--work DIR]

Pyramids pays +2 only after the agent presses a switch, walks to the pyramid that appears and knocks its
gold brick over (-0.001 per step otherwise), so random exploration rarely sees a reward. Variants, each the
command a user types (upstream settings, MLflow off):

    curiosity  python -m mlx env=pyramids stop_at_reward=T               (upstream Pyramids.yaml, 10M budget)
    rnd        python -m mlx experiment=pyramids_rnd stop_at_reward=T    (upstream PyramidsRND.yaml, 3M budget)
    extrinsic  python -m mlx env=pyramids reward_signals=[extrinsic] trainer.max_steps=N

The extrinsic-only run gets ``--extrinsic-steps`` (by default about what curiosity needed; at least what
the intrinsic runs needed is a fair comparison). Reports per run: steps and seconds to the target (the
run's clock), the best and last mean reward, end-to-end steps/s. Runs already finished in ``--work``
(results/<variant>-<seed>) are read rather than trained again. Writes
benchmarks/results/pyramids_signals.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

from common import mlx, stats_rows  # benchmarks/common.py

HERE = Path(__file__).resolve().parent
VARIANTS: dict[str, list[str]] = {
    "curiosity": ["env=pyramids"],
    "rnd": ["experiment=pyramids_rnd"],
    "extrinsic": ["env=pyramids", "reward_signals=[extrinsic]"],
}


def finished(folder: Path) -> bool:
    """A run that ended (target reached or budget spent) has written its final policy."""
    return (folder / "Pyramids.onnx").exists()


def run(variant: str, seed: int, args: argparse.Namespace) -> dict:
    run_id = f"{variant}-{seed}"
    folder = args.work / "results" / run_id
    if not finished(folder):
        budget = [f"trainer.max_steps={args.extrinsic_steps}"] if variant == "extrinsic" else []
        mlx(*VARIANTS[variant], *budget, f"seed={seed}", f"run_id={run_id}", f"stop_at_reward={args.target}",
            "tracking=none", "progress=plain", "force=true", cwd=args.work)  # fmt: skip
    rows = stats_rows(folder)
    means = [r["mean_reward"] for r in rows if r["mean_reward"] is not None]
    hit = next((r for r in rows if r["mean_reward"] is not None and r["mean_reward"] >= args.target), None)
    return {
        "overrides": VARIANTS[variant],
        "reached": hit is not None,
        "steps_to_target": hit["step"] if hit else None,
        "seconds_to_target": hit["time_elapsed"] if hit else None,
        "steps_run": rows[-1]["step"],
        "best_mean_reward": max(means) if means else None,
        "last_mean_reward": rows[-1]["mean_reward"],
        "end_to_end_agent_steps_per_sec": round(rows[-1]["step"] / rows[-1]["time_elapsed"], 1),
        "curve": [{"step": r["step"], "mean_reward": r["mean_reward"]} for r in rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--target", type=float, default=1.75, help="upstream's Pyramids benchmark reward")
    parser.add_argument("--extrinsic-steps", type=int, default=1_260_000)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pyramids_signals.json")
    args = parser.parse_args()
    args.work = (args.work or Path(tempfile.mkdtemp(prefix="mlx-pyramids-"))).resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()}, {platform.system()}",
        "target": args.target,
        "extrinsic_steps": args.extrinsic_steps,
        "runs": {},
    }
    for variant in args.variants:
        for seed in args.seeds:
            print(f"{variant} seed {seed} ...", flush=True)
            result["runs"].setdefault(variant, {})[str(seed)] = run(variant, seed, args)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n| Pyramids, PPO | seed | steps to {args.target} | seconds | best mean reward | steps run |")
    print("| --- | --- | --- | --- | --- | --- |")
    for variant, by_seed in result["runs"].items():
        for seed, r in by_seed.items():
            steps = f"{r['steps_to_target']:,}" if r["reached"] else "not reached"
            secs = f"{r['seconds_to_target']:.0f}" if r["reached"] else "-"
            print(f"| {variant} | {seed} | {steps} | {secs} | {r['best_mean_reward']:.2f} | {r['steps_run']:,} |")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
