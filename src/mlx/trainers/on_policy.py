"""What on-policy trainers share (PPO now, POCA next): per-agent trajectories, advantages per reward
stream, the update buffer, reward-signal updates per minibatch and the decayed hyperparameters.

A subclass builds its module (``build_module``); it acts in ``process``
(storing each step with ``assembler.store``), values interrupted trajectories in ``_bootstrap``, and
optimises in ``update`` over ``_buffer``: chunks of named per-step arrays (per sequence with memory).
Memory (``network_settings.memory``): each step's input memory is stored with the step; trajectories are
cut into sequences of ``sequence_length`` steps (the last one padded), each replayed from the memory
stored at its first step. Padded steps are masked out of every loss.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np
import torch

from mlx.config import ScheduleType
from mlx.envs.api import TerminalSteps
from mlx.trainers.advantages import gae
from mlx.trainers.base import RLTrainer, checked_obs, concat_vector_obs
from mlx.trainers.losses import PPOBatch
from mlx.trainers.rewards.base import SignalBatch, SignalInputs, SignalRows
from mlx.trainers.schedules import BETA_FLOOR, EPSILON_FLOOR, LEARNING_RATE_FLOOR, decayed_value
from mlx.trainers.trajectory import Trajectories, TrajectoryAssembler
from mlx.training.timers import timed

# Per-step fields of the update buffer besides PPOBatch's (used by reward signals).
EXTRA_FIELDS = ("next_obs", "env_reward", "done")


def to_sequences(padded: np.ndarray, length: int) -> np.ndarray:
    """[E, T, ...] -> [E * ceil(T / length), length, ...]: each trajectory cut into sequences, zero-padded."""
    e, t = padded.shape[:2]
    chunks = math.ceil(t / length)
    out = np.zeros((e, chunks * length, *padded.shape[2:]), dtype=padded.dtype)
    out[:, :t] = padded
    return out.reshape(e * chunks, length, *padded.shape[2:])


def step_done(traj: Trajectories) -> np.ndarray:
    """[E, T] 1.0 on the last step of each trajectory that ended its episode (terminated or interrupted)."""
    done = np.zeros(traj.log_prob.shape[:2], np.float32)
    ended = np.flatnonzero(traj.episode_end)
    done[ended, traj.lengths[ended] - 1] = 1.0
    return done


class OnPolicyTrainer(RLTrainer):
    """Trajectories in, advantages and an update buffer out (see the module docstring)."""

    def _build_experience(self) -> None:
        self.assembler = self._make_assembler()
        self._buffer: list[dict[str, np.ndarray]] = []
        self._buffered = 0
        self.update_count = 0
        self._held: list[Trajectories] | None = None  # trajectories that ended while a threaded update ran
        self._frozen: Any = None  # the policy copy that acts while a threaded update runs (``_freeze``)
        self._needs_next_obs = any(r.uses_next_obs for r in self.reward_signals.values())

    def _make_assembler(self) -> TrajectoryAssembler:
        """Where each agent's steps collect until a trajectory ends (MA-POCA's also holds its groupmates')."""
        horizon, streams = self.settings.time_horizon, len(self.streams)
        return TrajectoryAssembler(self.spec, horizon, streams, self.memory_size, self.agents)

    def _value_steps(self, traj: Trajectories, obs: np.ndarray) -> None:
        """Fill traj.values [E, T, K] for the flat observation rows ``obs``; called after the normaliser took
        in the trajectory and before the bootstrap. By default the values stored while acting are kept."""

    @abc.abstractmethod
    def _bootstrap(self, traj: Trajectories) -> None:
        """Fill traj.bootstrap_value where traj.needs_bootstrap: the values of the states after
        interrupted trajectories (their agents' memories are still current)."""

    def _advantages(self, traj: Trajectories, rewards: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Advantages [E, T] (the mean over streams) and returns [E, T, K]: GAE per reward stream."""
        advantages, returns = [], []
        for k, (name, signal) in enumerate(self.reward_signals.items()):
            adv, ret = gae(
                rewards[k], traj.values[..., k], traj.bootstrap_value[:, k], traj.lengths, signal.gamma, self.hp.lambd
            )
            advantages.append(adv)
            returns.append(ret)
            self.stats.add(f"Policy/{name.capitalize()} Value Estimate", traj.flat(traj.values[..., k]))
        return np.mean(advantages, axis=0), np.stack(returns, axis=-1)

    def _end_trajectories(self, terminal: TerminalSteps) -> None:
        """The episodes that ended at this step: report them, and learn from their trajectories."""
        finished, episodes = self.assembler.end_episodes(terminal)
        if finished is not None:
            self._receive(finished)
        self._end_episodes(episodes, terminal)

    def _receive(self, traj: Trajectories) -> None:
        """A trajectory ends (episode end or time_horizon cut) and goes in; while a threaded update runs, it
        waits for the updated model (``thaw_policy``)."""
        if self._held is not None:
            self._held.append(traj)
            return
        self._add_trajectories(traj)

    # ---- threaded updates (ML-Agents' ``threaded``; mlx.training.background) ----------------------
    def freeze_policy(self) -> None:
        """Before ``update`` runs in another thread: the agents act with a frozen copy of the policy, and the
        trajectories that end meanwhile wait, to be processed by the updated model (as upstream's trainer
        thread processes its queue after each update). Nothing else the update reads changes meanwhile."""
        self._freeze()
        self._held = []

    def held_enough(self) -> bool:
        """A buffer's worth of steps waits for the threaded update: the agents stop acting until it ends, so
        that no update learns from a policy more than one update old."""
        return self._held is not None and sum(int(t.lengths.sum()) for t in self._held) >= self.hp.buffer_size

    def thaw_policy(self) -> None:
        """After the threaded update: act with the updated policy; the trajectories that waited go in."""
        self._frozen = None
        held, self._held = self._held or [], None
        for traj in held:
            self._receive(traj)

    @abc.abstractmethod
    def _freeze(self) -> None:
        """Set ``_frozen``: a copy of the policy that the update does not change (None: the live one acts)."""

    @timed("process_trajectory")
    def _add_trajectories(self, traj: Trajectories) -> None:
        """As upstream: the normaliser takes in the trajectory's observations, then its steps are valued and
        bootstrapped, advantages estimated per reward stream, and the experience moved to the update buffer."""
        obs = concat_vector_obs([traj.flat(o) for o in traj.obs])
        if self.module.normalizer is not None:
            self.module.normalizer.update(obs)  # numpy on CPU: no tensor needed
        self._value_steps(traj, obs)
        if traj.needs_bootstrap.any():
            self._bootstrap(traj)
        env_reward = traj.flat(traj.env_reward)
        rewards, next_obs, flat_done = self._trajectory_rewards(traj, obs, env_reward)
        done = traj.padded(flat_done)
        advantages, returns = self._advantages(traj, rewards)
        padded = {
            "continuous": traj.continuous,
            "discrete": traj.discrete,
            "action_mask": traj.action_mask,
            "old_log_prob": traj.log_prob,
            "old_values": traj.values,
            "returns": returns,
            "advantages": advantages,
            "env_reward": traj.env_reward,
            "done": done,
        }
        if self.memory_size:
            chunk = self._sequences(traj, padded, obs, next_obs)
        else:
            chunk = {key: traj.flat(value) for key, value in padded.items()}
            chunk.update(obs=obs, next_obs=next_obs)
        self._buffer.append(chunk)
        self._buffered += len(obs)

    def _sequences(
        self, traj: Trajectories, padded: dict[str, np.ndarray], obs: np.ndarray, next_obs: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Padded trajectories cut into sequence_length pieces, with each piece's starting memory."""
        length = self.sequence_length
        valid = traj.valid()
        padded["obs"] = traj.padded(obs)
        padded["next_obs"] = traj.padded(next_obs)
        chunk = {key: to_sequences(value, length) for key, value in padded.items()}
        seq_valid = to_sequences(valid, length)
        keep = seq_valid[:, 0]
        chunk = {key: value[keep] for key, value in chunk.items()}
        assert traj.memory is not None
        starts = to_sequences(traj.memory, length)[:, 0]
        chunk["memories"] = starts[keep]
        chunk["valid"] = seq_valid[keep]
        return chunk

    def _trajectory_rewards(
        self, traj: Trajectories, obs: np.ndarray, extrinsic: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Each reward stream's rewards [E, T] for the trajectories, their sums added to the agents' signal
        returns. ``extrinsic``: the flat reward the extrinsic stream reads (PPO: the env's; POCA: the team's).
        Also returns what the update's signal steps read: the flat next observations and done flags."""
        if self._needs_next_obs:
            next_obs = checked_obs(traj.flat_next_obs(), self.behavior_name, self.step)
        else:
            next_obs = np.zeros((len(obs), 0), np.float32)
        done = traj.flat(step_done(traj))
        inputs = SignalInputs(
            extrinsic,
            lambda: SignalRows(
                obs,
                next_obs,
                self.module.actor.env_continuous(traj.flat(traj.continuous)),
                traj.flat(traj.discrete),
                traj.flat(traj.env_reward),
                done,
            ),
            self.device,
        )
        rewards = [traj.padded(r) for r in self._signal_rewards(inputs)]
        sums = [r.sum(axis=1, dtype=np.float64) for r in rewards]  # each trajectory's, per stream
        self._add_signal_returns(traj.slots, sums, traj.slots[traj.episode_end])
        return rewards, next_obs, done

    # ---- updating -----------------------------------------------------------------------------
    def ready_to_update(self) -> bool:
        return self._buffered >= self.hp.buffer_size

    def _schedule(self, schedule: ScheduleType | None, initial: float, floor: float) -> float:
        return decayed_value(
            schedule or self.hp.learning_rate_schedule, initial, floor, self.step, self.settings.max_steps
        )

    def _begin_update(self, data: dict[str, np.ndarray]) -> tuple[float, int]:
        """What every update starts with: the advantages normalised over the buffer's real steps (not the
        padding of sequences), the decayed learning rate, epsilon and beta set. Returns the learning rate and
        the minibatch size in buffer rows (steps, or whole sequences with memory)."""
        valid = data.get("valid")
        adv = data["advantages"]
        real = adv if valid is None else adv[valid]
        data["advantages"] = ((adv - real.mean()) / (real.std() + 1e-10)).astype(np.float32)
        lr = self._schedule(self.hp.learning_rate_schedule, self.hp.learning_rate, LEARNING_RATE_FLOOR)
        self.module.epsilon = self._schedule(self.hp.epsilon_schedule, self.hp.epsilon, EPSILON_FLOOR)
        self.module.beta = self._schedule(self.hp.beta_schedule, self.hp.beta, BETA_FLOOR)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr, self.hp.batch_size if valid is None else max(1, self.hp.batch_size // self.sequence_length)

    def _update_signals(self, batch: PPOBatch, extra: dict[str, torch.Tensor], sums: dict[str, float]) -> None:
        """One optimiser step of every learning signal on the real steps of this minibatch (ML-Agents' PPO)."""
        obs, cont, disc = batch.obs, batch.continuous, batch.discrete
        next_obs, env_reward, done = extra["next_obs"], extra["env_reward"], extra["done"]
        if batch.valid is not None:
            valid = batch.valid
            obs, cont, disc, next_obs, env_reward, done = (
                t[valid] for t in (obs, cont, disc, next_obs, env_reward, done)
            )
        cont = self.module.actor.env_continuous(cont)
        self._step_signals(SignalBatch(obs, next_obs, cont, disc, env_reward, done), sums)

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "update_count": self.update_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.update_count = int(state["update_count"])

    def discard_experience(self) -> None:
        self._buffer.clear()
        self._buffered = 0

    def reset_trajectories(self) -> None:
        self.assembler.reset()
