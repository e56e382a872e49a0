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

from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    ObservationSpec,
    TerminalSteps,
)
from mlx.envs.native.ball3d import BEHAVIOR_NAME as INNER_BEHAVIOR
from mlx.envs.native.ball3d import Ball3DEnv

BEHAVIOR_NAME = "3DBallHard"
FRAME = 5  # q.z, q.x, dx, dy, dz: 3DBall's observation without the velocity
STACK = 9
START_ONLY = ("mass", "scale")


class Ball3DHardEnv(BaseEnv):
    """``num_areas`` 3DBallHard areas, one agent each (agent id = area index)."""

    def __init__(self, num_areas: int = 12, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        if int(num_areas) < 1:
            raise EnvError(f"3DBallHard needs num_areas >= 1, got {num_areas}")
        self._inner = Ball3DEnv(num_areas, seed, parameters)
        self._n = int(num_areas)
        self._pending: dict[str, float] = {}
        self._spec = BehaviorSpec(
            observation_specs=(ObservationSpec(shape=(FRAME * STACK,), name="StackingSensor_size9_VectorSensor"),),
            action_spec=ActionSpec(continuous_size=2),
        )
        self._stack = np.zeros((self._n, FRAME * STACK), np.float32)
        self._decision: DecisionSteps | None = None
        self._terminal = self._empty_terminal()

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR_NAME: self._spec}

    @property
    def num_areas(self) -> int:
        return self._n

    def reset(self) -> None:
        for key, value in self._pending.items():
            self._inner.set_environment_parameter(key, value)
        self._pending.clear()
        self._inner.reset()
        decision, _ = self._inner.get_steps(INNER_BEHAVIOR)
        self._stack.fill(0.0)
        self._stack[:, -FRAME:] = decision.obs[0][:, :FRAME]
        self._decision = DecisionSteps([self._stack.copy()], decision.reward, decision.agent_id)
        self._terminal = self._empty_terminal()

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        self._check_behavior(behavior_name)
        self._inner.set_actions(INNER_BEHAVIOR, actions)

    def step(self) -> None:
        if self._decision is None:
            raise EnvError("call reset() before step()")
        self._inner.step()
        decision, terminal = self._inner.get_steps(INNER_BEHAVIOR)
        stack = self._stack
        if len(terminal):
            idx = terminal.agent_id
            final = np.empty((len(idx), FRAME * STACK), np.float32)
            final[:, :-FRAME] = stack[idx, FRAME:]
            final[:, -FRAME:] = terminal.obs[0][:, :FRAME]
            self._terminal = TerminalSteps([final], terminal.reward, terminal.agent_id, terminal.interrupted)
        elif len(self._terminal):
            self._terminal = self._empty_terminal()
        stack[:, :-FRAME] = stack[:, FRAME:]
        stack[:, -FRAME:] = decision.obs[0][:, :FRAME]
        if len(terminal):
            stack[terminal.agent_id, :-FRAME] = 0.0  # a new episode starts with a cleared stack
        self._decision = DecisionSteps([stack.copy()], decision.reward, decision.agent_id)

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        self._check_behavior(behavior_name)
        if self._decision is None:
            raise EnvError("call reset() before get_steps()")
        return self._decision, self._terminal

    def set_environment_parameter(self, key: str, value: float) -> None:
        """gravity at once; mass and scale from the next reset() (Ball3DHardAgent applies them at start)."""
        self._inner.parameters.check(key, value)
        if key in START_ONLY:
            self._pending[key] = float(value)
        else:
            self._inner.set_environment_parameter(key, value)

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """3DBall's pictures (the scene is 3DBall's; only the observation differs)."""
        return self._inner.render(areas)

    def close(self) -> None:
        self._inner.close()

    def _check_behavior(self, name: str) -> None:
        if name != BEHAVIOR_NAME:
            raise EnvError(f"unknown behaviour '{name}'; this env has: {BEHAVIOR_NAME}")

    @staticmethod
    def _empty_terminal() -> TerminalSteps:
        return TerminalSteps(
            [np.zeros((0, FRAME * STACK), np.float32)],
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            np.zeros(0, bool),
        )
