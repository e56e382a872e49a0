"""Proximal Policy Optimization, as ML-Agents' PPO trainer defines it (seed 003).

`PPOModule` is the module (Lightning's module contract without Lightning's import:
`mlx.trainers.lightning_module`): networks, `training_step` (a pure loss of a minibatch) and the optimiser.
`PPOTrainer` is the algorithm's experience side: it acts and runs the update epochs (the
trajectories, advantages per reward stream and the update buffer are the on-policy base's,
`mlx.trainers.on_policy`). It drives the module's `training_step` with its own loop instead of
Lightning's Trainer: at ML-Agents' small batch sizes (64 for 3DBall) Lightning's per-step overhead
roughly doubles the cost of an optimiser step (DESIGN.md measurements).

Memory (``network_settings.memory``): actor and critic each end in an LSTM; every agent's (h, c) is
carried between its decisions and zeroed when its episode ends; minibatches hold batch_size /
sequence_length whole sequences, as in ML-Agents.

``hyperparameters.shared_critic`` (ML-Agents' PPO): actor and critic share one network body, the value
heads sitting on the policy's body, so both losses train it.

Two choices follow ML-Agents' torch trainer where mlx used to differ (3DBall, seeds 1-8: the median steps to
95 fell from 144k to 132k; README, "Time to reward"):
- The ratio is per action component: acting stores one log-probability per continuous dimension and per
  discrete branch, and the loss takes, clips and averages one ratio per component, the row's advantage
  broadcast over them (``losses.ppo_loss``), instead of one joint ratio per row.
- Steps are valued when their trajectory ends, not while acting: the normaliser first takes in the
  trajectory's observations, then the critic as it is now (after any update during the trajectory) values
  every step and the state after it; these values feed GAE and the value clipping. Acting runs no critic
  pass (with memory it still runs the critic to carry its memory; the values then come from each step's
  stored memory under the current weights).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mlx.config import PPOSettings
from mlx.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.trainers.base import action_mask, checked_obs, concat_vector_obs
from mlx.trainers.losses import PPOBatch, ppo_loss, total_loss
from mlx.trainers.nn.networks import Critic, InputNormalizer, actor_for
from mlx.trainers.on_policy import EXTRA_FIELDS, OnPolicyTrainer
from mlx.trainers.ppo.actor_critic import make_actor_critic
from mlx.trainers.trajectory import Trajectories, TrajectoryAssembler


class PPOModule(torch.nn.Module):
    """Actor and critic (one value head per reward stream) with a shared normaliser; separate bodies, or
    one (the actor's) with shared_critic."""

    def __init__(self, spec: BehaviorSpec, settings: PPOSettings, streams: list[str]) -> None:
        super().__init__()
        self.settings = settings
        ns = settings.network_settings
        shared = settings.hyperparameters.shared_critic
        self.normalizer = InputNormalizer(spec, ns) if ns.normalize else None
        self.actor = actor_for("ppo", spec, ns)
        self.critic = Critic(spec, streams, ns, self.actor.body if shared else None)
        self.actor_memory = self.actor.memory_size  # floats of the actor's memory (0 without memory)
        # An agent's memory: the actor's, then the critic's (none of its own with a shared body).
        self.memory_size = self.actor.memory_size + self.critic.memory_size
        # Set by the trainer from the schedules before each update.
        self.epsilon = settings.hyperparameters.epsilon
        self.beta = settings.hyperparameters.beta

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        return self.normalizer(obs) if self.normalizer is not None else obs

    def critic_memories(self, memories: torch.Tensor) -> torch.Tensor:
        """The critic's input memory from agents' memories: its own part, or the actor's when they share
        a body (ML-Agents' shared critic reads the policy's memory)."""
        return memories[:, : self.actor_memory] if self.critic.shared else memories[:, self.actor_memory :]

    def training_step(self, batch: PPOBatch, batch_idx: int) -> dict[str, torch.Tensor]:
        if batch.memories is not None:
            return self._sequence_step(batch)
        x = self.preprocess(batch.obs)
        mask = batch.action_mask if batch.action_mask.shape[-1] else None
        parts = batch.old_log_prob.dim() == 2  # per action component, as acting stores them
        log_prob, entropy = self.actor.evaluate(x, batch.continuous, batch.discrete, mask, components=parts)
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
        actor_mem, critic_mem = batch.memories[:, : self.actor_memory], self.critic_memories(batch.memories)
        parts = steps.old_log_prob.dim() == 2
        log_prob, entropy = self.actor.evaluate(
            x, steps.continuous, steps.discrete, mask, actor_mem, length, components=parts
        )
        values, _ = self.critic.values(x, critic_mem, length)
        valid = batch.valid.reshape(-1)
        real = PPOBatch(*(t[valid] for t in steps[: len(PPOBatch._fields) - 2]))
        terms = ppo_loss(log_prob[valid], entropy[valid], values[valid], real, self.epsilon, self.beta)
        terms["loss"] = total_loss(terms)
        return terms

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # fused Adam: one kernel for all parameters, about 30% faster per step at batch 64 on CPU.
        return torch.optim.Adam(self.parameters(), lr=self.settings.hyperparameters.learning_rate, fused=True)


class PPOTrainer(OnPolicyTrainer):
    def build_module(self) -> PPOModule:
        return PPOModule(self.spec, self.settings, self.streams).to(self.device)

    def _build_experience(self) -> None:
        super()._build_experience()
        # Acting and updating: in numpy where it applies (about 3x cheaper than torch at ML-Agents' sizes), else
        # with torch; the same interface either way (mlx.trainers.ppo.actor_critic).
        self.actor_critic = make_actor_critic(self.module, self.optimizer, self.device)

    def _freeze(self) -> None:
        self._frozen = self.actor_critic.frozen()

    # ---- acting -------------------------------------------------------------------------------
    def _make_assembler(self) -> TrajectoryAssembler:
        """Steps stored with one log-probability per action component (the per-component ratio)."""
        horizon, streams, a = self.settings.time_horizon, len(self.streams), self.spec.action_spec
        components = a.continuous_size + a.discrete_size
        return TrajectoryAssembler(self.spec, horizon, streams, self.memory_size, self.agents, components)

    def process(self, decision: DecisionSteps, terminal: TerminalSteps) -> ActionTuple:
        self._groups(decision, terminal)
        self._end_trajectories(terminal)
        n = len(decision)
        if n == 0:
            return self.spec.action_spec.empty(0)
        # Trajectories cut at time_horizon first, valued with the agents' memories as they are before this
        # step; acting then sees the normaliser they updated (upstream processes them before acting again).
        cut = self.assembler.record_rewards(decision, np.zeros((n, len(self.streams)), np.float32))
        if cut is not None:
            cut.needs_bootstrap[:] = True
            self._receive(cut)
        obs = checked_obs(decision.obs, self.behavior_name, self.step)
        mask = action_mask(decision, self.spec)
        memories = None
        if self.memory_size:
            rows = self.agents.lookup(decision.agent_id)
            memories = self.agents.memories[rows]
        acting = self.actor_critic if self._frozen is None else self._frozen
        cont, disc, log_prob, entropy, new_memories = acting.act_parts(obs, mask, memories)
        if new_memories is not None:
            self.agents.memories[rows] = new_memories
        self.stats.add("Policy/Entropy", float(entropy.mean()))
        values = np.zeros((n, len(self.streams)), np.float32)  # valued when the trajectory ends
        self.assembler.store(decision, cont, disc, log_prob, values, memories, mask)
        self.step += n
        return ActionTuple(continuous=self.module.actor.env_continuous(cont), discrete=disc)

    def _value_steps(self, traj: Trajectories, obs: np.ndarray) -> None:
        """Every step's values by the critic as it is now, after the normaliser took in this trajectory
        (upstream's order); with memory, from each step's stored critic memory."""
        memories = None if traj.memory is None else traj.flat(traj.memory)
        traj.values = traj.padded(self.actor_critic.values(obs, memories))

    def _bootstrap(self, traj: Trajectories) -> None:
        """Values of the states after interrupted or cut trajectories (their agents' memories are current)."""
        needs = traj.needs_bootstrap
        next_obs = concat_vector_obs([o[needs] for o in traj.next_obs])
        memories = self.agents.memories[traj.slots[needs]] if self.memory_size else None
        traj.bootstrap_value[needs] = self.actor_critic.values(next_obs, memories)

    # ---- updating -----------------------------------------------------------------------------
    def update(self) -> None:
        data = {k: np.concatenate([c[k] for c in self._buffer]) for k in self._buffer[0]}
        self._buffer.clear()
        self._buffered = 0
        valid = data.get("valid")
        lr, bs = self._begin_update(data)
        extra = {k: self._tensor(data.pop(k)) for k in EXTRA_FIELDS}
        n = len(data["obs"])  # steps, or sequences with memory
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

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "numpy_rng": self.actor_critic.sampler_state()}

    def _optimizer_state(self) -> dict[str, Any]:
        self.actor_critic.sync_optimizer_state()
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.actor_critic.adopt_optimizer_state()
        self.actor_critic.load_sampler_state(state.get("numpy_rng"))
