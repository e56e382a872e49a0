"""Training speed with each visual encoder: PPO on GridWorld (84x64 RGB camera + goal signal).

    python benchmarks/encoder_speed.py [--steps 6000] [--match3-steps 1024]
                                       [--encoders simple nature_cnn resnet fully_connected match3]

Runs the user's command `python -m mlx env=gridworld trainer.network_settings.vis_encode_type=<e>` (tuned
upstream GridWorld settings: batch 32, buffer 256, 3 epochs) for --steps agent steps per encoder, MLflow off,
and reads end-to-end agent-steps/s (env rendering + acting + updates) from its stats.jsonl; also reports each
actor's parameter count. match3 keeps the image's full resolution through 144 channels, so on an 84x64
camera its dense layer alone has ~99M weights (it is sized for Match3's small boards): it gets --match3-steps.
Writes benchmarks/results/encoder_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parameters(encoder: str) -> int:
    from mlx.config import NetworkSettings
    from mlx.envs import make_env
    from mlx.trainers.nn.networks import Actor

    spec = make_env("gridworld", 1, 0).behavior_specs["GridWorld"]
    actor = Actor(spec, NetworkSettings(hidden_units=128, num_layers=1, vis_encode_type=encoder))
    return sum(p.numel() for p in actor.parameters())


def measure(encoder: str, steps: int, workdir: Path) -> dict:
    run_id = f"enc-{encoder}"
    summary = max(1000, steps // 4)
    cmd = [sys.executable, "-m", "mlx", "env=gridworld", "seed=1", f"run_id={run_id}", "tracking=none",
           "progress=plain", f"trainer.network_settings.vis_encode_type={encoder}", f"trainer.max_steps={steps}",
           f"trainer.summary_freq={summary}", f"trainer.checkpoint_interval={steps}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{encoder} failed:\n{proc.stderr[-2000:]}")
    rows = [json.loads(x) for x in (workdir / "results" / run_id / "run_logs" / "stats.jsonl").read_text().splitlines()]
    later = rows[1:] or rows  # the first window includes start-up
    return {
        "encoder": encoder,
        "agent_steps_per_sec": round(sum(r["steps_per_sec"] for r in later) / len(later), 1),
        "actor_parameters": parameters(encoder),
        "steps": rows[-1]["step"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--match3-steps", type=int, default=1024)
    encoders = ["simple", "nature_cnn", "resnet", "fully_connected", "match3"]
    parser.add_argument("--encoders", nargs="+", default=encoders)
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for encoder in args.encoders:
            row = measure(encoder, args.match3_steps if encoder == "match3" else args.steps, Path(tmp))
            results.append(row)
            print(json.dumps(row), flush=True)
    out = HERE / "results" / "encoder_speed.json"
    out.write_text(json.dumps({
        "benchmark": "PPO on GridWorld, end-to-end agent-steps/s per visual encoder",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_before]},
        "steps_per_encoder": args.steps,
        "results": results,
    }, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
