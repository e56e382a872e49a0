"""Variable-length observations (ML-Agents' BufferSensor): the spec, and the attention encoder that reads them.

Why each property matters: a buffer is padded with zero rows up to its capacity, so the padding must change
nothing, nor may the order in which an env appends its entities; the encoder is the one POCA's critic uses
(mlx.trainers.nn.attention), so both paths must accept such a spec; a padding slot dropped for speed must
give the result the full buffer gives.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlx.config import ConfigError, NetworkSettings
from mlx.envs.api import (
    VARIABLE_LENGTH,
    ActionSpec,
    BehaviorSpec,
    DimensionProperty,
    EnvError,
    ObservationSpec,
    ObservationType,
)
from mlx.trainers.nn.attention import (
    ResidualSelfAttention,
    VariableLengthEncoder,
    drop_padding_columns,
    zero_entity_mask,
)
from mlx.trainers.nn.encoders import ObsLayout, StateEncoder
from mlx.trainers.nn.networks import InputNormalizer
from mlx.trainers.poca.critic import POCAValueNetwork

N, F = 6, 5  # buffer capacity, entity size
SPEC = BehaviorSpec(
    (ObservationSpec.entities(N, F), ObservationSpec((3,), "vector")), ActionSpec(discrete_branches=(3, 3))
)
TOL = {"rtol": 0.0, "atol": 1e-5}


def entities(batch: int, counts: list[int], seed: int = 0) -> torch.Tensor:
    """Buffers [batch, N, F] with counts[b] non-zero rows from the top, zero rows after (as a BufferSensor)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, N, F, generator=g) + 0.5
    for b, c in enumerate(counts):
        x[b, c:] = 0.0
    return x


def rows(buffer: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """Flat trainer rows in spec order."""
    return torch.cat([buffer.reshape(len(buffer), -1), vector], dim=1)


def test_spec_kinds_and_refusals():
    spec = ObservationSpec.entities(20, 23)
    assert spec.variable_length and spec.shape == (20, 23) and spec.dimension_property == VARIABLE_LENGTH
    assert not ObservationSpec((20, 23)).variable_length  # a 2-D shape alone is not a buffer
    assert ObservationSpec((4,), dimension_property=(1,)).dimension_property == (DimensionProperty.NONE,)
    with pytest.raises(EnvError, match="must be among UNSPECIFIED 0"):
        ObservationSpec((4,), dimension_property=(3,))
    with pytest.raises(EnvError, match="one per axis"):
        ObservationSpec((4,), dimension_property=(1, 1))
    with pytest.raises(EnvError, match="VARIABLE_SIZE, NONE"):
        ObservationSpec((20, 23), dimension_property=(1, 4))
    with pytest.raises(EnvError, match="goal signal"):
        ObservationSpec((20, 23), "g", ObservationType.GOAL_SIGNAL, VARIABLE_LENGTH)


def test_layout_finds_the_buffer_and_the_normaliser_skips_it():
    layout = ObsLayout(SPEC)
    assert [s.shape for s in layout.entities] == [(N, F)] and layout.vector_size == 3 and not layout.plain
    x = rows(entities(2, [2, 3]), torch.ones(2, 3))
    assert torch.equal(layout.vectors(x), torch.ones(2, 3))
    norm = InputNormalizer(SPEC, NetworkSettings(normalize=True))
    norm.update(rows(entities(50, [3] * 50), torch.randn(50, 3) * 4.0 + 2.0))
    out = norm(x)
    assert torch.equal(out[:, : N * F], x[:, : N * F]) and not torch.equal(out[:, N * F :], x[:, N * F :])
    with pytest.raises(ConfigError, match="variable-length"):
        ObsLayout(BehaviorSpec((ObservationSpec((4, 4)),), ActionSpec(1)))


def test_zero_rows_are_padding():
    x = torch.zeros(1, 3, 2)
    x[0, 0] = torch.tensor([0.0, 1.0])
    x[0, 1] = torch.tensor([0.05, 0.05])  # sum of squares 0.005 < 0.01: padding, as upstream
    assert zero_entity_mask(x).tolist() == [[0.0, 1.0, 1.0]]


def test_masked_rows_change_nothing_whatever_they_hold():
    torch.manual_seed(0)
    rsa = ResidualSelfAttention(16)
    x = torch.randn(3, 5, 16)
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 0, 1, 0], [1, 1, 1, 1, 0]], dtype=torch.float32)
    scrambled = torch.where(mask.bool().unsqueeze(-1), torch.randn(3, 5, 16) * 100.0, x)
    assert torch.allclose(rsa(x, mask), rsa(scrambled, mask), **TOL)


@pytest.mark.parametrize("self_size", [0, 3])
def test_encoder_ignores_padding_and_entity_order(self_size):
    torch.manual_seed(1)
    enc = VariableLengthEncoder(self_size, [F], hidden=32)
    buf = entities(4, [1, 3, 6, 0])
    x_self = torch.randn(4, self_size) if self_size else None
    out = enc(x_self, [buf])
    assert out.shape == (4, 32) and torch.isfinite(out).all()
    assert torch.equal(out[3], torch.zeros(32))  # no entity: pools to zero
    perm = torch.randperm(N)  # entities reordered, padding rows interleaved among them
    assert torch.allclose(enc(x_self, [buf[:, perm]]), out, **TOL)
    longer = torch.cat([buf, torch.zeros(4, 4, F)], dim=1)  # more padding rows
    assert torch.allclose(enc(x_self, [longer]), out, **TOL)
    # Each entity is seen: changing a present one changes that row's output only.
    changed = buf.clone()
    changed[1, 0] += 1.0
    moved = enc(x_self, [changed])
    assert not torch.allclose(moved[1], out[1]) and torch.allclose(moved[[0, 2, 3]], out[[0, 2, 3]], **TOL)


def test_dropping_all_padding_slots_gives_the_full_result():
    torch.manual_seed(2)
    enc = VariableLengthEncoder(3, [F], hidden=32)
    buf = entities(5, [1, 2, 0, 2, 1])
    x_self = torch.randn(5, 3)
    trimmed, mask = drop_padding_columns(buf, zero_entity_mask(buf))
    assert trimmed.shape == (5, 2, F) and mask.shape == (5, 2)
    full = enc.attention(
        enc.embeddings[0](buf, enc.self_encoder(x_self)),  # type: ignore[misc]
        zero_entity_mask(buf),
    )
    assert torch.allclose(enc(x_self, [buf]), full, **TOL)
    empty = torch.zeros(2, N, F)  # nothing anywhere: one slot kept, pooled to zero
    assert drop_padding_columns(empty, zero_entity_mask(empty))[0].shape == (2, 1, F)


def test_state_encoder_reads_the_buffer_in_place():
    torch.manual_seed(3)
    enc = StateEncoder(SPEC, NetworkSettings(hidden_units=32, num_layers=2))
    buf, vec = entities(3, [2, 6, 1]), torch.randn(3, 3)
    h, _ = enc(rows(buf, vec))
    assert h.shape == (3, 32)
    perm = torch.randperm(N)
    assert torch.allclose(enc(rows(buf[:, perm], vec))[0], h, **TOL)
    assert enc.body[0].in_features == 3 + 128  # the vector, then upstream's fixed 128 pooled floats


def test_poca_critic_takes_variable_length_observations():
    torch.manual_seed(4)
    critic = POCAValueNetwork(SPEC, ["extrinsic"], NetworkSettings(hidden_units=16, num_layers=1))
    assert critic.encoder.output_size == 3 + 128
    me = rows(entities(2, [2, 3], seed=1), torch.randn(2, 3))
    mates = rows(entities(2, [4, 1], seed=2), torch.randn(2, 3)).unsqueeze(1)
    absent = torch.full_like(mates, float("nan"))
    v = critic.value(me, torch.cat([mates, absent], dim=1))
    assert torch.allclose(v, critic.value(me, mates), **TOL)
    perm = torch.randperm(N)
    shuffled = rows(entities(2, [2, 3], seed=1)[:, perm], me[:, -3:])
    assert torch.allclose(critic.value(shuffled, mates), critic.value(me, mates), **TOL)


def test_sorter_observations_fit_the_encoder():
    from mlx.envs import make_env

    env = make_env("sorter", num_areas=3, seed=0, parameters={"num_tiles": 20})
    env.reset()
    spec = env.behavior_specs["Sorter"]
    decision, _ = env.get_steps("Sorter")
    buf = decision.obs[0]
    present = (buf**2).sum(-1) >= 0.01
    # Present rows first, then padding: the BufferSensor's layout.
    assert all(np.array_equal(p, np.sort(p)[::-1]) for p in present)
    x = torch.as_tensor(np.concatenate([buf.reshape(3, -1), decision.obs[1]], axis=1))
    h, _ = StateEncoder(spec, NetworkSettings())(x)
    assert h.shape == (3, 128) and torch.isfinite(h).all()
