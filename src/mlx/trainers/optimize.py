"""One gradient step that refuses a non-finite loss, shared by trainers, reward signals and behavioral cloning."""

from __future__ import annotations

import math
import sys

import torch

from mlx.errors import TrainingError

# torch.optim.Optimizer methods wrapped by torch._disable_dynamo, which imports torch._dynamo on their first call.
DYNAMO_WRAPPED = ("add_param_group", "state_dict", "load_state_dict", "zero_grad")


def skip_dynamo_import() -> None:
    """Spare a run torch._dynamo's import (about 1.2 s here, more than a third of a 3DBall run's start-up).

    PyTorch wraps four Optimizer methods so that torch.compile does not trace into them; the wrapper imports
    torch._dynamo on the first call to build a disabled copy, and caches it on the function. Outside a
    compiled region that copy does exactly what the function does, and mlx never compiles, so the function
    itself is cached as its own disabled copy. Called by a run's or mode's process set-up
    (training.setup.configure_process), not on import: a program that imports mlx and compiles keeps torch's
    behaviour. Only while torch._dynamo is not loaded; tests/test_lightning_module.py checks a run imports
    neither torch._dynamo nor Lightning, so a PyTorch that changes the mechanism is noticed.
    """
    if "torch._dynamo" in sys.modules:
        return
    for name in DYNAMO_WRAPPED:
        fn = getattr(getattr(torch.optim.Optimizer, name), "__wrapped__", None)
        if fn is not None and getattr(fn, "__dynamo_disable", None) is None:
            setattr(fn, "__dynamo_disable", fn)


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
