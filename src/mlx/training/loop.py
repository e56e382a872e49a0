"""The collect/update loop of one run, short on purpose (CleanRL's shape): every behaviour acts, the env
steps, every behaviour learns when its trainer is ready and summarises every summary_freq steps.

Everything else a run does along the way (checkpoints, stop_at_reward, the progress line, curriculum
lessons, a sweep's report) is a `Callback` (Stable-Baselines3's idea), each in mlx.training.callbacks and
testable on its own. A callback overrides only the hooks it needs, and the loop calls only those: nothing
runs per step for a concern a run does not have.

The loop times its phases (mlx.training.timers): get_steps, env_step, env_reset (the env), act (each behaviour's
`process`: its policy; the trajectories it completes are process_trajectory inside it), update and
summary. With ``debug`` the act and update blocks get a child per behaviour, and each update is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mlx.config import TrainerSettings
from mlx.envs.api import BaseEnv, DecisionSteps, EnvError, TerminalSteps
from mlx.stat_names import IS_TRAINING
from mlx.trainers.base import RLTrainer
from mlx.trainers.groups import mixed_groups
from mlx.training.background import BackgroundUpdate
from mlx.training.summaries import Summaries
from mlx.training.timers import Timers

log = logging.getLogger(__name__)


class Callback:
    """A side concern of the loop. Hooks run at fixed points of every step, callbacks in the order given."""

    def before_env_step(self, loop: Loop) -> None:
        """Every step, once the actions are set and before env.step()."""

    def before_summary(self, loop: Loop, name: str) -> None:
        """Before behaviour ``name``'s statistics are summarised (a callback may add its own)."""

    def on_summary(self, loop: Loop, name: str, mean: float | None) -> None:
        """After a summary of ``name`` (``mean``: its mean episode reward, None when no episode ended); may end
        that behaviour (``loop.finished[name] = True``) or the whole run (``loop.stop = True``)."""

    def after_update(self, loop: Loop, name: str) -> None:
        """Every step, after behaviour ``name`` learnt (and summarised, when due)."""

    def after_step(self, loop: Loop) -> None:
        """Every step, after every behaviour's turn."""

    def on_end(self, loop: Loop) -> None:
        """When the loop ends (not when it is interrupted), before the final checkpoints."""

    def on_final_checkpoint(self, loop: Loop, name: str) -> None:
        """After ``name``'s final checkpoint is saved."""


def hooks(callbacks: Sequence[Callback], hook: str) -> list[Callable[..., Any]]:
    """The bound ``hook`` of the callbacks that override it, in order."""
    base = getattr(Callback, hook)
    return [getattr(cb, hook) for cb in callbacks if getattr(type(cb), hook) is not base]


class Loop:
    """One run's loop and the state its callbacks read and set."""

    def __init__(
        self,
        env: BaseEnv,
        trainers: Mapping[str, RLTrainer],
        settings: Mapping[str, TrainerSettings],
        summaries: Summaries,
        callbacks: Sequence[Callback] = (),
        interrupt: threading.Event | None = None,
        elapsed_before: float = 0.0,
        timers: Timers | None = None,
        debug: bool = False,
    ) -> None:
        self.env = env
        self.trainers = dict(trainers)
        self.settings = dict(settings)
        self.summaries = summaries
        self.callbacks = list(callbacks)
        self.interrupt = interrupt or threading.Event()  # Ctrl-C (deferred_interrupt), taken between steps
        self.elapsed_before = elapsed_before
        self.elapsed = elapsed_before  # seconds of training, earlier sessions of a resumed run included
        self.started = False  # set once the loop runs: before that there is nothing new to save
        self.stop = False  # set by a callback to end the run after this step
        self.finished = dict.fromkeys(self.trainers, False)  # behaviours a callback ended (stop_at_reward)
        # Groups spanning behaviours matter to POCA only (its critic reads groupmates), with several behaviours.
        self._check_groups = len(self.trainers) > 1 and any(s.trainer_type == "poca" for s in self.settings.values())
        self.last_reward: dict[str, float | None] = {}  # each behaviour's latest mean episode reward
        self.next_summary = {
            name: (tr.step // self.settings[name].summary_freq + 1) * self.settings[name].summary_freq
            for name, tr in self.trainers.items()
        }
        self._window: dict[str, tuple[float, int]] = {}  # per behaviour: (time, step) the rate is measured from
        # per behaviour: the step of its latest summary (a resumed run's start counts: its rows are kept)
        self.summarised = {name: tr.step for name, tr in self.trainers.items()}
        self._hooks = {name: hooks(self.callbacks, name) for name in vars(Callback) if not name.startswith("_")}
        self.timers = timers or Timers()
        t = self.timers  # the blocks of every step, made once; debug: a child per behaviour in act and update
        self._get_steps, self._env_step, self._summary = t.block("get_steps"), t.block("env_step"), t.block("summary")
        self._act = {name: t.nested("act", name) if debug else t.block("act") for name in self.trainers}
        self._update = {name: t.nested("update", name) if debug else t.block("update") for name in self.trainers}
        self.started_at = 0.0  # when run() began (perf_counter)
        self._last_update: dict[str, float] = {}  # debug's log: when each behaviour's last update ended
        self._background: dict[str, BackgroundUpdate] = {}  # threaded: the updates running now

    def call(self, hook: str, *args: Any) -> None:
        for fn in self._hooks[hook]:
            fn(self, *args)

    def steps_per_sec(self, name: str, restart: bool = False) -> float:
        """Agent steps per second of ``name`` since the last summary (``restart``: a summary starts now)."""
        now = time.perf_counter()
        t0, s0 = self._window[name]
        step = self.trainers[name].step
        if restart:
            self._window[name] = (now, step)
        return (step - s0) / max(now - t0, 1e-9)

    def run(self) -> None:
        """Until every behaviour reached its max_steps, a callback finished it, or a callback stops the run;
        `timed` code (trainers' trajectory processing) times into this loop's timers meanwhile."""
        with self.timers.activated():
            try:
                self._run()
            finally:  # an error or Ctrl-C: no thread may change a model while the run saves and exits
                for update in self._background.values():
                    update.thread.join()

    def _run(self) -> None:
        start = self.started_at = time.perf_counter()
        self._window = {name: (start, tr.step) for name, tr in self.trainers.items()}
        done = {name: tr.step >= self.settings[name].max_steps for name, tr in self.trainers.items()}
        after_update, after_step = self._hooks["after_update"], self._hooks["after_step"]
        with self.timers.block("env_reset"):
            self.env.reset()
        self.started = True
        while not all(done.values()):
            if self.interrupt.is_set():  # nothing is half-done between two steps
                self.settle()
                self.final_summaries()
                raise KeyboardInterrupt
            self.collect()
            self.elapsed = self.elapsed_before + time.perf_counter() - start
            for name, trainer in self.trainers.items():
                if self.learn(name, trainer):
                    for fn in after_update:
                        fn(self, name)
                    self.start_background(name, trainer)
                done[name] = trainer.step >= self.settings[name].max_steps or self.finished[name]
            if any(trainer.reset_requested for trainer in self.trainers.values()):
                self.settle()
                self.reset()
            for fn in after_step:
                fn(self)
            if self.stop:
                break
        self.settle()
        self.elapsed = self.elapsed_before + time.perf_counter() - start
        self.final_summaries()
        self.call("on_end")
        self.elapsed = self.elapsed_before + time.perf_counter() - start

    def final_summaries(self) -> None:
        """One more summary of each behaviour with steps since its latest one, at the step it stopped at
        (max_steps, stop_at_reward, Ctrl-C): a run shorter than summary_freq still records its result, and
        every run's record ends where its final checkpoint is."""
        for name, trainer in self.trainers.items():
            if trainer.step > self.summarised[name]:
                self.summarise(name, trainer)

    def reset(self) -> None:
        """A full env reset mid-run (self-play's team change): every area starts afresh and partial
        trajectories are dropped, as ML-Agents' trainer controller does."""
        with self.timers.block("env_reset"):
            self.env.reset()
        for trainer in self.trainers.values():
            trainer.reset_trajectories()

    def _refuse_mixed_groups(self, steps: dict[str, tuple[DecisionSteps, TerminalSteps]]) -> None:
        """A group spanning behaviours with different specs cannot be read by a POCA critic (trainers.groups)."""
        ids = {}
        for name, (decision, terminal) in steps.items():
            parts = [s.group_id for s in (decision, terminal) if s.group_id is not None]
            if parts:
                ids[name] = (np.concatenate(parts), self.trainers[name].spec)
        problem = mixed_groups(ids) if len(ids) > 1 else None
        if problem is not None:
            raise EnvError(problem)

    def collect(self) -> None:
        """One env step: every behaviour's agents act on what they see."""
        env = self.env
        with self._get_steps:
            steps = {name: env.get_steps(name) for name in self.trainers}
        if self._check_groups:
            self._refuse_mixed_groups(steps)
        for name, trainer in self.trainers.items():
            with self._act[name]:
                env.set_actions(name, trainer.process(*steps[name]))
        for fn in self._hooks["before_env_step"]:
            fn(self)
        with self._env_step:
            env.step()
            for stat in env.drain_stats():  # what the env reports itself (Unity's stats side channel)
                for trainer in self.trainers.values():
                    trainer.stats.add_env_stat(stat)

    def learn(self, name: str, trainer: RLTrainer) -> bool:
        """Update when the trainer is ready; summarise when a summary is due. False while a threaded update
        runs (``threaded``): the behaviour's summaries and callbacks wait for it; a threaded update starts
        after them (``start_background``)."""
        settings = self.settings[name]
        running = self._background.get(name)
        if running is not None:
            if not running.done():
                return False
            self._finish_background(name)
        if trainer.ready_to_update():
            if trainer.step >= settings.max_steps:  # it only acts while other behaviours train (ML-Agents)
                trainer.discard_experience()
            elif not settings.threaded:
                self._timed_update(name, trainer)
        self._summarise_if_due(name, trainer)
        return True

    def _summarise_if_due(self, name: str, trainer: RLTrainer) -> None:
        if trainer.step >= self.next_summary[name]:
            freq = self.settings[name].summary_freq
            self.next_summary[name] = (trainer.step // freq + 1) * freq
            self.summarise(name, trainer)

    def start_background(self, name: str, trainer: RLTrainer) -> None:
        """``threaded``: the update the trainer is ready for starts in its own thread."""
        if (
            self.settings[name].threaded
            and name not in self._background
            and not self.finished[name]
            and trainer.ready_to_update()
        ):
            self._background[name] = BackgroundUpdate(name, trainer)

    def _finish_background(self, name: str) -> None:
        """Join ``name``'s threaded update (the update block times the wait) and take in what waited."""
        with self._update[name]:
            self._background.pop(name).finish()

    def settle(self) -> None:
        """Finish every threaded update and make the summaries it made due (before a reset, the final
        summaries and checkpoints); no new one starts."""
        for name in list(self._background):
            self._finish_background(name)
            self._summarise_if_due(name, self.trainers[name])

    def summarise(self, name: str, trainer: RLTrainer) -> None:
        """Behaviour ``name``'s summary at its current step: console line, stats.jsonl row, tracker metrics."""
        settings = self.settings[name]
        rate = self.steps_per_sec(name, restart=True)
        self.summarised[name] = trainer.step
        # upstream's rule (step <= max_steps): 0 for a behaviour past max_steps that acts while others train
        trainer.stats.add(IS_TRAINING, float(trainer.step <= settings.max_steps))
        with self._summary:
            self.call("before_summary", name)
            mean = self.summaries.write(name, trainer.step, self.elapsed, rate, trainer.stats.summarise())
            if mean is not None:
                self.last_reward[name] = mean
            self.call("on_summary", name, mean)

    def _timed_update(self, name: str, trainer: RLTrainer) -> None:
        """The update block; debug logs how long it took and how long the experience took to collect (what
        ML-Agents' old --debug recorded per update)."""
        start = time.perf_counter()
        with self._update[name]:
            trainer.update()
        end = time.perf_counter()
        log.debug(
            "[DEBUG] %s. Update at step %d: %.3f s, after %.3f s of collecting since the previous one",
            name,
            trainer.step,
            end - start,
            start - self._last_update.get(name, self.started_at),
        )
        self._last_update[name] = end
