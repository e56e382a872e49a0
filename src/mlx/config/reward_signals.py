"""Reward signal settings (ML-Agents' reward_signals, seed 003). Each class is the schema of the config
group option reward_signals/<name>.yaml and of the module mlx.trainers.rewards.<name>."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from mlx.config.checks import demo_path, positive
from mlx.config.network import NetworkSettings
from mlx.errors import ConfigError
from mlx.memory import check_network


@dataclass
class RewardSignalSettings:
    """What every signal has: the discount and the weight of its own value stream."""

    gamma: float = 0.99  # discount of this signal's rewards
    strength: float = 1.0  # weight of this signal's reward

    def check(self, key: str, check_files: bool = True) -> None:
        positive(self.strength, f"{key}.strength")
        if not 0 <= self.gamma < 1:
            raise ConfigError(f"{key}.gamma must be in [0, 1), strictly below 1 (got {self.gamma})")


@dataclass
class ExtrinsicSettings(RewardSignalSettings):
    """The env's own reward."""


@dataclass
class LearnedSignalSettings(RewardSignalSettings):
    """A signal with networks of its own (network_settings) trained by its own optimiser."""

    network_settings: NetworkSettings = field(default_factory=NetworkSettings)
    learning_rate: float = 3.0e-4  # learning rate of this signal's own networks
    network: ClassVar[str] = "the signal's network"

    def check(self, key: str, check_files: bool = True) -> None:
        super().check(key, check_files)
        positive(self.learning_rate, f"{key}.learning_rate")
        self.network_settings.check(f"{key}.network_settings")
        check_network(self.network_settings, f"{key}.network_settings", 2)  # e.g. RND's predictor and target
        if self.network_settings.memory is not None:
            raise ConfigError(
                f"{key}.network_settings.memory: {self.network} has no memory (it judges single steps); remove it"
            )
        if self.network_settings.deterministic:
            raise ConfigError(
                f"{key}.network_settings.deterministic: {self.network} does not act; deterministic actions are "
                "trainer.network_settings.deterministic=true"
            )


@dataclass
class CuriositySettings(LearnedSignalSettings):
    """The intrinsic curiosity module (seed 003): its own encoder (network_settings) and optimiser."""

    network: ClassVar[str] = "the curiosity encoder"


@dataclass
class RNDSettings(LearnedSignalSettings):
    """Random network distillation (seed 003): predictor and target MLPs of network_settings."""

    learning_rate: float = 1.0e-4
    network: ClassVar[str] = "the RND predictor"


@dataclass
class GAILSettings(LearnedSignalSettings):
    """Generative adversarial imitation (seed 003): a discriminator of network_settings tells the agent's
    steps from the demonstrations' (demo_path: a .demo file or a folder of them)."""

    encoding_size: int | None = None  # deprecated in ML-Agents; when set, the discriminator's hidden_units
    use_actions: bool = False  # judge (observation, action, done) instead of observations alone
    use_vail: bool = False  # variational information bottleneck (VAIL) in the discriminator
    demo_path: str | None = None  # the demonstrations: a .demo file or a folder of them (required)
    network: ClassVar[str] = "the GAIL discriminator"

    def check(self, key: str, check_files: bool = True) -> None:
        """``check_files=False`` skips whether the .demo files exist (an imported config, before recording)."""
        super().check(key, check_files)
        if check_files or self.demo_path is None:
            demo_path(self.demo_path, f"{key}.demo_path")
        if self.encoding_size is not None:
            positive(self.encoding_size, f"{key}.encoding_size")


# Reward signal name -> its settings class (config group reward_signals/<name>.yaml, module
# mlx.trainers.rewards.<name>).
REWARD_SIGNALS: dict[str, type[RewardSignalSettings]] = {
    "extrinsic": ExtrinsicSettings,
    "curiosity": CuriositySettings,
    "rnd": RNDSettings,
    "gail": GAILSettings,
}
