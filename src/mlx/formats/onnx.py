"""ONNX export of trained policies in the layout Unity's inference engine loads (ML-Agents model version 3).

Inputs: ``obs_0`` ... ``obs_{n-1}`` (one per observation spec, batch on axis 0; a variable-length one is
[batch, max_entities, entity_size] with zero rows as padding, named by its index as ML-Agents 1.x names it;
the graph masks its zero rows as training does), ``action_masks`` (float
[batch, sum(branches)], 1 = allowed; discrete actions only) and ``recurrent_in`` ([batch, 1, memory_size];
networks with memory only). Outputs: the constants ``version_number`` (3), ``memory_size``,
``continuous_action_output_shape`` and ``discrete_action_output_shape`` (branch sizes); the actions
``continuous_actions`` (sampled) and ``deterministic_continuous_actions`` (the mean), both already in the
env's [-1, 1] range (PPO's clamp(a, -3, 3) / 3, SAC's tanh); ``discrete_actions`` (sampled) and
``deterministic_discrete_actions`` (most likely), int64 [batch, branches]; and ``recurrent_out``. The
observation normaliser is folded into the graph, so the file needs nothing else to act.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mlx.envs.api import BehaviorSpec
from mlx.trainers.nn.networks import MASKED_LOGIT, Actor

MODEL_VERSION = 3
OPSET = 17


class ExportedPolicy(nn.Module):
    """The actor with its input normaliser, taking ML-Agents' inputs and giving ML-Agents' outputs."""

    def __init__(self, spec: BehaviorSpec, actor: Actor, normalizer: nn.Module | None) -> None:
        super().__init__()
        self.spec = spec
        self.actor = actor
        self.normalizer = normalizer
        a = spec.action_spec
        self.branches = tuple(a.discrete_branches)
        self.memory_size = actor.memory_size
        self.register_buffer("version_number", torch.tensor([float(MODEL_VERSION)]))
        self.register_buffer("memory_size_const", torch.tensor([float(self.memory_size)]))
        self.register_buffer("continuous_shape", torch.tensor([float(a.continuous_size)]))
        self.register_buffer("discrete_shape", torch.tensor([float(b) for b in self.branches]))

    def input_names(self) -> list[str]:
        names = [f"obs_{i}" for i in range(len(self.spec.observation_specs))]
        if self.branches:
            names.append("action_masks")
        if self.memory_size:
            names.append("recurrent_in")
        return names

    def output_names(self) -> list[str]:
        names = ["version_number", "memory_size"]
        if self.spec.action_spec.continuous_size:
            names += ["continuous_actions", "continuous_action_output_shape", "deterministic_continuous_actions"]
        if self.branches:
            names += ["discrete_actions", "discrete_action_output_shape", "deterministic_discrete_actions"]
        if self.memory_size:
            names.append("recurrent_out")
        return names

    def example_inputs(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        inputs = [torch.zeros(batch, *o.shape) for o in self.spec.observation_specs]
        if self.branches:
            inputs.append(torch.ones(batch, sum(self.branches)))
        if self.memory_size:
            inputs.append(torch.zeros(batch, 1, self.memory_size))
        return tuple(inputs)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n_obs = len(self.spec.observation_specs)
        obs = [o.reshape(o.shape[0], -1) for o in inputs[:n_obs]]
        x = torch.cat(obs, dim=1) if len(obs) > 1 else obs[0]
        if self.normalizer is not None:
            x = self.normalizer(x)
        rest = list(inputs[n_obs:])
        masks = rest.pop(0) if self.branches else None
        memories = rest.pop(0)[:, 0] if self.memory_size else None
        h, new_memories = self.actor.body(x, memories)
        outputs: list[torch.Tensor] = [self.version_number * 1.0, self.memory_size_const * 1.0]
        actor = self.actor
        if actor.mu is not None:
            out = actor.mu(h)
            if actor.conditional_sigma:
                mu, log_std = out.chunk(2, dim=-1)
            else:
                mu, log_std = out, actor.log_std.expand_as(out)
            log_std = log_std.clamp(-20.0, 2.0)
            sample = mu + torch.randn_like(mu) * log_std.exp()
            outputs += [actor.to_env(sample), self.continuous_shape * 1.0, actor.to_env(mu)]
        if actor.logits is not None:
            assert masks is not None
            logits = actor.logits(h)
            logits = torch.where(masks > 0.5, logits, torch.full_like(logits, MASKED_LOGIT))
            sampled, best = [], []
            for chunk in torch.split(logits, self.branches, dim=1):
                probs = torch.softmax(chunk, dim=1)
                sampled.append(torch.multinomial(probs, 1))
                best.append(torch.argmax(chunk, dim=1, keepdim=True))
            outputs += [torch.cat(sampled, dim=1), self.discrete_shape * 1.0, torch.cat(best, dim=1)]
        if self.memory_size:
            assert new_memories is not None
            outputs.append(new_memories[:, None, :])
        return tuple(outputs)


def export_policy(spec: BehaviorSpec, actor: Actor, normalizer: nn.Module | None, path: Path) -> Path:
    """Write the policy as ONNX to ``path`` (atomically); returns the path."""
    policy = ExportedPolicy(spec, actor, normalizer).eval()
    names = policy.input_names()
    dynamic = {name: {0: "batch"} for name in names}
    for name in policy.output_names():
        if name not in (
            "version_number",
            "memory_size",
            "continuous_action_output_shape",
            "discrete_action_output_shape",
        ):
            dynamic[name] = {0: "batch"}
    buffer = io.BytesIO()
    # The tracer's warnings concern Python-side shape checks and an LSTM batch size; the recurrent state
    # is an input here and every axis that varies is declared dynamic, so they do not apply.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            policy,
            policy.example_inputs(),
            buffer,
            input_names=names,
            output_names=policy.output_names(),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(_name_outputs(buffer.getvalue(), policy.output_names()))
    tmp.replace(path)
    return path


def _name_outputs(model_bytes: bytes, names: list[str]) -> bytes:
    """Give every graph output its ML-Agents name: the exporter cannot rename outputs it folded into
    constants (version_number, ...), so those get an Identity node carrying the right name."""
    import onnx  # lazy for start-up speed (onnx)
    from onnx import helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    for output, name in zip(graph.output, names, strict=True):
        if output.name != name:
            graph.node.append(helper.make_node("Identity", [output.name], [name], name=f"name_{name}"))
            output.name = name
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_actions(path: Path, obs: list[np.ndarray], masks: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Run an exported policy with onnxruntime (deterministic and sampled outputs by name)."""
    import onnxruntime as ort  # lazy for start-up speed (onnxruntime)

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {f"obs_{i}": o.astype(np.float32) for i, o in enumerate(obs)}
    names = {i.name for i in session.get_inputs()}
    if "action_masks" in names:
        n = len(obs[0])
        width = session.get_inputs()[[i.name for i in session.get_inputs()].index("action_masks")].shape[1]
        feeds["action_masks"] = np.ones((n, width), np.float32) if masks is None else masks.astype(np.float32)
    if "recurrent_in" in names:
        size = int(
            math.prod(session.get_inputs()[[i.name for i in session.get_inputs()].index("recurrent_in")].shape[2:])
        )
        feeds["recurrent_in"] = np.zeros((len(obs[0]), 1, size), np.float32)
    outputs = session.run(None, feeds)
    return {o.name: v for o, v in zip(session.get_outputs(), outputs, strict=True)}
