"""One training run: the collect/update loop, its callbacks, checkpoints and status files."""
