"""PPO's actor and critic in numpy, on the module's own weights: acting, the minibatch loss, its gradient by
hand, and Adam (``FlatAdam``). The same interface as the torch path (``mlx.trainers.ppo.actor_critic``).

Why: at ML-Agents' sizes PyTorch's per-op dispatch, not arithmetic, is the cost. PPO acts once per env
step on a few agents (12 on 3DBall), about 40 torch ops; it takes many small optimiser steps (batch 64 on
3DBall: 561 per 12,000-step buffer), each about a hundred ops (forward, autograd's backward, the
optimiser). Written out in numpy, over views of the module's parameters and normaliser, each costs about
a third, and acting plus updating are most of a 3DBall run's time (README: the SB3 comparison).

One forward pass (``silu_layers`` and the heads in ``_policy``/``_values``), one set of Gaussian and
categorical helpers and one normaliser view (``NormalizerView``) serve both acting and the update. The
update keeps what the backward pass needs; the backward pass follows autograd's choices where a gradient
is not unique (a min or max tie splits the gradient evenly, clamp passes its bounds).

Contract (tests/test_numpy_policy.py, tests/test_numpy_update.py; a change here keeps them passing as they
are): it computes what the torch path computes.
- Acting: log-probabilities (joint, or per action component from ``act_parts``), entropies and values equal
  ``Actor.evaluate``'s and ``Critic``'s (1e-4);
  discrete samples follow the policy's probabilities and never pick a masked action; continuous samples
  have the policy's mean and std; the weights read are the live ones (changed in place, seen at once).
- Update: the loss terms (1e-4 relative) and every gradient (1e-3 relative) equal
  ``PPOModule.training_step`` + autograd's (``losses.ppo_loss``: clipped surrogate with one ratio per action
  component, or per row for joint old log-probabilities, clipped value loss, entropy bonus), on the whole
  buffer or on any minibatch of its rows; Adam steps as ``torch.optim.Adam``;
  a whole update (epochs x minibatches) ends in the torch path's weights up to float rounding (within
  1e-3 of how far the update moved them); a non-finite loss is refused before any weight changes.
- Checkpoints: torch's optimiser format, loadable by either path, and the sampling generator round-trip.

Where it applies (``applies``): a CPU module, vector observations alone (no cameras, no goal signals), no
memory, PPO's head (state-independent log std, no squashing); otherwise PPO uses the torch path.
Sampling uses its own numpy generator (seeded from torch's seed, saved in checkpoints).
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from mlx.trainers.losses import PPOBatch
from mlx.trainers.nn.networks import LOG_2PI, LOG_STD_MAX, LOG_STD_MIN, MASKED_LOGIT, Actor, Critic, InputNormalizer
from mlx.trainers.ppo.numpy.flat import FlatAdam

F32 = np.float32


class Dense(NamedTuple):
    """A dense layer's weight [out, in] and bias, and the gradient views that receive theirs (all views of
    FlatAdam's buffers)."""

    w: np.ndarray
    b: np.ndarray
    gw: np.ndarray
    gb: np.ndarray


class Rows(NamedTuple):
    """The update buffer as numpy arrays (a minibatch is rows of each)."""

    x: np.ndarray  # [N, obs] normalised observations (the normaliser does not change during an update)
    continuous: np.ndarray  # [N, C]
    discrete: np.ndarray  # [N, D]
    mask: np.ndarray | None  # [N, sum(branches)] bool
    old_log_prob: np.ndarray  # [N, C + D] per action component (as acting stores it), or [N] joint
    old_values: np.ndarray  # [N, K]
    returns: np.ndarray  # [N, K]
    advantages: np.ndarray  # [N]


Cache = list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def silu_layers(layers: list[Dense], x: np.ndarray, cache: Cache | None = None) -> np.ndarray:
    """Dense + SiLU layers; appends (input, pre-activation, sigmoid) per layer to ``cache`` if given."""
    for layer in layers:
        z = x @ layer.w.T
        z += layer.b
        s = np.tanh(0.5 * z)  # sigmoid(z) = (1 + tanh(z / 2)) / 2, without exp's overflow
        s += 1.0
        s *= 0.5
        if cache is not None:
            cache.append((x, z, s))
        x = z * s
    return x


def silu_backward(layers: list[Dense], cache: Cache, g: np.ndarray) -> None:
    """Gradients of the layers' weights from g = dLoss/d(output); the input needs none."""
    for k in range(len(layers) - 1, -1, -1):
        layer, (x, z, s) = layers[k], cache[k]
        d = 1.0 - s  # d silu / dz = s * (1 + z * (1 - s))
        d *= z
        d += 1.0
        d *= s
        g = g * d
        np.matmul(g.T, x, out=layer.gw)
        np.sum(g, axis=0, out=layer.gb)
        if k:
            g = g @ layer.w


def dense(layer: Dense, x: np.ndarray) -> np.ndarray:
    out = x @ layer.w.T
    out += layer.b
    return out


def gaussian_log_densities(z: np.ndarray, log_std: np.ndarray) -> np.ndarray:
    """Log-density per dimension [B, C] of standardised samples z = (x - mu) / std."""
    return -0.5 * z * z - log_std - 0.5 * LOG_2PI


def gaussian_entropy(log_std: np.ndarray) -> np.floating:
    """As mlx.trainers.nn.networks.gaussian_entropy: the mean over dimensions (ML-Agents')."""
    return (log_std + 0.5 * (LOG_2PI + 1.0)).mean()


def log_softmax(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One branch's probabilities and log-probabilities [B, n]."""
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return np.exp(logp), logp


def categorical_entropy(p: np.ndarray, logp: np.ndarray) -> np.ndarray:
    return -(p * logp).sum(1)


class NumpyActorCritic:
    """The module's actor and critic read through numpy views: ``act`` per env step; per update ``load``
    the buffer, then per minibatch ``loss`` (nothing changed yet) and ``step`` (backward pass and Adam)."""

    def __init__(
        self,
        actor: Actor,
        critic: Critic,
        normalizer: InputNormalizer | None,
        optimizer: torch.optim.Optimizer,
        seed: int,
    ) -> None:
        self.flat = FlatAdam(optimizer)
        self._covered: set[int] = set()  # parameters the forward and backward passes read and write
        self.norm = None if normalizer is None else normalizer.stats.numpy()
        self.actor_body = self._stack(actor.body.body)
        self.critic_body = self._stack(critic.body.body)
        self.value_head = self._dense(critic.heads)
        self.mu = None if actor.mu is None else self._dense(actor.mu)
        self.log_std = None if actor.mu is None else self._param(actor.log_std)
        self.logits = None if actor.logits is None else self._dense(actor.logits)
        self.bounds = np.cumsum((0, *actor.branches))
        self.continuous = 0 if self.log_std is None else len(self.log_std[0])  # Gaussian dimensions
        self.components = self.continuous + len(actor.branches)  # log-probabilities per step
        self.deterministic = actor.deterministic  # network_settings.deterministic: act on mean and argmax
        if self._covered != set(self.flat.offsets):
            raise TypeError("NumpyActorCritic: the module has parameters outside PPO's actor and critic layers")
        self.rng = np.random.default_rng(seed)
        self._rows: Rows | None = None
        self._tensors: PPOBatch | None = None
        self._epsilon = self._beta = 0.0
        self._saved: dict = {}

    @staticmethod
    def applies(actor: Actor, critic: Critic, device: torch.device) -> bool:
        return (
            device.type == "cpu"
            and actor.body.layout.plain
            and actor.body.lstm is None
            and critic.body.layout.plain
            and not actor.conditional_sigma
            and not actor.tanh_squash
        )

    # ---- the module's parameters as numpy views ---------------------------------------------------
    def _param(self, p: nn.Parameter) -> tuple[np.ndarray, np.ndarray]:
        self._covered.add(id(p))
        return self.flat.view(p)

    def _dense(self, layer: nn.Linear) -> Dense:
        w, gw = self._param(layer.weight)
        b, gb = self._param(layer.bias)
        return Dense(w, b, gw, gb)

    def _stack(self, body: nn.Sequential) -> list[Dense]:
        layers = []
        for module in body:
            if isinstance(module, nn.Linear):
                layers.append(self._dense(module))
            elif not isinstance(module, nn.SiLU):
                raise TypeError(f"unexpected layer {type(module).__name__}")
        return layers

    # ---- the forward pass, shared by acting and the update ------------------------------------------
    def _inputs(self, obs: np.ndarray) -> np.ndarray:
        return obs if self.norm is None else self.norm.normalised(obs)

    def _policy(
        self, x: np.ndarray, mask: np.ndarray | None, cache: Cache | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, list[tuple[np.ndarray, np.ndarray]]]:
        """The actor on normalised rows: body output, Gaussian mean and clipped log std (None without
        continuous actions), and each discrete branch's (probabilities, log-probabilities)."""
        h = silu_layers(self.actor_body, x, cache)
        mu = log_std = None
        if self.mu is not None:
            assert self.log_std is not None
            mu = dense(self.mu, h)
            log_std = np.clip(self.log_std[0], LOG_STD_MIN, LOG_STD_MAX)
        branches = []
        if self.logits is not None:
            logits = dense(self.logits, h)
            if mask is not None:
                logits = np.where(mask, logits, F32(MASKED_LOGIT))
            branches = [log_softmax(logits[:, lo:hi]) for lo, hi in zip(self.bounds[:-1], self.bounds[1:], strict=True)]
        return h, mu, log_std, branches

    def _values(self, x: np.ndarray, cache: Cache | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The critic's body output and values [B, K]."""
        k = silu_layers(self.critic_body, x, cache)
        return k, dense(self.value_head, k)

    # ---- acting ---------------------------------------------------------------------------------------
    def act_parts(
        self, obs: np.ndarray, mask: np.ndarray | None, memories: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, None]:
        """Raw continuous actions [B, C], discrete [B, D] int32, log-probabilities [B, C + D] per action
        component (each dimension, then each branch), entropies [B] and no memories, for observation rows
        [B, obs] (mask: [B, sum(branches)] True where allowed); no critic pass. ``memories`` must be None:
        networks with memory act with torch."""
        assert memories is None, "NumpyActorCritic has no memory"
        return self._act(self._inputs(np.asarray(obs, dtype=F32)), mask)

    def act(
        self, obs: np.ndarray, mask: np.ndarray | None, memories: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, None]:
        """``act_parts`` with the joint log-probability [B] and the critic's values [B, K]."""
        assert memories is None, "NumpyActorCritic has no memory"
        x = self._inputs(np.asarray(obs, dtype=F32))
        cont, disc, parts, entropy, _ = self._act(x, mask)
        return cont, disc, parts.sum(1, dtype=F32), entropy, self._values(x)[1], None

    def values(self, obs: np.ndarray, memories: np.ndarray | None = None) -> np.ndarray:
        """The critic's values [B, K] of observation rows, under the live normaliser and weights."""
        assert memories is None, "NumpyActorCritic has no memory"
        return self._values(self._inputs(np.asarray(obs, dtype=F32)))[1]

    def _act(
        self, x: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, None]:
        n = len(x)
        _, mu, log_std, branches = self._policy(x, mask)
        parts = np.zeros((n, self.components), F32)
        entropy = np.zeros(n, F32)
        cont = np.zeros((n, 0), F32)
        if mu is not None:
            assert log_std is not None
            # deterministic (network_settings): the mean, its log-density at eps = 0; no draw from the rng
            eps = np.zeros_like(mu) if self.deterministic else self.rng.standard_normal(mu.shape, dtype=F32)
            cont = mu + eps * np.exp(log_std)
            parts[:, : self.continuous] = gaussian_log_densities(eps, log_std)
            entropy += gaussian_entropy(log_std)
        disc = np.zeros((n, len(branches)), np.int32)
        if branches:
            # Inverse CDF: the first action whose cumulative probability exceeds u * total. A masked action
            # (probability 0) never does; u < 1 in float64 keeps the threshold below the total.
            u = None if self.deterministic else self.rng.random((n, len(branches)))
            index = np.arange(n)
            for i, (p, logp) in enumerate(branches):
                if u is None:  # the most likely action (a masked one has probability 0)
                    choice = p.argmax(1)
                else:
                    cdf = np.cumsum(p, 1)
                    choice = (cdf <= u[:, i : i + 1] * cdf[:, -1:]).sum(1)
                disc[:, i] = choice
                parts[:, self.continuous + i] = logp[index, choice]
                entropy += categorical_entropy(p, logp)
        return cont, disc, parts, entropy, None

    def frozen(self) -> NumpyActorCritic:
        """An acting copy for a threaded update: the actor's weights copied (``step`` changes them in place);
        the normaliser and the sampler shared (the update changes neither; only acting draws from it)."""
        twin = copy.copy(self)
        twin.actor_body = [Dense(d.w.copy(), d.b.copy(), d.gw, d.gb) for d in self.actor_body]
        if self.mu is not None and self.log_std is not None:
            twin.mu = Dense(self.mu.w.copy(), self.mu.b.copy(), self.mu.gw, self.mu.gb)
            twin.log_std = (self.log_std[0].copy(), self.log_std[1])
        if self.logits is not None:
            twin.logits = Dense(self.logits.w.copy(), self.logits.b.copy(), self.logits.gw, self.logits.gb)
        return twin

    def sampler_state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def load_sampler_state(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            self.rng.bit_generator.state = state

    # ---- the update -----------------------------------------------------------------------------------
    def load(self, data: dict[str, np.ndarray], epsilon: float, beta: float) -> None:
        """The update buffer (PPOBatch's fields as numpy arrays, un-normalised observations) and the
        update's clip range and entropy coefficient."""
        mask = data["action_mask"]
        self._rows = Rows(
            x=self._inputs(data["obs"]),
            continuous=data["continuous"],
            discrete=data["discrete"],
            mask=mask if mask.shape[-1] else None,
            old_log_prob=data["old_log_prob"],
            old_values=data["old_values"],
            returns=data["returns"],
            advantages=data["advantages"],
        )
        self._tensors = PPOBatch(**{k: torch.from_numpy(v) for k, v in data.items()})
        self._epsilon, self._beta = epsilon, beta

    def minibatch(self, rows: torch.Tensor) -> PPOBatch:
        """The buffer's rows as tensors (what reward signals train on)."""
        assert self._tensors is not None, "load() the update buffer first"
        return PPOBatch(*(None if t is None else t[rows] for t in self._tensors))

    def loss(self, rows: torch.Tensor | np.ndarray) -> dict[str, float]:
        """Forward pass and loss terms (as ``ppo_loss`` names them, plus ``loss``) on the given buffer rows;
        keeps what ``step`` needs. Nothing is changed yet, so a non-finite loss can stop training cleanly."""
        assert self._rows is not None, "load() the update buffer first"
        if isinstance(rows, torch.Tensor):
            rows = rows.numpy()
        b = Rows(*(None if a is None else a[rows] for a in self._rows))
        epsilon, beta = self._epsilon, self._beta
        n = len(rows)
        actor_cache: Cache = []
        h, mu, log_std, branches = self._policy(b.x, b.mask, actor_cache)
        parts = np.empty((n, self.components), F32)  # log-probability per action component
        entropy = np.zeros(n, F32)
        saved: dict = {"h": h, "actor_cache": actor_cache, "batch": b, "branches": []}
        c = self.continuous
        if mu is not None:
            assert log_std is not None
            inv_std = np.exp(-log_std)
            z = (b.continuous - mu) * inv_std
            parts[:, :c] = gaussian_log_densities(z, log_std)
            entropy += gaussian_entropy(log_std)
            saved.update(z=z, inv_std=inv_std)
        if branches:
            index = np.arange(n)
            for i, (p, logp) in enumerate(branches):
                branch_entropy = categorical_entropy(p, logp)
                parts[:, c + i] = logp[index, b.discrete[:, i]]
                entropy += branch_entropy
                saved["branches"].append((p, logp, branch_entropy))
        if b.old_log_prob.ndim == 2:  # per component, the row's advantage broadcast over its components
            log_ratio = parts - b.old_log_prob
            advantages = b.advantages[:, None]
        else:  # joint, summed as the torch actor sums it: the Gaussian dimensions, then each branch
            log_prob = parts[:, :c].sum(1) if c else np.zeros(n, F32)
            for i in range(c, self.components):
                log_prob = log_prob + parts[:, i]
            log_ratio = log_prob - b.old_log_prob
            advantages = b.advantages
        ratio = np.exp(log_ratio)
        surrogate = ratio * advantages
        clipped_surrogate = np.clip(ratio, 1.0 - epsilon, 1.0 + epsilon) * advantages
        policy_loss = -float(np.minimum(surrogate, clipped_surrogate).mean())

        critic_cache: Cache = []
        k, values = self._values(b.x, critic_cache)
        delta = values - b.old_values
        clipped_values = b.old_values + np.clip(delta, -epsilon, epsilon)
        err = b.returns - values
        clipped_err = b.returns - clipped_values
        sq, clipped_sq = err * err, clipped_err * clipped_err
        value_loss = float(np.maximum(sq, clipped_sq).mean())
        mean_entropy = float(entropy.mean())
        saved.update(
            ratio=ratio,
            surrogate=surrogate,
            clipped_surrogate=clipped_surrogate,
            k=k,
            critic_cache=critic_cache,
            delta=delta,
            err=err,
            clipped_err=clipped_err,
            sq=sq,
            clipped_sq=clipped_sq,
        )
        self._saved = saved
        return {
            "loss": policy_loss + 0.5 * value_loss - beta * mean_entropy,
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": mean_entropy,
            "approx_kl": float(((ratio - 1.0) - log_ratio).mean()),
            "clip_fraction": float((np.abs(ratio - 1.0) > epsilon).mean()),
        }

    def backward(self) -> None:
        """Gradients of the last ``loss`` into ``flat.grad`` (laid out as the flat parameters)."""
        s = self._saved
        b: Rows = s["batch"]
        epsilon, beta = self._epsilon, self._beta
        n = len(b.x)
        ratio = s["ratio"]
        # d min(r A, clip(r) A) / dr: A where the unclipped term is the minimum (or tied), else clip's
        # own slope (1 inside the range, bounds included, 0 outside) times A.
        inside = (ratio >= 1.0 - epsilon) & (ratio <= 1.0 + epsilon)
        slope = np.where(s["surrogate"] > s["clipped_surrogate"], inside, True)
        # dLoss / d(log-probability of each component) [n, N]: its own ratio's, or the joint ratio's on every one.
        if ratio.ndim == 2:
            g_parts = -(b.advantages[:, None] * slope * ratio) / F32(ratio.size)
        else:
            g_joint = -(b.advantages * slope * ratio) / F32(n)
            g_parts = np.broadcast_to(g_joint[:, None], (n, self.components))
        c = self.continuous
        g_h = np.zeros_like(s["h"])
        if self.mu is not None:
            assert self.log_std is not None
            z, inv_std = s["z"], s["inv_std"]
            g_mu = g_parts[:, :c] * z * inv_std
            np.matmul(g_mu.T, s["h"], out=self.mu.gw)
            np.sum(g_mu, axis=0, out=self.mu.gb)
            g_h += g_mu @ self.mu.w
            log_std, g_log_std = self.log_std
            g = (g_parts[:, :c] * (z * z - 1.0)).sum(0) - beta / c  # the entropy bonus: its mean over c dims
            g_log_std[:] = g * ((log_std >= LOG_STD_MIN) & (log_std <= LOG_STD_MAX))
        if self.logits is not None:
            g_logits = np.empty((n, int(self.bounds[-1])), F32)
            index = np.arange(n)
            for i, (p, logp, branch_entropy) in enumerate(s["branches"]):
                lo, hi = self.bounds[i], self.bounds[i + 1]
                # log_prob: onehot - p; entropy bonus: -beta / n * d(-sum p logp) = beta / n * p (logp + H).
                g = p * (logp + branch_entropy[:, None])
                g *= beta / n
                g_branch = g_parts[:, c + i]
                g -= p * g_branch[:, None]
                g[index, b.discrete[:, i]] += g_branch
                g_logits[:, lo:hi] = g  # masked logits get exactly 0: p is 0 there
            np.matmul(g_logits.T, s["h"], out=self.logits.gw)
            np.sum(g_logits, axis=0, out=self.logits.gb)
            g_h += g_logits @ self.logits.w
        silu_backward(self.actor_body, s["actor_cache"], g_h)

        # 0.5 * mean(max(sq, clipped_sq)); a tie splits the gradient evenly, as autograd does.
        d_sq = -2.0 * s["err"]
        delta = s["delta"]
        d_clipped = -2.0 * s["clipped_err"] * ((delta >= -epsilon) & (delta <= epsilon))
        sq, clipped_sq = s["sq"], s["clipped_sq"]
        g_values = np.where(sq > clipped_sq, d_sq, np.where(sq < clipped_sq, d_clipped, 0.5 * (d_sq + d_clipped)))
        g_values *= 0.5 / g_values.size
        np.matmul(g_values.T, s["k"], out=self.value_head.gw)
        np.sum(g_values, axis=0, out=self.value_head.gb)
        silu_backward(self.critic_body, s["critic_cache"], g_values @ self.value_head.w)

    def step(self) -> None:
        """Backward pass of the last ``loss``, then one Adam step at the optimiser's learning rate."""
        self.backward()
        self._saved = {}
        self.flat.step()

    # ---- optimiser state in checkpoints ---------------------------------------------------------------
    def sync_optimizer_state(self) -> None:
        self.flat.sync_optimizer_state()

    def adopt_optimizer_state(self) -> None:
        self.flat.adopt_optimizer_state()
