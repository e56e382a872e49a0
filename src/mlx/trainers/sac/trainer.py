"""Soft Actor-Critic, as ML-Agents' SAC trainer defines it (seed 003).

`SACModule` (Lightning's module contract, `mlx.trainers.lightning_module`): a tanh-squashed Gaussian actor with
state-dependent sigma and/or categorical branches, twin Q networks (one batched ensemble), a value network V per
reward stream and its target copy (updated by `tau`), and learned entropy coefficients (one for the continuous
actions, one per discrete branch). `SACTrainer`: acting and the update loop; the replay buffer, `steps_per_update`,
`buffer_init_steps` and `save_replay_buffer` are the off-policy base's (`mlx.trainers.off_policy`).

Every loss term comes from one forward pass and one backward pass: the policy reads Q through
detached weights, so Q is trained by its own regression only (see networks.EnsembleMLP).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from mlx.config import SACSettings
from mlx.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.trainers.base import action_mask, checked_obs
from mlx.trainers.losses import SACBatch, SACOutputs, sac_loss, total_loss
from mlx.trainers.nn.encoders import ObsLayout, StateEncoder
from mlx.trainers.nn.networks import Critic, EnsembleMLP, InputNormalizer, actor_for, squashed_sample
from mlx.trainers.off_policy import OffPolicyTrainer
from mlx.trainers.schedules import LEARNING_RATE_FLOOR, decayed_value

# ML-Agents' target entropies: -|A| for continuous actions, 0.2 * log(n) nats per discrete branch.
CONTINUOUS_TARGET_ENTROPY_SCALE = 1.0
DISCRETE_TARGET_ENTROPY_SCALE = 0.2


class SACModule(torch.nn.Module):
    def __init__(self, spec: BehaviorSpec, settings: SACSettings, streams: list[str], gammas: list[float]) -> None:
        super().__init__()
        self.settings = settings
        a = spec.action_spec
        self.branches = tuple(a.discrete_branches)
        ns = settings.network_settings
        self.num_streams = len(streams)
        self.q_out = sum(self.branches) if self.branches else 1
        self.normalizer = InputNormalizer(spec, ns) if ns.normalize else None
        self.actor = actor_for("sac", spec, ns)
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
        mu, log_std, branch_log_probs = self.actor.distribution(x, mask)
        cont, cont_log_prob = squashed_sample(mu, log_std, x.shape[0], x.device, self.actor.deterministic)
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
        mu, log_std, branch_log_probs = self.actor.distribution(x, mask, actor_mem, length)
        cont, cont_log_prob = squashed_sample(mu, log_std, x.shape[0], x.device, self.actor.deterministic)
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


class SACTrainer(OffPolicyTrainer):
    def build_module(self) -> SACModule:
        return SACModule(self.spec, self.settings, self.streams, self.gammas).to(self.device)

    # ---- acting -------------------------------------------------------------------------------
    def process(self, decision: DecisionSteps, terminal: TerminalSteps) -> ActionTuple:
        self._groups(decision, terminal)
        n = len(decision)
        obs = checked_obs(decision.obs, self.behavior_name, self.step) if n else None
        self._begin_step(decision, terminal, obs)
        if obs is None:
            return self.spec.action_spec.empty(0)
        mask_np = action_mask(decision, self.spec)
        memories = None
        if self.memory_size:
            rows = self.agents.lookup(decision.agent_id)
            memories = self.agents.memories[rows]
            self._advance_memories(rows, obs, mask_np)
        if self.step < self.hp.buffer_init_steps:
            actions = self.spec.action_spec.random(n, self.rng, mask_np)  # buffer_init_steps: uniform
        else:
            obs_t = self._tensor(obs)
            mem_t = None if memories is None else self._tensor(memories[:, : self.module.actor_memory])
            with torch.inference_mode():
                out = self.module.actor.sample(
                    self.module.preprocess(obs_t), None if mask_np is None else self._tensor(mask_np), memories=mem_t
                )
            self.stats.add("Policy/Entropy", float(out.entropy.mean()))
            cont = self.module.actor.env_continuous(out.continuous)
            actions = ActionTuple(cont.cpu().numpy(), out.discrete.cpu().numpy().astype(np.int32))
        if self.module.normalizer is not None:
            self.module.normalizer.update(self._tensor(obs))
        self.assembler.begin(decision, obs, actions.continuous, actions.discrete, mask_np, memories)
        self.step += n
        return actions

    def _advance_memories(self, rows: np.ndarray, obs: np.ndarray, mask: np.ndarray | None) -> None:
        """Step both LSTMs (actor and critic) over this decision's observations: the memories stored with
        the next step must have seen this one, whatever acts (the policy or buffer_init_steps' random)."""
        split = self.module.actor_memory
        mem = self._tensor(self.agents.memories[rows])
        with torch.inference_mode():
            x = self.module.preprocess(self._tensor(obs))
            _, actor_mem = self.module.actor.body(x, mem[:, :split])
            _, critic_mem = self.module.value.body(x, mem[:, split:])
        assert actor_mem is not None and critic_mem is not None
        self.agents.memories[rows] = torch.cat([actor_mem, critic_mem], dim=1).cpu().numpy()

    # ---- updating -----------------------------------------------------------------------------
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
        for name, v in zip(self.streams, means, strict=True):
            self.stats.add(f"Policy/{name.capitalize()} Value Estimate", float(v))
        if self.module.log_alpha_cont is not None:
            self.stats.add("Policy/Continuous Entropy Coeff", float(self.module.log_alpha_cont.detach().exp()))
        if self.module.log_alpha_disc is not None:
            self.stats.add("Policy/Discrete Entropy Coeff", float(self.module.log_alpha_disc.detach().exp().mean()))
