"""What a soccer scene is made of, per behaviour (mlx.envs.native.soccer): each agent's ray sensors and its
role on the field (team, start positions, speeds, kick, existential reward)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SoccerSensor:
    """A RayPerceptionSensorComponent3D on a soccer agent; ``backward`` for the child turned 180 degrees."""

    name: str
    rays_per_direction: int
    max_ray_degrees: float
    tags: tuple[str, ...]  # semantic tags, in the sensor's order (module doc)
    backward: bool = False
    stacks: int = 3
    length: float = 20.0

    @property
    def num_rays(self) -> int:
        return 2 * self.rays_per_direction + 1

    @property
    def frame_size(self) -> int:
        return self.num_rays * (len(self.tags) + 2)

    @property
    def size(self) -> int:
        return self.frame_size * self.stacks

    @property
    def observation_name(self) -> str:
        return f"StackingSensor_size{self.stacks}_{self.name}" if self.stacks > 1 else self.name


@dataclass(frozen=True)
class Role:
    """The agents of one behaviour on a field: their team, where their prefabs stand, how they move and
    kick, what they see and their existential reward per physics step."""

    behavior: str
    team: int
    starts: tuple[tuple[float, float], ...]  # prefab positions (x, z), one per agent
    forward_speed: float
    lateral_speed: float
    sensors: tuple[SoccerSensor, ...]
    always_kick: bool = False
    existential: float = 0.0
