"""Hallway: a vectorised port of Unity ML-Agents' Hallway example on the 2D arena engine.

One agent per area walks down a walled hallway. A symbol block near the start shows either an O or an X
(chosen at random per episode); at the far end stand two goals, an O and an X, swapped at random. The
agent must reach the goal matching the symbol it saw, which is out of sight by then: the task needs
memory. Facts taken from upstream (Project/Assets/ML-Agents/Examples/Hallway: HallwayAgent.cs,
HallwaySettings.cs, Prefabs/SymbolFinderArea.prefab, Scenes/Hallway.unity):

* Area (SymbolFinderArea): a 19 m x 49.5 m hallway (walls' inner faces at x = +-9.5 and z = +-24.75,
  walls 4 m tall from 0.5 m below the floor). The scene has 16 areas, gravityMultiplier 2 (gravity 19.62,
  which scales the floor friction) and agentRunSpeed 1.5.
* Episode start (OnEpisodeBegin): the selection (O or X) is drawn; the matching symbol block (a 4 m wide,
  1 m deep, 4 m tall box tagged ``symbol_O`` or ``symbol_X``) is placed at z uniform in [-5, 5] and, for
  the O only, x uniform in [-3, 3] (the X stays at x = 0, as upstream), the other one is moved away (out
  of every ray's and body's reach). The agent is placed at x uniform in [-3, 3], z uniform in [-20, -10]
  (plus the ground's 0.015 m x offset, as the symbols), with a uniform random heading and zero velocity.
  The goals stand at x = +7 and x = -7, which one is the O being drawn at random: each goal is a 4 x 4 m
  plate 5 cm above the floor, centred 2.46 m in front of the end wall, with a 4 m tall sign against the
  wall, both tagged ``symbol_O_Goal`` or ``symbol_X_Goal``.
* Agent: a 1 m cube, mass 25, drag 2; a decision every 6 physics steps of 0.02 s with the action repeated
  in between; MaxStep 3000 physics steps = 500 decisions, reaching it interrupts the episode
  (``interrupted=True``).
* Actions, one branch of 5 (the prefab's VectorActionSize; the docs' "4 actions" leave out 0, no-op):
  0 no-op, 1 forward, 2 back, 3 turn right, 4 turn left. Moving is a velocity change of agentRunSpeed
  1.5 m/s per physics step (ForceMode.VelocityChange); turning is 150 degrees per second.
* Rewards (HallwayAgent.cs): -1/MaxStep on every physics step (-0.002 per decision; environments.md's
  -0.0003 is per physics step); touching a goal ends the episode with SetReward(+1) for the goal that
  matches the symbol and SetReward(-0.1) for the other, so that decision's reward is exactly +1 or -0.1.
* Observations, as ML-Agents orders sensors (by name): ``StackingSensor_size3_RayPerceptionSensor``, a
  RayPerceptionSensorComponent3D with tags (symbol_O_Goal, symbol_X_Goal, symbol_O, symbol_X, wall),
  2 rays per direction over 70 degrees (5 rays), sphere cast radius 0.5, length 12, 3 observation stacks:
  3 x 5 x 7 = 105 floats; then ``StackingSensor_size3_VectorSensor_size1``, the agent's StepCount /
  MaxStep (physics steps, so 0, 0.002, 0.004, ... at its decisions) stacked 3 times: 3 floats. 108 floats
  in all. The "30 observations" of the ML-Agents docs (and environments.md) are an older, legacy ray
  layout; the prefab's sensors give 108. A stack is cleared to zeros at each episode start.

Approximations (see mlx.envs.native.arena for the physics model): the agent cube is a circle of radius 0.5
that never turns from contacts (upstream it may yaw on an off-centre impact); contacts are position
projection with PhysX's default material; bodies rest on the floor from the first step (upstream the
agent drops 0.5 m). A goal touched during a decision ends the episode at the end of that decision (at
most 5 physics steps, 0.1 s, later than upstream); a goal touched on the last allowed decision counts
(termination, not interruption). There are no environment parameters upstream; every name is refused.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.envs.native.arena import BodySpec, StaticSpec
from mlx.envs.native.arena_env import ArenaEnv, episode_budget
from mlx.envs.native.base import F32, FrameStack
from mlx.envs.native.rays import RaySensor, RaySensorSpec

BEHAVIOR_NAME = "Hallway"
DECISION_PERIOD = 6
MAX_STEP = 3000  # physics steps (Agent.MaxStep)
MAX_DECISIONS, DECISION_PENALTY = episode_budget(MAX_STEP, DECISION_PERIOD)
RIGHT_REWARD, WRONG_REWARD = 1.0, -0.1  # SetReward: the whole reward of the decision that ends the episode
GRAVITY = 9.81 * 2.0  # the scene's gravityMultiplier
RUN_SPEED = 1.5  # HallwaySettings.agentRunSpeed (m/s per physics step, VelocityChange)
TURN_SPEED = 150.0  # degrees per second (HallwayAgent.MoveAgent)
AGENT_RADIUS = 0.5
AGENT_HEIGHT = (0.0, 1.0)  # heights are above the floor's top (0.5 m above the area's origin upstream)
AGENT_MASS, AGENT_DRAG = 25.0, 2.0
BOUNDS = (-9.5, -24.75, 9.5, 24.75)  # walls' inner faces: xmin, zmin, xmax, zmax
WALL_HEIGHT = (-1.0, 3.0)
GROUND_X = 0.015  # the ground's x offset in the area, added to the agent's and symbols' spawn points
AGENT_X, AGENT_Z, AGENT_Z_RANGE = 3.0, -15.0, 5.0
SYMBOL_X, SYMBOL_Z_RANGE = 3.0, 5.0
SYMBOL_HALF = (2.0, 0.5)
SYMBOL_HEIGHT = (0.0, 4.0)
GOAL_X = 7.0
PLATE_Z, PLATE_HALF, PLATE_HEIGHT = 22.29, (2.0, 2.0), (-0.05, 0.05)
SIGN_Z, SIGN_HALF, SIGN_HEIGHT = 24.79, (2.040585, 0.57245), (-0.00647, 4.00647)
AWAY = (0.0, 1000.0)  # where the unused symbol waits (upstream: 1000 m below the floor)
TAGS = ("symbol_O_Goal", "symbol_X_Goal", "symbol_O", "symbol_X", "wall")
# Action -> (forward, right, turn) commands (HallwayAgent.MoveAgent).
ACTIONS = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, 0, -1]], np.float32)
SENSOR = RaySensorSpec(TAGS, 2, 70.0, 0.5, 12.0, 0.0, 3, "RayPerceptionSensor")
VECTOR_STACKS = 3
VECTOR_NAME = f"StackingSensor_size{VECTOR_STACKS}_VectorSensor_size1"


class HallwayEnv(ArenaEnv):
    """``num_areas`` Hallway areas, one agent each (agent id = area index), behaviour ``Hallway``.

    ``selection`` holds each area's symbol (0: O, 1: X) and ``o_goal_right`` whether its O goal is the
    one at x = +7.
    """

    behaviors = (BEHAVIOR_NAME,)  # upstream reads no environment parameters: every name is refused
    max_decisions = MAX_DECISIONS
    commands = ACTIONS
    decision_period = DECISION_PERIOD
    run_speed, turn_speed, gravity = RUN_SPEED, TURN_SPEED, GRAVITY

    def __init__(self, num_areas: int = 16, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=(
                ObservationSpec((SENSOR.size,), SENSOR.observation_name),
                ObservationSpec((VECTOR_STACKS,), VECTOR_NAME),
            ),
            action_spec=ActionSpec(discrete_branches=(len(ACTIONS),)),
        )
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        statics = [
            StaticSpec("symbol_O", AWAY, SYMBOL_HALF, SYMBOL_HEIGHT, tag="symbol_O"),
            StaticSpec("symbol_X", AWAY, SYMBOL_HALF, SYMBOL_HEIGHT, tag="symbol_X"),
            StaticSpec("plate_O", (GOAL_X, PLATE_Z), PLATE_HALF, PLATE_HEIGHT, tag="symbol_O_Goal"),
            StaticSpec("sign_O", (GOAL_X, SIGN_Z), SIGN_HALF, SIGN_HEIGHT, tag="symbol_O_Goal"),
            StaticSpec("plate_X", (-GOAL_X, PLATE_Z), PLATE_HALF, PLATE_HEIGHT, tag="symbol_X_Goal"),
            StaticSpec("sign_X", (-GOAL_X, SIGN_Z), SIGN_HALF, SIGN_HEIGHT, tag="symbol_X_Goal"),
        ]
        agent = BodySpec.circle(
            "agent", AGENT_RADIUS, height=AGENT_HEIGHT, mass=AGENT_MASS, drag=AGENT_DRAG, tag="agent"
        )
        self.arena = self._build_arena([agent], statics, BOUNDS, WALL_HEIGHT)
        ar = self.arena
        self._symbols = np.array([ar.slot["symbol_O"], ar.slot["symbol_X"]], np.intp)
        self._o_goal = np.array([ar.slot["plate_O"], ar.slot["sign_O"]], np.intp)
        self._x_goal = np.array([ar.slot["plate_X"], ar.slot["sign_X"]], np.intp)
        self.sensor = RaySensor(ar, SENSOR)
        self._vector = FrameStack(n, 1, VECTOR_STACKS)  # StepCount / MaxStep
        self.selection = np.zeros(n, np.int8)
        self.o_goal_right = np.zeros(n, bool)

    def _outcome(self) -> tuple[np.ndarray, np.ndarray]:
        touched = self.arena.touch_static[0]  # [W, n]
        at_o = touched[self._o_goal].any(0)
        at_x = touched[self._x_goal].any(0)
        right = np.where(self.selection == 0, at_o, at_x)
        scored = at_o | at_x
        # SetReward: the whole reward of the decision that touches a goal.
        penalty = np.full(self.n, DECISION_PENALTY, F32)
        reward = np.where(right, F32(RIGHT_REWARD), np.where(scored, F32(WRONG_REWARD), penalty)).astype(F32)
        return reward, scored

    def _observe(self) -> list[np.ndarray]:
        """The rays, and CollectObservations' StepCount / MaxStep pushed onto each area's stack."""
        fraction = self._steps * (DECISION_PERIOD / MAX_STEP)
        return [self.sensor.observe(), self._vector.push(fraction[:, None]).copy()]

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        return [self.sensor.restart(idx), self._vector.restart(idx, np.zeros((idx.size, 1), F32))]

    def _reset_areas(self, idx: np.ndarray) -> None:
        """OnEpisodeBegin for the given areas: symbol, agent and goals placed; stacks cleared."""
        ar, rng, m = self.arena, self._rng, idx.size
        sel = rng.integers(0, 2, m).astype(np.int8)
        self.selection[idx] = sel
        shown = self._symbols[sel]  # the slot of each area's symbol
        hidden = self._symbols[1 - sel]
        sx = np.where(sel == 0, rng.uniform(-SYMBOL_X, SYMBOL_X, m), 0.0) + GROUND_X
        sz = rng.uniform(-SYMBOL_Z_RANGE, SYMBOL_Z_RANGE, m)
        ar.center[0, shown, idx], ar.center[1, shown, idx] = sx, sz
        ar.center[0, hidden, idx], ar.center[1, hidden, idx] = AWAY
        ar.active[shown, idx] = True
        ar.active[hidden, idx] = False
        ar.pos[0, 0, idx] = rng.uniform(-AGENT_X, AGENT_X, m) + GROUND_X
        ar.pos[1, 0, idx] = AGENT_Z + rng.uniform(-AGENT_Z_RANGE, AGENT_Z_RANGE, m)
        ar.heading[0, idx] = rng.uniform(0.0, 2.0 * np.pi, m)
        ar.stop(idx)
        o_right = rng.integers(0, 2, m) == 0
        self.o_goal_right[idx] = o_right
        ox = np.where(o_right, GOAL_X, -GOAL_X).astype(F32)
        ar.center[0, self._o_goal[:, None], idx[None, :]] = ox
        ar.center[0, self._x_goal[:, None], idx[None, :]] = -ox
        ar.refresh()
