"""What PPOTrainer needs from its networks, whichever computes them: acting, and the update's minibatch steps.

Two implementations: ``TorchActorCritic`` (PPOModule: its ``training_step``, autograd and the torch
optimiser; any device, memory, cameras) and ``NumpyActorCritic`` (the CPU fast path of
``mlx.trainers.ppo.numpy``, about 3x cheaper at ML-Agents' sizes). ``make_actor_critic`` picks the numpy one
where it applies. Both act on the module's own weights and optimiser state, so checkpoints, export and
behavioral cloning never need to know which one ran, and ``PPOTrainer.update`` has one loop: ``load`` the
buffer once, then per minibatch ``loss`` (nothing changed yet: a non-finite loss is refused first) and
``step``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from mlx.trainers import optimize
from mlx.trainers.losses import PPOBatch
from mlx.trainers.ppo.numpy.actor_critic import NumpyActorCritic

if TYPE_CHECKING:
    from mlx.trainers.ppo.trainer import PPOModule

# Raw continuous actions [B, C], discrete actions [B, D] int32, log-probabilities [B], entropies [B],
# values [B, K] and the memories after this step [B, memory] (None without memory).
Acted = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]
# What the trainer acts with: Acted without the values, and log-probabilities [B, C + D], one per action
# component (each continuous dimension, then each discrete branch).
ActedParts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


class ActorCritic(Protocol):
    def act(self, obs: np.ndarray, mask: np.ndarray | None, memories: np.ndarray | None) -> Acted:
        """Sample actions for observation rows (mask: [B, sum(branches)] True where allowed; memories:
        each agent's memory before this step, None without memory), with the joint log-probability and
        the critic's values."""
        ...

    def act_parts(self, obs: np.ndarray, mask: np.ndarray | None, memories: np.ndarray | None) -> ActedParts:
        """What PPO acts with: ``act`` less the values (the steps are valued when their trajectory ends),
        log-probabilities per action component."""
        ...

    def frozen(self) -> ActorCritic:
        """A copy to act with while ``update`` runs in another thread (``threaded``): its policy weights do
        not change; the normaliser and the sampler may be shared (the update changes neither)."""
        ...

    def values(self, obs: np.ndarray, memories: np.ndarray | None) -> np.ndarray:
        """The critic's values [B, K] of observation rows under the live normaliser and weights (memories:
        each row's agent memory, actor's and critic's, None without memory)."""
        ...

    def load(self, data: dict[str, np.ndarray], epsilon: float, beta: float) -> None:
        """The update buffer (PPOBatch's fields as numpy arrays) and the update's clip range and entropy
        coefficient."""
        ...

    def loss(self, rows: torch.Tensor) -> Mapping[str, float | torch.Tensor]:
        """The loss terms of these buffer rows (``ppo_loss``'s, as floats or tensors, plus ``loss`` as a
        float, to be checked before ``step``); changes nothing."""
        ...

    def step(self) -> None:
        """The optimiser step of the last ``loss``, at the optimiser's learning rate."""
        ...

    def minibatch(self, rows: torch.Tensor) -> PPOBatch:
        """The buffer's rows as tensors (what reward signals train on)."""
        ...

    def sampler_state(self) -> Any:
        """The state of its own action sampler for checkpoints (None: it samples with torch's generator)."""
        ...

    def load_sampler_state(self, state: Any) -> None: ...

    def sync_optimizer_state(self) -> None:
        """Bring the torch optimiser's state up to date, before it is saved."""
        ...

    def adopt_optimizer_state(self) -> None:
        """Take up the torch optimiser's state, after it was loaded."""
        ...


def make_actor_critic(module: PPOModule, optimizer: torch.optim.Optimizer, device: torch.device) -> ActorCritic:
    """The numpy actor-critic where it computes the same thing (a CPU module, vector observations, no
    memory), else the torch one."""
    if NumpyActorCritic.applies(module.actor, module.critic, device) and not module.critic.shared:
        return NumpyActorCritic(module.actor, module.critic, module.normalizer, optimizer, torch.initial_seed())
    return TorchActorCritic(module, optimizer, device)


class TorchActorCritic:
    """PPOModule's networks, its ``training_step`` and the torch optimiser."""

    def __init__(self, module: PPOModule, optimizer: torch.optim.Optimizer, device: torch.device) -> None:
        self.module = module
        self.optimizer = optimizer
        self.device = device
        self._tensors: PPOBatch | None = None
        self._rows: torch.Tensor | None = None
        self._batch: PPOBatch | None = None
        self._loss: torch.Tensor | None = None

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def _act(
        self, obs: np.ndarray, mask: np.ndarray | None, memories: np.ndarray | None, parts: bool
    ) -> tuple[ActedParts, np.ndarray | None]:
        """Acting, and the values where they come for free (without memory they need a critic pass of their
        own, which ``act_parts`` skips; with memory the critic runs anyway to carry its memory)."""
        module = self.module
        with torch.inference_mode():
            x = module.preprocess(self._tensor(obs))
            mask_t = None if mask is None else self._tensor(mask)
            new_memories = values = None
            if memories is None:
                out = module.actor.sample(x, mask_t, components=parts)
                if not parts:
                    values = module.critic(x)
            else:
                mem = self._tensor(memories)
                split = module.actor_memory
                out = module.actor.sample(x, mask_t, memories=mem[:, :split], components=parts)
                values, critic_mem = module.critic.values(x, module.critic_memories(mem))
                assert out.memories is not None and critic_mem is not None
                new_memories = torch.cat([out.memories, critic_mem], dim=1).cpu().numpy()
        acted = (
            out.continuous.cpu().numpy(),
            out.discrete.cpu().numpy().astype(np.int32),
            out.log_prob.cpu().numpy(),
            out.entropy.cpu().numpy(),
            new_memories,
        )
        return acted, None if values is None else values.cpu().numpy()

    def act(self, obs: np.ndarray, mask: np.ndarray | None, memories: np.ndarray | None) -> Acted:
        (cont, disc, log_prob, entropy, new_memories), values = self._act(obs, mask, memories, parts=False)
        assert values is not None
        return cont, disc, log_prob, entropy, values, new_memories

    def act_parts(self, obs: np.ndarray, mask: np.ndarray | None, memories: np.ndarray | None) -> ActedParts:
        return self._act(obs, mask, memories, parts=True)[0]

    def frozen(self) -> TorchActorCritic:
        """The module copied whole (acting reads its actor and normaliser); sampling uses torch's generator."""
        return TorchActorCritic(copy.deepcopy(self.module), self.optimizer, self.device)

    def values(self, obs: np.ndarray, memories: np.ndarray | None) -> np.ndarray:
        module = self.module
        with torch.inference_mode():
            x = module.preprocess(self._tensor(obs))
            if memories is None:
                return module.critic(x).cpu().numpy()
            mem = module.critic_memories(self._tensor(memories))
            return module.critic.values(x, mem)[0].cpu().numpy()

    def load(self, data: dict[str, np.ndarray], epsilon: float, beta: float) -> None:
        self._tensors = PPOBatch(**{k: self._tensor(v) for k, v in data.items()})
        self._rows = self._batch = None
        self.module.epsilon, self.module.beta = epsilon, beta

    def minibatch(self, rows: torch.Tensor) -> PPOBatch:
        """Gathered once per minibatch: ``loss`` and the reward signals share it."""
        if rows is not self._rows:
            assert self._tensors is not None, "load() the update buffer first"
            self._batch = PPOBatch(*(None if t is None else t[rows] for t in self._tensors))
            self._rows = rows
        assert self._batch is not None
        return self._batch

    def loss(self, rows: torch.Tensor) -> dict[str, float | torch.Tensor]:
        terms = self.module.training_step(self.minibatch(rows), 0)
        self._loss = terms["loss"]
        return {**terms, "loss": self._loss.item()}

    def step(self) -> None:
        assert self._loss is not None, "loss() first"
        self.optimizer.zero_grad(set_to_none=True)
        self._loss.backward()
        optimize.take_step(self.optimizer)
        self._loss = None

    def sampler_state(self) -> None:
        return None

    def load_sampler_state(self, state: Any) -> None:
        """Nothing to load: acting samples with torch's generator, which the trainer's checkpoint keeps."""

    def sync_optimizer_state(self) -> None:
        """Nothing to sync: the torch optimiser keeps its own state."""

    def adopt_optimizer_state(self) -> None:
        """Nothing to adopt: the torch optimiser keeps its own state."""
