"""PPO (`trainer=ppo`): the on-policy trainer and its numpy fast path."""
