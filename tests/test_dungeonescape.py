"""DungeonEscape (mlx.envs.native.dungeonescape): the env contract, groups and group rewards, the agent that
dies catching the dragon (a TerminalSteps entry, then no decisions), key, door, cave and timeout rules,
the dragon's starts, the documented scores of the scripted policy and of random play, pictures,
and the groups over gRPC from an env process."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, DecisionSteps, EnvError, TerminalSteps
from mlx.envs.checker import check_env
from mlx.envs.native.dungeonescape import (
    BEHAVIOR,
    ESCAPE_REWARD,
    MAX_DECISIONS,
    RANDOM_SCORE,
    SCRIPTED_SCORE,
    DungeonEscapeEnv,
    scripted_actions,
)
from tests.wire import step_side_by_side

NOOP, FORWARD = 0, 1
Policy = Callable[[DungeonEscapeEnv, np.random.Generator], np.ndarray]


def make(areas: int = 2, seed: int = 0, shared_reward: float = 0.0) -> DungeonEscapeEnv:
    env = make_env("dungeonescape", num_areas=areas, seed=seed, parameters={"shared_reward": shared_reward})
    assert isinstance(env, DungeonEscapeEnv)
    env.reset()
    return env


def step(env: DungeonEscapeEnv, actions: np.ndarray | list[int] | None = None) -> tuple[DecisionSteps, TerminalSteps]:
    """One decision; no-ops for every deciding agent by default."""
    decision, _ = env.get_steps(BEHAVIOR)
    a = np.zeros(len(decision), np.int32) if actions is None else np.asarray(actions, np.int32)
    env.set_actions(BEHAVIOR, ActionTuple(np.zeros((len(a), 0), np.float32), a.reshape(-1, 1)))
    env.step()
    return env.get_steps(BEHAVIOR)


def put(env: DungeonEscapeEnv, area: int, k: int, x: float, z: float, heading: float = 0.0) -> None:
    """Move agent k of an area (standing still)."""
    ar = env.arena
    ar.pos[:, k, area] = (x, z)
    ar.vel[:, k, area] = 0.0
    ar.heading[k, area] = heading


def quiet(env: DungeonEscapeEnv) -> None:
    """Every area: agents in three far corners away from everything, the dragon standing still mid-room."""
    for area in range(env.n):
        for k, (x, z) in enumerate(((-9.0, -9.0), (-9.0, 9.0), (9.0, 9.0))):
            put(env, area, k, x, z)
    env.arena.pos[:, env._dragon] = np.array([[2.0], [0.0]], np.float32)
    env.dragon_speed[:] = 0.0


def kill(env: DungeonEscapeEnv, area: int = 0, k: int = 0) -> tuple[DecisionSteps, TerminalSteps]:
    """Agent k of an area walks into the dragon (placed overlapping it)."""
    ex, ez = env.arena.pos[:, env._dragon, area]
    put(env, area, k, ex - 1.0, ez)
    return step(env)


def random_policy(env: DungeonEscapeEnv, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 7, int(env.alive.sum())).astype(np.int32)


def scripted_policy(env: DungeonEscapeEnv, rng: np.random.Generator) -> np.ndarray:
    return scripted_actions(env)


def score(policy: Policy, episodes: int, areas: int, seed: int = 0) -> tuple[float, float]:
    """Mean group reward of the first ``episodes`` group episodes that end (0 or 1 each: the door pays
    every agent still in the same +1) and their mean length in decisions."""
    env = make(areas, seed)
    rng = np.random.default_rng(seed)
    rewards: list[float] = []
    lengths: list[int] = []
    while len(rewards) < episodes:
        before = env._steps.copy()
        step(env, policy(env, rng))
        ended = np.flatnonzero(env.ended)
        rewards += env.escaped[ended].astype(float).tolist()
        lengths += (before[ended] + 1).tolist()
    return float(np.mean(rewards[:episodes])), float(np.mean(lengths[:episodes]))


def test_env_contract():
    check_env(lambda seed: make_env("dungeonescape", num_areas=3, seed=seed), steps=150)


def test_specs_and_groups():
    env = make(3)
    spec = env.behavior_specs[BEHAVIOR]
    assert [(o.shape, o.name) for o in spec.observation_specs] == [
        ((10,), "RBSensor"),
        ((360,), "StackingSensor_size3_RayPerceptionSensor"),
        ((1,), "VectorSensor_size1"),
    ]
    assert spec.action_spec.discrete_branches == (7,) and spec.action_spec.continuous_size == 0
    decision, terminal = env.get_steps(BEHAVIOR)
    assert decision.agent_id.tolist() == list(range(9)) and len(terminal) == 0
    assert decision.group_id.tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]  # nonzero, one group per platform
    assert not decision.reward.any() and not decision.group_reward.any()
    rb, rays, key = decision.obs
    np.testing.assert_array_equal(rb[:, :9], 0.0)  # at rest, identity pose
    np.testing.assert_array_equal(rb[:, 9], 1.0)
    assert not key.any()
    assert not rays[:, :240].any()  # only the newest of the 3 stacked frames is filled at the start
    frame = rays[:, 240:].reshape(9, 15, 8)
    assert (frame[:, :, :6].sum(2) + frame[:, :, 6] == 1).all()  # one tag or a miss per ray
    assert ((frame[:, :, 7] > 0) & (frame[:, :, 7] <= 1)).all()


def test_rigid_body_sensor_reads_velocity_in_the_agent_frame():
    env = make(1)
    quiet(env)
    put(env, 0, 0, -9.0, -9.0, heading=np.pi / 2)  # facing +x
    decision, _ = step(env, [FORWARD, NOOP, NOOP])
    rb = decision.obs[0][0]
    assert rb[2] > 1.0 and abs(rb[0]) < 1e-4 and rb[1] == 0.0  # forward speed, no sideways speed
    np.testing.assert_allclose(env.arena.vel[0, 0, 0], rb[2], rtol=1e-5)


def test_catching_the_dragon_kills_the_agent_and_drops_the_key():
    env = make(2)
    quiet(env)
    decision, terminal = kill(env, area=0, k=1)
    assert terminal.agent_id.tolist() == [1] and terminal.interrupted.tolist() == [False]
    assert terminal.group_id.tolist() == [1] and terminal.reward.tolist() == [0.0]
    assert terminal.group_reward.tolist() == [0.0]
    assert decision.agent_id.tolist() == [0, 2, 3, 4, 5]  # agent 1 no longer decides; its mates go on
    assert not env.dragon_alive[0] and env.key_out[0] and env.dragon_alive[1]
    ar = env.arena
    np.testing.assert_allclose(ar.center[:, env._key, 0], ar.pos[:, env._dragon, 0])  # where it was caught
    assert ar.active[env._key, 0] and ar.active[env._tomb, 0] and not ar.active[ar.W + 1, 0]
    # The dead agent never decides again in this group episode, whatever happens.
    for _ in range(3):
        decision, terminal = step(env)
        assert 1 not in decision.agent_id and 1 not in terminal.agent_id


@pytest.mark.parametrize("shared_reward", [0.0, 1.0])
def test_key_to_the_door_pays_the_agents_still_in(shared_reward):
    """shared_reward=1 (for independent PPO) pays the group reward as individual reward too."""
    env = make(2, shared_reward=shared_reward)
    quiet(env)
    kill(env, area=0, k=0)
    kx, kz = env.arena.center[:, env._key, 0]
    put(env, 0, 2, kx, kz)  # agent 2 walks onto the key
    decision, terminal = step(env)
    assert len(terminal) == 0 and env.has_key[0].tolist() == [False, False, True] and not env.key_out[0]
    assert decision.obs[2][decision.agent_id == 2].tolist() == [[1.0]]
    assert not env.arena.active[env._key, 0]
    put(env, 0, 2, 0.0, 11.55)  # against the door
    decision, terminal = step(env)
    assert terminal.agent_id.tolist() == [1, 2] and not terminal.interrupted.any()
    assert terminal.group_reward.tolist() == [ESCAPE_REWARD, ESCAPE_REWARD]  # the dead agent 0 is not paid
    assert terminal.reward.tolist() == [ESCAPE_REWARD * shared_reward] * 2
    assert terminal.obs[2].tolist() == [[0.0], [1.0]]
    assert env.ended.tolist() == [True, False] and env.escaped.tolist() == [True, False]
    assert decision.agent_id.tolist() == [0, 1, 2, 3, 4, 5]  # platform 0's next episode: all three back
    assert not decision.obs[2].any() and env.dragon_alive[0] and not env.arena.active[env._key, 0]


def test_the_door_without_the_key_does_nothing():
    env = make(1)
    quiet(env)
    put(env, 0, 0, 0.0, 11.55)
    _, terminal = step(env)
    assert len(terminal) == 0 and not env.ended[0]


def test_the_cave_kills_until_the_last_agent_or_the_key_holder_ends_the_group():
    env = make(1)
    quiet(env)
    put(env, 0, 0, 11.5, -11.2)  # touching the cave
    decision, terminal = step(env)
    assert terminal.agent_id.tolist() == [0] and not terminal.interrupted.any() and not env.ended[0]
    assert decision.agent_id.tolist() == [1, 2]
    put(env, 0, 1, 11.2, -11.5)
    decision, terminal = step(env)
    assert terminal.agent_id.tolist() == [1] and decision.agent_id.tolist() == [2]
    put(env, 0, 2, 11.5, -11.2)  # the last one: the group episode ends, no reward
    decision, terminal = step(env)
    assert terminal.agent_id.tolist() == [2] and not terminal.interrupted.any()
    assert terminal.group_reward.tolist() == [0.0] and env.ended[0] and not env.escaped[0]
    assert decision.agent_id.tolist() == [0, 1, 2]
    # The key holder on the cave ends the group for everyone still in.
    quiet(env)
    kill(env, 0, 0)
    kx, kz = env.arena.center[:, env._key, 0]
    put(env, 0, 1, kx, kz)
    step(env)
    assert env.has_key[0, 1]
    put(env, 0, 1, 11.5, -11.2)
    decision, terminal = step(env)
    assert terminal.agent_id.tolist() == [1, 2] and not terminal.interrupted.any()
    assert not terminal.group_reward.any() and env.ended[0] and not env.escaped[0]


def test_the_dragon_reaching_its_cave_ends_the_group():
    env = make(2)
    quiet(env)
    env.arena.pos[:, env._dragon, 0] = (10.5, -10.5)
    env.dragon_speed[0] = 5.0
    decision, terminal = step(env)
    assert terminal.agent_id.tolist() == [0, 1, 2] and not terminal.interrupted.any()
    assert not terminal.group_reward.any() and env.ended.tolist() == [True, False]
    assert decision.agent_id.tolist() == list(range(6))


def test_the_dragon_walks_to_its_cave_from_one_of_four_starts():
    env = make(64, seed=1)
    start = env.arena.pos[:, env._dragon].T.copy()
    starts = {tuple(np.round(p, 3) + 0.0) for p in start}
    assert starts == {(0.0, 8.0), (8.0, 0.0), (0.0, -8.0), (-8.0, 0.0)}
    assert ((env.dragon_speed >= 1.0) & (env.dragon_speed < 7.0)).all() and env.dragon_speed.std() > 1.0
    quiet(env)
    env.arena.pos[:, env._dragon] = start.T
    env.dragon_speed[:] = 5.0
    step(env)
    moved = env.arena.pos[:, env._dragon].T - start
    target = np.array([11.58, -11.59]) - start
    np.testing.assert_allclose(np.hypot(*moved.T), 5.0 * 0.1, rtol=1e-4)  # 5 physics steps of 0.02 s
    np.testing.assert_allclose(moved / 0.5, target / np.hypot(*target.T)[:, None], atol=1e-4)


def test_timeout_interrupts_the_agents_still_in():
    env = make(1)
    quiet(env)
    kill(env, 0, 2)
    env._steps[:] = MAX_DECISIONS - 1
    decision, terminal = step(env)
    assert terminal.agent_id.tolist() == [0, 1] and terminal.interrupted.all()
    assert not terminal.group_reward.any() and env.ended[0] and len(decision) == 3


def test_parameters_are_refused():
    with pytest.raises(EnvError):
        make_env("dungeonescape", num_areas=1, seed=0, parameters={"dragon_speed": 2.0})
    with pytest.raises(EnvError, match="shared_reward"):
        make_env("dungeonescape", num_areas=1, seed=0, parameters={"shared_reward": 0.5})


def test_scores_scripted_and_random():
    scripted, length = score(scripted_policy, episodes=120, areas=32)
    assert scripted >= 0.95 and length < 60
    random, _ = score(random_policy, episodes=60, areas=64)
    assert random < 0.3
    assert SCRIPTED_SCORE >= 0.95 > 0.3 > RANDOM_SCORE


def test_render():
    env = make(3)
    kill(env, 1, 0)
    before = env.arena.pos.copy()
    pictures = env.render([0, 1])
    np.testing.assert_array_equal(env.arena.pos, before)  # the dead agent is hidden only while drawing
    assert pictures.dtype == np.uint8 and pictures.shape[0] == 2 and pictures.shape[3] == 3
    assert not np.array_equal(pictures[0], pictures[1])


def test_groups_cross_the_wire_from_an_env_process():
    """Served by mlx-env over ML-Agents' gRPC protocol, the env steps as in-process: group ids, group
    rewards and the agents removed mid-episode (absent from the decisions) included. The scripted
    policy (read from the in-process env, the same actions sent to both) makes deaths and escapes.
    Agent ids on the wire are renewed per episode, as Unity's."""

    def scripted(env, decision):
        a = scripted_actions(env)
        return ActionTuple(np.zeros((len(a), 0), np.float32), a.reshape(-1, 1))

    removed, paid = step_side_by_side("dungeonescape", BEHAVIOR, 4, 80, scripted, same_ids=False)
    assert removed and paid
