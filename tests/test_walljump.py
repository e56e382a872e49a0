"""WallJump: two behaviours chosen per episode, upstream sizes and rewards, jumps over low walls, the
block as a step over high ones, falls, sensors, parameters and samplers per episode."""

from __future__ import annotations

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.native.walljump import BEHAVIORS, MAX_DECISIONS, WallJumpEnv
from mlx.params.samplers import AreaSampler, UniformSampler

FORWARD, FORWARD_JUMP, IDLE = [1, 0, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]


def act(env: WallJumpEnv, rows: list[list[int]] | list[int]) -> dict[str, tuple]:
    """One decision: every agent takes ``rows`` (one action for all, or one per area)."""
    actions = np.array(rows, np.int32)
    if actions.ndim == 1:
        actions = np.tile(actions, (env.num_areas, 1))
    for name in BEHAVIORS:
        decision, _ = env.get_steps(name)
        env.set_actions(name, ActionTuple(np.zeros((len(decision), 0), np.float32), actions[decision.agent_id]))
    env.step()
    return {name: env.get_steps(name) for name in BEHAVIORS}


def staged(height: float, block=(-7.0, -8.0), x: float = 6.37, n: int = 1, z: float = -12.0) -> WallJumpEnv:
    """Areas whose agent faces the goal (+z) at (x, z), with every wall ``height`` and the block at ``block``."""
    env = WallJumpEnv(
        n, seed=0, parameters=dict.fromkeys(("no_wall_height", "small_wall_height", "big_wall_height"), height)
    )
    env.reset()
    env.heading[:] = 0.0
    env.pos[0], env.pos[2] = x, z
    env.block[0], env.block[1] = block
    env._measure()
    env._ground_check()
    env._publish(env._restart_observations(np.arange(n)), np.zeros(n, np.float32))  # observe the staged scene
    return env


def newest_frame(env: WallJumpEnv, sensor: int) -> np.ndarray:
    """Area 0's newest frame of one sensor (0 raised rays, 1 rays, 2 vector)."""
    decision = env.get_steps(BEHAVIORS[env.behavior[0]])[0]
    return decision.obs[sensor][list(decision.agent_id).index(0)].reshape(6, -1)[-1]


def run_until_end(env: WallJumpEnv, policy, limit: int = 60) -> tuple[int, float]:
    """Decisions until the first episode of area 0 ends, and its terminal reward."""
    for k in range(limit):
        steps = act(env, policy(env))
        for _, terminal in steps.values():
            if len(terminal) and 0 in terminal.agent_id:
                return k, float(terminal.reward[list(terminal.agent_id).index(0)])
    return limit, float("nan")


def jump_near_wall(env: WallJumpEnv) -> list[int]:
    return FORWARD_JUMP if env.pos[2, 0] > -9.0 else FORWARD


def test_specs_match_upstream():
    env = make_env("walljump", num_areas=3, seed=0)
    assert sorted(env.behavior_specs) == ["BigWallJump", "SmallWallJump"]
    for spec in env.behavior_specs.values():
        assert spec.action_spec.discrete_branches == (3, 3, 3, 2) and spec.action_spec.continuous_size == 0
        shapes = [o.shape for o in spec.observation_specs]
        assert shapes == [(210,), (210,), (24,)]  # 6 stacked frames of 35 + 35 + 4 = 74 floats
        assert [o.name for o in spec.observation_specs] == [
            "StackingSensor_size6_OffsetRayPerceptionSensor",
            "StackingSensor_size6_RayPerceptionSensor",
            "StackingSensor_size6_VectorSensor_size4",
        ]


def test_each_episode_picks_its_behaviour_as_upstream():
    env = WallJumpEnv(2000, seed=1)
    env.reset()
    big = env.behavior == 1
    assert abs(big.mean() - 0.6) < 0.04  # configurations 2, 3, 4 of 0..4
    assert (env.wall_height[big] == 8.0).all()
    small_heights = env.wall_height[~big]
    assert set(np.unique(small_heights)) == {0.0, 4.0}  # no wall or the small wall
    assert abs((small_heights == 0).mean() - 0.5) < 0.05
    decision_small, _ = env.get_steps("SmallWallJump")
    decision_big, _ = env.get_steps("BigWallJump")
    assert len(decision_small) + len(decision_big) == 2000
    assert set(decision_big.agent_id.tolist()) == set(np.flatnonzero(big).tolist())


def test_a_small_wall_is_jumped_and_the_goal_gives_plus_one():
    env = staged(4.0)
    k, reward = run_until_end(env, jump_near_wall)
    assert reward == 1.0 and k < 20


def test_without_jumping_the_wall_stops_the_agent():
    env = staged(4.0)
    k, reward = run_until_end(env, lambda e: FORWARD, limit=30)
    assert np.isnan(reward)
    assert env.pos[2, 0] == pytest.approx(-2.73 - 0.5, abs=0.02)  # resting against the wall's near face


def test_a_big_wall_needs_the_block_as_a_step():
    without = staged(8.0)
    _, reward = run_until_end(without, jump_near_wall, limit=40)
    assert np.isnan(reward) and without.pos[2, 0] < -2.7  # never over the wall
    with_block = staged(8.0, block=(6.37, -4.23))  # the block pushed against the wall
    _, reward = run_until_end(with_block, jump_near_wall)
    assert reward == 1.0


@pytest.mark.parametrize(("height", "cleared"), [(6.0, True), (7.0, True), (7.5, False)])
def test_walls_up_to_seven_are_jumped_without_the_block(height, cleared):
    """Pressing jump from 5 m before the wall clears it up to height 7 (top 3.5 m): a new jump may start
    while the agent is still up to ~0.55 m above the ground (the 1 m ground ray). So the curriculum's
    lessons 0 and 1 (walls up to 7) can be passed by jumping alone (README, WallJump benchmark)."""
    env = staged(height)
    _, reward = run_until_end(env, lambda e: FORWARD_JUMP if e.pos[2, 0] > -8.0 else FORWARD, limit=40)
    assert (reward == 1.0) is cleared


def test_the_agent_pushes_the_block():
    env = staged(0.0, block=(6.37, -8.0))
    for _ in range(4):
        act(env, FORWARD)
    assert env.block[1, 0] > -8.0 + 0.5  # pushed forward
    assert env.pos[2, 0] < env.block[1, 0] - 1.5 - 0.4  # the agent stays behind it


def test_running_off_the_edge_gives_minus_one_and_step_penalties_accumulate():
    env = staged(0.0)
    env.heading[:] = np.pi / 2  # facing +x: the edge at x = 10.5 is 4 m away
    steps = act(env, IDLE)
    decision = steps["SmallWallJump"][0] if len(steps["SmallWallJump"][0]) else steps["BigWallJump"][0]
    assert decision.reward[0] == pytest.approx(-0.0025)  # -0.0005 per physics step, 5 per decision
    _, reward = run_until_end(env, lambda e: FORWARD)
    assert reward == -1.0


def test_the_block_falling_off_ends_the_episode():
    env = staged(0.0, block=(9.0, -8.0))
    env.block_vel[0] = 30.0  # sliding off the +x edge (drag 1, no floor friction)
    _, reward = run_until_end(env, lambda e: IDLE, limit=5)
    assert reward == -1.0


def test_max_step_interrupts_after_400_decisions():
    env = staged(0.0)
    for k in range(MAX_DECISIONS):
        steps = act(env, IDLE)
        ended = [t for _, t in steps.values() if len(t)]
        assert not ended or k == MAX_DECISIONS - 1
    assert len(ended) == 1 and ended[0].interrupted.all()
    assert ended[0].reward[0] == pytest.approx(-0.0025)


def test_rays_see_the_wall_ahead_and_the_raised_sensor_looks_over_a_low_wall():
    env = staged(1.5, x=6.37)  # a low wall (top 0.75) straight ahead, the goal behind it
    offset, low, vector = (newest_frame(env, i) for i in range(3))
    forward_low, forward_offset = low[:5], offset[:5]  # ray 0 points forward: (wall, goal, block, miss, fraction)
    assert forward_low.tolist()[:4] == [1, 0, 0, 0]
    # The wall's face is 9.27 m ahead; the sphere (r 0.5, centre 0.2 m above the wall's top) touches it
    # sqrt(0.5^2 - 0.2^2) earlier.
    assert forward_low[4] == pytest.approx((9.27 - np.sqrt(0.21)) / 20, abs=1e-4)
    assert forward_offset.tolist()[:4] == [0, 1, 0, 0]  # over the wall: the goal
    assert vector.tolist() == pytest.approx([6.37 / 20, 0.95 / 20, (-12 + 4) / 20, 1.0])
    # The raised sensor rises 1 m every 8 m: from the spawn line it passes over even a big wall (top 4 m),
    # near the wall it meets it.
    far, near = staged(8.0), staged(8.0, z=-5.0)
    assert newest_frame(far, 0).tolist()[:4] == [0, 1, 0, 0]
    assert newest_frame(near, 0).tolist()[:4] == [1, 0, 0, 0]


def test_observations_stack_six_frames_and_restart_at_each_episode():
    env = staged(0.0)
    first = env.get_steps(BEHAVIORS[env.behavior[0]])[0].obs[2][0]
    assert (first[:20] == 0).all() and first[20:].any()  # only the newest frame at an episode start
    steps = act(env, FORWARD)
    newest = next(d for d, _ in steps.values() if len(d)).obs[2][0]
    assert (newest[16:20] == first[20:]).all()  # the previous frame moved one slot back


def test_parameters_and_samplers_apply_per_episode():
    env = WallJumpEnv(400, seed=3)
    env.set_environment_parameter("small_wall_height", 2.0)
    assert env.set_environment_sampler("big_wall_height", AreaSampler(UniformSampler(4.0, 7.0), seed=1))
    env.reset()
    big = env.behavior == 1
    heights = env.wall_height[big]
    assert heights.min() >= 4.0 and heights.max() < 7.0 and len(np.unique(heights)) == big.sum()
    assert set(np.unique(env.wall_height[~big])) == {0.0, 2.0}
    with pytest.raises(EnvError, match="unknown environment parameter 'wall_height'"):
        env.set_environment_parameter("wall_height", 1.0)
    with pytest.raises(EnvError, match=">= 0"):
        WallJumpEnv(1, parameters={"big_wall_height": -1.0})


def test_bad_actions_are_refused():
    env = WallJumpEnv(2, seed=0)
    env.reset()
    name = BEHAVIORS[env.behavior[0]]
    n = len(env.get_steps(name)[0])
    with pytest.raises(EnvError, match=r"shape"):
        env.set_actions(name, ActionTuple(np.zeros((n, 0), np.float32), np.zeros((n, 3), np.int32)))
    with pytest.raises(EnvError, match=r"0\.\.1"):
        env.set_actions(name, ActionTuple(np.zeros((n, 0), np.float32), np.full((n, 4), 2, np.int32)))
    with pytest.raises(EnvError, match="unknown behaviour"):
        env.get_steps("WallJump")


def test_same_seed_same_episodes():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, [3, 3, 3, 2], size=(30, 8, 4))
    runs = []
    for _ in range(2):
        env = WallJumpEnv(8, seed=5)
        env.reset()
        for a in actions:
            act(env, a.tolist())
        runs.append((env.pos.copy(), env.block.copy(), env.behavior.copy()))
    assert all((a == b).all() for a, b in zip(*runs, strict=True))


@pytest.mark.slow
@pytest.mark.learning
def test_ppo_with_the_curriculum_learns_small_wall_jump(workdir):
    """SmallWallJump on its full task (no wall or the 4-high wall) after the upstream lessons, well inside
    upstream's 5M steps (seed 1 reached 0.93 at 420k; about 10 minutes on 2 shared cores)."""
    import json

    from tests.conftest import run_mlx

    proc = run_mlx(
        "env=walljump",
        "curriculum=walljump",
        "seed=1",
        "run_id=wj",
        "behaviors.SmallWallJump.max_steps=500000",
        "trainer.max_steps=100000",  # BigWallJump stops learning early and only acts
        "tracking=none",
        "progress=plain",
        cwd=workdir,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in (workdir / "results/wj/run_logs/stats.jsonl").read_text().splitlines()]
    final = [
        r["mean_reward"]
        for r in rows
        if r["behavior"] == "SmallWallJump" and r["Environment/Lesson Number/small_wall_height"] == 3
    ]
    assert final and max(final) >= 0.8, final
