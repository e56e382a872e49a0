"""Packaging that pyproject.toml cannot say: the wheel carries the checkout's conf/, sweeps/ and demos/ inside
the package (mlx/conf, mlx/sweeps, mlx/demos), where mlx.config.paths finds them when mlx is installed, so
a plain `pip install .` runs without the checkout. The folders stay at the repository root for editing."""

from setuptools import find_namespace_packages, setup

DATA = {"mlx.conf": "conf", "mlx.sweeps": "sweeps", "mlx.demos": "demos"}

setup(
    packages=[*find_namespace_packages("src"), *DATA],  # namespace: hydra_plugins (Hydra finds plugins there)
    package_dir={"": "src", **DATA},
    package_data={"mlx": ["py.typed", "config_keys.json"], **{name: ["**/*.yaml", "**/*.md", "**/*.demo"] for name in DATA}},
)
