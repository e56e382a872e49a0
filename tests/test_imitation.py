"""Imitation: the GAIL reward signal (plain, use_actions, use_vail) and behavioral cloning, with PPO and SAC."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from mlx.config import GAILSettings, NetworkSettings, validate
from mlx.envs import make_env
from mlx.envs.api import ActionTuple, BaseEnv
from mlx.formats.demo import load_demonstration, write_demo
from mlx.modes.episodes import EpisodeRecorder
from mlx.modes.policy import RandomPolicy
from mlx.trainers.bc import bc_loss, sequence_index
from mlx.trainers.nn.networks import to_env_continuous
from mlx.trainers.registry import make_trainer
from mlx.trainers.rewards.base import SignalBatch
from mlx.trainers.rewards.gail import Discrimination, gail_loss
from mlx.trainers.rewards.registry import make_reward_signal
from tests import experts
from tests.conftest import compose_tree


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small networks run fastest on one thread (what runs use, torch_settings.num_threads); two threads on
    a busy 2-core machine make a GAIL update 10 to 30 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def record(env_name: str, actor: object, episodes: int, path: Path, areas: int = 4, seed: int = 0) -> Path:
    """Record episodes of an env played by ``actor`` (a heuristic function or an object with act())."""
    env = make_env(env_name, areas, seed, {})
    name, spec = next(iter(env.behavior_specs.items()))
    recorder = EpisodeRecorder(spec)
    env.reset()
    while not recorder.ready(episodes):
        decision, terminal = env.get_steps(name)
        act = actor.act(decision) if hasattr(actor, "act") else actor(env, name, decision)  # type: ignore[operator]
        recorder.record(decision, terminal, act)
        env.set_actions(name, act)
        env.step()
    write_demo(path, spec, name, recorder.episodes(episodes))
    return path


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("demos")
    env = make_env("basic", 1, 0, {})
    spec = next(iter(env.behavior_specs.values()))
    return {
        "basic_expert": record("basic", experts.basic_right, 8, folder / "basic_expert.demo"),
        "basic_left": record("basic", experts.basic_left, 24, folder / "basic_left.demo"),
        "basic_random": record("basic", RandomPolicy(spec.action_spec, 1), 30, folder / "basic_random.demo"),
        "ball_expert": record("3dball", experts.ball3d_pd_noisy, 6, folder / "ball_expert.demo", areas=6),
    }


def batch_from(path: Path, spec: object) -> SignalBatch:
    demo = load_demonstration(path, spec)  # type: ignore[arg-type]
    t = torch.as_tensor
    return SignalBatch(
        obs=t(demo.flat_obs()),
        next_obs=t(demo.flat_obs())[:, :0],
        continuous=t(demo.continuous),
        discrete=t(demo.discrete.astype(np.int64)),
        env_reward=t(demo.reward),
        done=t(demo.done.astype(np.float32)),
    )


def basic_spec() -> object:
    return next(iter(make_env("basic", 1, 0, {}).behavior_specs.values()))


# ---- GAIL -------------------------------------------------------------------------------------------
def test_gail_loss_is_cross_entropy_plus_penalty_and_vail_kl():
    out = Discrimination(
        policy_estimate=torch.tensor([0.25, 0.5]),
        expert_estimate=torch.tensor([0.75, 0.5]),
        policy_mu=torch.tensor([[1.0, 0.0]]),
        expert_mu=torch.tensor([[0.0, 2.0]]),
        z_sigma=torch.tensor([1.0, 1.0]),
        gradient_norm=torch.tensor([1.0, 3.0]),
    )
    terms = gail_loss(out, beta=0.5)
    bce = -(np.log(0.75) + np.log(0.75) + np.log(0.5) + np.log(0.5)) / 2
    assert terms["gail_loss"].item() == pytest.approx(bce, rel=1e-5)
    assert terms["gradient_penalty"].item() == pytest.approx(10 * (0 + 4) / 2)
    # KL(N(mu, 1) || N(0, 1)) = |mu|^2 / 2: expert 2, agent 0.5
    assert terms["kl_loss"].item() == pytest.approx(2.5)
    assert terms["loss_vail"].item() == pytest.approx(0.5 * (2.5 - 0.5))


@pytest.mark.parametrize("variant", ["plain", "use_actions", "use_vail"])
def test_gail_learns_to_pay_expert_like_steps_more(demos, variant):
    """The discriminator tells the expert's steps (right, to the large goal) from an agent's (left, to the
    small one): after training the expert's steps earn more, and the statistics carry ML-Agents' names."""
    torch.manual_seed(0)
    spec = basic_spec()
    settings = GAILSettings(
        demo_path=str(demos["basic_expert"]),
        network_settings=NetworkSettings(hidden_units=32),
        learning_rate=3e-3,
        use_actions=variant == "use_actions",
        use_vail=variant == "use_vail",
    )
    signal = make_reward_signal("gail", spec, settings, torch.device("cpu"), "Basic")  # type: ignore[arg-type]
    assert signal.uses_done == (variant == "use_actions")
    agent = batch_from(demos["basic_left"], spec)
    expert = batch_from(demos["basic_expert"], spec)
    before = signal.rewards(expert).mean() - signal.rewards(agent).mean()
    stats = []
    for _ in range(80):
        rows = torch.randint(len(agent.obs), (64,))
        stats.append(signal.update(SignalBatch(*(t[rows] if t is not None else None for t in agent))))
    gap = signal.rewards(expert).mean() - signal.rewards(agent).mean()
    assert gap > 0.25 and gap > before + 0.2, (before, gap)
    last = {k: np.mean([s[k] for s in stats[-10:]]) for k in stats[0]}
    assert last["Policy/GAIL Expert Estimate"] > last["Policy/GAIL Policy Estimate"] + 0.05, last
    expected = {"Losses/GAIL Loss", "Policy/GAIL Expert Estimate", "Policy/GAIL Policy Estimate"}
    expected |= {"Policy/GAIL Grad Mag Loss"}
    if variant == "use_vail":
        expected |= {"Policy/GAIL Beta", "Losses/GAIL KL Loss"}
        assert last["Policy/GAIL Beta"] > 0.0  # the KL exceeded its target, so beta rose from 0
    assert set(last) == expected


def test_gail_reward_is_minus_log_one_minus_d(demos):
    torch.manual_seed(0)
    spec = basic_spec()
    signal = make_reward_signal(
        "gail",
        spec,
        GAILSettings(demo_path=str(demos["basic_expert"])),
        torch.device("cpu"),  # type: ignore[arg-type]
    )
    batch = batch_from(demos["basic_random"], spec)
    with torch.no_grad():
        d, _ = signal.estimate(signal.inputs(batch), noise=False)  # type: ignore[attr-defined]
    np.testing.assert_allclose(signal.rewards(batch), -np.log(1 - d.numpy() * (1 - 1e-7)), rtol=1e-5)


def test_gail_state_round_trip_and_demonstrations_stay_out_of_checkpoints(demos):
    torch.manual_seed(0)
    spec = basic_spec()
    settings = GAILSettings(demo_path=str(demos["basic_expert"]), use_vail=True, encoding_size=16)
    a = make_reward_signal("gail", spec, settings, torch.device("cpu"))  # type: ignore[arg-type]
    assert a.encoder.output_size == 16  # type: ignore[attr-defined]  # encoding_size sets the hidden units
    agent = batch_from(demos["basic_random"], spec)
    for _ in range(3):
        a.update(agent)
    state = copy.deepcopy(a.state())
    assert not any(k.startswith("expert_") for k in state["module"])
    assert "beta" in state["module"]
    b = make_reward_signal("gail", spec, settings, torch.device("cpu"))  # type: ignore[arg-type]
    b.load_state(state)
    np.testing.assert_array_equal(a.rewards(agent), b.rewards(agent))


# ---- behavioral cloning -------------------------------------------------------------------------------
def test_bc_loss_is_mse_plus_mean_branch_cross_entropy():
    logp = [torch.log(torch.tensor([[0.5, 0.25, 0.25]])), torch.log(torch.tensor([[0.1, 0.9]]))]
    terms = bc_loss(torch.tensor([[0.5, -0.5]]), logp, torch.tensor([[0.0, 0.5]]), torch.tensor([[1, 1]]))
    ce = (-np.log(0.25) - np.log(0.9)) / 2
    assert terms["continuous_mse"].item() == pytest.approx((0.25 + 1.0) / 2)
    assert terms["cross_entropy"].item() == pytest.approx(ce, rel=1e-6)
    assert terms["bc_loss"].item() == pytest.approx(0.625 + ce, rel=1e-6)


def test_sequences_stay_within_episodes():
    episode = np.array([0, 0, 0, 1, 2, 2, 2, 2, 2])
    np.testing.assert_array_equal(sequence_index(episode, 2), [[0, 1], [2, -1], [3, -1], [4, 5], [6, 7], [8, -1]])


def act_in_env(trainer: object, env: BaseEnv, steps: int) -> tuple[float, int]:
    """Mean return of the episodes the trainer's actor ends with deterministic actions (no learning)."""
    name = trainer.behavior_name  # type: ignore[attr-defined]
    module = trainer.module  # type: ignore[attr-defined]
    env.reset()
    running: dict[int, float] = {}
    returns = []
    for _ in range(steps):
        decision, terminal = env.get_steps(name)
        for agent, reward in zip(terminal.agent_id.tolist(), terminal.reward.tolist(), strict=True):
            returns.append(running.pop(agent, 0.0) + reward)
        for agent, reward in zip(decision.agent_id.tolist(), decision.reward.tolist(), strict=True):
            running[agent] = running.get(agent, 0.0) + reward
        obs = torch.as_tensor(np.concatenate([o.reshape(len(o), -1) for o in decision.obs], axis=1))
        with torch.no_grad():
            out = module.actor.sample(module.preprocess(obs), None, deterministic=True)
        cont = out.continuous if module.actor.tanh_squash else to_env_continuous(out.continuous)
        env.set_actions(name, ActionTuple(cont.numpy(), out.discrete.numpy().astype(np.int32)))
        env.step()
    return float(np.mean(returns)) if returns else float("nan"), len(returns)


@pytest.mark.learning
@pytest.mark.parametrize(
    ("env_name", "trainer_name", "demo", "updates", "threshold"),
    [
        ("basic", "ppo", "basic_expert", 100, 0.9),  # the best return is 0.93; 3 minibatches per update
        ("basic", "sac", "basic_expert", 300, 0.9),  # SAC: one minibatch per update
        ("3dball", "ppo", "ball_expert", 8, 95.0),  # 100: the ball stays up for a whole episode
    ],
)
def test_behavioral_cloning_alone_imitates_the_expert(demos, env_name, trainer_name, demo, updates, threshold):
    """No reward, no env experience: only BC updates on the demonstrations, then the policy acts like the
    expert (Basic: straight to the large goal; 3DBall: the ball kept up from the noisy PD controller's
    demonstrations, whose mean action is the controller's)."""
    torch.manual_seed(0)
    cfg = validate(compose_tree(f"env={env_name}", f"trainer={trainer_name}",
                                f"trainer.behavioral_cloning.demo_path={demos[demo]}"))  # fmt: skip
    env = make_env(env_name, 8, 1, {})
    name, spec = next(iter(env.behavior_specs.items()))
    trainer = make_trainer(name, spec, cfg.trainer, cfg.reward_signals, torch.device("cpu"), 0)
    before, _ = act_in_env(trainer, env, 1001 if env_name == "3dball" else 300)
    losses = [trainer.bc.update(0)["Losses/Pretraining Loss"] for _ in range(updates)]  # type: ignore[attr-defined]
    after, episodes = act_in_env(trainer, env, 1001 if env_name == "3dball" else 300)
    assert losses[-1] < losses[0]
    assert after >= threshold and episodes >= 8, (before, after, episodes)
    assert np.isnan(before) or before < threshold


def test_bc_learning_rate_anneals_to_zero_over_steps_then_stops(demos):
    bc = "trainer.behavioral_cloning"
    cfg = validate(
        compose_tree("env=basic", f"{bc}.demo_path={demos['basic_expert']}", f"{bc}.steps=1000", f"{bc}.strength=0.5")
    )
    spec = basic_spec()
    trainer = make_trainer("Basic", spec, cfg.trainer, cfg.reward_signals, torch.device("cpu"))  # type: ignore[arg-type]
    bc = trainer.bc  # type: ignore[attr-defined]
    lr = cfg.trainer.hyperparameters.learning_rate
    assert bc.learning_rate(0) == pytest.approx(0.5 * lr)
    assert bc.learning_rate(500) == pytest.approx(0.25 * lr, rel=1e-6)
    assert "Losses/Pretraining Loss" in bc.update(500)
    assert bc.update(1000) == {}  # annealed away: no update, no statistic
