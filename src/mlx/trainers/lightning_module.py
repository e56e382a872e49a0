"""Any mlx trainer module as a Lightning ``LightningModule``, to drive it with Lightning's Trainer or Fabric.

PPO's, SAC's and POCA's modules keep Lightning's module contract: ``training_step(batch, batch_idx)``
returns the loss terms by name with their sum under ``"loss"`` (a pure function of the minibatch), and
``configure_optimizers()`` returns the optimiser. They subclass ``torch.nn.Module`` rather than
``LightningModule`` because mlx's loop calls those two methods itself (at ML-Agents' batch sizes Lightning's
Trainer doubles the cost of an optimiser step: DESIGN.md) and ``import lightning.pytorch`` alone costs about
3.4 s on these machines (it imports ``torch._dynamo`` and torchmetrics, which imports ``scipy.signal``):
more than a whole 3DBall PPO run's training. This module is where Lightning is imported, for whoever wants
its Trainer around one of mlx's modules.
"""

from __future__ import annotations

from typing import Any, Protocol

import lightning.pytorch as pl
import torch


class TrainerModule(Protocol):
    """What PPOModule, SACModule and POCAModule have in common with a LightningModule."""

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]: ...

    def configure_optimizers(self) -> torch.optim.Optimizer: ...


class LightningTrainerModule(pl.LightningModule):
    """Lightning's view of one mlx module (held as ``.module``, so its parameters are the same tensors):
    Lightning's Trainer steps the optimiser on ``"loss"`` and logs the other scalar terms. What a trainer
    does around the optimiser step (acting, buffers, SAC's target network update) stays with mlx's trainers."""

    def __init__(self, module: TrainerModule) -> None:
        super().__init__()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"expected an mlx trainer module (a torch.nn.Module), got {type(module).__name__}")
        self.module = module

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        terms = self.module.training_step(batch, batch_idx)
        rows = int(next(t for t in batch if isinstance(t, torch.Tensor)).shape[0])
        scalars = {k: v.detach() for k, v in terms.items() if k != "loss" and v.dim() == 0}
        if scalars:
            self.log_dict(scalars, batch_size=rows)
        return terms["loss"]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.module.configure_optimizers()
