"""WallJump: a vectorised port of Unity ML-Agents' WallJump example, two behaviours in one env.

An agent must reach a goal behind a wall. Low walls can be jumped; a high wall needs the block pushed
against it as a step. Each episode picks the wall, and with it the behaviour that decides: no wall or a
small wall -> ``SmallWallJump``, a big wall -> ``BigWallJump`` (upstream swaps the agent's model with
``SetModel``), so one env trains two policies at once. Facts from upstream
(Project/Assets/ML-Agents/Examples/WallJump: WallJumpAgent.cs, WallJumpSettings.cs,
Prefabs/WallJumpArea.prefab, Scenes/WallJump.unity):

* Area (Unity axes: x right, y up, z forward; origin at the area's centre): the ground's collider spans
  x in [-10.5, 10.5], z in [-14.5, 6.5], top at y = 0.45; nothing fences it, so agent and block can fall
  off. The wall is a box spanning x in [-10, 10], z in [-2.73, -1.23], y in [-h/2, h/2] for a wall
  "height" h (its local scale): its top is h/2, so h = 4 stands 1.55 m above the ground and h = 8 3.55 m.
  The goal is a trigger box x in [4.37, 8.37], z in [0.93, 4.93], y in [0.49, 5.49]. The scene has 24
  areas. Physics step 0.02 s, gravity 9.81 x 2.75 (the scene's gravityMultiplier).
* Agent: a 1 m cube, mass 25, drag 2, turning only about y; its heading carries over between episodes
  (it starts facing -z). Episode start: x uniform in [-9, 9], z = -12, at rest; MaxStep 2000 physics
  steps (400 decisions: DecisionPeriod 5, actions repeated in between), reaching it interrupts.
* Block: 3 x 2 x 3 m (a 0.01-scaled mesh with a 300 x 200 x 300 collider), mass 10, drag 1, rotation and
  height frozen (y = 1.5, so it floats 5 cm above the ground: no floor friction); it spawns uniformly in
  x in [-8.1, 8.1], z in [-9.77, -2.77].
* Actions, 4 branches (3, 3, 3, 2) (WallJumpAgent.MoveAgent), acting on every physics step: forward
  (1 forward, 2 back), turn (1: -6 degrees, 2: +6 degrees per physics step, Rotate(up, 300 dt)), side
  (1 left, 2 right, 0.6 strength, replacing any forward move), jump. A move is a velocity change of
  agentRunSpeed 3 m/s per physics step along the direction, halved when not "large grounded" (an
  overlap box 5 cm below the agent). A jump starts when the jump branch is 1, no jump is running and the
  agent is "small grounded" (a ray 1 m down from 5 cm under its centre meets a top face): for 0.2 s the
  velocity moves by at most 10 m/s per physics step (Vector3.MoveTowards) towards 777 * dt times the
  offset to a target 2.75 m above the jump's start (plus the move direction); otherwise, when not large
  grounded, a downward acceleration of 111 m/s^2 (fallingForce) pulls it down.
* Rewards: -0.0005 per physics step (-0.0025 per decision); reaching the goal while small grounded sets
  the decision's reward to +1 and ends the episode; the agent's or the block's centre leaving everything
  below it (Physics.Raycast down 20 m) sets -1 and ends it.
* Episode configuration (OnEpisodeBegin + ConfigureAgent): uniform in 0..4: 0 -> wall height
  ``no_wall_height`` (default 0), SmallWallJump; 1 -> ``small_wall_height`` (4), SmallWallJump; 2, 3, 4 ->
  ``big_wall_height`` (8), BigWallJump. The parameters are read at each episode start, so samplers
  (``set_environment_sampler``) give every episode its own draw; negative draws count as 0.
* Observations: three sensors of 6 stacked frames each (the prefab's NumStackedVectorObservations 6 and
  m_ObservationStacks 6), ordered by name as ML-Agents sorts sensors: ``OffsetRayPerceptionSensor`` and
  ``RayPerceptionSensor``, both with tags (wall, goal, block), 3 rays per direction over 90 degrees
  (7 rays x 5 floats = 35 per frame), sphere cast radius 0.5, length 20, the offset one starting 2.5 m
  and ending 5 m above the agent's centre (it rises and looks over walls); and the vector sensor
  ``VectorSensor_size4``: the agent's position relative to the ground's transform (0, 0, -4) / 20 and
  small grounded (1 or 0). One frame is 35 + 35 + 4 = 74 floats (the "74 observations" of the docs);
  with the prefab's stacking the policy sees 6 x 74 = 444.

Approximations. The agent's cube is a circle of radius 0.5 in the floor plane (its rotation does not
change its contacts); vertical motion is a height and vertical speed per agent with support surfaces (the
ground, the block's top, the wall's top): an agent whose bottom passes a top face it was above lands on
it, otherwise the box pushes it out sideways. Contacts are one pass of position projection per physics
step, inelastic, frictionless between bodies (PhysX iterates and has friction); an agent standing on the
block neither rides nor drags it. Ground friction is Coulomb with PhysX's default material (0.6), acting
while the agent rests on a surface and is not jumping. Sphere casts: the horizontal sensor is exact
against the boxes (a sphere at that height meets a box within r vertically, as a rounded box in the
plane, mlx.envs.native.arena's cast); the rising offset sensor casts against the boxes grown by the full radius
and counts a hit where the ray is still below the grown top at entry. The ground is never a ray target
(casts start touching it, so Unity ignores it too). Outcomes are checked after every physics step; the
first one (goal or fall) ends the episode at the end of its decision, with the terminal observation of
that moment and the new episode starting at the next decision (upstream starts it at once and plays the
rest of the decision in it). Bodies start on the ground (upstream drops them from 5 cm).

Speed: with ``mlx.envs.native.arena.COMPILED`` (the default) a decision's physics steps and the observations
run as numba kernels (mlx.envs.native.walljump_kernels, one call each) doing the numpy methods' float32
arithmetic; those methods stay the reference (tests/test_walljump_kernels.py: trajectories equal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, EnvError, ObservationSpec
from mlx.envs.native import arena as arena_module
from mlx.envs.native import walljump_kernels
from mlx.envs.native.arena import contact_depth, contact_normal
from mlx.envs.native.base import F32, FrameStack, NativeEnv
from mlx.envs.native.rays import cast_rounded_boxes_xz, encode_frame, ray_basis_xz, ray_directions_xz
from mlx.envs.native.render import FLOOR, VOID, Canvas, tag_colour

SMALL, BIG = 0, 1
BEHAVIORS = ("SmallWallJump", "BigWallJump")
DT = 0.02
DECISION_PERIOD = 5
MAX_STEP = 2000  # physics steps (Agent.MaxStep)
MAX_DECISIONS = MAX_STEP // DECISION_PERIOD
STEP_PENALTY = -0.0005  # per physics step (AddReward in MoveAgent)
GRAVITY = 9.81 * 2.75
RUN_SPEED = 3.0  # WallJumpSettings.agentRunSpeed, a velocity change per physics step
TURN_STEP = math.radians(300.0 * DT)
JUMP_HEIGHT = 2.75  # WallJumpSettings.agentJumpHeight
JUMP_TIME = 0.2
JUMP_GAIN = 777.0 * DT  # agentJumpVelocity * fixedDeltaTime
JUMP_MAX_CHANGE = 10.0  # agentJumpVelocityMaxChange
FALLING_FORCE = 111.0
AGENT_HALF = 0.5
AGENT_MASS, AGENT_DRAG = 25.0, 2.0
FRICTION = 0.6  # PhysX's default material on agent and ground (average combine)
BLOCK_HALF = 1.5  # in x and z
BLOCK_Y, BLOCK_HALF_Y = 1.5, 1.0  # height frozen: y in [0.5, 2.5]
BLOCK_MASS, BLOCK_DRAG = 10.0, 1.0
GROUND_TOP = 0.45
GROUND = (-10.5, -14.5, 10.5, 6.5)  # xmin, zmin, xmax, zmax
GROUND_ORIGIN_Z = -4.0  # the ground's transform, subtracted from the observed position
WALL_Z, WALL_HALF = -1.98, (10.0, 0.75)
GOAL_CENTER, GOAL_HALF, GOAL_Y = (6.37, 2.93), (2.0, 2.0), (0.49, 5.49)
AGENT_SPAWN_X, AGENT_SPAWN_Z = 9.0, -12.0
BLOCK_SPAWN_CENTER, BLOCK_SPAWN_HALF = (0.0, -6.27), (8.1, 3.5)
INITIAL_HEADING = math.pi  # the prefab's agent faces -z
EPS = 1e-4
DEFAULT_PARAMETERS = {"no_wall_height": 0.0, "small_wall_height": 4.0, "big_wall_height": 8.0}
# Episode configuration (0..4) -> the parameter giving its wall height, and its behaviour.
CONFIG_PARAMETER = ("no_wall_height", "small_wall_height", "big_wall_height", "big_wall_height", "big_wall_height")
CONFIG_BEHAVIOR = np.array([SMALL, SMALL, BIG, BIG, BIG])

TAGS = ("wall", "goal", "block")
RAYS_PER_DIRECTION, MAX_RAY_DEGREES, CAST_RADIUS, RAY_LENGTH = 3, 90.0, 0.5, 20.0
STACKS = 6
NUM_RAYS = 2 * RAYS_PER_DIRECTION + 1
RAY_FRAME = NUM_RAYS * (len(TAGS) + 2)  # 35
VECTOR_FRAME = 4
OFFSET_START, OFFSET_END = 2.5, 5.0  # OffsetRayPerceptionSensor's vertical offsets
SENSOR_NAMES = (
    f"StackingSensor_size{STACKS}_OffsetRayPerceptionSensor",
    f"StackingSensor_size{STACKS}_RayPerceptionSensor",
    f"StackingSensor_size{STACKS}_VectorSensor_size{VECTOR_FRAME}",
)
FRAME_SIZES = (RAY_FRAME, RAY_FRAME, VECTOR_FRAME)


class WallJumpEnv(NativeEnv):
    """``num_areas`` WallJump areas, one agent each (agent id = area index), behaviours SmallWallJump and
    BigWallJump; each agent decides under the behaviour of its current episode (``behavior``)."""

    behaviors = BEHAVIORS
    parameter_defaults = DEFAULT_PARAMETERS
    sampled_parameters = tuple(DEFAULT_PARAMETERS)  # wall heights are read at each episode start
    max_decisions = MAX_DECISIONS

    def __init__(self, num_areas: int = 24, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=tuple(
                ObservationSpec((STACKS * f,), name) for f, name in zip(FRAME_SIZES, SENSOR_NAMES, strict=True)
            ),
            action_spec=ActionSpec(discrete_branches=(3, 3, 3, 2)),
        )
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        # Agent state: position (x, y, z) of the cube's centre, velocity, heading (Unity yaw), jump timer.
        self.pos = np.zeros((3, n), F32)
        self.vel = np.zeros((3, n), F32)
        self.heading = np.full(n, INITIAL_HEADING, F32)
        self.jump_left = np.zeros(n, F32)
        self.jump_start = np.zeros(n, F32)
        self.resting = np.ones(n, bool)  # on a surface after the last physics step (ground friction)
        self.block = np.zeros((2, n), F32)  # block centre (x, z); its height is frozen
        self.block_vel = np.zeros((2, n), F32)
        self.wall_height = np.zeros(n, F32)  # the wall's local scale y: top at height / 2
        self.behavior = np.zeros(n, np.intp)  # SMALL or BIG: who decides this episode
        self._outcome = np.zeros(n, F32)  # +1 goal, -1 fall, 0 still running (latched within a decision)
        self._penalty = np.zeros(n, F32)  # this decision's step penalties so far
        # Commands from the last actions, acting on every physics step until changed.
        self._forward = np.zeros(n, F32)
        self._side = np.zeros(n, F32)
        self._turn = np.zeros(n, F32)
        self._jump = np.zeros(n, bool)
        self._stacks = [FrameStack(n, f, STACKS) for f in FRAME_SIZES]
        self._block_half = np.full((2, 1), BLOCK_HALF, F32)
        self._wall_center = np.array([[0.0], [WALL_Z]], F32)
        self._wall_half = np.array([[WALL_HALF[0]], [WALL_HALF[1]]], F32)
        # Cached geometry of the current state (see _measure and _ground_check).
        self._block_gap2 = np.zeros(n, F32)
        self._wall_gap2 = np.zeros(n, F32)
        self._below = np.zeros(n, F32)
        self._small = np.ones(n, bool)
        self._rays = ray_basis_xz(RAYS_PER_DIRECTION, MAX_RAY_DEGREES)
        self._all_areas = np.arange(n, dtype=np.intp)

    # ------------------------------------------------------------------------------------------------
    # NativeEnv hooks
    # ------------------------------------------------------------------------------------------------

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        self._set_commands(np.arange(self.n) if rows is None else rows, discrete)  # None: before reset()

    def _no_actions(self) -> None:
        self._set_commands(np.arange(self.n), np.zeros((self.n, 4), np.int64))

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        if arena_module.COMPILED:
            return self._compiled_advance()
        self._outcome[:] = 0.0
        self._penalty[:] = 0.0
        for _ in range(DECISION_PERIOD):
            running = self._outcome == 0
            self._penalty += np.where(running, F32(STEP_PENALTY), F32(0.0))
            self._physics_step()
            self._check_outcomes(running)
        ended = self._outcome != 0
        return np.where(ended, self._outcome, self._penalty).astype(F32), ended

    def _compiled_advance(self) -> tuple[np.ndarray, np.ndarray]:
        """_advance by walljump_kernels.physics (the same float32 arithmetic). The headings' sin and cos stay
        numpy's: the heading of each physics step (before its turn) is the numpy form's running sum."""
        n = self.n
        seq = np.empty((DECISION_PERIOD + 1, n), F32)
        seq[0] = self.heading
        turn = self._turn * F32(TURN_STEP)
        for s in range(DECISION_PERIOD):
            np.add(seq[s], turn, out=seq[s + 1])
        self.heading[:] = seq[DECISION_PERIOD]
        steps = seq[:DECISION_PERIOD]
        # The kernel updates the state and the cached geometry (resting, _block_gap2 ... _small) in place.
        reward = np.empty(n, F32)
        ended = np.empty(n, bool)
        walljump_kernels.physics(
            np.sin(steps), np.cos(steps), self.pos, self.vel, self.jump_left, self.jump_start, self.resting,
            self.block, self.block_vel, self.wall_height, self._forward, self._side, self._jump, self._block_gap2,
            self._wall_gap2, self._below, self._small, self._outcome, self._penalty, reward, ended,
        )  # fmt: skip
        return reward, ended

    def _observe(self) -> list[np.ndarray]:
        return [s.push(f) for s, f in zip(self._stacks, self._perceive(None), strict=True)]

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            if value < 0:
                raise EnvError(f"environment parameter '{key}' is a wall height and must be >= 0 (got {value})")

    def render(self, areas: Sequence[int] | np.ndarray | None = None, pixels: int = 256) -> np.ndarray:
        """Pictures of areas: the ground from above (+x right, +z up; ``pixels`` tall) and, to its right,
        a side view on the same rows (height grows to the right) that shows the wall's height, the block
        and the agent's jumps. The wall is lighter the higher it is; it is left out where it stays
        below the ground's top (no wall). The void around the ground is where things fall."""
        idx = np.arange(self.n)[slice(None) if areas is None else areas]
        m = len(idx)
        x0, z0, x1, z1 = GROUND
        zc, zh = (z0 + z1) / 2, (z1 - z0) / 2
        top = Canvas((x0 - 1, z0 - 1, x1 + 1, z1 + 1), pixels)
        side = Canvas((-0.5, z0 - 1, 7.0, z1 + 1), scale=top.scale)  # heights -0.5..7 m on the same rows
        half_height = self.wall_height[idx] / 2  # the wall spans -h/2..h/2
        shade = 0.55 + 0.45 * np.clip(self.wall_height[idx] / DEFAULT_PARAMETERS["big_wall_height"], 0, 1)
        wall = (shade[:, None] * np.array(tag_colour("wall"))[None, :]).astype(np.uint8)
        has_wall = half_height > GROUND_TOP
        ax, ay, az = self.pos[:, idx]
        bx, bz = self.block[:, idx]
        goal, block, agent = tag_colour("goal"), tag_colour("block"), tag_colour("agent")
        # From above: ground, goal, wall, block, agent with its heading.
        above = top.blank(m, VOID)
        top.fill(above, (x0 + x1) / 2, zc, (x1 - x0) / 2, zh, FLOOR)
        top.fill(above, *GOAL_CENTER, *GOAL_HALF, goal)
        top.fill(above, 0.0, WALL_Z, *WALL_HALF, wall, present=has_wall)
        top.fill(above, bx, bz, BLOCK_HALF, BLOCK_HALF, block)
        top.fill(above, ax, az, 0.0, 0.0, agent, radius=AGENT_HALF)
        top.heading(above, ax, az, np.sin(self.heading[idx]), np.cos(self.heading[idx]), AGENT_HALF)
        # From the side (a = height, b = z): the wall's foot is hidden by the ground drawn over it.
        beside = side.blank(m, VOID)
        side.fill(beside, (GOAL_Y[0] + GOAL_Y[1]) / 2, GOAL_CENTER[1], (GOAL_Y[1] - GOAL_Y[0]) / 2, GOAL_HALF[1], goal)
        side.fill(beside, 0.0, WALL_Z, half_height, WALL_HALF[1], wall, present=has_wall)
        side.fill(beside, (GROUND_TOP - 0.5) / 2, zc, (GROUND_TOP + 0.5) / 2, zh, FLOOR)
        side.fill(beside, BLOCK_Y, bz, BLOCK_HALF_Y, BLOCK_HALF, block)
        side.fill(beside, ay, az, AGENT_HALF, AGENT_HALF, agent)
        gap = np.full((m, top.height, 2), 90, np.uint8)[..., None].repeat(3, -1)
        return np.concatenate([above, gap, beside], axis=2)

    # ------------------------------------------------------------------------------------------------
    # episodes
    # ------------------------------------------------------------------------------------------------

    def _reset_areas(self, idx: np.ndarray) -> None:
        """OnEpisodeBegin then ConfigureAgent for the given areas (their heading carries over)."""
        m = idx.size
        rng = self._rng
        u = rng.random((4, m), dtype=F32)
        self.block[0, idx] = BLOCK_SPAWN_CENTER[0] + (2 * u[0] - 1) * BLOCK_SPAWN_HALF[0]
        self.block[1, idx] = BLOCK_SPAWN_CENTER[1] + (2 * u[1] - 1) * BLOCK_SPAWN_HALF[1]
        self.block_vel[:, idx] = 0.0
        self.pos[0, idx] = (2 * u[2] - 1) * AGENT_SPAWN_X
        self.pos[1, idx] = GROUND_TOP + AGENT_HALF
        self.pos[2, idx] = AGENT_SPAWN_Z
        self.vel[:, idx] = 0.0
        self.jump_left[idx] = 0.0
        self.resting[idx] = True
        config = rng.integers(0, 5, size=m)
        for c, key in enumerate(CONFIG_PARAMETER[:3]):
            rows = idx[(config == c) if c < 2 else (config >= 2)]
            if rows.size:
                self.wall_height[rows] = np.maximum(self._params.draw(key, rows), 0.0)
        self.behavior[idx] = CONFIG_BEHAVIOR[config]
        self._measure()
        self._ground_check()

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        return [s.restart(idx, f) for s, f in zip(self._stacks, self._perceive(idx), strict=True)]

    def _set_commands(self, idx: np.ndarray, disc: np.ndarray) -> None:
        d = np.asarray(disc, np.int64)
        self._forward[idx] = np.array([0.0, 1.0, -1.0], F32)[d[:, 0]]
        self._turn[idx] = np.array([0.0, -1.0, 1.0], F32)[d[:, 1]]
        self._side[idx] = np.array([0.0, -0.6, 0.6], F32)[d[:, 2]]
        self._jump[idx] = d[:, 3] == 1

    # ------------------------------------------------------------------------------------------------
    # physics
    # ------------------------------------------------------------------------------------------------

    def _physics_step(self) -> None:
        """One FixedUpdate (MoveAgent) and one PhysX step for every area; then the outcome checks."""
        pos, vel = self.pos, self.vel
        small, large = self._small, self._large_grounded()
        # MoveAgent: the move direction from the heading before this step's turn.
        sh, ch = np.sin(self.heading), np.cos(self.heading)
        scale = np.where(large, F32(1.0), F32(0.5))
        f = np.where(self._side != 0, F32(0.0), self._forward) * scale
        r = self._side * scale
        dir_x = f * sh + r * ch
        dir_z = f * ch - r * sh
        start = self._jump & (self.jump_left <= 0) & small
        self.jump_left[start] = JUMP_TIME
        self.jump_start[start] = pos[1, start]
        self.heading += self._turn * F32(TURN_STEP)
        jumping = self.jump_left > 0
        if np.count_nonzero(jumping):  # (count_nonzero: .any() without its Python wrapper, ~1 us)
            # Vector3.MoveTowards(velocity, gain * (target - position), max change)
            tx = F32(JUMP_GAIN) * dir_x - vel[0]
            ty = F32(JUMP_GAIN) * (self.jump_start + F32(JUMP_HEIGHT) - pos[1]) - vel[1]
            tz = F32(JUMP_GAIN) * dir_z - vel[2]
            dist = np.sqrt(tx * tx + ty * ty + tz * tz)
            k = np.where(jumping, np.minimum(F32(1.0), F32(JUMP_MAX_CHANGE) / np.maximum(dist, F32(1e-6))), F32(0.0))
            vel[0] += tx * k
            vel[1] += ty * k
            vel[2] += tz * k
        # Queued forces, then PhysX: gravity (plus fallingForce in the air), damping, ground friction.
        vel[0] += F32(RUN_SPEED) * dir_x
        vel[2] += F32(RUN_SPEED) * dir_z
        vel[1] -= np.where(jumping | large, F32(GRAVITY * DT), F32((GRAVITY + FALLING_FORCE) * DT))
        self.jump_left -= F32(DT)
        vel *= F32(1.0 - AGENT_DRAG * DT)
        self.block_vel *= F32(1.0 - BLOCK_DRAG * DT)
        rub = self.resting & ~jumping
        if np.count_nonzero(rub):
            speed = np.hypot(vel[0], vel[2])
            keep = np.maximum(F32(1.0) - F32(FRICTION * GRAVITY * DT) / np.maximum(speed, F32(1e-9)), F32(0.0))
            keep = np.where(rub, keep, F32(1.0))
            vel[0] *= keep
            vel[2] *= keep
        bottom_before = pos[1] - F32(AGENT_HALF)
        pos += vel * F32(DT)
        self.block += self.block_vel * F32(DT)
        self._contacts(bottom_before)
        self._measure()
        self._support(bottom_before)
        self._ground_check()

    def _contacts(self, bottom_before: np.ndarray) -> None:
        """Sideways contacts: agent-block (masses shared), then agent-wall and block-wall (static)."""
        pos, vel = self.pos, self.vel
        bottom = pos[1] - F32(AGENT_HALF)
        block_top = F32(BLOCK_Y + BLOCK_HALF_Y)
        beside = (bottom < block_top) & (bottom_before < block_top - F32(EPS))
        # Speed: each contact's normal only when something touches (contact_depth, then contact_normal).
        pen, parts = contact_depth(pos[0::2] - self.block, self._block_half, F32(AGENT_HALF))
        hit = beside & (pen > 0)
        if np.count_nonzero(hit):
            n = contact_normal(parts)
            wa, wb = 1.0 / AGENT_MASS, 1.0 / BLOCK_MASS
            k = F32(1.0 / (wa + wb))
            push = n * np.where(hit, pen, F32(0.0)) * k
            pos[0] += push[0] * F32(wa)
            pos[2] += push[1] * F32(wa)
            self.block -= push * F32(wb)
            vn = (vel[0] - self.block_vel[0]) * n[0] + (vel[2] - self.block_vel[1]) * n[1]
            j = np.where(hit, np.maximum(-vn, F32(0.0)), F32(0.0)) * k
            vel[0] += n[0] * j * F32(wa)
            vel[2] += n[1] * j * F32(wa)
            self.block_vel -= n * j * F32(wb)
        top = self.wall_height * F32(0.5)
        beside = (bottom < top) & (bottom_before < top - F32(EPS))
        pen, parts = contact_depth(pos[0::2] - self._wall_center, self._wall_half, F32(AGENT_HALF))
        hit = beside & (pen > 0)
        if np.count_nonzero(hit):
            n = contact_normal(parts)
            pos[0] += np.where(hit, n[0] * pen, F32(0.0))
            pos[2] += np.where(hit, n[1] * pen, F32(0.0))
            vn = np.where(hit, np.minimum(vel[0] * n[0] + vel[2] * n[1], F32(0.0)), F32(0.0))
            vel[0] -= n[0] * vn
            vel[2] -= n[1] * vn
        tall = top > F32(BLOCK_Y - BLOCK_HALF_Y)
        pen, parts = contact_depth(self.block - self._wall_center, self._wall_half + F32(BLOCK_HALF), F32(0.0))
        hit = tall & (pen > 0)
        if np.count_nonzero(hit):
            n = contact_normal(parts)
            self.block += n * np.where(hit, pen, F32(0.0))
            vn = np.where(hit, np.minimum(self.block_vel[0] * n[0] + self.block_vel[1] * n[1], F32(0.0)), F32(0.0))
            self.block_vel -= n * vn

    def _measure(self) -> None:
        """Where the agent's centre is in the plane relative to the block and the wall (cached for the
        support, ground checks and the next step's large ground check)."""
        x, z = self.pos[0], self.pos[2]
        ex = np.maximum(np.abs(x - self.block[0]) - F32(BLOCK_HALF), F32(0.0))
        ez = np.maximum(np.abs(z - self.block[1]) - F32(BLOCK_HALF), F32(0.0))
        self._block_gap2 = ex * ex + ez * ez  # squared distance from the centre to the block's footprint
        ex = np.maximum(np.abs(x) - F32(WALL_HALF[0]), F32(0.0))
        ez = np.maximum(np.abs(z - F32(WALL_Z)) - F32(WALL_HALF[1]), F32(0.0))
        self._wall_gap2 = ex * ex + ez * ez

    def _support(self, bottom_before: np.ndarray) -> None:
        """Landing: the highest top face under the agent that it was above stops its fall."""
        pos, vel = self.pos, self.vel
        x, z = pos[0], pos[2]
        r = F32(AGENT_HALF)
        r2 = r * r
        on_ground = (x > GROUND[0] - r) & (x < GROUND[2] + r) & (z > GROUND[1] - r) & (z < GROUND[3] + r)
        support = np.where(on_ground, F32(GROUND_TOP), F32(-np.inf))
        block_top = F32(BLOCK_Y + BLOCK_HALF_Y)
        on_block = (self._block_gap2 < r2) & (bottom_before >= block_top - F32(EPS))
        support = np.where(on_block, np.maximum(support, block_top), support)
        top = self.wall_height * F32(0.5)
        on_wall = (self._wall_gap2 < r2) & (bottom_before >= top - F32(EPS))
        support = np.where(on_wall, np.maximum(support, top), support)
        low = pos[1] - r <= support + F32(EPS)
        pos[1] = np.where(low, support + r, pos[1])
        vel[1] = np.where(low, np.maximum(vel[1], F32(0.0)), vel[1])
        self.resting = low

    def _ground_check(self) -> None:
        """Physics.Raycast straight down from 5 cm under the agent's centre (a ray starting inside a box
        does not hit it): the top it meets (-inf: nothing, the agent is off the platform) and whether it
        is within 1 m (DoGroundCheck(true), "small grounded")."""
        x, y, z = self.pos
        height = y - F32(0.05)
        over_ground = (x >= GROUND[0]) & (x <= GROUND[2]) & (z >= GROUND[1]) & (z <= GROUND[3])
        below = np.where(over_ground & (height >= GROUND_TOP), F32(GROUND_TOP), F32(-np.inf))
        block_top = F32(BLOCK_Y + BLOCK_HALF_Y)
        below = np.where((self._block_gap2 == 0) & (height >= block_top), np.maximum(below, block_top), below)
        top = self.wall_height * F32(0.5)
        below = np.where((self._wall_gap2 == 0) & (height >= top), np.maximum(below, top), below)
        self._below = below
        self._small = below >= height - F32(1.0)

    def _large_grounded(self) -> np.ndarray:
        """DoGroundCheck(false): a box (half 0.475, 0.5, 0.475) 5 cm below the centre overlaps the ground,
        the block or the wall (in the plane the box is a circle of radius 0.475, as the agent's cube)."""
        x, y, z = self.pos
        lo, hi = y - F32(0.55), y + F32(0.45)
        r = F32(0.475)
        ground = (lo < GROUND_TOP) & (x > GROUND[0] - r) & (x < GROUND[2] + r) & (z > GROUND[1] - r)
        ground &= z < GROUND[3] + r
        block = (self._block_gap2 < r * r) & (lo < BLOCK_Y + BLOCK_HALF_Y) & (hi > BLOCK_Y - BLOCK_HALF_Y)
        top = self.wall_height * F32(0.5)
        wall = (self._wall_gap2 < r * r) & (lo < top) & (hi > -top)
        return ground | block | wall

    def _check_outcomes(self, running: np.ndarray) -> None:
        """OnTriggerStay with the goal while small grounded: +1; nothing below agent or block: -1."""
        x, y, z = self.pos
        r = F32(AGENT_HALF)
        in_goal = (np.abs(x - GOAL_CENTER[0]) < GOAL_HALF[0] + r) & (np.abs(z - GOAL_CENTER[1]) < GOAL_HALF[1] + r)
        in_goal &= (y - r < GOAL_Y[1]) & (y + r > GOAL_Y[0])
        won = running & in_goal & self._small
        bx, bz = self.block
        block_off = (bx < GROUND[0]) | (bx > GROUND[2]) | (bz < GROUND[1]) | (bz > GROUND[3])
        lost = running & ~won & ((self._below == -np.inf) | block_off)
        self._outcome[won] = 1.0
        self._outcome[lost] = -1.0

    # ------------------------------------------------------------------------------------------------
    # observations
    # ------------------------------------------------------------------------------------------------

    def _perceive(self, idx: np.ndarray | None) -> list[np.ndarray]:
        """One frame of each sensor ([m, 35], [m, 35], [m, 4]) for all areas or the given ones."""
        sel = slice(None) if idx is None else idx
        if arena_module.COMPILED:
            cols = self._all_areas if idx is None else np.ascontiguousarray(idx, np.intp)
            m = cols.shape[0]
            frames = [np.empty((m, RAY_FRAME), F32), np.empty((m, RAY_FRAME), F32), np.empty((m, VECTOR_FRAME), F32)]
            d = ray_directions_xz(self._rays, self.heading[sel])  # numpy's sin and cos
            walljump_kernels.perceive(d, cols, self.pos, self.block, self.wall_height, self._small, *frames)
            return frames
        x, y, z = (c[sel] for c in self.pos)
        head = self.heading[sel]
        m = x.shape[0]
        # Boxes [T = wall, goal, block, m]: centre and half extents in the plane, vertical extent.
        top = self.wall_height[sel] * F32(0.5)
        cx = np.stack([np.zeros(m, F32), np.full(m, GOAL_CENTER[0], F32), self.block[0, sel]])
        cz = np.stack([np.full(m, WALL_Z, F32), np.full(m, GOAL_CENTER[1], F32), self.block[1, sel]])
        hx = np.array([[WALL_HALF[0]], [GOAL_HALF[0]], [BLOCK_HALF]], F32) * np.ones(m, F32)
        hz = np.array([[WALL_HALF[1]], [GOAL_HALF[1]], [BLOCK_HALF]], F32) * np.ones(m, F32)
        y0 = np.stack([-top, np.full(m, GOAL_Y[0], F32), np.full(m, BLOCK_Y - BLOCK_HALF_Y, F32)])
        y1 = np.stack([top, np.full(m, GOAL_Y[1], F32), np.full(m, BLOCK_Y + BLOCK_HALF_Y, F32)])
        d = ray_directions_xz(self._rays, head)  # [2, R, m]
        rel_x, rel_z = cx - x, cz - z
        rad = F32(CAST_RADIUS)
        # The horizontal sensor at the centre's height: a box within r vertically is a rounded box of
        # radius sqrt(r^2 - gap^2) in the plane (exact for a sphere).
        gap = np.maximum(np.maximum(y0 - y, y - y1), F32(0.0))
        grow = np.sqrt(np.maximum(rad * rad - gap * gap, F32(0.0)))
        # The rising sensor: from 2.5 m above the centre to 5 m above at 20 m; a hit where the ray enters
        # the box grown by r while still below its grown top. Speed: both sensors' boxes in one cast
        # (the horizontal one's 3, then the rising one's 3), each element computed as in its own cast.
        rel = np.stack([rel_x, rel_z])
        half = np.stack([hx, hz])
        t = cast_rounded_boxes_xz(
            d,
            np.concatenate([rel, rel], 1),
            np.concatenate([half, half], 1),
            np.concatenate([grow, np.full_like(hx, rad)]),
            np.concatenate([gap <= rad, np.ones_like(hx, bool)]),
        )
        t_low, t_off = t[:, :3], t[:, 3:]
        h0 = y + F32(OFFSET_START)
        slope = F32((OFFSET_END - OFFSET_START) / RAY_LENGTH)
        h_at = h0 + slope * t_off
        t_off = np.where((h_at <= y1[None] + rad) & (h_at >= y0[None] - rad), t_off, np.inf).astype(F32)
        inside = (np.abs(rel_x) < hx + rad) & (np.abs(rel_z) < hz + rad) & (h0 <= y1 + rad) & (h0 >= y0 - rad)
        t_off = np.where(inside[None], np.inf, t_off).astype(F32)
        grounded = self._small[sel]
        vector = np.stack(
            [x / F32(20.0), y / F32(20.0), (z - F32(GROUND_ORIGIN_Z)) / F32(20.0), grounded.astype(F32)], axis=1
        )
        return [self._encode(t_off), self._encode(t_low), vector.astype(F32)]

    @staticmethod
    def _encode(t: np.ndarray) -> np.ndarray:
        """[R, T, m] distances -> [m, R * 5]: one-hot tag of the nearest hit, miss flag, hit fraction."""
        best = t.argmin(1)  # [R, m]: the boxes are in TAGS order
        nearest = t[np.arange(t.shape[0])[:, None], best, np.arange(t.shape[2])]  # (take_along_axis, cheaper)
        return encode_frame(nearest, best, len(TAGS), RAY_LENGTH)
