"""MA-POCA's trajectory maths and loss against numbers worked out by hand (reference sections 2.4 and 2.5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlx.trainers.losses import POCABatch, poca_loss, total_loss
from mlx.trainers.poca.returns import bootstrap_value, group_extrinsic_reward, lambda_returns, poca_advantages

NAN = float("nan")


def upstream_lambda_return(r, values, gamma, lambd, value_next):
    """ML-Agents' ``lambd_return`` loop, copied in spirit: the independent reference."""
    returns = np.zeros(len(r))
    returns[-1] = r[-1] + gamma * value_next
    for t in reversed(range(len(r) - 1)):
        returns[t] = gamma * lambd * returns[t + 1] + r[t] + (1 - lambd) * gamma * values[t + 1]
    return returns


# --- lambda-returns -------------------------------------------------------------------------------------------

REWARDS = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 1.0]])  # [K=2 streams, T=3]
VALUES = np.array([[0.5, 1.0, 2.0], [1.0, 2.0, 0.0]])
V_NEXT = np.array([3.0, 0.0])


def test_lambda_returns_by_hand_three_steps_two_streams():
    # gamma 0.9, lambda 0.5. Stream 0:
    #   G2 = 2 + 0.9 * 3                          = 4.7
    #   G1 = 0 + 0.9 * (0.5 * 2.0 + 0.5 * 4.7)    = 3.015
    #   G0 = 1 + 0.9 * (0.5 * 1.0 + 0.5 * 3.015)  = 2.80675
    # Stream 1:
    #   G2 = 1 + 0.9 * 0                          = 1.0
    #   G1 = 0 + 0.9 * (0.5 * 0.0 + 0.5 * 1.0)    = 0.45
    #   G0 = 0 + 0.9 * (0.5 * 2.0 + 0.5 * 0.45)   = 1.1025
    g = lambda_returns(REWARDS, VALUES, V_NEXT, gamma=0.9, lam=0.5)
    assert g.dtype == np.float32 and g.shape == (2, 3)
    np.testing.assert_allclose(g, [[2.80675, 3.015, 4.7], [1.1025, 0.45, 1.0]], rtol=1e-6)


def test_lambda_one_is_discounted_monte_carlo_plus_discounted_bootstrap():
    g = lambda_returns(REWARDS, VALUES, V_NEXT, gamma=0.9, lam=1.0)
    # G_t = sum_k gamma^k r_{t+k} + gamma^(T-t) V_next; the values are not used at all.
    expected0 = [1 + 0.9 * 0 + 0.81 * 2 + 0.729 * 3, 0 + 0.9 * 2 + 0.81 * 3, 2 + 0.9 * 3]
    expected1 = [0.81 * 1, 0.9 * 1, 1.0]
    np.testing.assert_allclose(g, [expected0, expected1], rtol=1e-6)


def test_lambda_zero_is_one_step_td_targets():
    g = lambda_returns(REWARDS, VALUES, V_NEXT, gamma=0.9, lam=0.0)
    # G_t = r_t + gamma V_{t+1}, with V_next after the last step.
    expected0 = [1 + 0.9 * 1.0, 0 + 0.9 * 2.0, 2 + 0.9 * 3.0]
    expected1 = [0 + 0.9 * 2.0, 0 + 0.9 * 0.0, 1 + 0.9 * 0.0]
    np.testing.assert_allclose(g, [expected0, expected1], rtol=1e-6)


@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 0.1), (0.5, 0.02)])
def test_lambda_returns_match_upstream_loop_on_long_trajectories(gamma, lam):
    # gamma * lam = 0.01 splits the 1000 steps into blocks in discounted_reverse_cumsum: the carry must be right.
    rng = np.random.default_rng(0)
    r, v = rng.normal(size=(2, 1000)), rng.normal(size=(2, 1000))
    g = lambda_returns(r, v, np.array([0.7, -1.2]), gamma, lam)
    for k, v_next in enumerate([0.7, -1.2]):
        np.testing.assert_allclose(g[k], upstream_lambda_return(r[k], v[k], gamma, lam, v_next), rtol=1e-4, atol=1e-5)


def test_lambda_returns_single_step_and_empty():
    np.testing.assert_allclose(lambda_returns([[2.0]], [[5.0]], [1.0], 0.5, 0.3), [[2.5]])
    assert lambda_returns(np.zeros((2, 0)), np.zeros((2, 0)), np.zeros(2), 0.9, 0.9).shape == (2, 0)


# --- bootstrap ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "done", "group_done", "interrupted", "bootstraps"),
    [
        ("cut by time_horizon, nobody done", False, False, False, True),
        ("dies while the group continues (posthumous credit)", True, False, False, True),
        ("whole group done, episode really ended", True, True, False, False),
        ("group timeout (interrupted)", True, True, True, True),
        ("own trajectory cut while the rest of the group is done", False, True, False, True),
    ],
)
def test_bootstrap_cases(case, done, group_done, interrupted, bootstraps):
    v_next = np.array([2.0, -1.0])  # two streams
    got = bootstrap_value(v_next, done, group_done, interrupted)
    np.testing.assert_array_equal(got, v_next if bootstraps else [0.0, 0.0], err_msg=case)


def test_bootstrap_batched_flags():
    v_next = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    got = bootstrap_value(v_next, np.array([True, True, True]), np.array([False, True, True]), [False, False, True])
    np.testing.assert_array_equal(got, [[1.0, 2.0], [0.0, 0.0], [5.0, 6.0]])


# --- group reward ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("own", "mates", "group", "strength", "expected"),
    [
        (1.0, [0.5, -0.25], 2.0, 1.0, 3.25),  # everyone present
        (1.0, [0.5, NAN], 2.0, 1.0, 3.5),  # an absent (NaN) mate contributes 0
        (1.0, [NAN, NAN], 0.0, 1.0, 1.0),  # alone: the agent's own reward
        (1.0, [0.0, 0.0], 0.0, 1.0, 1.0),  # present mates with 0 reward: the same
        (0.0, [], 1.0, 1.0, 1.0),  # a group of one (no mate slots)
        (1.0, [1.0, 1.0], -1.0, 0.5, 1.0),  # strength scales the whole sum
    ],
)
def test_group_reward_accounting(own, mates, group, strength, expected):
    got = group_extrinsic_reward(np.array([own]), np.array([mates]).reshape(1, -1), np.array([group]), strength)
    np.testing.assert_allclose(got, [expected])


def test_group_reward_over_a_trajectory():
    own = np.array([0.0, 1.0, 0.0])
    mates = np.array([[1.0, 0.0], [NAN, 2.0], [NAN, NAN]])  # mate 0 dies after step 0, mate 1 after step 1
    group = np.array([0.0, 0.0, 10.0])
    np.testing.assert_allclose(group_extrinsic_reward(own, mates, group, 0.1), [0.1, 0.3, 1.0], rtol=1e-6)


# --- advantages -----------------------------------------------------------------------------------------------


def test_advantages_are_return_minus_baseline_averaged_over_streams():
    returns = np.array([[3.0, 1.0], [1.0, 5.0]])  # [K=2, T=2]
    baselines = np.array([[1.0, 1.0], [0.0, 1.0]])
    # step 0: mean(3 - 1, 1 - 0) = 1.5; step 1: mean(1 - 1, 5 - 1) = 2.0
    np.testing.assert_allclose(poca_advantages(returns, baselines), [1.5, 2.0])
    one_stream = poca_advantages(returns[:1], baselines[:1])
    np.testing.assert_allclose(one_stream, [2.0, 0.0])


# --- loss -----------------------------------------------------------------------------------------------------


def tiny_batch(valid=None):
    """Two rows, two action components, one reward stream; see the hand computation in the test below."""
    return POCABatch(
        old_log_prob=torch.zeros(2, 2),
        old_values=torch.tensor([[0.0], [0.0]]),
        old_baselines=torch.tensor([[1.0], [0.0]]),
        returns=torch.tensor([[1.0], [0.0]]),
        advantages=torch.tensor([1.0, -2.0]),
        valid=valid,
    )


def tiny_outputs():
    log_prob = torch.tensor([[1.1, 1.5], [0.5, 1.0]]).log().requires_grad_()
    entropy = torch.tensor([1.0, 2.0], requires_grad=True)
    values = torch.tensor([[0.5], [0.3]], requires_grad=True)
    baselines = torch.tensor([[0.9], [-0.1]], requires_grad=True)
    return log_prob, entropy, values, baselines


def test_poca_loss_by_hand():
    # eps 0.2, beta 0.01. Ratios per component [[1.1, 1.5], [0.5, 1.0]], advantages [1, -2]:
    #   min(rho A, clip(rho) A): 1.1, min(1.5, 1.2) = 1.2, min(-1.0, -1.6) = -1.6, -2.0 -> L_pi = -(-1.3 / 4) = 0.325
    # V (G = [1, 0], V_old = 0): row 0 moved 0.5 toward G, clipped to 0.2 -> max(0.25, 0.64) = 0.64;
    #   row 1 moved 0.3 away from G -> max(0.09, 0.04) = 0.09; L_V = 0.365
    # B (B_old = [1, 0]): both within eps -> 0.01 each; L_B = 0.01
    # entropy mean 1.5. Total = 0.325 + 0.5 * (0.365 + 0.5 * 0.01) - 0.01 * 1.5 = 0.495
    terms = poca_loss(*tiny_outputs(), tiny_batch(), epsilon=0.2, beta=0.01)
    expected = {"policy_loss": 0.325, "value_loss": 0.365, "baseline_loss": 0.01, "entropy": 1.5}
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-5), name
    assert terms["loss_value"].item() == pytest.approx(0.5 * 0.365, rel=1e-5)
    assert terms["loss_baseline"].item() == pytest.approx(0.25 * 0.01, rel=1e-5)
    assert total_loss(terms).item() == pytest.approx(0.495, rel=1e-5)
    assert terms["clip_fraction"].item() == pytest.approx(0.5)  # 1.5 and 0.5 are outside [0.8, 1.2]


def test_joint_log_prob_is_one_component():
    log_prob, entropy, values, baselines = tiny_outputs()
    joint = log_prob.detach().sum(1)
    batch = tiny_batch()._replace(old_log_prob=torch.zeros(2))
    terms = poca_loss(joint, entropy, values, baselines, batch, epsilon=0.2, beta=0.0)
    # ratios 1.65 and 0.5: min(1.65, 1.2) * 1 = 1.2; min(-1.0, -1.6) = -1.6 -> L_pi = 0.2
    assert terms["policy_loss"].item() == pytest.approx(0.2, rel=1e-5)


def test_baseline_gradient_stays_out_of_the_policy_terms():
    log_prob, entropy, values, baselines = tiny_outputs()
    terms = poca_loss(log_prob, entropy, values, baselines, tiny_batch(), epsilon=0.2, beta=0.01)
    for name in ("loss_policy", "loss_value", "loss_entropy"):
        (grad,) = torch.autograd.grad(terms[name], baselines, allow_unused=True, retain_graph=True)
        assert grad is None, name
    (grad_b,) = torch.autograd.grad(total_loss(terms), baselines, retain_graph=True)
    # d(0.25 * mean_rows (G - B)^2)/dB = 0.25 * 2 (B - G) / 2 rows: row 0 -> -0.025, row 1 -> -0.025
    torch.testing.assert_close(grad_b, torch.tensor([[-0.025], [-0.025]]))
    (grad_pi,) = torch.autograd.grad(total_loss(terms), log_prob)
    other = poca_loss(log_prob, entropy, values, baselines.detach() + 5.0, tiny_batch(), epsilon=0.2, beta=0.01)
    torch.testing.assert_close(torch.autograd.grad(total_loss(other), log_prob)[0], grad_pi)


@pytest.mark.parametrize("head", ["values", "baselines"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_value_and_baseline_clip_at_epsilon(head, sign):
    eps, old = 0.2, 0.5
    target = old + sign * 1.0

    def loss_and_grad(pred_value: float) -> tuple[float, float]:
        pred = torch.tensor([[pred_value]], requires_grad=True)
        fixed = torch.tensor([[old]])
        batch = POCABatch(torch.zeros(1, 1), fixed, fixed, torch.tensor([[target]]), torch.zeros(1))
        values, baselines = (pred, fixed) if head == "values" else (fixed, pred)
        terms = poca_loss(torch.zeros(1, 1), torch.zeros(1), values, baselines, batch, epsilon=eps, beta=0.0)
        raw = terms["value_loss" if head == "values" else "baseline_loss"]
        (grad,) = torch.autograd.grad(terms["loss_value" if head == "values" else "loss_baseline"], pred)
        return raw.item(), grad.item()

    # Inside the trust region: plain squared error, live gradient.
    loss, grad = loss_and_grad(old + sign * 0.1)
    assert loss == pytest.approx(0.81) and grad != 0.0
    # Past +eps toward the target: the clipped error (1 - eps)^2 is the larger one, and it has no gradient.
    loss, grad = loss_and_grad(old + sign * (eps + 0.1))
    assert loss == pytest.approx((1.0 - eps) ** 2) and grad == 0.0
    # Past eps away from the target: the unclipped error is the larger, its gradient pulls back.
    loss, grad = loss_and_grad(old - sign * (eps + 0.1))
    assert loss == pytest.approx((1.0 + eps + 0.1) ** 2) and grad * sign < 0.0


def test_masked_rows_are_ignored_even_when_nan():
    log_prob, entropy, values, baselines = tiny_outputs()
    reference = poca_loss(log_prob, entropy, values, baselines, tiny_batch(), epsilon=0.2, beta=0.01)

    def pad(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([t.detach(), torch.full_like(t[:1], NAN)]).requires_grad_(t.requires_grad)

    padded_out = [pad(t) for t in (log_prob, entropy, values, baselines)]
    padded_batch = POCABatch(*(pad(t) for t in tiny_batch()[:5]), valid=torch.tensor([True, True, False]))
    terms = poca_loss(*padded_out, padded_batch, epsilon=0.2, beta=0.01)
    for name in reference:
        torch.testing.assert_close(terms[name], reference[name], msg=name)
    grads = torch.autograd.grad(total_loss(terms), [padded_out[0], padded_out[2], padded_out[3]])
    for g in grads:
        assert torch.isfinite(g).all() and (g[2] == 0).all()


def test_no_valid_rows_gives_zero_not_nan():
    batch = tiny_batch(valid=torch.tensor([False, False]))
    terms = poca_loss(*tiny_outputs(), batch, epsilon=0.2, beta=0.01)
    assert total_loss(terms).item() == 0.0
