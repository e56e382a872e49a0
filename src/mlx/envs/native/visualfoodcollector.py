"""VisualFoodCollector: FoodCollector (mlx.envs.native.foodcollector) seen through a first-person camera per agent.

Facts (/work/shared/reference/more-envs.md 2.4, 2.8): the scene ``VisualFoodCollector`` trains behaviour
**VisualFoodCollector** [P] on a first-person camera per agent **plus one vector float, the frozen flag**
(useVectorFrozenFlag; the docs say training fails without it) [D; script S]. Everything else (area, food,
actions, laser, rewards, MaxStep) is FoodCollector's, and this env simulates it with the same code.

NOT FOUND, decided here: the camera's resolution and colour (84 x 84 RGB: ML-Agents' CameraSensor
default; float32 in [0, 1], [height, width, channels]), its placement (on top of the agent, 1 m above
the floor, looking along its forward, level), its field of view (Unity's default 60 degrees vertical; the
image is square, so 60 horizontal too), agents per area (5, as FoodCollector) and areas per scene (4).

How the picture is made (a ray cast per pixel column, exact for this flat world): every object of the
arena is a vertical prism standing on the floor; agents and food are 1 m tall (food's size is NOT FOUND:
FoodCollector's 1 m box), as high as the camera, so an object covers its column from the horizon down
to where its base projects, and the nearest object of a column hides every other object in it. Walls
(1.5 m) rise above the horizon, so they show above the nearest object, and below the horizon where no
object is nearer. A column is then: sky, wall, horizon, nearest object (its tag's colour: green food,
red food, blue agent, pale blue frozen agent, as the top-down pictures), wall, floor. The camera's own
agent is not seen (the cast skips shapes the camera is inside). Flat colours, no lighting or shadows;
8-bit values as a render texture holds them. Cost: FoodCollector's laser cast (mlx.envs.native.rays) for
84 columns of every agent, then array comparisons over (agents x pixels); no loop over agents or areas.
Speed (benchmarks/env_throughput.py, random actions, 2-core VM at load 4.5, 2026-12-06): 849 agent-steps/s
at 1 area, 2,058 at 64 (155 ms a step, most of it the column casts against all 55 shapes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.envs.native.foodcollector import AGENTS, FoodCollectorEnv
from mlx.envs.native.rays import cast_bounds, cast_rounded_boxes
from mlx.envs.native.render import FLOOR, palette

F32 = np.float32
BEHAVIOR = "VisualFoodCollector"
SIZE = 84
EYE = 1.0  # camera height above the floor (m)
OBJECT_TOP = 1.0  # agents' and food's height
WALL_TOP = 1.5
FOV_DEG = 60.0
SKY = np.array([135, 175, 215], np.uint8)
_TAN = math.tan(math.radians(FOV_DEG) / 2)
# Pixel centres in tangent space: u to the right (columns), v up (rows).
_U = (((np.arange(SIZE) + 0.5) - SIZE / 2) / (SIZE / 2) * _TAN).astype(F32)
_V = ((SIZE / 2 - (np.arange(SIZE) + 0.5)) / (SIZE / 2) * _TAN).astype(F32)
_COS = (1.0 / np.sqrt(1.0 + _U.astype(np.float64) ** 2)).astype(F32)  # column ray vs forward
_ANGLE = np.arctan(_U).astype(F32)  # column ray's yaw from forward (+ to the right)


class VisualFoodCollectorEnv(FoodCollectorEnv):
    """FoodCollector with a first-person camera and the frozen flag per agent, behaviour ``VisualFoodCollector``."""

    behaviors = (BEHAVIOR,)

    def __init__(self, num_areas: int = 4, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        super().__init__(num_areas, seed, parameters)
        self.spec = BehaviorSpec(
            (ObservationSpec((SIZE, SIZE, 3), "CameraSensor"), ObservationSpec((1,), "VectorSensor_size1")),
            ActionSpec(continuous_size=3, discrete_branches=(2,)),
        )
        empty = self._empty[0]
        self._empty = [
            type(empty)(
                [np.zeros((0, *o.shape), F32) for o in self.spec.observation_specs],
                empty.reward,
                empty.agent_id,
                empty.interrupted,
            )
        ]
        self._colours = palette(self.arena.tags).astype(F32) / F32(255.0)  # [tags + 1, 3]

    def camera(self, areas: np.ndarray | None = None) -> np.ndarray:
        """float32 [m * A, SIZE, SIZE, 3]: every agent's picture (agent-id order) for some areas (all by default)."""
        ar = self.arena
        sel = slice(None) if areas is None else areas
        A = AGENTS
        heading = ar.heading[:, sel]  # [A, m]
        m = heading.shape[1]
        M = A * m
        yaw = heading.reshape(1, M) + _ANGLE[:, None]  # [R, M], agent-major (a * m + area)
        dx, dz = np.sin(yaw), np.cos(yaw)
        ox, oz = ar.pos[:, :A, sel][0].reshape(M), ar.pos[:, :A, sel][1].reshape(M)
        center, half = ar.center[:, :, sel], ar.half[:, :, sel]  # [2, S, m]
        T = ar.S

        def per_agent(x: np.ndarray) -> np.ndarray:  # [T, m] -> [T, A * m]
            return np.broadcast_to(x[:, None, :], (T, A, m)).reshape(T, M)

        rx = (center[0][:, None, :] - ox.reshape(A, m)[None]).reshape(T, M)
        rz = (center[1][:, None, :] - oz.reshape(A, m)[None]).reshape(T, M)
        t = cast_rounded_boxes(dx, dz, rx, rz, per_agent(half[0]), per_agent(half[1]),
                               per_agent(ar.radius[:, sel]), per_agent(ar.active[:, sel]))  # [R, T, M]  # fmt: skip
        nearest = t.argmin(1)  # [R, M]
        t_obj = np.take_along_axis(t, nearest[:, None], 1)[:, 0]
        t_wall = cast_bounds(dx, dz, ox, oz, np.tile(ar.bounds[:, sel], (1, A)), F32(0.0))
        t_obj = np.minimum(t_obj, t_wall)  # nothing is beyond the walls
        depth_obj = (t_obj * _COS[:, None]).T[:, None, :]  # [M, 1, R] along the camera's forward
        depth_wall = (t_wall * _COS[:, None]).T[:, None, :]
        v = _V[None, :, None]  # [1, H, 1]
        with np.errstate(divide="ignore"):
            obj = (v <= (OBJECT_TOP - EYE) / depth_obj) & (v >= -EYE / depth_obj) & (t_obj < t_wall).T[:, None, :]
            wall = (v <= (WALL_TOP - EYE) / depth_wall) & (v >= -EYE / depth_wall)
        tag = ar.tag[:, sel]  # [S, m]
        obj_tag = tag[nearest, np.tile(np.arange(m), A)[None, :]]  # [R, M]
        out = np.empty((M, SIZE, SIZE, 3), F32)
        out[:] = np.where(v[..., None] > 0, SKY / F32(255.0), np.asarray(FLOOR, F32) / F32(255.0))
        np.copyto(out, self._colours[ar.bounds_tag + 1], where=wall[..., None])
        colour = self._colours[obj_tag.T + 1]  # [M, R, 3]
        np.copyto(out, np.broadcast_to(colour[:, None], out.shape), where=obj[..., None])
        # Agent-major rows -> agent-id order (area * A + k).
        return out.reshape(A, m, SIZE, SIZE, 3).transpose(1, 0, 2, 3, 4).reshape(M, SIZE, SIZE, 3)

    def _observe_areas(self, areas: np.ndarray | None = None) -> list[np.ndarray]:
        sel = slice(None) if areas is None else areas
        frozen = self.frozen[:, sel].T.reshape(-1, 1).astype(F32)
        return [self.camera(areas), frozen]
