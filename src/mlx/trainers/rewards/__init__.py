"""Reward signals: config `trainer.reward_signals.<name>` -> module `mlx.trainers.rewards.<name>`, registered in
`mlx.trainers.rewards.registry`; what every signal offers is in `mlx.trainers.rewards.base`."""
