"""PushBlockCollab ("Cooperative Push Block"): a vectorised port of ML-Agents' PushBlockCollab for MA-POCA.

Three agents per area, one group, push six blocks of three sizes into a goal strip; big blocks need several
agents pushing together. Facts: /work/shared/reference/multiagent.md §5.3 (upstream PushAgentCollab.cs,
PushBlockEnvController.cs, PushBlockAgentGridCollab.prefab, PushBlockCollabAreaGrid.prefab); [I] marks what
the facts sheet infers, NOT FOUND what it does not know and this port decides.

Area (per area, all areas simulated at once on the arena engine, mlx.envs.native.arena):

* A 25 m x 25 m floor inside walls (tag ``wall``, inner faces at +-12.5, 0.5 m thick as walls centred at
  +-12.75). The goal is a trigger strip tagged ``goal`` across the whole width, z in [-12.65, -8.35]
  (centre -10.5, 4.3 m deep): bodies pass into it; a block overlapping it is scored.
* Three agents: 1 m cubes (circles of radius 0.5 here, as in PushBlock), mass 10, drag 4, tag ``agent``.
* Six blocks, two of each size, rotations frozen (axis-aligned boxes), drag 0.5, 0.75 m high:
  small 1 x 1 m, mass 10, tag ``blockSmall``, worth 1; large 2 x 2 m, mass 100, ``blockLarge``, worth 2;
  very large 3 x 3 m, mass 150, ``blockVeryLarge``, worth 3. Total value 12.
* Gravity 9.81 x 1.5 (the scene's multiplier; it scales floor friction). Friction materials NOT FOUND:
  PhysX's default 0.6 / 0.6 for the floor and every body (the arena's default).
* Decisions every 5 physics steps of 0.02 s, the action repeated in between.

Actions (one branch of 7, as PushBlock): 0 no-op, 1 forward, 2 backward, 3 turn right (yaw +), 4 turn left,
5 strafe left x0.75, 6 strafe right x0.75. Moving is a velocity change of agentRunSpeed = 3 m/s per
physics step along the direction; turning is 200 deg/s, 4 degrees per physics step.

**Who can move a block: an explicit rule** (the brief allowed physics or a rule; this port uses a rule).
Upstream relies on the masses (10 / 100 / 150) for "the large block needs 2 agents, the very large 3" [I,
not verified numerically; its friction materials are NOT FOUND]. On this engine the masses alone do not
do it: one agent pushes the 100 kg block at about 2 m/s (measured: 10.5 m in 50 decisions), as each
contact shares the agent's velocity change by inverse mass. So: a block is *pinned* (infinite mass, its
velocity zeroed) during a physics step in which its support is below its need (1 / 2 / 3 agents for
small / large / very large). A block's support is the largest number of agents touching (closer than the
arena's touch distance, 2 cm, after that step's motion) any one block of the group of blocks it touches,
directly or through other blocks; agents do not pass support on. So three agents pushing a large block
into a very large one move both, two cannot (the large one stays against the pinned very large one),
and one agent pushing a small block into a large one moves neither. An unpinned block moves by the
ordinary physics with the upstream masses (a pair of blocks is heavier and slower to push than one).
Consequences: a block nobody touches does not slide (it stops as its pushers lose contact) and is not
shoved by an agent's block unless the pushers are enough for it too; agents count when they touch a
block whether or not they push toward the goal.

The body pairs are solved all at once (Jacobi: one vectorised pass over the 36 pairs, each body's
corrections summed; PushArena below) instead of the arena's one-pair-after-another pass, which with nine
bodies per area is 36 rounds of numpy calls per physics step. One pass (PAIR_PASSES) per physics step:
three passes carry a push down a chain of blocks better but made the scripted policy no better and the
env 1.7 times slower. Statics, bounds, commands, drag and floor friction are the arena's
(Arena._solve_pairs is the one hook overridden).

Observations (ML-Agents orders sensors by name):

1. ``GridSensor``: float32 (20, 20, 6) per agent, from shapes (mlx.envs.native.gridsensor): 1 m cells,
   turning with the agent, centred 10 m ahead (it covers 0..20 m ahead and 10 m to each side); channels
   wall, agent, goal, blockSmall, blockLarge, blockVeryLarge; row 0 farthest ahead, column 0 leftmost
   (the cell order is a choice: upstream's NOT FOUND). An agent does not see itself; scored blocks vanish.
2. ``PhysicsBodySensor``: float32 (10,). The RigidBody sensor with local-space translations and rotations
   and model-space linear velocity, its virtual root the agent itself: one pose of 3 + 4 + 3 floats
   (upstream's exact size NOT FOUND: 10, or 20 if the virtual root's pose counts [I]; this port sends
   one pose). Relative to itself the agent's translation is (0, 0, 0) and its rotation (0, 0, 0, 1),
   so floats 0..6 are those constants; floats 7..9 are its velocity in its own frame (right, up = 0,
   forward), in m/s, unnormalised as upstream (normalize: false).

Rewards (all **group** rewards, ``group_reward``; the individual ``reward`` is always 0):

* every decision -0.0005: upstream's -0.5 / MaxEnvironmentSteps on each of its 5 physics steps, so
  -0.5 over a full 1000-decision episode;
* a block entering the goal: + its value (1 / 2 / 3); it is removed (inactive) at the end of that decision.

Episodes (per area = per group): all six blocks scored ends the group's episode (done, not interrupted);
MaxEnvironmentSteps 5000 physics steps = 1000 decisions interrupts it (``interrupted=True``). Both end
all three agents together (a TerminalSteps entry each, then a new episode). Agents are never removed
mid-episode. Agent ids are ``3 * area + k``; group ids ``area + 1`` (nonzero, unique per area).

Reset (per area): upstream turns the whole area by a random multiple of 90 degrees; every object and the
spawn square turn with it and the sensors are egocentric, so nothing changes and it is not simulated.
Blocks and agents are placed uniformly in the central 12.5 x 12.5 m square (spawnAreaMarginMultiplier
0.5), each redrawn until a 3 x 3 m box (half extents 1.5, the facts' "1.5 m check box") around it is
free of the objects already placed in this reset; order (NOT FOUND upstream): very large blocks, large,
small, then agents (biggest first keeps the packing feasible). Agents get a random heading; velocities
zero; blocks re-activated.

Approximations (besides the arena's, see mlx.envs.native.arena): the pinning rule above; Jacobi pairs; a
block that enters the goal during a decision is removed at the end of that decision (at most 4 physics
steps late) and the decision's whole penalty is paid at the end; an episode whose last block scores on
its 1000th decision ends done, not interrupted.

Environment parameter ``shared_reward`` (default 0) set to 1 also pays the group reward as individual
reward (as mlx.envs.native.sacrifice): PPO, which reads only ``reward``, then sees the task (for the
POCA-vs-PPO comparison; leave it 0 for POCA, which adds the group reward itself).

Scores, per group episode (the sum of its group rewards = POCA's ``Environment/Group Cumulative
Reward``), over the first episode of 4 x 64 areas (seeds 0..3; tests/test_pushblockcollab.py,
test_documented_scores): a scripted policy with privileged state scores SCRIPTED_SCORE = 11.66 (97% of
its episodes score all 12, in about 200 decisions: 11.9 each; the rest stall in piles of blocks),
uniformly random actions RANDOM_SCORE = -0.41 (a small block now and then). Upstream's benchmark for a
trained MA-POCA policy is 11 (the maximum is 12 minus the time penalty), so the task is solvable above it
under these rules. The scripted policy: all three agents go behind the block nearest the goal whose rear
is clear and push it toward the goal (a block whose way is blocked is pushed sideways first); each agent
keeps facing the push direction and moves by forward/backward/strafe only, choosing the move whose
predicted end point (the move, then the same, the opposite or no move, then coasting under drag and
friction) lands nearest its waypoint; a wedged agent walks at random for a few decisions. Steering is
the hard part: an agent gains 3 m/s per physics step, about 11 m/s after one decision, and one move
shifts it by at least about 0.25 m (a strafe and then the opposite one) or 1.5 m (a strafe, then
nothing). An earlier script that turned toward its waypoints and walked forward scored 9.0 (62% of
episodes complete, in about 500 decisions) on the same rules.

Speed: agent-steps per second under random actions (``benchmarks/env_throughput.py``'s measure, 2-core
VM shared with other work, load average 4.6 on 2026-12-05): THROUGHPUT, about 2k at 1 area, 23k at 54
(the config's), 35k at 256 and 1024; at load 1.3 the same day a plain loop ran 50k at 64 areas and 57k at
256. About half of a step is the grid sensor (7 shapes x 400 cells x 3 agents per area, as intervals per
row), most of the rest the 36 body pairs of 5 physics steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, EnvError, ObservationSpec, TerminalSteps
from mlx.envs.native.arena import (
    BodySpec,
    StaticSpec,
    box_overlaps,
    rounded_box_contact,
    sample_positions,
)
from mlx.envs.native.base import F32, NativeEnv
from mlx.envs.native.gridsensor import GridSensor, GridSensorSpec
from mlx.envs.native.jacobi import JacobiArena

BEHAVIOR = "PushBlockCollab"
AGENTS = 3  # per area, one group
DECISION_PERIOD = 5
MAX_ENVIRONMENT_STEPS = 5000  # physics steps
MAX_DECISIONS = MAX_ENVIRONMENT_STEPS // DECISION_PERIOD
DECISION_PENALTY = -0.5 / MAX_ENVIRONMENT_STEPS * DECISION_PERIOD  # group reward per decision
GRAVITY = 9.81 * 1.5
AREA_HALF = 12.5
WALL_THICKNESS = 0.5
WALL_HEIGHT = (-0.5, 1.5)
SPAWN_HALF = AREA_HALF * 0.5  # spawnAreaMarginMultiplier
CHECK_HALF = 1.5  # the spawn check box's half extents
GOAL_CENTER, GOAL_HALF, GOAL_HEIGHT = (0.0, -10.5), (12.5, 2.15), (-1.5, 1.5)
AGENT_RADIUS, AGENT_MASS, AGENT_DRAG, AGENT_HEIGHT = 0.5, 10.0, 4.0, (0.0, 1.0)
RUN_SPEED, TURN_SPEED = 3.0, 200.0
BLOCK_DRAG, BLOCK_HEIGHT = 0.5, (0.0, 0.75)
# Block kinds: (tag, half size, mass, goal value = agents needed to move it).
KINDS = (("blockSmall", 0.5, 10.0, 1), ("blockLarge", 1.0, 100.0, 2), ("blockVeryLarge", 1.5, 150.0, 3))
BLOCKS_PER_KIND = 2
BLOCK_KIND = np.repeat(np.arange(len(KINDS)), BLOCKS_PER_KIND)  # block b's kind (small, small, large, ...)
BLOCK_VALUE = np.array([KINDS[k][3] for k in BLOCK_KIND], np.float32)
BLOCK_NEED = np.array([KINDS[k][3] for k in BLOCK_KIND], np.int64)
BLOCK_HALF = np.array([KINDS[k][1] for k in BLOCK_KIND], np.float32)
TOTAL_VALUE = float(BLOCK_VALUE.sum())
SPAWN_ORDER = tuple(int(b) for b in np.argsort(-BLOCK_HALF, kind="stable"))  # biggest blocks first
TAGS = ("wall", "agent", "goal", "blockSmall", "blockLarge", "blockVeryLarge")
GRID = GridSensorSpec(TAGS, rows=20, cols=20, cell=1.0, offset=10.0, wall_thickness=WALL_THICKNESS)
PAIR_PASSES = 1  # Jacobi passes over the body pairs per physics step
BODY_SIZE = 10
BODY_NAME = "PhysicsBodySensor"
# Action -> (forward, right, turn) commands, as PushBlock (PushAgentCollab.MoveAgent).
ACTIONS = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, 0, -1], [0, -0.75, 0], [0, 0.75, 0]], np.float32)
# Measured scores and speed (see the module docstring; tests/test_pushblockcollab.py re-measures the scores).
SCRIPTED_SCORE, RANDOM_SCORE = 11.66, -0.41
# Agent-steps per second by num_areas (random actions; see the module docstring).
THROUGHPUT = {1: 2_000, 54: 22_600, 256: 35_200, 1024: 34_100}


class PushArena(JacobiArena):
    """The arena with PushBlockCollab's block rule and a one-shot (Jacobi) pair pass.

    ``need[k]`` is how many agents must touch body k during a physics step for it to move (0: always
    free, the agents); a body with fewer is pinned for that step (see the module docstring).
    """

    def __init__(
        self, *args: object, need: Sequence[int], hops: int = 1, pair_passes: int = 1, **kwargs: object
    ) -> None:
        self.hops, self.pair_passes = hops, pair_passes
        self._need = np.asarray(need, np.float32)[:, None]  # read by refresh(), which Arena's __init__ calls
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def refresh(self) -> None:
        super().refresh()
        K, A, I, J = self.K, self.A, self._I, self._J  # noqa: E741
        pushers = np.zeros((K, len(I)), np.float32)  # agent-block pairs, counted on the block
        agent_pair = (I < A) & (J >= A)
        pushers[J[agent_pair], np.flatnonzero(agent_pair)] = 1.0
        self._pushers = pushers
        self.pinned = np.zeros((K, self.n), bool)
        self._touching = np.zeros((K, K, self.n), bool)
        self._block_pairs = np.flatnonzero(I >= A)  # pairs of two blocks (I < J)

    def _solve_pairs(self) -> None:
        """The pin rule from this step's contacts, then ``pair_passes`` Jacobi passes over every pair (more
        than one carries a push down a chain of touching bodies within the step)."""
        pos, I, J = self.pos, self._I, self._J  # noqa: E741
        nrm, pen, touch = self._pair_contacts()
        direct = self._pushers @ touch.astype(F32)  # [K, n] agents touching each body
        # Support spreads over touching blocks (the largest count wins); agents do not pass it on.
        touching = self._touching
        bb = self._block_pairs
        touching[I[bb], J[bb]] = touch[bb]
        touching[J[bb], I[bb]] = touch[bb]
        support = direct
        for _ in range(self.hops):
            support = np.maximum(support, (touching * support[None]).max(1))
        self.pinned = support < self._need  # [K, n]
        self.vel *= ~self.pinned
        w = np.where(self.pinned, F32(0.0), self._inv_mass)
        ws = w[I] + w[J]
        inv = np.where(ws > 0, F32(1.0) / np.maximum(ws, F32(1e-12)), F32(0.0))
        for p in range(self.pair_passes):
            if p:
                nrm, pen = rounded_box_contact(pos[:, J] - pos[:, I], self._pair_half, self._pair_rho)
            self._jacobi_pass(nrm, pen, w, inv)


class PushBlockCollabEnv(NativeEnv):
    """``num_areas`` PushBlockCollab areas, three agents each in one group (ids 3 * area + k, group area + 1)."""

    behaviors = (BEHAVIOR,)
    agents_per_area = AGENTS
    parameter_defaults = {"shared_reward": 0.0}
    max_decisions = MAX_DECISIONS

    def __init__(self, num_areas: int = 32, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            (ObservationSpec(GRID.shape, GRID.name), ObservationSpec((BODY_SIZE,), BODY_NAME)),
            ActionSpec(discrete_branches=(len(ACTIONS),)),
        )
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        agents = [
            BodySpec.circle(
                f"agent{k}", AGENT_RADIUS, height=AGENT_HEIGHT, mass=AGENT_MASS, drag=AGENT_DRAG, tag="agent"
            )
            for k in range(AGENTS)
        ]
        blocks = [
            BodySpec.box(
                f"block{b}",
                (float(BLOCK_HALF[b]),) * 2,
                height=BLOCK_HEIGHT,
                mass=KINDS[kind][2],
                drag=BLOCK_DRAG,
                tag=KINDS[kind][0],
            )  # fmt: skip
            for b, kind in enumerate(BLOCK_KIND)
        ]
        goal = StaticSpec("goal", GOAL_CENTER, GOAL_HALF, GOAL_HEIGHT, solid=False, tag="goal")
        self.arena = PushArena(
            n,
            [*agents, *blocks],
            [goal],
            bounds=(-AREA_HALF, -AREA_HALF, AREA_HALF, AREA_HALF),
            bounds_height=WALL_HEIGHT,
            bounds_tag="wall",
            num_agents=AGENTS,
            run_speed=RUN_SPEED,
            turn_speed=TURN_SPEED,
            gravity=GRAVITY,
            need=[0] * AGENTS + BLOCK_NEED.tolist(),
            hops=len(BLOCK_KIND) - 1,
            pair_passes=PAIR_PASSES,
        )
        self._goal = self.arena.slot["goal"]
        self._block_slots = self.arena.W + AGENTS + np.arange(len(BLOCK_KIND))  # slots of the blocks
        self.grid = GridSensor(self.arena, GRID)
        self.agent_ids = np.arange(n * AGENTS, dtype=np.int32)
        self.group_ids = np.repeat(np.arange(1, n + 1, dtype=np.int32), AGENTS)
        self._zeros = np.zeros(n * AGENTS, F32)
        self._rows[0] = np.arange(n * AGENTS)
        self.scored = np.zeros((len(BLOCK_KIND), n), bool)  # blocks scored in the current episodes
        empty = self._empty[0]  # no agent ended: group ids and group rewards as empty arrays too
        self._empty = [TerminalSteps(empty.obs, empty.reward, empty.agent_id, empty.interrupted,
                                     np.zeros(0, np.int32), np.zeros(0, F32))]  # fmt: skip

    # ---- simulation ---------------------------------------------------------------------------------

    @property
    def blocks_left(self) -> np.ndarray:
        """[6, n] bool: the blocks still in play."""
        return self.arena.active[self._block_slots]

    def _reset_areas(self, idx: np.ndarray) -> None:
        ar, m = self.arena, len(idx)
        ar.active[self._block_slots[:, None], idx] = True
        self.scored[:, idx] = False
        placed: list[tuple[np.ndarray, np.ndarray, float, float]] = []  # x, z, half, radius of this reset

        def free(x: np.ndarray, z: np.ndarray, rows: np.ndarray) -> np.ndarray:
            hit = np.zeros(x.shape, bool)
            for px, pz, half, radius in placed:
                hit |= box_overlaps(x, z, (CHECK_HALF, CHECK_HALF), px[rows], pz[rows], half, half, radius)
            return ~hit

        lo, hi = (-SPAWN_HALF, -SPAWN_HALF), (SPAWN_HALF, SPAWN_HALF)
        for b in SPAWN_ORDER:
            x, z = sample_positions(self._rng, m, lo, hi, free)
            k = AGENTS + b
            ar.pos[0, k, idx], ar.pos[1, k, idx] = x, z
            placed.append((x, z, float(BLOCK_HALF[b]), 0.0))
        for k in range(AGENTS):
            x, z = sample_positions(self._rng, m, lo, hi, free)
            ar.pos[0, k, idx], ar.pos[1, k, idx] = x, z
            placed.append((x, z, 0.0, AGENT_RADIUS))
        ar.heading[:, idx] = self._rng.uniform(0.0, 2 * math.pi, (AGENTS, m)).astype(F32)
        ar.stop(idx)
        ar.refresh()

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        cmd = ACTIONS[discrete[:, 0]].reshape(self.n, AGENTS, 3).transpose(2, 1, 0)  # [3, A, n]
        self.arena.drive(cmd[0], cmd[1], cmd[2])

    def _no_actions(self) -> None:
        zero = np.zeros((AGENTS, self.n), F32)
        self.arena.drive(zero, zero, zero)

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        """One decision: returns (group reward [n], every block scored [n])."""
        ar = self.arena
        ar.clear_touches()
        ar.step(DECISION_PERIOD)
        left = self.blocks_left
        scored = ar.touch_static[AGENTS:, self._goal] & left  # [6, n]
        reward = np.full(self.n, DECISION_PENALTY, F32)
        if scored.any():
            reward += BLOCK_VALUE @ scored.astype(F32)
            ar.active[self._block_slots] = left & ~scored
            self.scored |= scored
            ar.vel[:, AGENTS:] *= ~scored
            ar.refresh()
        return reward, ~self.blocks_left.any(0)

    def _observe_areas(self, areas: np.ndarray | None = None) -> list[np.ndarray]:
        """[grid [m * 3, 20, 20, 6], body [m * 3, 10]] of the agents of some areas (all by default)."""
        ar = self.arena
        grid = self.grid.observe(areas)
        sel = slice(None) if areas is None else areas
        h = ar.heading[:, sel].T  # [m, A]
        vel = ar.vel[:, :AGENTS, sel]  # [2, A, m]
        vx, vz = vel[0].T, vel[1].T
        c, s = np.cos(h), np.sin(h)
        body = np.zeros((*h.shape, BODY_SIZE), F32)
        body[..., 6] = 1.0  # the identity rotation's w
        body[..., 7] = vx * c - vz * s  # velocity along the agent's right
        body[..., 9] = vx * s + vz * c  # and forward
        m = h.shape[0]
        return [grid.reshape(m * AGENTS, *GRID.shape), body.reshape(m * AGENTS, BODY_SIZE)]

    # ---- the env API (three agents per area in one group) ----------------------------------------------

    def reset(self) -> None:
        """New group episodes in every area; every agent then decides, with rewards 0."""
        self._begin(np.arange(self.n))
        self._no_actions()
        self._started = True
        self._no_terminal()
        self._publish_all(self._observe_areas(), self._zeros.copy(), self._zeros.copy())

    def step(self) -> None:
        self._require_reset("step")
        group, done = self._advance()
        steps = self._steps
        steps += 1
        ended = done | (steps >= self.max_decisions)
        obs = self._observe_areas()
        group_reward = np.repeat(group, AGENTS)
        reward = group_reward * F32(self._params["shared_reward"])
        if ended.any():
            idx = np.flatnonzero(ended)
            agents = (idx[:, None] * AGENTS + np.arange(AGENTS)).reshape(-1)
            interrupted = np.repeat(~done[idx], AGENTS)
            self._terminals[0] = TerminalSteps(
                [o[agents] for o in obs],
                reward[agents],
                self.agent_ids[agents],
                interrupted,
                self.group_ids[agents],
                group_reward[agents],
            )
            self._begin(idx)
            for o, first in zip(obs, self._observe_areas(idx), strict=True):
                o[agents] = first
            group_reward[agents] = 0.0
            reward[agents] = 0.0
        else:
            self._no_terminal()
        self._no_actions()
        self._publish_all(obs, reward, group_reward)

    def _publish_all(self, obs: list[np.ndarray], reward: np.ndarray, group_reward: np.ndarray) -> None:
        """DecisionSteps: every agent decides (none is ever removed mid-episode), in agent-id order."""
        decision = DecisionSteps(obs, reward, self.agent_ids, None, self.group_ids, group_reward)
        if self._decisions:
            self._decisions[0] = decision
        else:
            self._decisions.append(decision)

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        if values["shared_reward"] not in (0.0, 1.0):
            raise EnvError(f"environment parameter 'shared_reward' must be 0 or 1 (got {values['shared_reward']})")

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Top-down pictures of areas: walls, the goal strip, blocks coloured by size, agents (Arena.render)."""
        return self.arena.render(areas)
