"""`python -m mlx mode=record run_id=<trained run>`: record expert demonstrations as ML-Agents .demo files.

What Unity's DemonstrationRecorder does for a scene, for any mlx env: an actor plays every area until
``record.episodes`` episodes have ended per behaviour, and those episodes are written to a ``.demo``
file (see mlx.formats.demo) whose meta data holds the number of steps and episodes and the mean episode reward.
They are each agent's first episodes, spread over the agents (mlx.formats.demo.EpisodeRecorder), not the first
to end, which would favour short ones. The actor is, as for mode=evaluate, the run's
newest checkpoint or ``record.policy=<file.pt|file.onnx>`` (deterministic by default:
``record.deterministic=false`` samples), or a scripted heuristic: ``record.heuristic=random`` (uniform
over allowed actions) or ``record.heuristic=<package.module>:<function>``, a function
``(env, behavior_name, decision_steps) -> ActionTuple`` that may read the env's own state, as a human
demonstrator sees the scene.

``record.path``: a ``.demo`` file (with several behaviours, ``<stem>-<Behavior>.demo`` beside it) or a
folder (``<folder>/<Behavior>.demo``); by default ``results/<run_id>/demos/<Behavior>.demo``. An existing
file is kept unless ``force=true``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from mlx.config import ConfigError, RecordSettings, RunConfig, validate
from mlx.envs.api import ActionSpec, ActionTuple, BaseEnv, BehaviorSpec, DecisionSteps
from mlx.formats.demo import DemoMeta, EpisodeRecorder, write_demo
from mlx.trainers.base import RLTrainer
from mlx.training.run import Run, RunError, one_line_error, seeded

Heuristic = Callable[[BaseEnv, str, DecisionSteps], ActionTuple]


class RandomActor:
    """Uniform random actions among the allowed ones (a baseline demonstrator)."""

    def __init__(self, spec: ActionSpec, seed: int) -> None:
        self.spec = spec
        self.rng = np.random.default_rng(seed)

    def forget(self, agent_ids: np.ndarray) -> None:
        pass

    def act(self, decision: DecisionSteps) -> ActionTuple:
        n = len(decision)
        cont = self.rng.uniform(-1.0, 1.0, size=(n, self.spec.continuous_size)).astype(np.float32)
        cols = []
        for b, size in enumerate(self.spec.discrete_branches):
            allowed = np.ones((n, size), bool) if decision.action_mask is None else decision.action_mask[b]
            cols.append(np.where(allowed, self.rng.random((n, size)), -1.0).argmax(axis=1))
        disc = np.stack(cols, axis=1) if cols else np.zeros((n, 0))
        return ActionTuple(cont, disc.astype(np.int32))


class HeuristicActor:
    """A user's scripted demonstrator, called with the env so that it may read the scene's state."""

    def __init__(self, fn: Heuristic, env: BaseEnv, behavior: str, spec: BehaviorSpec, source: str) -> None:
        self.fn, self.env, self.behavior, self.spec, self.source = fn, env, behavior, spec, source

    def forget(self, agent_ids: np.ndarray) -> None:
        pass

    def act(self, decision: DecisionSteps) -> ActionTuple:
        out = self.fn(self.env, self.behavior, decision)
        a, n = self.spec.action_spec, len(decision)
        try:
            cont = np.asarray(out.continuous, np.float32).reshape(n, a.continuous_size)
            disc = np.asarray(out.discrete).astype(np.int32).reshape(n, a.discrete_size)
        except (AttributeError, ValueError):
            raise RunError(
                f"record.heuristic={self.source} must return an ActionTuple of {n} continuous rows of "
                f"{a.continuous_size} and discrete rows of {a.discrete_size} for {self.behavior}"
            ) from None
        return ActionTuple(cont, disc)


def load_heuristic(source: str) -> Heuristic:
    """``package.module:function`` -> the function."""
    module_name, _, attr = source.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"record.heuristic must be 'random' or 'package.module:function' (got '{source}')")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"record.heuristic={source} cannot be loaded ({one_line_error(exc)})") from None
    if not callable(fn):
        raise ConfigError(f"record.heuristic={source} is not a function")
    return fn


def make_actor(job: Run, name: str, trainer: RLTrainer, settings: RecordSettings) -> Any:
    """The demonstrator of one behaviour: a heuristic, record.policy, or the run's newest checkpoint."""
    from mlx.modes.evaluate import load_policy

    if settings.heuristic == "random":
        return RandomActor(trainer.spec.action_spec, job.cfg.seed)
    if settings.heuristic is not None:
        assert job.env is not None
        return HeuristicActor(load_heuristic(settings.heuristic), job.env, name, trainer.spec, settings.heuristic)
    if settings.policy is not None and not Path(settings.policy).exists():
        raise RunError(f"record.policy={settings.policy}: no such file; give a .pt checkpoint or an .onnx policy")
    if settings.policy is None and not any(
        p.exists() for p in (job.paths.latest_checkpoint(name), job.paths.policy(name))
    ):
        raise RunError(
            f"run '{job.cfg.run_id}' has no trained policy for behaviour {name}; train it first, or pass "
            "record.policy=<file.pt|file.onnx> or record.heuristic=random|<module:function>"
        )
    return load_policy(job, name, trainer, settings.policy, settings.deterministic)


def demo_paths(cfg: RunConfig, behaviors: list[str]) -> dict[str, Path]:
    """Where each behaviour's recording goes (see the module docstring)."""
    given = cfg.record.path
    if given is None:
        folder = Path(cfg.results_dir) / cfg.run_id / "demos"
        return {b: folder / f"{b}.demo" for b in behaviors}
    path = Path(given)
    if path.suffix == ".demo":
        if len(behaviors) == 1:
            return {behaviors[0]: path}
        return {b: path.with_name(f"{path.stem}-{b}.demo") for b in behaviors}
    return {b: path / f"{b}.demo" for b in behaviors}


def record_run(cfg: RunConfig) -> dict[str, DemoMeta]:
    settings = cfg.record
    job = Run(cfg)
    job.build()
    assert job.env is not None
    env = job.env
    try:
        paths = demo_paths(cfg, list(job.trainers))
        for path in paths.values():
            if path.exists() and not cfg.force:
                raise RunError(f"{path} exists; pass force=true to overwrite it or choose another record.path")
        actors = {name: make_actor(job, name, trainer, settings) for name, trainer in job.trainers.items()}
        recorders = {name: EpisodeRecorder(trainer.spec) for name, trainer in job.trainers.items()}
        steps = dict.fromkeys(actors, 0)

        def recording(name: str) -> bool:
            return not recorders[name].ready(settings.episodes) and steps[name] < settings.max_steps

        env.reset()
        while any(recording(n) for n in actors):
            for name, actor in actors.items():
                decision, terminal = env.get_steps(name)
                actor.forget(terminal.agent_id)
                actions = actor.act(decision) if len(decision) else None
                if recording(name):
                    recorders[name].record(decision, terminal, actions)
                steps[name] += len(decision)
                if actions is not None:
                    env.set_actions(name, actions)
            env.step()
    finally:
        env.close()
    out: dict[str, DemoMeta] = {}
    for name, recorder in recorders.items():
        episodes = recorder.episodes(settings.episodes)
        if len(episodes) < settings.episodes:
            print(
                f"[WARNING] {name}. Only {len(episodes)} of {settings.episodes} episodes ended within "
                f"record.max_steps={settings.max_steps} agent steps (try record.deterministic=false)",
                flush=True,
            )
            if not episodes:
                raise RunError(f"no episode of {name} ended within record.max_steps={settings.max_steps}")
        meta = write_demo(paths[name], job.trainers[name].spec, name, episodes, settings.name or name)
        out[name] = meta
        print(
            f"[INFO] {name}. Recorded {meta.number_episodes} episodes ({meta.number_steps} steps, mean reward "
            f"{meta.mean_reward:.3f}) to {paths[name]}",
            flush=True,
        )
    return out


def record(dict_cfg: DictConfig) -> dict[str, DemoMeta]:
    """Entry point for mode=record."""
    return record_run(seeded(validate(dict_cfg)))
