"""The trajectory assembler: rewards land on the right transition; cuts, terminations, interruptions."""

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, IdMap, ObservationSpec, TerminalSteps
from mlx.trainers.agents import Agents, Column
from mlx.trainers.trajectory import TrajectoryAssembler

SPEC = BehaviorSpec((ObservationSpec((1,)),), ActionSpec(continuous_size=1))


def decision(ids, obs, reward):
    return DecisionSteps([np.array(obs, dtype=np.float32)[:, None]], np.array(reward, dtype=np.float32), np.array(ids))


def terminal(ids, obs, reward, interrupted):
    return TerminalSteps(
        [np.array(obs, dtype=np.float32)[:, None]],
        np.array(reward, dtype=np.float32),
        np.array(ids),
        np.array(interrupted),
    )


def act(asm, d, value=0.0):
    n = len(d)
    values = np.full((n, 1), value, dtype=np.float32)
    cut = asm.record_rewards(d, values)
    asm.store(d, np.zeros((n, 1), np.float32), np.zeros((n, 0), np.int32), np.zeros(n, np.float32), values)
    return cut


def test_agent_slots_map_arbitrary_ids_stably():
    slots = IdMap()
    a = slots.lookup(np.array([100, 7, 42]))
    b = slots.lookup(np.array([42, 5, 100]))
    assert list(a) == [0, 1, 2] or len(set(a)) == 3
    assert b[0] == a[2] and b[2] == a[0] and b[1] not in a
    assert slots.count == 4


def test_agent_slots_of_every_id_in_order_are_the_search_results():
    """The fast path (the whole batch of ids, ascending) gives what the search gives, after reassignment too,
    and the caller's array is its own (writing it changes no slot)."""
    slots = IdMap()
    slots.lookup(np.array([9, 2, 5]))
    slots.assign(np.array([5]), np.array([40]))
    every = slots.lookup(np.array([2, 5, 9]))
    assert list(every) == [int(slots.lookup(np.array([i]))[0]) for i in (2, 5, 9)] == [0, 40, 2]
    every[:] = -1
    assert list(slots.lookup(np.array([2, 5, 9]))) == [0, 40, 2]


def test_time_horizon_cut_bootstraps_with_current_value():
    asm = TrajectoryAssembler(SPEC, time_horizon=2, num_streams=1)
    assert act(asm, decision([0], [0.0], [0.0])) is None
    assert act(asm, decision([0], [1.0], [1.0])) is None
    cut = act(asm, decision([0], [2.0], [2.0]), value=7.0)
    assert cut is not None
    assert list(cut.lengths) == [2]
    np.testing.assert_array_equal(cut.env_reward[0], [1.0, 2.0])
    np.testing.assert_array_equal(cut.obs[0][0, :, 0], [0.0, 1.0])
    assert cut.bootstrap_value[0, 0] == 7.0 and not cut.needs_bootstrap[0]


def test_termination_and_interruption_are_told_apart():
    asm = TrajectoryAssembler(SPEC, time_horizon=10, num_streams=1)
    act(asm, decision([3, 4], [0.0, 0.0], [0.0, 0.0]))
    act(asm, decision([3, 4], [1.0, 1.0], [0.5, 0.5]))
    traj, stats = asm.end_episodes(terminal([3, 4], [9.0, 8.0], [-1.0, 0.1], [False, True]))
    assert traj is not None
    np.testing.assert_array_equal(traj.lengths, [2, 2])
    np.testing.assert_allclose(traj.env_reward, [[0.5, -1.0], [0.5, 0.1]])
    np.testing.assert_array_equal(traj.needs_bootstrap, [False, True])
    np.testing.assert_array_equal(traj.next_obs[0][:, 0], [9.0, 8.0])
    np.testing.assert_allclose(stats.returns, [-0.5, 0.6])
    np.testing.assert_array_equal(stats.lengths, [2, 2])


def test_reset_agent_starts_a_new_trajectory_without_the_old_reward():
    asm = TrajectoryAssembler(SPEC, time_horizon=10, num_streams=1)
    act(asm, decision([0], [0.0], [0.0]))
    asm.end_episodes(terminal([0], [5.0], [1.0], [False]))
    act(asm, decision([0], [0.0], [0.0]))  # first step of the next episode
    act(asm, decision([0], [1.0], [0.25]))
    traj, stats = asm.end_episodes(terminal([0], [2.0], [0.75], [False]))
    np.testing.assert_allclose(traj.env_reward[0], [0.25, 0.75])
    np.testing.assert_allclose(stats.returns, [1.0])


def test_flat_keeps_only_valid_steps_in_order():
    asm = TrajectoryAssembler(SPEC, time_horizon=10, num_streams=1)
    act(asm, decision([0, 1], [0.0, 10.0], [0.0, 0.0]))
    act(asm, decision([0], [1.0], [0.0]))
    traj, _ = asm.end_episodes(terminal([0, 1], [0.0, 0.0], [0.0, 0.0], [False, False]))
    np.testing.assert_array_equal(traj.flat(traj.obs[0])[:, 0], [0.0, 1.0, 10.0])


def test_every_per_agent_table_grows_with_the_slot_table_keeping_its_rows():
    agents = Agents(memory_size=2, signals=["extrinsic", "curiosity"])
    steps = agents.table({"x": Column((3,), np.float32), "allowed": Column((), bool, True)})
    first = agents.lookup(np.array([10, 20]))
    steps.x[first] = 1.0
    agents.memories[first] = 5.0
    more = agents.lookup(np.arange(100, 140))  # 40 new agents: every table grows at once
    assert steps.rows >= 42 and agents.memory.rows == steps.rows == agents.episode.rows
    np.testing.assert_array_equal(steps.x[first], 1.0)
    assert steps.allowed[more].all() and not steps.x[more].any()  # new rows start at their fill value
    np.testing.assert_array_equal(agents.memories[first], 5.0)
    agents.forget_memories(np.array([20]))
    assert agents.memories[first[1]].sum() == 0 and agents.memories[first[0]].sum() == 10


def test_signal_returns_are_summed_per_agent_until_its_episode_ends():
    agents = Agents(signals=["extrinsic"])
    slots = agents.lookup(np.array([3, 4]))
    assert agents.add_signal_rewards("extrinsic", slots, np.array([1.0, 2.0]), slots[:0]) is None
    ended = agents.add_signal_rewards("extrinsic", slots, np.array([0.5, 0.5]), slots[:1])
    np.testing.assert_array_equal(ended, [1.5])
    np.testing.assert_array_equal(agents.signal_returns.extrinsic[slots], [0.0, 2.5])


def test_forgetting_the_memory_of_agents_never_seen_gives_them_zeroed_rows():
    """A lookup may grow the tables: the write must go to the grown array, not the one read before it."""
    agents = Agents(memory_size=2)
    agents.forget_memories(np.array([7, 3]))
    rows = agents.lookup(np.array([3, 7]))
    assert agents.memories.shape[0] >= 2 and (agents.memories[rows] == 0).all()
