"""WallJump with and without the upstream curriculum, at the same budget.

    python benchmarks/walljump_curriculum.py [--seed 1] [--big-steps 2000000] [--small-steps 500000]
                                            [--num-areas 48] [--episodes 1000] [--work DIR] [--runs NAME ...]

Two PPO runs with the upstream settings (tuned=walljump_ppo), one at a time or one per process with
``--runs`` and a shared ``--work``, MLflow off:

    python -m mlx env=walljump curriculum=walljump seed=S trainer.max_steps=B behaviors.SmallWallJump.max_steps=s
    python -m mlx env=walljump                     seed=S trainer.max_steps=B behaviors.SmallWallJump.max_steps=s

Upstream trains BigWallJump for 20M and SmallWallJump for 5M steps; the same 4:1 budgets are scaled down
here (the curriculum's progress thresholds, 10/30/50% of each behaviour's max_steps, scale with them).
Each run ends when BigWallJump has used its budget (see ``train``).
``--num-areas`` (48, the scene has 24) only makes the runs faster: both runs use the same. Each final policy
is then evaluated on the full task (upstream wall heights: none or 4 for SmallWallJump, 8 for BigWallJump)
with ``python -m mlx mode=evaluate`` for ``--episodes`` episodes per behaviour, actions sampled as in
training (ML-Agents' inference default). Writes benchmarks/results/walljump_curriculum.json (reward curves
with lesson numbers, training time, final summaries, evaluation) and prints a table. The claim it checks:
with the curriculum both behaviours reach a mean reward of 0.8 on the full task and beat the run without.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import mlx, stats_rows  # benchmarks/common.py

HERE = Path(__file__).resolve().parent
BEHAVIORS = ("SmallWallJump", "BigWallJump")
TARGET = 0.8
RUNS = {"curriculum": ["curriculum=walljump"], "no_curriculum": []}


def big_steps_done(folder: Path) -> int:
    """BigWallJump's last logged step (0 before its first summary)."""
    try:
        rows = [r for r in stats_rows(folder) if r["behavior"] == "BigWallJump"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return rows[-1]["step"] if rows else 0


def train(run_id: str, extra: list[str], args: argparse.Namespace, work: Path) -> dict:
    """Train (unless --no-train) until BigWallJump has used its budget, then summarise the run's statistics.

    Without the curriculum BigWallJump's episodes mostly run to their time limit, so SmallWallJump gets a
    small share of the steps and would need several times BigWallJump's budget to reach its own max_steps.
    Both runs therefore end (SIGINT: the run saves and exits) when BigWallJump reached its budget; the
    steps SmallWallJump got by then are in the results."""
    folder = work / "results" / run_id
    log = work / f"{run_id}.log"
    if not args.no_train:
        start = time.perf_counter()
        overrides = [
            "env=walljump",
            f"env.num_areas={args.num_areas}",
            f"seed={args.seed}",
            f"run_id={run_id}",
            f"trainer.max_steps={args.big_steps}",
            f"behaviors.SmallWallJump.max_steps={args.small_steps}",
            "tracking=none",
            "progress=plain",
            *extra,
        ]
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlx", *overrides], cwd=work, stdout=out, stderr=subprocess.STDOUT
            )
            while proc.poll() is None:
                if big_steps_done(folder) >= args.big_steps:
                    proc.send_signal(signal.SIGINT)
                    proc.wait(timeout=600)
                    break
                time.sleep(10)
        if proc.returncode not in (0, 130, -signal.SIGINT):  # a SIGINT during the run's own exit ends it so
            raise SystemExit(f"mlx {' '.join(overrides)} failed:\n{log.read_text()[-2000:]}")
        (work / f"{run_id}.wall_seconds").write_text(f"{time.perf_counter() - start:.1f}")
    rows = stats_rows(folder)
    wall = work / f"{run_id}.wall_seconds"
    out: dict = {
        "wall_seconds": float(wall.read_text()) if wall.exists() else None,
        "training_seconds": rows[-1]["time_elapsed"],
        "lesson_changes": [ln for ln in log.read_text().splitlines() if "Parameter '" in ln] if log.exists() else [],
        "behaviors": {},
    }
    for name in BEHAVIORS:
        mine = [r for r in rows if r["behavior"] == name]
        curve = [
            {
                "step": r["step"],
                "mean_reward": r["mean_reward"],
                **{k.rsplit("/", 1)[1]: v for k, v in r.items() if k.startswith("Environment/Lesson Number/")},
            }
            for r in mine
        ]
        last = [r["mean_reward"] for r in mine[-3:] if r["mean_reward"] is not None]
        out["behaviors"][name] = {
            "steps": mine[-1]["step"] if mine else 0,
            "final_mean_reward": round(sum(last) / len(last), 4) if last else None,
            "curve": curve,
        }
    return out


def evaluate(run_id: str, args: argparse.Namespace, work: Path) -> dict:
    mlx(
        "env=walljump",
        "mode=evaluate",
        f"run_id={run_id}",
        f"seed={args.seed + 1000}",
        f"env.num_areas={args.num_areas}",
        f"evaluate.episodes={args.episodes}",
        "evaluate.deterministic=false",
        "tracking=none",
        cwd=work,
    )
    report = json.loads((work / "results" / run_id / "run_logs" / "evaluation.json").read_text())
    return {name: {k: report[name][k] for k in ("episodes", "mean_return", "std_return")} for name in BEHAVIORS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--big-steps", type=int, default=2_000_000, help="BigWallJump's max_steps (upstream 20M)")
    parser.add_argument("--small-steps", type=int, default=500_000, help="SmallWallJump's max_steps (upstream 5M)")
    parser.add_argument("--num-areas", type=int, default=48)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "walljump_curriculum.json")
    parser.add_argument(
        "--no-train", action="store_true", help="summarise and evaluate the runs already in --work (same --runs)"
    )
    parser.add_argument(
        "--runs",
        nargs="*",
        choices=RUNS,
        default=list(RUNS),
        help="train only these (e.g. one per process, side by side, with the same --work); the others are "
        "read from --work/<run>.json, written when a run has been trained and evaluated (--runs alone: gather)",
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mlx-walljump-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()}, {platform.system()}",
        "seed": args.seed,
        "num_areas": args.num_areas,
        "max_steps": {"BigWallJump": args.big_steps, "SmallWallJump": args.small_steps},
        "runs": {},
    }
    for name, extra in RUNS.items():
        done = work / f"{name}.json"
        if name not in args.runs:
            if done.exists():
                result["runs"][name] = json.loads(done.read_text())
            continue
        run_id = f"walljump-{name}"
        print(f"training {name} ...", flush=True)
        trained = train(run_id, extra, args, work)
        trained["evaluation"] = evaluate(run_id, args, work)
        result["runs"][name] = trained
        done.write_text(json.dumps(trained, indent=2) + "\n")
        for behavior in BEHAVIORS:
            e = trained["evaluation"][behavior]
            print(f"  {name:14s} {behavior:14s} evaluation mean return {e['mean_return']:.3f}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")  # keep what is done if the next run fails
    runs = result["runs"]
    if len(runs) < len(RUNS):
        print(f"trained {sorted(runs)}; run the others (--runs) with the same --work for the comparison")
        return
    score = {n: {b: runs[n]["evaluation"][b]["mean_return"] for b in BEHAVIORS} for n in runs}
    result["curriculum_reaches_target"] = all(v >= TARGET for v in score["curriculum"].values())
    result["curriculum_beats_no_curriculum"] = all(
        score["curriculum"][b] > score["no_curriculum"][b] for b in BEHAVIORS
    )
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| run | behaviour | final training mean reward | evaluation mean return (full task) | training s |")
    print("| --- | --- | --- | --- | --- |")
    for n, run in runs.items():
        for b in BEHAVIORS:
            final = run["behaviors"][b]["final_mean_reward"]
            print(f"| {n} | {b} | {final} | {score[n][b]:.3f} | {run['training_seconds']:.0f} |")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
