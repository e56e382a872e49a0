"""ONNX export: ML-Agents' tensor names and constants, and onnxruntime acting exactly as the torch policy."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from mlx.config import ExtrinsicSettings, MemorySettings, POCASettings, PPOSettings, SACSettings
from mlx.envs import make_env
from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.formats.onnx import onnx_actions
from mlx.trainers.nn.networks import to_env_continuous
from mlx.trainers.poca.trainer import POCATrainer
from mlx.trainers.ppo.trainer import PPOTrainer
from mlx.trainers.sac.trainer import SACTrainer

SIGNALS = {"extrinsic": ExtrinsicSettings()}


def trainer_for(cls: type, spec: BehaviorSpec, memory: bool = False):
    torch.manual_seed(0)
    settings = {PPOTrainer: PPOSettings, SACTrainer: SACSettings, POCATrainer: POCASettings}[cls]()
    settings.network_settings.normalize = True
    if memory:
        settings.network_settings.memory = MemorySettings(sequence_length=4, memory_size=8)
    trainer = cls("B", spec, settings, SIGNALS, torch.device("cpu"))
    rng = np.random.default_rng(1)
    size = sum(int(np.prod(o.shape)) for o in spec.observation_specs)
    trainer.module.normalizer.update(torch.as_tensor(rng.normal(2.0, 3.0, (500, size)), dtype=torch.float32))
    return trainer


@pytest.mark.parametrize("cls", [PPOTrainer, SACTrainer, POCATrainer])
def test_continuous_policy_names_constants_and_actions(tmp_path, cls):
    spec = make_env("3dball", 1, 0).behavior_specs["3DBall"]
    trainer = trainer_for(cls, spec)
    path = trainer.export(tmp_path / "3DBall.onnx")
    model = onnx.load(path)
    assert [i.name for i in model.graph.input] == ["obs_0"]
    assert [o.name for o in model.graph.output] == [
        "version_number", "memory_size", "continuous_actions", "continuous_action_output_shape",
        "deterministic_continuous_actions",
    ]  # fmt: skip
    obs = np.random.default_rng(2).normal(0.0, 3.0, (1000, 8)).astype(np.float32)
    out = onnx_actions(path, [obs])
    assert out["version_number"].tolist() == [3.0] and out["memory_size"].tolist() == [0.0]
    assert out["continuous_action_output_shape"].tolist() == [2.0]
    module = trainer.module
    with torch.no_grad():
        mean = module.actor.sample(module.preprocess(torch.as_tensor(obs)), deterministic=True).continuous
    expected = mean if cls is SACTrainer else to_env_continuous(mean)
    np.testing.assert_allclose(out["deterministic_continuous_actions"], expected.numpy(), atol=1e-5)
    assert np.abs(out["continuous_actions"]).max() <= 1.0
    assert np.abs(out["continuous_actions"] - out["deterministic_continuous_actions"]).mean() > 1e-3  # sampled


def test_discrete_policy_respects_masks_like_torch(tmp_path):
    spec = BehaviorSpec((ObservationSpec((6,)),), ActionSpec(discrete_branches=(4, 3)))
    trainer = trainer_for(PPOTrainer, spec)
    path = trainer.export(tmp_path / "D.onnx")
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(1000, 6)).astype(np.float32)
    masks = rng.random((1000, 7)) > 0.4
    masks[:, 0] = masks[:, 4] = True  # at least one action allowed per branch
    out = onnx_actions(path, [obs], masks.astype(np.float32))
    assert out["discrete_action_output_shape"].tolist() == [4.0, 3.0]
    module = trainer.module
    with torch.no_grad():
        ref = module.actor.sample(module.preprocess(torch.as_tensor(obs)), torch.as_tensor(masks), deterministic=True)
    np.testing.assert_array_equal(out["deterministic_discrete_actions"], ref.discrete.numpy())
    for actions in (out["discrete_actions"], out["deterministic_discrete_actions"]):
        assert masks[np.arange(1000), actions[:, 0]].all()
        assert masks[np.arange(1000), 4 + actions[:, 1]].all()


def test_memory_policy_exposes_recurrent_state(tmp_path):
    spec = BehaviorSpec((ObservationSpec((3,)),), ActionSpec(continuous_size=1))
    trainer = trainer_for(PPOTrainer, spec, memory=True)
    path = trainer.export(tmp_path / "M.onnx")
    model = onnx.load(path)
    assert [i.name for i in model.graph.input] == ["obs_0", "recurrent_in"]
    assert model.graph.output[-1].name == "recurrent_out"
    out = onnx_actions(path, [np.ones((5, 3), np.float32)])
    assert out["memory_size"].tolist() == [8.0]  # the actor's memory (the critic keeps its own in training)
    assert out["recurrent_out"].shape == (5, 1, 8)


@pytest.mark.parametrize("cls", [PPOTrainer, SACTrainer, POCATrainer])
def test_variable_length_observation_is_an_input_like_upstreams(tmp_path, cls):
    """Sorter's BufferSensor [20, 23] is input obs_0 of shape [batch, 20, 23] (ML-Agents 1.x names inputs
    by observation index, whatever the kind), its zero rows masked in the graph as in torch."""
    spec = make_env("sorter", 1, 0).behavior_specs["Sorter"]
    trainer = trainer_for(cls, spec)
    path = trainer.export(tmp_path / "Sorter.onnx")
    model = onnx.load(path)
    shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert shapes == {"obs_0": ["batch", 20, 23], "obs_1": ["batch", 4], "action_masks": ["batch", 9]}
    rng = np.random.default_rng(4)
    n = 500
    buffer = rng.normal(size=(n, 20, 23)).astype(np.float32)
    present = np.arange(20)[None, :] < rng.integers(0, 21, size=(n, 1))  # 0..20 entities, then padding
    buffer *= present[:, :, None]
    vector = rng.normal(size=(n, 4)).astype(np.float32)
    out = onnx_actions(path, [buffer, vector])
    module = trainer.module
    rows = torch.as_tensor(np.concatenate([buffer.reshape(n, -1), vector], axis=1))
    with torch.no_grad():
        ref = module.actor.sample(module.preprocess(rows), deterministic=True)
    np.testing.assert_array_equal(out["deterministic_discrete_actions"], ref.discrete.numpy())
    other = onnx_actions(path, [np.ascontiguousarray(buffer[::-1]), vector])  # other entities, same vectors
    assert (other["deterministic_discrete_actions"] != out["deterministic_discrete_actions"]).any()
