"""The schemas in Hydra's ConfigStore, so the YAML files under conf/ are typed by them. Sweep files are
registered by the app (mlx.sweep.files.register_sweeps), which reads the sweeps/ folder.

A native env in the env registry with no conf/env/<name>.yaml still gets its `env=<name>` option here (the
schema's defaults), so a new env is its module plus its registry line; a YAML file adds a description and
non-default settings (num_areas, parameters)."""

from __future__ import annotations

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
