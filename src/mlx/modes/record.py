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
from pathlib import Path

from omegaconf import DictConfig

from mlx.config import ConfigError, RecordSettings, RunConfig, validate
from mlx.envs.api import BaseEnv, BehaviorSpec
from mlx.errors import RunError, one_line_error
from mlx.formats.demo import DemoMeta, write_demo
from mlx.modes.episodes import EpisodeRecorder
from mlx.modes.policy import Heuristic, HeuristicPolicy, Policy, RandomPolicy, load_policy, policy_file
from mlx.training.checkpoints import RunPaths
from mlx.training.output import say, warn
from mlx.training.setup import configure_process, open_env, seeded


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


def demonstrator(cfg: RunConfig, env: BaseEnv, name: str, spec: BehaviorSpec, settings: RecordSettings) -> Policy:
    """The demonstrator of one behaviour: a heuristic, record.policy, or the run's newest checkpoint."""
    if settings.heuristic == "random":
        return RandomPolicy(spec.action_spec, cfg.seed)
    if settings.heuristic is not None:
        fn = load_heuristic(settings.heuristic)
        return HeuristicPolicy(fn, env, name, spec, f"record.heuristic={settings.heuristic}")
    also = " or record.heuristic=random|<module:function>"
    path = policy_file(cfg, name, settings.policy, "record.policy", also)
    return load_policy(cfg, name, spec, path, settings.deterministic)


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
    configure_process(cfg)
    env, _ = open_env(cfg, RunPaths.of(cfg).run_logs)
    specs = env.behavior_specs
    try:
        paths = demo_paths(cfg, list(specs))
        for path in paths.values():
            if path.exists() and not cfg.force:
                raise RunError(f"{path} exists; pass force=true to overwrite it or choose another record.path")
        actors = {name: demonstrator(cfg, env, name, spec, settings) for name, spec in specs.items()}
        recorders = {name: EpisodeRecorder(spec) for name, spec in specs.items()}
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
            warn(
                f"[WARNING] {name}. Only {len(episodes)} of {settings.episodes} episodes ended within "
                f"record.max_steps={settings.max_steps} agent steps (try record.deterministic=false)",
            )
            if not episodes:
                raise RunError(f"no episode of {name} ended within record.max_steps={settings.max_steps}")
        meta = write_demo(paths[name], specs[name], name, episodes, settings.name or name)
        out[name] = meta
        say(
            f"[INFO] {name}. Recorded {meta.number_episodes} episodes ({meta.number_steps} steps, mean reward "
            f"{meta.mean_reward:.3f}) to {paths[name]}",
        )
    return out


def record(dict_cfg: DictConfig) -> dict[str, DemoMeta]:
    """Entry point for mode=record."""
    return record_run(seeded(validate(dict_cfg)))
