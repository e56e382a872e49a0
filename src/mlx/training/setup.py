"""What every mode does before it runs: the seed, thread limits, the env and its parameters."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from mlx.config import ConfigError, RunConfig
from mlx.envs import make_env
from mlx.envs.api import BaseEnv
from mlx.memory import check_trainer, spec_sizes
from mlx.params.curriculum import EnvironmentParameterManager
from mlx.trainers.optimize import skip_dynamo_import


def seeded(cfg: RunConfig) -> RunConfig:
    """seed=-1 (ML-Agents' default) means a random seed; record the one drawn so the run can be repeated."""
    if cfg.seed < 0:
        cfg.seed = int.from_bytes(os.urandom(4), "little") % 2**31
        cfg.resolved["seed"] = cfg.seed
    return cfg


def configure_process(cfg: RunConfig) -> None:
    """Thread limits and the global seeds, before anything draws a random number; torch._dynamo left
    unimported (mlx.trainers.optimize.skip_dynamo_import)."""
    skip_dynamo_import()
    torch.set_num_threads(cfg.torch_settings.num_threads)
    # numpy's BLAS too (acting, envs): by default OpenBLAS starts a thread per core, and its spinning
    # threads made two WallJump runs side by side on 2 cores 2.6x slower each.
    threadpool_limits(cfg.torch_settings.num_threads, user_api="blas")
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)


def open_env(cfg: RunConfig, logs: Path) -> tuple[BaseEnv, EnvironmentParameterManager | None]:
    """The run's env, with every behaviour the config names, and its environment_parameters (at cfg.lesson)
    sent to it; env processes write their logs to ``logs``. A refused config closes the env again."""
    if cfg.env.name == "unity" or cfg.env.subprocess:  # envs in their own processes, over gRPC
        from mlx.envs.unity.env import make_unity_env  # lazy for start-up speed: grpc and protobuf

        env: BaseEnv = make_unity_env(cfg.env, cfg.engine_settings, cfg.seed, logs)
    else:  # num_envs copies of a native env are more areas of one vectorised env (measured fastest)
        areas = cfg.env.num_areas * cfg.env.num_envs
        env = make_env(cfg.env.name, areas, cfg.seed, cfg.env.parameters, cfg.env.id, cfg.env.kwargs)
    try:
        specs = env.behavior_specs
        for name in cfg.behaviors:
            if name not in specs:
                raise ConfigError(
                    f"behaviors.{name}: env={cfg.env.name} has no behaviour '{name}'; its behaviours: "
                    f"{', '.join(sorted(specs))}"
                )
        if cfg.mode == "train":  # every agent's trajectory and the buffers, with the observations' real size
            agents = 0 if cfg.env.name == "unity" else cfg.env.num_areas * cfg.env.num_envs
            for name, spec in specs.items():
                key = f"behaviors.{name}" if name in cfg.behaviors else "trainer"
                check_trainer(cfg.trainer_for(name), key, *spec_sizes(spec), agents=agents, behavior=name)
        parameters = None
        if cfg.environment_parameters:
            parameters = EnvironmentParameterManager(cfg.environment_parameters, cfg.seed, cfg.lesson)
            parameters.check_behaviors(specs, cfg.env.name)
            parameters.apply(env)
    except BaseException:
        env.close()
        raise
    return env, parameters
