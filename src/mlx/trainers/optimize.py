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


def take_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()`` without importing torch._dynamo (about 1 s of a SAC run's start-up here).

    PyTorch wraps every optimiser's ``step`` twice: ``profile_hook_step`` (the step hooks and a profiler
    range) around ``_use_grad_for_differentiable``, which imports torch._dynamo to mark graph breaks for
    torch.compile (no-ops outside it) and runs the step with gradients off unless the optimiser is
    ``differentiable``. With no step hooks registered, this runs the innermost step under the same gradient
    mode: the same arithmetic (mlx never runs it under torch.compile). With hooks, ``optimizer.step()``."""
    from torch.optim import optimizer as module

    inner = type(optimizer).step
    while hasattr(inner, "__wrapped__"):
        inner = inner.__wrapped__
    hooked = (
        optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or module._global_optimizer_pre_hooks
        or module._global_optimizer_post_hooks
    )
    if hooked or inner is type(optimizer).step:
        optimizer.step()
        return
    with torch.set_grad_enabled(bool(optimizer.defaults.get("differentiable", False))):
        inner(optimizer)


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
    take_step(optimizer)
