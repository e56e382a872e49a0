"""What a run shows and keeps (issue 21): a final summary however short the run, the summary_freq warning,
run output through the mlx logger into run_logs/mlx.log, the start banner, and the progress line."""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

import pytest
import yaml

from mlx.training.loop import Callback, Loop
from mlx.training.summaries import SmoothedRate, duration, progress_text
from tests.conftest import TINY_3DBALL, run_mlx
from tests.test_training_loop import make_loop

SHORT = [*TINY_3DBALL, "tracking=none", "run_id=a", "trainer.summary_freq=50000"]
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "run_logs" / "stats.jsonl").read_text().splitlines()]


def logged(folder: Path) -> list[str]:
    """mlx.log's lines without their timestamps (lines inside a block have none)."""
    return [STAMP.sub("", line) for line in (folder / "run_logs" / "mlx.log").read_text().splitlines()]


# ---- the final summary (in the loop, with a scripted trainer) ----------------------------------------
def test_a_run_that_ends_between_two_summaries_summarises_its_last_step(tmp_path, capsys):
    loop = make_loop(tmp_path, max_steps=450, summary_freq=100)
    loop.run()
    step = loop.trainers["Basic"].step
    assert step == 452  # 4 agent steps a step: the first step at or past max_steps
    assert [r["step"] for r in rows_of(tmp_path)] == [100, 200, 300, 400, 452]
    assert capsys.readouterr().out.count("[INFO] Basic. Step: ") == 5


def test_a_run_ending_on_a_summary_step_has_no_second_summary_there(tmp_path):
    loop = make_loop(tmp_path, max_steps=400, summary_freq=100)
    loop.run()
    assert [r["step"] for r in rows_of(tmp_path)] == [100, 200, 300, 400]


def test_a_run_shorter_than_summary_freq_has_one_summary_at_its_end(tmp_path, capsys):
    loop = make_loop(tmp_path, max_steps=200, summary_freq=50000, reward=lambda step: 1.0)
    loop.run()
    assert [(r["step"], r["mean_reward"]) for r in rows_of(tmp_path)] == [(200, 1.0)]
    assert loop.last_reward["Basic"] == 1.0  # the run's result, as the final summary gives it
    assert "[INFO] Basic. Step: 200. " in capsys.readouterr().out


def test_an_interrupted_run_summarises_the_step_it_stopped_at(tmp_path):
    class Interrupt(Callback):
        def after_step(self, loop: Loop) -> None:
            if loop.trainers["Basic"].step == 140:
                loop.interrupt.set()

    loop = make_loop(tmp_path, [Interrupt()], max_steps=400, summary_freq=100)
    loop.interrupt = threading.Event()
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    assert [r["step"] for r in rows_of(tmp_path)] == [100, 140]


def rows_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "stats.jsonl").read_text().splitlines()]


# ---- the progress line ---------------------------------------------------------------------------------
def test_the_progress_line_shows_no_number_for_what_is_not_known_yet():
    text = progress_text("3DBall", 400, 20000, None, None, 3.2, "env 50%")
    assert text == "3DBall step 400/20000 [2%] — steps/s, ETA —, last mean reward —, 3s | env 50%"


def test_the_progress_line_has_the_time_left_at_the_smoothed_rate():
    text = progress_text("3DBall", 10000, 20000, 100.0, 1.5, 125.0, "env 50%")
    assert "100 steps/s, ETA 1m40s, last mean reward 1.50, 2m05s" in text
    assert duration(3 * 3600 + 7 * 60 + 5) == "3h07m" and duration(45.4) == "45s"


def test_the_rate_is_smoothed_rather_than_following_each_sample():
    rate = SmoothedRate(alpha=0.2)
    assert rate.add(0.0, 0) is None  # one sample: no rate yet
    assert rate.add(1.0, 1000) == pytest.approx(1000)
    assert rate.add(2.0, 1000 + 2000) == pytest.approx(0.2 * 2000 + 0.8 * 1000)  # a burst moves it a fifth


def test_the_live_line_of_a_run_has_eta_and_no_reward_before_its_first_summary(tmp_path):
    from mlx.training.callbacks import ProgressLine
    from mlx.training.summaries import Progress

    stream = io.StringIO()
    progress = Progress(True, stream)
    progress.due = lambda: True  # type: ignore[method-assign]  # every step, not four times a second
    make_loop(tmp_path, [ProgressLine(progress)], reward=lambda step: 2.0).run()
    lines = [line for line in stream.getvalue().split("\r\x1b[2K") if line]
    before = [line for line in lines if int(re.search(r"step (\d+)/", line)[1]) < 100]
    after = [line for line in lines if int(re.search(r"step (\d+)/", line)[1]) > 100]
    assert before and all("last mean reward —" in line for line in before)
    assert after and all("last mean reward 2.00" in line for line in after)
    assert all(re.search(r"\d+ steps/s, ETA (\d+[smh])+", line) for line in lines[1:]), lines[:3]


# ---- a real short run: banner, warning, final summary, mlx.log; its resume and its force=true ----------
def test_a_short_run_warns_summarises_once_and_logs_what_it_showed(workdir):
    proc = run_mlx(*SHORT, "trainer.max_steps=600", "seed=-1", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    assert out[0] == "mlx: starting run 'a' (training) ..."  # said before PyTorch loads
    folder = workdir / "results" / "a"
    banner = "\n".join(out[1:10])
    assert "[INFO] mlx " in out[1] and "run 'a' (new)" in out[1]
    seed = re.search(r"\[INFO\]   seed: +(\d+) \(drawn for seed=-1\)", banner)
    assert seed and yaml.safe_load((folder / "configuration.yaml").read_text())["seed"] == int(seed[1])
    for expected in (
        f"results:  {folder}",
        "env:      3dball, 4 areas",
        "trainers: 3DBall ppo",
        "tuned:    conf/tuned/3dball_ppo.yaml",
        "tracking: none",
        "device:   cpu",
    ):
        assert expected in banner, banner
    warning = "[WARNING] 3DBall. summary_freq (50000) exceeds max_steps (600): one summary at the end"
    assert out.count(warning) == 1
    summaries = [line for line in out if line.startswith("[INFO] 3DBall. Step: ")]
    assert len(summaries) == 1 and summaries[0].startswith("[INFO] 3DBall. Step: 600. ")
    assert [r["step"] for r in rows(folder)] == [600]
    assert (folder / "run_logs" / "3DBall_curves.png").is_file()
    # mlx.log holds every line the console showed from the banner on, in order, each stamped
    text = (folder / "run_logs" / "mlx.log").read_text()
    assert STAMP.match(text) and logged(folder) == out[1:]

    # resume to a longer max_steps: the final summary's step is kept once, the log goes on, debug lines too
    proc = run_mlx(*SHORT, "resume=true", "trainer.max_steps=1200", "debug=true", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["step"] for r in rows(folder)] == [600, 1200]
    lines = logged(folder)
    assert any("run 'a' (new)" in line for line in lines) and any("run 'a' (resuming)" in line for line in lines)
    assert any(line.startswith("[DEBUG] 3DBall. Update at step") for line in lines)

    # force=true: a new run, a new log (the old run's lines are gone, the new ones kept)
    proc = run_mlx(*SHORT, "force=true", "trainer.max_steps=300", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = logged(folder)
    assert "force=true" in lines[0] and not any("(resuming)" in line for line in lines)
    assert lines == proc.stdout.splitlines()[1:]
    assert [r["step"] for r in rows(folder)] == [300]


def test_evaluating_a_run_appends_what_it_showed_to_the_runs_log(workdir):
    """mode=evaluate (and watch, record) on a run: its console lines go on in the run's mlx.log."""
    proc = run_mlx(*SHORT, "trainer.max_steps=200", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    trained = logged(workdir / "results" / "a")
    proc = run_mlx(*SHORT, "mode=evaluate", "evaluate.episodes=3", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    evaluated = [line for line in proc.stdout.splitlines() if line.startswith("[INFO] 3DBall. Evaluated 3 episodes")]
    assert len(evaluated) == 1
    lines = logged(workdir / "results" / "a")
    assert lines[: len(trained)] == trained  # appended: the training's lines are kept
    assert lines[len(trained) :] == proc.stdout.splitlines()


def test_a_refused_start_leaves_the_existing_runs_log_alone(workdir):
    proc = run_mlx(*SHORT, "trainer.max_steps=200", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = workdir / "results" / "a" / "run_logs" / "mlx.log"
    before = log.read_text()
    refused = run_mlx(*SHORT, "trainer.max_steps=200", cwd=workdir)  # run_id taken: refused before any file
    assert refused.returncode == 2
    # force=true refused by the env (after the run_id was accepted, before the folder is cleared)
    failed = run_mlx(*SHORT, "force=true", "+env.parameters.nosuch=1", cwd=workdir)
    assert failed.returncode == 2 and "unknown environment parameter 'nosuch'" in failed.stderr
    assert log.read_text() == before


def test_the_error_that_ends_a_run_is_the_last_line_of_its_log(tmp_path):
    from mlx.errors import RunError
    from mlx.training.run import run
    from tests.test_timers import compose_run

    def hook(name: str, step: int, mean: float | None) -> bool:
        raise RunError("the sweep's store went away; start the sweep again")

    with pytest.raises(RunError):
        run(compose_run(tmp_path, "run_id=broken", "trainer.max_steps=1600"), on_summary=hook)
    lines = logged(tmp_path / "broken")
    assert lines[0].startswith("[INFO] mlx ") and "run 'broken' (new)" in lines[0]
    assert lines[-1] == "mlx: error: the sweep's store went away; start the sweep again"
