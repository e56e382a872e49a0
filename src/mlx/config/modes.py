"""Settings of the modes that act with a trained policy instead of training it (mode=evaluate, record,
watch); each checks its own fields."""

from __future__ import annotations

from dataclasses import dataclass

from mlx.config.checks import at_most, positive
from mlx.errors import ConfigError
from mlx.memory import check_watch

MAX_DEMO_NAME = 16  # Unity's DemonstrationRecorder limit (mlx.formats.demo.MAX_NAME)
MAX_WATCH_AREAS = 1024  # a 32 x 32 grid: more pictures would be too small to see in one video frame


@dataclass
class EvaluateSettings:
    """mode=evaluate: act with a trained policy (no learning) for `episodes` episodes per behaviour."""

    episodes: int = 100  # episodes per behaviour (or team's games) to average over
    policy: str | None = None  # a .pt checkpoint or .onnx policy; None: the run's newest checkpoint
    deterministic: bool = True  # the Gaussian's mean and the most likely discrete action
    max_steps: int = 1_000_000  # agent steps per behaviour before giving up (a policy may never end an episode)
    # Envs with several teams (self-play) play matches: `policy` plays `team` (null: the lowest team id) and
    # `opponent` every other team: "random", a .pt/.onnx file, or null (the run's newest policy); the episodes
    # counted are that team's games (mlx.modes.match).
    team: int | None = None
    opponent: str | None = None  # the other teams' player (see team): random, a .pt/.onnx file, or null

    def check(self) -> None:
        positive(self.episodes, "evaluate.episodes")
        positive(self.max_steps, "evaluate.max_steps")


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

    def check(self) -> None:
        positive(self.episodes, "record.episodes")
        positive(self.max_steps, "record.max_steps")
        if self.name is not None and len(self.name) > MAX_DEMO_NAME:
            raise ConfigError(
                f"record.name must be at most {MAX_DEMO_NAME} characters, Unity's limit on demonstration names "
                f"(got '{self.name}', {len(self.name)})"
            )
        if self.policy is not None and self.heuristic is not None:
            raise ConfigError("record.policy and record.heuristic both given: a recording has one actor, remove one")


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

    def check(self) -> None:
        for key in ("episodes", "areas", "fps", "max_frames"):
            positive(getattr(self, key), f"watch.{key}")
        at_most(self.areas, MAX_WATCH_AREAS, "watch.areas", "pictures in one video frame (a 32 x 32 grid)")
        check_watch(self.areas)
        if self.fps > 100:
            raise ConfigError(f"watch.fps must be at most 100 (got {self.fps}): GIF frame times are whole 10 ms")
        if self.path is not None and not self.path.lower().endswith((".gif", ".mp4")):
            raise ConfigError(f"watch.path must end in .gif or .mp4 (got '{self.path}')")
