"""What the benchmark scripts share: running the command users type in a subprocess, reading a run's
statistics, a random player's returns. Scripts run as ``python benchmarks/<name>.py``, so this folder is on
their import path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def mlx(*overrides: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m mlx <overrides>`` in ``cwd``; a failed run ends the benchmark with its error."""
    proc = subprocess.run(
        [sys.executable, "-m", "mlx", *overrides], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise SystemExit(f"mlx {' '.join(overrides)} failed:\n{proc.stderr[-2000:]}")
    return proc


def stats_rows(run_folder: Path) -> list[dict]:
    """The run's summaries (run_logs/stats.jsonl), one dict per summary."""
    return [json.loads(line) for line in (run_folder / "run_logs" / "stats.jsonl").read_text().splitlines()]


def random_policy_reward(env_name: str, episodes: int, seed: int = 0, parameters: dict | None = None) -> dict:
    """Mean and std of the return of uniformly random actions: the first episode of each agent in enough
    areas for ``episodes`` agents (the first episodes to start, as mode=evaluate counts: not the first to
    end, which would favour short episodes, here the ones that reach a goal). ``parameters``: the env's
    (e.g. a curriculum's last lesson)."""
    import numpy as np

    from mlx.envs import make_env

    probe = make_env(env_name, num_areas=1, seed=seed, parameters=parameters)  # agents per area (FoodCollector: 5)
    probe.reset()
    per_area = len(probe.get_steps(next(iter(probe.behavior_specs)))[0])
    probe.close()
    env = make_env(env_name, num_areas=-(-episodes // per_area), seed=seed, parameters=parameters)
    (name,) = env.behavior_specs
    spec = env.behavior_specs[name].action_spec
    rng = np.random.default_rng(seed)
    env.reset()
    agents = int(env.get_steps(name)[0].agent_id.max()) + 1
    returns = np.zeros(agents)
    ended = np.zeros(agents, bool)
    steps = 0
    while not ended.all():
        decision, _ = env.get_steps(name)
        env.set_actions(name, spec.random(len(decision), rng))
        env.step()
        steps += 1
        decision, terminal = env.get_steps(name)
        first = ~ended[terminal.agent_id]
        returns[terminal.agent_id[first]] += terminal.reward[first]
        ended[terminal.agent_id] = True
        going = ~ended[decision.agent_id]
        returns[decision.agent_id[going]] += decision.reward[going]
    env.close()
    return {"episodes": agents, "mean": round(float(returns.mean()), 4), "std": round(float(returns.std()), 4)}
