"""MA-POCA (ML-Agents' ``poca`` trainer): a centralised attention critic for cooperative groups.

Imports nothing on purpose, so that naming the package stays cheap; import ``mlx.trainers.poca.critic``.
"""
