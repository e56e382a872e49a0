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
from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    EnvParameters,
    ObservationSpec,
    TerminalSteps,
)
from mlx.envs.native.arena import Arena, BodySpec, RaySensor, RaySensorSpec, StaticSpec, box_overlaps, sample_positions

BEHAVIOR_NAME = "PushBlock"
DT = 0.02
DECISION_PERIOD = 5
MAX_STEP = 5000  # physics steps (Agent.MaxStep)
MAX_DECISIONS = MAX_STEP // DECISION_PERIOD
STEP_PENALTY = -1.0 / MAX_STEP  # per physics step
DECISION_PENALTY = STEP_PENALTY * DECISION_PERIOD
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

_F32 = np.float32


class PushBlockEnv(BaseEnv):
    """``num_areas`` PushBlock areas, one agent each (agent id = area index), behaviour ``PushBlock``."""

    def __init__(self, num_areas: int = 32, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        n = int(num_areas)
        if n < 1:
            raise EnvError(f"PushBlock needs num_areas >= 1, got {num_areas}")
        self._n = n
        self._params = EnvParameters(defaults=dict(DEFAULT_PARAMETERS), values=dict(parameters or {}))
        for key, value in self._params.values.items():
            _check_parameter(key, value)
        self._rng = np.random.default_rng(seed)
        bodies = [
            BodySpec.circle("agent", AGENT_RADIUS, height=AGENT_HEIGHT, mass=AGENT_MASS, drag=AGENT_DRAG, tag="agent"),
            BodySpec.box("block", (1.0, 1.0), height=BLOCK_HEIGHT, mass=BLOCK_MASS, drag=0.5, tag="block"),
        ]
        goal = StaticSpec("goal", GOAL_CENTER, GOAL_HALF, GOAL_HEIGHT, solid=True, tag="goal")
        self.arena = Arena(
            n,
            bodies,
            [goal],
            bounds=(-AREA_HALF, -AREA_HALF, AREA_HALF, AREA_HALF),
            bounds_height=WALL_HEIGHT,
            bounds_tag="wall",
            num_agents=1,
            run_speed=RUN_SPEED,
            turn_speed=TURN_SPEED,
            dt=DT,
            gravity=GRAVITY,
            ground_friction=(0.0, 0.0),
        )
        self._goal = self.arena.slot["goal"]
        self.sensors = [RaySensor(self.arena, spec) for spec in SENSORS]
        self._spec = BehaviorSpec(
            observation_specs=tuple(ObservationSpec((s.size,), s.observation_name) for s in SENSORS),
            action_spec=ActionSpec(discrete_branches=(len(ACTIONS),)),
        )
        self._ids = np.arange(n, dtype=np.int32)
        self._ids.flags.writeable = False
        self._steps = np.zeros(n, np.int32)  # decisions taken in the current episode
        self._no_op = np.zeros(n, np.intp)
        self._started = False
        self._decision: DecisionSteps | None = None
        self._terminal = self._empty_terminal()

    # ------------------------------------------------------------------------------------------------
    # BaseEnv API
    # ------------------------------------------------------------------------------------------------

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR_NAME: self._spec}

    @property
    def num_areas(self) -> int:
        return self._n

    def reset(self) -> None:
        """New episodes in every area (agents facing the goal, as in the prefab); all decide, reward 0."""
        ar = self.arena
        ar.heading[:] = INITIAL_HEADING
        ar.pos[:, 0] = 0.0  # the prefab's agent position: the first spawn test avoids it
        ar.pos[0, 1], ar.pos[1, 1] = INITIAL_BLOCK
        every = np.arange(self._n)
        self._reset_areas(every)
        obs = [s.restart(every) for s in self.sensors]
        self._act(self._no_op)
        self._started = True
        self._decision = DecisionSteps(obs=obs, reward=np.zeros(self._n, _F32), agent_id=self._ids)
        self._terminal = self._empty_terminal()

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        self._check_behavior(behavior_name)
        disc = np.asarray(actions.discrete)
        if disc.shape != (self._n, 1):
            raise EnvError(f"PushBlock expects discrete actions of shape ({self._n}, 1), got {tuple(disc.shape)}")
        cont = np.asarray(actions.continuous)
        if cont.size:
            raise EnvError(f"PushBlock has no continuous actions, got shape {tuple(cont.shape)}")
        act = disc[:, 0]
        if act.min() < 0 or act.max() >= len(ACTIONS):
            raise EnvError(f"PushBlock actions must be in 0..{len(ACTIONS) - 1}, got {act.min()}..{act.max()}")
        self._act(act)

    def step(self) -> None:
        if not self._started:
            raise EnvError("call reset() before step()")
        ar = self.arena
        ar.clear_touches()
        ar.step(DECISION_PERIOD)
        scored = ar.touch_static[1, self._goal]
        steps = self._steps
        steps += 1
        reward = np.full(self._n, DECISION_PENALTY, _F32)
        obs = [s.observe() for s in self.sensors]
        ended = scored | (steps >= MAX_DECISIONS)
        if ended.any():
            idx = np.flatnonzero(ended)
            won = scored[idx]
            final = reward[idx] + np.where(won, _F32(GOAL_REWARD), _F32(0.0))
            self._terminal = TerminalSteps(
                obs=[o[idx] for o in obs], reward=final, agent_id=self._ids[idx], interrupted=~won
            )
            self._reset_areas(idx)
            for o, s in zip(obs, self.sensors, strict=True):
                o[idx] = s.restart(idx)
            reward[idx] = 0.0
        elif len(self._terminal):
            self._terminal = self._empty_terminal()
        self._act(self._no_op)  # until set_actions, agents do nothing (ML-Agents' empty action)
        self._decision = DecisionSteps(obs=obs, reward=reward, agent_id=self._ids)

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        self._check_behavior(behavior_name)
        if self._decision is None:
            raise EnvError("call reset() before get_steps()")
        return self._decision, self._terminal

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Top-down pictures of areas, bodies and statics coloured by tag (Arena.render)."""
        return self.arena.render(areas)

    def set_environment_parameter(self, key: str, value: float) -> None:
        _check_parameter(key, value)
        self._params.set(key, value)

    # ------------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------------

    def _act(self, actions: np.ndarray) -> None:
        cmd = ACTIONS[actions].T[:, None, :]  # [3, 1, n]
        self.arena.drive(cmd[0], cmd[1], cmd[2])

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
        self._steps[idx] = 0

    def _check_behavior(self, name: str) -> None:
        if name != BEHAVIOR_NAME:
            raise EnvError(f"unknown behavior '{name}'; this env has: {BEHAVIOR_NAME}")

    def _empty_terminal(self) -> TerminalSteps:
        return TerminalSteps(
            obs=[np.zeros((0, s.size), _F32) for s in SENSORS],
            reward=np.zeros(0, _F32),
            agent_id=np.zeros(0, np.int32),
            interrupted=np.zeros(0, bool),
        )


def _check_parameter(key: str, value: float) -> None:
    if key == "block_scale" and not value > 0:
        raise EnvError(f"environment parameter 'block_scale' must be > 0 (got {value})")
    if key in ("dynamic_friction", "static_friction", "block_drag") and value < 0:
        raise EnvError(f"environment parameter '{key}' must be >= 0 (got {value})")
