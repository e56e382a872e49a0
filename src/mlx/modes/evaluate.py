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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from mlx.config import RunConfig, validate
from mlx.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.trainers.base import RLTrainer, checked_obs
from mlx.training.run import Run, RunError, atomic_write, load_checkpoint, one_line_error, seeded


class TorchPolicy:
    """A trainer's actor acting from a checkpoint; keeps each agent's memory between decisions."""

    def __init__(self, trainer: RLTrainer, deterministic: bool) -> None:
        self.trainer = trainer
        self.module = trainer.module
        self.deterministic = deterministic
        self.memory_size = self.module.actor.memory_size
        self.memories: dict[int, np.ndarray] = {}

    def forget(self, agent_ids: np.ndarray) -> None:
        for agent in agent_ids.tolist():
            self.memories.pop(agent, None)

    def act(self, decision: DecisionSteps) -> ActionTuple:
        obs = torch.as_tensor(checked_obs(decision.obs, self.trainer.behavior_name, 0))
        mask = None
        if decision.action_mask is not None and self.trainer.spec.action_spec.discrete_size:
            mask = torch.as_tensor(np.concatenate(decision.action_mask, axis=1).astype(bool))
        ids = decision.agent_id.tolist()
        memories = None
        if self.memory_size:
            zero = np.zeros(self.memory_size, np.float32)
            memories = torch.as_tensor(np.stack([self.memories.get(a, zero) for a in ids]))
        with torch.inference_mode():
            out = self.module.actor.sample(self.module.preprocess(obs), mask, self.deterministic, memories)
        if out.memories is not None:
            for agent, memory in zip(ids, out.memories.numpy(), strict=True):
                self.memories[agent] = memory
        cont = self.module.actor.env_continuous(out.continuous)
        return ActionTuple(cont.numpy(), out.discrete.numpy().astype(np.int32))


class OnnxPolicy:
    """An exported policy acting through onnxruntime, as Unity's inference engine would run it."""

    def __init__(self, path: Path, spec: BehaviorSpec, deterministic: bool) -> None:
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
            raise RunError(f"{path} is not a readable ONNX policy ({one_line_error(exc)})") from None
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        expected = [tuple(o.shape) for o in spec.observation_specs]
        found = [tuple(inputs.get(f"obs_{i}", ())[1:]) for i in range(len(expected))]
        if found != expected or f"obs_{len(expected)}" in inputs:
            given = [tuple(s[1:]) for n, s in inputs.items() if n.startswith("obs_")]
            raise RunError(f"{path} takes observations {given} but this env's behaviour gives {expected}")
        self.spec = spec
        self.deterministic = deterministic
        self.memory_size = int(inputs["recurrent_in"][2]) if "recurrent_in" in inputs else 0
        self.memories: dict[int, np.ndarray] = {}
        self.prefix = "deterministic_" if deterministic else ""

    def forget(self, agent_ids: np.ndarray) -> None:
        for agent in agent_ids.tolist():
            self.memories.pop(agent, None)

    def act(self, decision: DecisionSteps) -> ActionTuple:
        n = len(decision)
        feeds: dict[str, np.ndarray] = {f"obs_{i}": np.asarray(o, np.float32) for i, o in enumerate(decision.obs)}
        a = self.spec.action_spec
        if a.discrete_size:
            feeds["action_masks"] = (
                np.ones((n, sum(a.discrete_branches)), np.float32)
                if decision.action_mask is None
                else np.concatenate(decision.action_mask, axis=1).astype(np.float32)
            )
        ids = decision.agent_id.tolist()
        if self.memory_size:
            zero = np.zeros(self.memory_size, np.float32)
            feeds["recurrent_in"] = np.stack([self.memories.get(a, zero) for a in ids])[:, None, :]
        names = [o.name for o in self.session.get_outputs()]
        out = dict(zip(names, self.session.run(None, feeds), strict=True))
        if self.memory_size:
            for agent, memory in zip(ids, out["recurrent_out"][:, 0], strict=True):
                self.memories[agent] = memory
        cont = out.get(f"{self.prefix}continuous_actions", np.zeros((n, 0), np.float32))
        disc = out.get(f"{self.prefix}discrete_actions", np.zeros((n, 0), np.int64))
        return ActionTuple(np.asarray(cont, np.float32), np.asarray(disc).astype(np.int32))


def load_policy(
    job: Run, name: str, trainer: RLTrainer, source: str | None, deterministic: bool, setting: str = "evaluate.policy"
) -> Any:
    """The policy of one behaviour: ``source`` (the user's ``setting``, evaluate.policy or watch.policy), else
    the run's newest checkpoint or policy."""
    if source is None:
        candidates = [job.paths.latest_checkpoint(name), job.paths.policy(name)]
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise RunError(
                f"run '{job.cfg.run_id}' has no trained policy for behaviour {name} (looked for "
                f"{candidates[0]} and {candidates[1]}); train it first or pass {setting}=<file.pt|file.onnx>"
            )
    else:
        path = Path(source)
        if not path.exists():
            raise RunError(f"{setting}={source}: no such file; give a .pt checkpoint or an .onnx policy")
    if path.suffix == ".onnx":
        return OnnxPolicy(path, trainer.spec, deterministic)
    state = load_checkpoint(path)
    try:
        trainer.load_weights(state["trainer"])
    except (RuntimeError, KeyError) as exc:
        made_for = state.get("behavior_spec", "another behaviour")
        raise RunError(
            f"{path} was trained for {made_for}, which does not fit this env's behaviour {name} "
            f"({trainer.spec}): {one_line_error(exc)[:120]}"
        ) from None
    return TorchPolicy(trainer, deterministic)


def evaluate_run(cfg: RunConfig) -> dict[str, dict[str, float]]:
    settings = cfg.evaluate
    job = Run(cfg)
    job.build()
    assert job.env is not None
    env = job.env
    policies = {
        name: load_policy(job, name, trainer, settings.policy, settings.deterministic)
        for name, trainer in job.trainers.items()
    }
    counters = {name: EpisodeCounter(settings.episodes) for name in policies}
    steps = dict.fromkeys(policies, 0)
    env.reset()
    try:
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
            print(
                f"[WARNING] {name}. Only {len(counter.returns)} of {settings.episodes} episodes ended within "
                f"evaluate.max_steps={settings.max_steps} agent steps (a deterministic policy can loop forever: "
                "try evaluate.deterministic=false)",
                flush=True,
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
        kind = "deterministic" if settings.deterministic else "sampled"
        print(
            f"[INFO] {name}. Evaluated {len(r)} episodes ({kind} actions): Mean Return: {r.mean():.3f}. "
            f"Std of Return: {r.std():.3f}. Mean Episode Length: {ln.mean():.1f}.",
            flush=True,
        )
    out = job.paths.run_logs / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps({"env": cfg.env.name, "parameters": cfg.env.parameters, **report}, indent=2).encode())
    return report


class EpisodeCounter:
    """The returns of one behaviour's first ``wanted`` episodes in the order they *start*.

    Taking the first episodes to *end* would favour short ones: with many areas, quick successes (or quick
    falls) end before long episodes do, and the mean would be biased. An episode is counted or not when it
    starts, which depends only on earlier episodes, so the counted ones are a fair sample; evaluation then
    runs until every counted episode has ended.
    """

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.started = 0
        self.running: dict[int, list[float]] = {}  # agent -> [return, length] (account_episodes)
        self.counted: set[int] = set()  # agents whose running episode is counted
        self.returns: list[float] = []
        self.lengths: list[int] = []

    @property
    def done(self) -> bool:
        return self.started >= self.wanted and not self.counted

    def _claim(self) -> bool:
        """Whether an episode starting now is counted."""
        counted = self.started < self.wanted
        self.started += counted
        return counted

    def add(self, decision: DecisionSteps, terminal: TerminalSteps) -> None:
        """One step of the behaviour: close the episodes that ended, then add the decisions' rewards."""
        ended_ids = terminal.agent_id.tolist()
        ended = set(ended_ids)
        # An episode starts at an agent's first decision, or its first after its previous episode ended.
        starts = [a for a in decision.agent_id.tolist() if a not in self.running or a in ended]
        # An episode that ends before any decision of it was seen starts and ends now.
        keep = [a in self.counted if a in self.running else self._claim() for a in ended_ids]
        self.counted.difference_update(ended_ids)
        returns: list[float] = []
        lengths: list[int] = []
        account_episodes(self.running, decision, terminal, returns, lengths)
        self.returns += [r for r, k in zip(returns, keep, strict=True) if k]
        self.lengths += [n for n, k in zip(lengths, keep, strict=True) if k]
        self.counted.update(a for a in starts if self._claim())


def account_episodes(
    running: dict[int, list[float]],
    decision: DecisionSteps,
    terminal: TerminalSteps,
    returns: list[float],
    lengths: list[int],
) -> None:
    """Add each step's rewards to its agent's episode; close the episodes that ended."""
    for agent, reward in zip(terminal.agent_id.tolist(), terminal.reward.tolist(), strict=True):
        total = running.pop(agent, [0.0, 0])
        returns.append(total[0] + reward)
        lengths.append(int(total[1]))
    for agent, reward in zip(decision.agent_id.tolist(), decision.reward.tolist(), strict=True):
        entry = running.setdefault(agent, [0.0, 0])
        entry[0] += reward
        entry[1] += 1


def evaluate(dict_cfg: DictConfig) -> float | None:
    """Entry point for mode=evaluate; returns the mean return over behaviours."""
    cfg = seeded(validate(dict_cfg))
    report = evaluate_run(cfg)
    return float(np.mean([r["mean_return"] for r in report.values()])) if report else None
