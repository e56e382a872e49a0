"""SAC (`trainer=sac`): the off-policy trainer and its replay buffer."""
