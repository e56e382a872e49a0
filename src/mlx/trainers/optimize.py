"""One gradient step that refuses a non-finite loss, shared by trainers, reward signals and behavioral cloning."""

from __future__ import annotations

import math

import torch

from mlx.errors import TrainingError

LOSS_ADVICE = "Try a lower trainer.hyperparameters.learning_rate or trainer.network_settings.normalize=true"


def check_finite(loss: float, what: str, advice: str, step: int | None = None) -> None:
    """Refuse a non-finite loss before any weight changes (see optimizer_step)."""
    if not math.isfinite(loss):
        at = "" if step is None else f" at step {step}"
        raise TrainingError(f"the {what} loss became {loss}{at}; the last checkpoint is kept. {advice}")


def optimizer_step(
    optimizer: torch.optim.Optimizer, loss: torch.Tensor, what: str, advice: str, step: int | None = None
) -> None:
    """One gradient step. A non-finite loss stops training with ``advice`` rather than corrupting the
    weights: the run then ends with the last good checkpoint on disk. ``what`` names the loss."""
    check_finite(loss.item(), what, advice, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
