"""`python -m mlx mode=evaluate run_id=<id>`: run a trained policy on its env, without learning.

mlagents-learn's ``--inference``: the policy acts (deterministically by default: the mean of the
Gaussian, the most likely discrete action) in every area until the first ``evaluate.episodes`` episodes
to start (not the first to end, which would favour short episodes) have ended per behaviour, then the
mean and spread of returns and episode lengths are printed and written to
``results/<run_id>/run_logs/evaluation.json``. The policy is the run's newest checkpoint, or any
``evaluate.policy=<file>``: a ``.pt`` checkpoint (acted by torch) or an exported ``.onnx`` policy (acted
by onnxruntime, exactly what Unity would load). Env settings (``env=...``, ``env.parameters.*``) may
differ from training, e.g. to test a policy on other masses. A policy built for another observation or
action layout is refused with the two layouts named.
"""

from __future__ import annotations

import json

import numpy as np
from omegaconf import DictConfig

from mlx.config import RunConfig, validate
from mlx.errors import RunError
from mlx.modes.episodes import EpisodeCounter
from mlx.modes.match import is_match, play_match
from mlx.modes.policy import load_policy, policy_file
from mlx.tracking.attach import attach, flat_metrics
from mlx.training.checkpoints import RunPaths, atomic_write
from mlx.training.output import say, warn
from mlx.training.setup import configure_process, open_env, seeded


def evaluate_run(cfg: RunConfig) -> dict[str, dict[str, float]]:
    settings = cfg.evaluate
    configure_process(cfg)
    paths = RunPaths.of(cfg)
    env, parameters = open_env(cfg, paths.run_logs)
    applied = parameters.lesson_report() if parameters is not None else {}
    if is_match(env):  # several teams: one policy against another (mlx.modes.match)
        try:
            match = play_match(cfg, env)
        finally:
            env.close()
        write_report(cfg, paths, {"match": match}, applied)
        return {"match": match}
    try:
        policies = {
            name: load_policy(cfg, name, spec, policy_file(cfg, name, settings.policy), settings.deterministic)
            for name, spec in env.behavior_specs.items()
        }
        counters = {name: EpisodeCounter(settings.episodes) for name in policies}
        steps = dict.fromkeys(policies, 0)
        env.reset()
        while any(not counters[n].done and steps[n] < settings.max_steps for n in policies):
            for name, policy in policies.items():
                decision, terminal = env.get_steps(name)
                counters[name].add(decision, terminal)
                policy.forget(terminal.agent_id)
                steps[name] += len(decision)
                if len(decision):
                    env.set_actions(name, policy.act(decision))
            env.step()
    finally:
        env.close()
    for name, counter in counters.items():
        if len(counter.returns) < settings.episodes:
            warn(
                f"[WARNING] {name}. Only {len(counter.returns)} of {settings.episodes} episodes ended within "
                f"evaluate.max_steps={settings.max_steps} agent steps (a deterministic policy can loop forever: "
                "try evaluate.deterministic=false)",
            )
            if not counter.returns:
                raise RunError(f"no episode of {name} ended within evaluate.max_steps={settings.max_steps}")
    report: dict[str, dict[str, float]] = {}
    for name in policies:
        r = np.asarray(counters[name].returns)
        ln = np.asarray(counters[name].lengths)
        report[name] = {
            "episodes": len(r),
            "mean_return": float(r.mean()),
            "std_return": float(r.std()),
            "mean_length": float(ln.mean()),
            "std_length": float(ln.std()),
        }
        group = ""
        if counters[name].grouped:  # a group behaviour is scored by its group reward, as in training
            g = np.asarray(counters[name].group_returns)
            report[name].update(mean_group_return=float(g.mean()), std_group_return=float(g.std()))
            group = f" Mean Group Return: {g.mean():.3f}."
        kind = "deterministic" if settings.deterministic else "sampled"
        say(
            f"[INFO] {name}. Evaluated {len(r)} episodes ({kind} actions): Mean Return: {r.mean():.3f}. "
            f"Std of Return: {r.std():.3f}.{group} Mean Episode Length: {ln.mean():.1f}."
        )
    write_report(cfg, paths, report, applied)
    return report


def write_report(cfg: RunConfig, paths: RunPaths, report: dict, applied: dict[str, dict]) -> None:
    """run_logs/evaluation.json: the env, its parameters, the environment_parameters' lessons it played
    (``applied``: a curriculum's lesson sets its parameter over env.parameters) and the report."""
    out = paths.run_logs / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    head = {"env": cfg.env.name, "parameters": cfg.env.parameters, "environment_parameters": applied}
    atomic_write(out, json.dumps({**head, **report}, indent=2).encode())
    if cfg.tracking.backend == "mlflow":  # also on the training's MLflow run: Evaluation/<behavior>/mean_return, ...
        attach(paths.root, cfg.tracking.uri, [(out, "evaluation")], flat_metrics(report, "Evaluation"))


def evaluate(dict_cfg: DictConfig) -> float | None:
    """Entry point for mode=evaluate; returns the mean return over behaviours (a group behaviour's mean
    group return, as training scores it)."""
    cfg = seeded(validate(dict_cfg))
    report = evaluate_run(cfg)
    if "match" in report:  # the evaluated team's win rate among decided games
        return float(report["match"]["win_rate_decided"])
    return float(np.mean([r.get("mean_group_return", r["mean_return"]) for r in report.values()])) if report else None
