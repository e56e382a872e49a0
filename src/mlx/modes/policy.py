"""What acts in evaluate, watch and record: one `Policy` protocol and its four kinds.

A trained policy acts from a ``.pt`` checkpoint (torch: the actor and observation normaliser only, built
from the run's config, with no optimiser, critic or replay buffer) or from an exported ``.onnx`` policy
(onnxruntime, exactly what Unity would load). A random policy picks uniformly among the allowed actions;
a heuristic is a user's scripted demonstrator. Policies with memory keep each agent's memory between its
decisions and drop it when the agent's episode ends (``forget``).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from mlx.config import RunConfig, TrainerSettings
from mlx.envs.api import ActionSpec, ActionTuple, BaseEnv, BehaviorSpec, DecisionSteps
from mlx.errors import RunError, one_line_error
from mlx.trainers.agents import Agents
from mlx.trainers.base import checked_obs
from mlx.trainers.nn.networks import InputNormalizer, actor_for
from mlx.training.checkpoints import STATE_MISMATCH, RunPaths, load_checkpoint

Heuristic = Callable[[BaseEnv, str, DecisionSteps], ActionTuple]


class Policy(Protocol):
    def act(self, decision: DecisionSteps) -> ActionTuple:
        """Actions for the deciding agents, in their order."""

    def forget(self, agent_ids: np.ndarray) -> None:
        """The agents' episodes ended: drop what the policy remembers of them."""


class AgentMemories:
    """Each agent's recurrent memory between its decisions (zeros at an episode's start), kept in the
    trainers' per-agent table: whole batches of agents at once, no Python loop over them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.agents = Agents(size)

    def forget(self, agent_ids: np.ndarray) -> None:
        self.agents.forget_memories(np.asarray(agent_ids))

    def recall(self, ids: Sequence[int]) -> np.ndarray:
        rows = self.agents.lookup(np.asarray(ids))  # first: a lookup may grow the table (a new array)
        return self.agents.memories[rows]

    def keep(self, ids: Sequence[int], memories: np.ndarray) -> None:
        rows = self.agents.lookup(np.asarray(ids))  # first: a lookup may grow the table (a new array)
        self.agents.memories[rows] = memories


class ActingModule(nn.Module):
    """The part of a trainer's module that acts: its actor and observation normaliser, under the names the
    checkpoint's module state uses ("actor.", "normalizer.")."""

    def __init__(self, spec: BehaviorSpec, settings: TrainerSettings) -> None:
        super().__init__()
        ns = settings.network_settings
        self.actor = actor_for(settings.trainer_type, spec, ns)
        self.normalizer = InputNormalizer(spec, ns) if ns.normalize else None

    def load_weights(self, module_state: dict[str, torch.Tensor]) -> None:
        """Strictly: a checkpoint of another network (or without the normaliser this one has) is refused."""
        if not isinstance(module_state, dict):
            raise TypeError(f"its module state is a {type(module_state).__name__}, not a dict")
        self.load_state_dict({k: v for k, v in module_state.items() if str(k).startswith(("actor.", "normalizer."))})

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        return self.normalizer(obs) if self.normalizer is not None else obs


class TorchPolicy:
    """A trained actor acting from a checkpoint."""

    def __init__(self, module: ActingModule, behavior: str, spec: BehaviorSpec, deterministic: bool) -> None:
        self.module = module.eval()
        self.behavior = behavior
        self.spec = spec
        self.deterministic = deterministic
        self.memories = AgentMemories(module.actor.memory_size)

    def forget(self, agent_ids: np.ndarray) -> None:
        self.memories.forget(agent_ids)

    def act(self, decision: DecisionSteps) -> ActionTuple:
        obs = torch.as_tensor(checked_obs(decision.obs, self.behavior, 0))
        mask = None
        if decision.action_mask is not None and self.spec.action_spec.discrete_size:
            mask = torch.as_tensor(np.concatenate(decision.action_mask, axis=1).astype(bool))
        ids = decision.agent_id.tolist()
        memories = torch.as_tensor(self.memories.recall(ids)) if self.memories.size else None
        actor = self.module.actor
        with torch.inference_mode():
            out = actor.sample(self.module.preprocess(obs), mask, self.deterministic, memories)
        if out.memories is not None:
            self.memories.keep(ids, out.memories.numpy())
        cont = actor.env_continuous(out.continuous)
        return ActionTuple(cont.numpy(), out.discrete.numpy().astype(np.int32))


class OnnxPolicy:
    """An exported policy acting through onnxruntime, as Unity's inference engine would run it."""

    def __init__(self, path: Path, spec: BehaviorSpec, deterministic: bool) -> None:
        import onnxruntime as ort  # lazy for start-up speed

        try:
            with contextlib.redirect_stdout(io.StringIO()):  # onnxruntime prints a retry banner on a bad file
                self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
            raise RunError(f"{path} is not a readable ONNX policy ({one_line_error(exc)})") from None
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        expected = [tuple(o.shape) for o in spec.observation_specs]
        found = [tuple(inputs.get(f"obs_{i}", ())[1:]) for i in range(len(expected))]
        if found != expected or f"obs_{len(expected)}" in inputs:
            given = [tuple(s[1:]) for n, s in inputs.items() if n.startswith("obs_")]
            raise RunError(f"{path} takes observations {given} but this env's behaviour gives {expected}")
        memory = inputs.get("recurrent_in", [None, None, 0])
        if len(memory) != 3 or not isinstance(memory[2], int):
            raise RunError(f"{path} has a recurrent_in input of shape {memory}, not [batch, 1, size]; export it again")
        self.path = path
        self.spec = spec
        self.deterministic = deterministic
        self.memories = AgentMemories(memory[2])
        self.prefix = "deterministic_" if deterministic else ""

    def forget(self, agent_ids: np.ndarray) -> None:
        self.memories.forget(agent_ids)

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
        if self.memories.size:
            feeds["recurrent_in"] = self.memories.recall(ids)[:, None, :]
        names = [o.name for o in self.session.get_outputs()]
        try:
            out = dict(zip(names, self.session.run(None, feeds), strict=True))
            if self.memories.size:
                self.memories.keep(ids, out["recurrent_out"][:, 0])
            cont = np.asarray(out.get(f"{self.prefix}continuous_actions", np.zeros((n, 0))), np.float32)
            disc = np.asarray(out.get(f"{self.prefix}discrete_actions", np.zeros((n, 0)))).astype(np.int32)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors on a model that loads but cannot run
            reason = one_line_error(exc)[:160]
            raise RunError(f"{self.path} cannot act for this env ({reason}); export it again") from None
        if cont.shape != (n, a.continuous_size) or disc.shape != (n, a.discrete_size):
            raise RunError(
                f"{self.path} gives actions of shapes {list(cont.shape)} and {list(disc.shape)}; this env's behaviour "
                f"needs [{n}, {a.continuous_size}] continuous and [{n}, {a.discrete_size}] discrete; export it again"
            )
        return ActionTuple(cont, disc)


class RandomPolicy:
    """Uniform random actions among the allowed ones (a baseline demonstrator)."""

    def __init__(self, spec: ActionSpec, seed: int) -> None:
        self.spec = spec
        self.rng = np.random.default_rng(seed)

    def forget(self, agent_ids: np.ndarray) -> None:
        pass

    def act(self, decision: DecisionSteps) -> ActionTuple:
        return self.spec.random(len(decision), self.rng, decision.action_mask)


class HeuristicPolicy:
    """A user's scripted demonstrator, called with the env so that it may read the scene's state."""

    def __init__(self, fn: Heuristic, env: BaseEnv, behavior: str, spec: BehaviorSpec, setting: str) -> None:
        self.fn, self.env, self.behavior, self.spec, self.setting = fn, env, behavior, spec, setting

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
                f"{self.setting} must return an ActionTuple of {n} continuous rows of "
                f"{a.continuous_size} and discrete rows of {a.discrete_size} for {self.behavior}"
            ) from None
        return ActionTuple(cont, disc)


def policy_file(
    cfg: RunConfig, name: str, source: str | None, setting: str = "evaluate.policy", alternative: str = ""
) -> Path:
    """The file a behaviour's policy comes from: ``source`` (the user's ``setting``), else the run's newest
    checkpoint or policy. ``alternative`` adds another way out to the message when there is none."""
    if source is not None:
        path = Path(source)
        if not path.exists():
            raise RunError(f"{setting}={source}: no such file; give a .pt checkpoint or an .onnx policy")
        return path
    paths = RunPaths.of(cfg)
    candidates = [paths.latest_checkpoint(name), paths.policy(name)]
    found = next((p for p in candidates if p.exists()), None)
    if found is None:
        raise RunError(
            f"run '{cfg.run_id}' has no trained policy for behaviour {name} (looked for "
            f"{candidates[0]} and {candidates[1]}); train it first or pass {setting}=<file.pt|file.onnx>{alternative}"
        )
    return found


def load_policy(cfg: RunConfig, name: str, spec: BehaviorSpec, path: Path, deterministic: bool) -> Policy:
    """The trained policy in ``path`` (.onnx or a .pt checkpoint) for behaviour ``name`` of this env."""
    if path.suffix == ".onnx":
        return OnnxPolicy(path, spec, deterministic)
    state: dict[str, Any] = load_checkpoint(path)
    try:
        module = ActingModule(spec, cfg.trainer_for(name))
        module.load_weights(state["trainer"]["module"])
    except STATE_MISMATCH as exc:
        made_for = str(state.get("behavior_spec", "another behaviour"))[:300]
        raise RunError(
            f"{path} was trained for {made_for}, which does not fit this env's behaviour {name} "
            f"({spec}): {one_line_error(exc)[:120]}"
        ) from None
    return TorchPolicy(module, name, spec, deterministic)
