"""`python -m mlx mode=watch run_id=<id>`: a trained policy plays, and its play becomes a GIF or MP4.

The policy (the run's newest checkpoint, or ``watch.policy=<file.pt|file.onnx>``, loaded as mode=evaluate
does) acts deterministically in ``watch.areas`` areas of the run's env (the env settings may be changed
as for mode=evaluate) until every area has ended ``watch.episodes`` episodes (or ``watch.max_frames``
frames). Each decision is one frame: the areas' pictures (``env.render()``) in a grid, each with a
caption giving its episode number, the running return and the last finished episode's return. Areas
reset as soon as an episode ends, so the frame after an ending shows the next episode's start. Native envs
draw themselves; Gymnasium envs (env=gym) are drawn by Gymnasium (made with render_mode="rgb_array" here;
classic-control ones need pygame).

The video goes to ``results/<run_id>/<Behavior>.gif`` (behaviours joined by "-" when the env has several),
or to ``watch.path``: ``.gif`` (Pillow, always there) or ``.mp4`` (H.264 through the ffmpeg binary the
optional ``imageio-ffmpeg`` package ships: ``pip install 'mlx[video]'``). Frames stream into the writer,
so memory holds one palette-indexed copy of a GIF (1 byte a pixel) and nothing of an MP4.
"""

from __future__ import annotations

import functools
import io
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
from omegaconf import DictConfig

from mlx.config import RunConfig, validate
from mlx.envs import ADAPTER_ENVS, NATIVE_ENVS
from mlx.envs.api import DecisionSteps, TerminalSteps
from mlx.envs.native.render import FLOOR, HEADING, TAG_COLOURS, UNTAGGED, VOID
from mlx.errors import RunError
from mlx.modes.policy import load_policy, policy_file
from mlx.tracking.attach import attach
from mlx.training.checkpoints import RunPaths, atomic_write
from mlx.training.output import say, warn
from mlx.training.setup import configure_process, open_env, seeded

MIN_SIDE = 256  # small pictures (GridWorld's 84 x 64 camera) are enlarged by a whole factor to about this
CAPTION = 14  # pixels of caption band under each area's picture
GAP = 4  # pixels between areas in the grid
GAP_COLOUR = (40, 40, 40)
TEXT_COLOUR = (235, 235, 235)


class Drawable(Protocol):
    """What watch needs of an env besides the mlx API: pictures, episodes begun per area, each agent's area
    (NativeEnv; GymEnv, which Gymnasium draws)."""

    episodes: np.ndarray

    def render(self, areas: np.ndarray) -> np.ndarray: ...

    def area_of(self, agent_ids: np.ndarray) -> np.ndarray: ...


class VideoWriter(Protocol):
    def add(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class GifWriter:
    """Frames to an animated GIF that loops. One palette for all frames, from the first frame plus the
    tag colours (so colours that appear later, e.g. a switch turning on, keep theirs); no dithering."""

    def __init__(self, path: Path, fps: int) -> None:
        self.path = path
        self.duration = max(10, round(1000 / fps / 10) * 10)  # GIF delays are whole hundredths
        self.frames: list[Any] = []
        self.palette: Any = None

    def add(self, frame: np.ndarray) -> None:
        from PIL import Image  # lazy for start-up speed (PIL)

        if self.palette is None:
            swatches = np.array([*TAG_COLOURS.values(), UNTAGGED, FLOOR, VOID, HEADING, GAP_COLOUR, TEXT_COLOUR])
            strip = np.repeat(swatches.astype(np.uint8)[None], 4, axis=0).repeat(4, axis=1)  # 4 x 4 pixels each
            width = max(frame.shape[1], strip.shape[1])
            sample = np.zeros((frame.shape[0] + 4, width, 3), np.uint8)
            sample[: frame.shape[0], : frame.shape[1]] = frame
            sample[frame.shape[0] :, : strip.shape[1]] = strip
            self.palette = Image.fromarray(sample).quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        self.frames.append(Image.fromarray(frame).quantize(palette=self.palette, dither=Image.Dither.NONE))

    def close(self) -> None:
        if not self.frames:
            raise RunError("no frame to write")
        buf = io.BytesIO()
        first, *rest = self.frames
        first.save(buf, format="GIF", save_all=True, append_images=rest, duration=self.duration, loop=0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, buf.getvalue())
        self.frames = []

    def abort(self) -> None:
        self.frames = []


class Mp4Writer:
    """Frames to an H.264 MP4 (yuv420p, which every player reads) through imageio-ffmpeg's ffmpeg binary;
    written beside the target and renamed into place when complete."""

    def __init__(self, path: Path, fps: int) -> None:
        try:
            import imageio_ffmpeg  # lazy for start-up speed (imageio_ffmpeg)
        except ImportError:
            raise RunError(
                f"watch.path={path} needs the imageio-ffmpeg package for MP4 (pip install 'mlx[video]', or "
                "pip install imageio-ffmpeg); or write a GIF: watch.path=<file>.gif"
            ) from None
        self.ffmpeg = imageio_ffmpeg
        self.path, self.fps = path, fps
        self.generator: Any = None
        self.size: tuple[int, int] | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(suffix=".mp4", dir=path.parent, prefix=f".{path.stem}-")
        os.close(fd)
        self.temp = Path(temp)

    def add(self, frame: np.ndarray) -> None:
        # yuv420p needs even sides: pad the bottom and right edges by a pixel where odd.
        frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
        if self.generator is None:
            self.size = (frame.shape[1], frame.shape[0])
            self.generator = self.ffmpeg.write_frames(
                str(self.temp), self.size, fps=self.fps, codec="libx264", pix_fmt_out="yuv420p",
                macro_block_size=1, quality=7, ffmpeg_log_level="error",
            )  # fmt: skip
            self.generator.send(None)
        self.generator.send(np.ascontiguousarray(frame).tobytes())

    def close(self) -> None:
        if self.generator is None:
            self.abort()
            raise RunError("no frame to write")
        self.generator.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.temp, 0o666 & ~umask)  # mkstemp's 0600 would make the video private, unlike the GIFs
        os.replace(self.temp, self.path)

    def abort(self) -> None:
        if self.generator is not None:
            self.generator.close()
        self.temp.unlink(missing_ok=True)


def open_writer(path: Path, fps: int) -> VideoWriter:
    if path.suffix.lower() == ".mp4":
        return Mp4Writer(path, fps)
    return GifWriter(path, fps)


def grid(pictures: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One frame from the areas' pictures [m, H, W, 3] (each enlarged by a whole factor when small, with a
    caption band below): a grid of ceil(sqrt(m)) columns. Returns the frame and each caption's corner."""
    m, h, w, _ = pictures.shape
    k = max(1, MIN_SIDE // max(h, w))
    if k > 1:
        pictures = pictures.repeat(k, axis=1).repeat(k, axis=2)
        h, w = h * k, w * k
    cols = math.ceil(math.sqrt(m))
    rows = math.ceil(m / cols)
    cell_h, cell_w = h + CAPTION + GAP, w + GAP
    cells = np.empty((rows * cols, cell_h, cell_w, 3), np.uint8)
    cells[...] = GAP_COLOUR
    cells[:m, :h, :w] = pictures
    cells[:m, h : h + CAPTION, :w] = VOID
    frame = cells.reshape(rows, cols, cell_h, cell_w, 3).transpose(0, 2, 1, 3, 4)
    frame = frame.reshape(rows * cell_h, cols * cell_w, 3)
    corners = [((i // cols) * cell_h + h, (i % cols) * cell_w) for i in range(m)]
    return frame[: rows * cell_h - GAP, : cols * cell_w - GAP], corners


@functools.cache
def _font() -> Any:
    from PIL import ImageFont  # lazy for start-up speed (PIL)

    return ImageFont.load_default(size=CAPTION - 3)


def caption(frame: np.ndarray, corners: list[tuple[int, int]], texts: list[str]) -> np.ndarray:
    """Write each area's caption into its band (Pillow's built-in font)."""
    from PIL import Image, ImageDraw  # lazy for start-up speed (PIL)

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = _font()
    for (row, col), text in zip(corners, texts, strict=True):
        draw.text((col + 3, row + 1), text, fill=TEXT_COLOUR, font=font)
    return np.asarray(image)


def watch_run(cfg: RunConfig) -> Path:
    """Play the run's policy in watch.areas areas and write the video; returns its path."""
    settings = cfg.watch
    drawable = {*NATIVE_ENVS, *ADAPTER_ENVS}
    if cfg.env.name not in drawable or cfg.env.subprocess:
        where = "in env processes (env.subprocess=true)" if cfg.env.subprocess else f"env={cfg.env.name}"
        raise RunError(
            f"mode=watch draws envs in this process ({', '.join(sorted(drawable))}); "
            f"{where} cannot be drawn: use mode=evaluate for its returns"
        )
    cfg.env.num_areas, cfg.env.num_envs = settings.areas, 1  # exactly the areas shown
    if cfg.env.name in ADAPTER_ENVS:  # Gymnasium draws only envs made for it, and training never asks
        cfg.env.kwargs = {**cfg.env.kwargs, "render_mode": "rgb_array"}
        # Off-screen pictures need no display: without this SDL (pygame) looks for one and complains.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    configure_process(cfg)
    paths = RunPaths.of(cfg)
    env, _ = open_env(cfg, paths.run_logs)
    try:
        policies = {
            name: load_policy(
                cfg, name, spec, policy_file(cfg, name, settings.policy, "watch.policy"), settings.deterministic
            )
            for name, spec in env.behavior_specs.items()
        }
    except BaseException:
        env.close()
        raise
    path = Path(settings.path) if settings.path else paths.root / f"{'-'.join(policies)}.gif"
    n = settings.areas
    drawn = cast(Drawable, env)  # a native or Gymnasium env: others are refused above
    # Per area: episodes ended (a group's episode in group envs: the env counts them), and the running and
    # last returns of its agents together, a group reward counted once (each agent in the group receives it).
    ended = np.zeros(n, np.int64)
    current = np.zeros(n)
    last = np.full(n, np.nan)
    returns: list[float] = []
    writer = open_writer(path, settings.fps)
    frames = 0
    try:
        env.reset()
        begun = drawn.episodes.copy()
        while True:
            steps = {name: env.get_steps(name) for name in policies}
            for _, terminal in steps.values():
                _add_rewards(current, drawn.area_of(terminal.agent_id), terminal)
            done = np.flatnonzero(drawn.episodes != begun)
            begun = drawn.episodes.copy()
            last[done] = current[done]
            returns += current[done].tolist()
            ended[done] += 1
            current[done] = 0.0
            decisions = {}
            for name, (decision, terminal) in steps.items():
                _add_rewards(current, drawn.area_of(decision.agent_id), decision)
                policies[name].forget(terminal.agent_id)
                decisions[name] = decision
            frame, corners = grid(drawn.render(np.arange(n)))
            texts = [
                f"ep {e + 1}  return {c:.2f}" + ("" if np.isnan(p) else f"  last {p:.2f}")
                for e, c, p in zip(ended.tolist(), current.tolist(), last.tolist(), strict=True)
            ]
            writer.add(caption(frame, corners, texts))
            frames += 1
            if (ended >= settings.episodes).all() or frames >= settings.max_frames:
                break
            for name, decision in decisions.items():
                if len(decision):
                    env.set_actions(name, policies[name].act(decision))
            env.step()
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        env.close()
    if (ended < settings.episodes).any():
        warn(
            f"[WARNING] Stopped at watch.max_frames={settings.max_frames} before every area ended "
            f"{settings.episodes} episode(s) (episodes ended per area: {ended.tolist()})",
        )
    summary = f"mean return {np.mean(returns):.3f} over {len(returns)} episodes" if returns else "no episode ended"
    kind = "deterministic" if settings.deterministic else "sampled"
    say(
        f"[INFO] Wrote {path}: {frames} frames of {n} area(s) at {settings.fps} fps ({kind} actions; {summary}).",
    )
    return path


def _add_rewards(current: np.ndarray, areas: np.ndarray, steps: DecisionSteps | TerminalSteps) -> None:
    """Add one step's rewards to each area's running return: every agent's own reward, and the group reward
    once an area (the largest an agent of the area received)."""
    np.add.at(current, areas, steps.reward)
    if steps.group_reward is not None and len(steps):
        paid = np.full(len(current), -np.inf)
        np.maximum.at(paid, areas, steps.group_reward)
        current += np.where(np.isfinite(paid), paid, 0.0)


def watch(dict_cfg: DictConfig) -> Path:
    """Entry point for mode=watch; the video is attached to the training's MLflow run too (watch/)."""
    cfg = seeded(validate(dict_cfg))
    path = watch_run(cfg)
    if cfg.tracking.backend == "mlflow":
        attach(RunPaths.of(cfg).root, cfg.tracking.uri, [(path, "watch")])
    return path
