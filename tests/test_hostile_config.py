"""Hostile configuration values are refused before anything runs: NaN and infinite floats, absurd counts,
sizes the machine cannot hold (estimated before allocating), bad seeds, devices, ports and YAML files.

Most cases are validated in-process (compose_tree + validate; trainers and envs built directly for the
estimates that need the observation size); a few run ``python -m mlx`` end to end for the one-line error.
The machine's memory is fixed at 16 GB (MLX_MEMORY_BYTES) so the memory cases do not depend on the host.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlx.config import validate
from mlx.errors import ConfigError, EnvError, describe
from tests.conftest import assert_refused, compose_tree, run_mlx

MACHINE_BYTES = str(16 * 1024**3)
NAN, INF = math.nan, math.inf


@pytest.fixture(autouse=True)
def _sixteen_gigabytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLX_MEMORY_BYTES", MACHINE_BYTES)


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to the composed tree (for values the override grammar cannot spell): path a.b.c = value."""

    def change(tree: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = tree
        for name in parents:
            node = node.setdefault(name, {})
        node[last] = value

    return change


SAMPLER = "+environment_parameters.mass={sampler_type:%s,sampler_parameters:{%s}}"


def lesson_tree(threshold: Any = 0.5, value: Any = 1.0, length: Any = 10) -> dict[str, Any]:
    return {
        "curriculum": [
            {
                "name": "easy",
                "value": value,
                "completion_criteria": {
                    "behavior": "3DBall",
                    "measure": "progress",
                    "threshold": threshold,
                    "min_lesson_length": length,
                },
            },
            {"name": "hard", "value": 2.0},
        ]
    }


SAC = "trainer=sac"
HP = "trainer.hyperparameters"
# (overrides, tree changes, words the one-line message must contain)
REFUSED: list[tuple[list[str], list[Callable[[dict[str, Any]], None]], list[str]]] = [
    # --- every float finite (class 8), wherever it sits ---
    ([f"{HP}.learning_rate=nan"], [], [f"{HP}.learning_rate", "finite"]),
    ([f"{HP}.learning_rate=inf"], [], [f"{HP}.learning_rate", "finite"]),
    ([f"{HP}.learning_rate=-inf"], [], [f"{HP}.learning_rate", "finite"]),
    ([f"{HP}.beta=nan"], [], [f"{HP}.beta", "finite"]),
    ([f"{HP}.beta=inf"], [], [f"{HP}.beta", "finite"]),
    ([f"{HP}.epsilon=nan"], [], [f"{HP}.epsilon", "finite"]),
    ([f"{HP}.lambd=inf"], [], [f"{HP}.lambd", "finite"]),
    ([SAC, f"{HP}.init_entcoef=nan"], [], [f"{HP}.init_entcoef", "finite"]),
    ([SAC, f"{HP}.init_entcoef=inf"], [], [f"{HP}.init_entcoef", "finite"]),
    ([SAC, f"{HP}.tau=nan"], [], [f"{HP}.tau", "finite"]),
    ([SAC, f"{HP}.steps_per_update=nan"], [], [f"{HP}.steps_per_update", "finite"]),
    ([SAC, f"{HP}.steps_per_update=inf"], [], [f"{HP}.steps_per_update", "finite"]),
    ([SAC, f"{HP}.reward_signal_steps_per_update=nan"], [], ["reward_signal_steps_per_update", "finite"]),
    (["trainer.reward_signals.extrinsic.gamma=nan"], [], ["extrinsic.gamma", "finite"]),
    (["trainer.reward_signals.extrinsic.strength=inf"], [], ["extrinsic.strength", "finite"]),
    (["trainer.reward_signals.extrinsic.strength=nan"], [], ["extrinsic.strength", "finite"]),
    (
        ["reward_signals=[extrinsic,curiosity]", "trainer.reward_signals.curiosity.learning_rate=nan"],
        [],
        ["curiosity.learning_rate", "finite"],
    ),
    (["reward_signals=[extrinsic,curiosity]", "trainer.reward_signals.curiosity.strength=inf"], [], ["curiosity"]),
    (["reward_signals=[extrinsic,rnd]", "trainer.reward_signals.rnd.learning_rate=inf"], [], ["rnd.learning_rate"]),
    (["trainer.behavioral_cloning.strength=nan"], [], ["behavioral_cloning.strength", "finite"]),
    (["env.parameters.gravity=inf"], [], ["env.parameters.gravity", "finite"]),
    (["engine_settings.time_scale=nan"], [], ["engine_settings.time_scale", "finite"]),
    (["stop_at_reward=nan"], [], ["stop_at_reward", "finite"]),
    (["stop_at_reward=inf"], [], ["stop_at_reward", "finite"]),
    (["stop_at_reward=-inf"], [], ["stop_at_reward", "finite"]),
    # --- timeouts: finite, > 0, at most a day ---
    (["env.timeout_wait=nan"], [], ["env.timeout_wait", "finite"]),
    (["env.timeout_wait=inf"], [], ["env.timeout_wait", "finite"]),
    (["env.timeout_wait=0"], [], ["env.timeout_wait", "> 0"]),
    (["env.timeout_wait=-1"], [], ["env.timeout_wait", "> 0"]),
    (["env.timeout_wait=1e9"], [], ["env.timeout_wait", "at most"]),
    (["env.restarts_rate_limit_period_s=nan"], [], ["restarts_rate_limit_period_s", "finite"]),
    (["env.restarts_rate_limit_period_s=0"], [], ["restarts_rate_limit_period_s", "> 0"]),
    (["env.max_message_mb=inf"], [], ["env.max_message_mb", "finite"]),
    (["env.max_message_mb=4096"], [], ["env.max_message_mb", "2 GiB"]),
    (["env.max_message_mb=0"], [], ["env.max_message_mb", "> 0"]),
    # --- SAC's updates per step ---
    ([SAC, f"{HP}.steps_per_update=1e-9"], [], [f"{HP}.steps_per_update", ">= 0.01", "at most 100"]),
    ([SAC, f"{HP}.steps_per_update=0.001"], [], [f"{HP}.steps_per_update", ">= 0.01"]),
    ([SAC, f"{HP}.steps_per_update=-1"], [], [f"{HP}.steps_per_update", ">= 0.01"]),
    ([SAC, f"{HP}.reward_signal_steps_per_update=1e-6"], [], ["reward_signal_steps_per_update", ">= 0.01"]),
    # --- top level: unknown keys, seed, lesson ---
    (["+typo=1"], [], ["unknown top-level key 'typo'", "allowed", "seed"]),
    (["+sed=3"], [], ["'sed'", "did you mean 'seed'"]),
    (["+enviroment_parameters.x=1"], [], ["did you mean 'environment_parameters'"]),
    (["+trainr.max_steps=5"], [], ["did you mean 'trainer'"]),
    (["seed=-2"], [], ["seed", "2**32"]),
    (["seed=4294967296"], [], ["seed", "2**32"]),
    (["seed=100000000000000000000"], [], ["seed"]),
    (["lesson=-1"], [], ["lesson"]),
    (["env.subprocess=true", "seed=4294967295"], [], ["seed", "32-bit", "2**31 - env.num_envs"]),
    # --- torch_settings ---
    (["torch_settings.num_threads=0"], [], ["torch_settings.num_threads", ">= 1"]),
    (["torch_settings.num_threads=-4"], [], ["torch_settings.num_threads", ">= 1"]),
    (["torch_settings.num_threads=100000"], [], ["torch_settings.num_threads", "at most"]),
    (["torch_settings.device=gpu"], [], ["torch_settings.device", "cuda:<N>"]),
    (["torch_settings.device=cuda:x"], [], ["torch_settings.device", "cuda:<N>"]),
    (["torch_settings.device=CPU"], [], ["torch_settings.device"]),
    (["torch_settings.device="], [], ["torch_settings.device"]),
    (["torch_settings.device=cuda:99"], [], ["torch_settings.device=cuda:99"]),
    # --- counts and intervals > 0, and bounded ---
    (["trainer.summary_freq=0"], [], ["trainer.summary_freq", "> 0"]),
    (["trainer.summary_freq=-1"], [], ["trainer.summary_freq", "> 0"]),
    (["trainer.checkpoint_interval=0"], [], ["trainer.checkpoint_interval", "> 0"]),
    (["trainer.keep_checkpoints=0"], [], ["trainer.keep_checkpoints", "> 0"]),
    (["trainer.max_steps=0"], [], ["trainer.max_steps", "> 0"]),
    (["trainer.max_steps=-10"], [], ["trainer.max_steps", "> 0"]),
    (["trainer.max_steps=10000000000000000000"], [], ["trainer.max_steps", "2**53"]),
    (["trainer.time_horizon=0"], [], ["trainer.time_horizon", "> 0"]),
    ([f"{HP}.num_epoch=100000"], [], [f"{HP}.num_epoch", "at most"]),
    ([SAC, f"{HP}.buffer_init_steps=-1"], [], ["buffer_init_steps", ">= 0"]),
    (["trainer.network_settings.hidden_units=0"], [], ["hidden_units", "> 0"]),
    (["trainer.network_settings.num_layers=1000"], [], ["num_layers", "1 to 100"]),
    (["evaluate.episodes=0"], [], ["evaluate.episodes", "> 0"]),
    (["evaluate.max_steps=-1"], [], ["evaluate.max_steps", "> 0"]),
    (["record.episodes=0"], [], ["record.episodes", "> 0"]),
    (["record.max_steps=0"], [], ["record.max_steps", "> 0"]),
    (["watch.episodes=0"], [], ["watch.episodes", "> 0"]),
    (["watch.fps=0"], [], ["watch.fps", "> 0"]),
    (["watch.fps=1000"], [], ["watch.fps", "at most 100"]),
    (["watch.areas=0"], [], ["watch.areas", "> 0"]),
    (["watch.areas=100000"], [], ["watch.areas", "at most 1024"]),
    (["watch.max_frames=0"], [], ["watch.max_frames", "> 0"]),
    (["env.base_port=70000"], [], ["env.base_port"]),
    (["env.base_port=-1"], [], ["env.base_port"]),
    (["env.max_lifetime_restarts=-5"], [], ["env.max_lifetime_restarts"]),
    (["env.num_envs=0"], [], ["env.num_envs", "> 0"]),
    (["engine_settings.time_scale=0"], [], ["engine_settings.time_scale", "> 0"]),
    (["engine_settings.time_scale=1000"], [], ["engine_settings.time_scale", "100"]),
    (["engine_settings.width=0"], [], ["engine_settings.width", "> 0"]),
    (["engine_settings.height=100000"], [], ["engine_settings.height", "at most"]),
    (["engine_settings.quality_level=-1"], [], ["engine_settings.quality_level", ">= 0"]),
    (["engine_settings.target_frame_rate=0"], [], ["engine_settings.target_frame_rate", "-1"]),
    (["engine_settings.capture_frame_rate=-5"], [], ["engine_settings.capture_frame_rate", ">= 0"]),
    # --- sizes the machine cannot hold (16 GB here), estimated before allocating ---
    ([f"{HP}.buffer_size=100000000000"], [], [f"{HP}.buffer_size=100000000000", "GB", "lower it"]),
    ([SAC, f"{HP}.buffer_size=100000000000"], [], [f"{HP}.buffer_size", "GB"]),
    (["env.num_areas=1000000000"], [], ["env.num_areas=1000000000", "GB"]),
    (["env.num_envs=100000000"], [], ["env.num_areas", "env.num_envs", "GB"]),
    (["env=gym", "env.id=CartPole-v1", "env.num_areas=10000000"], [], ["env.num_areas=10000000", "GB"]),
    (["trainer.network_settings.hidden_units=1000000"], [], ["hidden_units=1000000", "GB"]),
    (["network=lstm", "trainer.network_settings.memory.memory_size=2000000"], [], ["memory_size", "GB"]),
    (["trainer.time_horizon=100000000"], [], ["trainer.time_horizon", "GB", "env.num_areas"]),
    # SAC holds time_horizon steps an agent too, until they enter its buffer (upstream's trajectories)
    ([SAC, "trainer.time_horizon=100000000"], [], ["trainer.time_horizon", "GB", "env.num_areas"]),
    (
        [],
        [put("behaviors", {"3DBall": {"hyperparameters": {"buffer_size": 10**11}}})],
        ["behaviors.3DBall.hyperparameters.buffer_size", "GB"],
    ),
    (["env.subprocess=true", "env.num_envs=1000"], [], ["env.num_envs=1000", "GB", "processes"]),
    (
        ["reward_signals=[extrinsic,rnd]", "trainer.reward_signals.rnd.network_settings.hidden_units=1000000"],
        [],
        ["rnd.network_settings.hidden_units=1000000", "GB"],
    ),
    # --- names that become files ---
    (["run_id=" + "r" * 300], [], ["run_id", "at most 255"]),
    ([], [put("run_id", "a\x00b")], ["run_id", "plain folder name"]),
    ([], [put("run_id", "a\\b")], ["run_id", "plain folder name"]),
    (["record.name=a_much_too_long_demo_name"], [], ["record.name", "16 characters"]),
    # --- relations ---
    (["network=lstm", "trainer.network_settings.memory.sequence_length=5000"], [], ["sequence_length", "batch_size"]),
    ([SAC, "network=lstm", "trainer.network_settings.memory.sequence_length=500"], [], ["sequence_length"]),
    # --- environment_parameters (samplers, curricula) ---
    ([SAMPLER % ("uniform", "min_value:nan,max_value:1")], [], ["mass.sampler_parameters.min_value", "finite"]),
    ([SAMPLER % ("uniform", "min_value:0,max_value:inf")], [], ["max_value", "finite"]),
    ([SAMPLER % ("gaussian", "mean:1,st_dev:inf")], [], ["st_dev", "finite"]),
    ([SAMPLER % ("gaussian", "mean:1,st_dev:-1")], [], ["st_dev", ">= 0"]),
    (["+environment_parameters.mass=inf"], [], ["environment_parameters.mass", "finite"]),
    (["+environment_parameters.mass=nan"], [], ["environment_parameters.mass", "finite"]),
    (
        [],
        [
            put(
                "environment_parameters.mass",
                {"sampler_type": "multirangeuniform", "sampler_parameters": {"intervals": [[0, NAN]]}},
            )
        ],
        ["intervals", "finite"],
    ),
    (
        [],
        [
            put(
                "environment_parameters.mass",
                {
                    "sampler_type": "uniform",
                    "resampling_interval": 0,
                    "sampler_parameters": {"min_value": 0, "max_value": 1},
                },
            )
        ],
        ["resampling_interval", ">= 1"],
    ),
    ([], [put("environment_parameters.mass", lesson_tree(threshold=NAN))], ["completion_criteria.threshold"]),
    ([], [put("environment_parameters.mass", lesson_tree(threshold=INF))], ["completion_criteria.threshold"]),
    ([], [put("environment_parameters.mass", lesson_tree(value=NAN))], ["curriculum[0].value", "finite"]),
    ([], [put("environment_parameters.mass", lesson_tree(length=-3))], ["min_lesson_length"]),
    # --- the sweep node (read by the sweeper, checked in every job too) ---
    ([], [put("sweep", {"heartbeat_interval": NAN})], ["sweep.heartbeat_interval", "finite"]),
    ([], [put("sweep", {"stale_after": INF})], ["sweep.stale_after", "finite"]),
]

ACCEPTED: list[list[str]] = [
    ["seed=0"],
    ["seed=4294967295"],
    ["env.subprocess=true", "seed=2147483646"],
    ["seed=-1"],
    [SAC, f"{HP}.steps_per_update=0.01"],
    [SAC, f"{HP}.steps_per_update=20"],
    ["torch_settings.device=cpu", "torch_settings.num_threads=4"],
    ["env.timeout_wait=86400"],
    ["engine_settings.time_scale=100"],
    ["watch.areas=1024"],
    ["stop_at_reward=-1.5"],
    ["env.num_areas=1000", "trainer.time_horizon=1000"],
    ["network=lstm"],
]


def _case_id(case: tuple[list[str], list[Any], list[str]]) -> str:
    overrides, changes, words = case
    return " ".join(overrides) or words[0]


@pytest.mark.parametrize(("overrides", "changes", "words"), REFUSED, ids=[_case_id(c) for c in REFUSED])
def test_refused_naming_the_key(overrides, changes, words):
    tree = compose_tree(*overrides)
    for change in changes:
        change(tree)
    with pytest.raises(ConfigError) as info:
        validate(tree)
    line = describe(info.value)
    assert "\n" not in line
    for word in words:
        assert word in line, line


@pytest.mark.parametrize("overrides", ACCEPTED, ids=[" ".join(c) for c in ACCEPTED])
def test_sane_edges_accepted(overrides):
    validate(compose_tree(*overrides))


def test_case_count():
    """The issue asks for a table of hostile inputs: keep it large."""
    assert len(REFUSED) >= 90


# --- estimates once the observation size is known: trainers and native envs -------------------------------


def _spec(env_name: str):
    from mlx.envs import make_env

    env = make_env(env_name, 1, 0)
    try:
        return next(iter(env.behavior_specs.items()))
    finally:
        env.close()


@pytest.mark.parametrize(("overrides", "buffer_size"), [((SAC,), 200_000), ((), 400_000)])
def test_trainer_refuses_a_buffer_of_big_observations(overrides, buffer_size):
    """Visual3DBall's 84,672 floats a step: a buffer that validate (one float a step) lets through is refused
    by make_trainer before the buffer exists."""
    import torch

    from mlx.trainers.registry import make_trainer

    cfg = validate(compose_tree("env=visual3dball", *overrides, f"{HP}.buffer_size={buffer_size}"))
    name, spec = _spec("visual3dball")
    with pytest.raises(ConfigError) as info:
        make_trainer(name, spec, cfg.trainer, cfg.reward_signals, torch.device("cpu"), 0)
    line = str(info.value)
    assert f"{HP}.buffer_size={buffer_size}" in line and "84672 floats" in line and "GB" in line, line


def test_trainer_with_a_sane_buffer_is_built():
    import torch

    from mlx.trainers.registry import make_trainer

    cfg = validate(compose_tree(SAC))
    name, spec = _spec("3dball")
    trainer = make_trainer(name, spec, cfg.trainer, cfg.reward_signals, torch.device("cpu"), 0)
    assert trainer.buffer.capacity == cfg.trainer.hyperparameters.buffer_size


@pytest.mark.parametrize(("env_name", "areas"), [("gridworld", 200_000), ("visual3dball", 100_000), ("3dball", 10**9)])
def test_native_env_refuses_areas_it_cannot_hold(env_name, areas):
    from mlx.envs import make_env

    with pytest.raises(EnvError) as info:
        make_env(env_name, areas, 0)
    line = str(info.value)
    assert f"env.num_areas={areas}" in line and "GB" in line, line


def test_open_env_refuses_trajectories_of_the_real_observation_size(tmp_path):
    """Validate's estimate (one float a step) lets 1000 areas x 300,000 steps through; 3DBall's 8 floats do
    not fit, which training's open_env says before any trajectory is kept."""
    from mlx.training.setup import open_env

    cfg = validate(compose_tree("env.num_areas=1000", "trainer.time_horizon=300000"))
    with pytest.raises(ConfigError) as info:
        open_env(cfg, tmp_path)
    line = str(info.value)
    assert "trainer.time_horizon=300000" in line and "(8 floats a step)" in line and "env.num_areas" in line, line


def test_machine_memory_is_known(monkeypatch):
    from mlx.memory import machine_bytes

    monkeypatch.delenv("MLX_MEMORY_BYTES")
    assert 2**28 < machine_bytes() < 2**62


# --- mlx-env (python -m mlx.envs.unity.remote) arguments ------------------------------------------------------

REMOTE_REFUSED = [
    (["--mlagents-port", "0"], "1 to 65535"),
    (["--mlagents-port", "65536"], "1 to 65535"),
    (["--mlagents-port", "-5"], "1 to 65535"),
    (["--mlagents-port", "abc"], "whole number"),
    (["--mlagents-port", "5005.5"], "whole number"),
    (["--num-areas", "0"], "areas must be >= 1"),
    (["--seed", "-3"], "2**32"),
    (["--seed", str(2**64)], "2**32"),
    (["--timeout-wait", "nan"], "seconds"),
    (["--timeout-wait", "inf"], "seconds"),
    (["--timeout-wait", "0"], "seconds"),
]


@pytest.mark.parametrize(("args", "words"), REMOTE_REFUSED, ids=[" ".join(a) for a, _ in REMOTE_REFUSED])
def test_remote_refuses_bad_arguments(capsys, args, words):
    from mlx.envs.unity.remote import parser

    with pytest.raises(SystemExit) as info:
        parser().parse_args(["3dball", *args])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and args[0] in lines[0] and words in lines[0], lines


def test_remote_accepts_good_arguments():
    from mlx.envs.unity.remote import parser

    args = parser().parse_args(["3dball", "--mlagents-port", "65535", "--seed", "0", "--timeout-wait", "0.5"])
    assert (args.mlagents_port, args.seed, args.timeout_wait) == (65535, 0, 0.5)


# --- YAML syntax errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [("trainer:\n  max_steps: [1, 2\n", 3), ("trainer:\n  max_steps: 5\n bad: 1\n", 3), ("a: 1\n\tb: 2\n", 2)],
)
def test_yaml_syntax_error_is_one_line_naming_file_and_line(tmp_path, text, line):
    import yaml

    path = tmp_path / "exp.yaml"
    path.write_text(text)
    with pytest.raises(yaml.YAMLError) as info, path.open() as f:
        yaml.safe_load(f)
    message = describe(info.value)
    assert "\n" not in message and str(path) in message and f"line {line}" in message, message


def test_mlx_errors_caused_by_yaml_keep_their_own_message():
    import yaml

    try:
        try:
            yaml.safe_load("a: [1")
        except yaml.YAMLError as exc:
            raise ConfigError("import: config.yaml line 1 is not YAML") from exc
    except ConfigError as error:
        assert describe(error) == "import: config.yaml line 1 is not YAML"


# --- end to end: exit code 2 and one line on stderr -----------------------------------------------------------


def _experiment(folder: Path) -> str:
    """A user's experiment folder holding a YAML file with a syntax error; the override that picks it."""
    (folder / "experiment").mkdir(parents=True)
    (folder / "experiment" / "broken.yaml").write_text("# @package _global_\ntrainer:\n  max_steps: [1, 2\n")
    return f"hydra.searchpath=[file://{folder}]"


E2E = [
    ([f"{HP}.learning_rate=nan"], [f"{HP}.learning_rate", "finite"]),
    (["+typo=1"], ["unknown top-level key 'typo'"]),
    ([SAC, f"{HP}.steps_per_update=1e-9"], ["steps_per_update", ">= 0.01"]),
    (["torch_settings.device=gpu"], ["torch_settings.device"]),
    (["env=visual3dball", SAC, f"{HP}.buffer_size=200000"], [f"{HP}.buffer_size=200000", "GB"]),
    (["experiment=broken"], ["YAML syntax error", "broken.yaml", "line "]),
]


@pytest.mark.parametrize(("overrides", "words"), E2E, ids=[" ".join(c[0]) for c in E2E])
def test_end_to_end_one_line(workdir, overrides, words):
    if "experiment=broken" in overrides:
        overrides = [*overrides, _experiment(workdir / "conf")]
    proc = run_mlx(*overrides, "tracking=none", "run_id=hostile", cwd=workdir, timeout=120)
    assert_refused(proc, *words)
    assert not list(workdir.glob("results/hostile/*/checkpoint.pt"))
