"""GAE against returns computed by hand: termination stops bootstrapping, interruption and cuts bootstrap."""

import numpy as np
import pytest

from mlx.trainers.advantages import discounted_reverse_cumsum, gae


def reference_gae(rewards, values, bootstrap, gamma, lambd):
    """Textbook single-trajectory GAE, written independently of the batched implementation."""
    n = len(rewards)
    adv = np.zeros(n)
    last = 0.0
    for t in reversed(range(n)):
        nxt = bootstrap if t == n - 1 else values[t + 1]
        delta = rewards[t] + gamma * nxt - values[t]
        last = delta + gamma * lambd * last
        adv[t] = last
    return adv, adv + np.asarray(values)


def test_termination_does_not_bootstrap_and_lambda_one_gives_discounted_return():
    rewards = np.array([[1.0, 0.0, 2.0]])
    values = np.array([[0.5, 0.5, 0.5]])
    adv, ret = gae(rewards, values, np.array([0.0]), np.array([3]), gamma=0.9, lambd=1.0)
    # lambda=1 with no bootstrap: returns are the plain discounted returns.
    expected = [1.0 + 0.9 * 0.0 + 0.81 * 2.0, 0.0 + 0.9 * 2.0, 2.0]
    np.testing.assert_allclose(ret[0], expected, rtol=1e-6)
    np.testing.assert_allclose(adv[0], np.array(expected) - 0.5, rtol=1e-6)


def test_interruption_bootstraps_from_the_last_state_value():
    rewards = np.array([[0.1, 0.1]])
    values = np.array([[1.0, 1.0]])
    _, ret = gae(rewards, values, np.array([10.0]), np.array([2]), gamma=0.5, lambd=1.0)
    # r0 + g r1 + g^2 V(s2)
    np.testing.assert_allclose(ret[0], [0.1 + 0.5 * 0.1 + 0.25 * 10.0, 0.1 + 0.5 * 10.0], rtol=1e-6)


def test_one_step_td_when_lambda_zero():
    rewards = np.array([[1.0, 2.0]])
    values = np.array([[3.0, 4.0]])
    adv, _ = gae(rewards, values, np.array([5.0]), np.array([2]), gamma=0.9, lambd=0.0)
    np.testing.assert_allclose(adv[0], [1.0 + 0.9 * 4.0 - 3.0, 2.0 + 0.9 * 5.0 - 4.0], rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_padded_batch_matches_reference_per_trajectory(seed):
    rng = np.random.default_rng(seed)
    lengths = np.array([5, 1, 3, 7])
    horizon = lengths.max()
    rewards = rng.normal(size=(4, horizon))
    values = rng.normal(size=(4, horizon))
    bootstrap = np.array([0.0, 1.5, -2.0, 0.3])
    adv, ret = gae(rewards, values, bootstrap, lengths, gamma=0.99, lambd=0.95)
    for e, n in enumerate(lengths):
        ref_adv, ref_ret = reference_gae(rewards[e, :n], values[e, :n], bootstrap[e], 0.99, 0.95)
        np.testing.assert_allclose(adv[e, :n], ref_adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ret[e, :n], ref_ret, rtol=1e-5, atol=1e-5)
        assert np.all(adv[e, n:] == 0) and np.all(ret[e, n:] == 0)


@pytest.mark.parametrize("c", [0.0, 1e-3, 0.3, 0.9405, 1.0])
def test_discounted_reverse_cumsum_is_the_recursion(c):
    """Blocks (small c), one block (c near 1) and the edge cases give y_t = x_t + c * y_(t+1)."""
    x = np.random.default_rng(0).normal(size=(3, 1500))
    expected = np.zeros_like(x)
    running = np.zeros(3)
    for t in range(1499, -1, -1):
        running = x[:, t] + c * running
        expected[:, t] = running
    np.testing.assert_allclose(discounted_reverse_cumsum(x, c), expected, rtol=1e-9, atol=1e-9)
