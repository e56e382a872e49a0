"""A misspelt key is refused before Hydra, numpy or PyTorch load (mlx.keycheck), with the line Hydra's path
gives, and only keys that exist for no trainer are refused there: everything else still reaches Hydra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlx.errors import describe
from mlx.keycheck import KEYS_FILE, index_text, unknown_key


def test_the_key_index_matches_the_schemas():
    assert KEYS_FILE.read_text() == index_text(), "config_keys.json is stale: run python -m mlx.keycheck"


def slow_line(*overrides: str) -> str:
    """The line Hydra's composition gives for these overrides (mlx.errors.describe of its exception)."""
    from hydra import compose, initialize_config_dir

    from mlx.config import CONF_DIR, register_configs

    register_configs()
    with (
        initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"),
        pytest.raises(Exception) as caught,  # noqa: PT011 - Hydra's own exception types
    ):
        compose("config", overrides=["run_id=test", *overrides])
    return describe(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ("trainer.hyperparameters.batch_sise=64",),
        ("trainer=sac", "trainer.hyperparameters.bufer_size=1000"),
        ("trainer=poca", "trainer.network_settings.hiden_units=64"),
        ("env.num_ares=4",),
        ("trainer.reward_signals.extrinsic.gama=0.9",),
        ("trainer.hyperparameters.batch_size=64", "evaluate.episods=3"),
        ("learning_rate=3e-4",),
    ],
)
def test_the_early_line_is_hydras_line(overrides):
    early = unknown_key(list(overrides))
    assert early is not None
    late = slow_line(*overrides)
    if "." in early.split("'")[1]:
        assert early == late
    else:  # at the root the early line also lists the group names (trainer=, network=, ...), keys there too
        assert early.split("; allowed keys there:")[0] == late.split("; allowed keys there:")[0]
        assert set(late.split(": ")[-1].split(", ")) <= set(early.split(": ")[-1].split(", "))


def test_a_sweep_is_checked_too():
    line = unknown_key(["-m", "trainer.hyperparameters.lerning_rate=1e-4,3e-4", "seed=1,2"])
    assert line is not None and line.startswith("unknown key 'trainer.hyperparameters.lerning_rate' (did you mean")


@pytest.mark.parametrize(
    "argv",
    [
        ["trainer.hyperparameters.batch_size=64", "env=pushblock", "env.num_areas=4", "trainer=sac"],
        ["trainer.hyperparameters.beta=0.1", "experiment=pushblock_imitation"],  # the experiment picks the trainer
        ["trainer=sac", "trainer.hyperparameters.beta=0.1"],  # PPO's: Hydra names SAC's keys
        ["+trainer.hyperparameters.anything=1", "~trainer.max_steps", "env.parameters.mass=2", "env.kwargs.x=1"],
        ["hydra.run.dir=x", "network=lstm", "trainer.self_play.window=5", "behaviors.Foo.trainer_type=sac"],
        [
            "trainer.reward_signals.curiosity.strength=0.1",
            "trainer.reward_signals.rnd.network_settings.hidden_units=64",
        ],
        ["--config-dir=/mine", "trainer.mine=1"],
        ["-sc", "query=bash"],  # a flag's value in the next word
        ["--cfg", "job", "trainer.hyperparameters.batch_sise=64"],  # Hydra prints the config: its own path
        ["-m", "trainer.hyperparameters.learning_rate=1e-4,3e-4", "seed=1,2"],
    ],
)
def test_keys_that_may_exist_go_on_to_hydra(argv):
    assert unknown_key(argv) is None


def test_a_typo_is_refused_before_the_heavy_imports(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlx", "trainer.hyperparameters.batch_sise=64"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    errors = [x for x in lines if x.startswith("mlx: error")]
    assert errors == [
        "mlx: error: unknown key 'trainer.hyperparameters.batch_sise' (did you mean 'batch_size'?); allowed keys "
        "there: batch_size, beta, beta_schedule, buffer_size, epsilon, epsilon_schedule, lambd, learning_rate, "
        "learning_rate_schedule, num_epoch, shared_critic"
    ]
    loaded = {x.split("|")[-1].strip() for x in lines if x.startswith("import time:")}
    assert not {m for m in loaded if m.split(".")[0] in ("hydra", "omegaconf", "numpy", "torch", "yaml")}, loaded
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("index", [{}, {"root": [], "trainer": {}}, {"root": {"a": 1}, "trainer": None}, []])
def test_an_index_of_another_shape_leaves_the_check_to_hydra(index):
    assert unknown_key(["trainer.hyperparameters.batch_sise=64"], index) is None


@pytest.mark.parametrize("text", ["", '{"root": {', "\x00\xff garbage"])
def test_a_corrupt_or_missing_index_file_leaves_the_check_to_hydra(tmp_path, monkeypatch, text):
    import mlx.keycheck

    bad = tmp_path / "config_keys.json"
    bad.write_bytes(text.encode("latin-1"))
    monkeypatch.setattr(mlx.keycheck, "KEYS_FILE", bad)
    assert unknown_key(["trainer.hyperparameters.batch_sise=64"]) is None
    monkeypatch.setattr(mlx.keycheck, "KEYS_FILE", tmp_path / "missing.json")
    assert unknown_key(["trainer.hyperparameters.batch_sise=64"]) is None
