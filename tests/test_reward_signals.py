"""Reward signals (extrinsic, curiosity, RND): what they reward, their losses, config and checkpoints."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mlx.config import ConfigError, CuriositySettings, ExtrinsicSettings, NetworkSettings, RNDSettings, validate
from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.trainers.rewards.base import ExtrinsicSignal, SignalBatch, SignalInputs
from mlx.trainers.rewards.curiosity import CuriosityOutputs, curiosity_loss
from mlx.trainers.rewards.registry import make_reward_signal
from mlx.trainers.rewards.rnd import rnd_loss
from mlx.trainers.trajectory import Trajectories
from tests.conftest import compose_tree

SPEC = BehaviorSpec((ObservationSpec((6,)),), ActionSpec(continuous_size=1, discrete_branches=(3,)))


def batch_of(obs: np.ndarray, next_obs: np.ndarray, cont: np.ndarray, disc: np.ndarray) -> SignalBatch:
    t = lambda a, dt=torch.float32: torch.as_tensor(a, dtype=dt)  # noqa: E731
    return SignalBatch(t(obs), t(next_obs), t(cont), t(disc, torch.int64), torch.zeros(len(obs)))


def familiar_and_novel(rng: np.random.Generator, n: int) -> tuple[SignalBatch, SignalBatch]:
    """Familiar: a deterministic transition s' = s rolled, action from s. Novel: states far away."""
    obs = rng.normal(size=(n, 6)).astype(np.float32)
    cont = np.tanh(obs[:, :1])
    disc = (obs[:, 1] > 0).astype(np.int64)[:, None]
    familiar = batch_of(obs, np.roll(obs, 1, axis=1), cont, disc)
    far = obs + 6.0
    novel = batch_of(far, np.roll(far, 1, axis=1) * -1.0, cont, disc)
    return familiar, novel


@pytest.mark.parametrize("name", ["curiosity", "rnd"])
def test_training_makes_familiar_transitions_pay_less_than_novel_ones(name):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cls = CuriositySettings if name == "curiosity" else RNDSettings
    settings = cls(strength=0.01, network_settings=NetworkSettings(hidden_units=32), learning_rate=3e-3)
    signal = make_reward_signal(name, SPEC, settings, torch.device("cpu"))
    familiar, novel = familiar_and_novel(rng, 256)
    before = signal.rewards(familiar).mean()
    losses = [signal.update(familiar) for _ in range(300)]
    after = signal.rewards(familiar).mean()
    key = "Losses/Curiosity Forward Loss" if name == "curiosity" else "Losses/RND Loss"
    assert losses[-1][key] < 0.2 * losses[0][key]
    assert after < 0.2 * before
    assert signal.rewards(novel).mean() > 5 * after
    if name == "curiosity":  # the inverse model learns which action was taken
        assert losses[-1]["Losses/Curiosity Inverse Loss"] < 0.5 * losses[0]["Losses/Curiosity Inverse Loss"]


def test_curiosity_reward_is_capped_so_strength_times_reward_is_at_most_one():
    torch.manual_seed(0)
    signal = make_reward_signal("curiosity", SPEC, CuriositySettings(strength=0.5), torch.device("cpu"))
    familiar, novel = familiar_and_novel(np.random.default_rng(1), 64)
    huge = batch_of(
        novel.obs.numpy() * 1e3, novel.next_obs.numpy() * 1e3, novel.continuous.numpy(), novel.discrete.numpy()
    )
    assert signal.rewards(huge).max() == pytest.approx(2.0)


def test_loss_functions_are_pure_and_match_hand_computation():
    phi_next = torch.tensor([[1.0, 0.0]])
    predicted = torch.tensor([[0.0, 2.0]])
    batch = batch_of(np.zeros((1, 6)), np.zeros((1, 6)), np.array([[0.5]]), np.array([[2]]))
    logits = [torch.tensor([[0.0, 0.0, 0.0]])]
    terms = curiosity_loss(CuriosityOutputs(phi_next, predicted, torch.tensor([[0.0]]), logits), batch)
    assert terms["forward_loss"].item() == pytest.approx(0.5 * (1 + 4))
    assert terms["inverse_loss"].item() == pytest.approx(0.25 + np.log(3), rel=1e-6)
    assert terms["loss_forward"].item() == pytest.approx(10 * 0.2 * 2.5)
    rnd = rnd_loss(torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 3.0]]))
    assert rnd["rnd_loss"].item() == pytest.approx(5.0)


def test_state_round_trip_restores_the_model_and_optimiser():
    torch.manual_seed(0)
    settings = CuriositySettings(network_settings=NetworkSettings(hidden_units=16))
    a = make_reward_signal("curiosity", SPEC, settings, torch.device("cpu"))
    familiar, _ = familiar_and_novel(np.random.default_rng(0), 32)
    for _ in range(5):
        a.update(familiar)
    b = make_reward_signal("curiosity", SPEC, settings, torch.device("cpu"))
    b.load_state(copy.deepcopy(a.state()))  # as a checkpoint on disk: no shared tensors
    np.testing.assert_array_equal(a.rewards(familiar), b.rewards(familiar))
    a.update(familiar)
    b.update(familiar)
    np.testing.assert_allclose(a.rewards(familiar), b.rewards(familiar), rtol=1e-6)


def test_flat_next_obs_follows_each_step_and_ends_with_the_final_observation():
    obs = np.arange(2 * 3, dtype=np.float32).reshape(2, 3, 1)  # trajectory 0: 0,1,2; trajectory 1: 3,4 (+pad)
    traj = Trajectories(
        obs=[obs],
        continuous=np.zeros((2, 3, 0)),
        discrete=np.zeros((2, 3, 0)),
        log_prob=np.zeros((2, 3)),
        values=np.zeros((2, 3, 1)),
        env_reward=np.zeros((2, 3)),
        action_mask=np.zeros((2, 3, 0), bool),
        lengths=np.array([3, 2]),
        bootstrap_value=np.zeros((2, 1)),
        needs_bootstrap=np.zeros(2, bool),
        next_obs=[np.array([[9.0], [8.0]], np.float32)],
        slots=np.array([0, 1]),
        episode_end=np.array([True, False]),
    )
    np.testing.assert_array_equal(traj.flat(obs)[:, 0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(traj.flat_next_obs()[0][:, 0], [1, 2, 9, 4, 8])
    np.testing.assert_array_equal(traj.padded(np.arange(5.0)), [[0, 1, 2], [3, 4, 0]])


def _tree(signals: dict) -> dict:
    tree = compose_tree("env=basic")
    tree["trainer"]["reward_signals"] = signals
    return tree


@pytest.mark.parametrize(
    ("signals", "message"),
    [
        (
            {"extrinsic": {}, "curiosity": {"network_settings": {"hidden_unitz": 3}}},
            "trainer.reward_signals.curiosity.network_settings.hidden_unitz",
        ),
        ({"extrinsic": {}, "rnd": {"strength": 0}}, "trainer.reward_signals.rnd.strength must be > 0"),
        ({"extrinsic": {}, "curiosity": {"learning_rate": -1.0}}, "curiosity.learning_rate must be > 0"),
        ({"extrinsic": {}, "curiosity": {"gamma": 1.0}}, "curiosity.gamma must be in [0, 1)"),
        ({"extrinsic": {}, "curiosity": {"strength": "high"}}, "trainer.reward_signals.curiosity.strength"),
    ],
)
def test_bad_signal_settings_are_refused_naming_the_key(signals, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        validate(_tree(signals))


def test_the_env_reward_is_a_signal_built_like_the_others():
    """Extrinsic: built from the registry, no model to train, its stream is the env reward times strength,
    and it never needs the other rows (nor their tensors)."""
    signal = make_reward_signal("extrinsic", SPEC, ExtrinsicSettings(strength=0.5), torch.device("cpu"))
    assert isinstance(signal, ExtrinsicSignal) and not signal.learns
    env_reward = np.array([1.0, -2.0, 0.25], np.float32)

    def rows():
        raise AssertionError("the extrinsic signal read more than the env reward")

    np.testing.assert_array_equal(
        signal.scaled_rewards(SignalInputs(env_reward, rows, torch.device("cpu"))), [0.5, -1.0, 0.125]
    )
    curious = make_reward_signal("curiosity", SPEC, CuriositySettings(), torch.device("cpu"))
    assert curious.learns
