"""One MuJoCo model for all areas, or several: MuJoCo stepping speed of the walkers by scene layout.

    python benchmarks/walker_layout.py [--creatures worm crawler walker] [--areas 10 100] [--seconds 4]

The walker envs (mlx.envs.native.locomotion) put every area's creature into one MjModel, so that each
observation is one numpy gather from one MjData. This measures what that costs against stepping the same
creatures as several models (ten areas each, upstream's scene size) or one model per area: agent-decisions
per second of MuJoCo stepping alone (a decision is 0.1 s of simulated time), with the drives following
fresh random targets every decision, each layout measured for about --seconds after a warm-up, three
rounds interleaved so that load on a shared machine hits all layouts alike. Writes
benchmarks/results/walker_layout.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from mlx.envs.native.limbs import Creature, scene_xml
from mlx.envs.native.locomotion import mujoco

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "walker_layout.json"
DECISION = 0.1  # seconds of simulated time per decision (5 physics steps of 0.02 s)


def _creature(name: str) -> Creature:
    if name == "worm":
        from mlx.envs.native.worm import WORM

        return WORM
    if name == "crawler":
        from mlx.envs.native.crawler import CRAWLER

        return CRAWLER
    from mlx.envs.native.walker import WALKER

    return WALKER


def _scenes(creature: Creature, areas: int, per_model: int) -> list[tuple[mujoco.MjModel, mujoco.MjData]]:
    scenes = []
    for _ in range(areas // per_model):
        origins = np.stack([np.arange(per_model) * 100.0, np.zeros(per_model)], axis=1)
        model = mujoco.MjModel.from_xml_string(scene_xml(creature, origins))
        scenes.append((model, mujoco.MjData(model)))
    return scenes


def _rate(scenes, creature: Creature, areas: int, seconds: float, rng: np.random.Generator) -> float:
    """Agent-decisions per second of stepping these scenes, random drive targets every decision."""
    steps = round(DECISION / creature.timestep)
    decisions = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for model, data in scenes:
            lo, hi = model.jnt_range[model.actuator_trnid[:, 0]].T
            data.ctrl[:] = np.radians(rng.uniform(lo, hi))
            for _ in range(steps):
                mujoco.mj_step(model, data)
        decisions += 1
    return decisions * areas / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creatures", nargs="+", default=["worm", "crawler", "walker"])
    parser.add_argument("--areas", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for name in args.creatures:
        creature = _creature(name)
        for areas in args.areas:
            layouts = {"one model": areas, "models of 10": 10, "one per area": 1}
            scenes = {label: _scenes(creature, areas, per) for label, per in layouts.items()}
            for scene in scenes.values():  # warm-up: the creatures fall and settle
                _rate(scene, creature, areas, 0.5, rng)
            rates: dict[str, list[float]] = {label: [] for label in layouts}
            for _ in range(3):
                for label, scene in scenes.items():
                    rates[label].append(_rate(scene, creature, areas, args.seconds / 3, rng))
            row = {"creature": name, "areas": areas, **{k: round(float(np.median(v))) for k, v in rates.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {
        "benchmark": "MuJoCo stepping of the walkers, agent-decisions/s (median of 3 interleaved rounds)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
