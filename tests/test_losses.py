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


def test_ratio_is_taken_and_clipped_per_action_component():
    # Two components each 10% likelier: per component 1.1 is inside the clip range and keeps its gradient,
    # though the joint ratio 1.21 would be clipped at 1.2 (upstream's per-component form, not the joint one).
    batch = make_batch([[0.0, 0.0]], [1.0], [[0.0]], [[0.0]])
    lp = torch.full((1, 2), math.log(1.1), requires_grad=True)
    terms = ppo_loss(lp, torch.zeros(1), torch.zeros(1, 1), batch, epsilon=0.2, beta=0.0)
    assert math.isclose(terms["policy_loss"].item(), -1.1, rel_tol=1e-6)  # mean over the components
    assert terms["clip_fraction"].item() == 0.0
    terms["loss_policy"].backward()
    assert lp.grad is not None and (lp.grad < 0).all()
    joint = make_batch([0.0], [1.0], [[0.0]], [[0.0]])
    assert math.isclose(
        ppo_loss(lp.sum(1), torch.zeros(1), torch.zeros(1, 1), joint, 0.2, 0.0)["policy_loss"].item(),
        -1.2,
        rel_tol=1e-6,
    )


def test_each_component_is_clipped_on_its_own():
    # Advantage 2: one component at ratio e (clipped at 1.2), the other unchanged; mean of 1.2 * 2 and 1 * 2.
    batch = make_batch([[0.0, 0.0]], [2.0], [[0.0]], [[0.0]])
    terms = ppo_loss(torch.tensor([[1.0, 0.0]]), torch.zeros(1), torch.zeros(1, 1), batch, epsilon=0.2, beta=0.0)
    assert math.isclose(terms["policy_loss"].item(), -(1.2 * 2.0 + 2.0) / 2, rel_tol=1e-6)
    assert terms["clip_fraction"].item() == 0.5
