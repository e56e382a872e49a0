"""Curricula: ML-Agents' lesson advancement (progress, reward with smoothing, min_lesson_length), lesson
overrides and saved state, and refusal of malformed curricula at start-up."""

from __future__ import annotations

import numpy as np
import pytest

from mlx.config import ConfigError
from mlx.config.parameters import CompletionCriteria, parse_environment_parameters
from mlx.envs.native.ball3d import Ball3DEnv
from mlx.params.curriculum import EnvironmentParameterManager, need_increment


def lesson(value, behavior="B", measure="progress", threshold=0.5, min_lesson_length=0, **extra):
    criteria = {
        "behavior": behavior,
        "measure": measure,
        "threshold": threshold,
        "min_lesson_length": min_lesson_length,
    }
    return {"value": value, "completion_criteria": {**criteria, **extra}}


def manager(curriculum: list, lesson_override: int | None = None) -> EnvironmentParameterManager:
    params = parse_environment_parameters({"p": {"curriculum": curriculum}})
    return EnvironmentParameterManager(params, run_seed=0, lesson=lesson_override)


def test_progress_advances_past_the_threshold_after_min_lesson_length_episodes():
    m = manager([lesson(1.0, threshold=0.2, min_lesson_length=3), lesson(2.0, threshold=0.6), {"value": 3.0}])
    assert m.update({"B": 300}, {"B": 1000}) == ([], False)  # progress 0.3 but no episode yet
    m.record_rewards("B", np.array([0.0, 0.0]))
    assert m.update({"B": 300}, {"B": 1000}) == ([], False)  # 2 episodes < 3
    m.record_rewards("B", np.array([0.0]))
    assert m.update({"B": 300}, {"B": 1000}) == (["p"], False)
    assert m.lessons["p"] == 1 and m.current("p").value.constant == 2.0
    assert len(m.reward_buffers["B"]) == 0  # a lesson change empties the reward buffers
    assert m.update({"B": 600}, {"B": 1000}) == ([], False)  # "greater than": 0.6 is not past 0.6
    assert m.update({"B": 601}, {"B": 1000}) == (["p"], False)
    assert m.update({"B": 1000}, {"B": 1000}) == ([], False)  # the last lesson stays
    assert m.lesson_numbers() == {"p": 2} and m.completed()


def test_reward_measure_with_smoothing_follows_ml_agents_formula():
    criteria = CompletionCriteria("B", "reward", min_lesson_length=2, signal_smoothing=True, threshold=0.7)
    # Not enough episodes: no change, smoothing untouched.
    assert need_increment(criteria, 0.0, [1.0], 0.3) == (False, 0.3)
    # 0.25 * previous + 0.75 * mean: 0.25 * 0 + 0.75 * 0.8 = 0.6 < 0.7, then 0.25 * 0.6 + 0.75 * 0.8 = 0.75 > 0.7.
    done, smooth = need_increment(criteria, 0.0, [0.6, 1.0], 0.0)
    assert not done and smooth == pytest.approx(0.6)
    done, smooth = need_increment(criteria, 0.0, [0.6, 1.0], smooth)
    assert done and smooth == pytest.approx(0.75)
    raw = CompletionCriteria("B", "reward", min_lesson_length=2, signal_smoothing=False, threshold=0.7)
    assert need_increment(raw, 0.0, [0.6, 1.0], 0.0) == (True, 0.0)


def test_reward_curriculum_uses_the_last_min_lesson_length_episodes():
    m = manager(
        [lesson(1.0, measure="reward", threshold=0.5, min_lesson_length=4, signal_smoothing=False), {"value": 2}]
    )
    assert m.reward_buffers["B"].maxlen == 4
    m.record_rewards("B", np.array([-1.0, -1.0, -1.0, 0.9]))
    assert m.update({"B": 0}, {"B": 10}) == ([], False)  # mean -0.525
    m.record_rewards("B", np.array([0.9, 0.9, 0.9]))  # the last four: 0.9 each
    assert m.update({"B": 0}, {"B": 10}) == (["p"], False)
    m.record_rewards("Other", np.array([5.0]))  # behaviours no curriculum names are ignored
    assert "Other" not in m.reward_buffers


def test_smoothing_delays_a_reward_lesson_by_a_few_checks():
    m = manager([lesson(1.0, measure="reward", threshold=0.9, min_lesson_length=1), {"value": 2}])
    m.record_rewards("B", np.array([1.0]))
    checks = 0
    while not m.update({"B": 0}, {"B": 10})[0]:
        checks += 1
    # smoothed: 0.75, 0.9375 -> passes on the second check
    assert checks == 1


def test_require_reset_and_several_parameters():
    params = parse_environment_parameters(
        {
            "a": {"curriculum": [lesson(1.0, threshold=0.1, require_reset=True), {"value": 2.0}]},
            "b": {"curriculum": [lesson(1.0, behavior="C", threshold=0.1), {"value": 2.0}]},
            "c": 5.0,
        }
    )
    m = EnvironmentParameterManager(params, run_seed=0)
    assert m.update({"B": 2, "C": 0}, {"B": 10, "C": 10}) == (["a"], True)
    assert m.lesson_numbers() == {"a": 1, "b": 0}  # constants have no lesson number
    assert not m.completed()


def test_lesson_override_starts_later_clipped_to_the_last_lesson_and_state_round_trips():
    curriculum = [lesson(1.0, threshold=0.1), lesson(2.0, threshold=0.2), {"value": 3.0}]
    assert manager(curriculum, lesson_override=1).lessons["p"] == 1
    m = manager(curriculum, lesson_override=7)
    assert m.lessons["p"] == 2
    state = m.state()
    assert state == {"p": {"lesson_num": 2, "smoothing": 0.0}}  # ML-Agents' training_status layout
    fresh = manager(curriculum)
    assert fresh.load_state({**state, "B": {"checkpoints": []}, "metadata": {}}) == ["p"]
    assert fresh.lessons["p"] == 2


def test_apply_sends_constants_and_samplers_to_the_env():
    params = parse_environment_parameters(
        {
            "scale": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 2.0, "max_value": 3.0}},
            "mass": {"curriculum": [lesson(4.0, behavior="3DBall"), {"value": 5.0}]},
            "gravity": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 9.0, "max_value": 10.0}},
        }
    )
    m = EnvironmentParameterManager(params, run_seed=0)
    env = Ball3DEnv(num_areas=8, seed=0)
    m.check_behaviors(env.behavior_specs, "3dball")
    m.apply(env)
    assert env.parameters["mass"] == 4.0
    assert "scale" in env.parameters.samplers  # drawn per area by the env itself
    assert list(m.fallback) == ["gravity"]  # 3DBall's gravity is global: the run loop draws it each step
    before = env.parameters["gravity"]
    m.before_step(env)
    assert env.parameters["gravity"] != before and 9.0 <= env.parameters["gravity"] < 10.0
    with pytest.raises(ConfigError, match=r"completion_criteria.behavior: 'Nobody' is not a behaviour of env=3dball"):
        EnvironmentParameterManager(
            parse_environment_parameters({"mass": {"curriculum": [lesson(1.0, behavior="Nobody"), {"value": 2}]}}), 0
        ).check_behaviors(env.behavior_specs, "3dball")


@pytest.mark.parametrize(
    ("tree", "words"),
    [
        # thresholds out of order (progress only grows)
        (
            {"p": {"curriculum": [lesson(1, threshold=0.5), lesson(2, threshold=0.3), {"value": 3}]}},
            ["environment_parameters.p.curriculum[1].completion_criteria.threshold", "must not decrease"],
        ),
        # missing value
        (
            {"p": {"curriculum": [{"completion_criteria": lesson(1)["completion_criteria"]}, {"value": 2}]}},
            ["environment_parameters.p.curriculum[0].value is missing"],
        ),
        # unknown measure
        (
            {"p": {"curriculum": [lesson(1, measure="progres"), {"value": 2}]}},
            ["curriculum[0].completion_criteria.measure", "'progress' or 'reward'", "progres"],
        ),
        # a lesson but the last without completion criteria
        ({"p": {"curriculum": [{"value": 1}, {"value": 2}]}}, ["curriculum[0].completion_criteria is missing"]),
        # progress thresholds are fractions of max_steps
        ({"p": {"curriculum": [lesson(1, threshold=1.5), {"value": 2}]}}, ["threshold must be in [0, 1]"]),
        ({"p": {"curriculum": [lesson(1, min_lesson_length=-1), {"value": 2}]}}, ["min_lesson_length", ">= 0"]),
        (
            {"p": {"curriculum": [{"value": 1, "completion_criteria": {"measure": "reward"}}, {"value": 2}]}},
            ["completion_criteria.behavior is missing"],
        ),
        ({"p": {"curriculum": [lesson(1, treshold=0.2), {"value": 2}]}}, ["completion_criteria.treshold"]),
        ({"p": {"curriculum": []}}, ["non-empty list"]),
        ({"p": {"curriculum": [{"value": 1, "nmae": "x"}]}}, ["curriculum[0].nmae", "name, value"]),
        ({"p": {"curriculum": [{"value": {"curriculum": []}}]}}, ["cannot be a curriculum"]),
        ({"p": {"curriculum": [{"value": 1}], "extra": 1}}, ["environment_parameters.p.extra"]),
        # unknown sampler type, min > max inside a lesson
        (
            {"p": {"curriculum": [{"value": {"sampler_type": "beta", "sampler_parameters": {}}}]}},
            ["curriculum[0].value.sampler_type", "uniform"],
        ),
        (
            {"p": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 5, "max_value": 1}}},
            ["environment_parameters.p.sampler_parameters", "greater than max_value"],
        ),
        ({"p": "big"}, ["environment_parameters.p must be"]),
        ({"p": float("nan")}, ["finite"]),
    ],
)
def test_malformed_environment_parameters_are_refused_naming_the_key(tree, words):
    with pytest.raises(ConfigError) as info:
        parse_environment_parameters(tree)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_reward_thresholds_may_fall_between_lessons():
    # Later lessons are harder: a lower reward target is legitimate (only progress must grow).
    params = parse_environment_parameters(
        {
            "p": {
                "curriculum": [
                    lesson(1, measure="reward", threshold=0.9),
                    lesson(2, measure="reward", threshold=0.5),
                    {"value": 3},
                ]
            }
        }
    )
    assert len(params["p"].lessons) == 3


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["+behaviors.BigWallJump.max_stepz=100"], ["behaviors.BigWallJump.max_stepz"]),
        (["behaviors.SmallWallJump.max_steps=0"], ["behaviors.SmallWallJump.max_steps must be > 0"]),
        (["+behaviors.BigWallJump.trainer_type=dqn"], ["behaviors.BigWallJump.trainer_type 'dqn'", "ppo, sac"]),
        (["+behaviors.BigWallJump.hyperparameters.batch_size=4096"], ["behaviors.BigWallJump.hyperparameters"]),
        (["lesson=-1"], ["lesson must be a lesson number >= 0"]),
    ],
)
def test_per_behaviour_settings_and_lesson_are_validated(overrides, words):
    from mlx.config import validate
    from tests.conftest import compose_tree

    with pytest.raises(ConfigError) as info:
        validate(compose_tree("env=walljump", *overrides))
    for word in words:
        assert word in str(info.value), str(info.value)


def test_per_behaviour_settings_merge_over_trainer():
    from mlx.config import validate
    from tests.conftest import compose_tree

    cfg = validate(compose_tree("env=walljump", "+behaviors.BigWallJump.hyperparameters.learning_rate=0.001"))
    small, big = cfg.trainer_for("SmallWallJump"), cfg.trainer_for("BigWallJump")
    assert (small.max_steps, big.max_steps) == (5_000_000, 20_000_000)  # upstream's, from tuned/walljump_ppo
    assert big.hyperparameters.learning_rate == 0.001 and small.hyperparameters.learning_rate == 0.0003
    assert big.hyperparameters.batch_size == small.hyperparameters.batch_size == 128  # the rest is shared
    assert cfg.trainer_for("Other") is cfg.trainer


def test_a_lesson_with_require_reset_restarts_every_area_and_drops_partial_trajectories(tmp_path):
    from mlx.config import validate
    from mlx.training.run import Run
    from tests.conftest import compose_tree

    curriculum = (
        "+environment_parameters.scale={curriculum: [{value: 1.0, completion_criteria: {behavior: 3DBall, "
        "measure: progress, threshold: 0.3, require_reset: true}}, {value: 2.0}]}"
    )
    tree = compose_tree(
        "env=3dball",
        "env.num_areas=4",
        "trainer.max_steps=2000",
        "trainer.summary_freq=500",
        "trainer.hyperparameters.buffer_size=400",
        "trainer.hyperparameters.batch_size=50",
        "tracking=none",
        "progress=plain",
        f"results_dir={tmp_path}",
        curriculum,
    )
    job = Run(validate(tree))
    job.build()
    assert job.env is not None and job.parameters is not None
    resets: list[int] = []
    original_reset = job.env.reset
    trainer = job.trainers["3DBall"]
    original_forget = trainer.reset_trajectories
    forgotten: list[int] = []

    def counting_reset() -> None:
        resets.append(trainer.step)
        original_reset()

    def counting_forget() -> None:
        forgotten.append(trainer.step)
        original_forget()

    job.env.reset = counting_reset  # type: ignore[method-assign]
    trainer.reset_trajectories = counting_forget  # type: ignore[method-assign]
    job.prepare_folder()
    job.restore()
    job.start_tracking()
    job.train()
    job.close("FINISHED")
    assert len(resets) == 2 and resets[1] > 0.3 * 2000  # the start, then the lesson change
    assert forgotten == resets[1:]
    assert job.parameters.lessons["scale"] == 1 and job.env.parameters["scale"] == 2.0


def test_lesson_report_names_each_parameters_lesson_as_evaluation_json_records_it():
    m = manager([lesson(1.0, threshold=0.2), {"name": "Last", "value": 3.0}], lesson_override=5)  # clipped to 1
    assert m.lesson_report() == {"p": {"lesson": 1, "lesson_name": "Last", "value": m.current("p").value.describe()}}
    assert "3" in m.lesson_report()["p"]["value"]
    assert manager([lesson(1.0), {"value": 3.0}]).lesson_report()["p"]["lesson"] == 0
