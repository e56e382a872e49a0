"""MA-POCA's critic (ML-Agents' POCAValueNetwork over a MultiAgentNetworkBody): one body, two readings.

* ``value(self_obs, mates_obs)``: V(s), the group's value, from the agent and every present groupmate;
* ``baseline(self_obs, mates_obs, mates_continuous, mates_discrete)``: B(s, a_-i), the counterfactual
  baseline, from the agent's own observation and each groupmate's observation *and action*, so that the
  advantage G - B credits the agent's own action alone;
* ``value_and_baseline``: both, the rows encoded once.

Each agent's flat observation row (``encoders.ObsLayout``'s order) goes through one shared
``ObservationEncoder`` (upstream's: vectors pass through, cameras through the ``vis_encode_type``
encoder; no dense body, that comes after the attention), is embedded as an entity (obs-only, or
obs + action), the entities attend to each other (``nn.attention``), the pooled vector goes through
``num_layers`` x (Linear + Swish), and the agent-count feature c = 2 n_present / n_max_seen - 1 is appended
before one value head per reward stream. The agent is entity 0 in both passes (upstream lists
obs + action entities first; pooling makes the order irrelevant). ``n_max_seen`` (a saved buffer, not a
parameter) grows in every forward pass, training or not, as upstream's does.

Batches carry groupmates as [batch, n_mates, ...] tensors. A groupmate slot whose row starts with NaN is
absent (dead, not yet there, or padding up to the largest group in the batch): its row is zeroed before
encoding, its action ignored, and it is masked out of the attention and the pooling, so it changes
nothing. Rows come in already normalised when the module normalises: NaN survives ``Normalizer``.

Memory (``network_settings.memory``, upstream's optional LSTM of the MultiAgentNetworkBody): one LSTM of
``memory_size / 2`` units (``encoders.memory_lstm``, as mlx's other LSTM bodies) between the post-attention
body and the agent-count feature, shared by both passes; the heads then read ``memory_size / 2 + 1`` floats.
Each pass carries its own state, as upstream keeps value memories and baseline memories apart: an agent
holds a value memory and a baseline memory of ``memory_size`` floats each (h then c). The ``recurrent_*``
methods take and return them (rows as S sequences of L steps, as ``StateEncoder``); ``features`` and
``read`` split a pass around the LSTM so that a trainer can run whole trajectories through it
(``lstm_by_sequence``). Without memory the module is what it was (same parameters, same numbers).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mlx.config import ConditioningType, ConfigError, NetworkSettings
from mlx.envs.api import ActionSpec, BehaviorSpec
from mlx.trainers.nn.attention import NUM_HEADS, EntityEmbedding, ResidualSelfAttention, entity_gain
from mlx.trainers.nn.encoders import (
    ObsLayout,
    check_visual_sizes,
    encode_observations,
    memory_lstm,
    observation_encoders,
)
from mlx.trainers.nn.networks import value_heads


class ObservationEncoder(nn.Module):
    """Upstream's ObservationEncoder: every 1-D observation as it is (goal signals included: the critic
    does not condition on goals), each camera through its visual encoder, variable-length observations
    through the shared entity attention (``encoders.observation_encoders``); [M, row] -> [M, output_size]."""

    def __init__(self, spec: BehaviorSpec, settings: NetworkSettings) -> None:
        super().__init__()
        check_visual_sizes(spec, settings)
        self.layout = ObsLayout(spec, ConditioningType.none)
        self.visual, self.entities, self.output_size = observation_encoders(self.layout, settings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return encode_observations(self.layout, self.visual, self.entities, x)


def flat_actions(spec: ActionSpec, continuous: torch.Tensor, discrete: torch.Tensor) -> torch.Tensor:
    """Actions as one float vector, as upstream's AgentAction.to_flat: continuous first, then each
    discrete branch one-hot. continuous [..., C], discrete [..., branches] (integers) -> [..., A]."""
    parts = [continuous.to(torch.float32)]
    for i, size in enumerate(spec.discrete_branches):
        parts.append(nn.functional.one_hot(discrete[..., i].long(), size).to(torch.float32))
    return torch.cat(parts, dim=-1)


def linear_encoder(hidden: int, num_layers: int) -> nn.Sequential:
    """num_layers x (Linear(h, h) + Swish) after the attention: torch's default Kaiming-normal (upstream's
    KaimingHeNormal) scaled by sqrt(0.125 / h), zero bias."""
    layers: list[nn.Module] = []
    for _ in range(num_layers):
        lin = nn.Linear(hidden, hidden)
        nn.init.kaiming_normal_(lin.weight)
        lin.weight.data.mul_(entity_gain(hidden))
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.SiLU()]
    return nn.Sequential(*layers)


class POCAValueNetwork(nn.Module):
    """The POCA critic (see the module docstring); outputs [B, K], one column per reward stream."""

    def __init__(self, spec: BehaviorSpec, streams: list[str], settings: NetworkSettings) -> None:
        super().__init__()
        hidden = settings.hidden_units
        if hidden % NUM_HEADS:
            raise ConfigError(
                f"network_settings.hidden_units must be a multiple of {NUM_HEADS} for POCA's attention critic "
                f"(got {hidden})"
            )
        self.action_spec = spec.action_spec
        self.streams = list(streams)
        self.encoder = ObservationEncoder(spec, settings)
        self.row_size = self.encoder.layout.size
        action_size = spec.action_spec.continuous_size + sum(spec.action_spec.discrete_branches)
        self.obs_embedding = EntityEmbedding(self.encoder.output_size, hidden)
        self.obs_action_embedding = EntityEmbedding(self.encoder.output_size + action_size, hidden)
        self.attention = ResidualSelfAttention(hidden, NUM_HEADS)
        self.body = linear_encoder(hidden, settings.num_layers)
        # Memory: one LSTM after the body, for both passes (each with its own state). Built only with memory,
        # so that a network without it draws the same initial weights as before and loads old checkpoints.
        memory = settings.memory
        self.memory_size = memory.memory_size if memory is not None else 0  # floats of ONE pass's memory
        self.lstm = memory_lstm(hidden, self.memory_size // 2) if memory is not None else None
        encoding = self.memory_size // 2 if memory is not None else hidden
        # The most agents present in any batch so far (upstream's _current_max_agents): saved, not trained.
        self.register_buffer("n_max_seen", torch.tensor(1.0))
        # One head per stream, as upstream's ValueHeads, held as the rows of one Linear (mlx's Critic layout).
        self.heads = value_heads(encoding + 1, len(self.streams))

    def _encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows [B, N, row] -> encodings [B, N, E] and absence masks [B, N] (True where the row starts with NaN)."""
        if obs.shape[-1] != self.row_size:
            raise ValueError(f"observation rows of {obs.shape[-1]} floats, expected {self.row_size}")
        absent = obs[..., 0].isnan()
        clean = obs.masked_fill(absent.unsqueeze(-1), 0.0)
        batch, n = obs.shape[:2]
        flat = clean.reshape(batch * n, self.row_size)  # explicit sizes: an empty batch has no -1 to infer
        return self.encoder(flat).reshape(batch, n, self.encoder.output_size), absent

    def _body(self, entities: torch.Tensor, absent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Entities [B, N, h] -> the pooled encoding after the body [B, h] and the present count [B, 1]."""
        mask = absent.to(entities.dtype)
        return self.body(self.attention(entities, mask)), (1.0 - mask).sum(1, keepdim=True)

    def read(self, h: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Encodings [B, h'] (after the LSTM when there is one) and present counts [B, 1] -> values [B, K]:
        the agent-count feature and the heads; ``n_max_seen`` grows with ``present`` first."""
        if present.numel():
            with torch.no_grad():
                self.n_max_seen.copy_(torch.maximum(self.n_max_seen, present.max()))
        # +1 at the most seen so far, falling as fewer are present: 2 / max - 1 for an agent alone (upstream's
        # comment says -1; its formula, kept here, reaches -1 only when no entity is present).
        count = present * 2.0 / self.n_max_seen - 1.0
        return self.heads(torch.cat([h, count], dim=1))

    def _read(self, entities: torch.Tensor, absent: torch.Tensor) -> torch.Tensor:
        """Entities [B, N, h] -> values [B, K]: attention, body, agent-count feature, heads (no memory)."""
        if self.lstm is not None:
            raise ValueError("this critic has memory: use its recurrent_* methods")
        return self.read(*self._body(entities, absent))

    def _recurrent(
        self, h: torch.Tensor, memories: torch.Tensor, sequence_length: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The LSTM over S sequences of L steps ([S * L, h], sequence after sequence) from memories [S, m]:
        encodings [S * L, m / 2] and the memories after each sequence's last step [S, m]."""
        assert self.lstm is not None
        half = self.memory_size // 2
        state = (memories[:, :half].unsqueeze(0).contiguous(), memories[:, half:].unsqueeze(0).contiguous())
        out, (hn, cn) = self.lstm(h.reshape(-1, sequence_length, h.shape[-1]), state)
        return out.reshape(-1, half), torch.cat([hn[0], cn[0]], dim=1)

    def _rows(self, self_obs: torch.Tensor, mates_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The agent (entity 0) and its groupmates encoded together: [B, 1 + N, E] and masks [B, 1 + N]."""
        return self._encode(torch.cat([self_obs.unsqueeze(1), mates_obs], dim=1))

    def _baseline_entities(
        self, enc: torch.Tensor, absent: torch.Tensor, continuous: torch.Tensor, discrete: torch.Tensor
    ) -> torch.Tensor:
        """The agent as an obs-only entity, each groupmate as obs + action (absent mates' actions zeroed)."""
        mates_absent = absent[:, 1:].unsqueeze(-1)
        cont = continuous.masked_fill(mates_absent, 0.0)
        disc = discrete.masked_fill(mates_absent, 0)
        actions = flat_actions(self.action_spec, cont, disc).to(enc.dtype)
        mates = self.obs_action_embedding(torch.cat([enc[:, 1:], actions], dim=-1))
        return torch.cat([self.obs_embedding(enc[:, :1]), mates], dim=1)

    def value(self, self_obs: torch.Tensor, mates_obs: torch.Tensor) -> torch.Tensor:
        """V(s) [B, K] from the agent's row [B, row] and its groupmates' rows [B, N, row] (NaN = absent)."""
        enc, absent = self._rows(self_obs, mates_obs)
        return self._read(self.obs_embedding(enc), absent)

    def baseline(
        self,
        self_obs: torch.Tensor,
        mates_obs: torch.Tensor,
        mates_continuous: torch.Tensor,
        mates_discrete: torch.Tensor,
    ) -> torch.Tensor:
        """B(s, a_-i) [B, K]: the agent's own row as an obs-only entity, each groupmate's row with its action
        (continuous [B, N, C] raw as stored, discrete [B, N, branches]) as an obs+action entity. The agent's
        own action is never seen."""
        enc, absent = self._rows(self_obs, mates_obs)
        return self._read(self._baseline_entities(enc, absent, mates_continuous, mates_discrete), absent)

    def value_and_baseline(
        self,
        self_obs: torch.Tensor,
        mates_obs: torch.Tensor,
        mates_continuous: torch.Tensor,
        mates_discrete: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """V and B as ``value`` and ``baseline`` give them, for what every update and trajectory needs: the
        rows are encoded once, which matters with cameras. (Stacking both entity sets into one attention call
        was measured slower on CPU: the copies cost more than the calls saved.)"""
        enc, absent = self._rows(self_obs, mates_obs)
        value = self._read(self.obs_embedding(enc), absent)
        return value, self._read(self._baseline_entities(enc, absent, mates_continuous, mates_discrete), absent)

    def features(
        self,
        self_obs: torch.Tensor,
        mates_obs: torch.Tensor,
        mates_continuous: torch.Tensor | None = None,
        mates_discrete: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Both passes up to the LSTM: value encodings [B, h], baseline encodings [B, h] (None without the
        mates' actions) and the present counts [B, 1] (the same for both passes). Each row is independent of
        the others here, so rows may come in any order and in chunks; only the LSTM needs them in sequence."""
        enc, absent = self._rows(self_obs, mates_obs)
        value, present = self._body(self.obs_embedding(enc), absent)
        if mates_continuous is None or mates_discrete is None:
            return value, None, present
        entities = self._baseline_entities(enc, absent, mates_continuous, mates_discrete)
        return value, self._body(entities, absent)[0], present

    def recurrent_value(
        self, self_obs: torch.Tensor, mates_obs: torch.Tensor, memories: torch.Tensor, sequence_length: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``value`` with memory: rows hold S sequences of L steps, ``memories`` [S, m] the value memories at
        their starts; returns V [S * L, K] and the value memories after each sequence [S, m]."""
        h, _, present = self.features(self_obs, mates_obs)
        h, memories = self._recurrent(h, memories, sequence_length)
        return self.read(h, present), memories

    def recurrent_value_and_baseline(
        self,
        self_obs: torch.Tensor,
        mates_obs: torch.Tensor,
        mates_continuous: torch.Tensor,
        mates_discrete: torch.Tensor,
        value_memories: torch.Tensor,
        baseline_memories: torch.Tensor,
        sequence_length: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``value_and_baseline`` with memory (rows as in ``recurrent_value``): V, B [S * L, K] and the value
        and baseline memories after each sequence [S, m], each pass from its own memories."""
        hv, hb, present = self.features(self_obs, mates_obs, mates_continuous, mates_discrete)
        assert hb is not None
        # Both passes in one LSTM call (2 S sequences): half the ops to run and to differentiate.
        h, memories = self._recurrent(
            torch.cat([hv, hb]), torch.cat([value_memories, baseline_memories]), sequence_length
        )
        hv, hb = h.chunk(2)
        value_memories, baseline_memories = memories.chunk(2)
        return self.read(hv, present), self.read(hb, present), value_memories, baseline_memories

    def forward(self, self_obs: torch.Tensor, mates_obs: torch.Tensor) -> torch.Tensor:
        """The value pass, V(s) [B, K]."""
        return self.value(self_obs, mates_obs)


def lstm_by_sequence(
    lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor, memories: torch.Tensor, sequence_length: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run E padded trajectories x [E, T, h] (real where t < lengths[e]) through ``lstm`` from memories
    [E, m] (h then c), sequence_length steps at a time, as the update will replay them.

    Returns the outputs [E, T, m / 2] (zero on padding), the memory at the start of each sequence
    [E, ceil(T / L), m] (``on_policy.to_sequences``' order: what the update starts each sequence from), and
    the memory after each trajectory's last real step [E, m] (what its next trajectory starts from and what
    the bootstrap value reads). A trajectory's last sequence is packed to its real length, so padding never
    moves the state. One LSTM call per sequence position: ceil(T / L) calls, whatever E.
    """
    e, t, _ = x.shape
    half = memories.shape[1] // 2
    chunks = max(1, math.ceil(t / sequence_length))
    out = x.new_zeros(e, t, half)
    starts = x.new_zeros(e, chunks, memories.shape[1])
    state = memories.clone()
    for c in range(chunks):
        starts[:, c] = state
        lo = c * sequence_length
        steps = (lengths - lo).clamp(0, sequence_length)
        rows = torch.nonzero(steps > 0).flatten()
        if not len(rows):
            break
        piece = x[rows, lo : lo + sequence_length]
        packed = nn.utils.rnn.pack_padded_sequence(piece, steps[rows].cpu(), batch_first=True, enforce_sorted=False)
        h0 = state[rows, :half].unsqueeze(0).contiguous()
        c0 = state[rows, half:].unsqueeze(0).contiguous()
        result, (hn, cn) = lstm(packed, (h0, c0))
        y, _ = nn.utils.rnn.pad_packed_sequence(result, batch_first=True, total_length=piece.shape[1])
        out[rows, lo : lo + piece.shape[1]] = y
        state[rows] = torch.cat([hn[0], cn[0]], dim=1)
    return out, starts, state
