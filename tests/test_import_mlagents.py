"""`python -m mlx.import_mlagents`: ML-Agents trainer configs (every format) become mlx experiments that
compose, validate and carry the same settings; what mlx cannot apply is reported, bad input refused."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlx.config import ConfigError, validate
from mlx.import_mlagents import convert_old_curriculum, load_curriculum_option, main
from mlx.import_mlagents.translate import env_for
from tests.conftest import compose_tree, run_mlx

DATA = Path(__file__).parent / "data" / "mlagents_configs"
UPSTREAM = sorted(p for d in ("ppo", "sac", "poca", "imitation") for p in (DATA / d).glob("*.yaml"))


def run_import(*args: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def written(out: str) -> dict[str, tuple[str, list[str]]]:
    """Experiment name -> (file, behaviours) from the importer's 'wrote' lines."""
    found = {}
    for path, behaviours in re.findall(r"^wrote (\S+) \(([^)]*)\)", out, flags=re.M):
        found[Path(path).stem] = (path, behaviours.split(", "))
    return found


def compose_experiment(folder: Path, name: str, *overrides: str) -> dict:
    """Compose `experiment=<name>` from an experiment/ folder outside conf/, as a user would with
    hydra.searchpath."""
    return compose_tree(f"experiment={name}", f"hydra.searchpath=[file://{folder.parent}]", *overrides)


def compose_own_run_keys(folder: Path, name: str) -> dict:
    """Like compose_experiment, without compose_tree's run_id and seed overrides (the experiment sets them)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mlx.config import CONF_DIR, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={name}", f"hydra.searchpath=[file://{folder.parent}]"])
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def imported(tmp_path: Path, capsys, source: Path, *extra: str) -> tuple[Path, dict[str, tuple[str, list[str]]], str]:
    folder = tmp_path / "experiment"
    code, out, err = run_import(source, "--out", folder, *extra, capsys=capsys)
    assert code == 0, err
    return folder, written(out), err


def expected_settings(section: dict) -> dict:
    """The settings of an ML-Agents behaviour that mlx must carry over unchanged."""
    expected = {f"hyperparameters.{k}": v for k, v in (section.get("hyperparameters") or {}).items()}
    for key in ("normalize", "hidden_units", "num_layers", "vis_encode_type"):
        if key in (section.get("network_settings") or {}):
            expected[f"network_settings.{key}"] = section["network_settings"][key]
    for key in ("max_steps", "time_horizon", "summary_freq", "keep_checkpoints", "checkpoint_interval"):
        if key in section:
            expected[key] = section[key]
    for name, signal in (section.get("reward_signals") or {}).items():
        if name in ("extrinsic", "curiosity", "rnd"):
            for key in ("gamma", "strength", "learning_rate"):
                if key in signal:
                    expected[f"reward_signals.{name}.{key}"] = signal[key]
    return expected


def lookup(tree: dict, dotted: str):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


@pytest.mark.parametrize("source", UPSTREAM, ids=[f"{p.parent.name}/{p.name}" for p in UPSTREAM])
def test_every_upstream_config_imports_and_keeps_its_settings(source, tmp_path, capsys):
    behaviours = yaml.safe_load(source.read_text())["behaviors"]
    ported = env_for(list(behaviours)) is not None
    if not ported:  # nothing may silently train another env: the user names one
        code, _, err = run_import(source, "--out", tmp_path / "refused", capsys=capsys)
        assert code == 2 and "no native port of mlx has the behaviour" in err and "--env unity" in err
    folder, experiments, _ = imported(tmp_path, capsys, source, *([] if ported else ["--env", "unity"]))
    assert len(experiments) == 1  # every behaviour of a file trains in one run, as with mlagents-learn
    ((name, (_, names)),) = experiments.items()
    assert sorted(names) == sorted(behaviours)
    tree = compose_experiment(folder, name)
    assert tree["env"]["name"] == (env_for(list(behaviours)) or "unity")
    run = validate(tree, check_files=False)  # Unity's .demo files that mlx has no recording of are warned
    for behaviour in names:
        section = behaviours[behaviour]
        settings = run.trainer_for(behaviour)
        assert settings.trainer_type == section["trainer_type"]
        signals = run.signals_for(behaviour)
        for key, value in expected_settings(section).items():
            head, _, rest = key.partition(".")
            got = signals[rest.split(".")[0]] if head == "reward_signals" else settings
            for part in rest.split(".")[1:] if head == "reward_signals" else key.split("."):
                got = getattr(got, part)
            got = getattr(got, "value", got)  # enums as their names
            if isinstance(value, str) and value in ("linear", "constant", "simple", "nature_cnn", "resnet", "match3"):
                assert got == value, (behaviour, key)
            else:  # YAML 1.1 reads 1.0e7 as text; ML-Agents (and the importer) read it as a number
                assert got == pytest.approx(float(value)), (behaviour, key)


def test_imported_3dball_ppo_resolves_to_the_tuned_defaults(tmp_path, capsys):
    folder, experiments, err = imported(tmp_path, capsys, DATA / "ppo" / "3DBall.yaml")
    assert list(experiments) == ["3dball_ppo"] and err == ""
    tuned = compose_tree("env=3dball", "trainer=ppo")["trainer"]
    assert compose_experiment(folder, "3dball_ppo", "env=3dball")["trainer"] == tuned
    # The experiment alone carries every trainer setting: with another env (another tuned file, or
    # none) the trainer tree is still the imported one.
    assert compose_experiment(folder, "3dball_ppo", "env=basic")["trainer"] == tuned
    assert compose_experiment(folder, "3dball_ppo", "env=gridworld")["trainer"] == tuned
    # The behaviour name selects the mlx env of that name; the command line still picks another.
    assert compose_experiment(folder, "3dball_ppo")["env"]["name"] == "3dball"
    assert compose_experiment(folder, "3dball_ppo", "env=basic")["env"]["name"] == "basic"


def test_imported_3dball_sac_resolves_to_the_tuned_defaults(tmp_path, capsys):
    folder, experiments, _ = imported(tmp_path, capsys, DATA / "sac" / "3DBall.yaml")
    tuned = compose_tree("env=3dball", "trainer=sac")["trainer"]
    assert compose_experiment(folder, "3dball_sac", "env=basic")["trainer"] == tuned


def test_old_flat_format_3dball_equals_the_nested_one(tmp_path, capsys):
    """The <= 0.16 trainer_config.yaml (default section + flat keys, max_steps: 5.0e5 as text) gives
    3DBall the same trainer tree as today's config/ppo/3DBall.yaml."""
    folder, experiments, err = imported(tmp_path, capsys, DATA / "old" / "trainer_config.yaml")
    by_behaviour = {b: name for name, (_, names) in experiments.items() for b in names}
    tuned = compose_tree("env=3dball", "trainer=ppo")["trainer"]
    assert compose_experiment(folder, by_behaviour["3DBall"])["trainer"] == tuned
    hallway = compose_experiment(folder, by_behaviour["Hallway"])["trainer"]  # use_recurrent -> memory
    assert hallway["network_settings"]["memory"] == {"sequence_length": 64, "memory_size": 128}
    assert hallway["hyperparameters"]["beta"] == pytest.approx(0.01)
    pyramids = compose_experiment(folder, by_behaviour["Pyramids"])["trainer"]  # encoding_size -> hidden units
    assert pyramids["reward_signals"]["curiosity"]["network_settings"]["hidden_units"] == 256
    assert pyramids["reward_signals"]["curiosity"]["strength"] == pytest.approx(0.02)
    # A catalogue of scenes: one experiment per native port (the soccer behaviours share one run, each with
    # its own self_play), the behaviours no port has left out with a warning.
    assert sorted(experiments[by_behaviour["Striker"]][1]) == ["Goalie", "Striker"]
    soccer = validate(compose_experiment(folder, by_behaviour["Striker"]))
    assert soccer.env.name == "strikersvsgoalie"
    striker = soccer.trainer_for("Striker").self_play
    assert (striker.window, striker.play_against_latest_model_ratio, striker.save_steps) == (50, 0.5, 50000)
    assert (striker.swap_steps, striker.team_change) == (100000, 200000)
    assert "self_play" not in err
    assert re.search(
        r"warning: not imported: [^\n]*Bouncer[^\n]*: no native port has them; import them with --env unity", err
    )
    assert compose_experiment(folder, by_behaviour["FoodCollector"])["env"]["name"] == "foodcollector"  # by name


def test_old_flat_sac_reports_its_retired_keys(tmp_path, capsys):
    folder, experiments, err = imported(tmp_path, capsys, DATA / "old" / "sac_trainer_config.yaml")
    assert "not mapped: default.num_update:" in err and "not mapped: default.train_interval:" in err
    assert "not imported: Bouncer" in err and "Bouncer." not in err  # no port: its settings are not reported either
    assert "Hallway.use_recurrent" not in err  # SAC with memory maps (recurrent SAC)
    assert not re.search(r"not imported: [^\n]*VisualHallway", err)  # ported since 2026-12-06
    assert "self_play" not in err  # play_against_current_self_ratio (old name) accepted
    by_behaviour = {b: name for name, (_, names) in experiments.items() for b in names}
    # Walker has a native port (env=walker, MuJoCo): imported for it
    assert compose_experiment(folder, by_behaviour["Walker"])["env"]["name"] == "walker"
    assert compose_experiment(folder, by_behaviour["VisualHallway"])["env"]["name"] == "visualhallway"
    folder, experiments, err = imported(
        tmp_path / "u", capsys, DATA / "old" / "sac_trainer_config.yaml", "--env", "unity"
    )
    by_behaviour = {b: name for name, (_, names) in experiments.items() for b in names}
    walker = validate(compose_experiment(folder, by_behaviour["Walker"])).trainer_for("Walker")
    assert walker.max_steps == 20_000_000 and walker.network_settings.num_layers == 4
    hallway = validate(compose_experiment(folder, by_behaviour["Hallway"])).trainer_for("Hallway")
    assert hallway.network_settings.memory is not None
    assert hallway.network_settings.memory.sequence_length == 32


def test_old_curriculum_and_sampler_files(tmp_path, capsys):
    folder, experiments, err = imported(
        tmp_path,
        capsys,
        DATA / "old" / "trainer_config.yaml",
        "--curriculum",
        DATA / "old" / "curricula" / "wall_jump.yaml",
        "--sampler",
        DATA / "old" / "3dball_randomize.yaml",
    )
    names = {"mass", "gravity", "scale", "big_wall_min_height", "big_wall_max_height", "small_wall_height"}
    assert "not mapped: environment_parameters" not in err  # mlx runs samplers and curricula
    assert "3dball_randomize.yaml:resampling-interval: ignored" in err
    body = yaml.safe_load(Path(next(iter(experiments.values()))[0]).read_text())
    assert set(body["environment_parameters"]) == names
    assert body["environment_parameters"]["gravity"]["sampler_type"] == "multirangeuniform"
    lessons = convert_old_curriculum(yaml.safe_load((DATA / "old" / "curricula" / "wall_jump.yaml").read_text()), "x:")
    small = lessons["small_wall_height"]["curriculum"]
    assert [lesson["value"] for lesson in small] == [1.5, 2.0, 2.5, 4.0]
    assert [lesson["completion_criteria"]["threshold"] for lesson in small[:3]] == [0.1, 0.3, 0.5]
    assert small[0]["completion_criteria"]["behavior"] == "SmallWallJump" and "completion_criteria" not in small[3]


def test_curriculum_folder_of_json_files(tmp_path):
    """<= 0.14: one JSON curriculum per brain, named after it."""
    (tmp_path / "BigWallJump.json").write_text(
        '{"measure": "reward", "thresholds": [0.5], "min_lesson_length": 3, "parameters": {"h": [1.0, 4.0]}}'
    )
    lessons = load_curriculum_option(tmp_path)["h"]["curriculum"]
    assert lessons[0]["completion_criteria"]["behavior"] == "BigWallJump"
    assert lessons[0]["completion_criteria"]["measure"] == "reward" and lessons[1]["value"] == 4.0


def test_poca_is_imported_as_poca(tmp_path, capsys):
    """The four upstream poca/ files become trainer=poca experiments, with their self_play blocks."""
    folder, experiments, err = imported(tmp_path, capsys, DATA / "poca" / "SoccerTwos.yaml")
    assert "trainer_type" not in err and "not mapped" not in err
    path, _ = experiments["soccertwos_poca"]
    text = Path(path).read_text()
    assert text.startswith("# @package _global_\n") and "NOT MAPPED" not in text
    tree = compose_experiment(folder, "soccertwos_poca")
    assert tree["trainer"]["trainer_type"] == "poca" and tree["trainer"]["hyperparameters"]["batch_size"] == 2048
    play = validate(tree).trainer.self_play
    assert play is not None and (play.save_steps, play.team_change, play.swap_steps) == (50000, 200000, 2000)
    for name in ("PushBlockCollab", "DungeonEscape"):
        _, experiments, err = imported(tmp_path / name, capsys, DATA / "poca" / f"{name}.yaml")
        assert "not mapped" not in err, err
        ((path, _),) = experiments.values()
        assert "trainer: poca" in Path(path).read_text() or "trainer_type: poca" in Path(path).read_text()


def test_gail_and_behavioral_cloning_are_imported(tmp_path, capsys):
    """Unity's demonstrations become mlx's recordings of the same task (demos/) where mlx has one; a
    missing one is written as given with a warning, and the run refuses it in one line."""
    folder, experiments, err = imported(tmp_path, capsys, DATA / "imitation" / "PushBlock.yaml")
    assert err == ""
    run = validate(compose_experiment(folder, "pushblock_ppo"))  # the files exist: fully valid
    assert run.trainer.behavioral_cloning is not None
    assert run.trainer.behavioral_cloning.demo_path == "demos/ExpertPushBlock.demo"
    assert run.trainer.behavioral_cloning.steps == 50000
    assert run.reward_signals["gail"].demo_path == "demos/ExpertPushBlock.demo"
    assert run.reward_signals["gail"].strength == pytest.approx(0.01)
    text = Path(experiments["pushblock_ppo"][0]).read_text()
    assert "ExpertPushBlock.demo -> demos/ExpertPushBlock.demo" in text

    args = ("--env", "unity")  # the user may name another env than the port (env=crawler) to train on
    folder, experiments, err = imported(tmp_path / "crawler", capsys, DATA / "imitation" / "Crawler.yaml", *args)
    assert "warning: behaviors.Crawler.behavioral_cloning.demo_path: no .demo file at" in err
    assert "warning: behaviors.Crawler.reward_signals.gail.demo_path: no .demo file at" in err
    tree = compose_experiment(folder, "crawler_ppo")
    assert list(tree["trainer"]["reward_signals"]) == ["gail"]
    with pytest.raises(ConfigError, match="demo_path: no .demo file or folder at 'Project/Assets"):
        validate(tree)


def test_behaviours_with_different_settings_train_in_one_run(tmp_path, capsys):
    """As mlagents-learn does: WallJump's two behaviours (20M and 5M steps) are one run of env=walljump."""
    folder = tmp_path / "experiment"
    code, out, _ = run_import(DATA / "ppo" / "WallJump.yaml", "--out", folder / "wj.yaml", capsys=capsys)
    assert code == 0 and sorted(written(out)) == ["wj"]
    body = yaml.safe_load((folder / "wj.yaml").read_text())
    assert body["behaviors"] == {"SmallWallJump": {"max_steps": 5000000}}  # only what differs from trainer
    run = validate(compose_experiment(folder, "wj"))
    assert run.env.name == "walljump"
    assert (
        run.trainer_for("BigWallJump").max_steps == 20_000_000
        and run.trainer_for("SmallWallJump").max_steps == 5_000_000
    )


def test_behaviours_with_different_trainers_train_in_one_run(tmp_path, capsys):
    source = tmp_path / "mixed.yaml"
    source.write_text(
        "behaviors:\n  BigWallJump: {trainer_type: ppo, max_steps: 1000}\n"
        "  SmallWallJump: {trainer_type: sac, max_steps: 2000, hyperparameters: {buffer_size: 7000}}\n"
    )
    folder, experiments, _ = imported(tmp_path, capsys, source)
    assert list(experiments) == ["mixed_ppo_sac"]
    run = validate(compose_experiment(folder, "mixed_ppo_sac"))
    big, small = run.trainer_for("BigWallJump"), run.trainer_for("SmallWallJump")
    assert (big.trainer_type, big.max_steps) == ("ppo", 1000)
    assert (small.trainer_type, small.max_steps, small.hyperparameters.buffer_size) == ("sac", 2000, 7000)
    assert small.hyperparameters.tau == pytest.approx(0.005)  # SAC's own defaults, not PPO's


def test_default_settings_merge_as_in_ml_agents(tmp_path, capsys):
    source = tmp_path / "c.yaml"
    source.write_text(
        "default_settings:\n  trainer_type: ppo\n  max_steps: 12345\n  hyperparameters: {batch_size: 32}\n"
        "behaviors:\n  A:\n    hyperparameters: {buffer_size: 640}\n    reward_signals: {curiosity: {strength: 0.1}}\n"
        "  B:\n    hyperparameters: {buffer_size: 640}\n    reward_signals: {curiosity: {strength: 0.1}}\n"
    )
    folder, experiments, _ = imported(tmp_path, capsys, source, "--env", "unity")
    assert list(experiments) == ["c_ppo"] and experiments["c_ppo"][1] == ["A", "B"]  # equal: one experiment
    trainer = compose_experiment(folder, "c_ppo")["trainer"]
    assert trainer["max_steps"] == 12345
    assert trainer["hyperparameters"]["batch_size"] == 32 and trainer["hyperparameters"]["buffer_size"] == 640
    # default_settings is filled with ML-Agents' defaults first, so extrinsic stays beside curiosity
    assert sorted(trainer["reward_signals"]) == ["curiosity", "extrinsic"]
    assert trainer["reward_signals"]["curiosity"]["strength"] == pytest.approx(0.1)


def test_run_level_sections_map_to_mlx_keys(tmp_path, capsys):
    source = tmp_path / "run.yaml"
    source.write_text(
        "behaviors:\n  3DBall:\n    trainer_type: sac\n"
        "env_settings: {num_areas: 1, seed: 7, num_envs: 2, timeout_wait: 30}\n"
        "engine_settings: {time_scale: 5, no_graphics: true}\n"
        "checkpoint_settings: {run_id: imported, results_dir: elsewhere, force: true}\n"
        "torch_settings: {device: cpu}\n"
        "environment_parameters:\n  mass: 2.0\n  scale: {sampler_type: constant, sampler_parameters: {value: 1.5}}\n"
    )
    folder, _, err = imported(tmp_path, capsys, source)
    assert err == ""
    run = validate(compose_own_run_keys(folder, "run_sac"))
    assert run.seed == 7 and run.run_id == "imported" and run.results_dir == "elsewhere" and run.force
    assert run.env.name == "3dball" and run.env.num_envs == 2 and run.env.timeout_wait == 30
    assert run.env.num_areas == 12  # ML-Agents' default of 1 leaves the env's own count
    assert run.env.parameters == {"mass": 2.0, "scale": 1.5, "gravity": 9.81}  # constants -> env.parameters
    assert run.engine_settings.time_scale == 5 and run.engine_settings.no_graphics
    assert run.torch_settings.device == "cpu" and run.trainer.trainer_type == "sac"


def test_env_path_selects_env_unity(tmp_path, capsys):
    source = tmp_path / "u.yaml"
    source.write_text("behaviors:\n  Walker: {}\nenv_settings: {env_path: builds/Walker, env_args: [-logFile, -]}\n")
    folder, _, err = imported(tmp_path, capsys, source)
    run = validate(compose_experiment(folder, "u_ppo"))
    assert run.env.name == "unity" and run.env.path == "builds/Walker" and run.env.env_args == ["-logFile", "-"]


def test_threaded_maps_where_mlx_overlaps_it_and_inference_is_reported(tmp_path, capsys):
    source = tmp_path / "t.yaml"
    source.write_text(
        "behaviors:\n  X:\n    threaded: true\n    network_settings: {deterministic: true}\n"
        "checkpoint_settings: {inference: true}\ndebug: true\n"
    )
    folder, _, err = imported(tmp_path, capsys, source, "--env", "unity")
    assert "not mapped: checkpoint_settings.inference:" in err
    assert "threaded" not in err and "not mapped: debug:" not in err and "deterministic" not in err
    run = validate(compose_experiment(folder, "t_ppo"))
    assert run.resolved["debug"] is True and run.trainer.threaded is True
    assert run.trainer.network_settings.deterministic is True  # release 20's switch


def test_threaded_sac_imports_unthreaded_with_the_reason(tmp_path, capsys):
    source = tmp_path / "s.yaml"
    source.write_text("behaviors:\n  X:\n    trainer_type: sac\n    threaded: true\n")
    folder, _, err = imported(tmp_path, capsys, source, "--env", "unity")
    assert "not mapped: behaviors.X.threaded: mlx runs it unthreaded: SAC updates" in err
    assert validate(compose_experiment(folder, "s_sac")).trainer.threaded is False


def test_a_run_configuration_yaml_imports_without_warnings(tmp_path, capsys):
    """mlagents-learn's results/<run>/configuration.yaml lists every option at its default: nothing in
    it asks for something mlx lacks."""
    settings = yaml.safe_load((DATA / "ppo" / "3DBall.yaml").read_text())
    ball = settings["behaviors"]["3DBall"]
    ball["network_settings"].update(memory=None, goal_conditioning_type="hyper", deterministic=False)
    ball.update(init_path=None, threaded=False, self_play=None, behavioral_cloning=None, checkpoint_interval=500000)
    ball["reward_signals"]["extrinsic"]["network_settings"] = {"normalize": False, "hidden_units": 128}
    settings.update(
        default_settings=None,
        environment_parameters=None,
        debug=False,
        torch_settings={"device": None},
        env_settings={"env_path": None, "env_args": None, "base_port": 5005, "num_envs": 1, "num_areas": 1, "seed": -1},
        checkpoint_settings={"run_id": "ppo", "load_model": False, "train_model": False, "inference": False},
        engine_settings={"width": 84, "height": 84, "time_scale": 20, "no_graphics": False},
    )
    source = tmp_path / "configuration.yaml"
    source.write_text(yaml.safe_dump(settings))
    folder, _, err = imported(tmp_path, capsys, source)
    assert err == ""
    assert compose_experiment(folder, "configuration_ppo")["trainer"] == compose_tree("env=3dball")["trainer"]


def test_utf8_bom_is_accepted(tmp_path, capsys):
    """Windows editors write a byte-order mark that breaks ML-Agents on Windows; it is stripped."""
    plain_dir, with_bom = tmp_path / "a", tmp_path / "3DBall.yaml"
    with_bom.write_bytes(b"\xef\xbb\xbf" + (DATA / "ppo" / "3DBall.yaml").read_bytes())
    code, _, err = run_import(DATA / "ppo" / "3DBall.yaml", "--out", plain_dir / "x.yaml", capsys=capsys)
    code_bom, _, err_bom = run_import(with_bom, "--out", tmp_path / "b" / "x.yaml", capsys=capsys)
    assert code == code_bom == 0 and err == err_bom == ""
    assert (plain_dir / "x.yaml").read_text() == (tmp_path / "b" / "x.yaml").read_text()


def test_utf16_file_is_accepted(tmp_path, capsys):
    source = tmp_path / "3DBall.yaml"
    source.write_bytes((DATA / "ppo" / "3DBall.yaml").read_text().encode("utf-16"))  # with its BOM
    code, _, err = run_import(source, "--out", tmp_path / "x.yaml", capsys=capsys)
    assert code == 0 and err == ""


BAD = {
    "unknown_nested": (
        "behaviors:\n  3DBall:\n    hyperparameters:\n      batch_sise: 64\n    trainer_type: ppo\n",
        "unknown key 'behaviors.3DBall.hyperparameters.batch_sise' (did you mean 'batch_size'?); allowed there: ",
    ),
    "unknown_top": (
        "behaviours:\n  3DBall: {trainer_type: ppo}\n",
        "unknown key 'behaviours' (did you mean 'behaviors'?)",
    ),
    "unknown_signal": (
        "behaviors:\n  B:\n    reward_signals: {curiousity: {strength: 0.1}}\n",
        "unknown key 'behaviors.B.reward_signals.curiousity' (did you mean 'curiosity'?)",
    ),
    "unknown_flat": (
        "default:\n  trainer: ppo\n  batch_sise: 3\nX:\n  max_steps: 5.0e5\n",
        "unknown key 'default.batch_sise' (did you mean 'batch_size'?); it is not a key of ML-Agents' old flat format",
    ),
    "unknown_sampler_key": (
        "behaviors:\n  B: {}\nenvironment_parameters:\n  m: {sampler_type: uniform, sampler_parameters: {min: 1}}\n",
        "unknown key 'environment_parameters.m.sampler_parameters.min'",
    ),
    "syntax": ("behaviors:\n  3DBall:\n    trainer_type: ppo\n   max_steps: 10\n", ":4:4: YAML syntax error: "),
    "trainer_type": ("behaviors:\n  X:\n    trainer_type: ppo2\n", "unknown trainer type 'ppo2'"),
    "wrong_type": ("behaviors:\n  X:\n    max_steps: lots\n", "behaviors.X.max_steps must be a number (got 'lots')"),
    "not_a_mapping": ("- 3DBall\n", "the top level must be a mapping"),
    "empty": ("", "the file is empty"),
    "refused_by_mlx": (
        "behaviors:\n  X:\n    trainer_type: ppo\n    hyperparameters: {batch_size: 2000, buffer_size: 1000}\n",
        "refused by mlx: trainer.hyperparameters.batch_size (2000) must not exceed",
    ),
    "hyperparameters_without_type": (
        "behaviors:\n  X:\n    hyperparameters: {batch_size: 20}\n",
        "hyperparameters were given but no trainer_type",
    ),
    "odd_memory": (
        "behaviors:\n  X:\n    network_settings: {memory: {memory_size: 127}}\n",
        "memory.memory_size must be even",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_clear_line_and_exit_2(case, tmp_path, capsys):
    text, message = BAD[case]
    source = tmp_path / "bad.yaml"
    source.write_text(text)
    code, out, err = run_import(source, "--out", tmp_path / "experiment", capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("mlx.import_mlagents: error: ") and message in err, err
    assert out == "" and not (tmp_path / "experiment").exists()


def test_missing_file_and_invalid_utf8(tmp_path, capsys):
    code, _, err = run_import(tmp_path / "nope.yaml", capsys=capsys)
    assert code == 2 and err == f"mlx.import_mlagents: error: {tmp_path / 'nope.yaml'}: no such file\n"
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("behaviors:\n  Bälle: {}\n".encode("latin-1"))
    code, _, err = run_import(latin1, capsys=capsys)
    assert code == 2 and "not UTF-8 text (byte 0xe4 at offset 14); save it as UTF-8" in err


def test_existing_file_is_kept_without_force_and_strict_writes_nothing(tmp_path, capsys):
    out = tmp_path / "experiment"
    assert run_import(DATA / "ppo" / "3DBall.yaml", "--out", out, capsys=capsys)[0] == 0
    code, _, err = run_import(DATA / "ppo" / "3DBall.yaml", "--out", out, capsys=capsys)
    assert code == 2 and "exists; pass --force" in err
    assert run_import(DATA / "ppo" / "3DBall.yaml", "--out", out, "--force", capsys=capsys)[0] == 0
    before = sorted(out.iterdir())
    code, _, err = run_import(DATA / "old" / "sac_trainer_config.yaml", "--out", out, "--strict", capsys=capsys)
    assert code == 1 and "not mapped (--strict); nothing written" in err  # its retired SAC keys
    assert sorted(out.iterdir()) == before


def test_command_line_import_then_train(tmp_path):
    """The user's commands, as subprocesses, from a working folder outside mlx: import (into ./experiment/
    by default), train a few steps with the printed command, then resume that run with it."""
    done = subprocess.run(
        [sys.executable, "-m", "mlx.import_mlagents", str(DATA / "ppo" / "WallJump.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "experiment" / "walljump_ppo.yaml").exists()
    printed = f"python -m mlx --config-dir {tmp_path} experiment=walljump_ppo"
    assert printed in done.stdout
    small = ["trainer.hyperparameters.buffer_size=256", "trainer.hyperparameters.batch_size=64", "env.num_areas=2"]
    budget = ["trainer.max_steps=600", "behaviors.SmallWallJump.max_steps=600", "trainer.summary_freq=300"]
    args = [*printed.split()[3:], *small, *budget, "tracking=none", "run_id=imported", "progress=plain"]
    result = run_mlx(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((tmp_path / "results" / "imported" / "configuration.yaml").read_text())
    assert saved["trainer"]["time_horizon"] == 128 and saved["env"]["name"] == "walljump"
    assert saved["behaviors"] == {"SmallWallJump": {"max_steps": 600}}  # the file's sections only (no tuned/)
    more = ["trainer.max_steps=900", "behaviors.SmallWallJump.max_steps=900"]
    result = run_mlx(*printed.split()[3:], "run_id=imported", "resume=true", *more, "tracking=none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [
        yaml.safe_load(line) for line in (tmp_path / "results/imported/run_logs/stats.jsonl").read_text().splitlines()
    ]
    assert max(r["step"] for r in rows if r["behavior"] == "SmallWallJump") >= 900


def test_old_pretraining_becomes_behavioral_cloning(tmp_path, capsys):
    """0.9-0.13's `pretraining` block is 0.14's behavioral_cloning (same keys)."""
    source = tmp_path / "trainer_config.yaml"
    source.write_text(
        "default:\n  trainer: ppo\n  batch_size: 128\n  buffer_size: 2048\n"
        "Pyramids:\n  pretraining:\n"
        "    demo_path: Project/Assets/ML-Agents/Examples/Pyramids/Demos/ExpertPyramid.demo\n"
        "    strength: 0.5\n    steps: 10000\n"
    )
    folder, experiments, err = imported(tmp_path, capsys, source)
    assert "pretraining" not in err
    (name,) = [n for n, (_, behaviours) in experiments.items() if "Pyramids" in behaviours]
    run = validate(compose_experiment(folder, name))
    bc = run.trainer.behavioral_cloning
    assert bc is not None and bc.demo_path == "demos/ExpertPyramid.demo"
    assert bc.strength == pytest.approx(0.5) and bc.steps == 10000


@pytest.mark.parametrize(
    "trainer, source, env",
    [(t, f"{name}.yaml", name.lower()) for t in ("ppo", "sac") for name in ("Worm", "Crawler", "Walker")],
)
def test_imported_walker_configs_resolve_to_the_tuned_defaults(trainer, source, env, tmp_path, capsys):
    """conf/tuned/<walker>_<trainer>.yaml is upstream's config: importing upstream's file changes nothing."""
    folder, experiments, _ = imported(tmp_path, capsys, DATA / trainer / source)
    ((name, _),) = experiments.items()
    tuned = compose_tree(f"env={env}", f"trainer={trainer}")["trainer"]
    assert compose_experiment(folder, name, "env=basic")["trainer"] == tuned
    assert compose_experiment(folder, name)["env"]["name"] == env
