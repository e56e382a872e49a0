"""Pyramids: a vectorised port of Unity ML-Agents' Pyramids example on the 2D arena engine.

One agent per area must press a switch, which makes a brick pyramid appear somewhere else, then knock
the pyramid over and reach its gold brick: a sparse-reward exploration task (upstream trains it with
curiosity). Facts taken from upstream (Project/Assets/ML-Agents/Examples/Pyramids: PyramidAgent.cs,
PyramidArea.cs, PyramidSwitch.cs, Prefabs/AreaPB.prefab, Scenes/Pyramids.unity):

* Area (AreaPB): a 99 m square floor (outer walls' inner faces at x = +-49.5, z = -49.6 and 49.1, 5 m
  high) split into a 3 x 3 grid of rooms by walls about 16.5 m from the centre: four cruciform walls
  (two crossed 15 m x 1 m boxes each, centred at (+-16.55, +-16.56)) and eight 14.5 m wall stubs from
  the outer wall inwards, all 4.52 m high, leaving doorways between the rooms. Nine spawn areas (25 x 25
  quads) sit at the room centres (0 or +-30 on each axis). The scene has 16 areas; gravity 9.81.
* Episode start (OnEpisodeBegin): a random permutation of the nine rooms puts the agent in the first,
  the switch in the second, reserves the third for the brick pyramid and fills the other six with stone
  pyramids; each object lands uniformly within +-25/2.1 m of its room's centre (PlaceObject), so every
  room holds exactly one object. The agent gets a random heading of a whole number of degrees in
  [0, 360) and zero velocity; the switch is off.
* Agent: a 1 m cube, mass 25, drag 2, rotation frozen; a decision every 5 physics steps of 0.02 s with
  the action repeated in between; MaxStep 5000 physics steps = 1000 decisions, reaching it interrupts
  the episode (``interrupted=True``).
* Actions, one branch of 5 (the prefab's BranchSizes; the docs' "4 actions" leave out 0, no-op):
  0 no-op, 1 forward, 2 back, 3 turn right, 4 turn left. Moving is a velocity change of 2 m/s per
  physics step (ForceMode.VelocityChange); turning is 200 degrees per second (4 degrees per step).
* Switch (PyramidSwitch): a 4 m cube tagged ``switchOff``; when the agent touches it, it turns on (tag
  ``switchOn``) and the brick pyramid appears at a random point of its room.
* Brick pyramid: 29 one-metre bricks (tag ``block``, 2 kg each) in layers of 4 x 4, 3 x 3 and 2 x 2
  with the gold brick (tag ``goal``) on top, about 4.5 m wide at the base and 4 m tall. Stone pyramids
  (tag ``stone``) have the same shape with 50 kg bricks.
* Rewards (PyramidAgent.cs): -1/MaxStep on every physics step (-0.001 per decision, -1 over a full
  episode); when the agent touches the gold brick, SetReward(2) and the episode ends, so that decision's
  reward is exactly +2.
* Observations, as ML-Agents orders sensors (by name): three RayPerceptionSensorComponent3D, each with
  tags (block, wall, goal, switchOff, switchOn, stone), 3 rays per direction, sphere cast radius 0.5,
  ray length 35, no stacking: ``RayPerceptionSensor`` (70 degrees, horizontal), ``RayPerceptionSensor1``
  (65 degrees, the ray's end 5 m higher than its start) and ``RayPerceptionSensor2`` (75 degrees, end
  10 m higher); 7 rays x 8 = 56 floats each. Then ``VectorSensor_size4``: the switch state (1 on, 0 off)
  and the agent's velocity in its own frame (right, up, forward). 172 floats in all. The "148" of the
  ML-Agents docs (and environments.md) is an older layout (three legacy ray casts over 5 tags plus the
  switch state); the prefab's sensors give 172.

Approximations (see mlx.envs.native.arena for the physics model):

* The pyramids are static boxes: a brick pyramid is its 4.5 m base footprint, 3 m tall (tag ``block``),
  with the gold brick as a 1 m box on top (3 to 4 m, tag ``goal``); a stone pyramid is the same
  footprint 4 m tall (tag ``stone``) and never moves (upstream its 1.5 t of bricks barely does). The
  pyramid is centred on its spawn point and may overlap a room wall, as upstream.
* Knocking it over: upstream the 25 kg agent running into the 2 kg bricks scatters them and the gold
  brick falls to the floor, where the agent must touch it. Here the agent's first touch of the standing
  pyramid knocks it over: the pyramid becomes rubble the agent can walk through (a 1 m high trigger of
  the same footprint, tag ``block``) and the gold brick lies at the pyramid's centre (a 1 m trigger box,
  tag ``goal``); overlapping it gives the +2 and ends the episode. So the agent must still push on into
  the pile, about 1.75 m past the face it hit.
* The tilted ray sensors (ends 5 m and 10 m up over 35 m) rise linearly with distance; they are cast
  against each collider's footprint grown by the sphere radius (square corners) within the distance
  window where the sphere's vertical span [h - 0.5, h + 0.5] overlaps the collider's (a sphere taken
  as a short cylinder). So they see the gold brick on the standing pyramid and pass over the 4.52 m
  walls beyond about 31.6 m (the 5 m sensor) and 15.8 m (the 10 m sensor), as upstream. The horizontal
  sensor is the engine's exact sphere cast.
* Events are checked once per decision (after its 5 physics steps): the pyramid appears, falls and the
  gold counts at most 4 physics steps later than upstream. A gold touch on the last allowed decision
  counts (termination, not interruption). The agent cube is a circle of radius 0.5; bodies rest on the
  floor from the first step (upstream drops objects from 2 m).

PyramidsRND is this env with ``reward_signals=[extrinsic,rnd]`` (see conf/experiment/pyramids_rnd.yaml).
There are no environment parameters upstream; every name is refused.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.envs.native.arena import BodySpec, StaticSpec
from mlx.envs.native.arena_env import ArenaEnv, episode_budget
from mlx.envs.native.base import F32
from mlx.envs.native.rays import RaySensor, RaySensorSpec, TiltedRaySensor

BEHAVIOR_NAME = "Pyramids"
DECISION_PERIOD = 5
MAX_STEP = 5000  # physics steps (Agent.MaxStep)
MAX_DECISIONS, DECISION_PENALTY = episode_budget(MAX_STEP, DECISION_PERIOD)
GOLD_REWARD = 2.0  # SetReward: the whole reward of the decision that touches the gold brick
GRAVITY = 9.81
RUN_SPEED = 2.0  # m/s per physics step (ForceMode.VelocityChange)
TURN_SPEED = 200.0  # degrees per second
AGENT_RADIUS = 0.5
AGENT_HEIGHT = (0.0, 1.0)
AGENT_MASS, AGENT_DRAG = 25.0, 2.0
BOUNDS = (-49.5, -49.6, 49.5, 49.1)  # outer walls' inner faces: xmin, zmin, xmax, zmax
OUTER_WALL_HEIGHT = (-10.0, 5.0)
WALL_HEIGHT = (-2.7, 4.52)
# Interior walls (centre x, centre z, half x, half z): eight stubs from the outer wall, then the two
# boxes of each of the four cruciform walls.
_STUB = (7.252484, 0.5)
_ARM_X, _ARM_Z = (7.575019, 0.50003), (0.5, 7.5000325)
WALLS = (
    (42.247515, -16.442273, *_STUB),
    (16.557727, -42.247516, *_STUB[::-1]),
    (-16.442273, -42.247516, *_STUB[::-1]),
    (-42.247516, -16.557727, *_STUB),
    (-42.247516, 16.442273, *_STUB),
    (-16.557727, 42.247516, *_STUB[::-1]),
    (16.442273, 42.247516, *_STUB[::-1]),
    (42.247515, 16.557727, *_STUB),
    *(
        (cx, cz, *arm)
        for cx, cz in ((16.538311, 16.557728), (16.538311, -16.55773), (-16.55773, 16.557728), (-16.55773, -16.55773))
        for arm in (_ARM_X, _ARM_Z)
    ),
)
# Spawn areas A..I (PyramidArea.spawnAreas): the room centres, each a 25 m quad; PlaceObject draws
# uniformly within +-scale/2.1 of the centre.
ROOMS = np.array([(x, z) for z in (-30.0, 0.0, 30.0) for x in (-30.0, 0.0, 30.0)], np.float32)
SPAWN_HALF = 25.0 / 2.1
NUM_STONES = 6
SWITCH_HALF = 2.0
SWITCH_HEIGHT = (0.0, 4.0)
PYRAMID_HALF = 2.25
PYRAMID_HEIGHT = (0.0, 3.0)  # the bricks under the gold one
GOLD_HALF = 0.5
GOLD_TOP_HEIGHT = (3.0, 4.0)
FLOOR_HEIGHT = (0.0, 1.0)  # rubble and the fallen gold brick
STONE_HEIGHT = (0.0, 4.0)
TAGS = ("block", "wall", "goal", "switchOff", "switchOn", "stone")
# Action -> (forward, right, turn) commands (PyramidAgent.MoveAgent).
ACTIONS = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, 0, -1]], np.float32)
SENSORS = (
    (RaySensorSpec(TAGS, 3, 70.0, 0.5, 35.0, 0.0, 1, "RayPerceptionSensor"), 0.0),
    (RaySensorSpec(TAGS, 3, 65.0, 0.5, 35.0, 0.0, 1, "RayPerceptionSensor1"), 5.0),
    (RaySensorSpec(TAGS, 3, 75.0, 0.5, 35.0, 0.0, 1, "RayPerceptionSensor2"), 10.0),
)
VECTOR_NAME = "VectorSensor_size4"
VECTOR_SIZE = 4


class PyramidsEnv(ArenaEnv):
    """``num_areas`` Pyramids areas, one agent each (agent id = area index), behaviour ``Pyramids``."""

    behaviors = (BEHAVIOR_NAME,)  # upstream reads no environment parameters: every name is refused
    max_decisions = MAX_DECISIONS
    commands = ACTIONS
    decision_period = DECISION_PERIOD
    run_speed, turn_speed, gravity = RUN_SPEED, TURN_SPEED, GRAVITY

    def __init__(self, num_areas: int = 16, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        obs_specs = [ObservationSpec((spec.size,), spec.observation_name) for spec, _ in SENSORS]
        spec = BehaviorSpec(
            observation_specs=(*obs_specs, ObservationSpec((VECTOR_SIZE,), VECTOR_NAME)),
            action_spec=ActionSpec(discrete_branches=(len(ACTIONS),)),
        )
        super().__init__(num_areas, seed, parameters, spec)
        walls = [
            StaticSpec(f"wall{i}", (cx, cz), (hx, hz), WALL_HEIGHT, tag="wall")
            for i, (cx, cz, hx, hz) in enumerate(WALLS)
        ]
        far = (1000.0, 1000.0)  # inactive slots wait here
        objects = [
            StaticSpec("switch", far, (SWITCH_HALF, SWITCH_HALF), SWITCH_HEIGHT, tag="switchOff"),
            StaticSpec("pyramid", far, (PYRAMID_HALF, PYRAMID_HALF), PYRAMID_HEIGHT, tag="block", active=False),
            StaticSpec("gold_top", far, (GOLD_HALF, GOLD_HALF), GOLD_TOP_HEIGHT, solid=False, tag="goal", active=False),
            StaticSpec(
                "rubble", far, (PYRAMID_HALF, PYRAMID_HALF), FLOOR_HEIGHT, solid=False, tag="block", active=False
            ),
            StaticSpec("gold", far, (GOLD_HALF, GOLD_HALF), FLOOR_HEIGHT, solid=False, tag="goal", active=False),
            *(
                StaticSpec(f"stone{i}", far, (PYRAMID_HALF, PYRAMID_HALF), STONE_HEIGHT, tag="stone")
                for i in range(NUM_STONES)
            ),
        ]
        agent = BodySpec.circle(
            "agent", AGENT_RADIUS, height=AGENT_HEIGHT, mass=AGENT_MASS, drag=AGENT_DRAG, tag="agent"
        )
        self.arena = self._build_arena([agent], [*walls, *objects], BOUNDS, OUTER_WALL_HEIGHT, extra_tags=("switchOn",))
        ar = self.arena
        self._slot = {name: ar.slot[name] for name in ("switch", "pyramid", "gold_top", "rubble", "gold")}
        self._stones = np.array([ar.slot[f"stone{i}"] for i in range(NUM_STONES)], np.intp)
        self._tag_off, self._tag_on = ar.tag_id("switchOff"), ar.tag_id("switchOn")
        self.sensors: list[RaySensor | TiltedRaySensor] = [
            RaySensor(ar, spec) if rise == 0 else TiltedRaySensor(ar, spec, rise) for spec, rise in SENSORS
        ]
        self.switch_on = np.zeros(self.n, bool)
        self.pyramid_room = np.zeros(self.n, np.intp)

    def _outcome(self) -> tuple[np.ndarray, np.ndarray]:
        touched = self.arena.touch_static[0]  # [W, n]
        won = touched[self._slot["gold"]].copy()
        knocked = touched[self._slot["pyramid"]] & ~won
        pressed = touched[self._slot["switch"]] & ~self.switch_on
        if pressed.any():
            self._press(np.flatnonzero(pressed))
        if knocked.any():
            self._knock(np.flatnonzero(knocked))
        reward = np.full(self.n, DECISION_PENALTY, F32)
        reward[won] = GOLD_REWARD  # SetReward: the whole reward of the decision that touches the gold brick
        return reward, won

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        return self._observe(idx)

    def _observe(self, areas: np.ndarray | None = None) -> list[np.ndarray]:
        """Every sensor's observation [m, size] (ML-Agents' name order) for all areas or the given ones."""
        ar = self.arena
        sel = slice(None) if areas is None else areas
        rays = [s.perceive(areas) for s in self.sensors]
        fx, fz = np.sin(ar.heading[0, sel]), np.cos(ar.heading[0, sel])
        vx, vz = ar.vel[0, 0, sel], ar.vel[1, 0, sel]
        vec = np.zeros((len(fx), VECTOR_SIZE), F32)
        vec[:, 0] = self.switch_on[sel]
        vec[:, 1] = vx * fz - vz * fx  # InverseTransformDirection(velocity): right, up, forward
        vec[:, 3] = vx * fx + vz * fz
        return [*rays, vec]

    def _place(self, rooms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PlaceObject: uniform positions within SPAWN_HALF of the given rooms' centres (any shape)."""
        u = self._rng.uniform(-SPAWN_HALF, SPAWN_HALF, (2, *rooms.shape)).astype(F32)
        return ROOMS[rooms, 0] + u[0], ROOMS[rooms, 1] + u[1]

    def _reset_areas(self, idx: np.ndarray) -> None:
        """OnEpisodeBegin for the given areas: rooms shuffled, agent, switch and stones placed."""
        ar, m = self.arena, idx.size
        rooms = np.argsort(self._rng.random((m, len(ROOMS))), axis=1)  # a random permutation per area
        ax, az = self._place(rooms[:, 0])
        ar.pos[0, 0, idx], ar.pos[1, 0, idx] = ax, az
        ar.heading[0, idx] = np.radians(self._rng.integers(0, 360, m)).astype(F32)
        ar.stop(idx)
        sx, sz = self._place(rooms[:, 1])
        sw = self._slot["switch"]
        ar.center[0, sw, idx], ar.center[1, sw, idx] = sx, sz
        ar.tag[sw, idx] = self._tag_off
        self.switch_on[idx] = False
        self.pyramid_room[idx] = rooms[:, 2]
        tx, tz = self._place(rooms[:, 3 : 3 + NUM_STONES])  # [m, 6]
        ar.center[0, self._stones[:, None], idx[None, :]] = tx.T
        ar.center[1, self._stones[:, None], idx[None, :]] = tz.T
        for name in ("pyramid", "gold_top", "rubble", "gold"):
            ar.active[self._slot[name], idx] = False
        ar.refresh()

    def _press(self, idx: np.ndarray) -> None:
        """The switch turns on and the brick pyramid, gold brick on top, appears in its room."""
        ar = self.arena
        self.switch_on[idx] = True
        ar.tag[self._slot["switch"], idx] = self._tag_on
        px, pz = self._place(self.pyramid_room[idx])
        for name in ("pyramid", "gold_top"):
            s = self._slot[name]
            ar.center[0, s, idx], ar.center[1, s, idx] = px, pz
            ar.active[s, idx] = True
        ar.refresh()

    def _knock(self, idx: np.ndarray) -> None:
        """The pyramid falls: rubble the agent can cross, the gold brick on the floor at its centre."""
        ar = self.arena
        s_pyr = self._slot["pyramid"]
        px, pz = ar.center[0, s_pyr, idx], ar.center[1, s_pyr, idx]
        for name, active in (("pyramid", False), ("gold_top", False), ("rubble", True), ("gold", True)):
            s = self._slot[name]
            ar.center[0, s, idx], ar.center[1, s, idx] = px, pz
            ar.active[s, idx] = active
        ar.refresh()
