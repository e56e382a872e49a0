"""Two commits side by side: 3DBall PPO and SAC time to 95, native-env throughput, and what a user waits
for (a refused typo; the whole process of a 3DBall PPO run to 95 against its training seconds), old vs new.

    python benchmarks/commits_side_by_side.py --old <rev> [--new <rev>] [--seeds 1 2 3] [--envs 3dball pushblock]
        [--cases train throughput wait long] [--long pushblock:4.5 pyramids:1.75]

What a change that should not alter speed (a restructuring) is held to: each measurement runs once per
commit, the two commits alternating (old, new, old, new, ...) so that whatever else loads the machine
falls on both alike. Each commit is checked out into a temporary git worktree and imported from there
(PYTHONPATH=<worktree>/src, its own conf/); --new defaults to the working tree itself. Training runs are
the command users type (`python -m mlx trainer=<t> env=3dball seed=S stop_at_reward=95`, tracking off),
timed by the run's own clock (seconds to the target in stats.jsonl). The user's wait (case ``wait``) is
the same PPO run as a new user types it (default tracking: MLflow's store created in a fresh folder, the
TensorBoard files), timed from the process's start to its exit, beside its training seconds; and
``python -m mlx trainer.hyperparameters.batch_sise=64`` refused (exit 2). The long tasks (case ``long``: PPO to
an upstream benchmark, e.g. PushBlock 4.5, Pyramids 1.75 with curiosity) run both commits at once, one per
core, seed by seed, each timed by its own clock. Env throughput uses only the env API
both commits share (make_env, set_actions/step/get_steps). Prints a table of medians and new/old ratios
and writes benchmarks/results/commits_side_by_side.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "commits_side_by_side.json"

# Env throughput in a fresh interpreter of the commit under test: agent-steps/s under random actions.
THROUGHPUT = """
import json, sys, time
import numpy as np
from mlx.envs import make_env
name, areas, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
env = make_env(name, num_areas=areas, seed=0)
rng = np.random.default_rng(0)
env.reset()
names = list(env.behavior_specs)
cap = max(areas, *(len(env.get_steps(n)[0]) for n in names))
batches = [{n: env.behavior_specs[n].action_spec.random(cap, rng) for n in names} for _ in range(16)]

def one(i):
    done = 0
    for n in names:
        k = len(env.get_steps(n)[0])
        a = batches[i % 16][n]
        env.set_actions(n, type(a)(a.continuous[:k], a.discrete[:k]))
        done += k
    env.step()
    return done

for i in range(20):
    one(i)
steps, i, start = 0, 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    steps += one(i)
    i += 1
print(json.dumps({"agent_steps_per_sec": steps / (time.perf_counter() - start)}))
"""


def checkout(rev: str, folder: Path) -> Path:
    """A worktree of rev under folder (the repository's own history; nothing is fetched)."""
    path = folder / rev.replace("/", "_")
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-f", str(path), rev], cwd=REPO, check=True, capture_output=True
    )
    return path


# glibc's malloc otherwise returns and re-maps the large per-step arrays of envs at many areas: how often
# depends on the process's allocation history (imports included), which swung both commits' rates by up to
# 30% from run to run. Fixed thresholds, the same for both commits, keep the comparison about the code.
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "268435456"}


# `python -m mlx` of one tree only: the editable install's import hooks (which serve the checkout's own mlx and
# hydra_plugins to every interpreter of the venv) are dropped first, so an older tree never loads a newer
# tree's Hydra plugin; PYTHONPATH=<tree>/src then provides that tree's mlx and plugins.
MLX = (
    "import sys, runpy\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith('__editable__')]\n"
    "sys.path_hooks[:] = [h for h in sys.path_hooks if not getattr(h, '__module__', '').startswith('__editable__')]\n"
    "sys.path_importer_cache.clear()\n"
    "sys.argv = ['mlx', *sys.argv[1:]]\n"
    "runpy.run_module('mlx', run_name='__main__', alter_sys=True)\n"
)


def mlx_command(*args: str) -> list[str]:
    return [sys.executable, "-c", MLX, *args]


def python_env(tree: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(tree / "src"), PYTHONUNBUFFERED="1", **extra)


def time_to_reward(tree: Path, trainer: str, seed: int, target: float, work: Path) -> dict:
    return collect(start_to_reward(tree, "3dball", trainer, seed, target, work), target)


def start_to_reward(tree: Path, env: str, trainer: str, seed: int, target: float, work: Path) -> dict:
    """``python -m mlx env=<env> trainer=<trainer> seed=S stop_at_reward=<target>`` of one tree, started;
    ``collect`` waits for it."""
    run_id = f"side-{'new' if tree == REPO else 'old'}-{env}-{trainer}-{seed}"
    cmd = [*mlx_command(), f"trainer={trainer}", f"env={env}", f"seed={seed}", f"run_id={run_id}",
           f"stop_at_reward={target}", "tracking=none", "progress=plain"]  # fmt: skip
    log = (work / f"{run_id}.log").open("w")
    proc = subprocess.Popen(cmd, cwd=work, env=python_env(tree), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)  # fmt: skip
    return {"proc": proc, "log": log, "tree": tree, "run_id": run_id, "work": work, "seed": seed}


def collect(started: dict, target: float) -> dict:
    """Steps and seconds (the run's own clock) to the first summary at or above target."""
    proc, work, run_id = started["proc"], started["work"], started["run_id"]
    proc.wait()
    started["log"].close()
    if proc.returncode != 0:
        tail = (work / f"{run_id}.log").read_text()[-3000:]
        raise SystemExit(f"{started['tree'].name}: training failed (seed {started['seed']}):\n{tail}")
    stats = work / "results" / run_id / "run_logs" / "stats.jsonl"
    rows = [json.loads(line) for line in stats.read_text().splitlines()]
    shutil.rmtree(work / "results" / run_id)
    hit = next((r for r in rows if r["mean_reward"] is not None and r["mean_reward"] >= target), None)
    if hit is None:
        raise SystemExit(f"{started['tree'].name}: {run_id} did not reach {target}")
    return {"steps": hit["step"], "seconds": hit["time_elapsed"]}


def typo_seconds(tree: Path, work: Path) -> float:
    """Process wall of a refused override (exit 2)."""
    start = time.perf_counter()
    proc = subprocess.run(
        mlx_command("trainer.hyperparameters.batch_sise=64"),
        cwd=work,
        env=python_env(tree),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 2:
        raise SystemExit(f"{tree.name}: the typo was not refused with exit 2:\n{proc.stderr[-2000:]}")
    return wall


def user_wait(tree: Path, seed: int, target: float, work: Path) -> dict:
    """A new user's 3DBall PPO run to ``target`` in a fresh folder (default tracking): process wall and the
    training seconds the run reports (its clock at the summary that reached the target)."""
    folder = work / f"wait-{tree.name}-{seed}"
    folder.mkdir()
    cmd = [*mlx_command(), "env=3dball", f"seed={seed}", "run_id=a", f"stop_at_reward={target}",
           "progress=plain"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=folder, env=python_env(tree), capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{tree.name}: training failed (seed {seed}):\n{proc.stderr[-3000:]}")
    rows = [json.loads(line) for line in (folder / "results/a/run_logs/stats.jsonl").read_text().splitlines()]
    shutil.rmtree(folder)
    hit = next((r for r in rows if r["mean_reward"] is not None and r["mean_reward"] >= target), None)
    if hit is None:
        raise SystemExit(f"{tree.name}: PPO seed {seed} did not reach {target}")
    return {"wall": wall, "training": hit["time_elapsed"], "ratio": wall / hit["time_elapsed"]}


def throughput(tree: Path, env: str, areas: int, seconds: float) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", THROUGHPUT, env, str(areas), str(seconds)],
        env=python_env(tree, **STEADY_MALLOC),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.splitlines()[-1])["agent_steps_per_sec"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the commit to compare against (e.g. the one before a change)")
    parser.add_argument("--new", default=None, help="a commit; default: this working tree as it is")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--trainers", nargs="+", default=["ppo", "sac"])
    parser.add_argument("--target", type=float, default=95.0)
    parser.add_argument("--envs", nargs="+", default=["3dball", "pushblock", "walljump"])
    parser.add_argument("--agents", type=int, nargs="+", default=[12, 4096])
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput measurement")
    parser.add_argument("--repeats", type=int, default=3, help="throughput measurements per commit and case")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--cases", nargs="+", default=["train", "throughput"],
                        choices=["train", "throughput", "wait", "long"])  # fmt: skip
    parser.add_argument("--long", nargs="+", default=["pushblock:4.5", "pyramids:1.75"],
                        help="case long: env:target pairs (upstream benchmarks), PPO, tuned file")  # fmt: skip
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        trees = {"old": checkout(args.old, folder), "new": checkout(args.new, folder) if args.new else REPO}
        work = folder / "work"
        work.mkdir()
        rows: dict[str, dict[str, list[float]]] = {}

        def record(case: str, which: str, value: float) -> None:
            rows.setdefault(case, {"old": [], "new": []})[which].append(value)
            print(f"{case:40s} {which}: {value:,.2f}", flush=True)

        try:
            if "wait" in args.cases:
                for repeat in range(5):
                    for which in ("old", "new") if repeat % 2 == 0 else ("new", "old"):
                        record("refused typo: process seconds", which, typo_seconds(trees[which], work))
                for seed in args.seeds:
                    for which in ("old", "new") if seed % 2 else ("new", "old"):
                        result = user_wait(trees[which], seed, args.target, work)
                        record(f"3DBall PPO to {args.target:g}: process seconds", which, result["wall"])
                        record(f"3DBall PPO to {args.target:g}: training seconds", which, result["training"])
                        record(f"3DBall PPO to {args.target:g}: process/training", which, result["ratio"])
            for pair in args.long if "long" in args.cases else []:
                env, target = pair.split(":")
                for seed in args.seeds:  # both trees at once, one per core: whatever else loads one loads both
                    started = {w: start_to_reward(trees[w], env, "ppo", seed, float(target), work) for w in trees}
                    try:
                        for which, run in started.items():
                            result = collect(run, float(target))
                            record(f"{env} PPO seconds to {target}", which, result["seconds"])
                            record(f"{env} PPO steps to {target}", which, result["steps"])
                    finally:  # one failed: the other is not left running
                        for run in started.values():
                            if run["proc"].poll() is None:
                                run["proc"].kill()
                                run["proc"].wait()
            for trainer in args.trainers if "train" in args.cases else []:
                for seed in args.seeds:
                    for which in ("old", "new") if seed % 2 else ("new", "old"):
                        result = time_to_reward(trees[which], trainer, seed, args.target, work)
                        record(f"3DBall {trainer.upper()} seconds to {args.target:g}", which, result["seconds"])
                        record(f"3DBall {trainer.upper()} steps to {args.target:g}", which, result["steps"])
            for env in args.envs if "throughput" in args.cases else []:
                for areas in args.agents:
                    for repeat in range(args.repeats):
                        for which in ("old", "new") if repeat % 2 == 0 else ("new", "old"):
                            rate = throughput(trees[which], env, areas, args.seconds)
                            record(f"{env} env agent-steps/s at {areas} areas", which, rate)
        finally:
            for tree in trees.values():
                if tree != REPO:
                    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)

    def rev(name: str | None) -> str:
        out = subprocess.run(["git", "rev-parse", "--short", name or "HEAD"], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip() + ("" if name else " + working tree")

    table = {
        case: {
            "old_median": median(v["old"]),
            "new_median": median(v["new"]),
            "new_over_old": median(v["new"]) / median(v["old"]),
            "old": v["old"],
            "new": v["new"],
        }
        for case, v in rows.items()
    }
    print(f"\n{'case':40s} {'old':>12s} {'new':>12s} {'new/old':>8s}")
    for case, t in table.items():
        print(f"{case:40s} {t['old_median']:12,.2f} {t['new_median']:12,.2f} {t['new_over_old']:8.3f}")
    args.out.parent.mkdir(exist_ok=True)
    summary = {
        "old": rev(args.old),
        "new": rev(args.new),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "cases": table,
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
