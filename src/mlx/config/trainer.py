"""Trainer settings (one behaviour section of an ML-Agents config, seed 003): hyperparameters per
trainer type, behavioral cloning, and the settings every trainer shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mlx.config.checks import at_most, build_nested, demo_path, non_negative, numbers, positive
from mlx.config.network import NetworkSettings
from mlx.config.reward_signals import REWARD_SIGNALS, RewardSignalSettings
from mlx.errors import ConfigError

# SAC's steps_per_update is agent steps per gradient update (ML-Agents, seed 003); below 1 several updates
# follow each agent step. At most MAX_UPDATES_PER_STEP of them: a smaller value (1e-9: a billion updates per
# step) would never finish a step, silently.
MAX_UPDATES_PER_STEP = 100
MIN_STEPS_PER_UPDATE = 1 / MAX_UPDATES_PER_STEP
MAX_NUM_EPOCH = 1000  # passes over the buffer per update (ML-Agents' configs use 3 to 8)


class ScheduleType(str, Enum):
    linear = "linear"
    constant = "constant"


@dataclass
class Hyperparameters:
    """What every trainer's optimisation has; each trainer type sets its own defaults."""

    batch_size: int = MISSING  # experiences per gradient step (per minibatch)
    buffer_size: int = MISSING  # PPO/POCA: experiences gathered before each update; SAC: replay capacity
    learning_rate: float = 3.0e-4  # the optimiser's initial learning rate
    learning_rate_schedule: ScheduleType = MISSING  # linear: decays to 0 at max_steps; constant: stays

    def check(self, key: str) -> None:
        positive(self.batch_size, f"{key}.batch_size")
        positive(self.buffer_size, f"{key}.buffer_size")
        positive(self.learning_rate, f"{key}.learning_rate")
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"{key}.batch_size ({self.batch_size}) must not exceed {key}.buffer_size ({self.buffer_size}); "
                "lower batch_size or raise buffer_size"
            )


@dataclass
class PPOHyperparameters(Hyperparameters):
    batch_size: int = 1024
    buffer_size: int = 10240
    learning_rate_schedule: ScheduleType = ScheduleType.linear
    beta: float = 5.0e-3  # entropy bonus: larger explores more
    epsilon: float = 0.2  # clip range of the policy ratio: smaller, more cautious updates
    beta_schedule: ScheduleType | None = None  # None: follows learning_rate_schedule (seed 003)
    epsilon_schedule: ScheduleType | None = None  # None: follows learning_rate_schedule
    lambd: float = 0.95  # GAE lambda: low leans on the value estimates, high on the observed rewards
    num_epoch: int = 3  # passes over the buffer at each update
    shared_critic: bool = False  # PPO: the value heads share the actor's body

    def check(self, key: str) -> None:
        super().check(key)
        positive(self.num_epoch, f"{key}.num_epoch")
        at_most(self.num_epoch, MAX_NUM_EPOCH, f"{key}.num_epoch", "passes over the buffer at each update")
        non_negative(self.beta, f"{key}.beta")
        if not 0 < self.epsilon < 1:
            raise ConfigError(f"{key}.epsilon must be in (0, 1) (got {self.epsilon})")
        if not 0 <= self.lambd <= 1:
            raise ConfigError(f"{key}.lambd must be in [0, 1] (got {self.lambd})")


@dataclass
class POCAHyperparameters(PPOHyperparameters):
    """MA-POCA's settings are PPO's (seed 003, ML-Agents' POCASettings) except ``shared_critic``: POCA's
    critic is its own attention network over the group, never the actor's body."""

    def check(self, key: str) -> None:
        super().check(key)
        if self.shared_critic:
            raise ConfigError(
                f"{key}.shared_critic=true is a PPO setting: MA-POCA's critic attends over the whole group and "
                "cannot share the actor's body; remove it"
            )


@dataclass
class SACHyperparameters(Hyperparameters):
    batch_size: int = 128
    buffer_size: int = 50000  # replay capacity
    learning_rate_schedule: ScheduleType = ScheduleType.constant
    buffer_init_steps: int = 0  # agent steps of uniform random actions before the policy acts
    init_entcoef: float = 1.0  # initial entropy coefficient (learned afterwards): larger explores more
    save_replay_buffer: bool = False  # keep the replay buffer in checkpoints, for resume
    tau: float = 0.005  # target network update rate (soft update)
    # Agent steps per gradient update; < 1: several updates per agent step, at most 100 (>= 0.01).
    steps_per_update: float = 1.0
    reward_signal_steps_per_update: float | None = None  # None: steps_per_update (seed 003)

    def check(self, key: str) -> None:
        super().check(key)
        if not 0 < self.tau <= 1:
            raise ConfigError(f"{key}.tau must be in (0, 1] (got {self.tau})")
        for name in ("steps_per_update", "reward_signal_steps_per_update"):
            value = getattr(self, name)
            if value is not None and not value >= MIN_STEPS_PER_UPDATE:
                raise ConfigError(
                    f"{key}.{name} must be >= {MIN_STEPS_PER_UPDATE:g} (got {value:g}): it is agent steps per "
                    f"gradient update, and below 1 several updates follow each agent step, at most "
                    f"{MAX_UPDATES_PER_STEP}"
                )
        positive(self.init_entcoef, f"{key}.init_entcoef")
        non_negative(self.buffer_init_steps, f"{key}.buffer_init_steps")


@dataclass
class BehavioralCloningSettings:
    """ML-Agents' behavioral_cloning (seed 003): the policy also learns to copy the demonstrations, with its
    own optimiser at strength * learning_rate, decayed linearly to 0 over `steps` agent steps (0: constant)."""

    demo_path: str | None = None  # a .demo file or a folder of them; null: no behavioral cloning
    steps: int = 0  # agent steps over which the strength decays to 0 (0: constant)
    strength: float = 1.0  # the imitation optimiser's learning rate, as a multiple of learning_rate
    samples_per_update: int = 0  # demonstration steps per update and epoch (0: all of them)
    num_epoch: int | None = None  # None: 3 (ML-Agents' default); SAC: 1
    batch_size: int | None = None  # None: the trainer's batch_size

    def check(self, key: str, check_files: bool = True) -> None:
        if self.demo_path is None:
            return  # off: nothing else is read
        if check_files:
            demo_path(self.demo_path, f"{key}.demo_path")
        positive(self.strength, f"{key}.strength")
        non_negative(self.steps, f"{key}.steps")
        non_negative(self.samples_per_update, f"{key}.samples_per_update")
        for name in ("num_epoch", "batch_size"):
            if getattr(self, name) is not None:
                positive(getattr(self, name), f"{key}.{name}")


MAX_WINDOW = 1000  # snapshots kept in memory and in every checkpoint: each is a copy of the actor


@dataclass
class SelfPlaySettings:
    """ML-Agents' self_play block (seed 003): the ghost trainer. One team learns while the others play frozen
    snapshots of the policy; the learning team rotates. Steps are the behaviour's agent steps (ML-Agents')."""

    save_steps: int = 20000  # learning steps between two snapshots of the policy
    team_change: int | None = None  # learning steps before the next team learns; null: 5 x save_steps
    swap_steps: int = 2000  # opponents' steps between two draws of their snapshot
    window: int = 10  # snapshots kept to draw opponents from (the oldest is replaced)
    play_against_latest_model_ratio: float = 0.5  # chance that an opponent plays the latest policy
    initial_elo: float = 1200.0  # the ELO a new run starts from (a resumed run keeps its own)

    @property
    def steps_to_change_team(self) -> int:
        return self.team_change if self.team_change is not None else 5 * self.save_steps

    def check(self, key: str) -> None:
        for name in ("save_steps", "swap_steps", "window"):
            positive(getattr(self, name), f"{key}.{name}")
        if self.team_change is not None:
            positive(self.team_change, f"{key}.team_change")
        at_most(self.window, MAX_WINDOW, f"{key}.window", "each snapshot is a copy of the policy kept in memory")
        ratio = self.play_against_latest_model_ratio
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"{key}.play_against_latest_model_ratio must lie in [0, 1] (got {ratio}): it is a chance")


def threaded_problem(trainer_type: str, memory: bool, self_play: bool) -> str | None:
    """Why ``threaded`` cannot run here, or None: it runs PPO's and POCA's update beside the env
    (mlx.training.background); what it cannot overlap yet is refused by name rather than run unthreaded."""
    if trainer_type == "sac":
        return "SAC updates a few gradient steps between env steps, from the replay buffer the agents fill"
    if memory:
        return "with memory, trajectories are valued with the agents' current memories, so they cannot wait"
    if self_play:
        return "self-play swaps the policies and resets the env between updates (upstream advises false too)"
    return None


@dataclass
class TrainerSettings:
    """Settings common to every trainer (the behaviour section of an ML-Agents config)."""

    trainer_type: str = MISSING  # ppo, sac or poca; set by the trainer group (trainer=sac)
    hyperparameters: Any = MISSING
    network_settings: NetworkSettings = field(default_factory=NetworkSettings)
    # Filled by the reward_signals/ group (multi-select); empty here so removing a signal removes it.
    reward_signals: dict[str, Any] = field(default_factory=dict)
    max_steps: int = 500000  # agent steps (all agents of the behaviour) to train for
    time_horizon: int = 64  # agent steps gathered per agent before they go into the buffer
    summary_freq: int = 50000  # agent steps between summaries (console, stats.jsonl, MLflow)
    keep_checkpoints: int = 5  # checkpoints kept; older ones are deleted
    even_checkpoints: bool = False  # true: keep_checkpoints spread evenly over max_steps
    checkpoint_interval: int = 500000  # agent steps between checkpoints (and ONNX policies)
    init_path: str | None = None  # a checkpoint this behaviour's weights start from
    threaded: bool = False  # update in a thread while the env steps (ML-Agents' threaded; mlx.training.background)
    # Off while its demo_path is null (a block rather than None, so the command line can set any key of it).
    behavioral_cloning: BehavioralCloningSettings | None = field(default_factory=BehavioralCloningSettings)
    # ML-Agents' self-play block (the ghost trainer, mlx.trainers.ghost): null is off, a block turns it on
    # (trainer.self_play={} for its defaults, trainer.self_play={window:5,swap_steps:1000} to set some). Typed
    # as Any here so the command line can give a block; typed_trainer makes it a SelfPlaySettings.
    self_play: Any = None

    def check(self, key: str, check_files: bool = True) -> None:
        """Checks that types cannot express; every message names the key (under ``key``) and the fix.
        ``check_files=False`` skips whether .demo files exist (an imported config, before they are recorded)."""
        for name in ("max_steps", "time_horizon", "summary_freq", "keep_checkpoints", "checkpoint_interval"):
            positive(getattr(self, name), f"{key}.{name}")
        if self.self_play is not None:
            self.self_play.check(f"{key}.self_play")
        if self.threaded:
            why = threaded_problem(
                self.trainer_type, self.network_settings.memory is not None, self.self_play is not None
            )
            if why is not None:
                raise ConfigError(f"{key}.threaded=true is not supported here: {why}; remove it or set it to false")
        self.network_settings.check(f"{key}.network_settings")
        self.hyperparameters.check(f"{key}.hyperparameters")
        memory = self.network_settings.memory
        if memory is not None and memory.sequence_length > self.hyperparameters.batch_size:
            raise ConfigError(
                f"{key}.network_settings.memory.sequence_length ({memory.sequence_length}) must not exceed "
                f"{key}.hyperparameters.batch_size ({self.hyperparameters.batch_size}): a batch holds whole "
                "sequences; lower sequence_length or raise batch_size"
            )
        if self.behavioral_cloning is not None:
            self.behavioral_cloning.check(f"{key}.behavioral_cloning", check_files)


@dataclass
class PPOSettings(TrainerSettings):
    trainer_type: str = "ppo"
    hyperparameters: PPOHyperparameters = field(default_factory=PPOHyperparameters)


@dataclass
class SACSettings(TrainerSettings):
    trainer_type: str = "sac"
    hyperparameters: SACHyperparameters = field(default_factory=SACHyperparameters)


@dataclass
class POCASettings(TrainerSettings):
    trainer_type: str = "poca"
    hyperparameters: POCAHyperparameters = field(default_factory=POCAHyperparameters)


TRAINER_SETTINGS: dict[str, type[TrainerSettings]] = {"ppo": PPOSettings, "sac": SACSettings, "poca": POCASettings}


def reward_signals(tree: Any, key: str, check_files: bool = True) -> dict[str, RewardSignalSettings]:
    """The typed, checked reward_signals block (``key``: where it sits, e.g. trainer.reward_signals)."""
    if not tree:
        raise ConfigError(f"{key} is empty; at least one reward signal must remain (e.g. reward_signals=[extrinsic])")
    signals: dict[str, RewardSignalSettings] = {}
    for name, values in tree.items():
        if name not in REWARD_SIGNALS:
            raise ConfigError(f"unknown reward signal '{key}.{name}'; available: {', '.join(REWARD_SIGNALS)}")
        signals[name] = build_nested(REWARD_SIGNALS[name], values, f"{key}.{name}")
        signals[name].check(f"{key}.{name}", check_files)
    return signals


def typed_trainer(
    tree: dict[str, Any], key: str, check_files: bool = True
) -> tuple[TrainerSettings, dict[str, RewardSignalSettings]]:
    """Trainer settings and reward signals from a resolved tree, checked; errors name keys under ``key``."""
    cls = TRAINER_SETTINGS[tree["trainer_type"]]
    try:
        typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), tree))
    except OmegaConfBaseException as exc:
        if key == "trainer":
            raise  # composition already checked trainer.*; keep OmegaConf's own report
        where = f"{key}.{exc.full_key}" if getattr(exc, "full_key", None) else key
        raise ConfigError(f"{where}: {str(exc).splitlines()[0]}") from None
    assert isinstance(typed, TrainerSettings)
    if typed.self_play is not None:
        typed.self_play = build_nested(SelfPlaySettings, typed.self_play, f"{key}.self_play")
    numbers(typed, key)
    typed.check(key, check_files)
    return typed, reward_signals(tree.get("reward_signals"), f"{key}.reward_signals", check_files)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, mappings merged key by key (as ML-Agents merges default_settings)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
