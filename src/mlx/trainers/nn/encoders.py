"""Observation encoders: ML-Agents' NetworkBody for every observation kind a behaviour may have.

Trainers keep one flat float32 row per agent step (every observation spec flattened and concatenated in
spec order; cameras as height x width x channels), so buffers, trajectories and the replay ring stay
single arrays whatever the sensors. ``ObsLayout`` knows where each observation lies in that row;
``StateEncoder`` splits it again:

* vector observations are concatenated (normalised by the module's shared running normaliser, which
  only touches vector columns);
* each camera goes through a visual encoder chosen by ``vis_encode_type`` (ML-Agents' five, with their
  minimum sizes) that ends in a ``hidden_units`` dense layer;
* variable-length observations (``ObservationSpec.variable_length``: ML-Agents' BufferSensor, rows
  [max_entities, entity_size] with zero rows as padding) go through ``VariableLengthEncoder``
  (mlx.trainers.nn.attention, shared with POCA's critic): every entity embedded with the agent's other
  encodings, self-attention with padding masked, mean over the present entities; its 128 floats join
  the other encodings, as upstream's ObservationEncoder (never normalised, as upstream);
* goal signals (``ObservationType.GOAL_SIGNAL``) either join the vector input
  (``conditioning_type: none``) or condition the body through a hypernetwork (``hyper``): the last
  body layer's weights and bias are generated from the goal, so one network can represent a different
  policy per goal (ML-Agents' ConditionalEncoder with one conditional layer);
* with ``memory``, an LSTM of ``memory_size / 2`` units follows the body; its state (h, c) is the
  agent's memory vector of ``memory_size`` floats, carried between decisions by the trainer. It starts
  as ML-Agents' does (``memory_lstm``): Xavier-uniform weights, zero biases plus 1 on the forget gate's
  input and recurrent biases, so a new network keeps about 88% of its cell state per step instead of
  PyTorch's 50%, and a cue seen early is still there to learn from many decisions later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mlx.config import ConditioningType, ConfigError, EncoderType, NetworkSettings
from mlx.envs.api import BehaviorSpec, ObservationType
from mlx.trainers.nn.attention import VariableLengthEncoder

# ML-Agents' minimum camera sizes per encoder (height and width).
MIN_VISUAL_SIZE = {
    EncoderType.simple: 20,
    EncoderType.nature_cnn: 36,
    EncoderType.resnet: 15,
    EncoderType.match3: 5,
    EncoderType.fully_connected: 1,
}
HYPER_HIDDEN = 64
MATCH3_DENSE_GAIN = 1.41  # upstream SmallVisualEncoder: kernel_gain on top of Kaiming-normal


@dataclass(frozen=True)
class Segment:
    start: int
    stop: int
    shape: tuple[int, ...]
    name: str


class ObsLayout:
    """Where each observation lies in the flat per-step row, by kind (vector, visual, entities, goal)."""

    def __init__(self, spec: BehaviorSpec, conditioning: ConditioningType = ConditioningType.hyper) -> None:
        self.vector: list[Segment] = []
        self.visual: list[Segment] = []
        self.goal: list[Segment] = []
        self.entities: list[Segment] = []
        offset = 0
        for obs in spec.observation_specs:
            size = math.prod(obs.shape)
            seg = Segment(offset, offset + size, tuple(obs.shape), obs.name)
            offset += size
            if obs.variable_length:
                self.entities.append(seg)
            elif len(obs.shape) == 3:
                self.visual.append(seg)
            elif len(obs.shape) == 1:
                is_goal = obs.observation_type == ObservationType.GOAL_SIGNAL
                (self.goal if is_goal and conditioning == ConditioningType.hyper else self.vector).append(seg)
            else:
                raise ConfigError(
                    f"observation '{obs.name}' has shape {obs.shape}: mlx encodes vectors (1-D), cameras "
                    "(height, width, channels) and variable-length observations ([max_entities, entity_size] "
                    "with dimension properties VARIABLE_SIZE, NONE) only"
                )
        self.size = offset
        self.vector_columns = torch.cat([torch.arange(s.start, s.stop) for s in self.vector]) if self.vector else None
        self.goal_columns = torch.cat([torch.arange(s.start, s.stop) for s in self.goal]) if self.goal else None
        self.vector_size = sum(s.stop - s.start for s in self.vector)
        self.goal_size = sum(s.stop - s.start for s in self.goal)
        # The common case (ML-Agents' vector-only behaviours): the row is the vector input itself.
        self.plain = not self.visual and not self.goal and not self.entities

    def vectors(self, x: torch.Tensor) -> torch.Tensor:
        if self.plain:
            return x
        if self.vector_columns is None:
            return x[:, :0]
        return x.index_select(1, self.vector_columns.to(x.device))

    def goals(self, x: torch.Tensor) -> torch.Tensor:
        assert self.goal_columns is not None
        return x.index_select(1, self.goal_columns.to(x.device))

    def image(self, x: torch.Tensor, seg: Segment) -> torch.Tensor:
        """[B, C, H, W] from the row's height x width x channels block."""
        return x[:, seg.start : seg.stop].reshape(-1, *seg.shape).permute(0, 3, 1, 2)

    def entity_block(self, x: torch.Tensor, seg: Segment) -> torch.Tensor:
        """[B, max_entities, entity_size] from the row's variable-length block."""
        return x[:, seg.start : seg.stop].reshape(x.shape[0], *seg.shape)


def observation_encoders(
    layout: ObsLayout, settings: NetworkSettings
) -> tuple[nn.ModuleList, VariableLengthEncoder | None, int]:
    """The encoders every network body shares (upstream's ObservationEncoder): one per camera, one
    ``VariableLengthEncoder`` for all variable-length observations (None without any), and the width of
    their joined output (``encode_observations``)."""
    hidden = settings.hidden_units
    kind = EncoderType(settings.vis_encode_type)
    visual = nn.ModuleList([visual_encoder(kind, seg.shape, hidden) for seg in layout.visual])  # type: ignore[arg-type]
    fixed = layout.vector_size + hidden * len(layout.visual)
    if not layout.entities:
        return visual, None, fixed
    entities = VariableLengthEncoder(fixed, [seg.shape[1] for seg in layout.entities])
    return visual, entities, fixed + entities.output_size


def encode_observations(
    layout: ObsLayout, visual: nn.ModuleList, entities: VariableLengthEncoder | None, x: torch.Tensor
) -> torch.Tensor:
    """Flat rows [B, row] -> vectors, camera features and the pooled entities joined, [B, output size]."""
    if layout.plain:
        return x
    parts = [layout.vectors(x)] if layout.vector_size else []
    parts += [enc(layout.image(x, seg)) for enc, seg in zip(visual, layout.visual, strict=True)]
    if entities is not None:
        fixed = (torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]) if parts else None
        parts.append(entities(fixed, [layout.entity_block(x, seg) for seg in layout.entities]))
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def check_visual_sizes(spec: BehaviorSpec, settings: NetworkSettings) -> None:
    """Refuse a camera smaller than the chosen encoder can take, naming both and the alternatives."""
    need = MIN_VISUAL_SIZE[EncoderType(settings.vis_encode_type)]
    for obs in spec.observation_specs:
        if len(obs.shape) == 3 and min(obs.shape[0], obs.shape[1]) < need:
            fits = [e.value for e, m in MIN_VISUAL_SIZE.items() if m <= min(obs.shape[:2])]
            raise ConfigError(
                f"observation '{obs.name}' is {obs.shape[0]}x{obs.shape[1]} but "
                f"network_settings.vis_encode_type={EncoderType(settings.vis_encode_type).value} needs at least "
                f"{need}x{need}; choose one of: {', '.join(fits)}"
            )


def _conv_out(module: nn.Module, shape: tuple[int, int, int]) -> int:
    with torch.no_grad():
        return int(module(torch.zeros(1, shape[2], shape[0], shape[1])).numel())


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


def visual_encoder(kind: EncoderType, shape: tuple[int, int, int], out_size: int) -> nn.Module:
    """ML-Agents' visual encoders (layer sizes as upstream), each ending in a dense layer of out_size."""
    c = shape[2]
    if kind == EncoderType.simple:
        conv = nn.Sequential(nn.Conv2d(c, 16, 8, 4), nn.LeakyReLU(), nn.Conv2d(16, 32, 4, 2), nn.LeakyReLU())
    elif kind == EncoderType.nature_cnn:
        conv = nn.Sequential(
            nn.Conv2d(c, 32, 8, 4), nn.LeakyReLU(), nn.Conv2d(32, 64, 4, 2), nn.LeakyReLU(),
            nn.Conv2d(64, 64, 3, 1), nn.LeakyReLU(),
        )  # fmt: skip
    elif kind == EncoderType.resnet:
        layers: list[nn.Module] = []
        channels = c
        for out in (16, 32, 32):
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.MaxPool2d(3, 2, padding=1)]
            layers += [ResidualBlock(out), ResidualBlock(out)]
            channels = out
        conv = nn.Sequential(*layers, nn.SiLU())
    elif kind == EncoderType.match3:
        # SmallVisualEncoder (King's Candy-Crush CNN): unpadded 3x3 convolutions (9x8 -> 7x6 -> 5x4), hence
        # its 5x5 minimum, and a dense layer started as upstream's (Kaiming-normal weights x 1.41, zero bias).
        conv = nn.Sequential(nn.Conv2d(c, 35, 3), nn.LeakyReLU(), nn.Conv2d(35, 144, 3), nn.LeakyReLU())
    else:  # fully_connected
        conv = nn.Identity()
    flat = _conv_out(conv, shape) if kind != EncoderType.fully_connected else math.prod(shape)
    dense = nn.Linear(flat, out_size)
    if kind == EncoderType.match3:
        nn.init.kaiming_normal_(dense.weight)
        dense.weight.data *= MATCH3_DENSE_GAIN
        nn.init.zeros_(dense.bias)
    return nn.Sequential(conv, nn.Flatten(), dense, nn.LeakyReLU())


class HyperLinear(nn.Module):
    """A dense layer whose weights and bias are produced from a goal vector by a small network."""

    def __init__(self, in_size: int, out_size: int, goal_size: int) -> None:
        super().__init__()
        self.in_size, self.out_size = in_size, out_size
        self.hyper = nn.Sequential(
            nn.Linear(goal_size, HYPER_HIDDEN), nn.ReLU(), nn.Linear(HYPER_HIDDEN, (in_size + 1) * out_size)
        )
        # Start near a plain layer's scale: generated weights ~ N(0, 1 / in_size).
        last = self.hyper[2]
        assert isinstance(last, nn.Linear)
        nn.init.normal_(last.weight, std=1.0 / math.sqrt(in_size * HYPER_HIDDEN))
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        params = self.hyper(goal)
        w = params[:, : self.in_size * self.out_size].view(-1, self.in_size, self.out_size)
        b = params[:, self.in_size * self.out_size :]
        return torch.bmm(x.unsqueeze(1), w).squeeze(1) + b


def _dense(in_size: int, out_size: int) -> nn.Linear:
    lin = nn.Linear(in_size, out_size)
    nn.init.kaiming_normal_(lin.weight, nonlinearity="linear")
    nn.init.zeros_(lin.bias)
    return lin


FORGET_BIAS = 1.0  # added to both of the forget gate's biases (ML-Agents' LSTM)


def memory_lstm(in_size: int, hidden: int) -> nn.LSTM:
    """One-layer LSTM with ML-Agents' initialisation (see the module docstring)."""
    lstm = nn.LSTM(in_size, hidden, batch_first=True)
    for name, param in lstm.named_parameters():
        if name.startswith("weight"):
            nn.init.xavier_uniform_(param)
        else:
            nn.init.zeros_(param)
            param.data[hidden : 2 * hidden] += FORGET_BIAS  # PyTorch's gate order: input, forget, cell, output
    return lstm


class StateEncoder(nn.Module):
    """Flat observation rows (already normalised where the module normalises) -> features [B, output_size].

    ``forward(x, memories, sequence_length)``: with memory, x holds S sequences of L steps ([S * L, D],
    sequence after sequence) and memories [S, memory_size] the LSTM state at each sequence's start; it
    returns the features of every step and the memories after each sequence's last step.
    """

    def __init__(self, spec: BehaviorSpec, settings: NetworkSettings, use_memory: bool = True) -> None:
        super().__init__()
        check_visual_sizes(spec, settings)
        self.layout = ObsLayout(spec, ConditioningType(settings.conditioning_type))
        hidden = settings.hidden_units
        self.visual, self.entities, in_size = observation_encoders(self.layout, settings)
        if in_size == 0:
            raise ConfigError("a behaviour needs at least one observation besides goal signals")
        layers: list[nn.Module] = []
        size = in_size
        plain_layers = settings.num_layers - (1 if self.layout.goal else 0)
        for _ in range(plain_layers):
            layers += [_dense(size, hidden), nn.SiLU()]
            size = hidden
        self.body = nn.Sequential(*layers)
        self.hyper = HyperLinear(size, hidden, self.layout.goal_size) if self.layout.goal else None
        memory = settings.memory if use_memory else None
        self.memory_size = memory.memory_size if memory is not None else 0
        self.lstm = memory_lstm(hidden, self.memory_size // 2) if memory is not None else None
        self.output_size = self.memory_size // 2 if memory is not None else hidden

    def forward(
        self, x: torch.Tensor, memories: torch.Tensor | None = None, sequence_length: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        layout = self.layout
        h = self.body(encode_observations(layout, self.visual, self.entities, x))
        if self.hyper is not None:
            h = nn.functional.silu(self.hyper(h, layout.goals(x)))
        if self.lstm is None:
            return h, None
        assert memories is not None, "a network with memory needs the agents' memories"
        half = self.memory_size // 2
        state = (memories[:, :half].unsqueeze(0).contiguous(), memories[:, half:].unsqueeze(0).contiguous())
        out, (hn, cn) = self.lstm(h.view(-1, sequence_length, h.shape[-1]), state)
        return out.reshape(-1, half), torch.cat([hn[0], cn[0]], dim=1)
