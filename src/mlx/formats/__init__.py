"""File formats mlx reads and writes: ML-Agents .demo files and ONNX policies."""
