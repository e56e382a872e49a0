"""PPO loss terms on batches whose answers are known."""

import math

import torch

from mlx.trainers.losses import PPOBatch, ppo_loss, total_loss


def make_batch(old_log_prob, advantages, old_values, returns):
    b = len(advantages)
    return PPOBatch(
        obs=torch.zeros(b, 1),
        continuous=torch.zeros(b, 1),
        discrete=torch.zeros(b, 0, dtype=torch.long),
        action_mask=torch.zeros(b, 0, dtype=torch.bool),
        old_log_prob=torch.tensor(old_log_prob),
        old_values=torch.tensor(old_values),
        returns=torch.tensor(returns),
        advantages=torch.tensor(advantages),
    )


def test_unchanged_policy_gives_minus_mean_advantage_and_no_clipping():
    batch = make_batch([0.0, 0.0], [1.0, -3.0], [[0.0], [0.0]], [[0.0], [0.0]])
    terms = ppo_loss(torch.zeros(2), torch.ones(2), torch.zeros(2, 1), batch, epsilon=0.2, beta=0.01)
    assert math.isclose(terms["policy_loss"].item(), 1.0)  # -(1 - 3) / 2
    assert terms["clip_fraction"].item() == 0.0
    assert abs(terms["approx_kl"].item()) < 1e-7
    assert math.isclose(terms["loss_entropy"].item(), -0.01, rel_tol=1e-6)


def test_ratio_is_clipped_for_positive_advantage():
    # ratio = e^1 > 1.2: with a positive advantage the objective is clipped at (1 + eps) * A.
    batch = make_batch([0.0], [2.0], [[0.0]], [[0.0]])
    terms = ppo_loss(torch.ones(1), torch.zeros(1), torch.zeros(1, 1), batch, epsilon=0.2, beta=0.0)
    assert math.isclose(terms["policy_loss"].item(), -1.2 * 2.0, rel_tol=1e-6)
    assert terms["clip_fraction"].item() == 1.0


def test_ratio_is_not_clipped_when_it_hurts_a_negative_advantage():
    batch = make_batch([0.0], [-1.0], [[0.0]], [[0.0]])
    terms = ppo_loss(torch.ones(1), torch.zeros(1), torch.zeros(1, 1), batch, epsilon=0.2, beta=0.0)
    assert math.isclose(terms["policy_loss"].item(), math.e, rel_tol=1e-6)  # -(e * -1)


def test_value_loss_is_the_pessimistic_clipped_error_averaged_over_streams():
    batch = make_batch([0.0], [0.0], [[0.0, 0.0]], [[1.0, 0.0]])
    values = torch.tensor([[2.0, 0.1]])
    terms = ppo_loss(torch.zeros(1), torch.zeros(1), values, batch, epsilon=0.2, beta=0.0)
    # stream 0: unclipped (1-2)^2 = 1, clipped value 0.2 -> (1-0.2)^2 = 0.64 -> max 1
    # stream 1: (0-0.1)^2 = 0.01 both ways -> mean over streams = 0.505
    assert math.isclose(terms["value_loss"].item(), 0.505, rel_tol=1e-6)
    assert math.isclose(terms["loss_value"].item(), 0.2525, rel_tol=1e-6)


def test_total_loss_sums_only_loss_terms():
    terms = {"loss_a": torch.tensor(1.0), "loss_b": torch.tensor(2.0), "entropy": torch.tensor(100.0)}
    assert total_loss(terms).item() == 3.0


def test_gradient_flows_to_policy_and_values():
    batch = make_batch([0.0, 0.0], [1.0, -1.0], [[0.0], [0.0]], [[1.0], [1.0]])
    lp = torch.zeros(2, requires_grad=True)
    v = torch.zeros(2, 1, requires_grad=True)
    total_loss(ppo_loss(lp, torch.zeros(2), v, batch, 0.2, 0.0)).backward()
    assert lp.grad is not None and v.grad is not None
    assert lp.grad[0] < 0 < lp.grad[1]  # raise the log-prob of the advantaged action
