"""The schemas that type the YAML files under conf/, served to Hydra by a config source of their own
(src/hydra_plugins/mlx_schemas: on every search path, loads them by name, lists none): they are no options
a user picks, so `--help` and tab completion never offer `trainer=ppo_schema`. Sweep files
are registered in Hydra's ConfigStore by the app (mlx.sweep.files.register_sweeps), which reads sweeps/.

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


def schemas() -> dict[str, type]:
    """The schemas by their path in Hydra's config tree, as conf/'s defaults lists name them."""
    paths: dict[str, type] = {"mlx_schema": MlxConfig, "env/env_schema": EnvSettings}
    paths.update({f"trainer/{name}_schema": settings for name, settings in TRAINER_SETTINGS.items()})
    paths["tracking/tracking_schema"] = TrackingSettings
    return paths


def register_configs() -> None:
    """Give each native env without a YAML file its ``env=<name>`` option in Hydra's ConfigStore (the
    schemas need no registering: Hydra finds the mlx_schemas plugin)."""
    # Hydra's modules are loaded only when composing, not by every importer of the schema.
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name in registry.NATIVE_ENVS:
        if not (CONF_DIR / "env" / f"{name}.yaml").exists():
            cs.store(group="env", name=name, node=EnvSettings(name=name))
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
