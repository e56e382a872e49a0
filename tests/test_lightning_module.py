"""mlx's trainer modules keep Lightning's module contract without importing Lightning: the adapter in
``mlx.trainers.lightning_module`` lets Lightning's own Trainer take the same optimiser step mlx's loop takes."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader

from mlx.trainers.losses import PPOBatch
from tests.test_numpy_update import HYBRID, buffer, make_trainer


def test_lightnings_trainer_takes_the_step_mlxs_loop_takes(tmp_path):
    import lightning.pytorch as pl

    from mlx.trainers.lightning_module import LightningTrainerModule

    trainer = make_trainer(HYBRID)
    batch = PPOBatch(**{k: torch.as_tensor(v) for k, v in buffer(trainer, 64, parts=True).items()})
    before, ours, theirs = (copy.deepcopy(trainer.module) for _ in range(3))

    optimizer = ours.configure_optimizers()
    optimizer.zero_grad()
    ours.training_step(batch, 0)["loss"].backward()
    optimizer.step()

    wrapped = LightningTrainerModule(theirs)
    assert isinstance(wrapped, pl.LightningModule)
    pl.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path,
    ).fit(wrapped, train_dataloaders=DataLoader([batch], batch_size=None, collate_fn=lambda b: b))  # fmt: skip
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    assert any(not torch.equal(a, b) for a, b in zip(ours.parameters(), before.parameters(), strict=True))
    assert wrapped.trainer.logged_metrics  # the loss terms other than "loss" are logged


@pytest.mark.parametrize(
    "overrides",
    [["env=3dball", "trainer.max_steps=300"], ["trainer=sac", "env=3dball", "trainer.max_steps=400"]],
    ids=["ppo", "sac"],
)
def test_a_training_run_does_not_import_lightning(tmp_path, overrides):
    """Lightning's import (torch._dynamo, torchmetrics, scipy.signal: about 3.4 s here) is not paid by a run, nor
    torch._dynamo's (PyTorch's optimisers import it on first use; SAC steps its optimisers with torch's)."""
    argv = ["mlx", *overrides, "tracking=none", "progress=plain"]
    script = (
        "import sys, atexit\n"
        "atexit.register(lambda: sys.stderr.write('LOADED ' + ' '.join(sorted(sys.modules)) + '\\n'))\n"
        "from mlx.__main__ import main\n"
        f"sys.argv = {argv!r}\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set(next(line for line in proc.stderr.splitlines() if line.startswith("LOADED ")).split()[1:])
    assert "torch" in loaded and not {"lightning", "torchmetrics", "scipy"} & {n.split(".")[0] for n in loaded}
    assert "torch._dynamo" not in loaded  # mlx.trainers.optimize.skip_dynamo_import


@pytest.mark.parametrize("fused", [False, True])
def test_take_step_is_the_optimisers_step(fused):
    """mlx.trainers.optimize.take_step (no torch._dynamo import) moves the weights exactly as optimizer.step(),
    Adam's state included, and with a step hook registered it is optimizer.step() (the hook runs)."""
    from mlx.trainers.optimize import take_step

    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.SiLU(), torch.nn.Linear(8, 2)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [torch.optim.Adam(n.parameters(), lr=1e-2, fused=fused) for n in nets]
    x = torch.randn(16, 5)
    for _ in range(3):
        for net, opt, stepper in zip(nets, opts, (take_step, lambda o: o.step()), strict=True):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            stepper(opt)
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(a, b)
    states = [list(o.state.values()) for o in opts]
    assert all(torch.equal(u["exp_avg_sq"], v["exp_avg_sq"]) for u, v in zip(*states, strict=True))
    calls = []
    opts[0].register_step_post_hook(lambda *args: calls.append(1))
    take_step(opts[0])
    assert calls == [1]
