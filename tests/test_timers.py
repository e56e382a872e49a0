"""Hierarchical timers (mlx.training.timers) on a fake clock, and a real run's run_logs/timers.json: its
phases add up to the wall time, the statistics carry the split, debug=true logs and refines."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from pathlib import Path

import pytest

import mlx.training.timers as timers_module
from mlx.config import validate
from mlx.config.resume import changes
from mlx.errors import ConfigError
from mlx.training.timers import PHASE_STATS, PhaseWindow, Timers, describe_shares, timed
from tests.conftest import TINY_3DBALL, compose_tree, run_mlx


class Clock:
    """perf_counter for the timers module: moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(timers_module, "perf_counter", fake)
    return fake


# ---- the timer on its own ----------------------------------------------------------------------
def test_blocks_nest_count_and_total_and_self_time_is_what_children_leave(clock: Clock) -> None:
    t = Timers()
    for _ in range(3):
        with t.block("act"):
            clock.tick(1.0)
            with t.block("process_trajectory"):
                clock.tick(0.5)
    with t.block("update"):
        clock.tick(2.0)
        with t.block("act"):  # the same name elsewhere is another node
            clock.tick(0.25)
    clock.tick(0.75)  # the root's own time
    tree = t.as_json()
    assert tree["name"] == "root" and tree["count"] == 1
    assert tree["total"] == pytest.approx(7.5) and tree["self"] == pytest.approx(0.75)
    act = tree["children"]["act"]
    assert (act["count"], act["total"], act["self"]) == (3, pytest.approx(4.5), pytest.approx(3.0))
    assert act["children"]["process_trajectory"] == {"total": 1.5, "count": 3, "self": 1.5}
    assert "children" not in act["children"]["process_trajectory"]
    update = tree["children"]["update"]
    assert update["self"] == pytest.approx(2.0) and update["children"]["act"]["total"] == pytest.approx(0.25)


def test_a_block_is_reentrant_and_made_once_per_name(clock: Clock) -> None:
    t = Timers()
    block = t.block("x")
    assert t.block("x") is block and t.nested("a", "b") is t.nested("a", "b")
    with block:
        clock.tick(1.0)
        with block:
            clock.tick(2.0)
    outer = t.root.children["x"]
    assert (outer.total, outer.count) == (3.0, 1)
    assert (outer.children["x"].total, outer.children["x"].count) == (2.0, 1)


def test_nested_enters_a_path_and_add_records_time_measured_outside(clock: Clock) -> None:
    t = Timers()
    with t.nested("act", "3DBall"):
        clock.tick(1.5)
    t.add("setup", 4.0)
    assert t.root.children["act"].children["3DBall"].total == 1.5
    assert t.root.children["act"].total == 1.5
    assert (t.root.children["setup"].total, t.root.children["setup"].count) == (4.0, 1)


def test_a_failing_block_still_closes() -> None:
    t = Timers()
    with pytest.raises(ValueError), t.block("update"):
        raise ValueError("boom")
    assert t.root.children["update"].count == 1 and t.stack == [t.root] and t.starts == []


def test_gauges_keep_value_min_max_and_count() -> None:
    t = Timers()
    for value in (2.0, -1.0, 5.0, 3.0):
        t.gauge("3DBall.Environment.CumulativeReward.mean", value)
    assert t.as_json()["gauges"] == {
        "3DBall.Environment.CumulativeReward.mean": {"value": 3.0, "min": -1.0, "max": 5.0, "count": 4}
    }


def test_metadata_follows_ml_agents_layout() -> None:
    t = Timers()
    t.metadata["mlx_version"] = "9"
    meta = json.loads(t.dumps())["metadata"]
    assert meta["timer_format_version"] == "0.1.0" and meta["mlx_version"] == "9"
    assert int(meta["end_time_seconds"]) >= int(meta["start_time_seconds"]) > 0
    assert {"python_version", "command_line_arguments"} <= set(meta)


# ---- phases ------------------------------------------------------------------------------------
def test_each_second_counts_for_the_nearest_phase_once(clock: Clock) -> None:
    t = Timers()
    with t.block("get_steps"):
        clock.tick(1.0)
    with t.nested("act", "3DBall"):  # debug's per-behaviour child is still acting
        clock.tick(2.0)
        with t.block("process_trajectory"):  # a trajectory completed while acting is trajectory time
            clock.tick(3.0)
    with t.block("env_step"):
        clock.tick(4.0)
    with t.block("summary"):  # not a phase: "other"
        clock.tick(10.0)
    assert t.phase_seconds() == {"env": 5.0, "act": 2.0, "trajectory": 3.0, "update": 0.0}


def test_the_window_gives_shares_of_wall_time_since_it_restarted(clock: Clock) -> None:
    t = Timers()
    window = PhaseWindow(t, since=clock.now)
    with t.block("env_step"):
        clock.tick(2.0)
    with t.block("update"):
        clock.tick(1.0)
    clock.tick(1.0)  # untimed: other
    shares = window.shares(restart=True)
    assert shares == {"env": 0.5, "act": 0.0, "trajectory": 0.0, "update": 0.25, "other": 0.25}
    assert describe_shares(shares) == "env 50% act 0% traj 0% update 25%"
    with t.block("act"):
        clock.tick(3.0)
    clock.tick(1.0)
    assert window.shares() == {"env": 0.0, "act": 0.75, "trajectory": 0.0, "update": 0.0, "other": 0.25}


def test_timed_functions_time_into_the_activated_timers_of_their_thread(clock: Clock) -> None:
    @timed("process_trajectory")
    def work(x: int) -> int:
        clock.tick(1.0)
        return x + 1

    run = Timers()
    with run.activated():
        with run.block("act"):
            assert work(1) == 2
        seen: list[Timers] = []
        other = threading.Thread(target=lambda: (work(0), seen.append(timers_module.current())))
        other.start()
        other.join()
    assert work(2) == 3  # no run active: a throwaway tree
    assert run.root.children["act"].children["process_trajectory"].count == 1
    assert "process_trajectory" not in run.root.children  # neither the other thread's call nor the later one
    assert seen[0] is not run and timers_module.current() is not run


# ---- config ------------------------------------------------------------------------------------
def test_debug_is_a_boolean_and_an_operational_key() -> None:
    assert validate(compose_tree("debug=true")).debug is True
    assert validate(compose_tree()).debug is False
    with pytest.raises(ConfigError, match=r"debug must be true or false \(got 'maybe'\)"):
        validate({**compose_tree(), "debug": "maybe"})
    saved = compose_tree()
    assert changes(saved, {**saved, "debug": True}) == []  # resume=true debug=true changes no training setting


def test_debug_refuses_a_non_boolean_on_the_command_line_in_one_line(workdir: Path) -> None:
    proc = run_mlx("debug=maybe", "tracking=none", cwd=workdir, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "debug" in lines[0] and "maybe" in lines[0], proc.stderr
    assert not (workdir / "results").exists()


# ---- a real run --------------------------------------------------------------------------------
def compose_run(results: Path, *overrides: str):
    from hydra import compose, initialize_config_dir

    from mlx.config import CONF_DIR, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            "config",
            overrides=[*TINY_3DBALL, "tracking=none", f"results_dir={results}", "trainer.summary_freq=800", *overrides],
        )


def node_sum(node: dict, skip: tuple[str, ...] = ()) -> float:
    return sum(child["total"] for name, child in node.get("children", {}).items() if name not in skip)


@pytest.fixture(scope="module")
def debug_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One 4,000-step 3DBall PPO run with debug=true (updates every 400 steps), timed from outside; the
    records its mlx loggers emitted."""
    from mlx.training.run import run

    results = tmp_path_factory.mktemp("timers") / "results"
    cfg = compose_run(results, "run_id=dbg", "debug=true", "trainer.max_steps=4000", "trainer.checkpoint_interval=2000")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("mlx").addHandler(handler)
    try:
        start = time.perf_counter()
        run(cfg)
        wall = time.perf_counter() - start
    finally:
        logging.getLogger("mlx").removeHandler(handler)
    root = results / "dbg"
    return {
        "root": root,
        "wall": wall,
        "records": records,
        "timers": json.loads((root / "run_logs" / "timers.json").read_text()),
        "status": json.loads((root / "run_logs" / "training_status.json").read_text()),
        "rows": [json.loads(line) for line in (root / "run_logs" / "stats.jsonl").read_text().splitlines()],
    }


def test_timers_json_phases_add_up_to_the_root_and_the_root_to_the_wall_time(debug_run: dict) -> None:
    tree = debug_run["timers"]
    assert tree["name"] == "root" and tree["metadata"]["timer_format_version"] == "0.1.0"
    children = tree["children"]
    for phase in ("setup", "env_reset", "get_steps", "act", "env_step", "update", "summary", "final_save"):
        assert children[phase]["count"] >= 1, phase
    assert node_sum(tree) == pytest.approx(tree["total"], rel=0.1)
    assert tree["total"] == pytest.approx(debug_run["wall"], rel=0.1)  # the whole run(), measured outside
    # The loop's own blocks against the loop's own clock (training_status.json's time_elapsed).
    loop_seconds = debug_run["status"]["metadata"]["time_elapsed"]
    assert node_sum(tree, skip=("setup", "final_save")) == pytest.approx(loop_seconds, rel=0.1)
    steps = children["get_steps"]["count"]
    assert children["env_step"]["count"] == steps and children["act"]["count"] == steps  # once per step
    assert 5 <= children["update"]["count"] < 10  # 4,000 agent steps, buffer_size=400, none at max_steps
    assert children["checkpoint"]["count"] == 2 and children["final_save"]["children"]["checkpoint"]["count"] == 1


def test_debug_adds_a_block_per_behaviour_and_the_trainers_trajectory_blocks(debug_run: dict) -> None:
    children = debug_run["timers"]["children"]
    act = children["act"]["children"]["3DBall"]
    assert act["count"] == children["act"]["count"]
    assert act["children"]["process_trajectory"]["count"] > 0  # PPO's completed trajectories, while acting
    assert children["update"]["children"]["3DBall"]["count"] == children["update"]["count"]


def test_each_summary_records_the_split_and_the_gauges_keep_it(debug_run: dict) -> None:
    rows = debug_run["rows"]
    assert [r["step"] for r in rows] == [800, 1600, 2400, 3200, 4000]
    for row in rows:
        shares = [row[stat] for stat in PHASE_STATS.values()]
        assert all(0.0 <= s <= 1.0 for s in shares), row
        assert sum(shares) == pytest.approx(1.0, abs=1e-6)
        assert row["Timers/Env Step Fraction"] > 0 and row["Timers/Act Fraction"] > 0
        assert row["Timers/Trajectory Fraction"] > 0 and row["Timers/Update Fraction"] > 0
    gauges = debug_run["timers"]["gauges"]
    assert gauges["3DBall.Timers.UpdateFraction.mean"]["count"] == len(rows)
    assert gauges["3DBall.Environment.CumulativeReward.mean"]["value"] == rows[-1]["Environment/Cumulative Reward"]


def test_debug_logs_each_update_and_each_summarys_split(debug_run: dict) -> None:
    messages = [r.getMessage() for r in debug_run["records"] if r.levelno == logging.DEBUG]
    updates = [m for m in messages if re.match(r"\[DEBUG\] 3DBall\. Update at step \d+: \d+\.\d{3} s, after ", m)]
    splits = [m for m in messages if re.search(r"Time split since the last summary: env \d+% act \d+% traj", m)]
    assert len(updates) == debug_run["timers"]["children"]["update"]["count"] and len(splits) == 5
    assert logging.getLogger("mlx").level == logging.INFO  # as it was before the run (mlx.training.output)


def test_without_debug_timers_json_is_written_without_per_behaviour_blocks(tmp_path: Path) -> None:
    from mlx.training.run import run

    run(compose_run(tmp_path, "run_id=plain", "trainer.max_steps=800"))
    tree = json.loads((tmp_path / "plain" / "run_logs" / "timers.json").read_text())
    act = tree["children"]["act"]
    assert list(act["children"]) == ["process_trajectory"]  # straight under act: no behaviour block
    assert "children" not in tree["children"]["update"]


def test_the_progress_line_shows_the_split(tmp_path: Path) -> None:
    import torch

    from mlx.envs import make_env
    from mlx.tracking.tracker import Tracker
    from mlx.trainers.registry import make_trainer
    from mlx.training.callbacks import ProgressLine
    from mlx.training.loop import Loop
    from mlx.training.summaries import Progress, Summaries

    cfg = validate(compose_tree(*TINY_3DBALL, "trainer.max_steps=1200", "trainer.summary_freq=400"))
    env = make_env("3dball", 4, 0)
    name, spec = next(iter(env.behavior_specs.items()))
    trainer = make_trainer(name, spec, cfg.trainer, cfg.reward_signals, torch.device("cpu"), 0)
    stream = io.StringIO()
    progress = Progress(True, stream)
    progress.due = lambda: True  # type: ignore[method-assign]  # every step, not four times a second
    loop = Loop(
        env, {name: trainer}, {name: cfg.trainer}, Summaries(tmp_path / "s.jsonl", Tracker()), [ProgressLine(progress)]
    )
    loop.run()
    env.close()
    lines = [line for line in stream.getvalue().split("\r\x1b[2K") if line]
    assert all(re.search(r" \| env \d+% act \d+% traj \d+% update \d+%$", line) for line in lines), lines[:3]
    assert any(not line.endswith("update 0%") for line in lines)  # the updates show up
