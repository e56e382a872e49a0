"""mlx's schemas as a Hydra config source (Hydra discovers plugins in the `hydra_plugins` namespace package).

conf/'s defaults lists name the schemas (``- ppo_schema`` in conf/trainer/ppo.yaml); this source loads them
by name and lists none, so `--help`, tab completion and "available options" never offer
``trainer=ppo_schema``. A search-path plugin adds the source to every composition, whatever
``hydra.searchpath`` a command line or test gives. The schemas themselves: mlx.config.store.schemas().
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin

SCHEME = "mlx-schema"


def _schema(config_path: str) -> type | None:
    from mlx.config.store import schemas  # the schema modules load when Hydra first asks for one

    name = config_path.removesuffix(".yaml")
    return schemas().get(name)


class MlxSchemaSource(ConfigSource):
    """Loads mlx's schemas by name and lists nothing."""

    @staticmethod
    def scheme() -> str:
        return SCHEME

    def available(self) -> bool:
        return True

    def is_group(self, config_path: str) -> bool:
        return False

    def is_config(self, config_path: str) -> bool:
        return _schema(self._normalize_file_name(config_path)) is not None

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        return []  # hidden from --help, tab completion and the options an error lists

    def load_config(self, config_path: str) -> ConfigResult:
        from omegaconf import OmegaConf

        schema = _schema(self._normalize_file_name(config_path))
        if schema is None:
            raise ConfigLoadError(f"mlx schema not found: {config_path}")
        return ConfigResult(
            config=OmegaConf.structured(schema),
            path=f"{SCHEME}://{self.path}",
            provider=self.provider,
            header={"package": None},
        )


class MlxSchemaSearchPath(SearchPathPlugin):
    """Puts the schema source on every composition's search path (after conf/ and Hydra's own)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="mlx-schemas", path=f"{SCHEME}://mlx.config")
