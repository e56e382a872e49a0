"""Visual3DBall: 3DBall seen through a camera instead of the 8 floats (ML-Agents' Visual3DBall example).

The upstream scene (Visual3DBall.prefab, 8 areas) runs Ball3DAgent unchanged on 3DBall's platform and
ball, so this module reuses ``mlx.envs.native.ball3d``'s simulation by composition: dynamics, rewards, decision
period, MaxStep (an interruption) and the ``mass``/``scale``/``gravity`` parameters are 3DBall's, and
every approximation documented there applies. What changes is the observation: the agent has no
vector observation (``useVecObs`` off, VectorObservationSize 0) and one CameraSensor, 84 x 84 RGB
(not grayscale), with 4 stacked observations: float32 [84, 84, 12] in [0, 1], rows top to bottom, the
4 frames concatenated along the channels, oldest first (ML-Agents' StackingSensor). At an episode start
the older frames are zeros; a terminal observation is the stack with the final frame pushed on.
Behaviour name ``Visual3DBall``.

The camera and how its picture is drawn: mlx.envs.native.camera.

Implementation: the stack is a uint8 array [n, 84, 84, 4, 3] laid out as the observation; per decision
it moves one frame back as a single contiguous copy, the new frame is rendered straight into its newest
slot, and one contiguous conversion gives the float32 observation. The float32 observation (339 kB per
agent) dominates the cost at many areas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps
from mlx.envs.native.ball3d import BEHAVIOR_NAME as INNER_BEHAVIOR
from mlx.envs.native.ball3d_view import Ball3DView
from mlx.envs.native.camera import CHANNELS, SIZE, Renderer

BEHAVIOR_NAME = "Visual3DBall"
STACK = 4  # ObservationStacks
OBS_SHAPE = (SIZE, SIZE, CHANNELS * STACK)

_F32 = np.float32


class Visual3DBallEnv(Ball3DView):
    """``num_areas`` Visual3DBall areas, one agent each (agent id = area index)."""

    behaviors = (BEHAVIOR_NAME,)

    def __init__(self, num_areas: int = 8, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=(ObservationSpec(shape=OBS_SHAPE, name=f"StackingSensor_size{STACK}_CameraSensor"),),
            action_spec=ActionSpec(continuous_size=2),
        )
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        self._renderer = Renderer()
        self._stack = np.zeros((n, SIZE, SIZE, STACK, CHANNELS), np.uint8)  # the stack, oldest frame first
        self._radius = np.zeros(n)  # the ball radius of each area's episode (scale at its start)

    def _first(self, decision: DecisionSteps) -> list[np.ndarray]:
        self._radius[:] = 0.5 * self._params["scale"]
        self._stack.fill(0)
        self._render_current(decision)
        return [self._to_obs(self._stack)]

    def _last(self, terminal: TerminalSteps) -> list[np.ndarray]:
        idx = terminal.agent_id
        final = np.empty((len(idx), SIZE, SIZE, STACK, CHANNELS), np.uint8)
        final[:, :, :, :-1] = self._stack[idx, :, :, 1:]
        self._renderer.render(
            self._inner.platform_rotations(terminal=True),
            terminal.obs[0][:, 2:5],
            self._radius[idx],
            out=final[:, :, :, -1],
        )
        self._radius[idx] = 0.5 * self._params["scale"]  # their new episodes' balls
        return [self._to_obs(final)]

    def _next(self, decision: DecisionSteps, terminal: TerminalSteps) -> list[np.ndarray]:
        stack = self._stack
        # Drop the oldest frame: the whole stack moves one frame (3 bytes) back as one contiguous array;
        # each pixel's newest slot then holds the next pixel's oldest frame, overwritten just below.
        flat = stack.reshape(-1)
        flat[:-CHANNELS] = flat[CHANNELS:]
        if len(terminal):
            stack[terminal.agent_id, :, :, :-1] = 0  # a new episode starts with a cleared stack
        self._render_current(decision)
        return [self._to_obs(stack)]

    def debug_set_state(
        self,
        areas: slice | Sequence[int] | np.ndarray = slice(None),
        rotation: np.ndarray | None = None,
        ball_position: np.ndarray | None = None,
        ball_velocity: np.ndarray | None = None,
    ) -> None:
        """Ball3DEnv.debug_set_state, then the newest frame of the current observation is re-rendered."""
        self._require_reset("debug_set_state")
        self._inner.debug_set_state(areas, rotation, ball_position, ball_velocity)
        decision, _ = self._inner.get_steps(INNER_BEHAVIOR)
        self._render_current(decision)
        self._publish([self._to_obs(self._stack)], decision.reward)

    def _render_current(self, decision: DecisionSteps) -> None:
        """Render every area's current state into the newest frame of the stack."""
        rotation = self._inner.platform_rotations()
        self._renderer.render(rotation, decision.obs[0][:, 2:5], self._radius, out=self._stack[:, :, :, -1])

    @staticmethod
    def _to_obs(stack: np.ndarray) -> np.ndarray:
        """float32 [m, 84, 84, 12] observation of a uint8 stack [m, 84, 84, 4, 3]: value / 255."""
        obs = np.multiply(stack, _F32(1 / 255), dtype=_F32)
        return obs.reshape(len(stack), *OBS_SHAPE)
