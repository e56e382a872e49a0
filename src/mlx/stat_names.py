"""The ML-Agents statistic names several parts of mlx read (trainers report them; summaries, curves,
comparisons, curricula and sweeps score runs by them): one definition each."""

REWARD = "Environment/Cumulative Reward"  # an agent's own (individual) rewards over its episode
# An agent's group rewards over its episode, counted when its whole group ended with it: a group behaviour's
# score (upstream's benchmarks for the cooperative scenes).
GROUP_REWARD = "Environment/Group Cumulative Reward"
# The learning policy's self-play rating (mlx.trainers.ghost), appended to the console line as upstream does.
ELO = "Self-play/ELO"
# 1.0 while the behaviour still learns (its step is within max_steps), 0.0 once it only acts while other
# behaviours train: recorded once per summary, as upstream's trainers do, and read by the console line
# ("Training." or "Not Training.").
IS_TRAINING = "Is Training"
