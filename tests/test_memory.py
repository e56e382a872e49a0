"""LSTM memory in PPO: sequence batching, state reset at episode ends, replay equals acting, and a task
that only memory can solve."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlx.config import ExtrinsicSettings, MemorySettings, PPOHyperparameters, PPOSettings
from mlx.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps
from mlx.trainers.losses import PPOBatch
from mlx.trainers.on_policy import to_sequences
from mlx.trainers.ppo.trainer import PPOTrainer

EPISODE = 4


class CueEnv:
    """A cue (0 or 1) is shown at an episode's first step only; at its last step (the 4th) choosing the
    cue's action pays 1. Observation: (cue flag if t == 0, +-1 for the cue, t / 3). Without memory the last
    step looks the same for both cues, so the best return is 0.5."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.rng = n, np.random.default_rng(seed)
        self.spec = BehaviorSpec((ObservationSpec((3,)),), ActionSpec(discrete_branches=(2,)))
        self.ids = np.arange(n)
        self.t = np.zeros(n, int)
        self.cue = self.rng.integers(0, 2, n)
        self.reward = np.zeros(n, np.float32)

    def obs(self) -> np.ndarray:
        first = (self.t == 0).astype(np.float32)
        return np.stack([first, first * (2 * self.cue - 1), self.t / 3.0], axis=1).astype(np.float32)

    def steps(self, first: bool = False) -> tuple[DecisionSteps, TerminalSteps]:
        empty = TerminalSteps([np.zeros((0, 3), np.float32)], np.zeros(0, np.float32), np.zeros(0, int),
                              np.zeros(0, bool))  # fmt: skip
        if first:
            return DecisionSteps([self.obs()], np.zeros(self.n, np.float32), self.ids), empty
        done = self.t >= EPISODE
        terminal = empty
        if done.any():
            self.t[done] = EPISODE - 1  # the final observation: same look as the last decision
            terminal = TerminalSteps([self.obs()[done]], self.reward[done], self.ids[done], np.zeros(done.sum(), bool))
            self.t[done] = 0
            self.cue[done] = self.rng.integers(0, 2, int(done.sum()))
        reward = np.where(done, 0.0, self.reward).astype(np.float32)
        return DecisionSteps([self.obs()], reward, self.ids), terminal

    def act(self, discrete: np.ndarray) -> None:
        last = self.t == EPISODE - 1
        self.reward = (last & (discrete[:, 0] == self.cue)).astype(np.float32)
        self.t += 1


def make_trainer(memory: bool, seed: int = 0, shared_critic: bool = False) -> PPOTrainer:
    torch.manual_seed(seed)
    settings = PPOSettings(
        hyperparameters=PPOHyperparameters(
            batch_size=128, buffer_size=512, learning_rate=3e-3, beta=0.01, num_epoch=3, shared_critic=shared_critic
        ),  # fmt: skip
        time_horizon=16,
        max_steps=40_000,
    )
    settings.network_settings.hidden_units = 32
    settings.network_settings.num_layers = 1
    if memory:
        settings.network_settings.memory = MemorySettings(sequence_length=8, memory_size=32)
    spec = CueEnv(1, 0).spec
    return PPOTrainer("Cue", spec, settings, {"extrinsic": ExtrinsicSettings(gamma=0.9)}, torch.device("cpu"))


def train(trainer: PPOTrainer, steps: int, seed: int = 0) -> list[float]:
    env = CueEnv(16, seed)
    d, t = env.steps(first=True)
    returns: list[float] = []
    for _ in range(steps):
        actions = trainer.process(d, t)
        env.act(actions.discrete)
        d, t = env.steps()
        if len(t):
            returns += t.reward.tolist()
        if trainer.ready_to_update():
            trainer.update()
    return returns


def test_to_sequences_cuts_and_pads_each_trajectory():
    padded = np.arange(2 * 5).reshape(2, 5) + 1
    seqs = to_sequences(padded, 2)
    np.testing.assert_array_equal(seqs, [[1, 2], [3, 4], [5, 0], [6, 7], [8, 9], [10, 0]])


def test_memory_is_carried_between_decisions_and_zeroed_at_episode_end():
    trainer = make_trainer(memory=True)
    env = CueEnv(4, 0)
    d, t = env.steps(first=True)
    trainer.process(d, t)
    assert np.abs(trainer.agents.memories).sum() > 0  # the LSTM state after the first decision
    env.act(np.zeros((4, 1), int))
    for _ in range(EPISODE - 1):
        d, t = env.steps()
        trainer.process(d, t)
        env.act(np.zeros((4, 1), int))
    d, t = env.steps()
    assert len(t) == 4
    before = trainer.agents.memories.copy()
    trainer.process(d, t)
    # Every episode ended: the memory used for the new first decision was zero, so the stored input
    # memory of that step is zero while the previous step's was not.
    stored = trainer.assembler.steps.memory[trainer.agents.lookup(d.agent_id), 0]
    assert np.abs(before).sum() > 0 and np.abs(stored).sum() == 0


@pytest.mark.parametrize("shared_critic", [False, True])
def test_sequence_replay_reproduces_the_log_probs_and_values_of_acting(shared_critic):
    trainer = make_trainer(memory=True, shared_critic=shared_critic)
    trainer.hp.num_epoch = 0  # keep the data: we evaluate it ourselves below
    env = CueEnv(8, 1)
    d, t = env.steps(first=True)
    for _ in range(70):  # more than one time_horizon: trajectories are cut and resumed mid-episode
        actions = trainer.process(d, t)
        env.act(actions.discrete)
        d, t = env.steps()
    data = {k: np.concatenate([c[k] for c in trainer._buffer]) for k in trainer._buffer[0]}
    batch = PPOBatch(**{k: torch.as_tensor(v) for k, v in data.items() if k in PPOBatch._fields})
    module = trainer.module
    s, length = batch.valid.shape
    x = module.preprocess(batch.obs.reshape(s * length, -1))
    split = module.actor_memory
    with torch.no_grad():
        log_prob, _ = module.actor.evaluate(
            x, batch.continuous.reshape(s * length, 0), batch.discrete.reshape(s * length, -1), None,
            batch.memories[:, :split], length,
        )  # fmt: skip
        values, _ = module.critic.values(x, module.critic_memories(batch.memories), length)
    valid = batch.valid.reshape(-1)
    torch.testing.assert_close(log_prob[valid], batch.old_log_prob.reshape(-1)[valid], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values[valid], batch.old_values.reshape(s * length, -1)[valid], atol=1e-5, rtol=1e-5)
    assert int(batch.valid.sum()) == trainer._buffered


def test_only_memory_solves_the_cue_task():
    with_memory = train(make_trainer(memory=True), 400)  # solved by ~250 steps (1,000 episodes)
    without = train(make_trainer(memory=False), 400)
    assert np.mean(with_memory[-400:]) > 0.9, np.mean(with_memory[-400:])
    assert np.mean(without[-400:]) < 0.65, np.mean(without[-400:])


def make_sac_trainer(memory: bool, seed: int = 0):
    from mlx.config import SACHyperparameters, SACSettings
    from mlx.trainers.sac.trainer import SACTrainer

    torch.manual_seed(seed)
    settings = SACSettings(
        hyperparameters=SACHyperparameters(
            batch_size=64, buffer_size=20_000, learning_rate=1e-3, steps_per_update=8.0, init_entcoef=0.1
        ),  # fmt: skip
        max_steps=40_000,
    )
    settings.network_settings.hidden_units = 32
    settings.network_settings.num_layers = 1
    if memory:
        settings.network_settings.memory = MemorySettings(sequence_length=4, memory_size=32)
    return SACTrainer("Cue", CueEnv(1, 0).spec, settings, {"extrinsic": ExtrinsicSettings(gamma=0.9)},
                      torch.device("cpu"), seed=seed)  # fmt: skip


def test_sequence_builder_cuts_per_agent_and_pads_at_episode_end():
    from mlx.trainers.sac.replay import SequenceBuilder

    builder = SequenceBuilder({"x": ((), np.float32)}, length=3, memory_size=1)
    out = []
    for t in range(4):  # agents 0 and 1 step together; agent 0's episode ends after its 2nd step
        slots = np.array([0, 1])
        ended = t == 1
        slots = slots if not ended else np.array([0])
        done = builder.add(slots, ended, np.full((len(slots), 1), 10.0 * t, np.float32), x=np.full(len(slots), t + 1.0))
        out.append(done)
    assert out[1]["x"].tolist() == [[1.0, 2.0, 0.0]] and out[1]["valid"].tolist() == [[True, True, False]]
    assert out[1]["memories"].tolist() == [[0.0]]
    assert out[2]["x"].tolist() == []  # agent 0 restarted at t=2; agent 1 (no step at t=1) holds 2 steps
    assert out[3]["x"].tolist() == [[1.0, 3.0, 4.0]] and out[3]["memories"].tolist() == [[0.0]]  # agent 1 full
    assert builder.table.count.tolist() == [2, 0] and builder.table.start_memory[0].tolist() == [20.0]  # agent 0: 3, 4


def test_recurrent_sac_solves_the_cue_task_and_plain_sac_cannot():
    with_memory = train(make_sac_trainer(memory=True), 300)  # solved by ~200 steps
    without = train(make_sac_trainer(memory=False), 300)
    assert np.mean(with_memory[-300:]) > 0.85, np.mean(with_memory[-300:])
    assert np.mean(without[-300:]) < 0.65, np.mean(without[-300:])


def test_lstm_starts_as_ml_agents_does():
    """Forget gate biases of 1 + 1 (input and recurrent), other biases 0, Xavier-bounded weights."""
    from mlx.trainers.nn.encoders import memory_lstm

    lstm = memory_lstm(32, 16)
    forget = lstm.bias_ih_l0[16:32] + lstm.bias_hh_l0[16:32]
    assert torch.equal(forget, torch.full((16,), 2.0))
    others = torch.cat([lstm.bias_ih_l0[:16], lstm.bias_ih_l0[32:], lstm.bias_hh_l0[:16], lstm.bias_hh_l0[32:]])
    assert torch.equal(others, torch.zeros_like(others))
    bound = (6.0 / (32 + 64)) ** 0.5
    assert lstm.weight_ih_l0.abs().max() <= bound and lstm.weight_ih_l0.abs().max() > 0.9 * bound
