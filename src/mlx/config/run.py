"""The whole run: MlxConfig (the schema of conf/config.yaml), RunConfig (what validate returns) and
validate, which types the composed tree and calls each section's own check."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from mlx.config.checks import at_most, build, close_match, numbers
from mlx.config.env import EngineSettings, EnvSettings
from mlx.config.modes import EvaluateSettings, RecordSettings, WatchSettings
from mlx.config.parameters import EnvironmentParameter, parse_environment_parameters
from mlx.config.resolvers import register_resolvers
from mlx.config.reward_signals import RewardSignalSettings
from mlx.config.sweep import SweepSchema
from mlx.config.trainer import TRAINER_SETTINGS, TrainerSettings, deep_merge, typed_trainer
from mlx.errors import ConfigError
from mlx.memory import check_trainer

MODES = ("train", "evaluate", "watch", "record")
# The settings blocks of the modes that act with a trained policy, by their key (and mode=<key>).
MODE_SETTINGS = {"evaluate": EvaluateSettings, "record": RecordSettings, "watch": WatchSettings}


@dataclass
class TrackingSettings:
    """Where statistics, parameters and artifacts go, besides the results folder's stats.jsonl: MLflow
    (backend mlflow) and TensorBoard event files in results/<run_id>/<Behavior>/ (tensorboard), as the
    tracking group picks them: tracking=mlflow both, tracking=tensorboard the event files only,
    tracking=none neither; tracking.tensorboard=true|false switches the event files on any of them."""

    backend: str = "mlflow"  # mlflow, tensorboard (no MLflow: event files only) or none
    tensorboard: bool = True  # ML-Agents' event files: tensorboard --logdir results
    # MLflow tracking URI: a database URL or a server (http://host:5000). The default is MLflow 3's own, what
    # plain `mlflow ui` and mlflow.search_runs() open in the working folder
    uri: str = "sqlite:///mlflow.db"
    experiment_name: str | None = None  # None: the env name (env=gym: its Gymnasium id)
    run_name: str | None = None  # the MLflow run's name; None: the run_id (sweeps name each job by its values)
    log_checkpoints: bool = True  # also log the final checkpoint as an MLflow artifact (the policy always is)
    tags: dict[str, str] = field(default_factory=dict)  # extra MLflow tags: +tracking.tags.group=baseline
    # Set by the sweepers for each job of a multirun (see mlx.sweep): the sweep's MLflow parent run, the
    # sweep's id and the Optuna trial number, all recorded as tags of the job's run.
    parent_run_id: str | None = None
    sweep_id: str | None = None  # set by the sweepers: the sweep's id (a tag)
    trial: int | None = None  # set by the sweepers: the Optuna trial number (a tag)

    def check(self) -> None:
        if self.backend not in ("mlflow", "tensorboard", "none"):
            raise ConfigError(f"tracking.backend must be 'mlflow', 'tensorboard' or 'none' (got '{self.backend}')")
        if self.backend == "tensorboard" and not self.tensorboard:
            raise ConfigError(
                "tracking=tensorboard with tracking.tensorboard=false records nothing; use tracking=none, "
                "or drop tracking.tensorboard=false"
            )


DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")
MAX_THREADS = 1024
MAX_NAME_BYTES = 255  # a folder name on Linux, macOS and Windows
SEED_RANGE = 2**32  # numpy's seeds: 0 <= seed < 2**32
INT32 = 2**31


@dataclass
class TorchSettings:
    # null (ML-Agents' default): cuda when this machine has a CUDA GPU, else cpu, chosen when the run starts
    # (a resumed run on another machine chooses again); or one of cpu, cuda, cuda:<N>, mps.
    device: str | None = None
    num_threads: int = 1  # torch and numpy BLAS threads: small MLPs at ML-Agents batch sizes run fastest on one

    def check(self) -> None:
        """A device torch knows and this machine has (cpu, cuda, cuda:N, mps), and a sane thread count."""
        if self.num_threads < 1:
            raise ConfigError(f"torch_settings.num_threads must be >= 1 (got {self.num_threads})")
        at_most(self.num_threads, MAX_THREADS, "torch_settings.num_threads", "threads for torch and numpy's BLAS")
        if self.device is None:
            return
        if not DEVICE.fullmatch(self.device):
            raise ConfigError(
                f"torch_settings.device must be cpu, cuda, cuda:<N>, mps, or null to pick cuda when there is a "
                f"GPU and cpu otherwise (got '{self.device}')"
            )
        if self.device != "cpu":
            self._check_available()

    def resolved_device(self) -> str:
        """The device a run uses: the one named, or upstream's choice for null (cuda if available, else cpu;
        upstream never picks mps by itself)."""
        if self.device is not None:
            return self.device
        import torch  # lazy for start-up speed

        return "cuda" if torch.cuda.is_available() else "cpu"

    def _check_available(self) -> None:
        import torch  # only for a device other than the CPU (start-up time)

        if self.device == "mps":
            if not torch.backends.mps.is_available():
                raise ConfigError("torch_settings.device=mps: no Apple GPU (MPS) is available here; use cpu")
            return
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"torch_settings.device={self.device}: no CUDA GPU is available here; use cpu")
        index = int(self.device.partition(":")[2] or 0)
        if index >= count:
            raise ConfigError(
                f"torch_settings.device={self.device}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
            )


@dataclass
class MlxConfig:
    """The whole run. Top-level keys mirror mlagents-learn's checkpoint settings and command line."""

    trainer: Any = MISSING  # the trainer group's block (trainer=ppo|sac|poca): its keys in the trainer sections
    env: EnvSettings = field(default_factory=EnvSettings)
    engine_settings: EngineSettings = field(default_factory=EngineSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    torch_settings: TorchSettings = field(default_factory=TorchSettings)
    # ML-Agents' environment_parameters block (constants, samplers, curricula; see mlx.config.parameters),
    # filled by the curriculum/ and sampler/ groups; a parameter here overrides env.parameters.<name>.
    environment_parameters: dict[str, Any] = field(default_factory=dict)
    # Per-behaviour trainer settings merged over `trainer` (ML-Agents' behaviors.<name> sections), e.g.
    # +behaviors.BigWallJump.max_steps=20000000; validated like trainer.*.
    behaviors: dict[str, Any] = field(default_factory=dict)
    lesson: int | None = None  # start every curriculum at this lesson (clipped to its last one)
    run_id: str = MISSING  # the run's folder under results_dir, and its name in MLflow (default <trainer>-<env>-<time>)
    seed: int = -1  # seeds numpy, torch and the envs; -1: a random one
    results_dir: str = "results"  # where run folders go (checkpoints, policies, stats.jsonl, run_logs/)
    resume: bool = False  # continue run_id from its last checkpoint, with its saved settings
    force: bool = False  # overwrite an existing run_id instead of refusing to start
    initialize_from: str | None = None  # a run_id whose weights a new run starts from
    stop_at_reward: float | None = None  # end a behaviour once its latest mean reward reaches this (at the last lesson)
    progress: str = "auto"  # auto: a live line on a TTY, plain lines otherwise; or "plain"
    # mlagents-learn's --debug: the mlx loggers at DEBUG (each update's time, each summary's time split) and a
    # block per behaviour in timers.json; run_logs/timers.json itself is written by every training run.
    debug: bool = False
    sweep: SweepSchema | None = None  # sweep=<name>: an Optuna search, sweeps/<name>.yaml (read by the sweeper)
    # train, evaluate (mlagents-learn's --inference, mlx.modes.evaluate), watch (mlx.modes.watch) or record
    # (mlx.modes.record)
    mode: str = "train"
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    record: RecordSettings = field(default_factory=RecordSettings)  # mode=record: see mlx.modes.record
    watch: WatchSettings = field(default_factory=WatchSettings)


@dataclass
class RunConfig:
    """The validated run: typed trainer settings plus the rest of the tree."""

    trainer: TrainerSettings
    reward_signals: dict[str, RewardSignalSettings]
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
    environment_parameters: dict[str, EnvironmentParameter] = field(default_factory=dict)
    behaviors: dict[str, TrainerSettings] = field(default_factory=dict)  # behaviours with their own settings
    behavior_signals: dict[str, dict[str, RewardSignalSettings]] = field(default_factory=dict)  # ... and theirs
    lesson: int | None = None
    watch: WatchSettings = field(default_factory=WatchSettings)
    record: RecordSettings = field(default_factory=RecordSettings)
    debug: bool = False

    def trainer_for(self, behavior: str) -> TrainerSettings:
        """The trainer settings of one behaviour: its behaviors.<name> section merged over trainer."""
        return self.behaviors.get(behavior, self.trainer)

    def signals_for(self, behavior: str) -> dict[str, RewardSignalSettings]:
        return self.behavior_signals.get(behavior, self.reward_signals)


def _behaviors(
    tree: dict[str, Any], trainer_tree: dict[str, Any], check_files: bool
) -> tuple[dict[str, TrainerSettings], dict[str, dict[str, RewardSignalSettings]]]:
    """behaviors.<name> sections merged over trainer, each typed and checked like trainer.*."""
    trainer_type = trainer_tree["trainer_type"]
    behaviors: dict[str, TrainerSettings] = {}
    signals: dict[str, dict[str, RewardSignalSettings]] = {}
    for behavior, override in (tree.get("behaviors") or {}).items():
        key = f"behaviors.{behavior}"
        if not isinstance(override, dict):
            raise ConfigError(f"{key} must be a mapping of trainer settings, e.g. {key}.max_steps=1000000")
        own_type = override.get("trainer_type", trainer_type)
        if own_type not in TRAINER_SETTINGS:
            raise ConfigError(f"unknown {key}.trainer_type '{own_type}'; available: {', '.join(TRAINER_SETTINGS)}")
        base = trainer_tree
        if own_type != trainer_type:
            # Hyperparameters belong to one trainer (PPO's buffer_size is not a replay capacity): a behaviour
            # of another type starts from its own trainer's defaults there, and shares everything else.
            base = {k: v for k, v in trainer_tree.items() if k not in ("hyperparameters", "trainer_type")}
        behaviors[str(behavior)], signals[str(behavior)] = typed_trainer(deep_merge(base, override), key, check_files)
    return behaviors, signals


TOP_LEVEL_KEYS = frozenset(f.name for f in fields(MlxConfig)) | {"hydra"}


def _check_top_level(tree: dict[str, Any]) -> None:
    """The run's own keys: no unknown ones (a `+typo=1`), seed, lesson, run_id, mode, progress, debug."""
    unknown = sorted(set(map(str, tree)) - TOP_LEVEL_KEYS)
    if unknown:
        allowed = sorted(TOP_LEVEL_KEYS - {"hydra"})
        raise ConfigError(
            f"unknown top-level key '{unknown[0]}'{close_match(unknown[0], allowed)}; allowed: {', '.join(allowed)}"
        )
    seed = tree.get("seed", -1)
    if not isinstance(seed, int) or isinstance(seed, bool) or not (seed == -1 or 0 <= seed < SEED_RANGE):
        raise ConfigError(f"seed must be -1 (a random seed) or a whole number from 0 to 2**32 - 1 (got {seed!r})")
    lesson = tree.get("lesson")
    if lesson is not None and (not isinstance(lesson, int) or isinstance(lesson, bool) or lesson < 0):
        raise ConfigError(f"lesson must be a lesson number >= 0 (got {lesson!r}); 0 is the first lesson")
    run_id = str(tree["run_id"])
    if not run_id or run_id in (".", "..") or any(c in run_id for c in "/\\") or not run_id.isprintable():
        raise ConfigError(f"run_id must be a plain folder name (got {run_id!r})")
    if len(run_id.encode()) > MAX_NAME_BYTES:
        raise ConfigError(
            f"run_id is {len(run_id.encode())} bytes long; a folder name holds at most {MAX_NAME_BYTES}: shorten it"
        )
    if str(tree.get("mode", "train")) not in MODES:
        raise ConfigError(f"mode must be 'train', 'evaluate', 'watch' or 'record' (got '{tree.get('mode')}')")
    if tree.get("progress") not in ("auto", "plain"):
        raise ConfigError(f"progress must be 'auto' or 'plain' (got '{tree.get('progress')}')")
    if not isinstance(tree.get("debug", False), bool):
        raise ConfigError(f"debug must be true or false (got {tree.get('debug')!r})")


def _check_process_seed(seed: int, env: EnvSettings) -> None:
    """Env processes (env=unity, env.subprocess=true) get seed + their index in ML-Agents' handshake, an int32."""
    if (env.name == "unity" or env.subprocess) and seed >= INT32 - env.num_envs:
        raise ConfigError(
            f"seed must be below 2**31 - env.num_envs = {INT32 - env.num_envs} with env processes: ML-Agents' "
            f"handshake carries seed + the env's index as a 32-bit integer (got {seed})"
        )


def validate(cfg: DictConfig | dict[str, Any], check_files: bool = True) -> RunConfig:
    """Turn the composed config into typed settings, or raise ConfigError naming the problem
    (``check_files=False``: except missing .demo files, for configs checked before a run)."""
    register_resolvers()  # run_id's ${mlx_job:} also resolves in sweep worker processes
    tree = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if isinstance(cfg, DictConfig) else dict(cfg)
    assert isinstance(tree, dict)
    numbers(tree.get("sweep"), "sweep")
    tree.pop("sweep", None)  # the search's settings, not the run's
    _check_top_level(tree)
    for key in ("stop_at_reward", "environment_parameters"):
        numbers(tree.get(key), key)
    trainer_tree = dict(tree.get("trainer") or {})
    trainer_type = trainer_tree.get("trainer_type")
    if trainer_type not in TRAINER_SETTINGS:
        raise ConfigError(f"unknown trainer.trainer_type '{trainer_type}'; available: {', '.join(TRAINER_SETTINGS)}")
    trainer, signals = typed_trainer(trainer_tree, "trainer", check_files)
    behaviors, behavior_signals = _behaviors(tree, trainer_tree, check_files)
    env = build(EnvSettings, tree.get("env"), "env")
    env.check()
    _check_process_seed(int(tree["seed"]), env)
    areas = env.num_areas * env.num_envs
    check_trainer(trainer, "trainer", agents=areas)
    for behavior, settings in behaviors.items():
        check_trainer(settings, f"behaviors.{behavior}", agents=areas)
    engine_settings = build(EngineSettings, tree.get("engine_settings"), "engine_settings")
    engine_settings.check()
    tracking = build(TrackingSettings, tree.get("tracking"), "tracking")
    tracking.check()
    torch_settings = build(TorchSettings, tree.get("torch_settings"), "torch_settings")
    torch_settings.check()
    environment_parameters = parse_environment_parameters(tree.get("environment_parameters"))
    modes = {name: build(cls, tree.get(name), name) for name, cls in MODE_SETTINGS.items()}
    for settings in modes.values():
        settings.check()
    return RunConfig(
        trainer=trainer,
        reward_signals=signals,
        env=env,
        engine_settings=engine_settings,
        tracking=tracking,
        torch_settings=torch_settings,
        run_id=str(tree["run_id"]),
        seed=int(tree["seed"]),
        results_dir=str(tree["results_dir"]),
        resume=bool(tree["resume"]),
        force=bool(tree["force"]),
        initialize_from=tree.get("initialize_from"),
        stop_at_reward=tree.get("stop_at_reward"),
        progress=str(tree.get("progress")),
        mode=str(tree.get("mode", "train")),
        resolved=tree,
        environment_parameters=environment_parameters,
        behaviors=behaviors,
        behavior_signals=behavior_signals,
        lesson=tree.get("lesson"),
        debug=bool(tree.get("debug", False)),
        **modes,
    )
