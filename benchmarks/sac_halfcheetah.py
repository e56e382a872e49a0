"""HalfCheetah-v5 with mlx's SAC for 1M steps against RL Baselines3 Zoo's published SAC return.

    python benchmarks/sac_halfcheetah.py train --run-dir /work/bench/halfcheetah   # hours; run it again to resume
    python benchmarks/sac_halfcheetah.py report --run-dir /work/bench/halfcheetah  # where a run stands, any time
    python benchmarks/sac_halfcheetah.py speed                                      # steps/s and updates/s

The peer: RL Zoo's benchmark table (benchmark.md of DLR-RM/rl-baselines3-zoo) gives SAC on HalfCheetah-v3,
trained 1M steps with its hyperparams/sac.yml (SB3's SAC defaults, learning_starts 10000), a mean return of
9535.451 +- 100.470 over 150 episodes of its deterministic policy (one training run). mlx trains the command a
user types, ``python -m mlx env=gym env.id=HalfCheetah-v5 trainer=sac`` (conf/tuned/gym/HalfCheetah-v5_sac.yaml
holds the same settings), with one copy of the env as RL Zoo does (env.num_areas=1), then evaluates its final
policy deterministically (mode=evaluate) over --episodes episodes. v5 and v3 share the task and its reward.

``train`` runs one process, resumable: a second ``train`` with the same --run-dir continues from the last
checkpoint (resume=true; the replay buffer is saved with each checkpoint, every 25k steps, and when SIGTERM or
Ctrl-C stops the run), so even a hard kill loses at most 25k steps. Its console goes to <run-dir>/train.log.
``report`` reads the run's stats.jsonl (it may still be running) and writes benchmarks/results/sac_halfcheetah.json:
steps done, the training return curve, the best and latest mean returns, the evaluation once there is one, the
peer's number and source.

``speed`` measures, on HalfCheetah-v5 with the tuned settings: the env alone (steps/s), mlx's SAC acting and
updating (agent steps/s with one update per step, gradient updates/s), and a plain PyTorch SAC update of the same
sizes written here (twin Q and their targets, actor, learned entropy coefficient, as SB3 and CleanRL build it)
with the same number of threads, so the ratio of the two update rates says whether mlx's update is slow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV_ID = "HalfCheetah-v5"
BEHAVIOR = "HalfCheetah-v5"
PEER = {
    "name": "Stable-Baselines3 SAC, RL Baselines3 Zoo",
    "env": "HalfCheetah-v3",
    "steps": 1_000_000,
    "mean_return": 9535.451,
    "std_return": 100.470,
    "evaluation": "deterministic policy, 150 episodes, one training run",
    "source": "DLR-RM/rl-baselines3-zoo benchmark.md (sac, HalfCheetah-v3); settings: hyperparams/sac.yml",
}
RESULT = HERE / "results" / "sac_halfcheetah.json"


def run_id(seed: int) -> str:
    return f"sac-halfcheetah-{seed}"


def overrides(run_dir: Path, seed: int, steps: int) -> list[str]:
    return [
        "env=gym",
        f"env.id={ENV_ID}",
        "trainer=sac",
        "env.num_areas=1",
        f"seed={seed}",
        f"run_id={run_id(seed)}",
        f"results_dir={run_dir / 'results'}",
        f"trainer.max_steps={steps}",
        # A checkpoint (with the replay buffer) every 25k steps: on a shared machine a run of a day is killed
        # now and then; SIGTERM or Ctrl-C also save one before the process ends.
        "trainer.checkpoint_interval=25000",
        "trainer.hyperparameters.save_replay_buffer=true",
        "tracking=none",
        "progress=plain",
    ]


def train(run_dir: Path, seed: int, steps: int, episodes: int) -> None:
    """Train (or resume) to ``steps``, evaluate the final policy, write the report."""
    run_dir.mkdir(parents=True, exist_ok=True)
    folder = run_dir / "results" / run_id(seed)
    resume = (folder / BEHAVIOR / "checkpoint.pt").exists()
    cmd = [sys.executable, "-m", "mlx", *overrides(run_dir, seed, steps), *(["resume=true"] if resume else [])]
    with open(run_dir / "train.log", "a") as log:
        log.write(f"\n$ {' '.join(cmd)}\n")
        log.flush()
        code = subprocess.call(cmd, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if code != 0:
        raise SystemExit(f"training ended with exit code {code}: see {run_dir / 'train.log'}")
    evaluate(run_dir, seed, episodes)
    report(run_dir, seed, steps)


def evaluate(run_dir: Path, seed: int, episodes: int) -> None:
    """The final policy, deterministic, as RL Zoo evaluates: run_logs/evaluation.json."""
    cmd = [
        sys.executable,
        "-m",
        "mlx",
        *overrides(run_dir, seed, 1),
        "mode=evaluate",
        f"evaluate.episodes={episodes}",
    ]
    with open(run_dir / "train.log", "a") as log:
        code = subprocess.call(cmd, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if code != 0:
        raise SystemExit(f"evaluation ended with exit code {code}: see {run_dir / 'train.log'}")


def report(run_dir: Path, seed: int, steps: int) -> dict:
    """Where the run stands (it may be running): written to benchmarks/results/sac_halfcheetah.json."""
    folder = run_dir / "results" / run_id(seed)
    stats = folder / "run_logs" / "stats.jsonl"
    if not stats.exists():
        raise SystemExit(f"no run at {folder} yet (train first)")
    rows = [json.loads(line) for line in stats.read_text().splitlines() if line.strip()]
    rewarded = [r for r in rows if r.get("mean_reward") is not None]
    last = rows[-1]
    best = max(rewarded, key=lambda r: r["mean_reward"]) if rewarded else None
    evaluation = folder / "run_logs" / "evaluation.json"
    evaluated = json.loads(evaluation.read_text()).get(BEHAVIOR) if evaluation.exists() else None
    out = {
        "benchmark": f"{ENV_ID} SAC to RL Zoo's return at {steps:,} steps",
        "command": "python -m mlx " + " ".join(overrides(Path("<run-dir>"), seed, steps)),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "shared": True},
        "peer": PEER,
        "steps_done": last["step"],
        "finished": last["step"] >= steps and evaluated is not None,
        "training_seconds": last["time_elapsed"],
        "agent_steps_per_sec": round(last["step"] / max(last["time_elapsed"], 1e-9), 1),
        # The last summary's rate (one update per step): what the rest of the run goes at, if the load holds.
        "recent_agent_steps_per_sec": last.get("steps_per_sec"),
        "hours_left_at_recent_rate": round((steps - last["step"]) / last["steps_per_sec"] / 3600, 1)
        if last.get("steps_per_sec") and last["step"] < steps
        else 0.0,
        "latest_mean_return": last.get("mean_reward"),
        "best_mean_return": best["mean_reward"] if best else None,
        "best_at_step": best["step"] if best else None,
        "deterministic_evaluation": evaluated,
        "met": None if evaluated is None else evaluated["mean_return"] >= PEER["mean_return"],
        "curve": [[r["step"], round(r["mean_reward"], 1)] for r in rewarded],
    }
    speed = json.loads(RESULT.read_text()).get("speed") if RESULT.exists() else None
    if speed:
        out["speed"] = speed  # kept from `speed`
    write(out)
    return out


def write(out: dict) -> None:
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(out, indent=2) + "\n")


# ---- speed --------------------------------------------------------------------------------------
def speed(seconds: float) -> dict:
    """Env steps/s, mlx SAC steps/s and updates/s, and a plain PyTorch SAC update's rate, same sizes."""
    import numpy as np
    import torch
    from hydra import compose, initialize_config_dir

    from mlx.config import CONF_DIR, register_configs, validate
    from mlx.envs import make_env
    from mlx.trainers.sac.trainer import SACTrainer

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = validate(
            compose("config", overrides=["env=gym", f"env.id={ENV_ID}", "trainer=sac", "run_id=bench", "seed=0"])
        )
    threads = cfg.torch_settings.num_threads
    torch.set_num_threads(threads)
    env = make_env("gym", 1, seed=0, env_id=ENV_ID)
    spec = env.behavior_specs[BEHAVIOR]
    rng = np.random.default_rng(0)

    env.reset()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.set_actions(BEHAVIOR, spec.action_spec.random(1, rng))
        env.step()
        n += 1
    env_rate = n / (time.perf_counter() - start)

    trainer = SACTrainer(BEHAVIOR, spec, cfg.trainer, cfg.reward_signals, torch.device("cpu"))
    init = trainer.hp.buffer_init_steps
    env.reset()

    def act(k: int) -> None:
        for _ in range(k):
            d, t = env.get_steps(BEHAVIOR)
            env.set_actions(BEHAVIOR, trainer.process(d, t))
            env.step()
            if trainer.ready_to_update():
                trainer.update()

    act(init + 500)  # uniform actions to buffer_init_steps, then the policy acts and learns
    updates0, steps0 = trainer.update_steps, trainer.step
    start, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        act(20)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu0
    mlx_steps = (trainer.step - steps0) / elapsed
    mlx_updates = (trainer.update_steps - updates0) / elapsed
    mlx_updates_cpu = (trainer.update_steps - updates0) / cpu
    env.close()

    batch = trainer.hp.batch_size
    hidden = trainer.settings.network_settings.hidden_units
    plain, plain_cpu = plain_sac_updates_per_sec(
        spec.observation_specs[0].shape[0], spec.action_spec.continuous_size, hidden, batch, seconds
    )
    return {
        "threads": threads,
        "load_average_1min": round(os.getloadavg()[0], 2),  # the machine is shared: wall rates fall with load
        "env_only_steps_per_sec": round(env_rate, 1),
        "mlx_agent_steps_per_sec_one_update_per_step": round(mlx_steps, 1),
        "mlx_gradient_updates_per_sec": round(mlx_updates, 1),
        "plain_pytorch_sac_updates_per_sec": round(plain, 1),
        "mlx_update_rate_vs_plain": round(mlx_updates / plain, 2),
        # Per second of this process's own CPU time: what the rates would be with a core to itself.
        "mlx_steps_with_updates_per_cpu_sec": round(mlx_updates_cpu, 1),
        "plain_pytorch_sac_updates_per_cpu_sec": round(plain_cpu, 1),
        "sizes": {"batch": batch, "hidden": [hidden, hidden]},
        "hours_for_1M_steps_at_this_rate": round(1_000_000 / mlx_steps / 3600, 1),
    }


def plain_sac_updates_per_sec(obs: int, act: int, hidden: int, batch: int, seconds: float) -> tuple[float, float]:
    """A reference SAC update in plain PyTorch (the SB3/CleanRL layout: twin Q with target copies, a tanh
    Gaussian actor, a learned entropy coefficient, three Adam optimisers), on random data: updates per
    second of wall time and of this process's CPU time."""
    import torch
    from torch import nn

    def mlp(n_in: int, n_out: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_out)
        )

    q1, q2, actor = mlp(obs + act, 1), mlp(obs + act, 1), mlp(obs, 2 * act)
    q1_t, q2_t = mlp(obs + act, 1), mlp(obs + act, 1)
    q1_t.load_state_dict(q1.state_dict())
    q2_t.load_state_dict(q2.state_dict())
    log_alpha = torch.zeros(1, requires_grad=True)
    q_opt = torch.optim.Adam([*q1.parameters(), *q2.parameters()], lr=3e-4)
    pi_opt = torch.optim.Adam(actor.parameters(), lr=3e-4)
    a_opt = torch.optim.Adam([log_alpha], lr=3e-4)

    def sample(o: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = actor(o).chunk(2, -1)
        std = log_std.clamp(-20, 2).exp()
        u = mu + std * torch.randn_like(mu)
        a = torch.tanh(u)
        logp = torch.distributions.Normal(mu, std).log_prob(u) - torch.log(1 - a.pow(2) + 1e-6)
        return a, logp.sum(-1, keepdim=True)

    o, a = torch.randn(batch, obs), torch.rand(batch, act) * 2 - 1
    r, o2, d = torch.randn(batch, 1), torch.randn(batch, obs), torch.zeros(batch, 1)

    def update() -> None:
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = sample(o2)
            x2 = torch.cat([o2, a2], -1)
            target = r + 0.99 * (1 - d) * (torch.min(q1_t(x2), q2_t(x2)) - alpha * logp2)
        x = torch.cat([o, a], -1)
        q_loss = (q1(x) - target).pow(2).mean() + (q2(x) - target).pow(2).mean()
        q_opt.zero_grad()
        q_loss.backward()
        q_opt.step()
        pi, logp = sample(o)
        xp = torch.cat([o, pi], -1)
        pi_loss = (alpha * logp - torch.min(q1(xp), q2(xp))).mean()
        pi_opt.zero_grad()
        pi_loss.backward()
        pi_opt.step()
        a_loss = -(log_alpha * (logp.detach() - act)).mean()
        a_opt.zero_grad()
        a_loss.backward()
        a_opt.step()
        with torch.no_grad():
            for net, tgt in ((q1, q1_t), (q2, q2_t)):
                for p, pt in zip(net.parameters(), tgt.parameters(), strict=True):
                    pt.lerp_(p, 0.005)

    for _ in range(20):
        update()
    n, start, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        update()
        n += 1
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["train", "report", "speed"])
    parser.add_argument("--run-dir", type=Path, default=Path("/work/bench/halfcheetah"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--episodes", type=int, default=10, help="deterministic evaluation episodes at the end")
    parser.add_argument("--seconds", type=float, default=30.0, help="speed: seconds per measurement")
    args = parser.parse_args()
    if args.what == "train":
        train(args.run_dir.resolve(), args.seed, args.steps, args.episodes)
    elif args.what == "report":
        out = report(args.run_dir.resolve(), args.seed, args.steps)
        print(json.dumps({k: v for k, v in out.items() if k != "curve"}, indent=2))
    else:
        result = speed(args.seconds)
        existing = json.loads(RESULT.read_text()) if RESULT.exists() else {"benchmark": f"{ENV_ID} SAC", "peer": PEER}
        existing["speed"] = result
        write(existing)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
