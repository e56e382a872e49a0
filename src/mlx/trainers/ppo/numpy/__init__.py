"""PPO's CPU fast path: acting and updating in numpy, tested against autograd."""
