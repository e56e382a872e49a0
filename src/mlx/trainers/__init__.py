"""Trainers (RL algorithms): config group `trainer=<name>` -> package `mlx.trainers.<name>`, registered in
`mlx.trainers.registry`. This package imports nothing heavy: import the module you need."""

from mlx.errors import TrainingError  # raised by every trainer; mlx.errors is cheap to import

__all__ = ["TrainingError"]
