"""DungeonEscape: a vectorised port of Unity ML-Agents' DungeonEscape (MA-POCA's sacrifice-and-escape example).

Three agents per platform share one group. A dragon walks from its lair to a cave (its portal); one agent
must catch it and dies doing so, the dragon drops a key, another agent carries the key to the door (the
lock) and the whole group is paid. Facts from upstream (Project/Assets/ML-Agents/Examples/DungeonEscape:
PushAgentEscape.cs, DungeonEscapeEnvController.cs, SimpleNPC.cs, Prefabs/DungeonEscapeAgent.prefab,
Prefabs/DungeonEscapePlatform.prefab, Prefabs/Column.prefab, Scenes/DungeonEscape.unity; the facts sheet
§5.4) on the 2-D arena engine (mlx.envs.native.arena: physics, touches; mlx.envs.native.rays: perception).

Design (all areas at once with numpy; agent id = 3 * area + k, group id = area + 1, nonzero and unique):

* Platform (platform-local coordinates, metres): a 25 x 25 floor inside outer walls whose inner faces are
  at +-12.5 (tag ``wall``, 0.5 m below to 4.5 m above the floor); four columns (tag ``wall``) at
  (+-4.5, +-4), each a 1.69 m square (their base box; the capsule above it is narrower); the door (tag
  ``lock``, solid) a 3.0 x 1.07 m box centred at (0, 12.6), so 0.43 m of it stands inside the room; the
  cave (tag ``portal``, solid) across the corner at (11.58, -11.59), turned 45 degrees: its collider is a
  4.69 x 1.77 m box whose room-side face cuts off the corner triangle x - z > 22.35 (legs 2.65 m).
* Agents: 1 m cubes (circles of radius 0.5 here), mass 10, drag 4, rotation frozen; a decision every 5
  physics steps of 0.02 s, the action repeated in between. Actions, one branch of 7 as PushBlock: 0 no-op,
  1 forward, 2 back, 3 turn right, 4 turn left, 5 strafe left (0.75), 6 strafe right (0.75); moving is a
  velocity change of agentRunSpeed 3 m/s per physics step, turning 200 degrees per second. Gravity
  9.81 x 1.5 (the scene's gravityMultiplier) scales the floor friction.
* Dragon (tag ``dragon``): a 1.5 m cube (a circle of radius 0.75 here), mass 10. On every physics step it
  faces the cave and moves walkSpeed * 0.02 m towards it (Rigidbody.MovePosition), walkSpeed drawn
  uniformly in [1, 7) at each group episode start.
* Events (checked after every physics step, in this order within a step; an area whose group episode
  has ended ignores later events of that decision):
  1. an agent holding the key touches the door: **group reward +1**, the group episode ends (not
     interrupted) for the agents still in;
  2. an agent touches the dragon: the dragon disappears, the agent dies (it leaves the group: a
     TerminalSteps entry, not interrupted, reward 0, then no decisions until the group's next episode),
     the key appears where the dragon was and a tombstone (tag ``wall``, solid, ~0.8 m square) where the
     agent was. Upstream calls this for every agent whose collision with the dragon is reported in that
     physics step; here only the lowest-index one dies (the dragon is gone for the others);
  3. an agent touches the cave (a hazard): if it holds the key, or no other agent is left, the group
     episode ends (no reward, not interrupted); otherwise it dies as in 2 (no key, no tombstone).
     Several agents on the cave in one step are taken in index order;
  4. the dragon touches the cave: the group episode ends (no reward, not interrupted);
  5. an agent overlapping the key (a trigger, ~0.6 m square at the dragon's height) picks it up (the
     lowest index if several): it now holds the key and the key disappears.
  6. after ``MAX_DECISIONS`` = 3000 decisions (MaxEnvironmentSteps 15000 physics steps): the group is
     interrupted (``interrupted=True`` for every agent still in; a group episode that ended otherwise
     in that decision is not interrupted).
* Rewards: the +1 of event 1 is the only reward, in ``group_reward``, paid to the agents still in (not
  to the dead one, which left the group before it: MA-POCA's posthumous credit is the trainer's job);
  ``reward`` (the individual reward) is always 0, as upstream (no existential penalty in this example).
  Environment parameter ``shared_reward`` (default 0; mlx's, as in ``sacrifice``) set to 1 also pays the
  group reward as individual reward to the agents that receive it, so that independent PPO, which reads
  only ``reward``, has the same task to learn (the POCA-against-PPO benchmark); leave it 0 for POCA, which
  adds groupmates' individual rewards to the group reward and would count it twice.
* Observations, in ML-Agents' sensor order (sorted by name):
  ``RBSensor`` (10): the RigidBody sensor with the agent as its own virtual root: model-space linear
  velocity (the agent's velocity in its own frame: right, up = 0, forward), then the local-space
  translation (0, 0, 0) and rotation (0, 0, 0, 1) of the body relative to that root (constant: the
  facts sheet marks the exact size NOT verified; 10 = one enabled pose, the root's own pose disabled, is
  [I] from ML-Agents' RigidBodyPoseExtractor); ``StackingSensor_size3_RayPerceptionSensor`` (360): 15
  rays (7 per direction over 60 degrees, alternating order), sphere radius 0.5, length 40, tags (wall,
  agent, dragon, key, lock, portal), 3 stacks cleared at each episode start; ``VectorSensor_size1`` (1):
  1 if the agent holds the key, else 0. The agent's own key (a disabled collider) is not seen by rays.
* Group episode start (ResetScene): every agent back in the group, in index order each placed uniformly
  in the central 20 x 20 m square (ground extents x spawnAreaMarginMultiplier 0.8) where a 5 x 5 m box
  (Physics.CheckBox, 1 m above the floor) overlaps nothing: columns, door, cave, the dragon, key and
  tombstone where they still are, the agents already placed and the others' (and its own) previous
  bodies if they were alive; random yaw, zero velocity, no key. Then key and tombstone hidden; the
  dragon back at its start with a new walkSpeed. Upstream turns the platform by a random multiple of 90
  degrees at each reset but puts the dragon back at its start position in *world* coordinates (captured
  before the first turn): relative to the platform (cave, door, columns) the dragon therefore starts at
  one of (0, 8), (8, 0), (0, -8), (-8, 0), uniformly, at 22.8 m or 12.1 m from the cave. That is
  simulated in platform coordinates (agents' spawn square and yaws are symmetric under the turn).

Scores: the mean group reward per group episode (1 when the group escapes through the door, else 0),
over the first 1000 group episodes to end with 64 platforms, seed 0 (``score`` in
tests/test_dungeonescape.py), measured when this env was written: ``scripted_actions`` (privileged state:
every agent intercepts the dragon, the first to touch it dies, the agent nearest the dropped key fetches
it and carries it to the door) 0.997 (``SCRIPTED_SCORE``; 25 decisions per episode on average); uniformly
random actions 0.107 (``RANDOM_SCORE``; 296 decisions per episode: the dragon mostly reaches its cave,
but random agents are fast in a small room and sometimes catch it, pick up the key and bump into the
door). The upstream benchmark is a mean group reward of 1.0. Throughput with random actions
(``benchmarks/env_throughput.py --envs dungeonescape``, agent steps per second, 2-core dev machine under
load ~1.8): 814 at 1 platform, 26,714 at 64 (the conf's num_areas; 31,000 at load 1.5), 73,299 at 4096;
the five physics steps per decision, each followed by the events, and three ray sensors of 15 rays over
13 colliders are most of the time.

Approximations and decisions (beyond the arena engine's, see mlx.envs.native.arena): agents, dragon,
columns, key and tombstone are circles or axis-aligned boxes (upstream: rotating cubes, capsules, a key
and a tombstone turned like the dragon and the dead agent); the 45-degree cave is two overlapping
axis-aligned boxes (a 2-step staircase over the corner triangle: 2.0 x 1.0 and 1.0 x 2.0 m from the
corner); the dragon is moved by position on every physics step with its velocity zeroed, as upstream's
MovePosition on a dynamic body, so a contact in the same step still pushes it (it dies at the first
touch anyway); the floor friction is PhysX's default material (the scene's material NOT FOUND); events
end the group episode at the end of the decision (the terminal observation is the decision's last
state, at most 4 physics steps later than upstream, whose ResetScene runs at once); an agent that died
during a decision stays where it died for the rest of it. Where the facts sheet is silent or marks [I]
(key pickup: PushAgentEscape.OnTriggerEnter; sizes of door, cave, columns, key and tombstone; the dragon's
start in world coordinates) the upstream files named above were read. The number of platforms per
training scene is NOT FOUND; the conf uses 64. DungeonEscapeHard (a dragon that hunts agents) is not
ported. There are no environment parameters upstream; every name is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, EnvError, ObservationSpec, TerminalSteps
from mlx.envs.native.arena import Arena, BodySpec, StaticSpec, box_overlaps, sample_positions
from mlx.envs.native.base import F32, NativeEnv
from mlx.envs.native.rays import RaySensor, RaySensorSpec

BEHAVIOR = "DungeonEscape"
AGENTS = 3  # per platform, one group
DECISION_PERIOD = 5
MAX_ENVIRONMENT_STEPS = 15000  # physics steps (the platform prefab's MaxEnvironmentSteps)
MAX_DECISIONS = MAX_ENVIRONMENT_STEPS // DECISION_PERIOD
ESCAPE_REWARD = 1.0
DT = 0.02
GRAVITY = 9.81 * 1.5
RUN_SPEED = 3.0  # PushBlockSettings.agentRunSpeed in the DungeonEscape scene
TURN_SPEED = 200.0  # degrees per second
HALF = 12.5  # walls' inner faces
WALL_HEIGHT = (-0.5, 4.5)
SPAWN_HALF = HALF * 0.8  # spawnAreaMarginMultiplier
CHECK_HALF = 2.5  # Physics.CheckBox half extents
AGENT_RADIUS, AGENT_HEIGHT, AGENT_MASS, AGENT_DRAG = 0.5, (0.0, 1.0), 10.0, 4.0
DRAGON_RADIUS, DRAGON_HEIGHT, DRAGON_MASS, DRAGON_DRAG = 0.75, (0.04, 1.54), 10.0, 1.0
DRAGON_START = (0.0, 8.0)  # world start; turned by the platform's random quarter turns (module doc)
DRAGON_SPEED = (1.0, 7.0)  # SimpleNPC.SetRandomWalkSpeed
PORTAL_TARGET = (11.58, -11.59)  # the cave's transform position: where the dragon walks
COLUMNS = ((4.5, -4.0), (-4.5, -4.0), (4.5, 4.0), (-4.5, 4.0))
COLUMN_HALF, COLUMN_HEIGHT = 0.847, (-0.185, 3.465)
LOCK_CENTER, LOCK_HALF, LOCK_HEIGHT = (0.0, 12.6), (1.5, 0.534), (0.085, 2.685)
# The cave's corner triangle (legs 2.65 m) as two boxes measured from the corner (12.5, -12.5).
PORTAL_BOXES = (((11.5, -12.0), (1.0, 0.5)), ((12.0, -11.5), (0.5, 1.0)))
PORTAL_HEIGHT = (-0.54, 4.2)
KEY_HALF, KEY_HEIGHT = 0.3, (0.56, 1.02)
TOMB_HALF, TOMB_HEIGHT = 0.4, (-0.33, 1.44)
AWAY = 1000.0  # where hidden statics wait
TAGS = ("wall", "agent", "dragon", "key", "lock", "portal")
# Action -> (forward, right, turn) commands (PushAgentEscape.MoveAgent).
ACTIONS = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, 0, -1], [0, -0.75, 0], [0, 0.75, 0]], np.float32)
RAYS = RaySensorSpec(TAGS, 7, 60.0, 0.5, 40.0, 0.0, 3, "RayPerceptionSensor")
RB_SIZE = 10
RB_NAME, KEY_NAME = "RBSensor", "VectorSensor_size1"
SCRIPTED_SCORE, RANDOM_SCORE = 0.997, 0.107  # measured (module doc)
SCRIPT_SPEED = F32(12.0)  # the interception speed scripted_actions assumes for its agents (m/s)
DOOR_TARGET = (0.0, LOCK_CENTER[1] - 1.0)  # where scripted_actions sends the key holder


class DungeonEscapeEnv(NativeEnv):
    """``num_areas`` DungeonEscape platforms, three agents each in one group, behaviour ``DungeonEscape``.

    Public state (area first): ``alive`` [n, 3] (in its group's current episode), ``has_key`` [n, 3],
    ``dragon_alive`` [n], ``key_out`` [n] (the dropped key lies on the floor), ``dragon_speed`` [n];
    positions and headings are in ``arena``. After each step ``ended`` [n] says which group episodes
    ended in it and ``escaped`` [n] which of them by the door (their areas have already restarted).
    """

    behaviors = (BEHAVIOR,)
    agents_per_area = AGENTS
    max_decisions = MAX_DECISIONS
    parameter_defaults = {"shared_reward": 0.0}

    def __init__(self, num_areas: int = 64, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=(
                ObservationSpec((RB_SIZE,), RB_NAME),
                ObservationSpec((RAYS.size,), RAYS.observation_name),
                ObservationSpec((1,), KEY_NAME),
            ),
            action_spec=ActionSpec(discrete_branches=(len(ACTIONS),)),
        )
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        statics = [StaticSpec(f"column{i}", c, (COLUMN_HALF, COLUMN_HALF), COLUMN_HEIGHT, tag="wall")
                   for i, c in enumerate(COLUMNS)]  # fmt: skip
        statics.append(StaticSpec("lock", LOCK_CENTER, LOCK_HALF, LOCK_HEIGHT, tag="lock"))
        statics += [
            StaticSpec(f"portal{i}", c, h, PORTAL_HEIGHT, tag="portal") for i, (c, h) in enumerate(PORTAL_BOXES)
        ]
        statics.append(StaticSpec("key", (0.0, AWAY), (KEY_HALF, KEY_HALF), KEY_HEIGHT, solid=False, tag="key",
                                  active=False))  # fmt: skip
        statics.append(StaticSpec("tomb", (0.0, -AWAY), (TOMB_HALF, TOMB_HALF), TOMB_HEIGHT, tag="wall", active=False))
        bodies = [
            BodySpec.circle(f"agent{k}", AGENT_RADIUS, height=AGENT_HEIGHT, mass=AGENT_MASS, drag=AGENT_DRAG,
                            tag="agent")
            for k in range(AGENTS)
        ]  # fmt: skip
        bodies.append(BodySpec.circle("dragon", DRAGON_RADIUS, height=DRAGON_HEIGHT, mass=DRAGON_MASS,
                                      drag=DRAGON_DRAG, tag="dragon"))  # fmt: skip
        self.arena = Arena(
            n, bodies, statics, bounds=(-HALF, -HALF, HALF, HALF), bounds_height=WALL_HEIGHT, bounds_tag="wall",
            num_agents=AGENTS, run_speed=RUN_SPEED, turn_speed=TURN_SPEED, dt=DT, gravity=GRAVITY,
        )  # fmt: skip
        ar = self.arena
        self._lock, self._key, self._tomb = ar.slot["lock"], ar.slot["key"], ar.slot["tomb"]
        self._portals = np.array([ar.slot["portal0"], ar.slot["portal1"]], np.intp)
        self._dragon = ar.body("dragon")
        self._dragon_slot = ar.slot["dragon"]
        self._agent_slots = np.arange(ar.W, ar.W + AGENTS)
        self._dragon_pairs = np.array([ar.pair_index[(k, self._dragon)] for k in range(AGENTS)], np.intp)
        self.sensors = [RaySensor(ar, RAYS, agent=k) for k in range(AGENTS)]
        self.alive = np.ones((n, AGENTS), bool)
        self.has_key = np.zeros((n, AGENTS), bool)
        self.dragon_alive = np.ones(n, bool)
        self.key_out = np.zeros(n, bool)
        self.dragon_speed = np.full(n, 3.0, F32)
        self.ended = np.zeros(n, bool)
        self.escaped = np.zeros(n, bool)
        self._cmd = np.zeros((3, AGENTS, n), F32)  # forward, right, turn of every agent (dead ones: 0)
        self.agent_ids = np.arange(n * AGENTS, dtype=np.int32).reshape(n, AGENTS)
        self.group_ids = np.repeat(np.arange(1, n + 1, dtype=np.int32), AGENTS).reshape(n, AGENTS)
        self._deciding = np.arange(n * AGENTS)
        # Where the dragon stands until the first reset (the prefab's spot) and the hidden statics' spots.
        ar.pos[0, self._dragon], ar.pos[1, self._dragon] = DRAGON_START

    # ---- episode starts -----------------------------------------------------------------------------

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        if values["shared_reward"] not in (0.0, 1.0):
            raise EnvError(f"environment parameter 'shared_reward' must be 0 or 1 (got {values['shared_reward']})")

    def _reset_areas(self, idx: np.ndarray) -> None:
        """ResetScene for the given areas (see the module doc): agents placed one after another, then the
        key and tombstone hidden and the dragon back at its (platform-turned) start with a new speed."""
        ar, rng, m = self.arena, self._rng, idx.size
        W = ar.W
        lo, hi = (-SPAWN_HALF, -SPAWN_HALF), (SPAWN_HALF, SPAWN_HALF)
        half = (CHECK_HALF, CHECK_HALF)
        # Obstacles: the statics present (columns, door, cave, key, tombstone) [W, m], the dragon if alive,
        # the agents placed before in this reset and the others' previous bodies (if they were in).
        cx, cz = ar.center[0][:W][:, idx], ar.center[1][:W][:, idx]
        hx, hz = ar.half[0][:W][:, idx], ar.half[1][:W][:, idx]
        on = ar.active[:W][:, idx]
        dx, dz = ar.pos[0, self._dragon][idx], ar.pos[1, self._dragon][idx]
        dragon_on = self.dragon_alive[idx]
        old_x, old_z = ar.pos[0][:AGENTS][:, idx].copy(), ar.pos[1][:AGENTS][:, idx].copy()  # [3, m]
        was_alive = self.alive[idx].T.copy()  # [3, m]
        new_x = np.zeros((AGENTS, m), F32)
        new_z = np.zeros((AGENTS, m), F32)
        for k in range(AGENTS):

            def free(x: np.ndarray, z: np.ndarray, rows: np.ndarray, k: int = k) -> np.ndarray:
                box = (cx[:, None, rows], cz[:, None, rows], hx[:, None, rows], hz[:, None, rows])
                hit = (box_overlaps(x[None], z[None], half, *box) & on[:, None, rows]).any(0)
                hit |= box_overlaps(x, z, half, dx[rows], dz[rows], 0.0, 0.0, DRAGON_RADIUS) & dragon_on[rows]
                for j in range(AGENTS):
                    if j < k:  # already placed in this reset
                        hit |= box_overlaps(x, z, half, new_x[j, rows], new_z[j, rows], 0.0, 0.0, AGENT_RADIUS)
                    else:  # still at its previous spot, if it was in the game
                        body = box_overlaps(x, z, half, old_x[j, rows], old_z[j, rows], 0.0, 0.0, AGENT_RADIUS)
                        hit |= body & was_alive[j, rows]
                return ~hit

            new_x[k], new_z[k] = sample_positions(rng, m, lo, hi, free)
        ar.pos[0][:AGENTS][:, idx] = new_x
        ar.pos[1][:AGENTS][:, idx] = new_z
        ar.heading[:, idx] = rng.uniform(0.0, 2.0 * math.pi, (AGENTS, m)).astype(F32)
        ar.stop(idx)
        self.alive[idx] = True
        self.has_key[idx] = False
        self.key_out[idx] = False
        self.dragon_alive[idx] = True
        quarter = rng.integers(0, 4, m)
        angle = quarter * (math.pi / 2)  # the platform's turn; the dragon's platform position is its inverse
        sx, sz = DRAGON_START
        ar.pos[0, self._dragon, idx] = sx * np.cos(angle) - sz * np.sin(angle)
        ar.pos[1, self._dragon, idx] = sx * np.sin(angle) + sz * np.cos(angle)
        self.dragon_speed[idx] = rng.uniform(*DRAGON_SPEED, m).astype(F32)
        for slot, where in ((self._key, AWAY), (self._tomb, -AWAY)):
            ar.center[0, slot, idx] = 0.0
            ar.center[1, slot, idx] = where
            ar.active[slot, idx] = False
        ar.active[self._agent_slots[:, None], idx[None, :]] = True
        ar.active[self._dragon_slot, idx] = True
        self._cmd[:, :, idx] = 0.0
        ar.refresh()

    # ---- actions ------------------------------------------------------------------------------------

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        flat = np.zeros((self.n * AGENTS, 3), F32)
        flat[self._deciding if rows is None else rows] = ACTIONS[discrete[:, 0]]
        self._cmd[:] = flat.reshape(self.n, AGENTS, 3).transpose(2, 1, 0)
        self._drive()

    def _no_actions(self) -> None:
        self._cmd.fill(0.0)
        self._drive()

    def _drive(self) -> None:
        alive = self.alive.T
        self.arena.drive(self._cmd[0] * alive, self._cmd[1] * alive, self._cmd[2] * alive)

    # ---- simulation ---------------------------------------------------------------------------------

    def _move_dragon(self) -> None:
        """SimpleNPC.FixedUpdate: face the cave and move walkSpeed * dt towards it (kinematic)."""
        ar, d = self.arena, self._dragon
        tx = F32(PORTAL_TARGET[0]) - ar.pos[0, d]
        tz = F32(PORTAL_TARGET[1]) - ar.pos[1, d]
        dist = np.maximum(np.hypot(tx, tz), F32(1e-6))
        step = np.where(self.dragon_alive, self.dragon_speed * F32(DT), F32(0.0)) / dist
        ar.pos[0, d] += tx * step
        ar.pos[1, d] += tz * step
        ar.vel[:, d] = 0.0

    def _advance(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One decision: DECISION_PERIOD physics steps, each followed by the events (module doc).
        Returns (died [n, 3]: agents that left their group during it, ended [n], escaped [n])."""
        n = self.n
        ar = self.arena
        died = np.zeros((n, AGENTS), bool)
        ended = np.zeros(n, bool)
        escaped = np.zeros(n, bool)
        for _ in range(DECISION_PERIOD):
            self._move_dragon()
            ar.clear_touches()
            ar.step(1)
            going = ~ended
            alive = self.alive & going[:, None]
            ts = ar.touch_static  # [K, W, n]
            # 1. the key holder at the door
            unlock = (ts[:AGENTS, self._lock].T & self.has_key & alive).any(1)
            escaped |= unlock
            ended |= unlock
            alive &= ~unlock[:, None]
            changed = False
            # 2. an agent touches the dragon: the lowest index dies, the key drops
            bitten = ar.touch_pair[self._dragon_pairs].T & alive & self.dragon_alive[:, None]
            if bitten.any():
                areas = np.flatnonzero(bitten.any(1))
                k = bitten[areas].argmax(1)
                self.alive[areas, k] = False
                died[areas, k] = True
                alive[areas, k] = False
                d = self._dragon
                ar.center[0, self._key, areas] = ar.pos[0, d, areas]
                ar.center[1, self._key, areas] = ar.pos[1, d, areas]
                ar.center[0, self._tomb, areas] = ar.pos[0, k, areas]
                ar.center[1, self._tomb, areas] = ar.pos[1, k, areas]
                ar.active[self._key, areas] = True
                ar.active[self._tomb, areas] = True
                ar.active[self._dragon_slot, areas] = False
                ar.active[ar.W + k, areas] = False
                ar.vel[:, k, areas] = 0.0
                self.dragon_alive[areas] = False
                self.key_out[areas] = True
                changed = True
            # 3. agents on the cave, in index order
            on_cave = ts[:AGENTS][:, self._portals].any(1).T & alive  # [n, 3]
            if on_cave.any():
                for k in range(AGENTS):
                    hit = on_cave[:, k] & alive[:, k]
                    if not hit.any():
                        continue
                    left = alive.sum(1) - 1
                    finish = hit & ((left == 0) | self.has_key[:, k])
                    dies = hit & ~finish
                    ended |= finish
                    alive &= ~finish[:, None]
                    idx = np.flatnonzero(dies)
                    self.alive[idx, k] = False
                    died[idx, k] = True
                    alive[idx, k] = False
                    ar.active[ar.W + k, idx] = False
                    ar.vel[:, k, idx] = 0.0
                    changed |= idx.size > 0
            # 4. the dragon at its cave
            fled = ts[self._dragon][self._portals].any(0) & self.dragon_alive & ~ended
            ended |= fled
            alive &= ~fled[:, None]
            # 5. key pickup (a trigger: overlap), the lowest index first
            grab = ts[:AGENTS, self._key].T & alive & self.key_out[:, None]
            if grab.any():
                areas = np.flatnonzero(grab.any(1))
                self.has_key[areas, grab[areas].argmax(1)] = True
                self.key_out[areas] = False
                ar.active[self._key, areas] = False
                changed = True
            if changed:
                ar.refresh()
                self._drive()
        return died, ended, escaped

    # ---- observations -------------------------------------------------------------------------------

    def _rb(self) -> np.ndarray:
        """[n, 3, 10] the RigidBody sensor: own velocity in its own frame, then the identity pose."""
        ar = self.arena
        h = ar.heading  # [3, n]
        vx, vz = ar.vel[0, :AGENTS], ar.vel[1, :AGENTS]
        s, c = np.sin(h), np.cos(h)
        out = np.zeros((self.n, AGENTS, RB_SIZE), F32)
        out[:, :, 0] = (vx * c - vz * s).T
        out[:, :, 2] = (vx * s + vz * c).T
        out[:, :, 9] = 1.0
        return out

    def _observe_all(self) -> list[np.ndarray]:
        """Every agent's observations after a decision, [n, 3, *shape] each (dead agents' rows too)."""
        rays = np.stack([s.observe() for s in self.sensors], axis=1)
        return [self._rb(), rays, self.has_key[:, :, None].astype(F32)]

    def _restart_all(self, idx: np.ndarray) -> list[np.ndarray]:
        rays = np.stack([s.restart(idx) for s in self.sensors], axis=1)
        return [self._rb()[idx], rays, self.has_key[idx, :, None].astype(F32)]

    # ---- the env API (three agents per area, some of them gone: NativeEnv's one-agent step is not enough) ----

    def reset(self) -> None:
        """New group episodes on every platform; every agent then decides, with reward 0."""
        every = np.arange(self.n)
        self._begin(every)
        obs = self._restart_all(every)
        self._no_actions()
        self._started = True
        self._no_terminal()
        self.ended[:] = False
        self.escaped[:] = False
        self._publish_alive(obs)

    def step(self) -> None:
        self._require_reset("step")
        died, ended, escaped = self._advance()
        steps = self._steps
        steps += 1
        timeout = (steps >= self.max_decisions) & ~ended
        over = ended | timeout
        alive = self.alive
        terminal = died | (over[:, None] & alive)
        group_reward = (escaped[:, None] & alive).astype(F32) * F32(ESCAPE_REWARD)
        interrupted = timeout[:, None] & alive
        obs = self._observe_all()
        self._terminals[0] = TerminalSteps(
            [o[terminal] for o in obs],
            group_reward[terminal] * F32(self._params["shared_reward"]),
            self.agent_ids[terminal],
            interrupted[terminal],
            self.group_ids[terminal],
            group_reward[terminal],
        )
        self.ended[:] = over
        self.escaped[:] = escaped
        if over.any():
            idx = np.flatnonzero(over)
            self._begin(idx)
            for o, first in zip(obs, self._restart_all(idx), strict=True):
                o[idx] = first
        self._no_actions()
        self._publish_alive(obs)

    def _publish_alive(self, obs: list[np.ndarray]) -> None:
        """DecisionSteps: the agents still in their group's episode, in id order, reward 0."""
        alive = self.alive
        self._deciding = np.flatnonzero(alive.reshape(-1))
        self._rows[0] = self._deciding
        m = self._deciding.size
        zeros = np.zeros(m, F32)
        decision = DecisionSteps([o[alive] for o in obs], zeros, self.agent_ids[alive], None,
                                 self.group_ids[alive], zeros.copy())  # fmt: skip
        if self._decisions:
            self._decisions[0] = decision
        else:
            self._decisions.append(decision)

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Top-down pictures of platforms (Arena.render): walls and columns grey, the door, the cave, the
        key and the tombstone when present, the agents still in (with their heading) and the dragon.
        Dead agents are moved out of the picture while drawing (Arena.render draws every agent's heading)."""
        ar = self.arena
        saved = ar.pos[:, :AGENTS].copy()
        gone = ~self.alive.T  # [3, n]
        ar.pos[0, :AGENTS][gone] = AWAY
        ar.pos[1, :AGENTS][gone] = AWAY
        try:
            return ar.render(areas)
        finally:
            ar.pos[:, :AGENTS] = saved


def _steer(env: DungeonEscapeEnv, tx: np.ndarray, tz: np.ndarray) -> np.ndarray:
    """Actions [n, 3] that bring each agent towards (tx, tz) [n, 3]: forward when facing it (within 20
    degrees), back when it is behind, a strafe when it is square to a side, else a turn towards it."""
    ar = env.arena
    dx = tx - ar.pos[0, :AGENTS].T
    dz = tz - ar.pos[1, :AGENTS].T
    diff = (np.arctan2(dx, dz) - ar.heading.T + np.pi) % (2 * np.pi) - np.pi  # > 0: the target is to the right
    act = np.where(diff > 0, 3, 4)
    act = np.where(np.abs(diff) < 0.35, 1, np.where(np.abs(diff) > np.pi - 0.35, 2, act))
    act = np.where(np.abs(diff - np.pi / 2) < 0.2, 6, act)
    return np.where(np.abs(diff + np.pi / 2) < 0.2, 5, act)


def scripted_actions(env: DungeonEscapeEnv) -> np.ndarray:
    """A hand-written policy that reads the env's state (privileged; not from the observations): actions
    [m] for the deciding agents, in DecisionSteps order. While the dragon lives every agent runs at the
    point where it will intercept the dragon's straight walk to the cave (assuming SCRIPT_SPEED m/s; the
    first to touch it dies for the group); then the agent nearest the dropped key fetches it while the
    others wait (no-op); the key holder walks to the door. Used for the documented SCRIPTED_SCORE."""
    ar, n = env.arena, env.n
    d = env._dragon
    alive = env.alive
    ex, ez = ar.pos[0, d], ar.pos[1, d]
    px, pz = F32(PORTAL_TARGET[0]) - ex, F32(PORTAL_TARGET[1]) - ez
    way = np.maximum(np.hypot(px, pz), F32(1e-6))
    gap = np.hypot(ar.pos[0, :AGENTS].T - ex[:, None], ar.pos[1, :AGENTS].T - ez[:, None])
    lead = np.minimum(env.dragon_speed[:, None] * gap / SCRIPT_SPEED, way[:, None])
    tx = ex[:, None] + (px / way)[:, None] * lead
    tz = ez[:, None] + (pz / way)[:, None] * lead
    go = alive & env.dragon_alive[:, None]
    kx, kz = ar.center[0, env._key], ar.center[1, env._key]
    dist = np.hypot(ar.pos[0, :AGENTS].T - kx[:, None], ar.pos[1, :AGENTS].T - kz[:, None])
    fetch = np.zeros((n, AGENTS), bool)
    fetch[np.arange(n), np.where(alive, dist, np.inf).argmin(1)] = True
    fetch &= env.key_out[:, None] & alive
    tx = np.where(fetch, kx[:, None], tx)
    tz = np.where(fetch, kz[:, None], tz)
    holder = env.has_key & alive
    tx = np.where(holder, F32(DOOR_TARGET[0]), tx)
    tz = np.where(holder, F32(DOOR_TARGET[1]), tz)
    act = np.where(go | fetch | holder, _steer(env, tx, tz), 0)
    return act[alive].astype(np.int32)
