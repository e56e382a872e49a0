"""Entity attention (ML-Agents' torch_entities/attention.py): a set of entities in, one pooled vector out.

A critic that sees "however many agents are present" (MA-POCA) or a variable-length observation (a buffer
sensor) needs a layer whose output does not depend on how many entities there are nor on their order.
Entities are embedded (``EntityEmbedding``), attend to each other (``ResidualSelfAttention``) with absent
ones masked out as keys, and are mean-pooled over the present ones only. The numbers follow upstream so
that a network trained here behaves as one trained there: weights drawn from N(0, 1) times the gain
sqrt(0.125 / h), attention logits scaled by 1/sqrt(h) of the *full* embedding size (not the per-head
size), masked logits replaced by -1e6 rather than -inf (so a row whose keys are all masked still gives a
finite, uniform softmax instead of NaN), and layer norms without learnable affine parameters.

Masks are float tensors [batch, entities] holding 1.0 where an entity is absent, as upstream.
"""

from __future__ import annotations

import math

import torch
from torch import nn

NUM_HEADS = 4
MASKED_LOGIT = -1e6  # upstream's NEG_INF: finite, so a fully masked row stays finite
LAYER_NORM_EPS = 1e-5
POOL_EPS = 1e-7


def entity_gain(hidden: int) -> float:
    """Upstream's kernel gain for every attention-side layer: sqrt(0.125 / h)."""
    return math.sqrt(0.125 / hidden)


def normal_linear(in_size: int, out_size: int, gain: float) -> nn.Linear:
    """Linear with weights N(0, 1) * gain and zero bias (upstream's ``Initialization.Normal``)."""
    lin = nn.Linear(in_size, out_size)
    nn.init.normal_(lin.weight)
    lin.weight.data.mul_(gain)
    nn.init.zeros_(lin.bias)
    return lin


class EntityEmbedding(nn.Module):
    """One entity's features -> an h-wide embedding: Linear + Swish, the input of the attention."""

    def __init__(self, in_size: int, hidden: int) -> None:
        super().__init__()
        self.dense = normal_linear(in_size, hidden, entity_gain(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., in_size] -> [..., hidden]."""
        return nn.functional.silu(self.dense(x))


def masked_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor, num_heads: int
) -> torch.Tensor:
    """Multi-head attention over [B, N, h] tensors; keys where mask [B, N] is 1 get the logit -1e6.

    Logits are scaled by 1/sqrt(h), h the full embedding size, as upstream's MultiHeadAttention does.
    """
    batch, n, h = query.shape
    head = h // num_heads

    def split(t: torch.Tensor) -> torch.Tensor:  # [B, N, h] -> [B, heads, N, head]
        return t.reshape(batch, n, num_heads, head).transpose(1, 2)

    qk = split(query) @ split(key).transpose(2, 3)  # [B, heads, N_q, N_k]
    m = mask.reshape(batch, 1, 1, n)
    logits = (1.0 - m) * qk / math.sqrt(h) + m * MASKED_LOGIT
    out = torch.softmax(logits, dim=3) @ split(value)  # [B, heads, N, head]
    return out.transpose(1, 2).reshape(batch, n, h)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of [B, N, h] over the present entities: sum(x * (1 - m)) / (sum(1 - m) + 1e-7); 0 if none."""
    keep = 1.0 - mask
    return (x * keep.unsqueeze(-1)).sum(1) / (keep.sum(1, keepdim=True) + POOL_EPS)


class ResidualSelfAttention(nn.Module):
    """Self-attention over entities with a residual and masked mean-pooling: [B, N, h] -> [B, h].

    Norm -> q, k, v -> masked multi-head attention -> output layer + the *normalised* input -> norm ->
    mean over present entities. Absent entities still produce rows (their queries attend), but no
    present entity attends to them and the pooling ignores them, so they change nothing.
    """

    def __init__(self, hidden: int, num_heads: int = NUM_HEADS) -> None:
        super().__init__()
        if hidden % num_heads:
            raise ValueError(f"attention width {hidden} must be a multiple of {num_heads} heads")
        gain = entity_gain(hidden)
        self.num_heads = num_heads
        self.embedding_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS, elementwise_affine=False)
        self.fc_q = normal_linear(hidden, hidden, gain)
        self.fc_k = normal_linear(hidden, hidden, gain)
        self.fc_v = normal_linear(hidden, hidden, gain)
        self.fc_out = normal_linear(hidden, hidden, gain)
        self.residual_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS, elementwise_affine=False)

    def forward(self, entities: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """entities [B, N, h], mask [B, N] (1.0 = absent) -> pooled [B, h]."""
        x = self.embedding_norm(entities)
        out = masked_attention(self.fc_q(x), self.fc_k(x), self.fc_v(x), mask, self.num_heads)
        out = self.residual_norm(self.fc_out(out) + x)
        return masked_mean(out, mask)
