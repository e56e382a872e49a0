"""Tuned settings per Gymnasium id (conf/tuned/gym/<id>_<trainer>.yaml through ${mlx_gym_tuned:<key>}):
CartPole-v1 keeps its tuned PPO, Pendulum-v1 its tuned SAC, and an id without a file trains with
ML-Agents' defaults, exactly as with no tuned file at all (issue 21: CartPole's settings, extrinsic
strength 0.01 included, used to apply to every Gymnasium id)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlx.config import CONF_DIR, ConfigError, validate
from tests.conftest import compose_tree

PER_ID_DIR = Path(CONF_DIR) / "tuned" / "gym"
PER_ID = sorted(PER_ID_DIR.rglob("*.yaml"))


def _leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _select(tree: dict, key: str) -> object:
    for part in key.split("."):
        tree = tree[part]
    return tree


def test_cartpole_keeps_its_tuned_ppo():
    run = validate(compose_tree("env=gym", "env.id=CartPole-v1"))
    t = run.trainer
    assert (t.hyperparameters.batch_size, t.hyperparameters.buffer_size, t.hyperparameters.num_epoch) == (256, 256, 20)
    assert t.reward_signals["extrinsic"] == {"gamma": 0.98, "strength": 0.01}
    assert (t.max_steps, t.time_horizon, t.summary_freq, t.network_settings.hidden_units) == (100000, 32, 4000, 64)


@pytest.mark.parametrize(
    ("trainer", "env_id"), [("ppo", "Acrobot-v1"), ("ppo", "Pendulum-v1"), ("sac", "MountainCarContinuous-v0")]
)
def test_an_id_without_a_tuned_file_gets_mlagents_defaults(trainer, env_id):
    """The same trainer settings as a composition with the tuned file removed (~tuned): ML-Agents' defaults."""
    tuned = compose_tree("env=gym", f"env.id={env_id}", f"trainer={trainer}")["trainer"]
    untuned = compose_tree("env=gym", f"env.id={env_id}", f"trainer={trainer}", "~tuned")["trainer"]
    assert tuned == untuned
    assert tuned["reward_signals"]["extrinsic"] == {"gamma": 0.99, "strength": 1.0}
    assert tuned["max_steps"] == 500000 and tuned["hyperparameters"]["learning_rate"] == 3.0e-4


def test_the_command_line_wins_over_an_ids_tuned_value():
    trainer = compose_tree("env=gym", "env.id=CartPole-v1", "trainer.hyperparameters.batch_size=64")["trainer"]
    assert trainer["hyperparameters"]["batch_size"] == 64 and trainer["hyperparameters"]["buffer_size"] == 256


@pytest.mark.parametrize("path", PER_ID, ids=[p.stem for p in PER_ID])
def test_every_value_of_a_per_id_file_reaches_the_run(path):
    """A key the file sets but tuned/gym_<trainer>.yaml does not list would be ignored: none is."""
    env_id, trainer = path.relative_to(PER_ID_DIR).as_posix().removesuffix(".yaml").rsplit("_", 1)
    composed = compose_tree("env=gym", f"env.id={env_id}", f"trainer={trainer}")["trainer"]
    validate(compose_tree("env=gym", f"env.id={env_id}", f"trainer={trainer}"))
    written = _leaves(yaml.safe_load(path.read_text()))
    assert written
    for key, value in written.items():
        assert _select(composed, key) == value, key
    assert env_id in (Path(CONF_DIR) / "tuned" / f"gym_{trainer}.yaml").read_text()  # named as a tuned id


def test_a_misspelt_key_in_a_per_id_file_is_refused_by_name(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    broken = conf / "tuned" / "gym" / "CartPole-v1_ppo.yaml"
    broken.write_text(broken.read_text().replace("num_epoch:", "num_epochs:"))
    env = dict(os.environ, MLX_CONF_DIR=str(conf))
    proc = subprocess.run(
        [sys.executable, "-m", "mlx", "env=gym", "env.id=CartPole-v1", "tracking=none", "run_id=x"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert str(broken) in proc.stderr and "num_epochs" in proc.stderr
    assert not (tmp_path / "results" / "x").exists()


def test_a_listed_key_that_is_no_setting_is_refused_by_name():
    from mlx.config.gym_tuned import schema_default

    assert schema_default("sac", "reward_signals.extrinsic.gamma") == 0.99
    with pytest.raises(ConfigError, match=r"trainer.hyperparameters.num_epochs is no ppo setting"):
        schema_default("ppo", "hyperparameters.num_epochs")
