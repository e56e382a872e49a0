"""Soft Actor-Critic, as ML-Agents' SAC trainer defines it (seed 003).

`SACModule` (LightningModule): a tanh-squashed Gaussian actor with state-dependent sigma and/or
categorical branches, twin Q networks (one batched ensemble), a value network V per reward stream and
its target copy (updated by `tau`), and learned entropy coefficients (one for the continuous actions,
one per discrete branch). `SACTrainer`: acting, the bounded replay buffer, `steps_per_update`,
`buffer_init_steps` and `save_replay_buffer`.

Every loss term comes from one forward pass and one backward pass: the policy reads Q through
detached weights, so Q is trained by its own regression only (see networks.EnsembleMLP).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from mlx.config import SACSettings
from mlx.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.trainers.base import RLTrainer, checked_obs
from mlx.trainers.bc import make_behavioral_cloning
from mlx.trainers.losses import SACBatch, SACOutputs, sac_loss, total_loss
from mlx.trainers.nn.encoders import ObsLayout, StateEncoder
from mlx.trainers.nn.networks import Actor, Critic, EnsembleMLP, InputNormalizer, flat_obs_size
from mlx.trainers.rewards import SignalBatch, make_reward_signal
from mlx.trainers.sac.replay import ReplayBuffer, SequenceBuilder, TransitionAssembler
from mlx.trainers.schedules import LEARNING_RATE_FLOOR, decayed_value

# ML-Agents' target entropies: -|A| for continuous actions, 0.2 * log(n) nats per discrete branch.
CONTINUOUS_TARGET_ENTROPY_SCALE = 1.0
DISCRETE_TARGET_ENTROPY_SCALE = 0.2


class SACModule(pl.LightningModule):
    def __init__(self, spec: BehaviorSpec, settings: SACSettings, streams: list[str], gammas: list[float]) -> None:
        super().__init__()
        self.settings = settings
        a = spec.action_spec
        self.branches = tuple(a.discrete_branches)
        ns = settings.network_settings
        self.num_streams = len(streams)
        self.q_out = sum(self.branches) if self.branches else 1
        self.normalizer = InputNormalizer(spec, ns) if ns.normalize else None
        self.actor = Actor(spec, ns, conditional_sigma=True, tanh_squash=True)
        self.value = Critic(spec, streams, ns)
        # Vector-only behaviours feed the twin Q MLPs directly; cameras and goal signals first go through an
        # encoder that both Q members share (trained by the Q losses only). With memory the Q members read
        # the value network's recurrent features instead, so V and Q share one memory of the past.
        layout = ObsLayout(spec, ns.conditioning_type)
        self.recurrent = ns.memory is not None
        self.q_encoder = None if layout.plain or self.recurrent else StateEncoder(spec, ns, use_memory=False)
        if self.recurrent:
            q_in = self.value.body.output_size
        else:
            q_in = layout.size if self.q_encoder is None else self.q_encoder.output_size
        self.q = EnsembleMLP(2, q_in + a.continuous_size, ns.hidden_units, ns.num_layers, self.num_streams * self.q_out)
        self.actor_memory = self.actor.memory_size
        self.memory_size = self.actor.memory_size + self.value.memory_size
        self.target_value = copy.deepcopy(self.value).requires_grad_(False)
        init = math.log(settings.hyperparameters.init_entcoef)
        self.log_alpha_cont = torch.nn.Parameter(torch.full((1,), init)) if a.continuous_size else None
        self.log_alpha_disc = torch.nn.Parameter(torch.full((len(self.branches),), init)) if self.branches else None
        self.register_buffer("gammas", torch.tensor(gammas, dtype=torch.float32))
        self.register_buffer(
            "target_entropy_disc",
            torch.tensor([DISCRETE_TARGET_ENTROPY_SCALE * math.log(n) for n in self.branches], dtype=torch.float32),
        )
        self.target_entropy_cont = -CONTINUOUS_TARGET_ENTROPY_SCALE * a.continuous_size

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        return self.normalizer(obs) if self.normalizer is not None else obs

    def q_features(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.q_encoder is None else self.q_encoder(x)[0]

    def _q(self, x: torch.Tensor, cont: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """Twin Q values [2, B, K, Q] from Q features x (see q_features)."""
        if detach:
            x = x.detach()
        inp = torch.cat([x, cont], dim=-1) if cont.shape[-1] else x
        out = self.q(inp, detach=detach)  # [2, B, K * Q]
        return out.view(2, x.shape[0], self.num_streams, self.q_out)

    def training_step(self, batch: SACBatch, batch_idx: int) -> dict[str, torch.Tensor]:
        if batch.memories is not None:
            return self._sequence_step(batch)
        x = self.preprocess(batch.obs)
        with torch.no_grad():
            next_values = self.target_value(self.preprocess(batch.next_obs))
        mask = batch.mask if batch.mask.shape[-1] else None
        cont, cont_log_prob, branch_log_probs = self.actor.sac_sample(x, mask)
        qx = self.q_features(x)
        out = SACOutputs(
            q_taken=self._q(qx, batch.continuous),
            q_policy=self._q(qx, cont, detach=True),
            values=self.value(x),
            next_values=next_values,
            cont_log_prob=cont_log_prob,
            branch_log_probs=branch_log_probs,
            log_alpha_cont=self.log_alpha_cont,
            log_alpha_disc=self.log_alpha_disc,
        )
        terms = sac_loss(out, batch, self.gammas, self.branches, self.target_entropy_cont, self.target_entropy_disc)
        terms["loss"] = total_loss(terms)
        return terms

    def _sequence_step(self, batch: SACBatch) -> dict[str, torch.Tensor]:
        """S sequences of L steps: actor and critic replayed from their stored memories, the target value
        over (s_0, s'_0 .. s'_{L-1}) from the critic's, then the loss over real steps only."""
        assert batch.memories is not None and batch.valid is not None
        s, length = batch.valid.shape
        fields = len(SACBatch._fields) - 2
        steps = SACBatch(*(t.reshape(s * length, *t.shape[2:]) for t in batch[:fields]))
        actor_mem, critic_mem = batch.memories[:, : self.actor_memory], batch.memories[:, self.actor_memory :]
        x = self.preprocess(steps.obs)
        mask = steps.mask if steps.mask.shape[-1] else None
        cont, cont_log_prob, branch_log_probs = self.actor.sac_sample(x, mask, actor_mem, length)
        h, _ = self.value.body(x, critic_mem, length)
        with torch.no_grad():
            after = torch.cat([batch.obs[:, :1], batch.next_obs], dim=1)  # [S, L + 1, D]
            th, _ = self.target_value.body(self.preprocess(after.reshape(s * (length + 1), -1)), critic_mem, length + 1)
            next_values = self.target_value.heads(th).view(s, length + 1, -1)[:, 1:].reshape(s * length, -1)
        valid = batch.valid.reshape(-1)
        out = SACOutputs(
            q_taken=self._q(h, steps.continuous)[:, valid],
            q_policy=self._q(h, cont, detach=True)[:, valid],
            values=self.value.heads(h)[valid],
            next_values=next_values[valid],
            cont_log_prob=cont_log_prob[valid],
            branch_log_probs=[b[valid] for b in branch_log_probs],
            log_alpha_cont=self.log_alpha_cont,
            log_alpha_disc=self.log_alpha_disc,
        )
        real = SACBatch(*(t[valid] for t in steps[:fields]))
        terms = sac_loss(out, real, self.gammas, self.branches, self.target_entropy_cont, self.target_entropy_disc)
        terms["loss"] = total_loss(terms)
        return terms

    @torch.no_grad()
    def soft_update(self, tau: float) -> None:
        for target, source in zip(self.target_value.parameters(), self.value.parameters(), strict=True):
            target.lerp_(source, tau)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # One Adam over actor, Q, V and entropy coefficients: Adam is per-parameter, so this equals
        # ML-Agents' three optimisers that share one learning rate, at a third of the overhead.
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.settings.hyperparameters.learning_rate, fused=True)


class SACTrainer(RLTrainer):
    def __init__(
        self,
        behavior_name: str,
        spec: BehaviorSpec,
        settings: SACSettings,
        reward_signals: dict[str, Any],
        device: torch.device,
        seed: int = 0,
    ) -> None:
        super().__init__(behavior_name, spec)
        self.settings = settings
        self.hp = settings.hyperparameters
        self.signals = reward_signals
        self.device = device
        self.module = SACModule(spec, settings, list(reward_signals), [s.gamma for s in reward_signals.values()]).to(
            device
        )
        self.optimizer = self.module.configure_optimizers()
        self.strengths = np.array([s.strength for s in reward_signals.values()], dtype=np.float32)
        # Reward signals with a model of their own, updated every reward_signal_steps_per_update agent steps.
        self.intrinsic = {
            name: make_reward_signal(name, spec, sig, device, behavior_name)
            for name, sig in reward_signals.items()
            if name != "extrinsic"
        }
        self._needs_done = any(r.uses_done for r in self.intrinsic.values())
        a = spec.action_spec
        obs_size = flat_obs_size(spec)
        fields: dict[str, tuple[tuple[int, ...], Any]] = {
            "obs": ((obs_size,), np.float32),
            "continuous": ((a.continuous_size,), np.float32),
            "discrete": ((a.discrete_size,), np.int32),
            "reward": ((), np.float32),
            "mask": ((sum(a.discrete_branches),), np.bool_),
            "next_obs": ((obs_size,), np.float32),
            "terminated": ((), np.float32),
        }
        if self._needs_done:  # the step ended its episode (terminated or interrupted)
            fields["done"] = ((), np.float32)
        self.memory_size = self.module.memory_size
        memory = settings.network_settings.memory
        self.sequence_length = memory.sequence_length if memory is not None else 1
        if self.memory_size:
            # The ring holds whole sequences: buffer_size transitions are buffer_size / L sequences.
            length = self.sequence_length
            self.sequences: SequenceBuilder | None = SequenceBuilder(fields, length, self.memory_size)
            seq_fields = {k: ((length, *shape), dt) for k, (shape, dt) in fields.items()}
            seq_fields["valid"] = ((length,), np.bool_)
            seq_fields["memories"] = ((self.memory_size,), np.float32)
            self.buffer = ReplayBuffer(max(1, self.hp.buffer_size // length), seq_fields)
            self.sample_size = max(1, self.hp.batch_size // length)
        else:
            self.sequences = None
            self.buffer = ReplayBuffer(self.hp.buffer_size, fields)
            self.sample_size = self.hp.batch_size
        self._memories = np.zeros((0, self.memory_size), np.float32)  # each agent slot's current memory
        self.assembler = TransitionAssembler(spec, obs_size, self.memory_size)
        self.rng = np.random.default_rng(seed)
        self.update_steps = 1  # ML-Agents starts counting at 1
        self.signal_update_steps = 1
        self._signal_returns: dict[str, np.ndarray] = {}  # per agent slot, this episode
        self.signal_steps_per_update = self.hp.reward_signal_steps_per_update or self.hp.steps_per_update
        # behavioral_cloning: one supervised minibatch of the demonstrations per update (mlx.trainers.bc)
        self.bc = make_behavioral_cloning(
            behavior_name, spec, settings, self.module.actor, self.module.preprocess, device, off_policy=True
        )

    # ---- acting -------------------------------------------------------------------------------
    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def _store(self, tr: Any) -> None:
        if tr is None:
            return
        if self.intrinsic:
            self._track_signal_returns(tr)
        arrays = {
            "obs": tr.obs,
            "continuous": tr.continuous,
            "discrete": tr.discrete,
            "reward": tr.reward,
            "mask": tr.mask,
            "next_obs": tr.next_obs,
            "terminated": tr.terminated.astype(np.float32),
        }
        if self._needs_done:
            arrays["done"] = np.full(len(tr.reward), float(tr.episode_end), np.float32)
        if self.sequences is None:
            self.buffer.add(**arrays)
            return
        done = self.sequences.add(tr.slots, tr.episode_end, tr.memory, **arrays)
        if len(done["valid"]):
            self.buffer.add(**done)

    def _memory_rows(self, agent_ids: np.ndarray) -> np.ndarray:
        slots = self.assembler.slots_for(agent_ids)
        grow = self.assembler.slots.count - len(self._memories)
        if grow > 0:
            self._memories = np.concatenate([self._memories, np.zeros((grow, self.memory_size), np.float32)])
        return slots

    def process(self, decision: DecisionSteps, terminal: TerminalSteps) -> ActionTuple:
        finished, episodes = self.assembler.end_episodes(terminal)
        if len(episodes.returns):
            self.stats.add("Environment/Cumulative Reward", episodes.returns)
            self.stats.add("Environment/Episode Length", episodes.lengths)
            if "extrinsic" in self.signals:
                self.stats.add("Policy/Extrinsic Reward", episodes.returns * self.signals["extrinsic"].strength)
        self._store(finished)
        if self.memory_size and len(terminal):
            self._memories[self._memory_rows(terminal.agent_id)] = 0.0  # a new episode starts with no memory
        n = len(decision)
        if n == 0:
            return self.spec.action_spec.empty(0)
        obs = checked_obs(decision.obs, self.behavior_name, self.step)
        self._store(self.assembler.next_step(decision, obs))
        mask_np = None
        if decision.action_mask is not None and self.spec.action_spec.discrete_size:
            mask_np = np.concatenate(decision.action_mask, axis=1).astype(bool)
        memories = None
        if self.memory_size:
            rows = self._memory_rows(decision.agent_id)
            memories = self._memories[rows]
            self._advance_memories(rows, obs, mask_np)
        if self.step < self.hp.buffer_init_steps:
            actions = self._random_actions(n, mask_np)
        else:
            obs_t = self._tensor(obs)
            mem_t = None if memories is None else self._tensor(memories[:, : self.module.actor_memory])
            with torch.inference_mode():
                out = self.module.actor.sample(
                    self.module.preprocess(obs_t), None if mask_np is None else self._tensor(mask_np), memories=mem_t
                )
            self.stats.add("Policy/Entropy", float(out.entropy.mean()))
            actions = ActionTuple(out.continuous.cpu().numpy(), out.discrete.cpu().numpy().astype(np.int32))
        if self.module.normalizer is not None:
            self.module.normalizer.update(self._tensor(obs))
        self.assembler.begin(decision, obs, actions.continuous, actions.discrete, mask_np, memories)
        self.step += n
        return actions

    def _advance_memories(self, rows: np.ndarray, obs: np.ndarray, mask: np.ndarray | None) -> None:
        """Step both LSTMs (actor and critic) over this decision's observations: the memories stored with
        the next step must have seen this one, whatever acts (the policy or buffer_init_steps' random)."""
        split = self.module.actor_memory
        mem = self._tensor(self._memories[rows])
        with torch.inference_mode():
            x = self.module.preprocess(self._tensor(obs))
            _, actor_mem = self.module.actor.body(x, mem[:, :split])
            _, critic_mem = self.module.value.body(x, mem[:, split:])
        assert actor_mem is not None and critic_mem is not None
        self._memories[rows] = torch.cat([actor_mem, critic_mem], dim=1).cpu().numpy()

    def _random_actions(self, n: int, mask: np.ndarray | None) -> ActionTuple:
        a = self.spec.action_spec
        cont = self.rng.uniform(-1.0, 1.0, size=(n, a.continuous_size)).astype(np.float32)
        cols = []
        offset = 0
        for size in a.discrete_branches:
            allowed = np.ones((n, size), bool) if mask is None else mask[:, offset : offset + size]
            scores = np.where(allowed, self.rng.random((n, size)), -1.0)
            cols.append(scores.argmax(1))
            offset += size
        disc = np.stack(cols, 1).astype(np.int32) if cols else np.zeros((n, 0), np.int32)
        return ActionTuple(cont, disc)

    # ---- updating -----------------------------------------------------------------------------
    def _updates_owed(self) -> bool:
        return (self.step - self.hp.buffer_init_steps) / self.update_steps > self.hp.steps_per_update

    def ready_to_update(self) -> bool:
        return len(self.buffer) >= self.sample_size and self._updates_owed()

    def _real_steps(self, sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A sample's transitions as rows: sequences are flattened to their real (not padding) steps."""
        if "valid" not in sample:
            return sample
        valid = sample["valid"]
        return {k: v[valid] for k, v in sample.items() if k not in ("valid", "memories")}

    def _signal_batch(self, sample: dict[str, np.ndarray]) -> SignalBatch:
        return SignalBatch(
            obs=self._tensor(sample["obs"]),
            next_obs=self._tensor(sample["next_obs"]),
            continuous=self._tensor(sample["continuous"]),
            discrete=self._tensor(sample["discrete"]),
            env_reward=self._tensor(sample["reward"]),
            done=self._tensor(sample["done"]) if "done" in sample else None,
        )

    def _rewards(self, sample: dict[str, np.ndarray]) -> np.ndarray:
        """[B, K] rewards per stream, times strength: the env's for extrinsic, the models' for the others."""
        if not self.intrinsic:
            return sample["reward"][..., None] * self.strengths
        lead = sample["reward"].shape  # [B], or [S, L] for sequences
        n = int(np.prod(lead))
        rows = {k: v.reshape(n, *v.shape[len(lead) :]) for k, v in sample.items() if k not in ("valid", "memories")}
        batch = self._signal_batch(rows)
        cols = [rows["reward"] if name == "extrinsic" else self.intrinsic[name].rewards(batch) for name in self.signals]
        return (np.stack(cols, axis=1) * self.strengths).reshape(*lead, len(cols))

    def _track_signal_returns(self, tr: Any) -> None:
        """Policy/<Signal> Reward: each intrinsic signal's reward summed over an agent's episode, as for PPO."""
        batch = self._signal_batch(
            {
                "obs": tr.obs,
                "next_obs": tr.next_obs,
                "continuous": tr.continuous,
                "discrete": tr.discrete,
                "reward": tr.reward,
                "done": np.full(len(tr.reward), float(tr.episode_end), np.float32),
            }
        )
        for name, signal in self.intrinsic.items():
            totals = self._signal_returns.get(name, np.zeros(0))
            if len(totals) <= tr.slots.max():
                totals = np.concatenate([totals, np.zeros(tr.slots.max() + 1 - len(totals))])
            self._signal_returns[name] = totals
            np.add.at(totals, tr.slots, signal.rewards(batch) * self.signals[name].strength)
            if tr.episode_end:
                self.stats.add(f"Policy/{name.capitalize()} Reward", totals[tr.slots])
                totals[tr.slots] = 0.0

    def _update_signals(self) -> None:
        """ML-Agents' SAC trains reward-signal models on their own samples, at their own rate."""
        sums: dict[str, float] = {}
        count = 0
        while (self.step - self.hp.buffer_init_steps) / self.signal_update_steps > self.signal_steps_per_update:
            batch = self._signal_batch(self._real_steps(self.buffer.sample(self.sample_size, self.rng)))
            for signal in self.intrinsic.values():
                for key, value in signal.update(batch).items():
                    sums[key] = sums.get(key, 0.0) + value
            self.signal_update_steps += 1
            count += 1
        for key, total in sums.items():
            self.stats.add(key, total / count)

    def update(self) -> None:
        if self.intrinsic:
            self._update_signals()
        lr = decayed_value(
            self.hp.learning_rate_schedule,
            self.hp.learning_rate,
            LEARNING_RATE_FLOOR,
            self.step,
            self.settings.max_steps,
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        sums: dict[str, torch.Tensor] = {}  # summed as tensors: one host sync per update, not per step
        value_estimates = []
        count = 0
        while self._updates_owed():
            sample = self.buffer.sample(self.sample_size, self.rng)
            batch = SACBatch(
                obs=self._tensor(sample["obs"]),
                continuous=self._tensor(sample["continuous"]),
                discrete=self._tensor(sample["discrete"]),
                rewards=self._tensor(self._rewards(sample)),
                mask=self._tensor(sample["mask"]),
                next_obs=self._tensor(sample["next_obs"]),
                terminated=self._tensor(sample["terminated"]),
                memories=self._tensor(sample["memories"]) if "memories" in sample else None,
                valid=self._tensor(sample["valid"]) if "valid" in sample else None,
            )
            terms = self.module.training_step(batch, count)
            self.optimize(self.optimizer, terms["loss"])
            self.module.soft_update(self.hp.tau)
            self.update_steps += 1
            count += 1
            for key in ("q1_loss", "q2_loss", "value_loss", "policy_loss"):
                sums[key] = sums.get(key, 0.0) + terms[key]
            value_estimates.append(terms["value_estimate"])
        if not count:
            return
        if self.bc is not None:
            for key, value in self.bc.update(self.step).items():
                self.stats.add(key, value)
        self.stats.add("Losses/Q1 Loss", float(sums["q1_loss"]) / count)
        self.stats.add("Losses/Q2 Loss", float(sums["q2_loss"]) / count)
        self.stats.add("Losses/Value Loss", float(sums["value_loss"]) / count)
        self.stats.add("Losses/Policy Loss", float(sums["policy_loss"]) / count)
        self.stats.add("Policy/Learning Rate", lr)
        means = torch.stack(value_estimates).mean(0).cpu().numpy()
        for name, v in zip(self.signals, means, strict=True):
            self.stats.add(f"Policy/{name.capitalize()} Value Estimate", float(v))
        if self.module.log_alpha_cont is not None:
            self.stats.add("Policy/Continuous Entropy Coeff", float(self.module.log_alpha_cont.detach().exp()))
        if self.module.log_alpha_disc is not None:
            self.stats.add("Policy/Discrete Entropy Coeff", float(self.module.log_alpha_disc.detach().exp().mean()))

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "update_steps": self.update_steps,
            "signal_update_steps": self.signal_update_steps,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": self.rng.bit_generator.state,
            "reward_signals": {name: signal.state() for name, signal in self.intrinsic.items()},
            "behavioral_cloning": self.bc.state() if self.bc is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.update_steps = int(state["update_steps"])
        self.signal_update_steps = int(state.get("signal_update_steps", 1))
        for name, signal in self.intrinsic.items():
            signal.load_state(state["reward_signals"][name])
        if self.bc is not None and state.get("behavioral_cloning") is not None:
            self.bc.load_state(state["behavioral_cloning"])
        torch.set_rng_state(state["torch_rng"])
        self.rng.bit_generator.state = state["numpy_rng"]

    def save_extras(self, folder: Path) -> None:
        if self.hp.save_replay_buffer:
            self.buffer.save(folder / "replay_buffer.npz")

    def load_extras(self, folder: Path) -> None:
        path = folder / "replay_buffer.npz"
        if self.hp.save_replay_buffer and path.exists():
            self.buffer.load(path)

    def reset_trajectories(self) -> None:
        self.assembler.reset()
        self._memories[:] = 0.0
        if self.sequences is not None:
            self.sequences.reset()
