"""Imitation from recorded demonstrations against extrinsic reward alone, at the same budget.

    python benchmarks/imitation.py [--seeds 1 2 3] [--max-steps 100000] [--summary-freq 10000]
                                   [--variants extrinsic gail_bc bc gail] [--episodes 100]

PushBlock with upstream ML-Agents' imitation setup (``experiment=pushblock_imitation``: PPO with PushBlock's
tuned settings, GAIL at strength 0.01 and behavioral cloning annealed over 50k steps, from
demos/ExpertPushBlock.demo, 12 episodes of a trained mlx policy) on its 100k-step budget, one run at a
time, MLflow off. Variants, all at the same budget and seeds:

    extrinsic  python -m mlx env=pushblock trainer.max_steps=N                  (the env's reward only)
    gail_bc    python -m mlx experiment=pushblock_imitation trainer.max_steps=N  (upstream's imitation config)
    bc         ... experiment=pushblock_imitation reward_signals=[extrinsic]     (behavioral cloning only)
    gail       ... experiment=pushblock_imitation trainer.behavioral_cloning=null (GAIL only)

Each final policy (its exported ONNX) is evaluated with ``python -m mlx mode=evaluate`` for ``--episodes``
episodes with sampled actions (as in training). Writes benchmarks/results/imitation_pushblock.json (reward
curves, the step from which the mean reward stays above --threshold, the mean reward over training, final and
evaluated rewards, training seconds) and prints a table. The claim it checks: GAIL + BC beats extrinsic-only
at the same budget on every seed, both over training and evaluated at the end.
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
VARIANTS: dict[str, list[str]] = {
    "extrinsic": ["env=pushblock"],
    "gail_bc": ["experiment=pushblock_imitation"],
    "bc": ["experiment=pushblock_imitation", "reward_signals=[extrinsic]"],
    "gail": ["experiment=pushblock_imitation", "trainer.behavioral_cloning=null"],
}


def train(variant: str, seed: int, args: argparse.Namespace, work: Path) -> dict:
    run_id = f"{variant}-{seed}"
    start = time.perf_counter()
    mlx(
        *VARIANTS[variant],
        f"seed={seed}",
        f"run_id={run_id}",
        f"trainer.max_steps={args.max_steps}",
        f"trainer.summary_freq={args.summary_freq}",
        "tracking=none",
        "progress=plain",
        cwd=work,
    )
    wall = time.perf_counter() - start
    rows = stats_rows(work / "results" / run_id)
    curve = [{"step": r["step"], "mean_reward": r["mean_reward"], "episodes": r.get("episodes")} for r in rows]
    mlx(  # the exported policy: the actor alone, whatever reward signals (value heads) the run had
        "env=pushblock",
        "mode=evaluate",
        f"run_id={run_id}",
        f"evaluate.policy=results/{run_id}/PushBlock.onnx",
        f"seed={seed + 1000}",
        f"evaluate.episodes={args.episodes}",
        "evaluate.deterministic=false",
        "tracking=none",
        cwd=work,
    )
    report = json.loads((work / "results" / run_id / "run_logs" / "evaluation.json").read_text())["PushBlock"]
    return {
        "wall_seconds": round(wall, 1),
        "training_seconds": rows[-1]["time_elapsed"],
        "steps": rows[-1]["step"],
        **score(curve, args.threshold),
        "final_mean_reward": rows[-1]["mean_reward"],
        "evaluation_mean_return": round(report["mean_return"], 4),
        "evaluation_std_return": round(report["std_return"], 4),
        "curve": curve,
    }


def score(curve: list[dict], threshold: float) -> dict:
    """How fast a run learned, from its summaries. A summary's mean covers only the episodes that ended in
    its window, and early windows end only a few (the quick successes), so the first window above the
    threshold says little; the step from which every later summary stays above it, and the mean of all
    summaries (area under the curve / budget), do not reward such luck."""
    means = [c["mean_reward"] for c in curve]
    sustained = None
    for i, c in enumerate(curve):
        if all(m is not None and m >= threshold for m in means[i:]):
            sustained = c["step"]
            break
    known = [m for m in means if m is not None]
    return {
        "steps_to_sustained_threshold": sustained,
        "mean_reward_over_training": round(sum(known) / len(known), 4) if known else None,
    }


def rescore(path: Path, threshold: float) -> None:
    """Recompute the scores of a results file from its stored curves (after changing score())."""
    result = json.loads(path.read_text())
    for by_seed in result["runs"].values():
        for run in by_seed.values():
            run.pop("steps_to_threshold", None)
            run.update(score(run["curve"], threshold))
    report(result, path)


def report(result: dict, out: Path) -> None:
    runs = result["runs"]
    if "gail_bc" in runs and "extrinsic" in runs:
        result["gail_bc_beats_extrinsic_on_every_seed"] = all(
            runs["gail_bc"][s]["evaluation_mean_return"] > runs["extrinsic"][s]["evaluation_mean_return"]
            and runs["gail_bc"][s]["mean_reward_over_training"] > runs["extrinsic"][s]["mean_reward_over_training"]
            for s in runs["gail_bc"]
            if s in runs["extrinsic"]
        )
    out.write_text(json.dumps(result, indent=2) + "\n")
    seeds = " / ".join(next(iter(runs.values())))
    threshold = result["threshold"]
    print(f"\n| PushBlock, {result['max_steps']} steps, seeds {seeds} | evaluated mean return (100 episodes) | "
          f"mean reward over training | steps from which the mean stays >= {threshold} |")  # fmt: skip
    print("| --- | --- | --- | --- |")
    for variant, by_seed in runs.items():
        evals = " / ".join(f"{r['evaluation_mean_return']:.2f}" for r in by_seed.values())
        auc = " / ".join(f"{r['mean_reward_over_training']:.2f}" for r in by_seed.values())
        held = " / ".join(str(r["steps_to_sustained_threshold"] or "-") for r in by_seed.values())
        print(f"| {variant} | {evals} | {auc} | {held} |")
    print(f"\nwrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--max-steps", type=int, default=100_000, help="every variant's budget (upstream's 100k)")
    parser.add_argument("--summary-freq", type=int, default=10_000)
    parser.add_argument("--threshold", type=float, default=4.5, help="mean reward that counts as learned")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "imitation_pushblock.json")
    parser.add_argument("--rescore", action="store_true", help="only recompute the scores of --out's curves")
    args = parser.parse_args()
    if args.rescore:
        rescore(args.out, args.threshold)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="mlx-imitation-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()}, {platform.system()}",
        "max_steps": args.max_steps,
        "threshold": args.threshold,
        "runs": {},
    }
    for variant in args.variants:
        for seed in args.seeds:
            print(f"training {variant} seed {seed} ...", flush=True)
            run = train(variant, seed, args, work)
            result["runs"].setdefault(variant, {})[str(seed)] = run
            print(
                f"  final mean reward {run['final_mean_reward']}, evaluated {run['evaluation_mean_return']}, "
                f"mean over training {run['mean_reward_over_training']}, {run['training_seconds']:.0f} s",
                flush=True,
            )
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")  # keep what is done if a later run fails
    report(result, args.out)


if __name__ == "__main__":
    main()
