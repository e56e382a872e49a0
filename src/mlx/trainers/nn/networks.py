"""Policy and value networks: observation normaliser, MLP bodies, action distributions, value heads.

Distributions are written as plain tensor math rather than torch.distributions objects: acting happens
once per env step on small batches, where object construction and argument validation cost more than
the maths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import numpy as np
import torch
from torch import nn

from mlx.config import ConditioningType, NetworkSettings
from mlx.envs.api import BehaviorSpec
from mlx.trainers.nn.encoders import ObsLayout, StateEncoder

LOG_2PI = math.log(2.0 * math.pi)
# ML-Agents samples an unbounded Gaussian and sends clamp(a, -3, 3) / 3 to the env.
CONTINUOUS_CLIP = 3.0
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
MASKED_LOGIT = -1e8
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


class NormalizerView(NamedTuple):
    """Numpy views of a CPU Normalizer's buffers. Both directions work in place on the module's memory:
    ``update`` (the running statistics, without a dozen small torch ops) and ``normalised`` (what PPO's
    numpy fast path feeds its networks), so torch, numpy and checkpoints always see the same statistics."""

    mean: np.ndarray
    var: np.ndarray
    count: np.ndarray

    def normalised(self, x: np.ndarray) -> np.ndarray:
        """Observation rows as ``Normalizer.forward`` returns them."""
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -5.0, 5.0).astype(np.float32, copy=False)

    def update(self, x: np.ndarray) -> None:
        """Chan's update, as ``Normalizer._update_torch``: a dozen small torch ops cost about 0.5 ms, paid at
        every trajectory PPO adds (often every other env step early in a run)."""
        mean, var, count = self  # locals: `self.mean += ...` would re-assign a read-only field
        x = x.reshape(-1, mean.shape[0])
        n = len(x)
        if n == 0:
            return
        batch_mean = x.mean(0, dtype=np.float64)
        centred = x - batch_mean
        batch_var = np.einsum("ij,ij->j", centred, centred) / n  # np.var's generic path is several times slower
        total = float(count) + n
        delta = batch_mean - mean
        m2 = var * float(count) + batch_var * n + delta * delta * (float(count) * n / total)
        mean += (delta * (n / total)).astype(np.float32)
        var[:] = m2 / total
        count[...] = total


class Normalizer(nn.Module):
    """Running mean and variance of vector observations (Chan's parallel update), clipped to +-5 sigma."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.tensor(1e-4))

    def numpy(self) -> NormalizerView:
        """Views of the buffers (CPU only); valid until the buffers are replaced (``to``, a new device)."""
        return NormalizerView(self.mean.numpy(), self.var.numpy(), self.count.numpy())

    def update(self, x: torch.Tensor | np.ndarray) -> None:
        if isinstance(x, np.ndarray):
            if self.mean.device.type == "cpu":
                return self.numpy().update(x)
            x = torch.as_tensor(x, device=self.mean.device)
        self._update_torch(x)

    @torch.no_grad()
    def _update_torch(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, self.mean.shape[0]).to(self.mean.dtype)
        n = x.shape[0]
        if n == 0:
            return
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / torch.sqrt(self.var + 1e-8)).clamp(-5.0, 5.0)


def flat_obs_size(spec: BehaviorSpec) -> int:
    """Floats in one agent step's flat observation row (every spec flattened, cameras included)."""
    return ObsLayout(spec, ConditioningType.none).size


class InputNormalizer(nn.Module):
    """The running normaliser applied to the vector columns of flat rows (cameras and hypernetwork goals
    pass through unchanged), shared by every network of a module."""

    def __init__(self, spec: BehaviorSpec, settings: NetworkSettings) -> None:
        super().__init__()
        self.layout = ObsLayout(spec, ConditioningType(settings.conditioning_type))
        self.stats = Normalizer(self.layout.vector_size)

    def update(self, x: torch.Tensor | np.ndarray) -> None:
        if not self.layout.vector_size:  # cameras only (Match3's visual prefab): nothing to normalise
            return
        if isinstance(x, np.ndarray) and self.layout.plain:
            return self.stats.update(x)
        self.stats.update(self.layout.vectors(torch.as_tensor(x, device=self.stats.mean.device)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout.plain:
            return self.stats(x)
        if not self.layout.vector_size:
            return x
        cols = self.layout.vector_columns.to(x.device)  # type: ignore[union-attr]
        return x.index_copy(1, cols, self.stats(x.index_select(1, cols)))


@dataclass
class PolicyOutput:
    """What acting produces for a batch: the sampled raw actions and their log-probability."""

    continuous: torch.Tensor  # [B, C] raw Gaussian samples (env gets clamp(., -3, 3) / 3)
    discrete: torch.Tensor  # [B, D] int64
    log_prob: torch.Tensor  # [B] joint log-probability of all action components ([B, C + D] per component)
    entropy: torch.Tensor  # [B]
    memories: torch.Tensor | None = None  # [B, memory_size] after this step (networks with memory)


class Actor(nn.Module):
    """Gaussian head and/or one categorical per discrete branch.

    PPO (ML-Agents' defaults): state-independent log std, unbounded samples sent to the env as
    clamp(a, -3, 3) / 3. SAC: `conditional_sigma` (log std from the body) and `tanh_squash` (samples
    squashed into [-1, 1], with the log-density corrected for the squashing). The actor alone decides how
    its continuous actions reach the env (``to_env``, ``env_continuous``): acting, export and evaluation
    all ask it.
    """

    def __init__(
        self,
        spec: BehaviorSpec,
        settings: NetworkSettings,
        conditional_sigma: bool = False,
        tanh_squash: bool = False,
    ) -> None:
        super().__init__()
        action_spec = spec.action_spec
        self.action_spec = action_spec
        self.conditional_sigma = conditional_sigma
        self.tanh_squash = tanh_squash
        # network_settings.deterministic: what ``sample`` does when its caller does not say (training acts so)
        self.deterministic = bool(settings.deterministic)
        self.body = StateEncoder(spec, settings)
        self.memory_size = self.body.memory_size
        hidden = self.body.output_size
        self.mu: nn.Linear | None = None
        if action_spec.continuous_size:
            size = action_spec.continuous_size
            self.mu = nn.Linear(hidden, 2 * size if conditional_sigma else size)
            nn.init.kaiming_normal_(self.mu.weight, nonlinearity="linear")
            self.mu.weight.data.mul_(0.2)
            nn.init.zeros_(self.mu.bias)
            if not conditional_sigma:
                self.log_std = nn.Parameter(torch.zeros(size))
        self.branches = tuple(action_spec.discrete_branches)
        self.logits: nn.Linear | None = None
        if self.branches:
            self.logits = nn.Linear(hidden, sum(self.branches))
            nn.init.kaiming_normal_(self.logits.weight, nonlinearity="linear")
            self.logits.weight.data.mul_(0.1)
            nn.init.zeros_(self.logits.bias)

    def to_env(self, u: torch.Tensor) -> torch.Tensor:
        """A Gaussian sample (or mean) -> the env's continuous action in [-1, 1]: tanh when squashed,
        ML-Agents' clamp(u, -3, 3) / 3 otherwise."""
        return torch.tanh(u) if self.tanh_squash else to_env_continuous(u)

    def env_continuous(self, sampled: ArrayT) -> ArrayT:
        """What ``sample`` returned as continuous actions (squashed already, or raw) -> what the env
        receives; numpy arrays or tensors."""
        if self.tanh_squash:
            return sampled
        if isinstance(sampled, np.ndarray):
            return np.clip(sampled, -CONTINUOUS_CLIP, CONTINUOUS_CLIP) / CONTINUOUS_CLIP
        return to_env_continuous(sampled)

    def _heads(
        self,
        obs: torch.Tensor,
        masks: torch.Tensor | None,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, list[torch.Tensor], torch.Tensor | None]:
        h, new_memories = self.body(obs, memories, sequence_length)
        mu = log_std = None
        if self.mu is not None:
            out = self.mu(h)
            if self.conditional_sigma:
                mu, log_std = out.chunk(2, dim=-1)
            else:
                mu, log_std = out, self.log_std
            log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        log_probs: list[torch.Tensor] = []
        if self.logits is not None:
            logits = self.logits(h)
            if masks is not None:
                logits = logits.masked_fill(~masks, MASKED_LOGIT)
            log_probs = [torch.log_softmax(chunk, dim=1) for chunk in torch.split(logits, self.branches, 1)]
        return mu, log_std, log_probs, new_memories

    def distribution(
        self,
        obs: torch.Tensor,
        masks: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, list[torch.Tensor]]:
        """The policy's parameters on a batch: Gaussian mean and log std (None without continuous actions)
        and each branch's log-probabilities; what behavioral cloning fits to demonstrations."""
        mu, log_std, branch_logp, _ = self._heads(obs, masks, memories, sequence_length)
        return mu, log_std, branch_logp

    def sample(
        self,
        obs: torch.Tensor,
        masks: torch.Tensor | None = None,
        deterministic: bool | None = None,
        memories: torch.Tensor | None = None,
        components: bool = False,
    ) -> PolicyOutput:
        """Actions for a batch; ``components``: log_prob [B, C + D] per action component (see ``evaluate``).
        ``deterministic``: the mean and the most likely actions instead of samples; None: the actor's own
        network_settings.deterministic (how the trainers act). SAC's deterministic action is tanh(mean)."""
        if deterministic is None:
            deterministic = self.deterministic
        mu, log_std, branch_logp, new_memories = self._heads(obs, masks, memories)
        batch = obs.shape[0]
        log_prob = torch.zeros(batch, device=obs.device)
        parts: list[torch.Tensor] = []
        entropy = torch.zeros(batch, device=obs.device)
        cont = torch.zeros(batch, 0, device=obs.device)
        if mu is not None:
            assert log_std is not None
            cont = mu if deterministic else mu + torch.randn_like(mu) * log_std.exp()
            if components:
                parts.append(gaussian_log_prob(cont, mu, log_std, keep_dims=True))
            else:
                log_prob = log_prob + gaussian_log_prob(cont, mu, log_std)
            entropy = entropy + gaussian_entropy(log_std).expand(batch)
            if self.tanh_squash:
                log_prob = log_prob - tanh_log_det(cont)
                cont = torch.tanh(cont)
        disc_cols = []
        for logp in branch_logp:
            choice = logp.argmax(1) if deterministic else torch.multinomial(logp.exp(), 1).squeeze(1)
            disc_cols.append(choice)
            chosen = logp.gather(1, choice[:, None])
            if components:
                parts.append(chosen)
            else:
                log_prob = log_prob + chosen.squeeze(1)
            entropy = entropy - (logp.exp() * logp).sum(1)
        disc = torch.stack(disc_cols, 1) if disc_cols else torch.zeros(batch, 0, dtype=torch.long)
        if components:
            if self.tanh_squash:
                raise ValueError("per-component log-probabilities are defined for unsquashed actions only")
            log_prob = torch.cat(parts, 1) if parts else torch.zeros(batch, 0, device=obs.device)
        return PolicyOutput(cont, disc, log_prob, entropy, new_memories)

    def evaluate(
        self,
        obs: torch.Tensor,
        cont: torch.Tensor,
        disc: torch.Tensor,
        masks: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
        components: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy of given raw (unsquashed) actions (for PPO's ratio). With memory,
        obs holds sequences of sequence_length steps and memories their initial LSTM states.
        ``components``: log-probabilities [B, C + D], one per continuous dimension and per discrete branch
        (MA-POCA's per-component ratio, as upstream), instead of the joint [B]."""
        mu, log_std, branch_logp, _ = self._heads(obs, masks, memories, sequence_length)
        batch = obs.shape[0]
        parts: list[torch.Tensor] = []  # [B] joint pieces, or [B, n] components
        entropy = torch.zeros(batch, device=obs.device)
        if mu is not None:
            assert log_std is not None
            parts.append(gaussian_log_prob(cont, mu, log_std, keep_dims=components))
            entropy = entropy + gaussian_entropy(log_std).expand(batch)
        for i, logp in enumerate(branch_logp):
            chosen = logp.gather(1, disc[:, i : i + 1].long())
            parts.append(chosen if components else chosen.squeeze(1))
            entropy = entropy - (logp.exp() * logp).sum(1)
        if components:
            return (torch.cat(parts, 1) if parts else torch.zeros(batch, 0, device=obs.device)), entropy
        log_prob = torch.zeros(batch, device=obs.device)
        for part in parts:  # summed in this order, as acting sums them
            log_prob = log_prob + part
        return log_prob, entropy


# How each trainer builds its actor (a checkpoint's "actor." weights fit only that shape): PPO's log std is a
# parameter of its own and its actions are clamped to [-3, 3] / 3 for the env; SAC's log std comes from the
# body and its samples are squashed by tanh. Trainers and the modes' policies build actors here.
ACTOR_OPTIONS: dict[str, dict[str, bool]] = {
    "ppo": {},
    "poca": {},  # MA-POCA's actor is PPO's (upstream's SimpleActor for both)
    "sac": {"conditional_sigma": True, "tanh_squash": True},
}


def actor_for(trainer_type: str, spec: BehaviorSpec, settings: NetworkSettings) -> Actor:
    """The actor of trainer ``trainer_type`` (``trainer.trainer_type``) for a behaviour."""
    return Actor(spec, settings, **ACTOR_OPTIONS[trainer_type])


def squashed_sample(
    mu: torch.Tensor | None,
    log_std: torch.Tensor | None,
    batch: int,
    device: torch.device,
    deterministic: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What SAC's update needs of the Gaussian (from Actor.distribution): a reparameterised tanh-squashed
    sample [B, C] and its log-density [B] (an empty sample and zeros without continuous actions).
    ``deterministic`` (network_settings.deterministic): the mean instead, as upstream's update draws its
    actions through the same deterministic sampler that acts."""
    if mu is None:
        return torch.zeros(batch, 0, device=device), torch.zeros(batch, device=device)
    assert log_std is not None
    u = mu if deterministic else mu + torch.randn_like(mu) * log_std.exp()
    log_prob = gaussian_log_prob(u, mu, log_std) - tanh_log_det(u)  # before tanh: autograd's order as always
    return torch.tanh(u), log_prob


def gaussian_log_prob(
    x: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor, keep_dims: bool = False
) -> torch.Tensor:
    """Joint log-density of a diagonal Gaussian, summed over action dimensions (``keep_dims``: one per
    dimension, [..., C])."""
    z = (x - mu) * torch.exp(-log_std)
    per_dim = -0.5 * z.square() - log_std - 0.5 * LOG_2PI
    return per_dim if keep_dims else per_dim.sum(-1)


def tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """log |d tanh(u) / du| summed over dimensions, in a numerically stable form."""
    return (2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))).sum(-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """ML-Agents' entropy of its diagonal Gaussian: the mean over the action's dimensions, not their sum (its
    torch code keeps the TF trainer's convention), so PPO's entropy bonus per dimension is beta / C and
    Policy/Entropy reads as upstream's."""
    return (log_std + 0.5 * (LOG_2PI + 1.0)).mean(-1)


def value_heads(in_size: int, streams: int) -> nn.Linear:
    """One value head per reward stream as the rows of one layer (one matmul for all streams), initialised as
    ML-Agents' ValueHeads: a Linear(in, 1) per stream, Xavier-uniform weights, zero bias."""
    heads = nn.Linear(in_size, streams)
    for row in heads.weight.data:
        nn.init.xavier_uniform_(row.view(1, -1))
    nn.init.zeros_(heads.bias)
    return heads


def to_env_continuous(raw: torch.Tensor) -> torch.Tensor:
    """The env-facing continuous action: ML-Agents' clamp(a, -3, 3) / 3, always inside [-1, 1]."""
    return raw.clamp(-CONTINUOUS_CLIP, CONTINUOUS_CLIP) / CONTINUOUS_CLIP


class Critic(nn.Module):
    """A body and one value head per reward stream (ML-Agents: each stream has its own gamma).

    The body is its own, or with ``shared_body`` the actor's (ML-Agents' shared_critic: one network
    body for policy and value, trained by both losses); a shared body's memory is the actor's, so the
    critic then keeps none of its own (memory_size 0).
    """

    def __init__(
        self,
        spec: BehaviorSpec,
        streams: list[str],
        settings: NetworkSettings,
        shared_body: StateEncoder | None = None,
    ) -> None:
        super().__init__()
        self.streams = list(streams)
        self.shared = shared_body is not None
        self.body = shared_body if shared_body is not None else StateEncoder(spec, settings)
        self.memory_size = 0 if self.shared else self.body.memory_size
        self.heads = value_heads(self.body.output_size, len(self.streams))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Values [B, K], one column per reward stream (networks without memory)."""
        return self.heads(self.body(obs)[0])

    def values(
        self, obs: torch.Tensor, memories: torch.Tensor | None, sequence_length: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Values [B, K] and the critic's memories after the last step (None without memory; none of its
        own, [B, 0], with a shared body: the actor carries that memory)."""
        h, new_memories = self.body(obs, memories, sequence_length)
        if self.shared and new_memories is not None:
            new_memories = new_memories[:, :0]
        return self.heads(h), new_memories


class EnsembleMLP(nn.Module):
    """`members` independent MLPs evaluated with one batched matmul per layer (SAC's twin Q networks).

    forward(x, detach=True) uses detached weights: the policy loss needs Q's gradient with respect to
    the action but must not train Q, and one backward pass then serves every loss.
    """

    def __init__(self, members: int, in_size: int, hidden: int, layers: int, out_size: int) -> None:
        super().__init__()
        sizes = [in_size] + [hidden] * layers + [out_size]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            w = torch.empty(members, a, b)
            for m in range(members):
                nn.init.kaiming_normal_(w[m].T, nonlinearity="linear")  # same scale as the MLPs above
            if i == len(sizes) - 2:
                w.mul_(0.1)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(members, 1, b)))

    def forward(self, x: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """x: [B, in] (shared by members) or [M, B, in]; returns [M, B, out]."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.weights[0].shape[0], -1, -1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if detach:
                w, b = w.detach(), b.detach()
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = nn.functional.silu(x)
        return x
