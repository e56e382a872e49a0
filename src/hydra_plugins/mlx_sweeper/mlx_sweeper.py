"""`hydra/sweeper=mlx`, mlx's default sweeper (conf/config.yaml).

Without `sweep=`: a grid, exactly Hydra's basic sweeper (every combination of `a=1,2 b=x,y`, batches of
`max_batch_size` handed to the configured launcher: basic, or joblib for parallel processes), plus one
MLflow parent run per sweep and the sweep's id on every job. With `sweep=<name>`: an Optuna search
(mlx.sweep.search) whose trials are launched through the same launcher.

This module is imported by Hydra's plugin discovery on every command, so it imports nothing heavy. Hydra
loads it without registering it in sys.modules, so no `from __future__ import annotations` here (the
dataclass below would fail to resolve its string annotations).
"""

from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class MlxSweeperConf:
    _target_: str = "hydra_plugins.mlx_sweeper.mlx_sweeper.MlxSweeper"
    max_batch_size: Optional[int] = None  # noqa: UP045 - grids: jobs handed to the launcher at once (None: all)


ConfigStore.instance().store(group="hydra/sweeper", name="mlx", node=MlxSweeperConf, provider="mlx")


class MlxSweeper(Sweeper):
    def __init__(self, max_batch_size: Optional[int] = None) -> None:  # noqa: UP045
        self.max_batch_size = max_batch_size
        self.hydra_context: Optional[HydraContext] = None  # noqa: UP045
        self.config: Optional[DictConfig] = None  # noqa: UP045
        self.launcher: Any = None
        self.task_function: Optional[TaskFunction] = None  # noqa: UP045

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.task_function = task_function

    def make_launcher(self, task_function: TaskFunction) -> Any:
        from hydra.core.plugins import Plugins

        assert self.hydra_context is not None and self.config is not None
        return Plugins.instance().instantiate_launcher(
            hydra_context=self.hydra_context, task_function=task_function, config=self.config
        )

    def sweep(self, arguments: list[str]) -> Any:  # noqa: D102
        assert self.config is not None and self.task_function is not None
        if self.config.get("sweep") is None:
            from mlx.sweep.grid import run_grid

            self.launcher = self.make_launcher(self.task_function)
            return run_grid(self, arguments)
        from mlx.sweep.search import run_search

        return run_search(self, arguments)
