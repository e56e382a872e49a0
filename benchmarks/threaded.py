"""``threaded`` against the one-thread loop, side by side: steps and seconds to a reward, per env and seed.

    python benchmarks/threaded.py [--envs 3dball:95 pushblock:4.5] [--seeds 1 2] [--out FILE]

Each (env, seed) trains twice with the command a user types (upstream's tuned settings, MLflow off), once as
is and once with ``trainer.threaded=true``, one right after the other so that both see the same machine
load. Threaded updates learn from data one policy older (the agents act while the model updates), so they
may need more steps; they pay where the time saved per step is larger. Writes benchmarks/results/
threaded.json with both runs' steps and seconds to the target, the ratios, and the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

from time_to_reward import train_once  # benchmarks/time_to_reward.py

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["3dball:95", "pushblock:4.5"], help="env:target")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "threaded.json")
    args = parser.parse_args()
    report: dict = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "envs": {}}
    for item in args.envs:
        env, target = item.split(":")
        rows = []
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                # false said: a tuned file may turn threaded on
                plain = train_once(env, "ppo", seed, float(target), Path(tmp), ["trainer.threaded=false"])
            with tempfile.TemporaryDirectory() as tmp:
                threaded = train_once(env, "ppo", seed, float(target), Path(tmp), ["trainer.threaded=true"])
            rows.append({"seed": seed, "plain": plain, "threaded": threaded, "load_average": os.getloadavg()})
            print(json.dumps(rows[-1]), flush=True)
        both = [r for r in rows if r["plain"]["reached"] and r["threaded"]["reached"]]
        summary = {"target": float(target), "runs": rows}
        if both:
            summary["median_seconds_ratio_threaded_over_plain"] = statistics.median(
                r["threaded"]["seconds_to_target"] / r["plain"]["seconds_to_target"] for r in both
            )
            summary["median_steps_ratio_threaded_over_plain"] = statistics.median(
                r["threaded"]["steps_to_target"] / r["plain"]["steps_to_target"] for r in both
            )
        report["envs"][env] = summary
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({e: {k: v for k, v in s.items() if k != "runs"} for e, s in report["envs"].items()}, indent=1))


if __name__ == "__main__":
    main()
