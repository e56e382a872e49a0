"""3DBallHard: 3DBall without the ball's velocity, so the agent must infer it from a history.

The ML-Agents example uses the 3DBall scene and physics unchanged (this module reuses
``mlx.envs.native.ball3d``'s simulation, so every approximation documented there applies) but observes only
``(q.z, q.x, dx, dy, dz)`` and stacks the last 9 decisions (ML-Agents' ``numStackedObservations: 9``):
45 floats, the oldest decision first and the newest last, as ML-Agents' StackingSensor writes them.
At an episode start the stack is cleared (zeros) and holds only the first observation, as the
StackingSensor is reset when an agent's episode begins. A terminal observation is the stack with the
final decision's frame pushed on.

Environment parameters: ``mass`` and ``scale`` take effect only when the environment starts (at
``reset()``), as in Ball3DHardAgent, which applies them at initialisation; ``gravity`` acts at once.
Behaviour name ``3DBallHard``; rewards, MaxStep (an interruption) and actions are 3DBall's.

The stack is one [n, 45] float32 array per env, shifted by one frame per decision with a single
in-place copy, for every area at once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps
from mlx.envs.native.ball3d_view import Ball3DView
from mlx.envs.native.base import FrameStack

BEHAVIOR_NAME = "3DBallHard"
FRAME = 5  # q.z, q.x, dx, dy, dz: 3DBall's observation without the velocity
STACK = 9
START_ONLY = ("mass", "scale")


class Ball3DHardEnv(Ball3DView):
    """``num_areas`` 3DBallHard areas, one agent each (agent id = area index)."""

    behaviors = (BEHAVIOR_NAME,)

    def __init__(self, num_areas: int = 12, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=(ObservationSpec(shape=(FRAME * STACK,), name="StackingSensor_size9_VectorSensor"),),
            action_spec=ActionSpec(continuous_size=2),
        )
        super().__init__(num_areas, seed, parameters, spec)
        self._pending: dict[str, float] = {}
        self._stack = FrameStack(self.n, FRAME, STACK)

    def reset(self) -> None:
        for key, value in self._pending.items():
            self._inner.set_environment_parameter(key, value)
        self._pending.clear()
        super().reset()

    def set_environment_parameter(self, key: str, value: float) -> None:
        """gravity at once; mass and scale from the next reset() (Ball3DHardAgent applies them at start)."""
        self._params.check(key, value)
        if key in START_ONLY:
            self._pending[key] = float(value)
        else:
            self._inner.set_environment_parameter(key, value)

    def _first(self, decision: DecisionSteps) -> list[np.ndarray]:
        return [self._stack.restart(slice(None), decision.obs[0][:, :FRAME]).copy()]

    def _last(self, terminal: TerminalSteps) -> list[np.ndarray]:
        """The stack with the final decision's frame pushed on (the stack itself moves on in _next)."""
        final = np.empty((len(terminal), FRAME * STACK), np.float32)
        final[:, :-FRAME] = self._stack.data[terminal.agent_id, FRAME:]
        final[:, -FRAME:] = terminal.obs[0][:, :FRAME]
        return [final]

    def _next(self, decision: DecisionSteps, terminal: TerminalSteps) -> list[np.ndarray]:
        frames = decision.obs[0][:, :FRAME]
        self._stack.push(frames)
        if len(terminal):  # a new episode starts with a cleared stack
            self._stack.restart(terminal.agent_id, frames[terminal.agent_id])
        return [self._stack.data.copy()]
