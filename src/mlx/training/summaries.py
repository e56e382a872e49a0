"""What a run shows and records at each summary: the ML-Agents console line, stats.jsonl rows and tracker
metrics; and the live progress line a terminal shows between summaries."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from mlx.stat_names import ELO, GROUP_REWARD, IS_TRAINING, REWARD
from mlx.tracking.curves import row_score
from mlx.tracking.tracker import Tracker
from mlx.trainers.base import StatSummary
from mlx.training.output import say
from mlx.training.timers import Timers


class Progress:
    """A live status line on a TTY; nothing otherwise (summary lines are printed either way)."""

    def __init__(self, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.enabled = enabled
        self.stream = stream
        self._last = 0.0
        self._shown = False

    def due(self) -> bool:
        """True at most four times a second, and never when disabled: callers format text only then."""
        if not self.enabled:
            return False
        now = time.monotonic()
        if now - self._last < 0.25:
            return False
        self._last = now
        return True

    def update(self, text: str) -> None:
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False


class SmoothedRate:
    """Steps per second as an exponential moving average of the rate between successive samples (each
    weighs ``alpha``): a progress line's rate that neither jumps with each update nor restarts at each
    summary. None until two samples were taken."""

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha
        self.last: tuple[float, int] | None = None
        self.value: float | None = None

    def add(self, now: float, step: int) -> float | None:
        if self.last is not None and now > self.last[0]:
            rate = (step - self.last[1]) / (now - self.last[0])
            self.value = rate if self.value is None else self.alpha * rate + (1 - self.alpha) * self.value
        self.last = (now, step)
        return self.value


def duration(seconds: float) -> str:
    """A short duration for the progress line: 45s, 12m05s, 3h07m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress_text(
    name: str, step: int, max_steps: int, rate: float | None, reward: float | None, elapsed: float, split: str
) -> str:
    """The live line: progress, smoothed rate and the time left to max_steps at that rate, the latest
    summary's mean reward ("—" before the first one: no reward is known yet), time so far, time split."""
    left = max(max_steps - step, 0)
    if rate is None or rate <= 0:
        speed, eta = "— steps/s", "ETA —"
    else:
        speed, eta = f"{rate:.0f} steps/s", f"ETA {duration(left / rate)}"
    last = "—" if reward is None else f"{reward:.2f}"
    return (
        f"{name} step {step}/{max_steps} [{100 * step / max_steps:.0f}%] {speed}, {eta}, "
        f"last mean reward {last}, {duration(elapsed)} | {split}"
    )


class Summaries:
    """Turns trainer statistics into the ML-Agents console line, stats.jsonl rows and tracker metrics (the
    tracker derives them from the row: mlx.tracking.tracker.row_metrics). With ``timers``, each statistic's
    mean is also a gauge of timers.json, ``<Behavior>.<Stat>.mean`` with '/' as '.' and no spaces (ML-Agents'
    GaugeWriter names)."""

    def __init__(self, path: Path, tracker: Tracker, timers: Timers | None = None) -> None:
        self.path = path
        self.tracker = tracker
        self.timers = timers
        self.groups: set[str] = set()  # behaviours whose agents play in groups (a group reward was reported)

    def write(
        self, behavior: str, step: int, elapsed: float, steps_per_sec: float, stats: dict[str, StatSummary]
    ) -> float | None:
        """Print, append and log one summary; returns its score (``row_score``: the mean group reward of a
        group behaviour, else the mean episode reward; None: no episode ended)."""
        reward = stats.get(REWARD)
        group = stats.get(GROUP_REWARD)
        if group is not None:
            self.groups.add(behavior)
        head = f"[INFO] {behavior}. Step: {step}. Time Elapsed: {elapsed:.3f} s."
        learning = stats.get(IS_TRAINING)  # the loop records it at every summary
        training = "Training." if learning is None or learning.mean > 0 else "Not Training."
        if reward is None:
            say(f"{head} No episode was completed since last summary. {training}")
        else:
            elo = stats.get(ELO)  # self-play appends the rating (ML-Agents' console line)
            tail = "" if elo is None else f" ELO: {elo.mean:.3f}."
            if group is not None:  # ML-Agents' line for group behaviours
                say(f"{head} Mean Reward: {reward.mean:.3f}. Mean Group Reward: {group.mean:.3f}. {training}{tail}")
            else:
                say(f"{head} Mean Reward: {reward.mean:.3f}. Std of Reward: {reward.std:.3f}. {training}{tail}")
        row: dict[str, Any] = {
            "behavior": behavior,
            "step": step,
            "time_elapsed": round(elapsed, 3),
            "mean_reward": reward.mean if reward else None,
            "std_reward": reward.std if reward else None,
            "episodes": reward.count if reward else 0,
            "steps_per_sec": round(steps_per_sec, 1),
        }
        if behavior in self.groups:
            row["mean_group_reward"] = group.mean if group else None
        row.update({name: s.mean for name, s in sorted(stats.items())})
        if self.timers is not None:
            for name, s in stats.items():
                if math.isfinite(s.mean):
                    self.timers.gauge(f"{behavior}.{name}.mean".replace("/", ".").replace(" ", ""), float(s.mean))
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        # After the row is on disk: stats.jsonl is the record the tracker replays from when its store fails.
        self.tracker.log_summary(row)
        return row_score(row)
