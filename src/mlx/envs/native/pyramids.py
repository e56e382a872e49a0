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
from mlx.envs.native.arena import TOUCH_DISTANCE, Arena, BodySpec, RaySensor, RaySensorSpec, StaticSpec, ray_angles

BEHAVIOR_NAME = "Pyramids"
DT = 0.02
DECISION_PERIOD = 5
MAX_STEP = 5000  # physics steps (Agent.MaxStep)
MAX_DECISIONS = MAX_STEP // DECISION_PERIOD
STEP_PENALTY = -1.0 / MAX_STEP  # per physics step
DECISION_PENALTY = STEP_PENALTY * DECISION_PERIOD
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

_F32 = np.float32


class TiltedRaySensor:
    """A ray perception sensor whose rays rise linearly: ML-Agents' end vertical offset above a start
    offset of 0 (the rays of RayPerceptionSensor1/2). Same encoding and interface as arena.RaySensor.

    A ray's sphere centre at horizontal distance s is at height h0 + s * rise / length. A collider is hit
    at the first s where the footprint grown by the sphere radius (square corners) is entered and the
    sphere's vertical span overlaps the collider's; a collider the sphere overlaps at the start is
    ignored (SphereCast). The hit fraction is s / length, as along the tilted ray.
    """

    def __init__(self, arena: Arena, spec: RaySensorSpec, rise: float, agent: int = 0) -> None:
        if rise <= 0:
            raise EnvError(f"a tilted ray sensor needs a positive rise, got {rise} (use arena.RaySensor)")
        self.arena, self.spec, self.agent = arena, spec, agent
        r = spec.sphere_cast_radius
        self.slope = rise / spec.ray_length
        h0 = float(np.mean(arena.height[arena.W + agent])) + spec.vertical_offset
        self.targets = np.array([s for s in range(arena.S) if s != arena.W + agent], np.intp)
        heights = arena.height[self.targets]
        self._bottom = heights[:, 0][None, :, None].astype(_F32)  # [1, T, 1]
        self._top = heights[:, 1][None, :, None].astype(_F32)
        # Distances over which the sphere's vertical span overlaps each collider's (rising rays).
        self._s_lo = ((heights[:, 0] - r - h0) / self.slope).astype(_F32)[None, :, None]
        self._s_hi = ((heights[:, 1] + r - h0) / self.slope).astype(_F32)[None, :, None]
        self._overlaps_start = (self._s_lo <= 0) & (self._s_hi >= 0)  # [1, T, 1]
        self._bounds_s_hi = _F32((arena.bounds_height[1] + r - h0) / self.slope)
        self.h0 = _F32(h0)
        angles = np.radians(ray_angles(spec.rays_per_direction, spec.max_ray_degrees))
        self._cos_a = np.cos(angles).astype(_F32)[:, None]
        self._sin_a = np.sin(angles).astype(_F32)[:, None]
        lut = np.full(len(arena.tags) + 1, -1, np.int16)
        for slot, name in enumerate(spec.detectable_tags):
            if name in arena.tags:
                lut[arena.tags.index(name) + 1] = slot
        self._lut = lut
        self._tag_range = np.arange(len(spec.detectable_tags), dtype=np.int16)[None, :, None]

    def perceive(self, areas: np.ndarray | None = None) -> np.ndarray:
        """One frame [m, frame_size] float32 for all areas (or the given ones)."""
        ar, spec = self.arena, self.spec
        sel = slice(None) if areas is None else areas
        r = _F32(spec.sphere_cast_radius)
        head = ar.heading[self.agent, sel]
        sh, ch = np.sin(head), np.cos(head)
        dx = self._cos_a * ch + self._sin_a * sh  # [R, m]
        dz = self._sin_a * ch - self._cos_a * sh
        ox = ar.pos[0, self.agent, sel]
        oz = ar.pos[1, self.agent, sel]
        tg = self.targets
        rx = (ar.center[0, tg][:, sel] - ox)[None]  # [1, T, m]
        rz = (ar.center[1, tg][:, sel] - oz)[None]
        grow = ar.radius[tg][:, sel] + r
        gx = (ar.half[0, tg][:, sel] + grow)[None]
        gz = (ar.half[1, tg][:, sel] + grow)[None]
        inv_x = _F32(1.0) / np.where(np.abs(dx) < 1e-12, _F32(1e-12), dx)[:, None, :]
        inv_z = _F32(1.0) / np.where(np.abs(dz) < 1e-12, _F32(1e-12), dz)[:, None, :]
        ax, bx = (rx - gx) * inv_x, (rx + gx) * inv_x
        az, bz = (rz - gz) * inv_z, (rz + gz) * inv_z
        tnear = np.maximum(np.minimum(ax, bx), np.minimum(az, bz))
        tfar = np.minimum(np.maximum(ax, bx), np.maximum(az, bz))
        inside = (np.abs(rx) < gx - TOUCH_DISTANCE) & (np.abs(rz) < gz - TOUCH_DISTANCE)
        skip = (inside & self._overlaps_start) | ~ar.active[tg][:, sel][None]
        t = np.maximum(np.maximum(tnear, self._s_lo), _F32(0.0))
        hit = (t <= tfar) & (t <= self._s_hi) & ~skip
        t = np.where(hit, t, np.inf).astype(_F32, copy=False)
        # Equal entry distances (a gold brick on its pyramid share a footprint): the collider nearer to
        # the sphere's centre height is met first.
        h = self.h0 + self.slope * t
        gap = np.maximum(np.maximum(self._bottom - h, h - self._top), _F32(0.0))
        best = np.argmin(np.where(hit, t + _F32(1e-3) * gap, np.inf), axis=1)  # [R, m]
        tmin = np.take_along_axis(t, best[:, None, :], 1)[:, 0, :]
        tags = np.take_along_axis(ar.tag[tg][:, sel], best, 0)
        if ar.has_bounds:
            tb = self._cast_bounds(dx, dz, ox, oz, ar.bounds[:, sel], r)
            closer = tb < tmin
            tmin = np.where(closer, tb, tmin)
            tags = np.where(closer, np.int16(ar.bounds_tag), tags)
        length = _F32(spec.ray_length)
        hit_any = tmin <= length
        slot = self._lut[tags + 1]
        ntags = len(spec.detectable_tags)
        frame = np.empty((spec.num_rays, ntags + 2, len(ox)), _F32)
        np.logical_and(slot[:, None, :] == self._tag_range, hit_any[:, None, :], out=frame[:, :ntags], casting="unsafe")
        np.logical_not(hit_any, out=frame[:, ntags], casting="unsafe")
        np.divide(tmin, length, out=frame[:, ntags + 1])
        np.copyto(frame[:, ntags + 1], _F32(1.0), where=~hit_any)
        return frame.transpose(2, 0, 1).reshape(len(ox), -1)

    def _cast_bounds(
        self, dx: np.ndarray, dz: np.ndarray, ox: np.ndarray, oz: np.ndarray, bounds: np.ndarray, r: np.float32
    ) -> np.ndarray:
        """Distance [R, m] to the first outer wall a ray meets below the walls' top, else inf."""
        out = []
        for d, o, lo, hi in ((dx, ox, bounds[0], bounds[2]), (dz, oz, bounds[1], bounds[3])):
            room_hi = hi - r - o
            room_lo = lo + r - o
            room_hi = np.where(room_hi < TOUCH_DISTANCE, np.inf, room_hi)
            room_lo = np.where(room_lo > -TOUCH_DISTANCE, -np.inf, room_lo)
            safe = np.where(np.abs(d) < 1e-12, _F32(1e-12), d)
            t = np.where(d > 0, room_hi, room_lo) / safe
            out.append(np.where(t >= 0, t, np.inf))
        tb = np.minimum(out[0], out[1]).astype(_F32)
        return np.where(tb <= self._bounds_s_hi, tb, np.inf).astype(_F32)

    def observe(self) -> np.ndarray:
        return self.perceive()

    def restart(self, areas: np.ndarray) -> np.ndarray:
        return self.perceive(areas)


class PyramidsEnv(BaseEnv):
    """``num_areas`` Pyramids areas, one agent each (agent id = area index), behaviour ``Pyramids``."""

    def __init__(self, num_areas: int = 16, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        n = int(num_areas)
        if n < 1:
            raise EnvError(f"Pyramids needs num_areas >= 1, got {num_areas}")
        self._n = n
        # Upstream reads no environment parameters: any name is refused with the (empty) list.
        self._params = EnvParameters(defaults={}, values=dict(parameters or {}))
        self._rng = np.random.default_rng(seed)
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
        self.arena = Arena(
            n,
            [agent],
            [*walls, *objects],
            bounds=BOUNDS,
            bounds_height=OUTER_WALL_HEIGHT,
            bounds_tag="wall",
            num_agents=1,
            run_speed=RUN_SPEED,
            turn_speed=TURN_SPEED,
            dt=DT,
            gravity=GRAVITY,
            extra_tags=("switchOn",),
        )
        ar = self.arena
        self._slot = {name: ar.slot[name] for name in ("switch", "pyramid", "gold_top", "rubble", "gold")}
        self._stones = np.array([ar.slot[f"stone{i}"] for i in range(NUM_STONES)], np.intp)
        self._tag_off, self._tag_on = ar.tag_id("switchOff"), ar.tag_id("switchOn")
        self.sensors: list[RaySensor | TiltedRaySensor] = [
            RaySensor(ar, spec) if rise == 0 else TiltedRaySensor(ar, spec, rise) for spec, rise in SENSORS
        ]
        obs_specs = [ObservationSpec((spec.size,), spec.observation_name) for spec, _ in SENSORS]
        self._spec = BehaviorSpec(
            observation_specs=(*obs_specs, ObservationSpec((VECTOR_SIZE,), VECTOR_NAME)),
            action_spec=ActionSpec(discrete_branches=(len(ACTIONS),)),
        )
        self._ids = np.arange(n, dtype=np.int32)
        self._ids.flags.writeable = False
        self._steps = np.zeros(n, np.int32)  # decisions taken in the current episode
        self.switch_on = np.zeros(n, bool)
        self.pyramid_room = np.zeros(n, np.intp)
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
        every = np.arange(self._n)
        self._reset_areas(every)
        self._act(self._no_op)
        self._started = True
        self._decision = DecisionSteps(obs=self._observe(), reward=np.zeros(self._n, _F32), agent_id=self._ids)
        self._terminal = self._empty_terminal()

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        self._check_behavior(behavior_name)
        disc = np.asarray(actions.discrete)
        if disc.shape != (self._n, 1):
            raise EnvError(f"Pyramids expects discrete actions of shape ({self._n}, 1), got {tuple(disc.shape)}")
        cont = np.asarray(actions.continuous)
        if cont.size:
            raise EnvError(f"Pyramids has no continuous actions, got shape {tuple(cont.shape)}")
        act = disc[:, 0]
        if act.min() < 0 or act.max() >= len(ACTIONS):
            raise EnvError(f"Pyramids actions must be in 0..{len(ACTIONS) - 1}, got {act.min()}..{act.max()}")
        self._act(act)

    def step(self) -> None:
        if not self._started:
            raise EnvError("call reset() before step()")
        ar = self.arena
        ar.clear_touches()
        ar.step(DECISION_PERIOD)
        touched = ar.touch_static[0]  # [W, n]
        won = touched[self._slot["gold"]].copy()
        knocked = touched[self._slot["pyramid"]] & ~won
        pressed = touched[self._slot["switch"]] & ~self.switch_on
        if pressed.any():
            self._press(np.flatnonzero(pressed))
        if knocked.any():
            self._knock(np.flatnonzero(knocked))
        steps = self._steps
        steps += 1
        reward = np.full(self._n, DECISION_PENALTY, _F32)
        obs = self._observe()
        ended = won | (steps >= MAX_DECISIONS)
        if ended.any():
            idx = np.flatnonzero(ended)
            win = won[idx]
            final = np.where(win, _F32(GOLD_REWARD), reward[idx])
            self._terminal = TerminalSteps(
                obs=[o[idx] for o in obs], reward=final, agent_id=self._ids[idx], interrupted=~win
            )
            self._reset_areas(idx)
            for o, new in zip(obs, self._observe(idx), strict=True):
                o[idx] = new
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
        self._params.set(key, value)

    # ------------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------------

    def _act(self, actions: np.ndarray) -> None:
        cmd = ACTIONS[actions].T[:, None, :]  # [3, 1, n]
        self.arena.drive(cmd[0], cmd[1], cmd[2])

    def _observe(self, areas: np.ndarray | None = None) -> list[np.ndarray]:
        """Every sensor's observation [m, size] (ML-Agents' name order) for all areas or the given ones."""
        ar = self.arena
        sel = slice(None) if areas is None else areas
        rays = [s.perceive(areas) for s in self.sensors]
        fx, fz = np.sin(ar.heading[0, sel]), np.cos(ar.heading[0, sel])
        vx, vz = ar.vel[0, 0, sel], ar.vel[1, 0, sel]
        vec = np.zeros((len(fx), VECTOR_SIZE), _F32)
        vec[:, 0] = self.switch_on[sel]
        vec[:, 1] = vx * fz - vz * fx  # InverseTransformDirection(velocity): right, up, forward
        vec[:, 3] = vx * fx + vz * fz
        return [*rays, vec]

    def _place(self, rooms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PlaceObject: uniform positions within SPAWN_HALF of the given rooms' centres (any shape)."""
        u = self._rng.uniform(-SPAWN_HALF, SPAWN_HALF, (2, *rooms.shape)).astype(_F32)
        return ROOMS[rooms, 0] + u[0], ROOMS[rooms, 1] + u[1]

    def _reset_areas(self, idx: np.ndarray) -> None:
        """OnEpisodeBegin for the given areas: rooms shuffled, agent, switch and stones placed."""
        ar, m = self.arena, idx.size
        rooms = np.argsort(self._rng.random((m, len(ROOMS))), axis=1)  # a random permutation per area
        ax, az = self._place(rooms[:, 0])
        ar.pos[0, 0, idx], ar.pos[1, 0, idx] = ax, az
        ar.heading[0, idx] = np.radians(self._rng.integers(0, 360, m)).astype(_F32)
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
        self._steps[idx] = 0

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

    def _check_behavior(self, name: str) -> None:
        if name != BEHAVIOR_NAME:
            raise EnvError(f"unknown behavior '{name}'; this env has: {BEHAVIOR_NAME}")

    def _empty_terminal(self) -> TerminalSteps:
        return TerminalSteps(
            obs=[np.zeros((0, *o.shape), _F32) for o in self._spec.observation_specs],
            reward=np.zeros(0, _F32),
            agent_id=np.zeros(0, np.int32),
            interrupted=np.zeros(0, bool),
        )
