"""mlx: declarative reinforcement-learning experiments with ML-Agents' trainers, without Unity."""

__version__ = "0.1.0"
