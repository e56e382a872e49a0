"""Typed configuration: ML-Agents' setting names and defaults (seed 003), validated at start-up.

Hydra composes ``conf/``; the dataclasses here are registered in Hydra's ConfigStore as the schemas of
those YAML files, so a misspelt key or a wrong type fails during composition. ``validate()`` then turns
the composed tree into these dataclasses and checks what types cannot say (sizes, ranges, relations),
raising ``ConfigError`` with the dotted key and the fix.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from mlx.errors import ConfigError
from mlx.sweep.schema import SweepSchema

# conf/ at the repository root (MLX_CONF_DIR overrides it): Hydra's config folder, found without importing the app.
CONF_DIR = Path(os.environ.get("MLX_CONF_DIR", Path(__file__).resolve().parents[3] / "conf"))


class ScheduleType(str, Enum):
    linear = "linear"
    constant = "constant"


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
    sequence_length: int = 64
    memory_size: int = 128


@dataclass
class NetworkSettings:
    normalize: bool = False
    hidden_units: int = 128
    num_layers: int = 2
    vis_encode_type: EncoderType = EncoderType.simple
    memory: MemorySettings | None = None
    conditioning_type: ConditioningType = ConditioningType.hyper


@dataclass
class PPOHyperparameters:
    batch_size: int = 1024
    buffer_size: int = 10240
    learning_rate: float = 3.0e-4
    learning_rate_schedule: ScheduleType = ScheduleType.linear
    beta: float = 5.0e-3
    epsilon: float = 0.2
    beta_schedule: ScheduleType | None = None  # None: follows learning_rate_schedule (seed 003)
    epsilon_schedule: ScheduleType | None = None
    lambd: float = 0.95
    num_epoch: int = 3
    shared_critic: bool = False


@dataclass
class SACHyperparameters:
    batch_size: int = 128
    buffer_size: int = 50000  # replay capacity
    learning_rate: float = 3.0e-4
    learning_rate_schedule: ScheduleType = ScheduleType.constant
    buffer_init_steps: int = 0  # agent steps of uniform random actions before the policy acts
    init_entcoef: float = 1.0
    save_replay_buffer: bool = False
    tau: float = 0.005
    steps_per_update: float = 1.0  # agent steps per gradient update (may be < 1)
    reward_signal_steps_per_update: float | None = None  # None: steps_per_update (seed 003)


@dataclass
class ExtrinsicSettings:
    gamma: float = 0.99
    strength: float = 1.0


@dataclass
class CuriositySettings:
    """The intrinsic curiosity module (seed 003): its own encoder (network_settings) and optimiser."""

    gamma: float = 0.99
    strength: float = 1.0
    network_settings: NetworkSettings = field(default_factory=NetworkSettings)
    learning_rate: float = 3.0e-4


@dataclass
class RNDSettings:
    """Random network distillation (seed 003): predictor and target MLPs of network_settings."""

    gamma: float = 0.99
    strength: float = 1.0
    network_settings: NetworkSettings = field(default_factory=NetworkSettings)
    learning_rate: float = 1.0e-4


@dataclass
class GAILSettings:
    """Generative adversarial imitation (seed 003): a discriminator of network_settings tells the agent's
    steps from the demonstrations' (demo_path: a .demo file or a folder of them)."""

    gamma: float = 0.99
    strength: float = 1.0
    network_settings: NetworkSettings = field(default_factory=NetworkSettings)
    learning_rate: float = 3.0e-4
    encoding_size: int | None = None  # deprecated in ML-Agents; when set, the discriminator's hidden_units
    use_actions: bool = False  # judge (observation, action, done) instead of observations alone
    use_vail: bool = False  # variational information bottleneck (VAIL) in the discriminator
    demo_path: str | None = None  # required


# Reward signal name -> its settings class (config group reward_signals/<name>.yaml, module
# mlx.trainers.rewards.<name>).
REWARD_SIGNALS: dict[str, type] = {
    "extrinsic": ExtrinsicSettings,
    "curiosity": CuriositySettings,
    "rnd": RNDSettings,
    "gail": GAILSettings,
}


@dataclass
class BehavioralCloningSettings:
    """ML-Agents' behavioral_cloning (seed 003): the policy also learns to copy the demonstrations, with its
    own optimiser at strength * learning_rate, decayed linearly to 0 over `steps` agent steps (0: constant)."""

    demo_path: str | None = None  # a .demo file or a folder of them; null: no behavioral cloning
    steps: int = 0
    strength: float = 1.0
    samples_per_update: int = 0  # demonstration steps per update and epoch (0: all of them)
    num_epoch: int | None = None  # None: 3 (ML-Agents' default); SAC: 1
    batch_size: int | None = None  # None: the trainer's batch_size


@dataclass
class TrainerSettings:
    """Settings common to every trainer (the behaviour section of an ML-Agents config)."""

    trainer_type: str = MISSING
    hyperparameters: Any = MISSING
    network_settings: NetworkSettings = field(default_factory=NetworkSettings)
    # Filled by the reward_signals/ group (multi-select); empty here so removing a signal removes it.
    reward_signals: dict[str, Any] = field(default_factory=dict)
    max_steps: int = 500000
    time_horizon: int = 64
    summary_freq: int = 50000
    keep_checkpoints: int = 5
    even_checkpoints: bool = False
    checkpoint_interval: int = 500000
    init_path: str | None = None
    threaded: bool = False
    # Off while its demo_path is null (a block rather than None, so the command line can set any key of it).
    behavioral_cloning: BehavioralCloningSettings | None = field(default_factory=BehavioralCloningSettings)


@dataclass
class PPOSettings(TrainerSettings):
    trainer_type: str = "ppo"
    hyperparameters: PPOHyperparameters = field(default_factory=PPOHyperparameters)


@dataclass
class SACSettings(TrainerSettings):
    trainer_type: str = "sac"
    hyperparameters: SACHyperparameters = field(default_factory=SACHyperparameters)


TRAINER_SETTINGS: dict[str, type[TrainerSettings]] = {"ppo": PPOSettings, "sac": SACSettings}


@dataclass
class EnvSettings:
    """Which environment to run and how many copies of its training area."""

    name: str = MISSING
    num_areas: int = 12
    parameters: dict[str, float] = field(default_factory=dict)  # native envs' environment parameters
    id: str | None = None  # env=gym: the registered Gymnasium id, e.g. CartPole-v1
    kwargs: dict[str, Any] = field(default_factory=dict)  # env=gym: keyword arguments of gymnasium.make
    # Copies of the env. Native envs: num_envs * num_areas areas in one vectorised env (fastest), or one
    # process each with subprocess=true. env=unity: that many executables, on consecutive ports.
    num_envs: int = 1
    subprocess: bool = False  # native envs: step each copy in its own `python -m mlx.envs.unity.remote` process
    # env=unity (ML-Agents' env_settings): the build to launch (null: wait for the Unity Editor) and its args.
    path: str | None = None
    env_args: list[str] = field(default_factory=list)
    base_port: int | None = None  # null: 5005 for executables, 5004 for the Editor; 0: any free ports
    timeout_wait: float = 60.0  # seconds to wait for an env's message before counting it as crashed
    max_lifetime_restarts: int = 10  # restarts of one crashed env over the run (-1: no limit)
    restarts_rate_limit_n: int = 1  # restarts of one env allowed per restarts_rate_limit_period_s (-1: no limit)
    restarts_rate_limit_period_s: float = 60.0
    bind: str = "127.0.0.1"  # address the trainer's gRPC servers listen on (0.0.0.0: envs on other hosts)
    max_message_mb: float = 64.0  # largest message an env may send (bigger ones end the run clearly)


@dataclass
class EngineSettings:
    """ML-Agents' engine_settings, sent to Unity builds over the engine configuration side channel."""

    width: int = 84
    height: int = 84
    quality_level: int = 5
    time_scale: float = 20.0
    target_frame_rate: int = -1
    capture_frame_rate: int = 60
    no_graphics: bool = False  # launch builds with -nographics -batchmode


@dataclass
class TrackingSettings:
    """Where statistics, parameters and artifacts go. backend 'none' keeps only the results folder."""

    backend: str = "mlflow"
    uri: str = "sqlite:///mlruns.db"
    experiment_name: str | None = None  # None: the env name
    log_checkpoints: bool = True
    tags: dict[str, str] = field(default_factory=dict)  # extra MLflow tags: +tracking.tags.group=baseline
    # Set by the sweepers for each job of a multirun (see mlx.sweep): the sweep's MLflow parent run, the
    # sweep's id and the Optuna trial number, all recorded as tags of the job's run.
    parent_run_id: str | None = None
    sweep_id: str | None = None
    trial: int | None = None


@dataclass
class TorchSettings:
    device: str = "cpu"
    num_threads: int = 1  # torch and numpy BLAS threads: small MLPs at ML-Agents batch sizes run fastest on one


@dataclass
class RecordSettings:
    """mode=record: act with a trained policy (or a heuristic) and write the episodes to a .demo file."""

    episodes: int = 10  # complete episodes per behaviour
    path: str | None = None  # a .demo file, or a folder for <Behavior>.demo; None: results/<run_id>/demos/
    name: str | None = None  # the demonstration's name in its meta data (<= 16 characters); None: the behaviour's
    policy: str | None = None  # a .pt checkpoint or .onnx policy; None: the run's newest checkpoint
    heuristic: str | None = None  # instead of a policy: "random", or "package.module:function" (mlx.modes.record)
    deterministic: bool = True  # the Gaussian's mean and the most likely discrete action
    max_steps: int = 10_000_000  # agent steps per behaviour before giving up


@dataclass
class EvaluateSettings:
    """mode=evaluate: act with a trained policy (no learning) for `episodes` episodes per behaviour."""

    episodes: int = 100
    policy: str | None = None  # a .pt checkpoint or .onnx policy; None: the run's newest checkpoint
    deterministic: bool = True  # the Gaussian's mean and the most likely discrete action
    max_steps: int = 1_000_000  # agent steps per behaviour before giving up (a policy may never end an episode)


@dataclass
class WatchSettings:
    """mode=watch: a trained policy plays a few areas; their pictures (env.render) become a GIF or MP4."""

    episodes: int = 1  # the video ends once every shown area has ended this many episodes
    areas: int = 1  # areas played and shown, in a grid
    path: str | None = None  # a .gif or .mp4 file; None: results/<run_id>/<Behavior>.gif
    fps: int = 20  # frames (decisions) per second of video
    policy: str | None = None  # a .pt checkpoint or .onnx policy; None: the run's newest checkpoint
    deterministic: bool = True  # the Gaussian's mean and the most likely discrete action
    max_frames: int = 5000  # stop here even if episodes go on (a deterministic policy may loop forever)


@dataclass
class MlxConfig:
    """The whole run. Top-level keys mirror mlagents-learn's checkpoint settings and command line."""

    trainer: Any = MISSING
    env: EnvSettings = field(default_factory=EnvSettings)
    engine_settings: EngineSettings = field(default_factory=EngineSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    torch_settings: TorchSettings = field(default_factory=TorchSettings)
    # ML-Agents' environment_parameters block (constants, samplers, curricula; see mlx.params.curriculum),
    # filled by the curriculum/ and sampler/ groups; a parameter here overrides env.parameters.<name>.
    environment_parameters: dict[str, Any] = field(default_factory=dict)
    # Per-behaviour trainer settings merged over `trainer` (ML-Agents' behaviors.<name> sections), e.g.
    # +behaviors.BigWallJump.max_steps=20000000; validated like trainer.*.
    behaviors: dict[str, Any] = field(default_factory=dict)
    lesson: int | None = None  # start every curriculum at this lesson (clipped to its last one)
    run_id: str = MISSING
    seed: int = -1
    results_dir: str = "results"
    resume: bool = False
    force: bool = False
    initialize_from: str | None = None
    stop_at_reward: float | None = None
    progress: str = "auto"  # auto: a live line on a TTY, plain lines otherwise; or "plain"
    sweep: SweepSchema | None = None  # sweep=<name>: an Optuna search, sweeps/<name>.yaml (read by the sweeper)
    mode: str = "train"  # train, evaluate (mlagents-learn's --inference, mlx.modes.evaluate) or watch (mlx.modes.watch)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    record: RecordSettings = field(default_factory=RecordSettings)  # mode=record: see mlx.modes.record
    watch: WatchSettings = field(default_factory=WatchSettings)


def register_configs() -> None:
    """Put the schemas into Hydra's ConfigStore so the YAML files under conf/ are typed by them."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="mlx_schema", node=MlxConfig)
    for name, settings in TRAINER_SETTINGS.items():
        cs.store(group="trainer", name=f"{name}_schema", node=settings)
    cs.store(group="env", name="env_schema", node=EnvSettings)
    cs.store(group="tracking", name="tracking_schema", node=TrackingSettings)
    from mlx.sweep.files import register_sweeps
    from mlx.sweep.jobs import register_resolvers

    register_resolvers()
    register_sweeps()


@dataclass
class RunConfig:
    """The validated run: typed trainer settings plus the rest of the tree."""

    trainer: TrainerSettings
    reward_signals: dict[str, Any]
    env: EnvSettings
    tracking: TrackingSettings
    torch_settings: TorchSettings
    run_id: str
    seed: int
    results_dir: str
    resume: bool
    force: bool
    initialize_from: str | None
    stop_at_reward: float | None
    progress: str
    mode: str
    evaluate: EvaluateSettings
    resolved: dict[str, Any]  # the whole resolved tree, for configuration.yaml and MLflow params
    engine_settings: EngineSettings = field(default_factory=EngineSettings)
    environment_parameters: dict[str, Any] = field(default_factory=dict)  # name -> curriculum.EnvironmentParameter
    behaviors: dict[str, TrainerSettings] = field(default_factory=dict)  # behaviours with their own settings
    behavior_signals: dict[str, dict[str, Any]] = field(default_factory=dict)  # ... and their reward signals
    lesson: int | None = None
    watch: WatchSettings = field(default_factory=WatchSettings)
    record: RecordSettings = field(default_factory=RecordSettings)

    def trainer_for(self, behavior: str) -> TrainerSettings:
        """The trainer settings of one behaviour: its behaviors.<name> section merged over trainer."""
        return self.behaviors.get(behavior, self.trainer)

    def signals_for(self, behavior: str) -> dict[str, Any]:
        return self.behavior_signals.get(behavior, self.reward_signals)


def _positive(value: float, key: str) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0 (got {value})")


def _build(cls: type, values: Any, key: str) -> Any:
    """Construct a settings dataclass from a plain dict, naming unknown keys and allowed ones."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{key} must be a mapping (got {values!r})")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown key '{key}.{unknown[0]}'; allowed keys: {', '.join(sorted(names))}")
    return cls(**values)


def _build_nested(cls: type, values: Any, key: str) -> Any:
    """Like _build, for settings with nested dataclasses (network_settings): typed by OmegaConf."""
    from omegaconf.errors import OmegaConfBaseException

    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{key} must be a mapping (got {values!r})")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), values))
    except OmegaConfBaseException as exc:
        where = f"{key}.{exc.full_key}" if getattr(exc, "full_key", None) else key
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"{where}: {reason}") from None


def validate_trainer(
    trainer: TrainerSettings, reward_signals: dict[str, Any], t: str = "trainer", check_files: bool = True
) -> None:
    """Checks that types cannot express; every message names the key (under ``t``) and the fix.
    ``check_files=False`` skips whether .demo files exist (an imported config, before they are recorded)."""
    h = trainer.hyperparameters
    for name in ("max_steps", "time_horizon", "summary_freq", "keep_checkpoints", "checkpoint_interval"):
        _positive(getattr(trainer, name), f"{t}.{name}")
    ns = trainer.network_settings
    _positive(ns.hidden_units, f"{t}.network_settings.hidden_units")
    if ns.num_layers < 1:
        raise ConfigError(f"{t}.network_settings.num_layers must be >= 1 (got {ns.num_layers})")
    if trainer.threaded:
        raise ConfigError(
            f"{t}.threaded=true is not supported: mlx steps the env and updates the model in one thread "
            "(native envs step in microseconds, so overlapping them gains little); remove it"
        )
    if ns.memory is not None:
        m = ns.memory
        if m.memory_size <= 0 or m.memory_size % 2:
            raise ConfigError(
                f"{t}.network_settings.memory.memory_size must be a positive even number (it holds the LSTM's h "
                f"and c halves); got {m.memory_size}"
            )
        _positive(m.sequence_length, f"{t}.network_settings.memory.sequence_length")
    _positive(h.batch_size, f"{t}.hyperparameters.batch_size")
    _positive(h.buffer_size, f"{t}.hyperparameters.buffer_size")
    _positive(h.learning_rate, f"{t}.hyperparameters.learning_rate")
    if h.batch_size > h.buffer_size:
        raise ConfigError(
            f"{t}.hyperparameters.batch_size ({h.batch_size}) must not exceed "
            f"{t}.hyperparameters.buffer_size ({h.buffer_size}); lower batch_size or raise buffer_size"
        )
    if isinstance(h, PPOHyperparameters):
        _positive(h.num_epoch, f"{t}.hyperparameters.num_epoch")
        if h.beta < 0:
            raise ConfigError(f"{t}.hyperparameters.beta must be >= 0 (got {h.beta})")
        if not 0 < h.epsilon < 1:
            raise ConfigError(f"{t}.hyperparameters.epsilon must be in (0, 1) (got {h.epsilon})")
        if not 0 <= h.lambd <= 1:
            raise ConfigError(f"{t}.hyperparameters.lambd must be in [0, 1] (got {h.lambd})")
    if isinstance(h, SACHyperparameters):
        if not 0 < h.tau <= 1:
            raise ConfigError(f"{t}.hyperparameters.tau must be in (0, 1] (got {h.tau})")
        _positive(h.steps_per_update, f"{t}.hyperparameters.steps_per_update")
        _positive(h.init_entcoef, f"{t}.hyperparameters.init_entcoef")
        if h.reward_signal_steps_per_update is not None:
            _positive(h.reward_signal_steps_per_update, f"{t}.hyperparameters.reward_signal_steps_per_update")
        if h.buffer_init_steps < 0:
            raise ConfigError(f"{t}.hyperparameters.buffer_init_steps must be >= 0 (got {h.buffer_init_steps})")
    bc = trainer.behavioral_cloning
    if bc is not None and bc.demo_path is not None:
        key = f"{t}.behavioral_cloning"
        if check_files:
            _demo_path(bc.demo_path, f"{key}.demo_path")
        _positive(bc.strength, f"{key}.strength")
        for name in ("steps", "samples_per_update"):
            if getattr(bc, name) < 0:
                raise ConfigError(f"{key}.{name} must be >= 0 (got {getattr(bc, name)})")
        for name in ("num_epoch", "batch_size"):
            if getattr(bc, name) is not None:
                _positive(getattr(bc, name), f"{key}.{name}")
    if not reward_signals:
        raise ConfigError(
            f"{t}.reward_signals is empty; at least one reward signal must remain (e.g. reward_signals=[extrinsic])"
        )
    for name, sig in reward_signals.items():
        _positive(sig.strength, f"{t}.reward_signals.{name}.strength")
        if hasattr(sig, "learning_rate"):
            _positive(sig.learning_rate, f"{t}.reward_signals.{name}.learning_rate")
        if hasattr(sig, "network_settings"):
            _positive(sig.network_settings.hidden_units, f"{t}.reward_signals.{name}.network_settings.hidden_units")
        if hasattr(sig, "demo_path") and (check_files or sig.demo_path is None):
            _demo_path(sig.demo_path, f"{t}.reward_signals.{name}.demo_path")
        if getattr(sig, "encoding_size", None) is not None:
            _positive(sig.encoding_size, f"{t}.reward_signals.{name}.encoding_size")
        if name == "gail" and sig.network_settings.memory is not None:
            raise ConfigError(
                f"{t}.reward_signals.gail.network_settings.memory: the GAIL discriminator has no memory (it judges "
                "single steps); remove it"
            )
            _positive(sig.network_settings.num_layers, f"{t}.reward_signals.{name}.network_settings.num_layers")
        if not 0 <= sig.gamma < 1:
            raise ConfigError(f"{t}.reward_signals.{name}.gamma must be in [0, 1), strictly below 1 (got {sig.gamma})")


def _demo_path(path: str | None, key: str) -> None:
    """A demonstration setting must name an existing .demo file or folder (see mlx.formats.demo.resolve_demo_path)."""
    from mlx.formats.demo import resolve_demo_path

    if path is None:
        raise ConfigError(
            f"{key} is required: the .demo file (or folder of them) to imitate; record one with "
            "python -m mlx mode=record run_id=<trained run> record.path=<file.demo>"
        )
    found = resolve_demo_path(path)
    if not found.exists():
        raise ConfigError(f"{key}: no .demo file or folder at '{path}'")
    if found.is_file() and found.suffix != ".demo":
        raise ConfigError(f"{key}: '{path}' is not a .demo file")


def validate_env(env: EnvSettings) -> None:
    """env.id and env.kwargs belong to env=gym (a Gymnasium env); native envs take env.parameters."""
    if env.name == "gym":
        if not env.id:
            raise ConfigError(
                "env.id is required for env=gym: name a registered Gymnasium env, e.g. env=gym env.id=CartPole-v1"
            )
    elif env.id is not None or env.kwargs:
        key = "env.id" if env.id is not None else "env.kwargs"
        raise ConfigError(
            f"{key} is only for env=gym (Gymnasium envs); env={env.name} takes env.parameters instead: remove {key}"
        )
    validate_env_processes(env)


def validate_env_processes(env: EnvSettings) -> None:
    """num_envs, and the settings of envs behind the gRPC protocol (env=unity, or subprocess=true)."""
    _positive(env.num_envs, "env.num_envs")
    if env.name != "unity" and (env.path is not None or env.env_args):
        key = "env.path" if env.path is not None else "env.env_args"
        raise ConfigError(f"{key} is only for env=unity (a Unity build or env process); remove it for env={env.name}")
    if env.subprocess and env.name in ("unity", "gym"):
        raise ConfigError(
            f"env.subprocess=true is for native envs; env={env.name} "
            + ("always runs in its own processes" if env.name == "unity" else "steps in-process")
        )
    if env.name == "unity" and env.path is None and env.num_envs != 1:
        raise ConfigError(
            "env.path=null waits for the Unity Editor, which is one environment: set env.num_envs=1 or give env.path"
        )
    if env.base_port is not None and not 0 <= env.base_port <= 65535 - env.num_envs:
        raise ConfigError(
            f"env.base_port must leave room for env.num_envs={env.num_envs} ports below 65536 (got {env.base_port})"
        )
    if env.base_port == 0 and env.name == "unity" and env.path is None:
        raise ConfigError("env.base_port=0 (any free port) needs env.path: the Editor connects to a known port")
    _positive(env.timeout_wait, "env.timeout_wait")
    _positive(env.restarts_rate_limit_period_s, "env.restarts_rate_limit_period_s")
    _positive(env.max_message_mb, "env.max_message_mb")
    for key in ("max_lifetime_restarts", "restarts_rate_limit_n"):
        if getattr(env, key) < -1:
            raise ConfigError(f"env.{key} must be >= 0, or -1 for no limit (got {getattr(env, key)})")


def validate(cfg: DictConfig | dict[str, Any], check_files: bool = True) -> RunConfig:
    """Turn the composed config into typed settings, or raise ConfigError naming the problem
    (``check_files=False``: except missing .demo files, for configs checked before a run)."""
    from mlx.sweep.jobs import register_resolvers

    register_resolvers()  # run_id's ${mlx_job:} also resolves in sweep worker processes
    tree = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if isinstance(cfg, DictConfig) else dict(cfg)
    assert isinstance(tree, dict)
    tree.pop("sweep", None)  # the search's settings, not the run's
    trainer_tree = dict(tree.get("trainer") or {})
    trainer_type = trainer_tree.get("trainer_type")
    if trainer_type not in TRAINER_SETTINGS:
        raise ConfigError(f"unknown trainer.trainer_type '{trainer_type}'; available: {', '.join(TRAINER_SETTINGS)}")
    typed, signals = _typed_trainer(trainer_tree, "trainer", check_files)
    behaviors: dict[str, TrainerSettings] = {}
    behavior_signals: dict[str, dict[str, Any]] = {}
    for behavior, override in (tree.get("behaviors") or {}).items():
        key = f"behaviors.{behavior}"
        if not isinstance(override, dict):
            raise ConfigError(f"{key} must be a mapping of trainer settings, e.g. {key}.max_steps=1000000")
        if override.get("trainer_type", trainer_type) != trainer_type:
            raise ConfigError(
                f"{key}.trainer_type: every behaviour uses trainer={trainer_type} here; per-behaviour trainer types "
                "are not supported, remove it"
            )
        behaviors[str(behavior)], behavior_signals[str(behavior)] = _typed_trainer(
            _deep_merge(trainer_tree, override), key, check_files
        )

    env = _build(EnvSettings, tree.get("env"), "env")
    _positive(env.num_areas, "env.num_areas")
    validate_env(env)
    engine_settings = _build(EngineSettings, tree.get("engine_settings"), "engine_settings")
    tracking = _build(TrackingSettings, tree.get("tracking"), "tracking")
    if tracking.backend not in ("mlflow", "none"):
        raise ConfigError(f"tracking.backend must be 'mlflow' or 'none' (got '{tracking.backend}')")
    torch_settings = _build(TorchSettings, tree.get("torch_settings"), "torch_settings")
    from mlx.params.curriculum import parse_environment_parameters

    environment_parameters = parse_environment_parameters(tree.get("environment_parameters"))
    lesson = tree.get("lesson")
    if lesson is not None and (not isinstance(lesson, int) or isinstance(lesson, bool) or lesson < 0):
        raise ConfigError(f"lesson must be a lesson number >= 0 (got {lesson!r}); 0 is the first lesson")
    run_id = str(tree["run_id"])
    if not run_id or "/" in run_id or run_id in (".", ".."):
        raise ConfigError(f"run_id must be a plain folder name (got '{run_id}')")
    mode = str(tree.get("mode", "train"))
    if mode not in ("train", "evaluate", "watch", "record"):
        raise ConfigError(f"mode must be 'train', 'evaluate', 'watch' or 'record' (got '{mode}')")
    evaluate = _build(EvaluateSettings, tree.get("evaluate"), "evaluate")
    _positive(evaluate.episodes, "evaluate.episodes")
    _positive(evaluate.max_steps, "evaluate.max_steps")
    record = _build(RecordSettings, tree.get("record"), "record")
    _positive(record.episodes, "record.episodes")
    _positive(record.max_steps, "record.max_steps")
    if record.policy is not None and record.heuristic is not None:
        raise ConfigError("record.policy and record.heuristic both given: a recording has one actor, remove one")
    watch = _build(WatchSettings, tree.get("watch"), "watch")
    for key in ("episodes", "areas", "fps", "max_frames"):
        _positive(getattr(watch, key), f"watch.{key}")
    if watch.fps > 100:
        raise ConfigError(f"watch.fps must be at most 100 (got {watch.fps}): GIF frame times are whole 10 ms")
    if watch.path is not None and not watch.path.lower().endswith((".gif", ".mp4")):
        raise ConfigError(f"watch.path must end in .gif or .mp4 (got '{watch.path}')")
    if tree.get("progress") not in ("auto", "plain"):
        raise ConfigError(f"progress must be 'auto' or 'plain' (got '{tree.get('progress')}')")
    return RunConfig(
        trainer=typed,
        reward_signals=signals,
        env=env,
        tracking=tracking,
        torch_settings=torch_settings,
        run_id=run_id,
        seed=int(tree["seed"]),
        results_dir=str(tree["results_dir"]),
        resume=bool(tree["resume"]),
        force=bool(tree["force"]),
        initialize_from=tree.get("initialize_from"),
        stop_at_reward=tree.get("stop_at_reward"),
        progress=str(tree.get("progress")),
        mode=mode,
        evaluate=evaluate,
        resolved=tree,
        engine_settings=engine_settings,
        environment_parameters=environment_parameters,
        behaviors=behaviors,
        behavior_signals=behavior_signals,
        lesson=lesson,
        record=record,
        watch=watch,
    )


def _typed_trainer(
    trainer_tree: dict[str, Any], key: str, check_files: bool = True
) -> tuple[TrainerSettings, dict[str, Any]]:
    """Trainer settings and reward signals from a resolved tree, validated; errors name keys under ``key``."""
    from omegaconf.errors import OmegaConfBaseException

    cls = TRAINER_SETTINGS[trainer_tree["trainer_type"]]
    try:
        typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), trainer_tree))
    except OmegaConfBaseException as exc:
        if key == "trainer":
            raise  # composition already checked trainer.*; keep OmegaConf's own report
        where = f"{key}.{exc.full_key}" if getattr(exc, "full_key", None) else key
        raise ConfigError(f"{where}: {str(exc).splitlines()[0]}") from None
    assert isinstance(typed, TrainerSettings)
    signals: dict[str, Any] = {}
    for name, values in (trainer_tree.get("reward_signals") or {}).items():
        if name not in REWARD_SIGNALS:
            raise ConfigError(
                f"unknown reward signal '{key}.reward_signals.{name}'; available: {', '.join(REWARD_SIGNALS)}"
            )
        signals[name] = _build_nested(REWARD_SIGNALS[name], values, f"{key}.reward_signals.{name}")
    validate_trainer(typed, signals, key, check_files)
    return typed, signals


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, mappings merged key by key (as ML-Agents merges default_settings)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
