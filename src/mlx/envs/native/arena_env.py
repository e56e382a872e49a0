"""The base of the ports on the arena engine (PushBlock, Pyramids, Hallway): NativeEnv plus the arena's agent.

Those examples share one shape: one agent per area, steered by one discrete branch whose actions are
(forward, right, turn) commands, inside walls tagged ``wall``, with a decision every few physics steps.
A port sets the class attributes, builds its arena with ``_build_arena`` and writes ``_outcome()`` (the
rewards and terminations read from the arena's touches), ``_reset_areas`` and its observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from mlx.envs.native.arena import Arena, BodySpec, StaticSpec
from mlx.envs.native.base import NativeEnv


def episode_budget(max_step: int, decision_period: int) -> tuple[int, float]:
    """(decisions per episode, reward per decision) of an agent with Agent.MaxStep ``max_step`` physics steps
    that pays ML-Agents' existential penalty, AddReward(-1 / MaxStep) on every physics step."""
    return max_step // decision_period, -1.0 / max_step * decision_period


class ArenaEnv(NativeEnv):
    """A port on the arena engine (PushBlock, Pyramids, Hallway): one agent per area steered by one discrete
    branch whose actions are rows of ``commands`` (forward, right, turn); a decision is ``decision_period``
    physics steps of ``self.arena``, after which ``_outcome()`` reads the touches into rewards."""

    commands: ClassVar[np.ndarray]  # [actions, 3] float32: action -> (forward, right, turn)
    decision_period: ClassVar[int]
    run_speed: ClassVar[float]  # m/s added per physics step by a full forward command (VelocityChange)
    turn_speed: ClassVar[float]  # degrees per second of a full turn command
    gravity: ClassVar[float]  # the scene's gravity (scales the floor friction)
    dt: ClassVar[float] = 0.02  # physics step (Time.fixedDeltaTime)
    arena: Arena

    def _build_arena(
        self,
        bodies: Sequence[BodySpec],
        statics: Sequence[StaticSpec],
        bounds: tuple[float, float, float, float],
        wall_height: tuple[float, float],
        **options: Any,
    ) -> Arena:
        """The arena of every area: the agent (the first body) inside walls tagged ``wall`` (Arena's options)."""
        return Arena(
            self.n,
            list(bodies),
            list(statics),
            bounds=bounds,
            bounds_height=wall_height,
            bounds_tag="wall",
            num_agents=1,
            run_speed=self.run_speed,
            turn_speed=self.turn_speed,
            dt=self.dt,
            gravity=self.gravity,
            **options,
        )

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        cmd = self.commands[discrete[:, 0]].T[:, None, :]  # [3, 1, n]
        self.arena.drive(cmd[0], cmd[1], cmd[2])

    def _no_actions(self) -> None:
        cmd = self.commands[0][:, None, None]  # ML-Agents' empty action: action 0 of the branch
        self.arena.drive(cmd[0], cmd[1], cmd[2])

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        self.arena.clear_touches()
        self.arena.step(self.decision_period)
        return self._outcome()

    def _outcome(self) -> tuple[np.ndarray, np.ndarray]:
        """(reward [n], terminated [n]) of the decision just simulated, from the arena's touches."""
        raise NotImplementedError

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Top-down pictures of areas, bodies and statics coloured by tag (Arena.render)."""
        return self.arena.render(areas)
