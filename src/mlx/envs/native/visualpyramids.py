"""VisualPyramids: Pyramids (mlx.envs.native.pyramids) seen through the agent's first-person camera only.

Facts (/work/shared/reference/more-envs.md 8.2): behaviour **VisualPyramids**; with ``useVectorObs`` off the
agent has **no vector observation** (the vector port's three ray sensors and its switch state and velocity
are gone), only its camera. Actions (one branch of 5), rewards (-1/MaxStep per step, +2 set at the gold
brick), the nine-room layout, switch and pyramids and MaxStep are Pyramids', and this env simulates them
with the same code. Upstream's last config trains it with curiosity (conf/tuned/visualpyramids_ppo.yaml,
conf/tuned/curiosity/visualpyramids.yaml). The scene was removed upstream before release 15 (PR #4997).

NOT FOUND, decided here: the camera's resolution (84 x 84 RGB, ML-Agents' CameraSensor default) and its
placement (the agent's top, looking along its forward, level): see mlx.envs.native.arena_camera. The
switch shows red when off and yellow when on; the brick pyramid orange with its green gold brick on top;
stone pyramids brown. The port's knocked-over pyramid is a walk-through heap (mlx.envs.native.pyramids):
the camera draws it 0.5 m high (the engine's trigger is 1 m), so the 1 m gold brick lying in it shows
above the fallen bricks, as upstream's scattered bricks leave it visible.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlx.envs.native.arena_camera import SIZE, ArenaCamera, FirstPersonCamera
from mlx.envs.native.pyramids import PyramidsEnv

BEHAVIOR = "VisualPyramids"
RUBBLE_HEIGHT = (0.0, 0.5)  # drawn height of the fallen bricks


class VisualPyramidsEnv(FirstPersonCamera, PyramidsEnv):
    """Pyramids with the agent's camera as its only observation, behaviour ``VisualPyramids``."""

    behaviors = (BEHAVIOR,)

    def __init__(
        self, num_areas: int = 16, seed: int = 0, parameters: Mapping[str, float] | None = None, size: int = SIZE
    ) -> None:
        super().__init__(num_areas, seed, parameters)
        self._use_camera(ArenaCamera(self.arena, size=size, heights={"rubble": RUBBLE_HEIGHT}))
