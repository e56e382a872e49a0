"""3DBall's simulation seen through another observation: the shared base of 3DBallHard and Visual3DBall.

Both ML-Agents examples run Ball3DAgent unchanged on 3DBall's platform and ball; only the sensors differ.
So a view owns an inner ``Ball3DEnv`` (dynamics, rewards, decision period, MaxStep, parameters) and turns
its steps into its own observations through three hooks: ``_first`` (the observations after a reset),
``_last`` (the terminal observations of the episodes that just ended) and ``_next`` (every agent's
observations after a decision, new episodes included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.envs.native.ball3d import BEHAVIOR_NAME as INNER_BEHAVIOR
from mlx.envs.native.ball3d import DEFAULT_PARAMETERS, Ball3DEnv
from mlx.envs.native.base import NativeEnv


class Ball3DView(NativeEnv):
    """``num_areas`` areas of 3DBall's simulation (agent id = area index) with the subclass's observations."""

    parameter_defaults = DEFAULT_PARAMETERS

    def __init__(self, num_areas: int, seed: int, parameters: Mapping[str, float] | None, spec: BehaviorSpec) -> None:
        super().__init__(num_areas, seed, parameters, spec)
        self._inner = Ball3DEnv(self.n, seed, parameters)
        self._params = self._inner.parameters  # one set of parameters: the simulation's

    def reset(self) -> None:
        self._inner.reset()
        decision, _ = self._inner.get_steps(INNER_BEHAVIOR)
        obs = self._first(decision)
        self._started = True
        self._no_terminal()
        self._publish(obs, decision.reward)

    def step(self) -> None:
        self._require_reset("step")
        self._inner.step()
        decision, terminal = self._inner.get_steps(INNER_BEHAVIOR)
        if len(terminal):
            self._end(terminal.agent_id, self._last(terminal), terminal.reward, terminal.interrupted)
        else:
            self._no_terminal()
        self._publish(self._next(decision, terminal), decision.reward)

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        self._inner._act(rows, continuous, discrete)  # checked already: the specs' actions are the same

    def set_environment_parameter(self, key: str, value: float) -> None:
        """mass and scale from each area's next episode, gravity at once (as 3DBall)."""
        self._inner.set_environment_parameter(key, value)

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """3DBall's pictures (the scene is 3DBall's; only the observation differs)."""
        return self._inner.render(areas)

    def close(self) -> None:
        self._inner.close()
        super().close()

    def _first(self, decision: DecisionSteps) -> list[np.ndarray]:
        raise NotImplementedError

    def _last(self, terminal: TerminalSteps) -> list[np.ndarray]:
        raise NotImplementedError

    def _next(self, decision: DecisionSteps, terminal: TerminalSteps) -> list[np.ndarray]:
        raise NotImplementedError
