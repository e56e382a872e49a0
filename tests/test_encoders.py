"""Observation encoders: every visual encoder at its minimum and a typical size, the size refusal, the
flat-row layout, normalisation of vector columns only, and goal conditioning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlx.config import ConditioningType, ConfigError, EncoderType, MemorySettings, NetworkSettings
from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec, ObservationType
from mlx.trainers.nn.encoders import MIN_VISUAL_SIZE, ObsLayout, StateEncoder
from mlx.trainers.nn.networks import InputNormalizer, flat_obs_size

ACTIONS = ActionSpec(discrete_branches=(3,))


def camera_spec(h: int, w: int, c: int = 3, vector: int = 0) -> BehaviorSpec:
    specs = [ObservationSpec((h, w, c), "camera")]
    if vector:
        specs.append(ObservationSpec((vector,), "vector"))
    return BehaviorSpec(tuple(specs), ACTIONS)


@pytest.mark.parametrize("kind", list(EncoderType))
@pytest.mark.parametrize("size", ["minimum", "typical"])
def test_each_visual_encoder_maps_its_sizes_to_hidden_units(kind, size):
    side = MIN_VISUAL_SIZE[kind] if size == "minimum" else 84
    spec = camera_spec(side, side + 3, vector=2)  # non-square, with a vector observation beside it
    encoder = StateEncoder(spec, NetworkSettings(hidden_units=24, num_layers=1, vis_encode_type=kind))
    x = torch.rand(5, flat_obs_size(spec))
    features, memories = encoder(x)
    assert features.shape == (5, 24) and memories is None
    assert torch.isfinite(features).all()


@pytest.mark.parametrize("kind", [k for k in EncoderType if MIN_VISUAL_SIZE[k] > 1])
def test_a_camera_below_the_encoders_minimum_is_refused_naming_both(kind):
    side = MIN_VISUAL_SIZE[kind] - 1
    with pytest.raises(ConfigError, match=rf"{side}x{side}.*vis_encode_type={kind.value} needs at least"):
        StateEncoder(camera_spec(side, side), NetworkSettings(vis_encode_type=kind))


def test_match3_encoder_is_upstreams_small_visual_encoder():
    """SmallVisualEncoder: two unpadded 3x3 convolutions (35 then 144 channels, stride 1) with LeakyReLU,
    so Match3's 9x8 board flattens to 5x4x144, then a dense layer of Kaiming-normal weights times 1.41
    (std 1.41 * sqrt(2 / fan_in)) and zero bias, then LeakyReLU."""
    from mlx.trainers.nn.encoders import visual_encoder

    torch.manual_seed(0)
    enc = visual_encoder(EncoderType.match3, (9, 8, 6), 256)
    conv, flatten, dense, act = enc
    convs = [m for m in conv if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding) for m in convs] == [
        (6, 35, (3, 3), (1, 1), (0, 0)),
        (35, 144, (3, 3), (1, 1), (0, 0)),
    ]
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in conv) == 2 and isinstance(act, torch.nn.LeakyReLU)
    assert conv(torch.zeros(1, 6, 9, 8)).shape == (1, 144, 5, 4)
    assert dense.in_features == 5 * 4 * 144 and dense.out_features == 256
    want = 1.41 * np.sqrt(2.0 / dense.in_features)
    assert abs(dense.weight.std().item() / want - 1) < 0.02  # 737k weights: the std is known to < 1%
    assert torch.count_nonzero(dense.bias) == 0
    assert enc(torch.rand(3, 6, 9, 8)).shape == (3, 256)
    small = visual_encoder(EncoderType.match3, (5, 5, 6), 8)  # the 5x5 minimum: 5 -> 3 -> 1
    assert small[2].in_features == 144


def test_layout_finds_each_observation_in_the_flat_row():
    spec = BehaviorSpec(
        (
            ObservationSpec((2,), "a"),
            ObservationSpec((4, 5, 3), "cam"),
            ObservationSpec((2,), "goal", ObservationType.GOAL_SIGNAL),
            ObservationSpec((1,), "b"),
        ),
        ACTIONS,
    )
    layout = ObsLayout(spec, ConditioningType.hyper)
    assert layout.size == 2 + 60 + 2 + 1 == flat_obs_size(spec)
    row = torch.arange(layout.size, dtype=torch.float32)[None]
    assert layout.vectors(row).tolist() == [[0, 1, 64]]
    assert layout.goals(row).tolist() == [[62, 63]]
    image = layout.image(row, layout.visual[0])  # [1, C, H, W] of the (H, W, C) block
    assert image.shape == (1, 3, 4, 5) and image[0, 1, 0, 0] == 2 + 1 and image[0, 0, 1, 0] == 2 + 15
    assert ObsLayout(spec, ConditioningType.none).vectors(row).tolist() == [[0, 1, 62, 63, 64]]


def test_normaliser_touches_vector_columns_only():
    spec = camera_spec(3, 3, c=1, vector=2)
    norm = InputNormalizer(spec, NetworkSettings(normalize=True))
    rows = torch.as_tensor(np.random.default_rng(0).normal(10.0, 2.0, (500, 11)), dtype=torch.float32)
    norm.update(rows)
    out = norm(rows)
    torch.testing.assert_close(out[:, :9], rows[:, :9])  # camera pixels unchanged
    assert abs(float(out[:, 9:].mean())) < 0.05 and abs(float(out[:, 9:].std()) - 1) < 0.05


@pytest.mark.parametrize("as_numpy", [False, True])
def test_normalize_with_cameras_only_leaves_rows_unchanged(as_numpy):
    """normalize: true with no vector observation (upstream's Match3 config on the visual prefab): updates
    and the forward pass are no-ops instead of failing on an empty statistic."""
    spec = BehaviorSpec((ObservationSpec((9, 8, 6), "cells"), ObservationSpec((9, 8, 3), "special")), ACTIONS)
    norm = InputNormalizer(spec, NetworkSettings(normalize=True))
    rows = np.random.default_rng(0).random((7, 9 * 8 * 9)).astype(np.float32)
    norm.update(rows if as_numpy else torch.as_tensor(rows))
    torch.testing.assert_close(norm(torch.as_tensor(rows)), torch.as_tensor(rows))


def goal_spec() -> BehaviorSpec:
    return BehaviorSpec(
        (ObservationSpec((4,), "state"), ObservationSpec((2,), "goal", ObservationType.GOAL_SIGNAL)), ACTIONS
    )


def test_hypernetwork_conditioning_changes_the_output_with_the_goal():
    torch.manual_seed(0)
    encoder = StateEncoder(goal_spec(), NetworkSettings(hidden_units=16, num_layers=2))
    assert encoder.hyper is not None
    state = torch.randn(8, 4)
    first = encoder(torch.cat([state, torch.tensor([[1.0, 0.0]]).expand(8, 2)], 1))[0]
    second = encoder(torch.cat([state, torch.tensor([[0.0, 1.0]]).expand(8, 2)], 1))[0]
    assert (first - second).abs().mean() > 1e-2
    # The goal reaches the body only through the generated weights: the plain layers ignore it.
    assert encoder.body[0].in_features == 4


def test_conditioning_none_feeds_the_goal_as_an_input():
    encoder = StateEncoder(goal_spec(), NetworkSettings(hidden_units=16, conditioning_type=ConditioningType.none))
    assert encoder.hyper is None and encoder.body[0].in_features == 6


def test_lstm_memory_size_and_sequences():
    spec = BehaviorSpec((ObservationSpec((3,)),), ACTIONS)
    settings = NetworkSettings(hidden_units=8, num_layers=1, memory=MemorySettings(sequence_length=4, memory_size=10))
    encoder = StateEncoder(spec, settings)
    x = torch.randn(2 * 4, 3)
    features, memories = encoder(x, torch.zeros(2, 10), sequence_length=4)
    assert features.shape == (8, 5) and memories is not None and memories.shape == (2, 10)
    # Stepping one decision at a time from the same start gives the same features and final memory.
    mem = torch.zeros(2, 10)
    steps = []
    for t in range(4):
        f, mem = encoder(x.view(2, 4, 3)[:, t], mem)
        steps.append(f)
    torch.testing.assert_close(torch.stack(steps, 1).reshape(8, 5), features)
    torch.testing.assert_close(mem, memories)
