"""The side concerns of a run's loop, one callback each (see mlx.training.loop.Callback)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from mlx.config import TrainerSettings
from mlx.params.curriculum import EnvironmentParameterManager
from mlx.training.loop import Callback, Loop
from mlx.training.output import say
from mlx.training.summaries import Progress, SmoothedRate, progress_text
from mlx.training.timers import PHASE_ORDER, PHASE_STATS, PhaseWindow, describe_shares

log = logging.getLogger(__name__)

# Called after each summary with (behaviour, step, mean reward or None when no episode ended); returning
# True ends the run there, final checkpoint saved, as stop_at_reward does. Sweeps use it to report to
# Optuna and to stop a pruned trial.
SummaryHook = Callable[[str, int, "float | None"], bool]


def checkpoint_interval(settings: TrainerSettings) -> int:
    """Steps between checkpoints: checkpoint_interval, or max_steps / keep_checkpoints with even_checkpoints."""
    if settings.even_checkpoints:
        return settings.max_steps // settings.keep_checkpoints
    return settings.checkpoint_interval


class CheckpointEvery(Callback):
    """A checkpoint of each behaviour every checkpoint_interval of its steps (save keeps keep_checkpoints).

    ``save(behaviour, elapsed)`` writes one; the schedule continues from the steps a resumed run starts at.
    """

    def __init__(
        self, settings: Mapping[str, TrainerSettings], steps: Mapping[str, int], save: Callable[[str, float], Path]
    ) -> None:
        self.every = {name: checkpoint_interval(s) for name, s in settings.items()}
        self.next = {name: (steps[name] // every + 1) * every for name, every in self.every.items()}
        self.save = save

    def after_update(self, loop: Loop, name: str) -> None:
        step = loop.trainers[name].step
        if step >= self.next[name]:
            self.next[name] = (step // self.every[name] + 1) * self.every[name]
            with loop.timers.block("checkpoint"):
                self.save(name, loop.elapsed)


class StopAtReward(Callback):
    """stop_at_reward: a behaviour is done once its latest mean reward reaches the threshold (a curriculum
    makes rewards fall between lessons, so the latest counts), and only once every curriculum is at its
    last lesson: the task, not an easier version. The run ends when every behaviour is done."""

    def __init__(self, threshold: float, parameters: EnvironmentParameterManager | None = None) -> None:
        self.threshold = threshold
        self.parameters = parameters

    def on_summary(self, loop: Loop, name: str, mean: float | None) -> None:
        last = loop.last_reward.get(name)
        loop.finished[name] = (
            last is not None and last >= self.threshold and (self.parameters is None or self.parameters.completed())
        )

    def on_final_checkpoint(self, loop: Loop, name: str) -> None:
        if loop.finished[name]:
            step = loop.trainers[name].step
            say(f"[INFO] {name}. Reached stop_at_reward={self.threshold} at step {step}.")


class OnSummary(Callback):
    """A caller's SummaryHook (a sweep's trial reporting to Optuna); True from it stops the run."""

    def __init__(self, hook: SummaryHook) -> None:
        self.hook = hook

    def on_summary(self, loop: Loop, name: str, mean: float | None) -> None:
        step = loop.trainers[name].step
        if self.hook(name, step, mean):
            say(f"[INFO] {name}. Stopped early at step {step} (on_summary).")
            loop.stop = True


class TrackingStart(Callback):
    """The MLflow run opens in the tracking process while training starts (a new store takes seconds to
    create); after each update, and at the end at the latest, ``started`` says so once it exists (it returns
    at once after that: Run.tracking_started)."""

    def __init__(self, started: Callable[[bool], bool]) -> None:
        self.started = started

    def after_update(self, loop: Loop, name: str) -> None:
        self.started(False)

    def on_end(self, loop: Loop) -> None:
        self.started(True)


class PhaseSplit(Callback):
    """Each summary records the loop's time split since the behaviour's previous summary as statistics
    (mlx.training.timers.PHASE_STATS: fractions of wall time, "Other" the rest), so it reaches stats.jsonl
    and the tracker like any other; debug also logs it with each phase's seconds."""

    def __init__(self) -> None:
        self.windows: dict[str, PhaseWindow] = {}

    def before_summary(self, loop: Loop, name: str) -> None:
        window = self.windows.get(name)
        if window is None:  # the first summary: the window the loop started
            window = self.windows[name] = PhaseWindow(loop.timers, since=loop.started_at)
        shares = window.shares(restart=True)
        stats = loop.trainers[name].stats
        for phase, stat in PHASE_STATS.items():
            stats.add(stat, shares[phase])
        if log.isEnabledFor(logging.DEBUG):
            seconds = loop.timers.phase_seconds()
            total = ", ".join(f"{p} {seconds[p]:.2f} s" for p in PHASE_ORDER)
            split = describe_shares(shares)
            log.debug("[DEBUG] %s. Time split since the last summary: %s; so far: %s", name, split, total)


class ProgressLine(Callback):
    """The live status line of a terminal (Progress), cleared before anything else is printed; it ends
    with the loop's time split since the last summary."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.window: PhaseWindow | None = None
        self.rates: dict[str, SmoothedRate] = {}

    def before_summary(self, loop: Loop, name: str) -> None:
        self.progress.clear()
        self.window = PhaseWindow(loop.timers)

    def after_update(self, loop: Loop, name: str) -> None:
        if self.progress.due():
            if self.window is None:
                self.window = PhaseWindow(loop.timers, since=loop.started_at)
            step, max_steps = loop.trainers[name].step, loop.settings[name].max_steps
            rate = self.rates.setdefault(name, SmoothedRate()).add(time.perf_counter(), step)
            reward, split = loop.last_reward.get(name), describe_shares(self.window.shares())
            self.progress.update(progress_text(name, step, max_steps, rate, reward, loop.elapsed, split))

    def on_end(self, loop: Loop) -> None:
        self.progress.clear()


class Curriculum(Callback):
    """environment_parameters: fresh draws each step, lesson numbers in every summary, and ML-Agents'
    reset_env_if_ready after each step (move curricula on, send the new values, reset if a lesson asks)."""

    def __init__(self, parameters: EnvironmentParameterManager, max_steps: Mapping[str, int]) -> None:
        self.parameters = parameters
        self.max_steps = dict(max_steps)

    def before_env_step(self, loop: Loop) -> None:
        self.parameters.before_step(loop.env)  # envs that take one value at a time

    def before_summary(self, loop: Loop, name: str) -> None:
        stats = loop.trainers[name].stats
        for param, number in self.parameters.lesson_numbers().items():
            stats.add(f"Environment/Lesson Number/{param}", number)

    def after_step(self, loop: Loop) -> None:
        params = self.parameters
        steps = {name: trainer.step for name, trainer in loop.trainers.items()}
        changed, must_reset = params.update(steps, self.max_steps)
        if not changed:
            return
        for name in changed:
            say(f"[INFO] {params.describe(name)}")
        params.apply(loop.env, changed)
        if must_reset:  # every area starts afresh with the new values; partial trajectories are dropped
            loop.reset()
