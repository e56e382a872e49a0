"""Hallway needs memory: PPO with the upstream LSTM config against the same config without memory.

    python benchmarks/hallway_memory.py [--seeds 1] [--target 0.7] [--work DIR]

Hallway shows the symbol (O or X) only near the start; the matching goal is at the far end, out of sight
of the symbol, so a policy without memory can only guess (about half its episodes end at the wrong goal).
Variants, each the command a user types (upstream Hallway.yaml settings, MLflow off):

    lstm       python -m mlx env=hallway stop_at_reward=T                                (10M budget)
    no_memory  python -m mlx env=hallway trainer.network_settings.memory=null            (same settings)

The no-memory run keeps every other setting, its learning-rate schedule over the upstream 10M steps
included, and is stopped once it has run as many steps as the LSTM run needed (at least --min-steps), so
both are compared at the same budget and the same schedule. Runs already in ``--work``
(results/<variant>-<seed>) are read rather than trained again; ``--no-train`` only reads them (e.g. runs
stopped by hand). Writes benchmarks/results/hallway_memory.json.
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
LSTM = ["env=hallway"]
NO_MEMORY = ["env=hallway", "trainer.network_settings.memory=null"]


def summary(folder: Path, target: float) -> dict:
    rows = stats_rows(folder)
    means = [r["mean_reward"] for r in rows if r["mean_reward"] is not None]
    hit = next((r for r in rows if r["mean_reward"] is not None and r["mean_reward"] >= target), None)
    last = rows[-1]
    return {
        "reached": hit is not None,
        "steps_to_target": hit["step"] if hit else None,
        "seconds_to_target": hit["time_elapsed"] if hit else None,
        "steps_run": last["step"],
        "best_mean_reward": max(means) if means else None,
        "last_mean_reward": last["mean_reward"],
        "mean_of_last_10_summaries": round(sum(means[-10:]) / len(means[-10:]), 3) if means else None,
        "end_to_end_agent_steps_per_sec": round(last["step"] / last["time_elapsed"], 1),
        "curve": [{"step": r["step"], "mean_reward": r["mean_reward"]} for r in rows],
    }


def steps_done(folder: Path) -> int:
    try:
        rows = stats_rows(folder)
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return rows[-1]["step"] if rows else 0


def run_until(overrides: list[str], folder: Path, steps: int, cwd: Path) -> None:
    """Train with unchanged settings and stop the run (SIGINT: it saves and exits) once it logged ``steps``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlx", *overrides], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    while proc.poll() is None:
        if steps_done(folder) >= steps:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=300)
            return
        time.sleep(5)
    if proc.returncode != 0:
        raise SystemExit(f"mlx {' '.join(overrides)} failed:\n{proc.stderr.read().decode()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--target", type=float, default=0.7, help="upstream's Hallway benchmark reward")
    parser.add_argument("--min-steps", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temp folder)")
    parser.add_argument("--no-train", action="store_true", help="only summarise the runs already in --work")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "hallway_memory.json")
    args = parser.parse_args()
    work = (args.work or Path(tempfile.mkdtemp(prefix="mlx-hallway-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()}, {platform.system()}",
        "target": args.target,
        "runs": {"lstm": {}, "no_memory": {}},
    }
    for seed in args.seeds:
        lstm = work / "results" / f"lstm-{seed}"
        if not args.no_train and not (lstm / "Hallway.onnx").exists():
            print(f"lstm seed {seed} ...", flush=True)
            mlx(*LSTM, f"seed={seed}", f"run_id=lstm-{seed}", f"stop_at_reward={args.target}", "tracking=none",
                "progress=plain", "force=true", cwd=work)  # fmt: skip
        result["runs"]["lstm"][str(seed)] = summary(lstm, args.target)
        budget = max(args.min_steps, result["runs"]["lstm"][str(seed)]["steps_run"])
        plain = work / "results" / f"no_memory-{seed}"
        if not args.no_train and steps_done(plain) < budget:
            print(f"no_memory seed {seed}, {budget:,} steps ...", flush=True)
            overrides = [*NO_MEMORY, f"seed={seed}", f"run_id=no_memory-{seed}", "tracking=none", "progress=plain"]
            run_until([*overrides, "force=true"], plain, budget, work)
        result["runs"]["no_memory"][str(seed)] = summary(plain, args.target)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n| Hallway, PPO | seed | steps to {args.target} | seconds | best | last 10 mean | steps run |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for variant, by_seed in result["runs"].items():
        for seed, r in by_seed.items():
            steps = f"{r['steps_to_target']:,}" if r["reached"] else "not reached"
            secs = f"{r['seconds_to_target']:.0f}" if r["reached"] else "-"
            print(
                f"| {variant} | {seed} | {steps} | {secs} | {r['best_mean_reward']:.2f} | "
                f"{r['mean_of_last_10_summaries']:.2f} | {r['steps_run']:,} |"
            )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
