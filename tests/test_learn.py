"""`mlx-learn`, the drop-in for mlagents-learn: every upstream config runs (or waits for the Editor where mlx
has no port), the same statistics as python -m mlx, the printed command is the same run, the refusals, and
python -m mlx pointing ML-Agents habits here. Runs are in-process calls of main() (imports paid once)."""

from __future__ import annotations

import json
import shlex
import socket
import sys
from pathlib import Path

import pytest

from mlx.learn.cli import main, parse_args, prepare, run_mlx

CONFIGS = Path("/work/shared/reference/mlagents-configs")
if not CONFIGS.is_dir():  # the shared reference copy, else the one beside the checkout
    CONFIGS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "mlagents-configs"
FILES = sorted(CONFIGS.glob("*/*.yaml"))
# Upstream examples mlx has no native port of: without --env, mlx-learn waits for the Unity Editor.
NO_PORT = {"Match3"}
TIMING = {"time_elapsed", "steps_per_sec"}  # and Timers/*: wall-clock numbers differ run to run
QUICK = ["--mlx", "tracking=none", "--mlx", "progress=plain"]
SHORT = ["--mlx", "trainer.max_steps=2000"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows(root: Path) -> list[dict]:
    lines = (root / "run_logs" / "stats.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING and not k.startswith("Timers/")} for x in lines]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_config_files_are_all_there():
    assert len(FILES) == 39, FILES


# The slowest on a loaded 2-core machine (visual observations, SAC updating every few steps; 12-32 s each):
# kept out of the default suite, run with -m slow.
SLOW = {"sac/GridWorld", "ppo/GridWorld", "sac/WallJump", "sac/Pyramids", "ppo/Visual3DBall"}
# The MuJoCo walkers (12-55 s each here: 512 x 3 networks, MuJoCo substeps).
SLOW |= {f"{t}/{name}" for t in ("ppo", "sac") for name in ("Worm", "Crawler", "Walker")}
PARAMS = [
    pytest.param(
        p, id=f"{p.parent.name}/{p.stem}", marks=[pytest.mark.slow] if f"{p.parent.name}/{p.stem}" in SLOW else []
    )
    for p in FILES
]
HALLWAY_DEMO = "Project/Assets/ML-Agents/Examples/Hallway/Demos/ExpertHallway.demo"  # as imitation/Hallway.yaml


@pytest.mark.parametrize("path", PARAMS)
def test_every_upstream_config_runs_on_its_native_port_or_waits_for_the_editor(path, here, capsys):
    if path.stem in NO_PORT:
        # max_steps too: should a port appear for it, the run ends in seconds instead of training 5M steps
        code = main([str(path), "--run-id=r", "--timeout-wait=1", f"--base-port={free_port()}", *SHORT, *QUICK])
        out, err = capsys.readouterr()
        assert code == 2
        assert "mlx has no native env for" in out and "--env=" in out
        lines = [x for x in err.splitlines() if x.startswith("mlx: error")]
        assert len(lines) == 1, err
        if path.parent.name == "imitation":  # refused before waiting: its .demo is in the Unity project
            assert "demo_path: no .demo file" in lines[0], err
            return
        assert "Start training by pressing the Play button in the Unity Editor" in out
        assert "nothing connected" in lines[0] and "press Play" in lines[0], err
        return
    if path.parent.name == "imitation" and path.stem == "Crawler":  # its demo is in the Unity project: refused
        code = main([str(path), "--run-id=r", "--seed=1", "--mlx", "trainer.max_steps=2000", *QUICK])
        err = capsys.readouterr().err
        assert code == 2 and "demo_path: no .demo file or folder at 'Project/Assets" in err, err[-2000:]
        return
    if path.parent.name == "imitation" and path.stem == "Hallway":  # mlx ships no Hallway recording: make one
        record = ["mode=record", "env=hallway", "run_id=rec", "record.heuristic=random", "record.episodes=1"]
        assert run_mlx([*record, f"record.path={HALLWAY_DEMO}", "env.num_areas=1", "tracking=none"]) == 0
        capsys.readouterr()
    # Self-play swaps the learning team every team_change steps; a short one ends the run near 2,000 steps.
    extra = ["--mlx", "trainer.self_play.team_change=2000"] if path.stem in ("SoccerTwos", "StrikersVsGoalie") else []
    code = main([str(path), "--run-id=r", "--seed=1", "--mlx", "trainer.max_steps=2000", *extra, *QUICK])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    assert out.startswith("mlx-learn: as mlx commands: ")
    status = json.loads((here / "results/r/run_logs/training_status.json").read_text())
    behaviours = [b for b, v in status.items() if isinstance(v, dict) and "checkpoints" in v]
    assert behaviours, status
    for behaviour in behaviours:
        final = status[behaviour]["final_checkpoint"]
        assert (here / "results/r" / final).exists() or Path(final).exists(), final
        assert 2000 <= int(final.rsplit("-", 1)[1].split(".")[0]) < 2000 + 4000, final


def test_native_port_chosen_from_behaviour_names():
    cases = [("ppo/3DBall", "3dball"), ("ppo/WallJump", "walljump"), ("poca/StrikersVsGoalie", "strikersvsgoalie")]
    cases += [("sac/Worm", "worm"), ("ppo/Walker", "walker")]  # the MuJoCo ports
    for name, env in [*cases, ("ppo/Match3", "unity")]:  # no port: env=unity without a path waits for the Editor
        _, text, mlx, _, _ = prepare(parse_args([str(CONFIGS / f"{name}.yaml")]))
        assert f"env={env}" in mlx or f"override /env: {env}" in text, (name, mlx)


def test_behaviours_with_different_settings_are_one_run_with_sections(here):
    name, text, mlx, _, shown = prepare(parse_args([str(CONFIGS / "poca/StrikersVsGoalie.yaml"), "--run-id=s"]))
    assert name == "strikersvsgoalie_poca" and "override /tuned: null" in text  # no tuned sections leak in
    assert "behaviors:\n  Striker:\n    self_play:\n      swap_steps: 4000\n" in text
    assert (
        shown.startswith("python -m mlx.import_mlagents ")
        and " --out experiment/strikersvsgoalie_poca.yaml && " in shown
    )


MIXED = """behaviors:
  BigWallJump:
    trainer_type: ppo
    hyperparameters: {batch_size: 64, buffer_size: 256}
    network_settings: {hidden_units: 32}
    max_steps: 600
    summary_freq: 300
  SmallWallJump:
    trainer_type: sac
    hyperparameters: {batch_size: 32, buffer_init_steps: 100, steps_per_update: 20}
    network_settings: {hidden_units: 32}
    max_steps: 600
    summary_freq: 300
"""


def test_ppo_and_sac_behaviours_of_one_file_train_side_by_side(here, capsys):
    (here / "mixed.yaml").write_text(MIXED)
    name, text, _, _, _ = prepare(parse_args(["mixed.yaml"]))
    # SmallWallJump names its type and all of SAC's hyperparameters; what it shares with BigWallJump is not repeated
    assert "behaviors:\n  SmallWallJump:\n    trainer_type: sac\n    hyperparameters:\n      batch_size: 32\n" in text
    assert "      init_entcoef: 1.0\n" in text  # SAC's defaults filled in, as the importer does
    assert text.count("max_steps: 600") == 1 and text.count("hidden_units: 32") == 1
    assert main(["mixed.yaml", "--run-id=m", "--seed=5", "--num-areas=2", *QUICK]) == 0, capsys.readouterr().err
    rows = [json.loads(x) for x in (here / "results/m/run_logs/stats.jsonl").read_text().splitlines()]
    assert any("Losses/Q1 Loss" in r for r in rows if r["behavior"] == "SmallWallJump")
    assert any("Losses/Value Loss" in r for r in rows if r["behavior"] == "BigWallJump")
    assert all("Losses/Q1 Loss" not in r for r in rows if r["behavior"] == "BigWallJump")


def test_a_file_mlx_cannot_train_in_one_run_is_refused_in_one_line(here, capsys):
    two = here / "two.yaml"
    two.write_text(
        "behaviors:\n  BigWallJump:\n    trainer_type: ppo\n"
        "  SmallWallJump:\n    reward_signals:\n      extrinsic: {}\n      curiosity: {}\n"
    )
    assert main([str(two)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "two.yaml holds 2 mlx runs" in err and "different sets of reward signals" in err
    # An old catalogue of scenes: --env picks one, as upstream trains the behaviours of the env it meets
    catalogue = here / "catalogue.yaml"
    catalogue.write_text("behaviors:\n  3DBall:\n    trainer_type: ppo\n  Basic:\n    trainer_type: sac\n")
    assert main([str(catalogue)]) == 2
    assert "pick one with --env=<native env>" in capsys.readouterr().err
    _, text, mlx, _, _ = prepare(parse_args([str(catalogue), "--env=basic"]))
    assert "env=basic" in mlx and "override /trainer: sac" in text


def test_same_statistics_as_python_m_mlx_and_the_printed_command_is_the_same_run(here, capsys):
    """mlx-learn config/ppo/3DBall.yaml --run-id=a against python -m mlx env=3dball run_id=b (mlx's tuned
    3DBall, which is upstream's file) and against the two printed commands run as printed: same seed, same
    budget, identical stats.jsonl rows but for the timings."""
    budget = ["trainer.max_steps=6000", "trainer.summary_freq=2000", "trainer.hyperparameters.buffer_size=2000"]
    budget += ["tracking=none", "progress=plain"]
    flags = [x for item in budget for x in ("--mlx", item)]
    assert main([str(CONFIGS / "ppo/3DBall.yaml"), "--run-id=a", "--seed=1", *flags]) == 0
    out = capsys.readouterr().out
    assert run_mlx(["env=3dball", "run_id=b", "seed=1", *budget]) == 0
    learned, plain = rows(here / "results/a"), rows(here / "results/b")
    assert len(learned) == 3 and any("Losses/Policy Loss" in r for r in learned)
    assert learned == plain

    shown = out.splitlines()[0].removeprefix("mlx-learn: as mlx commands: ")
    imported, _, run = shown.partition(" && ")
    from mlx.import_mlagents.cli import main as import_main

    assert import_main(shlex.split(imported)[3:]) == 0  # python -m mlx.import_mlagents <file> --out experiment/...
    argv = shlex.split(run.replace("run_id=a", "run_id=c"))[3:]  # as a shell reads the printed line
    assert run_mlx(argv) == 0
    assert rows(here / "results/c") == learned


def test_options_map_to_mlx_overrides():
    args = parse_args(
        [str(CONFIGS / "ppo/WallJump.yaml"), "--env=builds/WallJump.x86_64", "--run-id=x", "--seed=7", "--force",
         "--initialize-from=old", "--base-port=6000", "--num-envs=2", "--num-areas=3", "--debug", "--deterministic",
         "--max-lifetime-restarts=4", "--restarts-rate-limit-n=2", "--restarts-rate-limit-period-s=30",
         "--results-dir=out", "--timeout-wait=9", "--width=100", "--height=90", "--quality-level=1",
         "--time-scale=5", "--target-frame-rate=30", "--capture-frame-rate=0", "--no-graphics",
         "--no-graphics-monitor", "--torch-device=cpu", "--lesson=2", "--keep-checkpoints=3", "--save-freq=500",
         "--env-args", "--num-orcs", "42"]
    )  # fmt: skip
    _, _, mlx, _, _ = prepare(args)
    for expected in (
        "env=unity", "env.path=builds/WallJump.x86_64", "run_id=x", "seed=7", "force=true", "initialize_from=old",
        "env.base_port=6000", "env.num_envs=2", "env.num_areas=3", "debug=true", "lesson=2",
        "trainer.network_settings.deterministic=true", "env.max_lifetime_restarts=4", "env.restarts_rate_limit_n=2",
        "env.restarts_rate_limit_period_s=30", "results_dir=out", "env.timeout_wait=9", "engine_settings.width=100",
        "engine_settings.height=90", "engine_settings.quality_level=1", "engine_settings.time_scale=5.0",
        "engine_settings.target_frame_rate=30", "engine_settings.capture_frame_rate=0",
        "engine_settings.no_graphics=true", "engine_settings.no_graphics_monitor=true", "torch_settings.device=cpu",
        "env.env_args=[--num-orcs,42]", "trainer.keep_checkpoints=3", "trainer.checkpoint_interval=500",
    ):  # fmt: skip
        assert expected in mlx, (expected, mlx)
    assert "behaviors.SmallWallJump.max_steps=2000" not in mlx
    _, _, mlx, _, _ = prepare(parse_args([str(CONFIGS / "ppo/WallJump.yaml"), "--mlx", "trainer.max_steps=2000"]))
    assert "trainer.max_steps=2000" in mlx and "behaviors.SmallWallJump.max_steps=2000" in mlx
    assert "run_id=ppo" in mlx  # mlagents-learn's default run id
    _, _, mlx, notes, _ = prepare(parse_args([str(CONFIGS / "ppo/3DBall.yaml"), "--inference", "--load", "--train"]))
    assert "mode=evaluate" in mlx and "evaluate.deterministic=false" in mlx and "resume=true" not in mlx
    assert any("--train is deprecated" in n for n in notes) and any("--load is deprecated" in n for n in notes)
    _, _, mlx, _, _ = prepare(parse_args([str(CONFIGS / "ppo/3DBall.yaml"), "--load", "--env=3DBall"]))
    assert "resume=true" in mlx and "env=3dball" in mlx
    assert prepare(parse_args([str(CONFIGS / "ppo/3DBall.yaml")]))[2] == ["run_id=ppo"]


def test_refusals_are_one_line(here, capsys):
    assert main(["missing.yaml"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "mlx-learn: error: missing.yaml: no such file\n"
    with pytest.raises(SystemExit) as exc:
        main([str(CONFIGS / "ppo/3DBall.yaml"), "--no-such-option"])
    assert exc.value.code == 2 and "unrecognized arguments: --no-such-option" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(CONFIGS / "ppo/3DBall.yaml"), "--seed=abc"])
    assert "--seed: invalid int value" in capsys.readouterr().err
    assert main([str(CONFIGS / "ppo/3DBall.yaml"), "--inference", "--initialize-from=a"]) == 2
    assert "give --run-id=<the trained run>" in capsys.readouterr().err
    # An existing run id without --resume/--force: mlx's own refusal; --resume continues it.
    tiny = [str(CONFIGS / "ppo/Basic.yaml"), "--run-id=r", "--seed=1", "--debug", "--mlx", "trainer.max_steps=300"]
    tiny += QUICK
    assert main(tiny) == 0
    assert (here / "results/r/run_logs/timers.json").exists()  # --debug is debug=true
    capsys.readouterr()
    assert main(tiny) == 2
    err = capsys.readouterr().err
    assert "run_id 'r' already exists" in err and err.count("\n") == 1
    resume = [str(CONFIGS / "ppo/Basic.yaml"), "--run-id=r", "--resume", "--mlx", "trainer.max_steps=600", *QUICK]
    assert main(resume) == 0
    status = json.loads((here / "results/r/run_logs/training_status.json").read_text())
    assert int(status["Basic"]["final_checkpoint"].rsplit("-", 1)[1].split(".")[0]) >= 600


def test_python_m_mlx_points_ml_agents_habits_to_mlx_learn(here, monkeypatch, capsys):
    from mlx.__main__ import main as mlx_main
    from mlx.__main__ import mlagents_habit

    config = here / "PushBlock.yaml"
    config.write_text((CONFIGS / "ppo/PushBlock.yaml").read_text())
    for argv, words in [
        (
            ["PushBlock.yaml", "--run-id=x"],
            "PushBlock.yaml is an ML-Agents trainer config: run mlx-learn PushBlock.yaml",
        ),
        (["--run-id=x"], "--run-id is an mlagents-learn option: run mlx-learn --run-id=x"),
        (["env=basic", "--num-envs", "2"], "--num-envs is an mlagents-learn option"),
    ]:
        monkeypatch.setattr(sys, "argv", ["mlx", *argv])
        with pytest.raises(SystemExit) as exc:
            mlx_main()
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.count("\n") == 1 and err.startswith("mlx: error: "), err
        assert words in err, err
    # Hydra's own flags and plain overrides are not habits (a YAML that is not a file is an override's business)
    for argv in (["--cfg", "job"], ["-m", "seed=1,2"], ["--multirun"], ["--info"], ["--config-dir=x", "env=basic"],
                 ["--help"], ["--hydra-help"], ["missing.yaml"], ["env=basic"], []):  # fmt: skip
        assert mlagents_habit(argv) is None, argv


def test_without_a_config_every_behaviour_gets_ml_agents_defaults():
    name, text, mlx, _, shown = prepare(parse_args(["--env=3DBall", "--run-id=d"]))
    assert name == "mlagents_defaults_ppo" and mlx == ["env=3dball", "run_id=d"]
    assert "batch_size: 1024" in text and "buffer_size: 10240" in text  # ML-Agents' PPO defaults
    assert shown.startswith("python -m mlx --config-dir . experiment=mlagents_defaults_ppo")


def test_env_and_env_args_launch_an_env_process(here, capsys):
    """--env=<executable> --env-args ...: an ML-Agents env process (mlx-env standing in for a Unity build)."""
    launcher = Path(sys.executable).parent / "mlx-env"
    if not launcher.exists():
        pytest.skip("mlx-env is not installed beside this Python (pip install -e .)")
    code = main(
        [str(CONFIGS / "sac/Worm.yaml"), "--run-id=u", "--seed=1", f"--base-port={free_port()}", "--num-areas=2",
         "--mlx", "trainer.max_steps=300", *QUICK, f"--env={launcher}", "--env-args", "3dball"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert "env=unity" in out and "'env.env_args=[3dball]'" in out and "Connected to env worker 0" in out
    assert (here / "results/u/3DBall.onnx").exists()


def test_console_script_and_python_m_mlx_learn_reach_main():
    import importlib
    import re

    root = Path(__file__).resolve().parents[1]
    target = re.search(r'^mlx-learn = "([\w.]+):(\w+)"', (root / "pyproject.toml").read_text(), re.MULTILINE)
    assert target is not None and getattr(importlib.import_module(target[1]), target[2]) is main
    assert "from mlx.learn.cli import main" in (root / "src/mlx/learn/__main__.py").read_text()
