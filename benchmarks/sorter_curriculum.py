"""Sorter through upstream's whole curriculum (issue 23: "Sorter reaches the end of upstream's curriculum").

    python benchmarks/sorter_curriculum.py [--seed 1] [--work DIR] [--run-id ID] [--episodes 200] [--report-only]

Trains the one-line command, `python -m mlx env=sorter seed=S` (the tuned config is upstream's
`config/ppo/Sorter_curriculum.yaml`: 5M steps, `num_tiles` 2, 4, ... 20, each lesson ending when
progress = steps / 5M passes 0.3, 0.4, 0.45, ... 0.75), MLflow off, in ``--work`` (a run folder there is
resumed). Then reads the run's statistics per lesson and plays the final policy on the last lesson
(`lesson=9`: 20 tiles; episodes show 1 to 20 of them) with `mode=evaluate` for ``--episodes`` episodes,
actions sampled as in training, beside uniformly random actions on the same lesson. Writes
benchmarks/results/sorter_curriculum.json and prints the table. Upstream publishes no target for Sorter;
the scale: sorting every tile of an episode with n tiles scores n before the time penalty (1 per tile
touched in order), and n is drawn from 1 to num_tiles.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import mlx, random_policy_reward, stats_rows  # benchmarks/common.py

HERE = Path(__file__).resolve().parent
LESSON_KEY = "Environment/Lesson Number/num_tiles"
LAST_LESSON = 9


def lessons(rows: list[dict]) -> list[dict]:
    """Per lesson: the steps it spanned, its num_tiles, the best summary and the mean of its last three."""
    out: list[dict] = []
    for row in rows:
        lesson = int(row.get(LESSON_KEY, 0))
        if not out or out[-1]["lesson"] != lesson:
            out.append({"lesson": lesson, "num_tiles": 2 * (lesson + 1), "first_step": row["step"], "means": []})
        out[-1]["last_step"] = row["step"]
        if row.get("episodes"):
            out[-1]["means"].append(row["mean_reward"])
    for item in out:
        means = item.pop("means")
        item["best_mean"] = round(max(means), 3) if means else None
        item["end_mean"] = round(float(np.mean(means[-3:])), 3) if means else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("sorter-work"))
    parser.add_argument("--run-id", default=None, help="default sorter-curriculum-s<seed>")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--report-only", action="store_true", help="read an existing run; train nothing")
    args = parser.parse_args()
    run_id = args.run_id or f"sorter-curriculum-s{args.seed}"
    args.work.mkdir(parents=True, exist_ok=True)
    folder = args.work / "results" / run_id
    if not args.report_only:
        resume = ["resume=true"] if (folder / "run_logs" / "training_status.json").exists() else []
        started = time.time()
        mlx("env=sorter", f"seed={args.seed}", f"run_id={run_id}", "tracking=none", "progress=plain", *resume,
            cwd=args.work)  # fmt: skip
        print(f"trained in {time.time() - started:.0f} s of wall clock", file=sys.stderr)
    rows = stats_rows(folder)
    command = [sys.executable, "-m", "mlx", "mode=evaluate", f"run_id={run_id}", f"lesson={LAST_LESSON}"]
    command += [f"evaluate.episodes={args.episodes}", "evaluate.deterministic=false", "tracking=none"]
    proc = subprocess.run(command, cwd=args.work, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"mode=evaluate failed:\n{proc.stderr[-2000:]}")
    evaluation = json.loads((folder / "run_logs" / "evaluation.json").read_text())
    result = {
        "command": f"python -m mlx env=sorter seed={args.seed} run_id={run_id} tracking=none",
        "machine": {"cpus": 2, "python": platform.python_version()},
        "steps": rows[-1]["step"],
        "training_seconds": rows[-1]["time_elapsed"],
        "lessons": lessons(rows),
        "final_policy_last_lesson": evaluation,
        "random_last_lesson": random_policy_reward("sorter", args.episodes, args.seed, {"num_tiles": 20.0}),
    }
    out = HERE / "results" / "sorter_curriculum.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("lesson  num_tiles  steps               best   end")
    for item in result["lessons"]:
        span = f"{item['first_step']}-{item['last_step']}"
        print(f"{item['lesson']:>6}  {item['num_tiles']:>9}  {span:<18}  {item['best_mean']}  {item['end_mean']}")
    print(f"final policy, lesson {LAST_LESSON}: {evaluation['Sorter']}; random: {result['random_last_lesson']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
