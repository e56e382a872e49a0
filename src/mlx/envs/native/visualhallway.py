"""VisualHallway: Hallway (mlx.envs.native.hallway) seen through the agent's first-person camera only.

Facts (/work/shared/reference/more-envs.md 8.2): the scene trains behaviour **VisualHallway** on the agent's
camera with ``useVectorObs`` off, so there is **no vector observation** (the vector port's stacked rays and
step fraction are gone); actions (one branch of 5), rewards (-1/MaxStep per step, +1 / -0.1 set at a goal),
episode start and MaxStep are Hallway's, and this env simulates them with the same code. The scene was
removed upstream before release 15 (PR #4997), so it is not in releases 20-22.

NOT FOUND, decided here: the camera's resolution (84 x 84 RGB, ML-Agents' CameraSensor default) and its
placement (the agent's top, looking along its forward, level): see mlx.envs.native.arena_camera. The O
and X symbols and goals are told apart by colour (their tags' colours: cyan O, magenta X; the goals a
darker shade of their symbol), not by drawn shapes. Upstream's last config trains it with an LSTM
(conf/tuned/visualhallway_ppo.yaml): the symbol is out of sight once the agent turns to the goals.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlx.envs.native.arena_camera import SIZE, ArenaCamera, FirstPersonCamera
from mlx.envs.native.hallway import HallwayEnv

BEHAVIOR = "VisualHallway"


class VisualHallwayEnv(FirstPersonCamera, HallwayEnv):
    """Hallway with the agent's camera as its only observation, behaviour ``VisualHallway``."""

    behaviors = (BEHAVIOR,)

    def __init__(
        self, num_areas: int = 16, seed: int = 0, parameters: Mapping[str, float] | None = None, size: int = SIZE
    ) -> None:
        super().__init__(num_areas, seed, parameters)
        self._use_camera(ArenaCamera(self.arena, size=size))
