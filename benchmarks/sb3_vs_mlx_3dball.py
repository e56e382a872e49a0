"""Stable-Baselines3 PPO vs mlx PPO on mlx's 3DBall, same seeds, matched hyperparameters, side by side.

    pip install -e '.[bench]'       # stable-baselines3 (leaves torch as pinned)
    python benchmarks/sb3_vs_mlx_3dball.py [--seeds 1 2 3] [--target 95] [--max-steps 500000] [--max-seconds 600]

SB3 trains on 3DBall through mlx's Gymnasium adapter (mlx.envs.gym.export.MlxVectorEnv: one 3DBall env
with 12 areas = 12 sub-envs), behind a thin shim from Gymnasium's vector API (SAME_STEP autoreset,
``final_obs``) to SB3's VecEnv API (``terminal_observation``, ``TimeLimit.truncated``), so SB3 gets the
vectorised env and bootstraps truncated episodes exactly as mlx does. Its hyperparameters are those of
mlx's tuned 3DBall PPO (conf/tuned/3dball_ppo.yaml, ML-Agents' upstream values): n_steps 1000 x 12
sub-envs = buffer_size 12000, batch_size 64, n_epochs 3 (num_epoch), learning rate 3e-4 decaying
linearly over 500k steps (max_steps), gamma 0.99, gae_lambda 0.99 (lambd), clip 0.2 decaying linearly
to 0.1 (ML-Agents' epsilon schedule follows the learning rate's, floor 0.1), ent_coef 0.001 (beta; SB3
keeps it constant where ML-Agents decays it), separate policy and value networks of two 128-unit layers
with SiLU (ML-Agents' Swish), observation normalisation (VecNormalize, observations only; mlx's
normalize: true). What stays different: SB3's value loss is not clipped, its advantages are normalised
per minibatch rather than per buffer, and its initialisation is orthogonal.

Success is judged the way mlx judges it: every summary_freq (12000) agent steps, the mean return of the
last 12 finished episodes (3DBall episodes that succeed last 1000 decisions, so a 12000-step window
finishes about 12); the first evaluation >= target stops the run. mlx runs the command users type,
``python -m mlx env=3dball seed=S stop_at_reward=95 tracking=none`` (its summary is the mean of the
episodes finished in the window). Reported per seed: agent steps and seconds of training to the target
(SB3: from the start of learn(); mlx: its run's clock), the process wall time, and SB3/mlx ratios.
Process wall, as a user waits for it: mlx's is its whole ``python -m mlx`` process; SB3 runs in a process of
its own too (this script with ``--sb3-child``), timed from its launch to its exit, imports included
(``process_wall_seconds``); ``wall_after_imports_seconds`` is SB3's from after its imports, what earlier
versions of this script reported. Writes benchmarks/results/sb3_vs_mlx_3dball.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from time_to_reward import train_once  # noqa: E402  (the runner of mlx's own benchmark)

SUMMARY_FREQ = 12000  # conf/tuned/3dball_ppo.yaml
NUM_AREAS = 12


def make_sb3_vec_env(seed: int) -> Any:
    """MlxVectorEnv (12 areas of 3DBall) as an SB3 VecEnv."""
    import gymnasium
    from stable_baselines3.common.vec_env import VecEnv

    from mlx.envs.gym.export import MlxVectorEnv

    class GymnasiumSameStepVecEnv(VecEnv):
        """A Gymnasium vector env with SAME_STEP autoreset seen through SB3's VecEnv API."""

        def __init__(self, venv: gymnasium.vector.VectorEnv, seed: int) -> None:
            super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
            self.venv = venv
            self.first_seed = seed
            self.actions: np.ndarray | None = None
            self.returns = np.zeros(venv.num_envs)
            self.finished: deque[float] = deque(maxlen=1000)

        def reset(self) -> np.ndarray:
            obs, _ = self.venv.reset(seed=self.first_seed)
            self.first_seed = None  # later resets continue the env's own generator
            self.returns[:] = 0.0
            return obs

        def step_async(self, actions: np.ndarray) -> None:
            self.actions = actions

        def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
            obs, reward, terminated, truncated, info = self.venv.step(self.actions)
            done = terminated | truncated
            self.returns += reward
            infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
            for i in np.flatnonzero(done):  # the few sub-envs whose episode ended
                infos[i]["terminal_observation"] = info["final_obs"][i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                self.finished.append(float(self.returns[i]))
                self.returns[i] = 0.0
            return obs, reward.astype(np.float32), done, infos

        def close(self) -> None:
            self.venv.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(self.venv, attr_name)] * len(self._get_indices(indices))

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            setattr(self.venv, attr_name, value)

        def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
            return [getattr(self.venv, method_name)(*args, **kwargs)] * len(self._get_indices(indices))

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False] * len(self._get_indices(indices))

    return GymnasiumSameStepVecEnv(MlxVectorEnv("3dball", num_areas=NUM_AREAS, seed=seed), seed)


def linear(initial: float, floor: float) -> Any:
    """SB3 schedule of progress_remaining (1 -> 0 over total_timesteps): ML-Agents' linear decay to a floor."""
    return lambda progress_remaining: floor + (initial - floor) * progress_remaining


def sb3_once(seed: int, target: float, max_steps: int, max_seconds: float) -> dict[str, Any]:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecNormalize
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)  # as mlx (torch_settings.num_threads): small MLPs are fastest on one thread
    threadpool_limits(1, user_api="blas")  # as mlx runs do: one BLAS thread
    wall_start = time.perf_counter()
    shim = make_sb3_vec_env(seed)
    env = VecNormalize(shim, norm_obs=True, norm_reward=False)

    class Evaluate(BaseCallback):
        """Every SUMMARY_FREQ agent steps: mean of the last 12 finished episodes; stop at the target."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval = SUMMARY_FREQ
            self.start = 0.0
            self.rows: list[dict[str, Any]] = []
            self.hit: dict[str, Any] | None = None

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += SUMMARY_FREQ
            elapsed = time.perf_counter() - self.start
            last = list(shim.finished)[-NUM_AREAS:]
            mean = float(np.mean(last)) if last else None
            self.rows.append({"step": self.num_timesteps, "seconds": round(elapsed, 3), "mean_reward": mean})
            if mean is not None and mean >= target:
                self.hit = self.rows[-1]
                return False
            return elapsed < max_seconds

    model = PPO(
        "MlpPolicy",
        env,
        n_steps=SUMMARY_FREQ // NUM_AREAS,
        batch_size=64,
        n_epochs=3,
        learning_rate=linear(3e-4, 1e-10),
        gamma=0.99,
        gae_lambda=0.99,
        clip_range=linear(0.2, 0.1),
        ent_coef=0.001,
        policy_kwargs={"net_arch": {"pi": [128, 128], "vf": [128, 128]}, "activation_fn": torch.nn.SiLU},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    callback = Evaluate()
    model.learn(total_timesteps=max_steps, callback=callback)
    env.close()
    last = callback.rows[-1] if callback.rows else {"step": model.num_timesteps, "mean_reward": None}
    return {
        "seed": seed,
        "reached": callback.hit is not None,
        "steps_to_target": callback.hit["step"] if callback.hit else None,
        "seconds_to_target": callback.hit["seconds"] if callback.hit else None,
        "wall_after_imports_seconds": round(time.perf_counter() - wall_start, 2),
        "final_mean_reward": last["mean_reward"],
        "steps_run": model.num_timesteps,
        "curve": callback.rows,
    }


def sb3_process(seed: int, target: float, max_steps: int, max_seconds: float) -> dict[str, Any]:
    """sb3_once in a fresh Python process (a user's ``python train.py``), with that process's wall time."""
    import subprocess

    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--sb3-child", "--seeds", str(seed), "--target", str(target),
         "--max-steps", str(max_steps), "--max-seconds", str(max_seconds)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    return {**json.loads(proc.stdout.splitlines()[-1]), "process_wall_seconds": round(wall, 2)}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--target", type=float, default=95.0)
    parser.add_argument("--max-steps", type=int, default=500_000, help="SB3 budget (and its schedules' horizon)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="SB3 budget in training seconds")
    parser.add_argument("--sb3-child", action="store_true", help=argparse.SUPPRESS)  # one SB3 run, JSON out
    args = parser.parse_args()
    if args.sb3_child:
        print(json.dumps(sb3_once(args.seeds[0], args.target, args.max_steps, args.max_seconds)))
        return
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            mlx_run = train_once("3dball", "ppo", seed, args.target, Path(tmp), [])
            print(json.dumps({"mlx": mlx_run}), flush=True)
            sb3_run = sb3_process(seed, args.target, args.max_steps, args.max_seconds)
            print(json.dumps({"sb3": {k: v for k, v in sb3_run.items() if k != "curve"}}), flush=True)
            pairs.append(
                {
                    "seed": seed,
                    "mlx": mlx_run,
                    "sb3": sb3_run,
                    "sb3_over_mlx_seconds": ratio(sb3_run["seconds_to_target"], mlx_run["seconds_to_target"]),
                    "sb3_over_mlx_steps": ratio(sb3_run["steps_to_target"], mlx_run["steps_to_target"]),
                    "sb3_over_mlx_process_wall": ratio(
                        sb3_run["process_wall_seconds"], mlx_run["process_wall_seconds"]
                    ),
                }
            )

    def median(side: str, key: str) -> float | None:
        values = [p[side][key] for p in pairs if p[side]["reached"]]
        return float(np.median(values)) if values else None

    import stable_baselines3

    summary = {
        "benchmark": f"3DBall PPO to mean reward {args.target:g}: Stable-Baselines3 (through MlxVectorEnv) vs mlx",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "stable_baselines3": stable_baselines3.__version__,
        "sb3_budget": {"max_steps": args.max_steps, "max_seconds": args.max_seconds},
        "reached": {
            "mlx": f"{sum(p['mlx']['reached'] for p in pairs)}/{len(pairs)}",
            "sb3": f"{sum(p['sb3']['reached'] for p in pairs)}/{len(pairs)}",
        },
        "median_seconds_to_target": {
            "mlx": median("mlx", "seconds_to_target"),
            "sb3": median("sb3", "seconds_to_target"),
        },
        "median_steps_to_target": {"mlx": median("mlx", "steps_to_target"), "sb3": median("sb3", "steps_to_target")},
        "pairs": pairs,
    }
    m, s = summary["median_seconds_to_target"], summary["median_steps_to_target"]
    summary["sb3_over_mlx_median_seconds"] = ratio(m["sb3"], m["mlx"])
    summary["sb3_over_mlx_median_steps"] = ratio(s["sb3"], s["mlx"])
    walls = {side: float(np.median([p[side]["process_wall_seconds"] for p in pairs])) for side in ("mlx", "sb3")}
    summary["median_process_wall_seconds"] = walls
    summary["sb3_over_mlx_median_process_wall"] = ratio(walls["sb3"], walls["mlx"])
    out = HERE / "results" / "sb3_vs_mlx_3dball.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "pairs"}, indent=2))


if __name__ == "__main__":
    main()
