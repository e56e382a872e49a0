"""Self-play (ML-Agents' ghost trainer): mlx.trainers.ghost.trainer wraps any trainer; the controller
chooses the learning team; elo rates the learning policy."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mlx.config import TrainerSettings
from mlx.envs.api import BaseEnv
from mlx.errors import ConfigError
from mlx.trainers.base import RLTrainer
from mlx.trainers.ghost.controller import GhostController
from mlx.trainers.ghost.trainer import GhostTrainer


def with_self_play(
    trainers: Mapping[str, RLTrainer],
    settings_for: Callable[[str], TrainerSettings],
    env: BaseEnv,
    env_name: str,
    seed: int,
) -> dict[str, RLTrainer]:
    """The run's trainers, those of behaviours with a self_play block wrapped in ghost trainers that share
    one controller. An env whose self-play behaviours have one team between them is refused: there is
    nobody to play against."""
    ghosts = [name for name in trainers if settings_for(name).self_play is not None]
    if not ghosts:
        return dict(trainers)
    teams = {name: env.teams(name) for name in ghosts}
    if len({t for ts in teams.values() for t in ts}) < 2:
        key = "trainer.self_play" if len(trainers) == 1 else f"behaviors.{ghosts[0]}.self_play"
        seen = ", ".join(f"{name}: team {', '.join(map(str, ts))}" for name, ts in teams.items())
        raise ConfigError(
            f"{key}: env {env_name} has one team ({seen}); self-play needs two or more (env=tennis, soccertwos, "
            "strikersvsgoalie, or a Unity build with <Name>?team=<id> behaviours); remove self_play"
        )
    controller = GhostController()
    out: dict[str, RLTrainer] = {}
    for name, trainer in trainers.items():
        sp = settings_for(name).self_play
        out[name] = trainer if sp is None else GhostTrainer(trainer, sp, teams[name], controller, seed)  # type: ignore[assignment]
    return out


__all__ = ["GhostController", "GhostTrainer", "with_self_play"]
