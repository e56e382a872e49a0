"""Proximal Policy Optimization, as ML-Agents' PPO trainer defines it (seed 003).

`PPOModule` is the LightningModule: networks, `training_step` (a pure loss of a minibatch) and the
optimiser. `PPOTrainer` is the algorithm's experience side: it acts, assembles trajectories, estimates
advantages per reward stream and runs the update epochs. It drives the module's `training_step` with
its own loop instead of Lightning's Trainer: at ML-Agents' small batch sizes (64 for 3DBall) Lightning's
per-step overhead roughly doubles the cost of an optimiser step (DESIGN.md measurements).

Memory (``network_settings.memory``): actor and critic each end in an LSTM; every agent's (h, c) is
carried between its decisions and zeroed when its episode ends. Each step's input memory is stored with
the step; trajectories are cut into sequences of ``sequence_length`` steps (the last one padded), each
replayed from the memory stored at its first step, and minibatches hold batch_size / sequence_length
whole sequences, as in ML-Agents. Padded steps are masked out of every loss.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from mlx.config import PPOSettings, ScheduleType
from mlx.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.trainers.advantages import gae
from mlx.trainers.base import RLTrainer, checked_obs, concat_vector_obs
from mlx.trainers.bc import make_behavioral_cloning
from mlx.trainers.losses import PPOBatch, ppo_loss, total_loss
from mlx.trainers.nn.networks import CONTINUOUS_CLIP, Actor, Critic, InputNormalizer, to_env_continuous
from mlx.trainers.ppo.actor_critic import make_actor_critic
from mlx.trainers.rewards import SignalBatch, make_reward_signal
from mlx.trainers.schedules import BETA_FLOOR, EPSILON_FLOOR, LEARNING_RATE_FLOOR, decayed_value
from mlx.trainers.trajectory import Trajectories, TrajectoryAssembler

# Per-step fields of the update buffer besides PPOBatch's (used by reward signals).
EXTRA_FIELDS = ("next_obs", "env_reward", "done")


class PPOModule(pl.LightningModule):
    """Actor and critic (separate bodies, one value head per reward stream) with a shared normaliser."""

    def __init__(self, spec: BehaviorSpec, settings: PPOSettings, streams: list[str]) -> None:
        super().__init__()
        self.settings = settings
        ns = settings.network_settings
        self.normalizer = InputNormalizer(spec, ns) if ns.normalize else None
        self.actor = Actor(spec, ns)
        self.critic = Critic(spec, streams, ns)
        self.actor_memory = self.actor.memory_size  # floats of the actor's memory (0 without memory)
        self.memory_size = self.actor.memory_size + self.critic.memory_size
        # Set by the trainer from the schedules before each update.
        self.epsilon = settings.hyperparameters.epsilon
        self.beta = settings.hyperparameters.beta

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        return self.normalizer(obs) if self.normalizer is not None else obs

    def training_step(self, batch: PPOBatch, batch_idx: int) -> dict[str, torch.Tensor]:
        if batch.memories is not None:
            return self._sequence_step(batch)
        x = self.preprocess(batch.obs)
        mask = batch.action_mask if batch.action_mask.shape[-1] else None
        log_prob, entropy = self.actor.evaluate(x, batch.continuous, batch.discrete, mask)
        terms = ppo_loss(log_prob, entropy, self.critic(x), batch, self.epsilon, self.beta)
        terms["loss"] = total_loss(terms)
        return terms

    def _sequence_step(self, batch: PPOBatch) -> dict[str, torch.Tensor]:
        """A minibatch of S sequences of L steps: replay both LSTMs, then the loss over real steps only."""
        assert batch.memories is not None and batch.valid is not None
        s, length = batch.valid.shape
        steps = PPOBatch(*(t.reshape(s * length, *t.shape[2:]) for t in batch[: len(PPOBatch._fields) - 2]))
        x = self.preprocess(steps.obs)
        mask = steps.action_mask if steps.action_mask.shape[-1] else None
        actor_mem, critic_mem = batch.memories[:, : self.actor_memory], batch.memories[:, self.actor_memory :]
        log_prob, entropy = self.actor.evaluate(x, steps.continuous, steps.discrete, mask, actor_mem, length)
        values, _ = self.critic.values(x, critic_mem, length)
        valid = batch.valid.reshape(-1)
        real = PPOBatch(*(t[valid] for t in steps[: len(PPOBatch._fields) - 2]))
        terms = ppo_loss(log_prob[valid], entropy[valid], values[valid], real, self.epsilon, self.beta)
        terms["loss"] = total_loss(terms)
        return terms

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # fused Adam: one kernel for all parameters, about 30% faster per step at batch 64 on CPU.
        return torch.optim.Adam(self.parameters(), lr=self.settings.hyperparameters.learning_rate, fused=True)


def to_sequences(padded: np.ndarray, length: int) -> np.ndarray:
    """[E, T, ...] -> [E * ceil(T / length), length, ...]: each trajectory cut into sequences, zero-padded."""
    e, t = padded.shape[:2]
    chunks = math.ceil(t / length)
    out = np.zeros((e, chunks * length, *padded.shape[2:]), dtype=padded.dtype)
    out[:, :t] = padded
    return out.reshape(e * chunks, length, *padded.shape[2:])


def step_done(traj: Trajectories) -> np.ndarray:
    """[E, T] 1.0 on the last step of each trajectory that ended its episode (terminated or interrupted)."""
    done = np.zeros(traj.log_prob.shape, np.float32)
    ended = np.flatnonzero(traj.episode_end)
    done[ended, traj.lengths[ended] - 1] = 1.0
    return done


class PPOTrainer(RLTrainer):
    def __init__(
        self,
        behavior_name: str,
        spec: BehaviorSpec,
        settings: PPOSettings,
        reward_signals: dict[str, Any],
        device: torch.device,
    ) -> None:
        super().__init__(behavior_name, spec)
        self.settings = settings
        self.hp = settings.hyperparameters
        self.signals = reward_signals
        self.streams = list(reward_signals)
        self.device = device
        self.module = PPOModule(spec, settings, self.streams).to(device)
        self.optimizer = self.module.configure_optimizers()
        self.memory_size = self.module.memory_size
        memory = settings.network_settings.memory
        self.sequence_length = memory.sequence_length if memory is not None else 1
        self.assembler = TrajectoryAssembler(spec, settings.time_horizon, len(self.streams), self.memory_size)
        self._memories = np.zeros((0, self.memory_size), np.float32)  # each agent slot's current memory
        self._buffer: list[dict[str, np.ndarray]] = []
        self._buffered = 0
        self.update_count = 0
        # Reward signals with a model of their own (curiosity, rnd, ...); extrinsic needs none.
        self.intrinsic = {
            name: make_reward_signal(name, spec, sig, device, behavior_name)
            for name, sig in reward_signals.items()
            if name != "extrinsic"
        }
        self._needs_next_obs = any(r.uses_next_obs for r in self.intrinsic.values())
        # behavioral_cloning: a supervised pass over the demonstrations after each update (mlx.trainers.bc)
        self.bc = make_behavioral_cloning(
            behavior_name, spec, settings, self.module.actor, self.module.preprocess, device
        )
        self._signal_returns = {name: np.zeros(0) for name in self.intrinsic}  # per agent slot, this episode
        # Acting and updating: in numpy where it applies (about 3x cheaper than torch at ML-Agents' sizes), else
        # with torch; the same interface either way (mlx.trainers.ppo.actor_critic).
        self.actor_critic = make_actor_critic(self.module, self.optimizer, device)

    # ---- acting -------------------------------------------------------------------------------
    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def _memory_rows(self, agent_ids: np.ndarray) -> np.ndarray:
        """Slot indices of agents, growing the memory table for new agents (zero memory)."""
        slots = self.assembler.slots_for(agent_ids)
        if self.assembler.slots.count > len(self._memories):
            grow = self.assembler.slots.count - len(self._memories)
            self._memories = np.concatenate([self._memories, np.zeros((grow, self.memory_size), np.float32)])
        return slots

    def process(self, decision: DecisionSteps, terminal: TerminalSteps) -> ActionTuple:
        finished, episodes = self.assembler.end_episodes(terminal)
        if len(episodes.returns):
            self.stats.add("Environment/Cumulative Reward", episodes.returns)
            self.stats.add("Environment/Episode Length", episodes.lengths)
            for name, sig in self.signals.items():
                if name == "extrinsic":
                    self.stats.add("Policy/Extrinsic Reward", episodes.returns * sig.strength)
        if finished is not None:
            self._add_trajectories(finished)
        if self.memory_size and len(terminal):
            self._memories[self._memory_rows(terminal.agent_id)] = 0.0  # a new episode starts with no memory
        n = len(decision)
        if n == 0:
            return self.spec.action_spec.empty(0)
        obs = checked_obs(decision.obs, self.behavior_name, self.step)
        mask = None
        if decision.action_mask is not None and self.spec.action_spec.discrete_size:
            mask = np.concatenate(decision.action_mask, axis=1).astype(bool)
        memories = None
        if self.memory_size:
            rows = self._memory_rows(decision.agent_id)
            memories = self._memories[rows]
        cont, disc, log_prob, entropy, values, new_memories = self.actor_critic.act(obs, mask, memories)
        if new_memories is not None:
            self._memories[rows] = new_memories
        self.stats.add("Policy/Entropy", float(entropy.mean()))
        cut = self.assembler.record_rewards(decision, values)
        if cut is not None:
            self._add_trajectories(cut)
        self.assembler.store(decision, cont, disc, log_prob, values, memories)
        self.step += n
        env_cont = np.clip(cont, -CONTINUOUS_CLIP, CONTINUOUS_CLIP) / CONTINUOUS_CLIP  # to_env_continuous, in numpy
        return ActionTuple(continuous=env_cont, discrete=disc)

    def _bootstrap(self, traj: Trajectories) -> None:
        """Values of the states after interrupted trajectories (their agents' memories are still current)."""
        needs = traj.needs_bootstrap
        next_obs = self._tensor(concat_vector_obs([o[needs] for o in traj.next_obs]))
        with torch.inference_mode():
            x = self.module.preprocess(next_obs)
            if self.memory_size:
                mem = self._tensor(self._memories[traj.slots[needs], self.module.actor_memory :])
                values = self.module.critic.values(x, mem)[0]
            else:
                values = self.module.critic(x)
        traj.bootstrap_value[needs] = values.cpu().numpy()

    def _add_trajectories(self, traj: Trajectories) -> None:
        """Bootstrap, estimate advantages per reward stream, and move the experience to the update buffer."""
        if traj.needs_bootstrap.any():
            self._bootstrap(traj)
        obs = concat_vector_obs([traj.flat(o) for o in traj.obs])
        if self._needs_next_obs:
            next_obs = concat_vector_obs(traj.flat_next_obs())
        else:
            next_obs = np.zeros((len(obs), 0), np.float32)
        done = step_done(traj)
        intrinsic = self._intrinsic_rewards(traj, obs, next_obs, done)
        advantages, returns = [], []
        for k, (name, sig) in enumerate(self.signals.items()):
            rewards = traj.env_reward * sig.strength if name == "extrinsic" else intrinsic[name]
            adv, ret = gae(
                rewards, traj.values[..., k], traj.bootstrap_value[:, k], traj.lengths, sig.gamma, self.hp.lambd
            )
            advantages.append(adv)
            returns.append(ret)
            self.stats.add(f"Policy/{name.capitalize()} Value Estimate", traj.flat(traj.values[..., k]))
        if self.module.normalizer is not None:
            self.module.normalizer.update(obs)  # numpy on CPU: no tensor needed
        padded = {
            "continuous": traj.continuous,
            "discrete": traj.discrete,
            "action_mask": traj.action_mask,
            "old_log_prob": traj.log_prob,
            "old_values": traj.values,
            "returns": np.stack(returns, axis=-1),
            "advantages": np.mean(advantages, axis=0),
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

    def _signal_batch(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        continuous: np.ndarray,
        discrete: np.ndarray,
        env_reward: np.ndarray,
        done: np.ndarray,
    ) -> SignalBatch:
        return SignalBatch(
            obs=self._tensor(obs),
            next_obs=self._tensor(next_obs),
            continuous=to_env_continuous(self._tensor(continuous)),
            discrete=self._tensor(discrete),
            env_reward=self._tensor(env_reward),
            done=self._tensor(done),
        )

    def _intrinsic_rewards(
        self, traj: Trajectories, obs: np.ndarray, next_obs: np.ndarray, done: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Each intrinsic signal's rewards, times its strength, padded [E, T]; episode sums go to the stats."""
        if not self.intrinsic:
            return {}
        batch = self._signal_batch(
            obs,
            next_obs,
            traj.flat(traj.continuous),
            traj.flat(traj.discrete),
            traj.flat(traj.env_reward),
            traj.flat(done),
        )
        out = {}
        for name, signal in self.intrinsic.items():
            padded = traj.padded(signal.rewards(batch) * self.signals[name].strength)
            out[name] = padded
            totals = self._signal_returns[name]
            if len(totals) <= traj.slots.max():
                totals = self._signal_returns[name] = np.concatenate(
                    [totals, np.zeros(traj.slots.max() + 1 - len(totals))]
                )
            np.add.at(totals, traj.slots, padded.sum(axis=1))
            ended = traj.slots[traj.episode_end]
            if len(ended):
                self.stats.add(f"Policy/{name.capitalize()} Reward", totals[ended])
                totals[ended] = 0.0
        return out

    # ---- updating -----------------------------------------------------------------------------
    def ready_to_update(self) -> bool:
        return self._buffered >= self.hp.buffer_size

    def _schedule(self, schedule: ScheduleType | None, initial: float, floor: float) -> float:
        return decayed_value(
            schedule or self.hp.learning_rate_schedule, initial, floor, self.step, self.settings.max_steps
        )

    def update(self) -> None:
        data = {k: np.concatenate([c[k] for c in self._buffer]) for k in self._buffer[0]}
        self._buffer.clear()
        self._buffered = 0
        valid = data.get("valid")
        adv = data["advantages"]
        real = adv if valid is None else adv[valid]
        data["advantages"] = ((adv - real.mean()) / (real.std() + 1e-10)).astype(np.float32)
        extra = {k: self._tensor(data.pop(k)) for k in EXTRA_FIELDS}
        n = len(data["obs"])  # steps, or sequences with memory
        lr = self._schedule(self.hp.learning_rate_schedule, self.hp.learning_rate, LEARNING_RATE_FLOOR)
        self.module.epsilon = self._schedule(self.hp.epsilon_schedule, self.hp.epsilon, EPSILON_FLOOR)
        self.module.beta = self._schedule(self.hp.beta_schedule, self.hp.beta, BETA_FLOOR)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        bs = max(1, self.hp.batch_size // self.sequence_length) if valid is not None else self.hp.batch_size
        sums: dict[str, torch.Tensor] = {}  # summed as tensors: one host sync per update, not per step
        signal_sums: dict[str, float] = {}
        count = 0
        self.module.train()
        net = self.actor_critic
        net.load(data, self.module.epsilon, self.module.beta)
        for _ in range(self.hp.num_epoch):
            perm = torch.randperm(n, device=self.device)
            for i in range(max(1, n // bs)):
                idx = perm[i * bs : (i + 1) * bs]
                terms = net.loss(idx)
                self.check_loss(float(terms["loss"]))  # before the step: a non-finite loss changes nothing
                net.step()
                if self.intrinsic:
                    self._update_signals(net.minibatch(idx), {k: v[idx] for k, v in extra.items()}, signal_sums)
                for key in ("policy_loss", "value_loss", "approx_kl", "clip_fraction"):
                    sums[key] = sums.get(key, 0.0) + terms[key]
                count += 1
        self.update_count += 1
        if count:
            self.stats.add("Losses/Policy Loss", float(sums["policy_loss"]) / count)
            self.stats.add("Losses/Value Loss", float(sums["value_loss"]) / count)
            self.stats.add("Policy/Approx KL", float(sums["approx_kl"]) / count)
            self.stats.add("Policy/Clip Fraction", float(sums["clip_fraction"]) / count)
            for key, total in signal_sums.items():
                self.stats.add(key, total / count)
        if self.bc is not None:
            for key, value in self.bc.update(self.step).items():
                self.stats.add(key, value)
        returns = data["returns"] if valid is None else data["returns"][valid]
        values = data["old_values"] if valid is None else data["old_values"][valid]
        var = returns.var()
        self.stats.add("Policy/Explained Variance", float(1 - (returns - values).var() / var) if var > 0 else 0.0)
        self.stats.add("Policy/Learning Rate", lr)
        self.stats.add("Policy/Epsilon", self.module.epsilon)
        self.stats.add("Policy/Beta", self.module.beta)

    def _update_signals(self, batch: PPOBatch, extra: dict[str, torch.Tensor], sums: dict[str, float]) -> None:
        """One optimiser step of every intrinsic signal on the real steps of this minibatch (ML-Agents' PPO)."""
        obs, cont, disc = batch.obs, batch.continuous, batch.discrete
        next_obs, env_reward, done = extra["next_obs"], extra["env_reward"], extra["done"]
        if batch.valid is not None:
            valid = batch.valid
            obs, cont, disc, next_obs, env_reward, done = (
                t[valid] for t in (obs, cont, disc, next_obs, env_reward, done)
            )
        signal_batch = SignalBatch(
            obs=obs,
            next_obs=next_obs,
            continuous=to_env_continuous(cont),
            discrete=disc,
            env_reward=env_reward,
            done=done,
        )
        for signal in self.intrinsic.values():
            for key, value in signal.update(signal_batch).items():
                sums[key] = sums.get(key, 0.0) + value

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "module": self.module.state_dict(),
            "optimizer": self._optimizer_state(),
            "step": self.step,
            "update_count": self.update_count,
            "torch_rng": torch.get_rng_state(),
            "reward_signals": {name: signal.state() for name, signal in self.intrinsic.items()},
            "behavioral_cloning": self.bc.state() if self.bc is not None else None,
            "numpy_rng": self.actor_critic.sampler_state(),
        }

    def _optimizer_state(self) -> dict[str, Any]:
        self.actor_critic.sync_optimizer_state()
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.actor_critic.adopt_optimizer_state()
        self.step = int(state["step"])
        self.update_count = int(state["update_count"])
        torch.set_rng_state(state["torch_rng"])
        for name, signal in self.intrinsic.items():
            signal.load_state(state["reward_signals"][name])
        if self.bc is not None and state.get("behavioral_cloning") is not None:
            self.bc.load_state(state["behavioral_cloning"])
        self.actor_critic.load_sampler_state(state.get("numpy_rng"))

    def discard_experience(self) -> None:
        self._buffer.clear()
        self._buffered = 0

    def reset_trajectories(self) -> None:
        self.assembler.reset()
        self._memories[:] = 0.0
