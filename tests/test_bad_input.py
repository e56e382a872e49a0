"""Bad input is refused before training: one line on stderr naming the problem, exit code 2."""

from __future__ import annotations

import pytest

from tests.conftest import assert_refused, compose_tree, run_mlx

CASES = [
    # (overrides, words the message must contain)
    (["trainer=ppx"], ["trainer/ppx", "ppo"]),
    (["env=nope"], ["env/nope", "3dball"]),
    (["trainer.hyperparameters.batch_sise=5"], ["batch_sise", "(did you mean 'batch_size'?)"]),
    (["learning_rate=1e-3"], ["unknown key 'learning_rate' (did you mean trainer.hyperparameters.learning_rate?)"]),
    (["trainer.batch_size=64"], ["(did you mean trainer.hyperparameters.batch_size or"]),  # an ML-Agents habit
    (["trainer.hyperparameters.batch_size=abc"], ["batch_size", "abc"]),
    (["trainer.network_settings.normalize=maybe"], ["normalize"]),
    (["trainer.hyperparameters.learning_rate_schedule=cosine"], ["learning_rate_schedule", "cosine"]),
    (["trainer.hyperparameters.batch_size=20000"], ["batch_size", "buffer_size"]),
    (["trainer.hyperparameters.buffer_size=0"], ["buffer_size", "> 0"]),
    (["trainer.time_horizon=-5"], ["time_horizon", "> 0"]),
    (["trainer.hyperparameters.num_epoch=0"], ["num_epoch", "> 0"]),
    (["env.num_areas=0"], ["env.num_areas", "> 0"]),
    (["trainer.reward_signals.extrinsic.gamma=1.0"], ["gamma", "below 1"]),
    (["trainer.reward_signals.extrinsic.gama=0.9"], ["gama", "gamma"]),
    (["reward_signals=[]"], ["reward_signals", "at least one"]),
    (["+env.parameters.masss=2"], ["masss", "mass"]),
    (["tracking.backend=wandb"], ["tracking.backend"]),
    (["trainer=sac", "trainer.hyperparameters.tau=0"], ["tau", "(0, 1]"]),
    (["trainer=sac", "trainer.hyperparameters.tau=1.5"], ["tau", "(0, 1]"]),
    (["trainer=sac", "trainer.hyperparameters.steps_per_update=0"], ["steps_per_update", ">= 0.01"]),
    (["trainer=sac", "trainer.hyperparameters.batch_size=300000"], ["batch_size", "buffer_size"]),
    (["trainer=sac", "trainer.hyperparameters.beta=0.1"], ["beta"]),  # a PPO key on SAC
    (["trainer=sac", "trainer.threaded=true"], ["threaded", "SAC"]),
    (["env.parameters.gravity=nan"], ["gravity", "finite"]),
    (["trainer.init_path=nowhere.pt"], ["init_path", "nowhere.pt"]),
    (["trainer.max_steps=2.555e2"], ["trainer.max_steps", "255.5", "Integer"]),  # not a whole number
    (["trainer.network_settings.memory.memory_size=64"], ["memory is off (null)", "network=lstm"]),
    (["trainer.network_settings.memory={memory_size:64}"], ["memory is off (null)", "network=lstm"]),
]


@pytest.mark.parametrize(("overrides", "words"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_refused_with_one_clear_line(workdir, overrides, words):
    proc = run_mlx(*overrides, "tracking=none", "run_id=bad", cwd=workdir, timeout=120)
    assert_refused(proc, *words)
    # Nothing was trained: no checkpoint was written.
    assert not list(workdir.glob("results/bad/*/checkpoint.pt"))


def test_whole_numbers_written_as_floats_are_taken_for_int_settings(workdir):
    """ML-Agents' YAML habit (max_steps: 5.0e5) on the command line: an int setting takes 3.0e2 as 300."""
    proc = run_mlx("env=basic", "trainer.max_steps=3.0e2", "trainer.summary_freq=1e2", "tracking=none", "run_id=f",
                   "progress=plain", "seed=1", cwd=workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = (workdir / "results/f/configuration.yaml").read_text()
    assert "  max_steps: 300\n" in saved and "  summary_freq: 100\n" in saved
    # 8 agents: summaries at 104, 200, 304 steps (with or without an episode finished since the last one)
    assert proc.stdout.count("[INFO] Basic. Step: ") == 3, proc.stdout


def test_whole_numbers_in_exponent_form_load_from_config_files(tmp_path):
    """The same habit in a config file: 5.0e5 and 1e4 load as whole numbers; 64.0 for an int setting is
    refused in one line naming the key, the file and the fix."""
    from mlx.config import validate
    from mlx.errors import describe

    folder = tmp_path / "experiment"
    folder.mkdir()
    (folder / "wholes.yaml").write_text(
        "# @package _global_\ntrainer:\n  max_steps: 5.0e5\n  summary_freq: 1e4\n  hyperparameters:\n"
        "    learning_rate: 1.0e-3\n    beta: 1.0\n"
    )
    run = validate(compose_tree("experiment=wholes", f"hydra.searchpath=[file://{tmp_path}]"))
    assert (run.trainer.max_steps, run.trainer.summary_freq) == (500_000, 10_000)
    assert run.trainer.hyperparameters.learning_rate == pytest.approx(1e-3)
    assert isinstance(run.trainer.hyperparameters.beta, float)
    (folder / "half.yaml").write_text("# @package _global_\ntrainer:\n  hyperparameters:\n    batch_size: 64.0\n")
    with pytest.raises(Exception) as info:
        compose_tree("experiment=half", f"hydra.searchpath=[file://{tmp_path}]")
    line = describe(info.value)
    assert line.startswith("trainer.hyperparameters.batch_size: Value '64.0'") and "\n" not in line
    assert "in config file 'experiment/half'" in line and "write a whole number" in line
