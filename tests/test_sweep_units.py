"""Sweeps and comparison, piece by piece, in-process: settings and search spaces, objectives, Optuna
bookkeeping (budget, dead workers, retries) on real storages, the run loop's on_summary hook, compare."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from mlx.config import ConfigError
from mlx.sweep.objective import Reporter, mean_reward_value, read_history, steps_to_reward_value
from mlx.sweep.settings import (
    ObjectiveSettings,
    check_storage_url,
    dimension_from_override,
    format_value,
    parse_search_space,
    parse_settings,
)
from mlx.sweep.study import (
    KILLED,
    RETRY_OF,
    RETRY_RUN_ID,
    RUN_ID,
    WORKER,
    budget,
    is_dead,
    open_storage,
    recover_dead_trials,
    worker_identity,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"trainer.hyperparameters.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}


def settings(**changes):
    node = {"study_name": "s", "search_space": SPACE, **changes}
    return parse_settings(node)


# ---- search spaces ------------------------------------------------------------------------------------
def test_search_space_flat_nested_and_shorthand_forms_agree():
    flat = parse_search_space(
        {
            "trainer.hyperparameters.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "trainer.hyperparameters.num_epoch": {"type": "int", "low": 1, "high": 6},
            "network": ["small", "large"],
        }
    )
    nested = parse_search_space(
        {
            "trainer": {
                "hyperparameters": {
                    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                    "num_epoch": {"type": "int", "low": 1, "high": 6},
                }
            },
            "network": {"type": "categorical", "choices": ["small", "large"]},
        }
    )
    assert [d.name for d in flat] == [d.name for d in nested]
    assert [d.distribution() for d in flat] == [d.distribution() for d in nested]
    lr, epochs, network = flat
    assert isinstance(lr.distribution(), optuna.distributions.FloatDistribution) and lr.distribution().log
    assert epochs.distribution() == optuna.distributions.IntDistribution(1, 6)
    assert network.distribution() == optuna.distributions.CategoricalDistribution(["small", "large"])
    assert network.override("large") == "network=large"


@pytest.mark.parametrize(
    ("space", "words"),
    [
        ({}, ["search_space is empty"]),
        (None, ["search_space is empty"]),
        ({"a.b": 0.3}, ["a.b", "list of choices"]),
        ({"a.b": {"type": "gaussian"}}, ["a.b.type", "float, int, categorical"]),
        ({"a.b": {"type": "float", "low": 1.0, "high": 1.0}}, ["low must be below high"]),
        ({"a.b": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, ["log: true needs low > 0"]),
        ({"a.b": {"type": "float", "low": 0.0, "high": 1.0, "lo": 2}}, ["unknown key", "a.b.lo", "low"]),
        ({"a.b": {"type": "int", "low": 0.5, "high": 3}}, ["a.b.low", "integer"]),
        ({"a.b": {"type": "categorical", "choices": []}}, ["a.b.choices", "non-empty"]),
        ({"a.b": [1, 2], "a": {"b": [3]}}, ["'a.b' is searched twice"]),
    ],
)
def test_search_space_mistakes_are_one_clear_line(space, words):
    with pytest.raises(ConfigError) as err:
        parse_search_space(space)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_command_line_sweeps_become_dimensions():
    parser = OverridesParser.create()
    dims = {
        s: dimension_from_override(parser.parse_override(s))
        for s in (
            "a=1,2,3",
            "b=choice(x,y)",
            "c=range(2,10,2)",
            "d=interval(0.1,0.3)",
            "e=tag(log,interval(1e-5,1e-2))",
        )
    }
    assert dims["a=1,2,3"].choices == (1, 2, 3)
    assert dims["b=choice(x,y)"].choices == ("x", "y")
    assert dims["c=range(2,10,2)"].distribution() == optuna.distributions.IntDistribution(2, 8, step=2)
    assert dims["d=interval(0.1,0.3)"].distribution() == optuna.distributions.FloatDistribution(0.1, 0.3)
    assert dims["e=tag(log,interval(1e-5,1e-2))"].distribution().log


@pytest.mark.parametrize("value", [3e-4, 1.0000000000000002e-05, 7, True, None, "large", "a b", "it's", "null"])
def test_values_survive_hydra_override_grammar(value):
    override = OverridesParser.create().parse_override(f"k={format_value(value)}")
    assert override.value() == value


# ---- settings ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"direction": "maximise"}, ["sweep.direction", "maximize or minimize", "maximise"]),
        ({"direction": "minimize"}, ["sweep.direction", "use direction maximize"]),
        ({"sampler": "annealing"}, ["sweep.sampler.type", "tpe, cmaes, random, gp"]),
        ({"pruner": {"type": "median", "patience": 3}}, ["unknown key 'sweep.pruner.patience'"]),
        ({"pruner": "percentile"}, ["sweep.pruner.type", "median, successive_halving, hyperband, none"]),
        ({"objective": {"type": "steps_to_reward"}}, ["sweep.objective.target"]),
        ({"objective": "area"}, ["sweep.objective.type", "mean_reward, steps_to_reward"]),
        ({"n_trials": 0}, ["sweep.n_trials", ">= 1"]),
        ({"storage": "nosuch://x"}, ["sweep.storage", "nosuch", "sqlite:///optuna.db"]),
        ({"storage": "not a url"}, ["sweep.storage", "not a storage URL"]),
        ({"storage": "sqlite://"}, ["sweep.storage", "names no file"]),
        ({"storage": "journal://host/x.log"}, ["sweep.storage", "no host"]),
        ({"study_name": "a b"}, ["sweep.study_name"]),
        ({"n_trail": 3}, ["unknown key 'sweep.n_trail'", "n_trials"]),
        ({"stale_after": 10, "heartbeat_interval": 20}, ["sweep.stale_after", "twice"]),
    ],
)
def test_settings_mistakes_are_one_clear_line(changes, words):
    with pytest.raises(ConfigError) as err:
        settings(**changes)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_settings_defaults_and_shorthands():
    s = settings(sampler="random", pruner="none", objective={"type": "steps_to_reward", "target": 90})
    assert (s.sampler.type, s.pruner.type, s.direction) == ("random", "none", "minimize")
    assert s.storage == "sqlite:///optuna.db" and s.n_trials == 20 and s.n_jobs == 1
    for url in ("sqlite:///optuna.db", "postgresql://u:p@127.0.0.1:5432/db", "journal:///optuna.log", "journal:x.log"):
        assert check_storage_url(url) == url


def test_journal_storage_opens_relative_and_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for url, path in (("journal:///rel.log", tmp_path / "rel.log"), (f"journal:///{tmp_path}/abs.log", None)):
        storage = open_storage(url)
        optuna.create_study(storage=storage, study_name="j").optimize(lambda t: t.suggest_float("x", 0, 1), 2)
        assert (path or tmp_path / "abs.log").exists()


@pytest.mark.parametrize(
    ("sampler", "pruner"), [("tpe", "median"), ("cmaes", "successive_halving"), ("random", "hyperband"), ("gp", "none")]
)
def test_every_sampler_and_pruner_runs_a_study(sampler, pruner):
    """Each option the settings accept builds and drives a real study (CMA-ES needs cmaes, GP scipy)."""
    from mlx.config.sweep import PrunerSettings, SamplerSettings
    from mlx.sweep.study import make_pruner, make_sampler

    study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler(SamplerSettings(type=sampler, seed=1, n_startup_trials=2), seed_offset=0),
        pruner=make_pruner(PrunerSettings(type=pruner, n_startup_trials=1), summary_freq=10, max_steps=40),
    )
    space = {"x": optuna.distributions.FloatDistribution(-1, 1), "n": optuna.distributions.IntDistribution(1, 4)}
    for _ in range(4):
        trial = study.ask(space)
        value = -(trial.params["x"] ** 2) + trial.params["n"]
        for step in (10, 20, 30, 40):
            trial.report(value * step / 40, step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, value)
    assert len(study.trials) == 4 and all(t.state.is_finished() for t in study.trials)
    expected = {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner}
    assert isinstance(study.pruner, expected.get(pruner, optuna.pruners.BasePruner))


# ---- objectives ----------------------------------------------------------------------------------------
def test_mean_reward_averages_the_last_summaries_that_saw_episodes():
    history = {"A": [(1, 1.0), (2, None), (3, 3.0), (4, 5.0)], "B": [(1, 2.0), (2, 4.0)]}
    assert mean_reward_value(history, 2) == pytest.approx(((3 + 5) / 2 + (2 + 4) / 2) / 2)
    assert mean_reward_value({"A": [(1, None)]}, 3) is None


def test_steps_to_reward_counts_steps_or_charges_the_shortfall():
    assert steps_to_reward_value({"A": [(100, 10.0), (200, 95.0), (300, 99.0)]}, 90, 1000) == 200
    # never reached: max_steps * (1 + (90 - 45) / 90)
    assert steps_to_reward_value({"A": [(100, 10.0), (200, 45.0)]}, 90, 1000) == pytest.approx(1500)
    assert steps_to_reward_value({"A": [(100, None)]}, 90, 1000) == pytest.approx(2000)
    # the slowest behaviour decides
    two = {"A": [(100, 95.0)], "B": [(100, 50.0), (300, 91.0)]}
    assert steps_to_reward_value(two, 90, 1000) == 300


def test_reporter_reports_each_summary_and_stops_when_pruned():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    first = study.ask()
    for step, value in ((100, 5.0), (200, 6.0), (300, 7.0)):
        first.report(value, step)
    study.tell(first, 7.0)
    trial = study.ask()
    reporter = Reporter(ObjectiveSettings(last_n=1), 300, trial)
    assert reporter("A", 100, 5.0) is False  # equal to the median at step 100: kept
    assert not reporter.pruned
    # Optuna's median rule: the trial's best value so far (5.0) is below the median at step 200 (6.0)
    assert reporter("A", 200, 1.0) is True
    assert reporter.pruned and not reporter.reached
    assert study.trials[trial.number].intermediate_values == {100: 5.0, 200: 1.0}


def test_reporter_stops_at_target_without_pruning():
    reporter = Reporter(ObjectiveSettings(type="steps_to_reward", target=2.0), 1000)
    assert reporter("A", 100, 1.0) is False
    assert reporter("A", 200, 2.5) is True
    assert reporter.reached and not reporter.pruned and reporter.value() == 200


def test_read_history_skips_rows_after_the_checkpoint_and_torn_lines(tmp_path):
    stats = tmp_path / "stats.jsonl"
    stats.write_text(
        '{"behavior": "A", "step": 100, "mean_reward": 1.0}\n'
        '{"behavior": "A", "step": 200, "mean_reward": null}\n'
        '{"behavior": "A", "step": 300, "mean_reward": 3.0}\n{"behav'
    )
    assert read_history(stats, 200) == {"A": [(100, 1.0), (200, None)]}
    assert read_history(tmp_path / "missing.jsonl") == {}


# ---- workers, budget, retries ---------------------------------------------------------------------------
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_trial_is_dead_when_its_local_process_is_gone_or_its_heartbeat_is_stale():
    me = worker_identity()
    study = optuna.create_study()
    trial = study.ask()
    frozen = lambda worker: optuna.trial.FrozenTrial(  # noqa: E731
        number=trial.number,
        state=optuna.trial.TrialState.RUNNING,
        value=None,
        datetime_start=None,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={WORKER: worker},
        intermediate_values={},
        trial_id=0,
    )
    now = time.time()
    assert not is_dead(frozen({**me, "heartbeat": 0.0}), 60, me, now)  # our own
    assert is_dead(frozen({**me, "pid": dead_pid(), "heartbeat": now}), 60, me, now)  # gone at once
    other = {"host": "elsewhere", "pid": 1, "start": None}
    assert not is_dead(frozen({**other, "heartbeat": now - 30}), 60, me, now)
    assert is_dead(frozen({**other, "heartbeat": now - 61}), 60, me, now)


def test_dead_trials_are_failed_once_and_retried_with_their_params(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study = optuna.create_study(storage=storage, study_name="r", direction="maximize")
    study_id = storage.get_study_id_from_name("r")
    done = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study.tell(done, 1.0)
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    dead_id = storage.get_trial_id_from_study_id_trial_number(study_id, dead.number)
    storage.set_trial_system_attr(dead_id, WORKER, {**worker_identity(), "pid": dead_pid(), "heartbeat": time.time()})
    storage.set_trial_user_attr(dead_id, RUN_ID, "r-trial1")
    me = worker_identity()
    assert budget(study.get_trials(), 3) == (1, 0)
    assert recover_dead_trials(study, storage, study_id, 120, me) == [dead.number]
    assert recover_dead_trials(study, storage, study_id, 120, me) == []  # claimed once only
    trials = study.get_trials()
    assert trials[dead.number].state == optuna.trial.TrialState.FAIL and trials[dead.number].user_attrs[KILLED]
    retry = trials[-1]
    assert retry.state == optuna.trial.TrialState.WAITING
    assert retry.user_attrs == {RETRY_OF: dead.number, RETRY_RUN_ID: "r-trial1"}
    assert retry.system_attrs["fixed_params"] == {"x": dead.params["x"]}
    # the retry takes the dead trial's slot: still one new trial allowed, and one waiting
    assert budget(trials, 3) == (1, 1)


# ---- the run loop's hook ------------------------------------------------------------------------------------
def test_on_summary_hook_sees_every_summary_and_can_stop_the_run(tmp_path, monkeypatch):
    from mlx.training.run import run
    from tests.conftest import compose_tree

    monkeypatch.chdir(tmp_path)
    tree = compose_tree(
        "env.num_areas=2",
        "trainer.hyperparameters.buffer_size=200",
        "trainer.hyperparameters.batch_size=50",
        "trainer.summary_freq=200",
        "trainer.max_steps=5000",
        "tracking=none",
        "progress=plain",
    )
    seen = []

    def hook(behavior: str, step: int, mean: float | None) -> bool:
        seen.append((behavior, step, mean))
        return step >= 600

    run(tree, on_summary=hook)
    assert [s[:2] for s in seen] == [("3DBall", 200), ("3DBall", 400), ("3DBall", 600)]
    rows = (tmp_path / "results" / "test" / "run_logs" / "stats.jsonl").read_text().splitlines()
    assert len(rows) == 3  # stopped at the third summary, not at max_steps
    assert (tmp_path / "results" / "test" / "3DBall" / "3DBall-600.pt").exists()


# ---- compare --------------------------------------------------------------------------------------------------
def curve(name, seed, lr, values, steps=None):
    from mlx.tracking.compare import RunCurve

    steps = steps or [100 * (i + 1) for i in range(len(values))]
    params = {"seed": str(seed), "run_id": name, "trainer.hyperparameters.learning_rate": lr, "env.name": "3dball"}
    return RunCurve(name, name, params, {}, np.array(steps), np.array(values, dtype=float))


def test_compare_groups_seeds_labels_by_what_differs_and_tabulates(tmp_path):
    from mlx.tracking.compare import group_runs, plot, table

    runs = [
        curve("a1", 1, "0.0001", [0.0, 1.0, 2.0]),
        curve("a2", 2, "0.0001", [0.0, 3.0, 4.0]),
        curve("b1", 1, "0.003", [1.0, 5.0, 9.0]),
        curve("b2", 2, "0.003", [1.0, 5.0], steps=[100, 200]),  # stopped early
    ]
    groups = sorted(group_runs(runs), key=lambda g: g.label)
    assert [g.label for g in groups] == ["learning_rate=0.0001", "learning_rate=0.003"]
    assert groups[0].final_stats() == pytest.approx((3.0, 1.0))
    steps, mean, low, high = groups[1].curve()
    assert list(steps) == [100, 200, 300] and list(mean) == [1.0, 5.0, 9.0]
    assert list(low) == [1.0, 5.0, 9.0]  # only one run left at 300: the band closes
    text = table(groups, "Environment/Cumulative Reward", 1)
    lines = text.splitlines()
    assert lines[2].startswith("learning_rate=0.003") and "7.000 ± 2.000" in lines[2]  # finals 9 and 5
    assert "3.000 ± 1.000" in lines[3] and lines[3].rstrip().endswith("1,2")
    out = tmp_path / "c.png"
    plot(groups, "Environment/Cumulative Reward", out, "t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_short_names_stay_unique():
    from mlx.tracking.compare import short_names

    keys = ["trainer.hyperparameters.learning_rate", "trainer.reward_signals.curiosity.learning_rate", "seed"]
    assert short_names(keys) == {
        "trainer.hyperparameters.learning_rate": "hyperparameters.learning_rate",
        "trainer.reward_signals.curiosity.learning_rate": "curiosity.learning_rate",
        "seed": "seed",
    }


# ---- sweep files -----------------------------------------------------------------------------------------------
def test_sweep_files_register_with_their_package_and_a_broken_one_is_reported_when_chosen(tmp_path, monkeypatch):
    from hydra.core.config_store import ConfigStore

    from mlx.sweep.files import package_of, register_sweeps

    assert package_of("# @package _global_\n# hi\na: 1\n") == "_global_"
    assert package_of("a: 1\n# @package _global_\n") == "sweep"
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "plain.yaml").write_text("study_name: p\n")
    (folder / "broken.yaml").write_text("a: [1, 2\n")
    monkeypatch.setenv("MLX_SWEEPS_DIR", str(folder))
    found = register_sweeps()
    assert {"3dball_ppo", "3dball_sac", "plain", "broken"} <= set(found)
    repo = ConfigStore.instance().repo["sweep"]
    assert repo["plain.yaml"].package == "sweep"
    assert repo["3dball_ppo.yaml"].package == "_global_"
    assert "does not parse" in repo["broken.yaml"].node.sweep.load_error


def test_shipped_sweeps_parse_and_name_existing_keys():
    """Both shipped sweeps compose and validate with their search space at both ends of every range."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mlx.config import CONF_DIR, register_configs, validate
    from mlx.sweep.files import register_sweeps

    register_configs()
    register_sweeps()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for name, trainer in (("3dball_ppo", "ppo"), ("3dball_sac", "sac")):
            base = ["run_id=test", "seed=0", f"sweep={name}"]
            tree = OmegaConf.to_container(compose("config", overrides=base), resolve=True)
            s = parse_settings(tree["sweep"])
            assert tree["trainer"]["trainer_type"] == trainer and tree["env"]["name"] == "3dball"
            assert s.study_name == name and s.n_trials >= 12 and s.pruner.type == "median"
            for end in (0, -1):  # every key at the low end of its range, then at the high end
                overrides = [dim.override(dim.candidates()[end]) for dim in s.search_space]
                validate(compose("config", overrides=[*base, *overrides]))


def test_checkpoint_step_needs_every_behaviour_checkpoint(tmp_path):
    import json

    from mlx.sweep.search import checkpoint_step

    root = tmp_path / "run"
    (root / "run_logs").mkdir(parents=True)
    status = {"A": {"checkpoints": [{"steps": 400}, {"steps": 800}]}, "metadata": {}}
    (root / "run_logs" / "training_status.json").write_text(json.dumps(status))
    assert checkpoint_step(tmp_path, "run") is None  # no checkpoint.pt on disk
    (root / "A").mkdir()
    (root / "A" / "checkpoint.pt").write_bytes(b"x")
    assert checkpoint_step(tmp_path, "run") == 800
    assert checkpoint_step(tmp_path, "other") is None


def test_job_suffix_is_empty_outside_a_multirun():
    from mlx.config.resolvers import job_suffix
    from mlx.sweep.jobs import job_tags

    assert job_suffix() == "" and job_tags() == {}


def test_shipped_sweep_files_exist():
    root = Path(__file__).resolve().parents[1] / "sweeps"
    assert (root / "3dball_ppo.yaml").exists() and (root / "3dball_sac.yaml").exists()


def test_compare_refuses_a_missing_store_in_one_line(tmp_path, capsys):
    from mlx.tracking.compare import main

    assert main(["--tracking-uri", f"sqlite:///{tmp_path}/none.db", "--sweep", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mlx.tracking.compare: error: no MLflow store at")
    assert not (tmp_path / "none.db").exists()
