"""SAC pieces: the bounded replay buffer (ring, exact save/load), the loss terms, the trainer's buffer resume."""

from __future__ import annotations

import math

import numpy as np
import torch

from mlx.config import ExtrinsicSettings, SACHyperparameters, SACSettings
from mlx.envs import make_env
from mlx.trainers.losses import SACBatch, SACOutputs, sac_loss
from mlx.trainers.sac.replay import ReplayBuffer
from mlx.trainers.sac.trainer import SACTrainer

FIELDS = {"x": ((2,), np.float32), "r": ((), np.float32)}


def test_replay_buffer_is_a_bounded_ring():
    buf = ReplayBuffer(5, FIELDS)
    nbytes = buf.nbytes
    for i in range(4):
        buf.add(x=np.full((3, 2), i, np.float32), r=np.arange(3, dtype=np.float32) + 10 * i)
    assert len(buf) == 5 and buf.nbytes == nbytes  # never grows past capacity
    # 12 rows written into 5 slots: the newest five (rows 7..11) remain.
    assert sorted(buf.data["r"].tolist()) == [21.0, 22.0, 30.0, 31.0, 32.0]
    buf.add(x=np.zeros((9, 2), np.float32), r=np.arange(9, dtype=np.float32) + 100)  # more than capacity at once
    assert sorted(buf.data["r"].tolist()) == [104.0, 105.0, 106.0, 107.0, 108.0]


def test_replay_buffer_save_and_load_are_exact(tmp_path):
    rng = np.random.default_rng(0)
    for adds in (2, 7):  # partly filled, and wrapped around
        buf = ReplayBuffer(10, FIELDS)
        for _ in range(adds):
            buf.add(x=rng.normal(size=(2, 2)).astype(np.float32), r=rng.normal(size=2).astype(np.float32))
        buf.save(tmp_path / "rb.npz")
        other = ReplayBuffer(10, FIELDS)
        other.load(tmp_path / "rb.npz")
        assert (other.size, other.cursor) == (buf.size, buf.cursor)
        for k in FIELDS:
            np.testing.assert_array_equal(other.data[k][: buf.size], buf.data[k][: buf.size])
        # Sampling from both with the same RNG gives the same batches.
        a, b = buf.sample(4, np.random.default_rng(1)), other.sample(4, np.random.default_rng(1))
        np.testing.assert_array_equal(a["x"], b["x"])


def _outputs(q_taken, q_policy, values, next_values, cont_log_prob, log_alpha_cont):
    return SACOutputs(q_taken, q_policy, values, next_values, cont_log_prob, [], log_alpha_cont, None)


def _batch(rewards, terminated):
    b = len(terminated)
    z = torch.zeros(b, 1)
    no_branches = torch.zeros(b, 0, dtype=torch.long)
    return SACBatch(z, z, no_branches, torch.tensor(rewards), no_branches.bool(), z, torch.tensor(terminated))


def test_q_backup_bootstraps_unless_terminated():
    batch = _batch([[1.0], [1.0]], [0.0, 1.0])
    q = torch.zeros(2, 2, 1, 1)
    out = _outputs(q, q, torch.zeros(2, 1), torch.tensor([[10.0], [10.0]]), torch.zeros(2), torch.zeros(1))
    terms = sac_loss(out, batch, torch.tensor([0.5]), (), -1.0, torch.zeros(0))
    # targets: 1 + 0.5 * 10 = 6 (bootstrapped) and 1 (terminated): 0.5 * mean(36, 1)
    assert math.isclose(terms["q1_loss"].item(), 0.5 * (36 + 1) / 2, rel_tol=1e-6)
    assert math.isclose(terms["q2_loss"].item(), terms["q1_loss"].item())


def test_value_target_is_min_q_minus_entropy_term():
    batch = _batch([[0.0]], [0.0])
    q_policy = torch.tensor([3.0, 2.0]).view(2, 1, 1, 1)
    log_alpha = torch.log(torch.tensor([0.5]))
    out = _outputs(
        torch.zeros(2, 1, 1, 1), q_policy, torch.zeros(1, 1), torch.zeros(1, 1), torch.tensor([-2.0]), log_alpha
    )
    terms = sac_loss(out, batch, torch.tensor([0.99]), (), -1.0, torch.zeros(0))
    # v target = min(3, 2) - 0.5 * (-2) = 3 ; loss = 0.5 * 3^2
    assert math.isclose(terms["value_loss"].item(), 4.5, rel_tol=1e-6)
    assert math.isclose(terms["policy_loss"].item(), 0.5 * -2.0 - 2.0, rel_tol=1e-6)


def test_entropy_coefficient_rises_when_entropy_is_below_target():
    batch = _batch([[0.0]], [0.0])
    log_alpha = torch.zeros(1, requires_grad=True)
    z = torch.zeros(2, 1, 1, 1)
    # log pi = 5 means entropy about -5, far below the target -1: alpha must grow.
    out = _outputs(z, z, torch.zeros(1, 1), torch.zeros(1, 1), torch.tensor([5.0]), log_alpha)
    sac_loss(out, batch, torch.tensor([0.99]), (), -1.0, torch.zeros(0))["loss_entropy_coef"].backward()
    assert log_alpha.grad.item() < 0  # gradient descent increases log alpha


def _settings(save: bool) -> SACSettings:
    return SACSettings(
        hyperparameters=SACHyperparameters(
            batch_size=16, buffer_size=300, steps_per_update=4.0, save_replay_buffer=save
        )
    )


def _collect(trainer: SACTrainer, env, steps: int) -> None:
    env.reset()
    for _ in range(steps):
        d, t = env.get_steps("3DBall")
        env.set_actions("3DBall", trainer.process(d, t))
        env.step()
        if trainer.ready_to_update():
            trainer.update()


def test_sac_trainer_restores_its_replay_buffer_exactly(tmp_path):
    signals = {"extrinsic": ExtrinsicSettings()}
    env = make_env("3dball", 4, seed=0)
    spec = env.behavior_specs["3DBall"]
    trainer = SACTrainer("3DBall", spec, _settings(True), signals, torch.device("cpu"), seed=0)
    _collect(trainer, env, 120)  # 480 transitions into 300 slots: wrapped
    assert len(trainer.buffer) == 300
    trainer.save_extras(tmp_path)
    state = trainer.state_dict()
    restored = SACTrainer("3DBall", spec, _settings(True), signals, torch.device("cpu"), seed=5)
    restored.load_state_dict(state)
    restored.load_extras(tmp_path)
    assert (restored.buffer.size, restored.buffer.cursor) == (trainer.buffer.size, trainer.buffer.cursor)
    for key, array in trainer.buffer.data.items():
        np.testing.assert_array_equal(restored.buffer.data[key], array)
    assert restored.step == trainer.step and restored.update_steps == trainer.update_steps
    # Without save_replay_buffer nothing is written.
    plain = SACTrainer("3DBall", spec, _settings(False), signals, torch.device("cpu"))
    plain.save_extras(tmp_path / "none")
    assert not (tmp_path / "none" / "replay_buffer.npz").exists()


def test_steps_per_update_below_one_updates_more_than_once_per_step():
    signals = {"extrinsic": ExtrinsicSettings()}
    env = make_env("3dball", 2, seed=0)
    settings = SACSettings(
        hyperparameters=SACHyperparameters(batch_size=8, buffer_size=100, steps_per_update=0.5),
        time_horizon=4,  # transitions reach the buffer in trajectories of 4 steps (upstream's time_horizon)
    )
    trainer = SACTrainer("3DBall", env.behavior_specs["3DBall"], settings, signals, torch.device("cpu"))
    _collect(trainer, env, 20)
    # 40 agent steps at 0.5 steps per update: about 80 updates (ML-Agents' counter starts at 1).
    assert 70 <= trainer.update_steps <= 81


class HybridBandit:
    """One-step episodes with a continuous and a discrete action at once (tests SAC's hybrid path).

    Observation: a random sign s in {-1, 1} and a random cue c in {0, 1, 2} (one-hot). Reward: 1 - |a - s/2|
    for the continuous action a, plus 1 if the discrete action equals c. Best return 2.
    """

    def __init__(self, n: int, seed: int) -> None:
        from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec

        self.n, self.rng = n, np.random.default_rng(seed)
        self.spec = BehaviorSpec((ObservationSpec((4,)),), ActionSpec(continuous_size=1, discrete_branches=(3,)))
        self.ids = np.arange(n)
        self._draw()
        self.reward = np.zeros(n, np.float32)

    def _draw(self) -> None:
        self.sign = self.rng.choice([-1.0, 1.0], size=self.n).astype(np.float32)
        self.cue = self.rng.integers(0, 3, size=self.n)

    def obs(self) -> np.ndarray:
        return np.concatenate([self.sign[:, None], np.eye(3, dtype=np.float32)[self.cue]], axis=1)

    def steps(self, first: bool = False):
        from mlx.envs.api import DecisionSteps, TerminalSteps

        last_obs = self.obs()
        if first:
            terminal = TerminalSteps(
                [np.zeros((0, 4), np.float32)], np.zeros(0, np.float32), np.zeros(0, int), np.zeros(0, bool)
            )
        else:
            terminal = TerminalSteps([last_obs], self.reward, self.ids, np.zeros(self.n, bool))
            self._draw()
        return DecisionSteps([self.obs()], np.zeros(self.n, np.float32), self.ids), terminal

    def act(self, actions) -> None:
        cont = actions.continuous[:, 0]
        self.reward = (1.0 - np.abs(cont - self.sign / 2) + (actions.discrete[:, 0] == self.cue)).astype(np.float32)


def test_hybrid_sac_learns_both_action_kinds():
    torch.manual_seed(0)
    env = HybridBandit(16, seed=0)
    settings = SACSettings(
        hyperparameters=SACHyperparameters(batch_size=64, buffer_size=5000, steps_per_update=4.0, init_entcoef=0.1)
    )
    settings.network_settings.hidden_units = 32
    trainer = SACTrainer(
        "Hybrid", env.spec, settings, {"extrinsic": ExtrinsicSettings(gamma=0.9)}, torch.device("cpu"), seed=0
    )
    d, t = env.steps(first=True)
    returns = []
    for _ in range(400):
        env.act(trainer.process(d, t))
        returns.append(env.reward.mean())
        d, t = env.steps()
        if trainer.ready_to_update():
            trainer.update()
    assert trainer.module.log_alpha_cont is not None and trainer.module.log_alpha_disc is not None
    assert np.mean(returns[:20]) < 1.2  # random: about 0.5 + 1/3
    assert np.mean(returns[-50:]) > 1.75, np.mean(returns[-50:])
    stats = trainer.stats.summarise()
    assert "Policy/Continuous Entropy Coeff" in stats and "Policy/Discrete Entropy Coeff" in stats
