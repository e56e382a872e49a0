"""MA-POCA's attention critic (trainers/nn/attention.py, trainers/poca/critic.py), held to upstream's numbers.

Why each property matters: absent groupmates arrive as NaN-padded slots and must change nothing; the critic
must not depend on the order of groupmates; the -1e6 mask must stay finite when nobody else is present;
the attention scale is upstream's 1/sqrt(h) of the full width, which a per-head scale would silently change.
"""

from __future__ import annotations

import math

import pytest
import torch

from mlx.config import ConfigError, NetworkSettings
from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.trainers.nn.attention import (
    MASKED_LOGIT,
    EntityEmbedding,
    ResidualSelfAttention,
    masked_attention,
    masked_mean,
)
from mlx.trainers.nn.networks import InputNormalizer
from mlx.trainers.poca.critic import POCAValueNetwork, flat_actions

OBS = (ObservationSpec((5,), "a"), ObservationSpec((3,), "b"))
ROW = 8
STREAMS = ["extrinsic", "curiosity"]
SETTINGS = NetworkSettings(hidden_units=16, num_layers=2)
ACTIONS = {
    "discrete": ActionSpec(discrete_branches=(3, 2)),
    "continuous": ActionSpec(continuous_size=2),
    "hybrid": ActionSpec(continuous_size=2, discrete_branches=(4,)),
}
TOL = {"rtol": 0.0, "atol": 1e-6}


def _net(kind: str = "hybrid", seed: int = 0) -> POCAValueNetwork:
    torch.manual_seed(seed)
    return POCAValueNetwork(BehaviorSpec(OBS, ACTIONS[kind]), STREAMS, SETTINGS)


def _batch(
    spec: ActionSpec, batch: int = 4, mates: int = 3, seed: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    self_obs = torch.randn(batch, ROW, generator=g)
    mates_obs = torch.randn(batch, mates, ROW, generator=g)
    cont = torch.randn(batch, mates, spec.continuous_size, generator=g)
    columns = [torch.randint(0, b, (batch, mates, 1), generator=g) for b in spec.discrete_branches]
    disc = torch.cat(columns, -1) if columns else torch.zeros(batch, mates, 0, dtype=torch.long)
    return self_obs, mates_obs, cont, disc


def _count_feature(net: POCAValueNetwork, call) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """The agent-count column the heads receive during one call."""
    seen: list[torch.Tensor] = []
    handle = net.heads.register_forward_hook(lambda _m, args, _out: seen.append(args[0][:, -1].detach()))
    try:
        call()
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_shapes_per_action_kind(kind: str) -> None:
    net = _net(kind)
    self_obs, mates_obs, cont, disc = _batch(ACTIONS[kind])
    assert net.value(self_obs, mates_obs).shape == (4, len(STREAMS))
    assert net.baseline(self_obs, mates_obs, cont, disc).shape == (4, len(STREAMS))
    action_size = ACTIONS[kind].continuous_size + sum(ACTIONS[kind].discrete_branches)
    assert net.obs_action_embedding.dense.in_features == ROW + action_size
    # A group of one: no groupmate slots at all.
    alone = torch.zeros(4, 0, ROW)
    none = torch.zeros(4, 0, cont.shape[-1]), torch.zeros(4, 0, disc.shape[-1], dtype=torch.long)
    assert net.value(self_obs, alone).shape == net.baseline(self_obs, alone, *none).shape == (4, 2)
    # An empty batch (no agent of the behaviour this step) gives empty values and leaves the count alone.
    assert net.value_and_baseline(self_obs[:0], mates_obs[:0], cont[:0], disc[:0])[1].shape == (0, 2)
    assert net.n_max_seen.item() == 4.0


def test_flat_actions_continuous_first_then_one_hot() -> None:
    spec = ActionSpec(continuous_size=1, discrete_branches=(3, 2))
    flat = flat_actions(spec, torch.tensor([[0.5]]), torch.tensor([[2, 0]]))
    assert flat.tolist() == [[0.5, 0.0, 0.0, 1.0, 1.0, 0.0]]


def test_absent_mate_changes_nothing() -> None:
    net = _net()
    self_obs, mates_obs, cont, disc = _batch(net.action_spec, mates=2)
    full_v, full_b = net.value(self_obs, mates_obs), net.baseline(self_obs, mates_obs, cont, disc)
    # Insert an absent slot (NaN row, garbage action) in the middle; the outputs must not move.
    nan_row = torch.full((4, 1, ROW), float("nan"))
    padded_obs = torch.cat([mates_obs[:, :1], nan_row, mates_obs[:, 1:]], 1)
    padded_cont = torch.cat([cont[:, :1], torch.full_like(cont[:, :1], float("nan")), cont[:, 1:]], 1)
    padded_disc = torch.cat([disc[:, :1], torch.full_like(disc[:, :1], 1), disc[:, 1:]], 1)
    torch.testing.assert_close(net.value(self_obs, padded_obs), full_v, **TOL)
    torch.testing.assert_close(net.baseline(self_obs, padded_obs, padded_cont, padded_disc), full_b, **TOL)
    # Only the first element decides: a NaN there masks the whole row, whatever the rest holds.
    padded_obs[:, 1, 1:] = 123.0
    torch.testing.assert_close(net.value(self_obs, padded_obs), full_v, **TOL)
    assert net.n_max_seen.item() == 3.0


def test_mixed_batch_rows_with_and_without_mates() -> None:
    """Padding to the largest group in a batch: each row equals that row computed alone without padding."""
    net = _net()
    self_obs, mates_obs, cont, disc = _batch(net.action_spec, batch=2, mates=2)
    mates_obs[0, 1] = float("nan")
    both = net.baseline(self_obs, mates_obs, cont, disc)
    alone = net.baseline(self_obs[:1], mates_obs[:1, :1], cont[:1, :1], disc[:1, :1])
    torch.testing.assert_close(both[:1], alone, **TOL)


def test_permutation_invariance_over_mates() -> None:
    net = _net()
    self_obs, mates_obs, cont, disc = _batch(net.action_spec, mates=4)
    mates_obs[1, 2] = float("nan")
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(net.value(self_obs, mates_obs[:, perm]), net.value(self_obs, mates_obs), **TOL)
    torch.testing.assert_close(
        net.baseline(self_obs, mates_obs[:, perm], cont[:, perm], disc[:, perm]),
        net.baseline(self_obs, mates_obs, cont, disc),
        **TOL,
    )


def test_baseline_sees_mates_actions_but_value_does_not() -> None:
    net = _net()
    self_obs, mates_obs, cont, disc = _batch(net.action_spec)
    other = net.baseline(self_obs, mates_obs, cont + 1.0, (disc + 1) % 4)
    assert not torch.allclose(other, net.baseline(self_obs, mates_obs, cont, disc))
    assert not torch.allclose(net.value(self_obs, mates_obs), net.baseline(self_obs, mates_obs, cont, disc))


def test_agent_count_feature_and_max_seen() -> None:
    net = _net()
    assert net.n_max_seen.item() == 1.0 and "n_max_seen" in net.state_dict()
    assert all(p is not net.n_max_seen for p in net.parameters())
    self_obs, mates_obs, _, _ = _batch(net.action_spec, batch=3, mates=3)
    alone = torch.zeros(3, 0, ROW)
    # The first lone agent is also the most seen: +1.
    assert _count_feature(net, lambda: net.value(self_obs, alone)).tolist() == [1.0, 1.0, 1.0]
    mates_obs[1, 1:] = float("nan")  # row 1: two present; row 2: one mate absent -> three present
    mates_obs[2, 0] = float("nan")
    c = _count_feature(net, lambda: net.value(self_obs, mates_obs))
    assert net.n_max_seen.item() == 4.0  # updated in the same pass, before the feature is computed
    torch.testing.assert_close(c, torch.tensor([1.0, 0.0, 0.5]))
    # 2 n / max - 1: a lone agent after a group of four reads -0.5; only no one present reads -1.
    torch.testing.assert_close(_count_feature(net, lambda: net.value(self_obs, alone)), torch.full((3,), -0.5))
    nobody = torch.full((3, ROW), float("nan"))
    torch.testing.assert_close(_count_feature(net, lambda: net.value(nobody, alone)), torch.full((3,), -1.0))
    assert net.n_max_seen.item() == 4.0  # never decreases


def _reference_attention(x: torch.Tensor, mask: torch.Tensor, att: ResidualSelfAttention) -> torch.Tensor:
    """Upstream's ResidualSelfAttention written out with loops, for one batch row."""

    def norm(v: torch.Tensor) -> torch.Tensor:
        mean = v.mean(-1, keepdim=True)
        return (v - mean) / torch.sqrt(((v - mean) ** 2).mean(-1, keepdim=True) + 1e-5)

    n, h = x.shape
    heads, size = att.num_heads, h // att.num_heads
    inp = norm(x)
    q, k, v = att.fc_q(inp), att.fc_k(inp), att.fc_v(inp)
    out = torch.zeros(n, h)
    for head in range(heads):
        cols = slice(head * size, (head + 1) * size)
        for i in range(n):
            logits = []
            for j in range(n):
                qk = float(q[i, cols] @ k[j, cols])
                logits.append(MASKED_LOGIT if mask[j] else qk / math.sqrt(h))  # full width h, not size
            w = torch.softmax(torch.tensor(logits), 0)
            out[i, cols] = sum(w[j] * v[j, cols] for j in range(n))
    out = norm(att.fc_out(out) + inp)
    keep = [i for i in range(n) if not mask[i]]
    return out[keep].mean(0) if keep else torch.zeros(h)


def test_attention_matches_hand_written_reference() -> None:
    torch.manual_seed(3)
    att = ResidualSelfAttention(8)
    x = torch.randn(2, 3, 8) * 3.0
    mask = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    with torch.no_grad():
        got = att(x, mask)
        for b in range(2):
            torch.testing.assert_close(got[b], _reference_attention(x[b], mask[b].bool(), att), rtol=1e-5, atol=1e-6)
        # The scale is observable: per-head scaling (1/sqrt(h/heads)) would give other weights.
        q, k, v = torch.randn(3, 1, 3, 8).unbind(0)
        full = masked_attention(q, k, v, torch.zeros(1, 3), 4)
        per_head = masked_attention(q * 2.0, k, v, torch.zeros(1, 3), 4)  # sqrt(8) / sqrt(2) = 2
        assert not torch.allclose(full, per_head, atol=1e-4)


def test_layer_inits_follow_upstream() -> None:
    net = _net()
    h = SETTINGS.hidden_units
    gain = math.sqrt(0.125 / h)
    w = net.attention.fc_q.weight
    assert abs(w.std().item() / gain - 1.0) < 0.25 and torch.all(net.attention.fc_q.bias == 0)
    assert not any(p.requires_grad for p in net.attention.embedding_norm.parameters())
    assert list(net.attention.residual_norm.parameters()) == []
    assert isinstance(net.obs_embedding, EntityEmbedding) and torch.all(net.obs_embedding.dense.bias == 0)
    bound = math.sqrt(6.0 / (h + 1 + 1))  # Xavier-uniform of each Linear(h + 1 -> 1) head
    assert net.heads.weight.shape == (len(STREAMS), h + 1)
    assert net.heads.weight.abs().max().item() <= bound and torch.all(net.heads.bias == 0)


def test_one_value_head_per_stream() -> None:
    net = _net()
    self_obs, mates_obs, cont, disc = _batch(net.action_spec)
    before_v, before_b = net.value(self_obs, mates_obs), net.baseline(self_obs, mates_obs, cont, disc)
    with torch.no_grad():
        net.heads.bias[1] += 1.0
    after_v, after_b = net.value(self_obs, mates_obs), net.baseline(self_obs, mates_obs, cont, disc)
    torch.testing.assert_close(after_v[:, 0], before_v[:, 0], **TOL)
    torch.testing.assert_close(after_v[:, 1], before_v[:, 1] + 1.0)
    torch.testing.assert_close(after_b[:, 0], before_b[:, 0], **TOL)


def test_gradients_reach_every_parameter() -> None:
    net = _net()
    self_obs, mates_obs, cont, disc = _batch(net.action_spec)
    mates_obs[0, 1] = float("nan")
    (net.value(self_obs, mates_obs).sum() + net.baseline(self_obs, mates_obs, cont, disc).sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_all_mates_absent_stays_finite() -> None:
    net = _net()
    self_obs, mates_obs, cont, disc = _batch(net.action_spec)
    mates_obs[:] = float("nan")
    cont[:] = float("nan")
    out = net.value(self_obs, mates_obs) + net.baseline(self_obs, mates_obs, cont, disc)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    # Equal to the agent alone: absent slots are as good as no slots.
    torch.testing.assert_close(net.value(self_obs, mates_obs), net.value(self_obs, torch.zeros(4, 0, ROW)), **TOL)
    # The attention alone with every entity masked: a uniform softmax and an empty (zero) pool, no NaN.
    att = ResidualSelfAttention(8)
    pooled = att(torch.randn(2, 3, 8), torch.ones(2, 3))
    assert torch.equal(pooled, torch.zeros(2, 8))
    assert torch.equal(masked_mean(torch.ones(1, 2, 4), torch.tensor([[1.0, 0.0]])), torch.ones(1, 4) / (1 + 1e-7))


def test_nan_rows_survive_the_normaliser() -> None:
    """Rows are normalised before the critic sees them; an absent mate must still read as absent."""
    spec = BehaviorSpec(OBS, ACTIONS["discrete"])
    norm = InputNormalizer(spec, SETTINGS)
    norm.update(torch.randn(64, ROW))
    rows = torch.randn(3, ROW)
    rows[1] = float("nan")
    assert norm(rows)[:, 0].isnan().tolist() == [False, True, False]


def test_cameras_and_bad_widths() -> None:
    spec = BehaviorSpec((ObservationSpec((20, 20, 2), "cam"), ObservationSpec((3,), "v")), ACTIONS["discrete"])
    net = POCAValueNetwork(spec, ["extrinsic"], SETTINGS)
    assert net.encoder.output_size == 3 + SETTINGS.hidden_units
    rows = torch.randn(2, 3, 20 * 20 * 2 + 3)
    rows[0, 2] = float("nan")
    assert torch.isfinite(net.value(rows[:, 0], rows[:, 1:])).all()
    with pytest.raises(ConfigError, match="multiple of 4"):
        POCAValueNetwork(spec, ["extrinsic"], NetworkSettings(hidden_units=10))
    with pytest.raises(ValueError, match="expected"):
        _net().value(torch.randn(2, ROW + 1), torch.randn(2, 1, ROW + 1))


def test_inference_mode_updates_max_seen() -> None:
    """Trajectory processing runs under inference_mode; the count must still grow there."""
    net = _net()
    self_obs, mates_obs, cont, disc = _batch(net.action_spec, mates=2)
    with torch.inference_mode():
        net.baseline(self_obs, mates_obs, cont, disc)
    assert net.n_max_seen.item() == 3.0
    net.value(self_obs, mates_obs).sum().backward()  # the buffer is still usable with autograd afterwards


def test_value_and_baseline_in_one_call() -> None:
    net = _net()
    self_obs, mates_obs, cont, disc = _batch(net.action_spec, mates=3)
    mates_obs[2, 0] = float("nan")
    v, b = net.value_and_baseline(self_obs, mates_obs, cont, disc)
    torch.testing.assert_close(v, net.value(self_obs, mates_obs), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b, net.baseline(self_obs, mates_obs, cont, disc), rtol=1e-5, atol=1e-6)
