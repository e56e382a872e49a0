"""A module's parameters in one flat CPU buffer, with their gradients and Adam's moments beside them.

Why: the numpy actor-critic writes every gradient by hand into one flat array, and then one call of
torch's fused Adam steps every parameter (about 3x faster than the same arithmetic in numpy calls).
Each Parameter becomes a view of the flat buffer, so every reader (torch acting, checkpoints, ONNX export,
behavioral cloning) sees the same memory without copies. Adam's moments are views of two flat tensors
that the torch optimiser's state entries also point to, so checkpoints keep torch's optimiser format and
load on either path.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.optim.adam import adam


class FlatAdam:
    """``values``/``grad``/``m``/``v``: numpy views of the flat buffers; ``view(p)`` the slices of one
    parameter; ``step()`` one Adam step of them all at the optimiser's learning rate and betas."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        (group,) = optimizer.param_groups
        if group["weight_decay"] or group["amsgrad"] or group["maximize"]:
            raise ValueError("FlatAdam implements plain Adam only")
        self.optimizer = optimizer
        self.params: list[nn.Parameter] = list(group["params"])
        self.offsets: dict[int, tuple[int, int]] = {}
        total = sum(p.numel() for p in self.params)
        flat = torch.empty(total)
        start = 0
        for p in self.params:
            n = p.numel()
            flat[start : start + n] = p.detach().reshape(-1)
            p.data = flat[start : start + n].view_as(p)  # the parameter now lives in the flat buffer
            self.offsets[id(p)] = (start, n)
            start += n
        self._flat, self.values = flat, flat.numpy()
        self._grad = torch.zeros(total)
        self.grad = self._grad.numpy()
        self._m = torch.zeros(total)
        self._v = torch.zeros(total)
        self.m, self.v = self._m.numpy(), self._v.numpy()
        self._step = torch.tensor(0.0)  # Adam's step count (a float32 tensor, as fused Adam keeps it)
        self.adopt_optimizer_state()

    def view(self, p: nn.Parameter) -> tuple[np.ndarray, np.ndarray]:
        """The parameter's values and gradient, as numpy views of the flat buffers in its shape."""
        start, n = self.offsets[id(p)]
        return self.values[start : start + n].reshape(p.shape), self.grad[start : start + n].reshape(p.shape)

    def adopt_optimizer_state(self) -> None:
        """Take Adam's moments from the torch optimiser's state (after it was loaded from a checkpoint, or
        empty), then point that state at these moments, so saving it saves them."""
        state = self.optimizer.state
        steps = 0
        for p in self.params:
            start, n = self.offsets[id(p)]
            old = state.get(p)
            if old:
                self.m[start : start + n] = old["exp_avg"].reshape(-1).numpy()
                self.v[start : start + n] = old["exp_avg_sq"].reshape(-1).numpy()
                steps = int(old["step"])
            else:
                self.m[start : start + n] = 0.0
                self.v[start : start + n] = 0.0
            state[p] = {
                "step": torch.tensor(float(steps)),
                "exp_avg": self._m[start : start + n].view_as(p),
                "exp_avg_sq": self._v[start : start + n].view_as(p),
            }
        self._step.fill_(float(steps))

    def sync_optimizer_state(self) -> None:
        """Write Adam's step count into the torch optimiser's state (its moments are already shared)."""
        for p in self.params:
            self.optimizer.state[p]["step"].copy_(self._step)

    def step(self) -> None:
        """One step of torch's own fused Adam on the flat buffers, one kernel for every parameter."""
        (group,) = self.optimizer.param_groups
        beta1, beta2 = group["betas"]
        adam(
            [self._flat],
            [self._grad],
            [self._m],
            [self._v],
            [],
            [self._step],
            fused=True,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=0.0,
            eps=group["eps"],
            maximize=False,
        )

    @property
    def t(self) -> int:
        """Adam steps taken."""
        return int(self._step.item())
