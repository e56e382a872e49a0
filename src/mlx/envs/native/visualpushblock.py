"""VisualPushBlock: PushBlock (mlx.envs.native.pushblock) seen through the agent's first-person camera only.

Facts (/work/shared/reference/more-envs.md 8.2): behaviour **VisualPushBlock**; the visual scenes turn the
agent's ``useVectorObs`` off and give it a camera instead. The PushBlock agent script of that scene was not
read (NOT FOUND), so this port does as VisualHallway and VisualPyramids do: **the camera is the only
observation** (the vector port's two stacked ray sensors are gone). Actions (one branch of 7), rewards
(-1/MaxStep per step, +5 at the goal), episode start, environment parameters (block_scale, block_drag,
friction) and MaxStep are PushBlock's, and this env simulates them with the same code. The scene was
removed upstream before release 15 (PR #4997); older docs said it "does not train with the provided
default training parameters".

NOT FOUND, decided here: the camera's resolution (84 x 84 RGB, ML-Agents' CameraSensor default) and its
placement (the agent's top, 1 m above the floor, looking along its forward, level; the 0.75 m block's top
shows): see mlx.envs.native.arena_camera. The goal is the green band across the end of the floor, the
block orange, the walls grey.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlx.envs.native.arena_camera import SIZE, ArenaCamera, FirstPersonCamera
from mlx.envs.native.pushblock import PushBlockEnv

BEHAVIOR = "VisualPushBlock"


class VisualPushBlockEnv(FirstPersonCamera, PushBlockEnv):
    """PushBlock with the agent's camera as its only observation, behaviour ``VisualPushBlock``."""

    behaviors = (BEHAVIOR,)

    def __init__(
        self, num_areas: int = 32, seed: int = 0, parameters: Mapping[str, float] | None = None, size: int = SIZE
    ) -> None:
        super().__init__(num_areas, seed, parameters)
        self._use_camera(ArenaCamera(self.arena, size=size))
