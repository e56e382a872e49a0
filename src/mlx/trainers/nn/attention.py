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

Both users share these pieces: POCA's critic attends over the agents of a group (absent ones marked by
the trainer), and ``VariableLengthEncoder`` over the rows of variable-length observations (a padding row
is one whose values are all zero, ``zero_entity_mask``), each entity embedded together with the agent's
own fixed-size encoding, as upstream's ObservationEncoder does.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mlx.envs.api import PADDING_SUM_SQUARES

NUM_HEADS = 4
ENTITY_EMBEDDING_SIZE = 128  # upstream's fixed width of the variable-length observation path
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
    """One entity's features -> an h-wide embedding: Linear + Swish, the input of the attention.

    With ``self_size`` (upstream's concat_self), each entity is embedded together with the agent's own
    encoding [B, self_size], tiled over the entities: Linear(self_size + in_size -> h) + Swish.
    """

    def __init__(self, in_size: int, hidden: int, self_size: int = 0) -> None:
        super().__init__()
        self.self_size = self_size
        self.dense = normal_linear(self_size + in_size, hidden, entity_gain(hidden))

    def forward(self, x: torch.Tensor, x_self: torch.Tensor | None = None) -> torch.Tensor:
        """[..., in_size] (entities [B, N, in_size] with ``x_self`` [B, self_size]) -> [..., hidden]."""
        if self.self_size:
            if x_self is None:
                raise ValueError("this embedding takes the agent's own encoding with each entity")
            x = torch.cat([x_self.unsqueeze(1).expand(-1, x.shape[1], -1), x], dim=-1)
        return nn.functional.silu(self.dense(x))


def zero_entity_mask(entities: torch.Tensor) -> torch.Tensor:
    """Padding of a variable-length observation [B, N, F]: 1.0 where a row's sum of squares is below 0.01
    (upstream's get_zero_entities_mask), else 0.0; [B, N]."""
    return (entities.square().sum(-1) < PADDING_SUM_SQUARES).to(entities.dtype)


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


def drop_padding_columns(block: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The entity slots [B, N, F] / [B, N] that hold an entity in some row of the batch (at least one slot).

    The same result up to float rounding, not an approximation: a slot masked in every row is no key of any
    present entity (its logit underflows to a weight of exactly 0) and no part of any mean; a row with no
    entity pools to 0 whatever the slots. It saves most of the work when buffers are mostly padding
    (Sorter's early lessons show 2 of 20 tiles). Not while exporting: a traced graph must keep every slot.
    """
    keep = (mask < 0.5).any(0)
    if bool(keep.all()):
        return block, mask
    if not bool(keep.any()):
        keep[0] = True
    return block[:, keep], mask[:, keep]


class VariableLengthEncoder(nn.Module):
    """Upstream's path for variable-length observations: the agent's fixed-size encoding x_self [B, S]
    (vectors and camera features; S may be 0) and E entity blocks [B, N_e, F_e] -> one pooled [B, 128].

    x_self goes through Linear(S -> 128) + Swish; each block's rows are embedded with it
    (``EntityEmbedding`` with ``self_size``; without x_self, alone); the blocks are joined along the entity
    axis and go through ``ResidualSelfAttention`` with their zero rows masked. Padding rows and the order
    of the entities change nothing.
    """

    def __init__(self, self_size: int, entity_sizes: list[int], hidden: int = ENTITY_EMBEDDING_SIZE) -> None:
        super().__init__()
        gain = entity_gain(hidden)
        self.self_encoder = nn.Sequential(normal_linear(self_size, hidden, gain), nn.SiLU()) if self_size else None
        embed_self = hidden if self_size else 0
        self.embeddings = nn.ModuleList([EntityEmbedding(size, hidden, embed_self) for size in entity_sizes])
        self.attention = ResidualSelfAttention(hidden)
        self.output_size = hidden

    def forward(self, x_self: torch.Tensor | None, blocks: list[torch.Tensor]) -> torch.Tensor:
        encoded = None
        if self.self_encoder is not None:
            if x_self is None:
                raise ValueError("this encoder embeds entities with the agent's own encoding: give x_self")
            encoded = self.self_encoder(x_self)
        masks = [zero_entity_mask(block) for block in blocks]
        if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            pairs = [drop_padding_columns(block, mask) for block, mask in zip(blocks, masks, strict=True)]
            blocks, masks = [b for b, _ in pairs], [m for _, m in pairs]
        entities = [emb(block, encoded) for emb, block in zip(self.embeddings, blocks, strict=True)]
        joined = torch.cat(entities, dim=1) if len(entities) > 1 else entities[0]
        mask = torch.cat(masks, dim=1) if len(masks) > 1 else masks[0]
        return self.attention(joined, mask)
