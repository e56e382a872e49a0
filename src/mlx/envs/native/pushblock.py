"""PushBlock: a vectorised port of Unity ML-Agents' PushBlock example on the 2D arena engine.

One agent per area pushes a block into the goal at one end of a walled 25 m x 25 m floor. Facts taken
from upstream (Project/Assets/ML-Agents/Examples/PushBlock: PushAgentBasic.cs, GoalDetect.cs,
PushBlockSettings.cs, Prefabs/PushBlockArea.prefab, Scenes/PushBlock.unity):

* Area: ground collider 25 x 25 (extents 12.5), walls 1.5 m high around it; the goal is a solid box
  tagged ``goal`` spanning the full width at z in [-12.65, -8.35] (centre z = -10.5, 1.5 m high above
  the floor), so it acts as the end wall the block must touch. The scene has 32 areas.
* Agent: a 1 m cube, mass 10, drag 4, rotation frozen; decisions every 5 physics steps of 0.02 s with
  the action repeated in between (DecisionRequester, TakeActionsBetweenDecisions); MaxStep 5000 physics
  steps = 1000 decisions, reaching it interrupts the episode (``interrupted=True``).
* Actions, one branch of 7 (PushAgentBasic.MoveAgent): 0 no-op, 1 forward, 2 back, 3 turn right,
  4 turn left, 5 strafe left (0.75), 6 strafe right (0.75). Moving is a velocity change of
  agentRunSpeed = 3 m/s per physics step (ForceMode.VelocityChange) along the direction; turning is
  ``Rotate(up, 200 * 0.02)``, 4 degrees per physics step (20 degrees per decision).
* Block: a box of block_scale x 0.75 x block_scale, mass 10, drag block_drag, rotation frozen. When it
  touches the goal (GoalDetect.OnCollisionEnter) the agent gets +5 and the episode ends.
* Rewards (PushAgentBasic.cs): -1/MaxStep on every physics step (-0.001 per decision, -1 over a full
  episode) and +5 for the goal. environments.md's "+1 and -0.0025/step" comes from older docs; the
  source's +5 is what makes the benchmark's mean reward 4.5 reachable, so the source's values are used.
* Episode start (OnEpisodeBegin): the block, then the agent, are placed uniformly at random in the
  central 12.5 x 12.5 square (spawnAreaMarginMultiplier 0.5 of the ground's extents), redrawing while a
  5 x 5 box at 1 m height (Physics.CheckBox) overlaps something: the goal, for both; the agent's current
  body, for the block; the block's new position and the agent's own current body, for the agent.
  Velocities are zeroed; the agent keeps its heading (it starts facing the goal, -z). Upstream also
  turns the whole area by a random multiple of 90 degrees; every object and the spawn square turn with
  it, so nothing changes relative to the agent and it is not simulated.
* Environment parameters (ML-Agents' names and defaults), applied to an area at each of its episode
  starts: ``block_scale`` 2, ``block_drag`` 0.5, ``dynamic_friction`` 0 and ``static_friction`` 0 (the
  ground's material; combined with the bodies' default 0.6 by averaging, as PhysX does). Gravity is
  9.81 x 2.5 (the scene's gravityMultiplier), which scales the floor friction.
* Observations: two RayPerceptionSensor3D components, both with tags (block, goal, wall), 3 rays per
  direction over 90 degrees (7 rays: forward, then right/left pairs at 30, 60, 90 degrees), sphere cast
  radius 0.5, length 12, and **3 observation stacks** (the prefab's ``m_ObservationStacks: 3``):
  ``RayPerceptionSensor`` at the agent's centre height and ``OffsetRayPerceptionSensor`` 1.5 m higher.
  Each is 3 x 7 x 5 = 105 floats; ML-Agents orders sensors by name, so the observation specs are
  ``StackingSensor_size3_OffsetRayPerceptionSensor`` then ``StackingSensor_size3_RayPerceptionSensor``
  (210 floats in all). The ML-Agents docs (and environments.md) say "70 observations, 14 rays x 5": that
  is one frame of both sensors, without the stacking the prefab sets.
  The raised sensor's sphere (centre 2 m up with the agent resting at 0.5 m, radius 0.5) passes over the
  0.75 m block and the 1.495 m goal and grazes the 1.5 m walls: it sees walls only (the graze counts
  as a hit, as a PhysX agent resting a hair into the floor has it).

Approximations (see mlx.envs.native.arena for the physics model): the agent cube is a circle of radius 0.5; contacts
are position projection with PhysX's default material (no bounce, friction 0.6 between agent and block,
frictionless walls), in one pass per physics step (PhysX iterates; an agent pushing the block against a wall
may overlap it by a few centimetres); bodies sit on the floor from the first step (upstream drops them from 1
m). A goal touched during a decision ends the episode at the end of that decision: the terminal observation is
the decision's final state (at most 4 physics steps, 0.08 s, later than upstream), the terminal reward
includes the decision's whole penalty (-0.001 instead of down to -0.0002), and the new episode starts at the
next decision (upstream runs the rest of the decision as no-op steps of the new episode). A new episode's
parameters are applied before placing its bodies (upstream applies them right after, so one episode's spawn
test uses the previous block size). When the goal is touched on the last allowed decision, the goal counts
(termination, not interruption)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, EnvError, ObservationSpec
from mlx.envs.native.arena import BodySpec, StaticSpec, box_overlaps, sample_positions
from mlx.envs.native.arena_env import ArenaEnv, episode_budget
from mlx.envs.native.base import F32
from mlx.envs.native.rays import RaySensor, RaySensorSpec

BEHAVIOR_NAME = "PushBlock"
DECISION_PERIOD = 5
MAX_STEP = 5000  # physics steps (Agent.MaxStep)
MAX_DECISIONS, DECISION_PENALTY = episode_budget(MAX_STEP, DECISION_PERIOD)
GOAL_REWARD = 5.0
GRAVITY = 9.81 * 2.5  # ProjectSettingsOverrides.gravityMultiplier in the PushBlock scene
AREA_HALF = 12.5  # ground collider extents
SPAWN_HALF = AREA_HALF * 0.5  # PushBlockSettings.spawnAreaMarginMultiplier
CHECK_HALF = 2.5  # Physics.CheckBox half extents in GetRandomSpawnPos
WALL_HEIGHT = (-0.5, 1.5)
GOAL_CENTER = (0.0, -10.5)
GOAL_HALF = (12.5, 4.0 * 1.0748733 / 2)  # collider 2500 x 400 at scale (0.01, 0.010748733)
GOAL_HEIGHT = (-1.505, 1.495)
AGENT_RADIUS = 0.5
AGENT_HEIGHT = (0.0, 1.0)
AGENT_MASS, AGENT_DRAG = 10.0, 4.0
RUN_SPEED = 3.0  # PushBlockSettings.agentRunSpeed (m/s per physics step, VelocityChange)
TURN_SPEED = 200.0  # degrees per second
BLOCK_HEIGHT = (0.0, 0.75)
BLOCK_MASS = 10.0
INITIAL_HEADING = math.pi  # the prefab's agent faces -z, towards the goal
INITIAL_BLOCK = (2.0, -1.43)
DEFAULT_PARAMETERS = {"block_scale": 2.0, "dynamic_friction": 0.0, "static_friction": 0.0, "block_drag": 0.5}
TAGS = ("block", "goal", "wall")
# Action -> (forward, right, turn) commands (PushAgentBasic.MoveAgent).
ACTIONS = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, 0, -1], [0, -0.75, 0], [0, 0.75, 0]], np.float32)
SENSORS = (
    RaySensorSpec(TAGS, 3, 90.0, 0.5, 12.0, 1.5, 3, "OffsetRayPerceptionSensor"),
    RaySensorSpec(TAGS, 3, 90.0, 0.5, 12.0, 0.0, 3, "RayPerceptionSensor"),
)


class PushBlockEnv(ArenaEnv):
    """``num_areas`` PushBlock areas, one agent each (agent id = area index), behaviour ``PushBlock``."""

    behaviors = (BEHAVIOR_NAME,)
    parameter_defaults = DEFAULT_PARAMETERS
    max_decisions = MAX_DECISIONS
    commands = ACTIONS
    decision_period = DECISION_PERIOD
    run_speed, turn_speed, gravity = RUN_SPEED, TURN_SPEED, GRAVITY

    def __init__(self, num_areas: int = 32, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=tuple(ObservationSpec((s.size,), s.observation_name) for s in SENSORS),
            action_spec=ActionSpec(discrete_branches=(len(ACTIONS),)),
        )
        super().__init__(num_areas, seed, parameters, spec)
        bodies = [
            BodySpec.circle("agent", AGENT_RADIUS, height=AGENT_HEIGHT, mass=AGENT_MASS, drag=AGENT_DRAG, tag="agent"),
            BodySpec.box("block", (1.0, 1.0), height=BLOCK_HEIGHT, mass=BLOCK_MASS, drag=0.5, tag="block"),
        ]
        goal = StaticSpec("goal", GOAL_CENTER, GOAL_HALF, GOAL_HEIGHT, solid=True, tag="goal")
        bounds = (-AREA_HALF, -AREA_HALF, AREA_HALF, AREA_HALF)
        self.arena = self._build_arena(bodies, [goal], bounds, WALL_HEIGHT, ground_friction=(0.0, 0.0))
        self._goal = self.arena.slot["goal"]
        self.sensors = [RaySensor(self.arena, spec) for spec in SENSORS]

    def reset(self) -> None:
        """New episodes in every area (agents facing the goal, as in the prefab); all decide, reward 0."""
        ar = self.arena
        ar.heading[:] = INITIAL_HEADING
        ar.pos[:, 0] = 0.0  # the prefab's agent position: the first spawn test avoids it
        ar.pos[0, 1], ar.pos[1, 1] = INITIAL_BLOCK
        super().reset()

    def _outcome(self) -> tuple[np.ndarray, np.ndarray]:
        scored = self.arena.touch_static[1, self._goal]
        reward = np.full(self.n, DECISION_PENALTY, F32) + np.where(scored, F32(GOAL_REWARD), F32(0.0))
        return reward, scored

    def _observe(self) -> list[np.ndarray]:
        return [s.observe() for s in self.sensors]

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        return [s.restart(idx) for s in self.sensors]

    def _reset_areas(self, idx: np.ndarray) -> None:
        """OnEpisodeBegin (and SetResetParameters) for the given areas."""
        ar, p = self.arena, self._params
        scale = p["block_scale"]
        ar.set_body_size(1, half=(scale / 2, scale / 2), areas=idx)
        ar.set_drag(1, p["block_drag"], areas=idx)
        ar.set_ground_friction(p["dynamic_friction"], p["static_friction"], areas=idx)
        m = idx.size
        half = (CHECK_HALF, CHECK_HALF)
        gx, gz = ar.center[:, self._goal, idx]
        ghx, ghz = ar.half[:, self._goal, idx]
        ax, az = ar.pos[:, 0, idx]  # the agent's current body (before it moves)
        bh = ar.half[:, ar.W + 1, idx]
        lo, hi = (-SPAWN_HALF, -SPAWN_HALF), (SPAWN_HALF, SPAWN_HALF)

        def block_free(x: np.ndarray, z: np.ndarray, rows: np.ndarray) -> np.ndarray:
            hits_goal = box_overlaps(x, z, half, gx[rows], gz[rows], ghx[rows], ghz[rows])
            return ~(hits_goal | box_overlaps(x, z, half, ax[rows], az[rows], 0.0, 0.0, AGENT_RADIUS))

        bx, bz = sample_positions(self._rng, m, lo, hi, block_free)

        def agent_free(x: np.ndarray, z: np.ndarray, rows: np.ndarray) -> np.ndarray:
            hits = box_overlaps(x, z, half, gx[rows], gz[rows], ghx[rows], ghz[rows])
            hits |= box_overlaps(x, z, half, bx[rows], bz[rows], bh[0, rows], bh[1, rows])
            return ~(hits | box_overlaps(x, z, half, ax[rows], az[rows], 0.0, 0.0, AGENT_RADIUS))

        nx, nz = sample_positions(self._rng, m, lo, hi, agent_free)
        ar.pos[0, 1, idx], ar.pos[1, 1, idx] = bx, bz
        ar.pos[0, 0, idx], ar.pos[1, 0, idx] = nx, nz
        ar.stop(idx)

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            if key == "block_scale" and not value > 0:
                raise EnvError(f"environment parameter 'block_scale' must be > 0 (got {value})")
            if key in ("dynamic_friction", "static_friction", "block_drag") and value < 0:
                raise EnvError(f"environment parameter '{key}' must be >= 0 (got {value})")
