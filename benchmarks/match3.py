"""Match3: PPO against upstream's two heuristics (a uniform valid move, and the greedy immediate-score move).

    python benchmarks/match3.py [--runs fast:30000 tuned:60000] [--episodes 64] [--work DIR]

Trains with the command a user types, then scores the trained policy, a masked random player
(Match3SimpleHeuristic) and the greedy heuristic (Match3SmartHeuristic) over the same number of
episodes (mean score = summed reward per 500-decision episode) on env=match3's default boards:

    tuned  python -m mlx env=match3 trainer.max_steps=N
           (upstream config/ppo/Match3.yaml: gamma 0.99, batch 16, buffer 120, 256 x 4; upstream's budget
           is 5M steps, which this script's default cannot afford on a 2-core machine)
    fast   the same plus gamma 0.5, lambd 0.95, batch 128, buffer 1024, learning_rate 1e-3, 64 x 1:
           a move's worth shows in the next few rewards, and a short horizon keeps the advantage from
           drowning in the noise of later cascades (what tests/test_match3_learning.py trains)

The policy is scored both sampled (as it trains) and deterministic (the most likely valid move). The
baselines are also scored on the fixed 9 x 8 board (minRows=9 minColumns=8), where upstream measured its
34.2 (random) and 37.0 (greedy). Each run is <variant>:<max_steps>, trained as results/<variant>-<steps> in
--work; runs already there are scored, not trained again. Writes benchmarks/results/match3.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import mlx, stats_rows  # benchmarks/common.py

from mlx.config import validate
from mlx.envs import make_env
from mlx.envs.native.match3 import BEHAVIOR_NAME, Match3Env, play_episodes, random_actions
from mlx.modes.policy import load_policy

HERE = Path(__file__).resolve().parent
COMMON = ["env=match3", "seed=1", "tracking=none", "progress=plain"]
FAST = [
    "trainer.reward_signals.extrinsic.gamma=0.5",
    "trainer.hyperparameters.lambd=0.95",
    "trainer.hyperparameters.batch_size=128",
    "trainer.hyperparameters.buffer_size=1024",
    "trainer.hyperparameters.learning_rate=0.001",
    "trainer.network_settings.hidden_units=64",
    "trainer.network_settings.num_layers=1",
]
VARIANTS = {"tuned": [], "fast": FAST}
EVAL_SEED = 123


def score(env: Match3Env, act, episodes: int) -> dict:
    t = time.perf_counter()
    s = play_episodes(env, act, episodes)
    return {
        "mean": round(float(s.mean()), 3),
        "std_error": round(float(s.std() / np.sqrt(len(s))), 3),
        "episodes": len(s),
        "seconds": round(time.perf_counter() - t, 1),
    }


def baselines(episodes: int, areas: int, parameters: dict) -> dict:
    out = {}
    for name in ("random", "greedy"):
        env = make_env("match3", areas, EVAL_SEED, parameters)
        rng = np.random.default_rng(EVAL_SEED)
        if name == "random":
            out[name] = score(env, lambda d, rng=rng: random_actions(d, rng), episodes)
        else:
            out[name] = score(env, lambda d, env=env, rng=rng: env.greedy_actions(rng, d.agent_id), episodes)
    return out


def train_and_score(name: str, overrides: list[str], steps: int, work: Path, episodes: int, areas: int) -> dict:
    run = [*COMMON, *overrides, f"trainer.max_steps={steps}", f"trainer.summary_freq={max(steps // 10, 1000)}"]
    folder = work / "results" / name
    if not (folder / "run_logs" / "stats.jsonl").exists():
        mlx(*run, f"run_id={name}", f"results_dir={work / 'results'}", cwd=work)
    rows = stats_rows(folder)
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(HERE.parent / "conf"), version_base="1.3"):
        cfg = validate(
            compose("config", overrides=[*run, f"run_id={name}", f"results_dir={work / 'results'}"]),
            check_files=False,
        )
    checkpoint = max((folder / BEHAVIOR_NAME).glob("*.pt"), key=lambda p: p.stat().st_mtime)
    env = make_env("match3", areas, EVAL_SEED)
    spec = env.behavior_specs[BEHAVIOR_NAME]
    result = {
        "command": "python -m mlx " + " ".join([*run, f"run_id={name}"]),
        "steps": rows[-1]["step"],
        "training_seconds": rows[-1]["time_elapsed"],
        "training_curve": [{"step": r["step"], "mean_reward": r["mean_reward"]} for r in rows],
    }
    for deterministic in (False, True):  # each on fresh boards of the baselines' seed
        torch.manual_seed(EVAL_SEED)
        policy = load_policy(cfg, BEHAVIOR_NAME, spec, checkpoint, deterministic)
        key = "deterministic" if deterministic else "sampled"
        board = make_env("match3", areas, EVAL_SEED)
        result[key] = score(board, lambda d, p=policy: p.act(d).discrete[:, 0], episodes)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", default=["fast:30000", "tuned:60000"], help="variant:max_steps")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--areas", type=int, default=32, help="boards played at once when scoring")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "match3.json")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as training does: one thread is fastest at these sizes on a shared machine
    work = args.work or Path(tempfile.mkdtemp(prefix="match3-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "match3",
        "machine": f"{platform.machine()}, {platform.system()}, python {sys.version.split()[0]}, "
        f"torch {torch.__version__}, shared by other jobs",
        "note": "mean score = summed reward (0.01 per point) per 500-decision episode, default boards (6..9 x 6..8)",
        "upstream": {"ppo_visual": 39.5, "ppo_vector": 38.5, "random": 34.2, "greedy": 37.0, "max_steps": 5_000_000},
        "baselines": baselines(args.episodes, args.areas, {}),
        "baselines_fixed_9x8": baselines(args.episodes, args.areas, {"minRows": 9.0, "minColumns": 8.0}),
    }
    print(json.dumps(result["baselines"]), json.dumps(result["baselines_fixed_9x8"]), flush=True)
    result["runs"] = {}
    for run in args.runs:
        variant, _, steps = run.partition(":")
        if variant not in VARIANTS or not steps.isdigit():
            raise SystemExit(f"--runs {run}: give <variant>:<max_steps> with a variant in {', '.join(VARIANTS)}")
        name = f"{variant}-{steps}"
        result["runs"][name] = train_and_score(name, VARIANTS[variant], int(steps), work, args.episodes, args.areas)
        print(name, json.dumps({k: v for k, v in result["runs"][name].items() if k != "training_curve"}), flush=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
