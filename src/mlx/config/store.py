"""The schemas in Hydra's ConfigStore, so the YAML files under conf/ are typed by them. Sweep files are
registered by the app (mlx.sweep.files.register_sweeps), which reads the sweeps/ folder.

A native env in the env registry with no conf/env/<name>.yaml still gets its `env=<name>` option here (the
schema's defaults), so a new env is its module plus its registry line; a YAML file adds a description and
non-default settings (num_areas, parameters)."""

from __future__ import annotations

import math
from typing import Any

from mlx.config.env import EnvSettings
from mlx.config.paths import CONF_DIR
from mlx.config.resolvers import register_resolvers
from mlx.config.run import MlxConfig, TrackingSettings
from mlx.config.trainer import TRAINER_SETTINGS
from mlx.envs import registry


def register_configs() -> None:
    """Put the schemas into Hydra's ConfigStore so the YAML files under conf/ are typed by them."""
    # Hydra's ConfigStore module is loaded only when composing, not by every importer of the schema.
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="mlx_schema", node=MlxConfig)
    for name, settings in TRAINER_SETTINGS.items():
        cs.store(group="trainer", name=f"{name}_schema", node=settings)
    cs.store(group="env", name="env_schema", node=EnvSettings)
    for name in registry.NATIVE_ENVS:
        if not (CONF_DIR / "env" / f"{name}.yaml").exists():
            cs.store(group="env", name=name, node=EnvSettings(name=name))
    cs.store(group="tracking", name="tracking_schema", node=TrackingSettings)
    register_resolvers()
    accept_exponent_whole_numbers()


def accept_exponent_whole_numbers() -> None:
    """ML-Agents' configs write whole numbers in exponent form (``max_steps: 5.0e5``, ``1e6``) and its
    loader takes them for int settings; OmegaConf reads them as floats, which an int field refuses. Config
    files load such a literal as an int when its value is whole (``64.0`` stays a float: refused for an int
    setting in one line). The command line's ``trainer.max_steps=5.0e5`` is handled in mlx.__main__."""
    from omegaconf import _utils  # OmegaConf.load looks the loader up here at each call

    if getattr(_utils.get_yaml_loader, "mlx", False):
        return
    original = _utils.get_yaml_loader

    def loader() -> Any:
        base = original()

        class Loader(base):  # type: ignore[misc, valid-type]
            def construct_yaml_float(self, node: Any) -> float | int:
                value = super().construct_yaml_float(node)
                whole = math.isfinite(value) and value.is_integer() and abs(value) <= 2**53
                return int(value) if whole and "e" in str(node.value).lower() else value

        Loader.add_constructor("tag:yaml.org,2002:float", Loader.construct_yaml_float)
        return Loader

    loader.mlx = True  # type: ignore[attr-defined]
    _utils.get_yaml_loader = loader
