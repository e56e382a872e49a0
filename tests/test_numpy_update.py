"""PPO's numpy update equals autograd and torch's Adam: loss terms, every gradient, the step, checkpoints."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from mlx.config import ExtrinsicSettings, RNDSettings
from mlx.envs.api import ActionSpec
from mlx.trainers import TrainingError
from mlx.trainers.losses import PPOBatch
from mlx.trainers.ppo.actor_critic import TorchActorCritic
from mlx.trainers.ppo.trainer import PPOTrainer
from tests.test_numpy_policy import make_trainer as numpy_policy_trainer
from tests.test_numpy_policy import numpy_path

STREAMS = {"extrinsic": ExtrinsicSettings(), "rnd": RNDSettings()}
HYBRID = ActionSpec(continuous_size=2, discrete_branches=(4, 3))


def make_trainer(action_spec: ActionSpec, seed: int = 0, memory: bool = False) -> PPOTrainer:
    return numpy_policy_trainer(action_spec, memory=memory, signals=STREAMS, hidden_units=32, seed=seed)


def buffer(trainer: PPOTrainer, n: int = 256, parts: bool = False) -> dict[str, np.ndarray]:
    """Experience the policy could have produced, with old log-probabilities and values nearby, so the
    ratio and the value are clipped on some rows and not on others. ``parts``: old log-probabilities per
    action component [n, C + D], as the trainer stores them, instead of the joint [n]."""
    rng = np.random.default_rng(2)
    obs = rng.normal(2.0, 3.0, (n, 6)).astype(np.float32)
    width = sum(trainer.spec.action_spec.discrete_branches)
    mask = rng.random((n, width)) > 0.3
    if width:
        mask[:, 0] = mask[:, 4] = True
    policy = numpy_path(trainer)
    assert policy is not None
    if parts:
        cont, disc, log_prob, _, _ = policy.act_parts(obs, mask if width else None)
        values = policy.values(obs)
    else:
        cont, disc, log_prob, _, values, _ = policy.act(obs, mask if width else None)
    return {
        "obs": obs,
        "continuous": cont,
        "discrete": disc.astype(np.int64),
        "action_mask": mask,
        "old_log_prob": (log_prob + rng.normal(0, 0.3, log_prob.shape)).astype(np.float32),
        "old_values": (values + rng.normal(0, 0.3, values.shape)).astype(np.float32),
        "returns": (values + rng.normal(0, 1.0, values.shape)).astype(np.float32),
        "advantages": rng.normal(0, 1.0, n).astype(np.float32),
    }


def autograd(trainer: PPOTrainer, data: dict[str, np.ndarray], epsilon: float, beta: float):
    module = trainer.module
    module.epsilon, module.beta = epsilon, beta
    module.zero_grad(set_to_none=True)
    terms = module.training_step(PPOBatch(**{k: torch.as_tensor(v) for k, v in data.items()}), 0)
    terms["loss"].backward()
    grads = torch.cat([p.grad.reshape(-1) for p in numpy_path(trainer).flat.params]).numpy()
    return {k: v.item() for k, v in terms.items()}, grads


@pytest.mark.parametrize("parts", [False, True], ids=["joint", "per_component"])
@pytest.mark.parametrize(
    "action_spec",
    [HYBRID, ActionSpec(continuous_size=3), ActionSpec(discrete_branches=(5,))],
    ids=["hybrid", "continuous", "discrete"],
)
def test_loss_and_gradients_match_autograd(action_spec, parts):
    """Joint old log-probabilities [B] (one ratio per row), and the form the trainer stores: one per action
    component [B, C + D], one ratio per component."""
    trainer = make_trainer(action_spec)
    fast = numpy_path(trainer)
    assert fast is not None
    data = buffer(trainer, parts=parts)
    spec = trainer.spec.action_spec
    if parts:
        assert data["old_log_prob"].shape == (256, spec.continuous_size + spec.discrete_size)
    ref_terms, ref_grad = autograd(trainer, data, epsilon=0.2, beta=0.01)
    fast.load(data, 0.2, 0.01)
    terms = fast.loss(np.arange(len(data["obs"])))
    for key in ("loss", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"):
        assert math.isclose(terms[key], ref_terms[key], rel_tol=1e-4, abs_tol=1e-5), key
    assert 0.05 < terms["clip_fraction"] < 0.95  # both branches of the clipped surrogate are exercised
    fast.backward()
    scale = np.abs(ref_grad).max()
    np.testing.assert_allclose(fast.flat.grad, ref_grad, rtol=1e-3, atol=1e-5 * scale)
    if parts and data["old_log_prob"].shape[1] > 1:
        # ...and it is not the joint ratio's loss: the same rows with joint old log-probabilities differ.
        fast.load({**data, "old_log_prob": data["old_log_prob"].sum(1)}, 0.2, 0.01)
        assert not math.isclose(fast.loss(np.arange(256))["policy_loss"], terms["policy_loss"], rel_tol=1e-3)


def test_a_minibatch_of_rows_is_the_same_rows_in_torch():
    trainer = make_trainer(HYBRID)
    fast = numpy_path(trainer)
    data = buffer(trainer)
    rows = np.random.default_rng(3).permutation(len(data["obs"]))[:64]
    ref_terms, ref_grad = autograd(trainer, {k: v[rows] for k, v in data.items()}, 0.1, 0.005)
    fast.load(data, 0.1, 0.005)
    assert math.isclose(fast.loss(rows)["loss"], ref_terms["loss"], rel_tol=1e-4)
    fast.backward()
    np.testing.assert_allclose(fast.flat.grad, ref_grad, rtol=1e-3, atol=1e-5 * np.abs(ref_grad).max())


def test_adam_steps_like_torch_and_checkpoints_keep_torch_format():
    trainer = make_trainer(HYBRID)
    fast = numpy_path(trainer)
    data = buffer(trainer)
    twin = copy.deepcopy(trainer.module)  # the same weights, stepped by torch's Adam on the same gradients
    twin_params = list(twin.parameters())
    twin_opt = torch.optim.Adam(twin_params, lr=3e-4)
    fast.load(data, 0.2, 0.005)
    rng = np.random.default_rng(4)
    for lr in (3e-4, 2e-4, 1e-4):
        rows = rng.permutation(len(data["obs"]))[:64]
        fast.loss(rows)
        fast.backward()
        grads = fast.flat.grad.copy()
        fast.loss(rows)
        trainer.optimizer.param_groups[0]["lr"] = lr
        fast.step()
        start = 0
        for p in twin_params:
            p.grad = torch.from_numpy(grads[start : start + p.numel()].reshape(p.shape).copy())
            start += p.numel()
        twin_opt.param_groups[0]["lr"] = lr
        twin_opt.step()
    mine = torch.cat([p.detach().reshape(-1) for p in trainer.module.parameters()])
    theirs = torch.cat([p.detach().reshape(-1) for p in twin_params])
    torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    assert np.shares_memory(fast.flat.values, trainer.module.actor.log_std.detach().numpy())  # one buffer, no copies

    # The checkpoint carries torch's optimiser format with these moments; a fresh trainer adopts them.
    state = trainer.state_dict()
    moments = state["optimizer"]["state"]
    assert all(int(s["step"]) == 3 for s in moments.values())
    reference = twin_opt.state_dict()["state"]
    for k, s in moments.items():
        torch.testing.assert_close(s["exp_avg"], reference[k]["exp_avg"], rtol=1e-5, atol=1e-8)
    other = make_trainer(HYBRID, seed=5)
    other.load_state_dict(copy.deepcopy(state))
    assert numpy_path(other).flat.t == 3
    np.testing.assert_array_equal(numpy_path(other).flat.m, fast.flat.m)
    np.testing.assert_array_equal(numpy_path(other).flat.values, fast.flat.values)
    # Both continue identically.
    for t in (trainer, other):
        t.optimizer.param_groups[0]["lr"] = 1e-4
        numpy_path(t).load(data, 0.2, 0.005)
        numpy_path(t).loss(np.arange(64))
        numpy_path(t).step()
    np.testing.assert_array_equal(numpy_path(other).flat.values, fast.flat.values)


@pytest.mark.parametrize("parts", [False, True], ids=["joint", "per_component"])
def test_a_whole_update_learns_as_the_torch_path_does(parts):
    """Same buffer, same minibatch order: the numpy path and training_step + Adam end in nearly the same
    weights after an update of 3 epochs (old log-probabilities joint, or per component as stored)."""
    runs = []
    for use_numpy in (True, False):
        trainer = make_trainer(HYBRID)
        trainer.hp.batch_size = 64  # 8 minibatches per epoch
        data = buffer(trainer, 512, parts)
        if not use_numpy:
            trainer.actor_critic = TorchActorCritic(trainer.module, trainer.optimizer, trainer.device)
        extra = {"next_obs": np.zeros((512, 0), np.float32), "env_reward": np.zeros(512, np.float32)}
        trainer._buffer = [{**data, **extra, "done": np.zeros(512, np.float32)}]
        trainer._buffered = 512
        trainer.intrinsic = {}
        torch.manual_seed(7)  # the minibatch permutations
        trainer.update()
        runs.append(torch.cat([p.detach().reshape(-1) for p in trainer.module.parameters()]))
    start = make_trainer(HYBRID)
    before = torch.cat([p.detach().reshape(-1) for p in start.module.parameters()])
    moved = (runs[1] - before).abs()
    assert moved.max() > 3e-3  # the update did change the weights
    assert (runs[0] - runs[1]).abs().max() < 1e-3 * moved.max()  # float rounding only


def test_a_non_finite_loss_is_refused_before_any_weight_changes():
    trainer = make_trainer(HYBRID)
    data = buffer(trainer, 128)
    data["returns"][5] = np.nan
    trainer._buffer = [
        {**data, "next_obs": np.zeros((128, 0), np.float32), "env_reward": np.zeros(128), "done": np.zeros(128)}
    ]
    trainer._buffered = 128
    trainer.intrinsic = {}
    before = numpy_path(trainer).flat.values.copy()
    with pytest.raises(TrainingError, match="PPO loss became nan"):
        trainer.update()
    np.testing.assert_array_equal(numpy_path(trainer).flat.values, before)


def test_only_where_it_computes_the_same_thing():
    assert numpy_path(make_trainer(HYBRID, memory=True)) is None
