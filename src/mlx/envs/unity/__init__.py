"""ML-Agents' gRPC protocol: Unity builds, mlx env processes (`mlx-env`), side channels."""
