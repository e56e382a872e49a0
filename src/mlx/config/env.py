"""Environment settings: which env runs, how many copies, and how its processes are reached (env=unity
and subprocess envs speak ML-Agents' gRPC protocol); engine_settings for Unity builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from mlx.config.checks import at_most, non_negative, positive
from mlx.errors import ConfigError
from mlx.memory import AREA_FIXED_BYTES, GYM_AREA_BYTES, check_areas, check_processes

# The longest wait for an env's message: beyond a day a wait is a hang, not patience.
MAX_TIMEOUT_S = 86400.0
# gRPC refuses messages of 2 GiB and more.
MAX_MESSAGE_MB = 2047.0


@dataclass
class EnvSettings:
    """Which environment to run and how many copies of its training area."""

    name: str = MISSING  # the env (set by the env group: env=3dball)
    num_areas: int = 12  # copies of the training area stepped together in one env
    parameters: dict[str, float] = field(default_factory=dict)  # native envs' environment parameters
    id: str | None = None  # env=gym: the registered Gymnasium id, e.g. CartPole-v1
    kwargs: dict[str, Any] = field(default_factory=dict)  # env=gym: keyword arguments of gymnasium.make
    # Copies of the env. Native envs: num_envs * num_areas areas in one vectorised env (fastest), or one
    # process each with subprocess=true. env=unity: that many executables, on consecutive ports.
    num_envs: int = 1
    subprocess: bool = False  # native envs: step each copy in its own `python -m mlx.envs.unity.remote` process
    # env=unity (ML-Agents' env_settings): the build to launch (null: wait for the Unity Editor) and its args.
    path: str | None = None
    env_args: list[str] = field(default_factory=list)  # command-line arguments given to the build
    base_port: int | None = None  # null: 5005 for executables, 5004 for the Editor; 0: any free ports
    timeout_wait: float = 60.0  # seconds to wait for an env's message before counting it as crashed
    max_lifetime_restarts: int = 10  # restarts of one crashed env over the run (-1: no limit)
    restarts_rate_limit_n: int = 1  # restarts of one env allowed per restarts_rate_limit_period_s (-1: no limit)
    restarts_rate_limit_period_s: float = 60.0  # seconds of the window that rate limit counts in
    bind: str = "127.0.0.1"  # address the trainer's gRPC servers listen on (0.0.0.0: envs on other hosts)
    max_message_mb: float = 64.0  # largest message an env may send (bigger ones end the run clearly)

    def check(self) -> None:
        """env.id and env.kwargs belong to env=gym (a Gymnasium env); native envs take env.parameters."""
        positive(self.num_areas, "env.num_areas")
        areas = self.num_areas * max(1, self.num_envs)
        what = f"{areas} areas (env.num_areas x env.num_envs)"
        fixed = GYM_AREA_BYTES if self.name == "gym" else AREA_FIXED_BYTES
        check_areas(areas, 1, "env.num_areas", self.num_areas, what, ConfigError, fixed)
        if self.name == "gym":
            if not self.id:
                raise ConfigError(
                    "env.id is required for env=gym: name a registered Gymnasium env, e.g. env=gym env.id=CartPole-v1"
                )
        elif self.id is not None or self.kwargs:
            key = "env.id" if self.id is not None else "env.kwargs"
            raise ConfigError(
                f"{key} is only for env=gym (Gymnasium envs); env={self.name} takes env.parameters instead: "
                f"remove {key}"
            )
        self.check_processes()

    def check_processes(self) -> None:
        """num_envs, and the settings of envs behind the gRPC protocol (env=unity, or subprocess=true)."""
        positive(self.num_envs, "env.num_envs")
        if self.name == "unity" or self.subprocess:
            check_processes(self.num_envs, f"{self.num_envs} env processes (each at least 50 MB)")
        if self.name != "unity" and (self.path is not None or self.env_args):
            key = "env.path" if self.path is not None else "env.env_args"
            raise ConfigError(
                f"{key} is only for env=unity (a Unity build or env process); remove it for env={self.name}"
            )
        if self.subprocess and self.name in ("unity", "gym"):
            raise ConfigError(
                f"env.subprocess=true is for native envs; env={self.name} "
                + ("always runs in its own processes" if self.name == "unity" else "steps in-process")
            )
        if self.name == "unity" and self.path is None and self.num_envs != 1:
            raise ConfigError(
                "env.path=null waits for the Unity Editor, which is one environment: set env.num_envs=1 or give "
                "env.path"
            )
        if self.base_port is not None and not 0 <= self.base_port <= 65535 - self.num_envs:
            raise ConfigError(
                f"env.base_port must leave room for env.num_envs={self.num_envs} ports below 65536 "
                f"(got {self.base_port})"
            )
        if self.base_port == 0 and self.name == "unity" and self.path is None:
            raise ConfigError("env.base_port=0 (any free port) needs env.path: the Editor connects to a known port")
        positive(self.timeout_wait, "env.timeout_wait")
        at_most(self.timeout_wait, MAX_TIMEOUT_S, "env.timeout_wait", "seconds to wait for an env's message; a day")
        positive(self.restarts_rate_limit_period_s, "env.restarts_rate_limit_period_s")
        positive(self.max_message_mb, "env.max_message_mb")
        at_most(self.max_message_mb, MAX_MESSAGE_MB, "env.max_message_mb", "gRPC messages stay below 2 GiB")
        for key in ("max_lifetime_restarts", "restarts_rate_limit_n"):
            if getattr(self, key) < -1:
                raise ConfigError(f"env.{key} must be >= 0, or -1 for no limit (got {getattr(self, key)})")


@dataclass
class EngineSettings:
    """ML-Agents' engine_settings, sent to Unity builds over the engine configuration side channel."""

    width: int = 84  # window width in pixels
    height: int = 84  # window height in pixels
    quality_level: int = 5  # Unity's quality level
    time_scale: float = 20.0  # simulation speed relative to real time
    target_frame_rate: int = -1  # frames per second Unity aims at (-1: unlimited)
    capture_frame_rate: int = 60  # fixed frames per second of simulated time (Unity's captureFramerate)
    no_graphics: bool = False  # launch builds with -nographics -batchmode
    # ML-Agents release 21+ (--no-graphics-monitor): with env.num_envs > 1, worker 0 keeps its graphics (a
    # window to watch) and the others run -nographics -batchmode; no_graphics=true still turns all off.
    no_graphics_monitor: bool = False

    def check(self) -> None:
        """What a Unity build can apply: a window size, a quality level and rates that make sense."""
        for key in ("width", "height"):
            positive(getattr(self, key), f"engine_settings.{key}")
            at_most(getattr(self, key), 16384, f"engine_settings.{key}", "pixels of the build's window")
        non_negative(self.quality_level, "engine_settings.quality_level")
        positive(self.time_scale, "engine_settings.time_scale")
        at_most(self.time_scale, 100, "engine_settings.time_scale", "Unity clamps Time.timeScale to 100")
        if self.target_frame_rate != -1 and self.target_frame_rate <= 0:
            raise ConfigError(
                f"engine_settings.target_frame_rate must be > 0, or -1 for no limit (got {self.target_frame_rate})"
            )
        non_negative(self.capture_frame_rate, "engine_settings.capture_frame_rate")
