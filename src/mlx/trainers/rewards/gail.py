"""GAIL: generative adversarial imitation learning (Ho & Ermon 2016), as ML-Agents' gail reward signal.

A discriminator D learns to tell the demonstrations' steps (label 1) from the agent's (label 0); the agent
is paid -log(1 - D(s)) for steps that look like the expert's, so the reward falls as its behaviour
departs from the demonstrations and rises as it imitates them. The demonstrations (``demo_path``, a
.demo file or folder, checked against the behaviour's spec) are loaded when the signal is built; each
``update()`` pairs the agent's minibatch with as many expert steps drawn at random.

As in ML-Agents:

* D is an encoder of the signal's network_settings (observations normalised with running statistics of
  the expert steps when ``normalize``), then one linear unit and a sigmoid; ``use_actions`` adds the
  action (continuous values, one-hot branches) and the step's done flag to the encoder's input;
* the loss is binary cross-entropy, plus a gradient penalty (weight 10) pulling the norm of D's input
  gradient towards 1 on points drawn between expert and agent inputs (per element, as upstream);
* ``use_vail``: a variational information bottleneck (Peng et al. 2018) between encoder and output, a
  128-unit Gaussian code whose KL divergence from N(0, I) (summed over the expert and agent rows) is held
  near 0.5 by a Lagrange multiplier beta, raised by 5e-4 per unit of excess after every update; rewards
  use the code's mean.

Choices of ours: the gradient penalty differentiates with respect to the whole input (observations,
action and done), where ML-Agents' takes the gradient of the first observation only; the expert steps
carry each demonstration step's own done flag.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from mlx.envs.api import BehaviorSpec, ObservationSpec
from mlx.formats.demo import load_demonstration
from mlx.trainers.nn.encoders import StateEncoder
from mlx.trainers.nn.networks import InputNormalizer, flat_obs_size
from mlx.trainers.rewards.base import RewardSignal, SignalBatch, one_hot_actions

EPSILON = 1e-7
GRADIENT_PENALTY_WEIGHT = 10.0
Z_SIZE = 128
VAIL_ALPHA = 5e-4  # beta's step per unit of KL above the target
VAIL_TARGET_KL = 0.5  # ML-Agents' mutual_information constraint I_c


class Discrimination(NamedTuple):
    """What the discriminator says about the agent's and the expert's steps in one update."""

    policy_estimate: torch.Tensor  # [B] D(agent step)
    expert_estimate: torch.Tensor  # [B] D(expert step)
    policy_mu: torch.Tensor | None  # [B, Z] VAIL code means
    expert_mu: torch.Tensor | None
    z_sigma: torch.Tensor | None  # [Z]
    gradient_norm: torch.Tensor  # [B] |dD/dx| on the interpolated inputs


def gail_loss(out: Discrimination, beta: float) -> dict[str, torch.Tensor]:
    """Discriminator loss terms of one update (pure): cross-entropy, gradient penalty, VAIL's KL term."""
    bce = -(torch.log(out.expert_estimate + EPSILON) + torch.log(1.0 - out.policy_estimate + EPSILON)).mean()
    penalty = GRADIENT_PENALTY_WEIGHT * (out.gradient_norm - 1.0).square().mean()
    terms = {
        "loss_gail": bce,
        "loss_gradient_penalty": penalty,
        "gail_loss": bce.detach(),
        "gradient_penalty": penalty.detach(),
        "policy_estimate": out.policy_estimate.detach().mean(),
        "expert_estimate": out.expert_estimate.detach().mean(),
    }
    if out.z_sigma is not None:
        assert out.policy_mu is not None and out.expert_mu is not None
        var = out.z_sigma.square()

        def kl(mu: torch.Tensor) -> torch.Tensor:  # KL(N(mu, sigma^2) || N(0, 1)) per row
            return 0.5 * (mu.square() + var - 1.0 - torch.log(var)).sum(-1)

        kl_loss = (kl(out.expert_mu) + kl(out.policy_mu)).mean()
        terms["loss_vail"] = beta * (kl_loss - VAIL_TARGET_KL)
        terms["kl_loss"] = kl_loss.detach()
    return terms


class GAILSignal(RewardSignal):
    def __init__(self, spec: BehaviorSpec, settings: Any, behavior: str = "") -> None:
        super().__init__(spec, settings, behavior)
        demo = load_demonstration(
            settings.demo_path, spec, f"trainer.reward_signals.gail.demo_path ({behavior})", behavior or "the behaviour"
        )
        ns = settings.network_settings
        if settings.encoding_size is not None:
            ns = dataclasses.replace(ns, hidden_units=settings.encoding_size)
        a = spec.action_spec
        self.branches = tuple(a.discrete_branches)
        self.use_actions = bool(settings.use_actions)
        self.uses_done = self.use_actions
        self.normalizer = InputNormalizer(spec, ns) if ns.normalize else None
        self.obs_size = flat_obs_size(spec)
        # With use_actions, actions and done join the encoder's input as one more vector observation.
        extra = a.continuous_size + sum(self.branches) + 1 if self.use_actions else 0
        encoder_spec = spec
        if extra:
            encoder_spec = BehaviorSpec(
                (*spec.observation_specs, ObservationSpec((extra,), "gail_action_done")), spec.action_spec
            )
        self.encoder = StateEncoder(encoder_spec, dataclasses.replace(ns, memory=None), use_memory=False)
        hidden = self.encoder.output_size
        self.use_vail = bool(settings.use_vail)
        if self.use_vail:
            self.z_mu = nn.Linear(hidden, Z_SIZE)
            nn.init.kaiming_normal_(self.z_mu.weight)
            self.z_mu.weight.data.mul_(0.1)
            nn.init.zeros_(self.z_mu.bias)
            self.z_sigma = nn.Parameter(torch.ones(Z_SIZE))
            self.register_buffer("beta", torch.zeros(()))
        self.estimator = nn.Linear(Z_SIZE if self.use_vail else hidden, 1)
        nn.init.xavier_uniform_(self.estimator.weight, gain=0.2)
        nn.init.zeros_(self.estimator.bias)
        # The demonstrations ride along with the module (device moves) but stay out of checkpoints.
        self.register_buffer("expert_obs", torch.as_tensor(demo.flat_obs()), persistent=False)
        self.register_buffer("expert_continuous", torch.as_tensor(demo.continuous), persistent=False)
        self.register_buffer("expert_discrete", torch.as_tensor(demo.discrete.astype(np.int64)), persistent=False)
        self.register_buffer("expert_done", torch.as_tensor(demo.done.astype(np.float32)), persistent=False)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=settings.learning_rate)

    # ---- the discriminator ------------------------------------------------------------------------
    def inputs(self, batch: SignalBatch) -> torch.Tensor:
        """The discriminator's raw input rows: observations, then (use_actions) action and done."""
        if not self.use_actions:
            return batch.obs
        if batch.done is None:
            raise ValueError("GAIL with use_actions needs SignalBatch.done")
        actions = torch.cat([batch.continuous, one_hot_actions(batch.discrete, self.branches)], dim=1)
        return torch.cat([batch.obs, actions.to(batch.obs.dtype), batch.done[:, None].to(batch.obs.dtype)], dim=1)

    def estimate(self, x: torch.Tensor, noise: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D(x) [B] and, with VAIL, the code means [B, Z]; ``noise`` samples the code instead of its mean."""
        if self.normalizer is not None:  # observations only: actions and done enter as they are
            n = self.obs_size
            x = torch.cat([self.normalizer(x[:, :n]), x[:, n:]], dim=1) if self.use_actions else self.normalizer(x)
        h = self.encoder(x)[0]
        mu = None
        if self.use_vail:
            mu = self.z_mu(h)
            h = mu + torch.randn_like(mu) * self.z_sigma if noise else mu
        return torch.sigmoid(self.estimator(h)).squeeze(-1), mu

    def expert_batch(self, n: int) -> SignalBatch:
        idx = torch.randint(len(self.expert_obs), (n,), device=self.expert_obs.device)
        obs = self.expert_obs[idx]
        return SignalBatch(
            obs=obs,
            next_obs=obs[:, :0],
            continuous=self.expert_continuous[idx],
            discrete=self.expert_discrete[idx],
            env_reward=obs.new_zeros(n),
            done=self.expert_done[idx],
        )

    def discriminate(self, policy: SignalBatch, expert: SignalBatch) -> Discrimination:
        x_policy, x_expert = self.inputs(policy), self.inputs(expert)
        policy_estimate, policy_mu = self.estimate(x_policy, noise=True)
        expert_estimate, expert_mu = self.estimate(x_expert, noise=True)
        # Gradient penalty on points between expert and agent inputs (independent mix per element).
        mix = torch.rand_like(x_policy)
        between = (mix * x_policy + (1.0 - mix) * x_expert).detach().requires_grad_(True)
        d_between, _ = self.estimate(between, noise=True)
        (grad,) = torch.autograd.grad(d_between.sum(), between, create_graph=True)
        norm = (grad.square().sum(-1) + EPSILON).sqrt()
        return Discrimination(
            policy_estimate,
            expert_estimate,
            policy_mu,
            expert_mu,
            self.z_sigma if self.use_vail else None,
            norm,
        )

    # ---- the RewardSignal API ------------------------------------------------------------------------
    @torch.no_grad()
    def rewards(self, batch: SignalBatch) -> np.ndarray:
        d, _ = self.estimate(self.inputs(batch), noise=False)
        return (-torch.log(1.0 - d * (1.0 - EPSILON))).cpu().numpy().astype(np.float32)

    def update(self, batch: SignalBatch) -> dict[str, float]:
        n = batch.obs.shape[0]
        if n == 0:
            return {}
        expert = self.expert_batch(n)
        if self.normalizer is not None:  # ML-Agents normalises with the expert's statistics
            self.normalizer.update(expert.obs)
        beta = float(self.beta) if self.use_vail else 0.0
        terms = gail_loss(self.discriminate(batch, expert), beta)
        loss = terms["loss_gail"] + terms["loss_gradient_penalty"]
        if self.use_vail:
            loss = loss + terms["loss_vail"]
        self._step(loss)
        stats = {
            "Losses/GAIL Loss": float(terms["gail_loss"]),
            "Policy/GAIL Policy Estimate": float(terms["policy_estimate"]),
            "Policy/GAIL Expert Estimate": float(terms["expert_estimate"]),
            "Policy/GAIL Grad Mag Loss": float(terms["gradient_penalty"]),
        }
        if self.use_vail:
            kl = float(terms["kl_loss"])
            self.beta.fill_(max(0.0, beta + VAIL_ALPHA * (kl - VAIL_TARGET_KL)))
            stats["Policy/GAIL Beta"] = float(self.beta)
            stats["Losses/GAIL KL Loss"] = kl
        return stats
