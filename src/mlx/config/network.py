"""Network settings (ML-Agents' network_settings, seed 003): the policy's body, and each learned reward
signal's own encoder."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mlx.config.checks import positive
from mlx.errors import ConfigError

MAX_LAYERS = 100  # hidden layers of an MLP body: deeper ones do not train with these methods


class EncoderType(str, Enum):
    simple = "simple"
    nature_cnn = "nature_cnn"
    resnet = "resnet"
    match3 = "match3"
    fully_connected = "fully_connected"


class ConditioningType(str, Enum):
    hyper = "hyper"
    none = "none"


@dataclass
class MemorySettings:
    sequence_length: int = 64  # steps per sequence the LSTM is trained on
    memory_size: int = 128  # LSTM state size (even: h and c halves)

    def check(self, key: str) -> None:
        if self.memory_size <= 0 or self.memory_size % 2:
            raise ConfigError(
                f"{key}.memory_size must be even and > 0 (it holds the LSTM's h and c halves; got {self.memory_size})"
            )
        positive(self.sequence_length, f"{key}.sequence_length")


@dataclass
class NetworkSettings:
    normalize: bool = False  # normalise vector observations by running mean and variance
    hidden_units: int = 128  # units per hidden layer
    num_layers: int = 2  # hidden layers after the observation encoders
    vis_encode_type: EncoderType = EncoderType.simple  # encoder of visual observations
    memory: MemorySettings | None = None  # an LSTM (network=lstm); null: none
    # goal observations: hypernetwork, or none (concatenated)
    conditioning_type: ConditioningType = ConditioningType.hyper
    # ML-Agents release 20+: act on the Gaussian's mean and each branch's most likely action, while training
    # too (not only at inference); the log-probabilities stored for PPO and POCA are those of these actions.
    deterministic: bool = False

    def check(self, key: str) -> None:
        positive(self.hidden_units, f"{key}.hidden_units")
        if not 1 <= self.num_layers <= MAX_LAYERS:
            raise ConfigError(
                f"{key}.num_layers must be from 1 to {MAX_LAYERS} (got {self.num_layers}); ML-Agents uses 1 to 3"
            )
        if self.memory is not None:
            self.memory.check(f"{key}.memory")
