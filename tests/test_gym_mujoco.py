"""Gymnasium's MuJoCo tasks through env=gym (issue 24): each builds, passes the env checker, ends episodes as
Gymnasium says (a fall terminates, the TimeLimit interrupts: bootstrap), is seeded from the run's seed, draws
off-screen pictures for mode=watch, picks its tuned SAC and PPO settings, and trains with both from the
command line (two multirun processes, one per trainer: five tiny jobs each)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import yaml

from mlx.config import validate
from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.checker import check_env
from mlx.envs.gym.adapter import GymEnv, offscreen_mujoco
from tests.conftest import compose_tree, run_mlx

# id: (observation size, action size, action bound)
TASKS = {
    "HalfCheetah-v5": (17, 6, 1.0),
    "Hopper-v5": (11, 3, 1.0),
    "Walker2d-v5": (17, 6, 1.0),
    "Ant-v5": (105, 8, 1.0),
    "Humanoid-v5": (348, 17, 0.4),
}


def mujoco_env(env_id: str, n: int = 2, seed: int = 0, **kwargs) -> GymEnv:
    env = make_env("gym", n, seed, env_id=env_id, env_kwargs=kwargs)
    assert isinstance(env, GymEnv)
    return env


def act(env: GymEnv, value: float) -> None:
    size = env.spec.action_spec.continuous_size
    env.set_actions(env.name, ActionTuple(np.full((env.n, size), value, np.float32), np.zeros((env.n, 0), np.int32)))
    env.step()


@pytest.mark.parametrize("env_id", list(TASKS))
def test_each_task_passes_the_env_checker_with_its_specs(env_id):
    obs, actions, bound = TASKS[env_id]
    check_env(lambda seed: make_env("gym", 2, seed, env_id=env_id), steps=120)
    env = mujoco_env(env_id)
    spec = env.spec
    assert [s.shape for s in spec.observation_specs] == [(obs,)]
    assert spec.action_spec.continuous_size == actions and spec.action_spec.discrete_branches == ()
    full = env.action_map.to_gym(ActionTuple(np.ones((2, actions), np.float32), np.zeros((2, 0), np.int32)), 2)
    np.testing.assert_allclose(full, bound)  # mlx's [-1, 1] is the task's whole Box (Humanoid: +-0.4)
    env.close()


def test_a_fall_terminates_and_the_time_limit_interrupts():
    """Hopper pushed hard falls (terminated: no bootstrap); HalfCheetah never falls, so its episodes end by
    the TimeLimit only (interrupted: the trainers bootstrap the final observation's value)."""
    hopper = mujoco_env("Hopper-v5", n=2, seed=3)
    hopper.reset()
    ends = []
    for _ in range(200):
        act(hopper, 1.0)
        _, terminal = hopper.get_steps(hopper.name)
        ends += terminal.interrupted.tolist()
        if terminal.agent_id.size:
            height = terminal.obs[0][:, 0]  # the torso's height: below 0.7 (or tilted) is a fall
            angle = terminal.obs[0][:, 1]
            assert ((height < 0.7) | (np.abs(angle) > 0.2)).all()
    assert ends and not any(ends)

    cheetah = mujoco_env("HalfCheetah-v5", n=2, seed=3, max_episode_steps=7)
    cheetah.reset()
    for _ in range(7):
        decision, terminal = cheetah.get_steps(cheetah.name)
        assert len(terminal) == 0
        act(cheetah, 0.5)
    decision, terminal = cheetah.get_steps(cheetah.name)
    np.testing.assert_array_equal(terminal.agent_id, [0, 1])
    assert terminal.interrupted.all()
    ref = gymnasium.make("HalfCheetah-v5", max_episode_steps=7)
    ref.reset(seed=4)  # copy 1: seed + 1
    for _ in range(7):
        final, reward, *_ = ref.step(np.full(6, 0.5, np.float32))
    np.testing.assert_allclose(terminal.obs[0][1], final, rtol=1e-6, atol=1e-6)
    assert terminal.reward[1] == pytest.approx(reward, rel=1e-6)
    assert not np.allclose(decision.obs[0][1], final)  # the next episode has begun
    for env in (hopper, cheetah, ref):
        env.close()


def test_copies_are_seeded_from_the_run_seed():
    def first(seed: int) -> np.ndarray:
        env = mujoco_env("Walker2d-v5", n=3, seed=seed)
        env.reset()
        obs = env.get_steps(env.name)[0].obs[0]
        env.close()
        return obs

    np.testing.assert_array_equal(first(5), first(5))
    assert not np.array_equal(first(5), first(6))
    ref = gymnasium.make("Walker2d-v5")
    np.testing.assert_allclose(first(5)[2], ref.reset(seed=7)[0], rtol=1e-6)  # copy i: seed + i


def test_pictures_are_drawn_off_screen():
    """mode=watch passes render_mode=rgb_array; without a display MuJoCo draws through EGL."""
    env = mujoco_env("HalfCheetah-v5", n=2, render_mode="rgb_array", width=64, height=48)
    env.reset()
    for _ in range(5):
        act(env, 1.0)
    pictures = env.render()
    assert pictures.shape == (2, 48, 64, 3) and pictures.dtype == np.uint8
    assert pictures.std() > 5  # a scene, not a blank frame
    env.close()


def test_egl_is_chosen_only_without_a_display_and_a_users_choice(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    offscreen_mujoco()
    assert os.environ["MUJOCO_GL"] == "egl"
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    offscreen_mujoco()
    assert os.environ["MUJOCO_GL"] == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setenv("DISPLAY", ":0")
    offscreen_mujoco()
    assert "MUJOCO_GL" not in os.environ


def test_without_mujoco_installed_the_error_names_the_extra(monkeypatch):
    def missing(*args, **kwargs):
        raise ImportError("No module named 'mujoco'")

    monkeypatch.setattr(gymnasium, "make", missing)
    with pytest.raises(EnvError, match=r"HalfCheetah-v5.*No module named 'mujoco'.*mlx-mlagents\[mujoco\]"):
        make_env("gym", 1, 0, env_id="HalfCheetah-v5")
    with pytest.raises(EnvError, match="CartPole-v1") as refused:
        make_env("gym", 1, 0, env_id="CartPole-v1")
    assert "mujoco]" not in str(refused.value)  # the hint is for MuJoCo tasks only


@pytest.mark.parametrize("env_id", list(TASKS))
def test_tuned_settings_are_selected_by_id(env_id):
    sac = validate(compose_tree("env=gym", f"env.id={env_id}", "trainer=sac")).trainer
    assert (sac.hyperparameters.batch_size, sac.hyperparameters.buffer_size) == (256, 1_000_000)
    assert sac.hyperparameters.buffer_init_steps == 10_000 and sac.network_settings.hidden_units == 256
    assert sac.max_steps == (2_000_000 if env_id == "Humanoid-v5" else 1_000_000)
    ppo = validate(compose_tree("env=gym", f"env.id={env_id}", "trainer=ppo")).trainer
    hp = ppo.hyperparameters
    assert (hp.buffer_size, hp.batch_size, hp.num_epoch, hp.beta) == (2048, 64, 10, 0.0)
    assert ppo.network_settings.normalize and ppo.network_settings.hidden_units == 64
    assert ppo.reward_signals["extrinsic"]["strength"] == 0.01


def _jobs(workdir: Path) -> list[Path]:
    return sorted(p.parent.parent for p in (workdir / "results").glob("*/run_logs/stats.jsonl"))


@pytest.mark.parametrize(
    ("trainer", "tiny", "loss"),
    [
        ("sac", ["trainer.hyperparameters.buffer_init_steps=100", "trainer.hyperparameters.batch_size=32"], "Q1"),
        ("ppo", ["trainer.hyperparameters.buffer_size=64", "trainer.hyperparameters.batch_size=32"], "Value"),
    ],
)
def test_every_task_trains_from_the_command_line(workdir, trainer, tiny, loss):
    """One multirun per trainer, a job per task: tuned settings with a tiny budget, updates happen, and each
    run ends with its policy."""
    proc = run_mlx(
        "-m",
        "env=gym",
        f"env.id={','.join(TASKS)}",
        f"trainer={trainer}",
        "env.num_areas=2",
        "trainer.max_steps=240",
        "trainer.summary_freq=80",
        "trainer.time_horizon=16",
        "trainer.network_settings.hidden_units=32",
        *tiny,
        "tracking=none",
        "progress=plain",
        cwd=workdir,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = _jobs(workdir)
    assert len(jobs) == len(TASKS)
    seen = set()
    for job in jobs:
        rows = [json.loads(line) for line in (job / "run_logs" / "stats.jsonl").read_text().splitlines()]
        name = rows[-1]["behavior"]
        seen.add(name)
        assert rows[-1]["step"] >= 240
        assert any(f"Losses/{loss} Loss" in r for r in rows), name  # the trainer updated
        assert all(np.isfinite(r[f"Losses/{loss} Loss"]) for r in rows if f"Losses/{loss} Loss" in r)
        assert (job / f"{name}.onnx").is_file()
        hp = yaml.safe_load((job / "configuration.yaml").read_text())["trainer"]["hyperparameters"]
        # A tuned value the command line left alone reached the run.
        assert (hp["buffer_size"] == 1_000_000) if trainer == "sac" else (hp["num_epoch"] == 10), name
    assert seen == set(TASKS)
