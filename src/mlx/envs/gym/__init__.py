"""Gymnasium both ways: a Gymnasium env as an mlx env (adapter), an mlx env for Gymnasium (export)."""
