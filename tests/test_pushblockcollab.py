"""PushBlockCollab (mlx.envs.native.pushblockcollab): the env contract, groups and group rewards, the rule
that a block needs 1/2/3 agents, scoring and episode ends, the shape-computed grid sensor against a
brute-force reference, the body sensor, seeding, a scripted policy's score against random play, and the
env served over gRPC (throughput: benchmarks/env_throughput.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, DecisionSteps, EnvError, TerminalSteps
from mlx.envs.checker import check_env
from mlx.envs.native.gridsensor import grid_layout
from mlx.envs.native.pushblockcollab import (
    AGENTS,
    AREA_HALF,
    BEHAVIOR,
    BLOCK_HALF,
    BLOCK_KIND,
    BLOCK_VALUE,
    DECISION_PENALTY,
    GRID,
    MAX_DECISIONS,
    RANDOM_SCORE,
    SCRIPTED_SCORE,
    SPAWN_HALF,
    PushBlockCollabEnv,
)
from tests.wire import random_actions, step_side_by_side

NOOP, FORWARD, BACK, RIGHT_TURN, LEFT_TURN, LEFT, RIGHT = range(7)
SMALL, LARGE, VERY_LARGE = 0, 2, 4  # the first block of each kind
WALL, AGENT, GOAL, B_SMALL, B_LARGE, B_VERY_LARGE = range(6)  # grid channels


def act(env: PushBlockCollabEnv, actions: np.ndarray | list[int] | int) -> None:
    a = np.broadcast_to(np.asarray(actions, np.int32), (env.num_areas * AGENTS,)).reshape(-1, 1).copy()
    env.set_actions(BEHAVIOR, ActionTuple(np.zeros((len(a), 0), np.float32), a))


def step(env: PushBlockCollabEnv, actions: np.ndarray | list[int] | int = NOOP) -> tuple[DecisionSteps, TerminalSteps]:
    act(env, actions)
    env.step()
    return env.get_steps(BEHAVIOR)


def scene(
    env: PushBlockCollabEnv,
    agents: dict[int, tuple[float, float, float]],
    blocks: dict[int, tuple[float, float]],
    areas: slice | int = slice(None),
    hide_others: bool = False,
) -> None:
    """Place agents (x, z, heading) and blocks (x, z) at rest in some areas, at the start of an episode; the
    other blocks wait in a row along the back wall (or are hidden: inactive)."""
    ar = env.arena
    ar.active[AGENTS + ar.W :, areas] = True
    for b in range(len(BLOCK_KIND)):
        x, z = blocks.get(b, (-10.0 + 4.0 * b, 10.5))
        ar.pos[0, AGENTS + b, areas], ar.pos[1, AGENTS + b, areas] = x, z
        if hide_others and b not in blocks:
            ar.active[ar.W + AGENTS + b, areas] = False
    for k in range(AGENTS):
        x, z, h = agents.get(k, (9.0 + k, -5.0, 0.0))
        ar.pos[0, k, areas], ar.pos[1, k, areas], ar.heading[k, areas] = x, z, h
    ar.stop()
    ar.refresh()
    env._steps[areas] = 0


# ---- the contract, specs, groups ----


def test_env_contract():
    check_env(lambda seed: make_env("pushblockcollab", num_areas=2, seed=seed), steps=40)


def test_specs_groups_and_reset():
    env = make_env("pushblockcollab", num_areas=3, seed=0)
    assert isinstance(env, PushBlockCollabEnv)
    spec = env.behavior_specs[BEHAVIOR]
    assert [(o.shape, o.name) for o in spec.observation_specs] == [((20, 20, 6), "GridSensor"),
                                                                  ((10,), "PhysicsBodySensor")]  # fmt: skip
    assert spec.action_spec.discrete_branches == (7,) and spec.action_spec.continuous_size == 0
    env.reset()
    decision, terminal = env.get_steps(BEHAVIOR)
    assert decision.agent_id.tolist() == list(range(9)) and len(terminal) == 0
    assert decision.group_id.tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]  # nonzero, one group per area
    assert not decision.reward.any() and not decision.group_reward.any()
    body = decision.obs[1]
    np.testing.assert_array_equal(body[:, :7], np.tile([0, 0, 0, 0, 0, 0, 1], (9, 1)))
    assert not body[:, 7:].any()  # at rest
    grid = decision.obs[0]
    assert grid.dtype == np.float32 and set(np.unique(grid)) <= {0.0, 1.0} and grid[..., GOAL].any()
    # Spawn: everything in the central square, nothing overlapping, every block in play.
    ar = env.arena
    assert (np.abs(ar.pos) <= SPAWN_HALF).all() and env.blocks_left.all()
    from mlx.envs.native.arena import rounded_box_contact

    for i, j in ar.pairs:
        _, pen = rounded_box_contact(ar.pos[:, j] - ar.pos[:, i], ar.half[:, ar.W + i] + ar.half[:, ar.W + j],
                                     ar.radius[ar.W + i] + ar.radius[ar.W + j])  # fmt: skip
        assert (pen <= 0).all()


def test_parameters():
    with pytest.raises(EnvError, match="shared_reward"):
        make_env("pushblockcollab", num_areas=1, seed=0, parameters={"shared_reward": 0.5})
    with pytest.raises(EnvError, match="unknown"):
        make_env("pushblockcollab", num_areas=1, seed=0, parameters={"block_scale": 1.0})


# ---- the rules ----


def test_a_block_moves_only_with_its_number_of_agents():
    """Nine areas: the small, large and very large block each pushed by 1, 2 and 3 agents abreast."""
    env = make_env("pushblockcollab", num_areas=9, seed=0)
    env.reset()
    lanes = {1: [0.0], 2: [-0.5, 0.5], 3: [-1.0, 0.0, 1.0]}
    actions = np.zeros((9, AGENTS), np.int64)
    for area in range(9):
        block, pushers = (SMALL, LARGE, VERY_LARGE)[area // 3], area % 3 + 1
        half = BLOCK_HALF[block]
        xs = [x * (1.0 if block != SMALL else 0.6) for x in lanes[pushers]]
        agents = {k: (xs[k], 3.0 + half + 0.55, math.pi) for k in range(pushers)}  # behind it, facing the goal
        scene(env, agents, {block: (0.0, 3.0)}, areas=area)
        actions[area, :pushers] = FORWARD
    z0 = env.arena.pos[1, AGENTS + np.repeat([SMALL, LARGE, VERY_LARGE], 3), np.arange(9)].copy()
    for _ in range(10):
        step(env, actions.reshape(-1))
    moved = z0 - env.arena.pos[1, AGENTS + np.repeat([SMALL, LARGE, VERY_LARGE], 3), np.arange(9)]
    enough = np.array([1, 1, 1, 0, 1, 1, 0, 0, 1], bool)  # pushers >= 1 / 2 / 3
    assert (moved[enough] > 2.0).all(), moved
    assert (np.abs(moved[~enough]) < 0.01).all(), moved


def test_a_push_carries_through_touching_blocks():
    """A block pushed against another passes the push on when enough agents push: three agents pushing a
    large block move the very large one touching it (area 0); two agents, enough for the large block, are
    not enough for the very large one, which holds both still (area 1)."""
    env = make_env("pushblockcollab", num_areas=2, seed=0)
    env.reset()
    blocks = {LARGE: (0.0, 3.0), VERY_LARGE: (0.0, 3.0 - 1.0 - 1.5)}  # touching, the very large one ahead
    behind = 3.0 + 1.0 + 0.55
    scene(env, {k: (k - 1.0, behind, math.pi) for k in range(3)}, blocks, areas=0)
    scene(env, {k: (k - 0.5, behind, math.pi) for k in range(2)}, blocks, areas=1)
    start = env.arena.pos[1, AGENTS + np.array([LARGE, VERY_LARGE])].copy()  # [2 blocks, 2 areas]
    for _ in range(8):
        step(env, [FORWARD, FORWARD, FORWARD, FORWARD, FORWARD, NOOP])
    moved = start - env.arena.pos[1, AGENTS + np.array([LARGE, VERY_LARGE])]
    assert (moved[:, 0] > 1.0).all(), moved  # 250 kg: slower than one block
    assert (np.abs(moved[:, 1]) < 0.02).all(), moved  # (the contact's few centimetres of give)


def test_scoring_pays_the_group_and_removes_the_block():
    env = make_env("pushblockcollab", num_areas=2, seed=0)
    env.reset()
    goal_blocks = {SMALL: (-8.0, -9.0), LARGE: (0.0, -9.5), VERY_LARGE: (8.0, -10.0)}  # overlapping the goal
    scene(env, {0: (0.0, -2.0, math.pi)}, goal_blocks, areas=0)  # agent 0 looks at the goal
    scene(env, {}, {}, areas=1)
    before = env._observe_areas()[0][0]
    decision, terminal = step(env)
    assert len(terminal) == 0
    paid = float(BLOCK_VALUE[SMALL] + BLOCK_VALUE[LARGE] + BLOCK_VALUE[VERY_LARGE])
    np.testing.assert_allclose(decision.group_reward, [paid + DECISION_PENALTY] * 3 + [DECISION_PENALTY] * 3,
                               rtol=1e-6)  # fmt: skip
    assert not decision.reward.any()  # individual rewards stay 0
    assert env.blocks_left[:, 0].tolist() == [False, True, False, True, False, True] and env.blocks_left[:, 1].all()
    after = decision.obs[0][0]
    for channel in (B_SMALL, B_LARGE, B_VERY_LARGE):
        assert before[..., channel].any() and not after[..., channel].any()  # scored blocks vanish
    assert after[..., GOAL].any()


def test_all_blocks_scored_ends_the_group_episode():
    env = make_env("pushblockcollab", num_areas=2, seed=0)
    env.reset()
    in_goal = {b: (x, -10.0) for b, x in enumerate([-11.0, -9.5, -7.0, -3.5, 0.5, 5.5])}
    scene(env, {}, in_goal, areas=0)
    scene(env, {}, {}, areas=1)
    decision, terminal = step(env)
    assert terminal.agent_id.tolist() == [0, 1, 2] and terminal.group_id.tolist() == [1, 1, 1]
    assert not terminal.interrupted.any() and not terminal.reward.any()
    total = float(BLOCK_VALUE.sum()) + DECISION_PENALTY
    np.testing.assert_allclose(terminal.group_reward, [total] * 3, rtol=1e-6)
    assert env._steps.tolist() == [0, 1]  # area 0 restarted
    assert env.blocks_left.all() and (np.abs(env.arena.pos[:, :, 0]) <= SPAWN_HALF).all()
    assert decision.agent_id.tolist() == list(range(6))
    np.testing.assert_allclose(decision.group_reward, [0.0] * 3 + [DECISION_PENALTY] * 3)


def test_timeout_interrupts_the_group():
    env = make_env("pushblockcollab", num_areas=2, seed=0)
    env.reset()
    scene(env, {}, {})
    env._steps[0] = MAX_DECISIONS - 1
    decision, terminal = step(env)
    assert terminal.agent_id.tolist() == [0, 1, 2] and terminal.interrupted.all()
    np.testing.assert_allclose(terminal.group_reward, [DECISION_PENALTY] * 3)
    assert len(decision) == 6 and env._steps.tolist() == [0, 1]


def test_shared_reward_pays_the_group_reward_to_each_agent():
    env = make_env("pushblockcollab", num_areas=1, seed=0, parameters={"shared_reward": 1.0})
    env.reset()
    scene(env, {}, {SMALL: (0.0, -9.0)})
    decision, _ = step(env)
    np.testing.assert_allclose(decision.reward, decision.group_reward)
    np.testing.assert_allclose(decision.reward, [1.0 + DECISION_PENALTY] * 3, rtol=1e-6)


# ---- the sensors ----


def _cells(grid: np.ndarray) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(grid), strict=True)}


def test_grid_cells_by_hand():
    """Agent 0 at (0, -10) facing +z sees a small block 2 m right and 5 m ahead in exactly four cells, the goal
    strip in its two nearest rows, agent 1 (10 m ahead, 3 m left, on a cell corner) in four cells, not
    itself; turned to face +x with everything turned along, it sees the same."""
    env = make_env("pushblockcollab", num_areas=1, seed=0)
    env.reset()
    scene(env, {0: (0.0, -10.0, 0.0), 1: (-3.0, 0.0, 0.0), 2: (0.0, -12.0, 0.0)}, {SMALL: (2.0, -5.0)},
          hide_others=True)  # fmt: skip
    grid = env._observe_areas()[0][0]
    assert _cells(grid[..., B_SMALL]) == {(14, 11), (14, 12), (15, 11), (15, 12)}
    assert _cells(grid[..., GOAL]) == {(r, c) for r in (18, 19) for c in range(20)}
    assert _cells(grid[..., AGENT]) == {(9, 6), (9, 7), (10, 6), (10, 7)}
    assert not grid[..., WALL].any() and not grid[..., B_LARGE].any() and not grid[..., B_VERY_LARGE].any()
    x, z = grid_layout(GRID)
    assert (x[11], x[12], z[14], z[15]) == (1.5, 2.5, 5.5, 4.5)
    # Turned a quarter right: forward is +x, right is -z.
    scene(env, {0: (-10.0, 0.0, math.pi / 2), 1: (0.0, 3.0, 0.0), 2: (-12.0, 0.0, 0.0)}, {SMALL: (-5.0, -2.0)},
          hide_others=True)  # fmt: skip
    turned = env._observe_areas()[0][0]
    np.testing.assert_array_equal(turned[..., B_SMALL], grid[..., B_SMALL])
    np.testing.assert_array_equal(turned[..., AGENT], grid[..., AGENT])
    assert _cells(turned[..., GOAL]) == {(r, c) for r in range(20) for c in (18, 19)}  # the goal, to its right


def test_grid_sees_the_wall_ahead():
    env = make_env("pushblockcollab", num_areas=1, seed=0)
    env.reset()
    scene(env, {0: (0.0, 5.0, 0.0), 1: (-5.0, -5.0, 0.0), 2: (5.0, -5.0, 0.0)}, {}, hide_others=True)
    grid = env._observe_areas()[0][0]
    assert _cells(grid[..., WALL]) == {(12, c) for c in range(20)}  # the wall's 0.5 m slab 7.5 m ahead
    assert not grid[..., :WALL].any() and not grid[..., WALL + 1 :].any()


def test_grid_against_a_brute_force_reference():
    """Random scenes: the sensor against points sampled inside every cell (9 x 9 each), tested against every
    shape. Every sampled overlap is seen; a cell the samples miss can only be a sliver overlap."""
    env = make_env("pushblockcollab", num_areas=4, seed=1)
    rng = np.random.default_rng(0)
    env.reset()
    for _ in range(15):
        step(env, rng.integers(0, 7, 12))
    ar, grid = env.arena, env._observe_areas()[0].reshape(4, AGENTS, 20, 20, 6)
    x, z = grid_layout(GRID)
    u = (np.arange(9) - 4) / 8.0  # offsets in a cell, edges included
    lx = (x[None, :, None, None] + u[None, None, :, None]) + 0 * z[:, None, None, None]  # [H, W, 9, 1]
    lz = z[:, None, None, None] + u[None, None, None, :] + 0 * x[None, :, None, None]  # [H, W, 1, 9]
    lx, lz = np.broadcast_arrays(lx, lz)
    h = ar.heading.T[..., None, None, None, None]  # [n, A, 1, 1, 1, 1]
    px, pz = ar.pos[0, :AGENTS].T[..., None, None, None, None], ar.pos[1, :AGENTS].T[..., None, None, None, None]
    wx = px + lx * np.cos(h) + lz * np.sin(h)
    wz = pz - lx * np.sin(h) + lz * np.cos(h)
    want = np.zeros(grid.shape, bool)
    beyond = (np.abs(wx) > AREA_HALF) | (np.abs(wz) > AREA_HALF)
    want[..., WALL] = (beyond & (np.abs(wx) < AREA_HALF + 0.5) & (np.abs(wz) < AREA_HALF + 0.5)).any((-1, -2))
    tags = list(GRID.tags)
    for s in range(ar.S):
        name = ar.tags[ar.tag[s, 0]]
        for area in range(4):
            if not ar.active[s, area]:
                continue
            cx, cz = ar.center[:, s, area]
            hx, hz = ar.half[:, s, area]
            r = ar.radius[s, area]
            gx = np.maximum(np.abs(wx[area] - cx) - hx, 0.0)
            gz = np.maximum(np.abs(wz[area] - cz) - hz, 0.0)
            inside = (gx**2 + gz**2 < r**2) if r > 0 else ((gx == 0) & (gz == 0))
            seen = inside.any((-1, -2))  # [A, H, W]
            if s >= ar.W and s - ar.W < AGENTS:
                seen[s - ar.W] = False  # not oneself
            want[area, ..., tags.index(name)] |= seen
    got = grid.astype(bool)
    assert not (want & ~got).any()  # nothing sampled is missed
    assert (got & ~want).sum() <= 0.01 * want.sum()  # slivers between the samples only


def test_body_sensor_is_the_velocity_in_the_agents_frame():
    env = make_env("pushblockcollab", num_areas=1, seed=0)
    env.reset()
    ar = env.arena
    ar.heading[:, 0] = [math.pi / 2, 0.0, math.pi]  # facing +x, +z, -z
    ar.vel[:, :AGENTS, 0] = [[3.0, 3.0, 3.0], [-2.0, -2.0, -2.0]]
    body = env._observe_areas()[1]
    # (right, up, forward): facing +x, right is -z; facing +z, right is +x; facing -z, right is -x.
    np.testing.assert_allclose(body[:, 7:], [[2.0, 0.0, 3.0], [3.0, 0.0, -2.0], [-3.0, 0.0, 2.0]], atol=1e-6)


# ---- scores, speed, pictures, the wire ----


def first_episodes(policy: str, areas: int, seed: int = 0, decisions: int = MAX_DECISIONS) -> np.ndarray:
    """The group reward of every area's first episode (POCA's Group Cumulative Reward), or of its first
    ``decisions`` decisions."""
    env = make_env("pushblockcollab", num_areas=areas, seed=seed)
    rng = np.random.default_rng(seed)
    scripted = Scripted(seed)
    env.reset()
    total, done = np.zeros(areas), np.zeros(areas, bool)
    for _ in range(decisions):
        n = areas * AGENTS
        step(env, scripted(env) if policy == "scripted" else rng.integers(0, 7, n))
        decision, terminal = env.get_steps(BEHAVIOR)
        paid = decision.group_reward[::AGENTS].astype(np.float64)
        ended = terminal.group_id[::AGENTS] - 1
        paid[ended] = terminal.group_reward[::AGENTS]
        total += np.where(done, 0.0, paid)
        done[ended] = True
        if done.all():
            break
    return total


def test_scripted_policy_scores_and_random_does_not():
    """A quick check over the first 400 decisions; test_documented_scores (slow) measures whole episodes."""
    scripted = first_episodes("scripted", 16, decisions=400)
    random = first_episodes("random", 4, decisions=400)
    assert scripted.mean() > 8.0  # about 10.9: most areas finish in about 200 decisions; whole episodes: below
    assert random.mean() < 0.5


@pytest.mark.slow
def test_documented_scores():
    scripted = np.concatenate([first_episodes("scripted", 64, seed) for seed in range(4)])
    random = np.concatenate([first_episodes("random", 64, seed) for seed in range(2)])
    print(f"pushblockcollab: scripted {scripted.mean():.2f} (complete {(scripted > 11).mean():.2f}), "
          f"random {random.mean():.2f}")  # fmt: skip
    assert abs(scripted.mean() - SCRIPTED_SCORE) < 0.5 and abs(random.mean() - RANDOM_SCORE) < 0.1


def test_render():
    env = make_env("pushblockcollab", num_areas=3, seed=0)
    env.reset()
    pictures = env.render([0, 2])
    assert pictures.dtype == np.uint8 and pictures.shape[0] == 2 and pictures.shape[-1] == 3
    assert len({tuple(c) for c in pictures[0].reshape(-1, 3)}) >= 6  # floor, walls, goal, blocks, agents


def test_groups_cross_the_wire_from_an_env_process():
    """Served by mlx-env over ML-Agents' gRPC protocol, the env steps as in-process: the grid observation,
    group ids and group rewards included."""
    step_side_by_side("pushblockcollab", BEHAVIOR, 2, 25, random_actions())


# ---- a scripted policy with privileged state (the env's arrays), vectorised over areas ----

# Lateral places of the three agents behind a block, per kind (small, large, very large), left to right.
LANES = np.array([[-0.45, 0.0, 0.45], [-0.9, 0.0, 0.9], [-1.05, 0.0, 1.05]], np.float32)
# Push directions (x, z): toward the goal (-z), then sideways (to clear a block stuck behind another).
DIRECTIONS = np.array([[0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]], np.float32)
SIDEWAYS_COST, PATH_COST, STICKY = 50.0, 20.0, 3.0
STUCK_WINDOW, WANDER, STILL = 20, 8, 0.5
# The mover: an agent keeps facing the push direction (turning while more than FACE_TOLERANCE degrees off)
# and picks, among no-op, forward, backward and the two strafes, the move whose predicted position (this
# move, then the same, the opposite or no move for one decision, then coasting: HORIZON physics steps)
# lands nearest its waypoint; lateral errors weigh LATERAL_WEIGHT times more (a strafe followed by the
# opposite one shifts an agent by only 0.25 m, one followed by nothing by 1.5 m: positioning is coarse).
FACE_TOLERANCE, HORIZON, LATERAL_WEIGHT, SPEED_COST, MOVE_MARGIN = 12.0, 20, 3.0, 0.02, 0.05
SPOT, OUT, BACK_OFF, ON_FACE, REACH = 0.55, 1.3, 1.4, 0.2, 2.5
MOVES = ((NOOP, 0.0, 0.0), (FORWARD, 3.0, 0.0), (BACK, -3.0, 0.0), (RIGHT, 0.0, 2.25), (LEFT, 0.0, -2.25))
AGENT_DAMP, AGENT_FRICTION = 1.0 - 4.0 * 0.02, 0.6 * 9.81 * 1.5 * 0.02  # per physics step (drag 4; mu g dt)


def _frame(x: np.ndarray, z: np.ndarray, fx: np.ndarray, fz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(along, right) coordinates of offsets (x, z) in the frame facing (fx, fz); right = (fz, -fx)."""
    return x * fx + z * fz, x * fz - z * fx


def _choose(env: PushBlockCollabEnv, prev: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per area, the block to push, the push direction and the choice's index: the block nearest the goal
    whose rear is clear goes toward the goal (a clear way first); a block whose way is blocked may go
    sideways first; the last choice is kept unless another is clearly better."""
    ar = env.arena
    bx, bz = ar.pos[0, AGENTS:], ar.pos[1, AGENTS:]  # [6, n]
    left = env.blocks_left
    h = BLOCK_HALF[:, None]
    other = left[None, :] & ~np.eye(6, dtype=bool)[:, :, None]  # [6 block, 6 other, n]
    ox, oz = bx[None] - bx[:, None], bz[None] - bz[:, None]  # other - block [6, 6, n]
    oh = BLOCK_HALF[None, :, None]
    cost = np.full((3, 6, ar.n), np.inf, np.float32)
    clear_rear = np.zeros((3, 6, ar.n), bool)
    clear_front = np.zeros((3, 6, ar.n), bool)
    for d, (fx, fz) in enumerate(DIRECTIONS):
        s, u = _frame(ox, oz, fx, fz)
        lateral = np.abs(u) < h[None] + oh + 1.0  # [6, 6, n]
        rear = lateral & (s + oh > -(h[:, None] + 2.2)) & (s - oh < -h[:, None])
        front = lateral & (s - oh < h[:, None] + 1.0) & (s + oh > h[:, None])
        # The agents' places behind the block must lie inside the walls.
        wx, wz = bx - fx * (h + 1.2), bz - fz * (h + 1.2)
        inside = (np.abs(wx) < AREA_HALF - 0.5) & (np.abs(wz) < AREA_HALF - 0.5)
        clear_rear[d] = ~(rear & other).any(1) & inside
        clear_front[d] = ~(front & other).any(1)
    # The whole way to the goal: no other block in the block's column ahead of it.
    column = np.abs(ox) < h[None] + oh + 0.1
    path_clear = ~(column & (oz < 0) & other).any(1)
    towards_goal = clear_rear[0] & (clear_front[0] | (BLOCK_KIND[:, None] > 0))
    cost[0] = np.where(towards_goal, bz + np.where(path_clear, 0.0, PATH_COST), np.inf)
    stuck = ~(towards_goal & path_clear)
    for d in (1, 2):
        # Sideways only while the way to the goal is blocked, away from the walls.
        room = AREA_HALF - h - np.abs(bx + DIRECTIONS[d, 0] * 2.0)
        ok = stuck & clear_rear[d] & clear_front[d] & (room > 0.5)
        cost[d] = np.where(ok, SIDEWAYS_COST + bz, np.inf)
    cost = np.where(left[None], cost, np.inf)
    flat = cost.reshape(-1, ar.n)
    if prev is not None:  # keep the last choice unless another is clearly better (no dithering)
        flat[prev, np.arange(ar.n)] -= STICKY
    best = flat.argmin(0)
    d, t = best // 6, best % 6
    none = ~np.isfinite(flat.min(0))  # nothing looks feasible: the nearest block, toward the goal
    nearest = np.where(left, bz, np.inf).argmin(0)
    return np.where(none, nearest, t), np.where(none, 0, d), best


class Scripted:
    """The scripted policy with its memory: each area's last choice, and a random walk of a few decisions for
    an agent wedged somewhere (it has not moved STILL metres in STUCK_WINDOW decisions while no block moved)."""

    def __init__(self, seed: int = 0) -> None:
        self.prev: np.ndarray | None = None
        self.rng = np.random.default_rng(seed)
        self.anchor: np.ndarray | None = None  # each agent's position STUCK_WINDOW decisions ago
        self.clock = 0
        self.wander = np.zeros(0, np.int64)  # decisions of random moves left, per agent

    def __call__(self, env: PushBlockCollabEnv) -> np.ndarray:
        act, self.prev = scripted_actions(env, self.prev)
        pos = env.arena.pos[:, :AGENTS].transpose(2, 1, 0).reshape(-1, 2)  # [3n, 2] in agent-id order
        if self.anchor is None:
            self.anchor, self.wander = pos.copy(), np.zeros(len(pos), np.int64)
        self.clock += 1
        if self.clock % STUCK_WINDOW == 0:
            # An agent that has not moved for a while and does not push a moving block is wedged.
            moved = np.hypot(*(pos - self.anchor).T)
            block_still = np.repeat(np.hypot(*env.arena.vel[:, AGENTS:]).max(0) < 0.1, AGENTS)
            stuck = (moved < STILL) & block_still
            self.wander[stuck] = WANDER
            self.anchor = pos.copy()
        roam = self.wander > 0
        act = np.where(roam, self.rng.integers(1, 7, len(act)), act)
        self.wander[roam] -= 1
        return act


def _move(vs: np.ndarray, vu: np.ndarray, es: np.ndarray, eu: np.ndarray) -> np.ndarray:
    """The move (NOOP, FORWARD, BACK, RIGHT, LEFT) of agents facing the push direction, with velocities
    (vs, vu) and waypoint offsets (es, eu) in their frame (along, right), whose predicted end point is
    nearest the waypoint (see MOVES and the constants above); a move must beat no-op by MOVE_MARGIN."""
    best, act = None, None
    for move, acc_s, acc_u in MOVES:
        for follow in (0.0, 1.0, -1.0):  # the next decision: nothing, the same move, the opposite one
            ps, pu, qs, qu = vs.copy(), vu.copy(), np.zeros_like(vs), np.zeros_like(vs)
            for k in range(HORIZON):
                m = 1.0 if k < 5 else (follow if k < 10 else 0.0)
                ps, pu = (ps + acc_s * m) * AGENT_DAMP, (pu + acc_u * m) * AGENT_DAMP
                slow = np.maximum(1.0 - AGENT_FRICTION / np.maximum(np.hypot(ps, pu), 1e-6), 0.0)
                ps, pu = ps * slow, pu * slow
                qs, qu = qs + ps * 0.02, qu + pu * 0.02
            cost = (qs - es) ** 2 + LATERAL_WEIGHT * (qu - eu) ** 2 + SPEED_COST * (ps**2 + pu**2)
            if best is None:
                best, act = cost, np.full(cost.shape, move)
            else:
                better = cost < best - MOVE_MARGIN
                best, act = np.where(better, cost, best), np.where(better, move, act)
    assert act is not None
    return act


def scripted_actions(env: PushBlockCollabEnv, prev: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every agent's action [3n]: all three face the push direction of the chosen block (see _choose) and
    move without turning (_move): an agent in front of or beside the block steps out of its column and
    round to the back; behind it, an agent goes to its lane; on the rear face, it pushes (forward)."""
    ar = env.arena
    a = np.arange(ar.n)
    t, d, choice = _choose(env, prev)
    fx, fz = DIRECTIONS[d, 0][None], DIRECTIONS[d, 1][None]  # [1, n]
    tx, tz, th = ar.pos[0, AGENTS + t, a][None], ar.pos[1, AGENTS + t, a][None], BLOCK_HALF[t][None]
    s, u = _frame(ar.pos[0, :AGENTS] - tx, ar.pos[1, :AGENTS] - tz, fx, fz)  # agents in the push frame
    vs, vu = _frame(ar.vel[0, :AGENTS], ar.vel[1, :AGENTS], fx, fz)
    # Lanes by lateral rank (the leftmost agent takes the leftmost lane): agents do not cross.
    lane = np.take_along_axis(LANES[BLOCK_KIND[t]].T, u.argsort(0).argsort(0), 0)  # [3, n]
    ahead = s > -(th + 0.3)  # not behind the rear face (an agent pressing it is at -(th + 0.5))
    in_column = np.abs(u) < th + 0.8
    side = np.where(u >= 0, 1.0, -1.0) * (th + OUT)
    # Waypoints (push frame): in the column ahead, sideways out of it; beside it, to behind its corner;
    # behind it, to the lane (from further back while not yet in line with the rear face).
    on_face = np.abs(u) < th + ON_FACE
    ws = np.where(
        ahead, np.where(in_column, s, -(th + BACK_OFF)), np.where(on_face, -(th + SPOT), np.minimum(s, -(th + 1.0)))
    )
    wu = np.where(ahead, side, lane)
    act = _move(vs, vu, ws - s, wu - u)
    act = np.where(~ahead & on_face & (s > -(th + REACH)), FORWARD, act)  # on the rear face: push
    err = (ar.heading[:AGENTS] - np.arctan2(fx, fz) + math.pi) % (2 * math.pi) - math.pi
    act = np.where(np.abs(err) > np.radians(FACE_TOLERANCE), np.where(err > 0, LEFT_TURN, RIGHT_TURN), act)
    return act.T.reshape(-1), choice
