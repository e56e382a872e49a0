"""The training loop and each of its callbacks on their own, with a scripted trainer on the Basic env."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlx.config import PPOSettings
from mlx.envs import make_env
from mlx.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.tracking.tracker import Tracker
from mlx.trainers.base import RLTrainer, StatsRecorder
from mlx.training.callbacks import CheckpointEvery, OnSummary, ProgressLine, StopAtReward, checkpoint_interval
from mlx.training.loop import Callback, Loop, hooks
from mlx.training.summaries import REWARD, Progress, Summaries

AREAS = 4  # Basic: one agent per area, so a step is 4 agent steps


class ScriptedTrainer(RLTrainer):
    """Counts steps, reports ``reward(step)`` as an episode's return at every step, updates every ``every``
    steps, and counts the updates it had to skip past max_steps."""

    def __init__(self, name: str, spec: BehaviorSpec, reward: Any = lambda step: 0.0, every: int = 40) -> None:
        # What the loop reads of a trainer; RLTrainer.__init__ would also build a module and experience.
        self.behavior_name, self.spec, self.step, self.stats = name, spec, 0, StatsRecorder()
        self.reward, self.every, self.updates, self.discarded = reward, every, 0, 0

    def build_module(self) -> None:
        raise NotImplementedError  # scripted: no network

    def _build_experience(self) -> None:
        raise NotImplementedError  # scripted: no experience

    def process(self, decision: DecisionSteps, terminal: TerminalSteps) -> ActionTuple:
        self.step += len(decision)
        self.stats.add(REWARD, self.reward(self.step))
        return self.spec.action_spec.empty(len(decision))

    def ready_to_update(self) -> bool:
        return self.step // self.every > self.updates

    def update(self) -> None:
        self.updates = self.step // self.every

    def discard_experience(self) -> None:
        self.updates = self.step // self.every
        self.discarded += 1

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = state["step"]


def make_loop(tmp_path, callbacks=(), start_step=0, **settings: Any) -> Loop:
    env = make_env("basic", AREAS, 0)
    reward = settings.pop("reward", lambda step: 0.0)
    trainer = ScriptedTrainer("Basic", env.behavior_specs["Basic"], reward)
    trainer.step = start_step
    s = PPOSettings(**{"max_steps": 400, "summary_freq": 100, **settings})
    return Loop(env, {"Basic": trainer}, {"Basic": s}, Summaries(tmp_path / "stats.jsonl", Tracker()), callbacks)


def test_the_loop_runs_to_max_steps_and_summarises_every_summary_freq(tmp_path, capsys):
    loop = make_loop(tmp_path)
    loop.run()
    trainer = loop.trainers["Basic"]
    assert trainer.step == 400 and trainer.updates == 10 and trainer.discarded == 1  # no update at max_steps
    rows = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [100, 200, 300, 400]
    assert capsys.readouterr().out.count("[INFO] Basic. Step: ") == 4


def test_only_the_hooks_a_callback_overrides_are_called():
    class Two(Callback):
        def after_step(self, loop: Loop) -> None: ...

        def on_end(self, loop: Loop) -> None: ...

    two = Two()
    assert hooks([two], "after_step") == [two.after_step] and hooks([two], "after_update") == []


def test_checkpoints_every_interval_continuing_the_schedule_of_a_resumed_run(tmp_path):
    saved: list[int] = []
    loop = make_loop(tmp_path, start_step=120, checkpoint_interval=100)
    trainer = loop.trainers["Basic"]
    every = CheckpointEvery(loop.settings, {"Basic": trainer.step}, lambda name, elapsed: saved.append(trainer.step))
    loop = Loop(loop.env, loop.trainers, loop.settings, loop.summaries, [every])
    loop.run()
    assert saved == [200, 300, 400]
    even = PPOSettings(max_steps=1000, keep_checkpoints=4, even_checkpoints=True, checkpoint_interval=7)
    assert checkpoint_interval(even) == 250 and checkpoint_interval(PPOSettings(checkpoint_interval=7)) == 7


def test_stop_at_reward_ends_a_behaviour_at_the_first_summary_that_reaches_it(tmp_path, capsys):
    stop = StopAtReward(0.5)
    loop = make_loop(tmp_path, [stop], max_steps=10_000, reward=lambda step: step / 1000)
    loop.run()
    step = loop.trainers["Basic"].step
    assert loop.finished["Basic"] and loop.last_reward["Basic"] >= 0.5 and step < 1000
    loop.call("on_final_checkpoint", "Basic")
    assert f"[INFO] Basic. Reached stop_at_reward=0.5 at step {step}." in capsys.readouterr().out


def test_stop_at_reward_waits_for_every_curriculum_to_reach_its_last_lesson(tmp_path):
    class Lessons:
        done = False

        def completed(self) -> bool:
            return self.done

    lessons = Lessons()
    stop = StopAtReward(0.5, lessons)  # type: ignore[arg-type]
    loop = make_loop(tmp_path, [stop], max_steps=2000, reward=lambda step: 1.0)
    loop.run()
    assert not loop.finished["Basic"] and loop.trainers["Basic"].step == 2000
    lessons.done = True
    stop.on_summary(loop, "Basic", 1.0)
    assert loop.finished["Basic"]


def test_an_on_summary_hook_sees_every_summary_and_stops_the_run(tmp_path, capsys):
    seen: list[tuple[str, int, float | None]] = []

    def hook(name: str, step: int, mean: float | None) -> bool:
        seen.append((name, step, mean))
        return len(seen) == 2

    loop = make_loop(tmp_path, [OnSummary(hook)], max_steps=1000)
    loop.run()
    assert [s for _, s, _ in seen] == [100, 200] and loop.stop and loop.trainers["Basic"].step == 200
    assert "[INFO] Basic. Stopped early at step 200 (on_summary)." in capsys.readouterr().out


def test_ctrl_c_is_taken_between_steps(tmp_path):
    class Interrupt(Callback):
        def after_step(self, loop: Loop) -> None:
            if loop.trainers["Basic"].step >= 40:
                loop.interrupt.set()

    loop = make_loop(tmp_path, [Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    assert loop.started and loop.trainers["Basic"].step == 40


def test_the_progress_line_shows_between_summaries_and_is_cleared_before_any_other_line(tmp_path):
    import io

    stream = io.StringIO()
    loop = make_loop(tmp_path, [ProgressLine(Progress(True, stream))])
    loop.run()
    shown = stream.getvalue()
    # no rate before two samples, no reward before the first summary: "—", never a number
    assert "Basic step 4/400 [1%] — steps/s, ETA —, last mean reward —," in shown
    assert shown.endswith("\r\x1b[2K")  # cleared when the loop ends
