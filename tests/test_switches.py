"""mlagents-learn's switches and the validation holes of issue 20, each as upstream defines it:
network_settings.deterministic, the Is Training statistic, the hyperparameter banner, torch_settings.device
auto-selection, init_path resolution, no_graphics_monitor and SAC's time_horizon."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mlx.config import (
    ConfigError,
    CuriositySettings,
    ExtrinsicSettings,
    MemorySettings,
    PPOSettings,
    SACHyperparameters,
    SACSettings,
    TorchSettings,
    validate,
)
from mlx.envs import make_env
from mlx.envs.unity.env import EngineConfig, UnityEnv, make_unity_env
from mlx.errors import RunError
from mlx.stat_names import IS_TRAINING
from mlx.tracking.tracker import Tracker
from mlx.trainers.nn.networks import actor_for, flat_obs_size, squashed_sample
from mlx.trainers.ppo.actor_critic import NumpyActorCritic, TorchActorCritic
from mlx.trainers.registry import make_trainer
from mlx.training.banner import hyperparameter_banner
from mlx.training.checkpoints import init_checkpoint
from mlx.training.loop import Loop
from mlx.training.summaries import Summaries
from tests.conftest import TINY_3DBALL, assert_refused, compose_tree, run_mlx

CPU = torch.device("cpu")
EXTRINSIC = {"extrinsic": ExtrinsicSettings()}


def _deterministic(settings):
    settings.network_settings.deterministic = True
    settings.network_settings.hidden_units = 16
    return settings


def _steps(env, name: str):
    env.reset()
    return env.get_steps(name)


# ---- network_settings.deterministic -------------------------------------------------------------------


def test_deterministic_ppo_acts_on_the_mean_in_both_acting_paths():
    env = make_env("3dball", 4, seed=0)
    decision, terminal = _steps(env, "3DBall")
    spec = env.behavior_specs["3DBall"]
    trainer = make_trainer("3DBall", spec, _deterministic(PPOSettings()), EXTRINSIC, CPU, 0)
    assert isinstance(trainer.actor_critic, NumpyActorCritic)  # the CPU fast path
    first = trainer.process(decision, terminal)
    second = trainer.process(decision, terminal)
    actor = trainer.module.actor
    with torch.no_grad():
        mu, _, _ = actor.distribution(torch.as_tensor(decision.obs[0]))
    expected = actor.env_continuous(mu).numpy()
    np.testing.assert_allclose(first.continuous, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(first.continuous, second.continuous)
    # The torch path (any device, memory, cameras) acts the same.
    torch_path = TorchActorCritic(trainer.module, trainer.optimizer, CPU)
    cont, *_ = torch_path.act(decision.obs[0], None, None)
    np.testing.assert_allclose(actor.env_continuous(cont), expected, rtol=1e-5, atol=1e-6)
    # Sampling (the default) differs from call to call.
    sampled = make_trainer("3DBall", spec, PPOSettings(), EXTRINSIC, CPU, 0)
    assert not np.array_equal(
        sampled.process(decision, terminal).continuous, sampled.process(decision, terminal).continuous
    )


def test_deterministic_discrete_actions_are_the_most_likely_ones():
    env = make_env("basic", 8, seed=0)
    decision, terminal = _steps(env, "Basic")
    trainer = make_trainer("Basic", env.behavior_specs["Basic"], _deterministic(PPOSettings()), EXTRINSIC, CPU, 0)
    first, second = trainer.process(decision, terminal), trainer.process(decision, terminal)
    with torch.no_grad():
        _, _, branches = trainer.module.actor.distribution(torch.as_tensor(decision.obs[0]))
    np.testing.assert_array_equal(first.discrete[:, 0], branches[0].argmax(1).numpy())
    np.testing.assert_array_equal(first.discrete, second.discrete)


def test_deterministic_sac_acts_on_the_squashed_mean_after_its_random_start():
    env = make_env("3dball", 4, seed=0)
    decision, terminal = _steps(env, "3DBall")
    settings = _deterministic(SACSettings(hyperparameters=SACHyperparameters(buffer_init_steps=0)))
    trainer = make_trainer("3DBall", env.behavior_specs["3DBall"], settings, EXTRINSIC, CPU, 0)
    first, second = trainer.process(decision, terminal), trainer.process(decision, terminal)
    with torch.no_grad():
        mu, _, _ = trainer.module.actor.distribution(torch.as_tensor(decision.obs[0]))
    np.testing.assert_allclose(first.continuous, torch.tanh(mu).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(first.continuous, second.continuous)
    # The update draws its policy actions through the same sampler (upstream): the squashed mean.
    u, log_prob = squashed_sample(mu, torch.zeros_like(mu), 4, CPU, deterministic=True)
    torch.testing.assert_close(u, torch.tanh(mu))
    torch.testing.assert_close(
        log_prob, -2 * 0.5 * math.log(2 * math.pi) - torch.log1p(-(torch.tanh(mu) ** 2)).sum(1), atol=1e-4, rtol=1e-4
    )


def test_a_deterministic_sac_run_updates_and_its_losses_stay_finite():
    env = make_env("3dball", 4, seed=0)
    settings = _deterministic(SACSettings(hyperparameters=SACHyperparameters(batch_size=32, buffer_size=1000)))
    settings.time_horizon = 8
    trainer = make_trainer("3DBall", env.behavior_specs["3DBall"], settings, EXTRINSIC, CPU, 0)
    env.reset()
    for _ in range(40):
        _step(env, trainer)
        if trainer.ready_to_update():
            trainer.update()
    stats = trainer.stats.summarise()
    assert trainer.update_steps > 50
    assert all(math.isfinite(stats[k].mean) for k in ("Losses/Policy Loss", "Losses/Q1 Loss", "Losses/Value Loss"))


def test_a_deterministic_poca_actor_acts_on_argmax_per_component():
    env = make_env("pushblockcollab", 1, seed=0)
    spec = next(iter(env.behavior_specs.values()))
    actor = actor_for("poca", spec, _deterministic(PPOSettings()).network_settings)
    obs = torch.randn(5, flat_obs_size(spec))
    with torch.no_grad():  # POCA's trainer calls sample(..., components=True) and leaves the choice to the actor
        a, b = actor.sample(obs, components=True), actor.sample(obs, components=True)
        _, _, branches = actor.distribution(obs)
    torch.testing.assert_close(a.discrete, b.discrete)
    torch.testing.assert_close(a.discrete, torch.stack([lp.argmax(1) for lp in branches], 1))
    chosen = torch.stack([lp.gather(1, a.discrete[:, i : i + 1])[:, 0] for i, lp in enumerate(branches)], 1)
    torch.testing.assert_close(a.log_prob, chosen)  # the stored log-probabilities are those of these actions


def test_deterministic_is_refused_on_a_reward_signal_network():
    tree = compose_tree(
        "reward_signals=[extrinsic,curiosity]", "+trainer.reward_signals.curiosity.network_settings.deterministic=true"
    )
    with pytest.raises(
        ConfigError, match=r"curiosity.network_settings.deterministic: the curiosity encoder does not act"
    ):
        validate(tree)
    assert CuriositySettings().network_settings.deterministic is False


# ---- a short run: deterministic training, the banner and Is Training -------------------------------------


def test_a_deterministic_run_trains_prints_its_banner_and_records_is_training(workdir):
    proc = run_mlx(
        *TINY_3DBALL,
        "trainer.max_steps=800",
        "trainer.summary_freq=400",
        "trainer.network_settings.deterministic=true",
        "run_id=d",
        "tracking=none",
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    # The banner: one block, upstream's layout (tab, two spaces a level, name, colon, tab, value).
    assert out.count("[INFO] Hyperparameters for behavior name 3DBall: \n") == 1
    block = out.split("[INFO] Hyperparameters for behavior name 3DBall: \n")[1].split("\n[INFO]")[0].splitlines()
    assert block[0] == "\ttrainer_type:\tppo"
    assert "\thyperparameters:\t" in block and "\t  batch_size:\t50" in block and "\t  deterministic:\tTrue" in block
    assert "\t  extrinsic:\t" in block and "\t    gamma:\t0.99" in block
    assert out.index("Hyperparameters for behavior name") < out.index("[INFO] 3DBall. Step: 400.")
    # Is Training: 1.0 at every summary of a behaviour within its max_steps, in stats.jsonl (hence MLflow).
    rows = [json.loads(line) for line in (workdir / "results/d/run_logs/stats.jsonl").read_text().splitlines()]
    assert [(r["step"], r[IS_TRAINING]) for r in rows] == [(400, 1.0), (800, 1.0)]
    assert "[INFO] 3DBall. Step: 800." in out and "Not Training." not in out
    saved = yaml.safe_load((workdir / "results/d/configuration.yaml").read_text())
    assert saved["trainer"]["network_settings"]["deterministic"] is True


def test_is_training_is_zero_past_max_steps_and_the_line_says_not_training(tmp_path, capsys):
    env = make_env("basic", 4, seed=0)
    settings = PPOSettings(max_steps=40, summary_freq=20)
    settings.network_settings.hidden_units = 8
    trainer = make_trainer("Basic", env.behavior_specs["Basic"], settings, EXTRINSIC, CPU, 0)
    loop = Loop(env, {"Basic": trainer}, {"Basic": settings}, Summaries(tmp_path / "stats.jsonl", Tracker()))
    loop.run()
    trainer.step = 60  # it keeps acting while other behaviours train (ML-Agents), past its max_steps
    loop.learn("Basic", trainer)
    rows = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [(r["step"], r[IS_TRAINING]) for r in rows] == [(20, 1.0), (40, 1.0), (60, 0.0)]
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[INFO] Basic. Step:")]
    assert lines[1].endswith(" Training.") and "Not Training" not in lines[1]
    assert lines[2].endswith(" Not Training.")


def test_the_banner_nests_every_setting_in_field_order():
    from mlx.tracking.tensorboard import behavior_settings

    cfg = validate(compose_tree("env=3dball", "trainer.reward_signals.extrinsic.gamma=0.995"))
    text = hyperparameter_banner("Walker", behavior_settings(cfg, "Walker"))
    lines = text.splitlines()
    assert lines[0] == "[INFO] Hyperparameters for behavior name Walker: "
    assert lines[1:4] == ["\ttrainer_type:\tppo", "\thyperparameters:\t", "\t  batch_size:\t64"]  # 3DBall's tuned
    assert "\t  vis_encode_type:\tsimple" in lines and "\t  memory:\tNone" in lines
    assert "\t    gamma:\t0.995" in lines and "\tinit_path:\tNone" in lines and "\tthreaded:\tFalse" in lines
    assert "\tbehavioral_cloning:\tNone" in lines  # as upstream lists a behaviour without demonstrations


# ---- torch_settings.device ----------------------------------------------------------------------------


def test_device_null_picks_cuda_when_there_is_one_else_cpu():
    cfg = validate(compose_tree("env=3dball"))
    assert cfg.torch_settings.device is None  # upstream's default
    assert cfg.torch_settings.resolved_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    assert TorchSettings(device="cpu").resolved_device() == "cpu"


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "5", "CPU", "''", "cuda:-1", "cuda0", "'[1]'"])
def test_every_bad_device_is_one_line(value):
    with pytest.raises(ConfigError) as info:
        validate(compose_tree(f"torch_settings.device={value}"))
    message = str(info.value)
    assert "torch_settings.device" in message and "\n" not in message


@pytest.mark.parametrize("value", ["5", "{a:1}"])
def test_a_bad_device_on_the_command_line_is_one_line_and_exit_2(workdir, value):
    assert_refused(
        run_mlx("env=3dball", "run_id=x", f"torch_settings.device={value}", cwd=workdir), "torch_settings.device"
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_run_without_a_device_trains_on_the_gpu():
    from mlx.training.run import Run

    cfg = validate(compose_tree(*TINY_3DBALL, "tracking=none"))
    job = Run(cfg)
    job.build()
    trainer = job.trainers["3DBall"]
    assert trainer.device.type == "cuda" and next(trainer.module.parameters()).is_cuda
    decision, terminal = _steps(job.env, "3DBall")
    assert trainer.process(decision, terminal).continuous.shape == (len(decision), 2)
    job.env.close()


# ---- init_path ------------------------------------------------------------------------------------------


def _init_cfg(results: Path, *overrides: str):
    return validate(compose_tree("env=3dball", f"results_dir={results}", *overrides))


def test_init_path_is_resolved_as_ml_agents_does(tmp_path, monkeypatch):
    folder = tmp_path / "results" / "src" / "3DBall"
    folder.mkdir(parents=True)
    for name in ("checkpoint.pt", "3DBall-800.pt", "3DBall-400.pt"):
        (folder / name).write_bytes(b"")
    results = tmp_path / "results"
    # initialize_from alone: the behaviour's checkpoint.pt in that run
    path, source = init_checkpoint(_init_cfg(results, "initialize_from=src"), "3DBall")
    assert path == folder / "checkpoint.pt" and source == "initialize_from=src"
    # a bare file name: looked up in results/<initialize_from>/<behaviour>/
    path, source = init_checkpoint(
        _init_cfg(results, "initialize_from=src", "trainer.init_path=3DBall-400.pt"), "3DBall"
    )
    assert path == folder / "3DBall-400.pt" and "in initialize_from=src" in source
    # a path with a folder: as given, with or without initialize_from
    full = str(folder / "3DBall-800.pt")
    assert init_checkpoint(_init_cfg(results, "initialize_from=src", f"trainer.init_path={full}"), "3DBall")[0] == Path(
        full
    )
    assert init_checkpoint(_init_cfg(results, f"trainer.init_path={full}"), "3DBall")[0] == Path(full)
    # no initialize_from: a bare name is a file of the working folder, as upstream opens it
    monkeypatch.chdir(folder)
    assert init_checkpoint(_init_cfg(results, "trainer.init_path=3DBall-800.pt"), "3DBall")[0] == Path("3DBall-800.pt")
    assert init_checkpoint(_init_cfg(results), "3DBall") is None
    # per behaviour: behaviors.<name>.init_path (3DBall cannot be written in a Hydra override: a config file)
    tree = compose_tree("env=3dball", f"results_dir={results}", "initialize_from=src")
    tree["behaviors"] = {"3DBall": {"init_path": "3DBall-800.pt"}}
    path, source = init_checkpoint(validate(tree), "3DBall")
    assert path == folder / "3DBall-800.pt" and source.startswith("behaviors.3DBall.init_path=3DBall-800.pt")


def test_a_missing_init_checkpoint_is_one_line_listing_what_exists(tmp_path):
    folder = tmp_path / "results" / "src" / "3DBall"
    folder.mkdir(parents=True)
    for name in ("checkpoint.pt", "3DBall-800.pt"):
        (folder / name).write_bytes(b"")
    results = tmp_path / "results"
    with pytest.raises(RunError) as info:
        init_checkpoint(_init_cfg(results, "initialize_from=src", "trainer.init_path=3DBall-999.pt"), "3DBall")
    message = str(info.value)
    assert "trainer.init_path=3DBall-999.pt" in message and "holds checkpoint.pt, 3DBall-800.pt" in message
    assert "\n" not in message
    with pytest.raises(RunError, match="is not a .pt checkpoint"):
        init_checkpoint(_init_cfg(results, "initialize_from=src", "trainer.init_path=3DBall-800.onnx"), "3DBall")
    with pytest.raises(RunError, match="does not exist"):
        init_checkpoint(_init_cfg(results, "initialize_from=other"), "3DBall")
    with pytest.raises(RunError, match="holds no .pt checkpoint"):
        (results / "empty" / "3DBall").mkdir(parents=True)
        init_checkpoint(_init_cfg(results, "initialize_from=empty"), "3DBall")


def test_a_bare_init_path_restores_the_named_checkpoint(tmp_path):
    """End to end through Run.restore: the weights of results/src/3DBall/<file>.pt, not checkpoint.pt's."""
    from mlx.training.checkpoints import atomic_torch_save
    from mlx.training.run import Run

    results = tmp_path / "results"
    folder = results / "src" / "3DBall"
    folder.mkdir(parents=True)
    env = make_env("3dball", 1, seed=0)
    cfg = _init_cfg(results, "initialize_from=src", "trainer.init_path=old.pt", "tracking=none")
    chosen = make_trainer("3DBall", env.behavior_specs["3DBall"], cfg.trainer, cfg.reward_signals, CPU, 1)
    other = make_trainer("3DBall", env.behavior_specs["3DBall"], cfg.trainer, cfg.reward_signals, CPU, 2)
    atomic_torch_save({"trainer": chosen.state_dict()}, folder / "old.pt")
    atomic_torch_save({"trainer": other.state_dict()}, folder / "checkpoint.pt")
    job = Run(cfg)
    job.build()
    try:
        job.restore()
    finally:
        job.env.close()
    mine = job.trainers["3DBall"].module.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in chosen.module.state_dict().items())


# ---- engine_settings.no_graphics_monitor -----------------------------------------------------------------


def _launch_lines(capsys) -> dict[int, str]:
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("[INFO] Launched env worker ")]
    return {int(ln.split()[4]): ln for ln in lines}


def test_no_graphics_monitor_keeps_graphics_on_worker_0_only(tmp_path, capsys):
    cfg = validate(
        compose_tree(
            "env=3dball",
            "env.subprocess=true",
            "env.num_envs=2",
            "env.base_port=0",
            "engine_settings.no_graphics_monitor=true",
        )  # fmt: skip
    )
    env = make_unity_env(cfg.env, cfg.engine_settings, 0, tmp_path)
    try:
        assert len(env.behavior_specs) == 1
    finally:
        env.close()
    launched = _launch_lines(capsys)
    assert sorted(launched) == [0, 1]
    assert "-nographics" not in launched[0] and "-nographics -batchmode" in launched[1]


def test_no_graphics_wins_over_the_monitor(tmp_path, capsys):
    launcher = tmp_path / "build.sh"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mlx.envs.unity.remote 3dball "$@"\n')
    launcher.chmod(0o755)
    engine = EngineConfig(no_graphics=True, no_graphics_monitor=True)
    env = UnityEnv(str(launcher), num_envs=2, base_port=0, engine=engine, log_folder=tmp_path)
    env.close()
    launched = _launch_lines(capsys)
    assert all("-nographics -batchmode" in launched[i] for i in (0, 1))


# ---- SAC's time_horizon -----------------------------------------------------------------------------------


def _sac(time_horizon: int, memory: bool = False):
    settings = SACSettings(
        hyperparameters=SACHyperparameters(batch_size=10_000, buffer_size=10_000, buffer_init_steps=0),
        time_horizon=time_horizon,
    )
    settings.network_settings.hidden_units = 16
    if memory:
        settings.network_settings.memory = MemorySettings(sequence_length=4, memory_size=8)
    env = make_env("3dball", 4, seed=0)
    torch.manual_seed(0)
    trainer = make_trainer("3DBall", env.behavior_specs["3DBall"], settings, EXTRINSIC, CPU, 0)
    env.reset()
    return env, trainer


def _step(env, trainer) -> None:
    decision, terminal = env.get_steps("3DBall")
    env.set_actions("3DBall", trainer.process(decision, terminal))
    env.step()


def test_sac_transitions_enter_the_buffer_a_trajectory_at_a_time():
    env, trainer = _sac(time_horizon=5)
    sizes = []
    for _ in range(11):
        _step(env, trainer)
        sizes.append(len(trainer.buffer))
    # A transition closes at its agent's next step; each agent's 5 transitions enter together at its 6th,
    # 11th, ... (3DBall's episodes outlast these steps: no episode end cuts one earlier).
    assert sizes == [0, 0, 0, 0, 0, 20, 20, 20, 20, 20, 40]
    assert trainer.hold.held() == 0
    _step(env, trainer)
    assert trainer.hold.held() == 4


def test_an_episode_end_cuts_the_trajectory_early():
    from mlx.envs.api import DecisionSteps, TerminalSteps

    _, trainer = _sac(time_horizon=1000)
    ids = np.arange(4)
    obs = [np.zeros((4, 8), np.float32)]
    none = TerminalSteps([np.zeros((0, 8), np.float32)], np.zeros(0, np.float32), ids[:0], np.zeros(0, bool))
    for _ in range(3):
        trainer.process(DecisionSteps(obs, np.ones(4, np.float32), ids), none)
    assert len(trainer.buffer) == 0 and trainer.hold.held() == 8
    # Agent 0's episode ends (and it starts a new one at once): its 3 transitions enter, the others wait.
    ended = TerminalSteps([np.ones((1, 8), np.float32)], np.full(1, 5.0, np.float32), ids[:1], np.zeros(1, bool))
    trainer.process(DecisionSteps(obs, np.ones(4, np.float32), ids), ended)
    assert len(trainer.buffer) == 3 and trainer.hold.held() == 9
    data = trainer.buffer.data
    assert data["reward"][:3].tolist() == [1.0, 1.0, 5.0] and data["terminated"][:3].tolist() == [0.0, 0.0, 1.0]
    assert data["next_obs"][2].tolist() == [1.0] * 8  # the terminal observation, as before


def test_time_horizon_changes_when_transitions_enter_not_what_they_are():
    """Same seed, no update (batch_size above what is collected): the buffer holds the same transitions,
    the bootstrap observation included, whether they came one step or five at a time."""
    buffers = []
    for horizon in (1, 5):
        env, trainer = _sac(time_horizon=horizon)
        for _ in range(16):  # 15 transitions an agent closed: 3 trajectories of 5
            _step(env, trainer)
        n, data = len(trainer.buffer), trainer.buffer.data
        hold = trainer.hold.table
        waiting = np.arange(horizon)[None, :] < hold.held[:, None]  # an episode end restarts a trajectory
        rows = np.concatenate(
            [
                np.concatenate([data[k][:n], getattr(hold, k)[waiting]]).reshape(n + waiting.sum(), -1)
                for k in sorted(data)
            ],
            1,
        )
        buffers.append(rows[np.lexsort(rows.T[::-1])])
    np.testing.assert_array_equal(buffers[0], buffers[1])


def test_recurrent_sac_ends_a_sequence_where_its_trajectory_is_cut():
    env, trainer = _sac(time_horizon=6, memory=True)
    for _ in range(7):  # each agent's first 6 transitions: sequences of 4 and 2 (padded), as upstream pads them
        _step(env, trainer)
    valid = trainer.buffer.data["valid"][: len(trainer.buffer)]
    assert sorted(valid.sum(1).tolist()) == [2, 2, 2, 2, 4, 4, 4, 4]


def test_a_resume_may_switch_deterministic_but_not_the_network_shape():
    from mlx.config.resume import Change, check_resumable

    check_resumable([Change("trainer.network_settings.deterministic", False, True)], "a")  # weights unchanged
    check_resumable([Change("behaviors.Walker.network_settings.deterministic", False, True)], "a")
    with pytest.raises(ConfigError, match="hidden_units"):
        check_resumable([Change("trainer.network_settings.hidden_units", 128, 64)], "a")
