""".demo files: ML-Agents' byte layout, exact round trips, transitions, and one clear error for every bad file."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import (
    ActionSpec,
    ActionTuple,
    BehaviorSpec,
    DecisionSteps,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)
from mlx.envs.unity.communicator_objects.messages_pb2 import (
    ActionSpecProto,
    AgentActionProto,
    AgentInfoActionPairProto,
    AgentInfoProto,
    BrainParametersProto,
    DemonstrationMetaProto,
    ObservationProto,
)
from mlx.envs.unity.protocol import varint
from mlx.errors import DemoError
from mlx.formats.demo import (
    INITIAL_POS,
    DemoEpisode,
    DemoMeta,
    load_demonstration,
    meta_bytes,
    read_demo_file,
    write_demo,
)
from mlx.modes.episodes import EpisodeRecorder
from mlx.modes.policy import RandomPolicy


def record_episodes(env_name: str, areas: int, episodes: int, seed: int = 0) -> tuple[str, BehaviorSpec, list]:
    """Episodes of an mlx env played by random (mask-respecting) actions, as mode=record collects them."""
    env = make_env(env_name, areas, seed, {})
    name, spec = next(iter(env.behavior_specs.items()))
    actor = RandomPolicy(spec.action_spec, seed)
    recorder = EpisodeRecorder(spec)
    env.reset()
    while not recorder.ready(episodes):
        decision, terminal = env.get_steps(name)
        actions = actor.act(decision)
        recorder.record(decision, terminal, actions)
        env.set_actions(name, actions)
        env.step()
    env.close()
    return name, spec, recorder.episodes(episodes)


@pytest.fixture(scope="module")
def gridworld(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BehaviorSpec, list[DemoEpisode]]:
    """GridWorld: a camera (3-D, transposed on the wire), a goal signal, action masks and interruptions."""
    name, spec, episodes = record_episodes("gridworld", 3, 6)
    path = tmp_path_factory.mktemp("demo") / "grid.demo"
    write_demo(path, spec, name, episodes)
    return path, spec, episodes


def test_an_mlx_recording_reads_back_identical(gridworld):
    path, spec, episodes = gridworld
    demo_file = read_demo_file(path)
    assert demo_file.spec == spec  # shapes, names and the goal signal's type survive
    assert spec.observation_specs[1].observation_type == ObservationType.GOAL_SIGNAL
    assert demo_file.brain_name == "GridWorld?team=0"
    rec = demo_file.records
    # Records: each episode's decisions, then its closing record.
    expected_obs = [np.concatenate([e.obs[k] for e in episodes]) for k in range(2)]
    for got, want in zip(rec.obs, expected_obs, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(rec.reward, np.concatenate([e.rewards for e in episodes]))
    np.testing.assert_array_equal(rec.done, np.concatenate([[False] * len(e) + [True] for e in episodes]))
    np.testing.assert_array_equal(rec.interrupted[rec.done], [e.interrupted for e in episodes])
    decisions = ~rec.done
    np.testing.assert_array_equal(rec.discrete[decisions], np.concatenate([e.discrete for e in episodes]))
    np.testing.assert_array_equal(rec.action_mask[decisions], np.concatenate([e.action_mask for e in episodes]))
    assert not rec.action_mask.all(), "the walls mask some moves"
    assert not rec.has_action[rec.done].any()
    # Transitions: every decision, with the reward, done and observation of the record after it.
    demo = load_demonstration(path, spec)
    assert len(demo) == sum(len(e) for e in episodes)
    first = episodes[0]
    t = len(first)
    np.testing.assert_array_equal(demo.obs[0][:t], first.obs[0][:t])
    np.testing.assert_array_equal(demo.next_obs[0][:t], first.obs[0][1:])
    np.testing.assert_array_equal(demo.reward[:t], first.rewards[1:])
    np.testing.assert_array_equal(demo.done[:t], [False] * (t - 1) + [True])
    assert demo.interrupted[t - 1] == first.interrupted
    np.testing.assert_array_equal(demo.episode, np.repeat(np.arange(len(episodes)), [len(e) for e in episodes]))
    assert demo.number_episodes == len(episodes)
    assert demo.flat_obs().shape == (len(demo), 64 * 84 * 3 + 2)


def test_continuous_and_hybrid_actions_round_trip(tmp_path):
    name, spec, episodes = record_episodes("3dball", 2, 3)
    write_demo(tmp_path / "ball.demo", spec, name, episodes)
    demo = load_demonstration(tmp_path / "ball.demo", spec)
    np.testing.assert_array_equal(demo.continuous, np.concatenate([e.continuous for e in episodes]))
    np.testing.assert_array_equal(demo.reward, np.concatenate([e.rewards[1:] for e in episodes]))
    # A hybrid behaviour (no mlx env has one): continuous and discrete actions side by side.
    hybrid = BehaviorSpec((ObservationSpec((3,)),), ActionSpec(2, (3, 2)))
    rng = np.random.default_rng(0)
    episode = DemoEpisode(
        obs=[rng.normal(size=(5, 3)).astype(np.float32)],
        rewards=rng.normal(size=5).astype(np.float32),
        continuous=rng.uniform(-1, 1, size=(4, 2)).astype(np.float32),
        discrete=np.stack([rng.integers(0, 3, 4), rng.integers(0, 2, 4)], 1).astype(np.int32),
        action_mask=np.ones((4, 5), bool),
        interrupted=True,
    )
    write_demo(tmp_path / "hybrid.demo", hybrid, "Hybrid", [episode])
    demo = load_demonstration(tmp_path / "hybrid.demo", hybrid)
    np.testing.assert_array_equal(demo.continuous, episode.continuous)
    np.testing.assert_array_equal(demo.discrete, episode.discrete)
    np.testing.assert_array_equal(demo.reward, episode.rewards[1:])
    assert demo.interrupted[-1] and demo.done[-1]


def test_meta_data_counts_steps_episodes_and_mean_reward_within_33_bytes(gridworld):
    path, _, episodes = gridworld
    meta = read_demo_file(path).meta
    assert meta.number_steps == sum(len(e) + 1 for e in episodes)
    assert meta.number_episodes == len(episodes)
    assert meta.mean_reward == pytest.approx(np.mean([e.total_reward for e in episodes]), abs=1e-5)
    assert meta.name == "GridWorld" and meta.api_version == 1
    # The brain parameters start at byte 33, whatever the counts and the name (shortened to fit).
    data = path.read_bytes()
    params = BrainParametersProto()
    params.ParseFromString(data[INITIAL_POS + 1 : INITIAL_POS + 1 + data[INITIAL_POS]])
    assert params.brain_name == "GridWorld?team=0" and list(params.action_spec.discrete_branch_sizes) == [5]
    big = meta_bytes(DemoMeta("a-very-long-demonstration-name", 2**31 - 1, 2**31 - 1, -1e30))
    assert len(big) <= INITIAL_POS


def test_a_folder_of_demo_files_is_one_demonstration(tmp_path, gridworld):
    name, spec, episodes = record_episodes("3dball", 2, 4, seed=1)
    write_demo(tmp_path / "a.demo", spec, name, episodes[:1])
    write_demo(tmp_path / "b.demo", spec, name, episodes[1:])
    (tmp_path / "notes.txt").write_text("not a demo")
    demo = load_demonstration(tmp_path, spec)
    assert len(demo) == sum(len(e) for e in episodes)
    assert demo.number_episodes == 4 and len(demo.files) == 2
    np.testing.assert_array_equal(np.unique(demo.episode), np.arange(4))
    # A file of another behaviour in the folder is named.
    grid_path = gridworld[0]
    (tmp_path / "c.demo").write_bytes(grid_path.read_bytes())
    with pytest.raises(DemoError, match=r"\(c\.demo\).*branches \[5\], but a\.demo's has 2 continuous.*one behaviour"):
        load_demonstration(tmp_path)


def test_demonstrations_of_another_behaviour_are_refused_naming_both(gridworld):
    path, _, _ = gridworld
    ball = BehaviorSpec((ObservationSpec((8,)),), ActionSpec(continuous_size=2))
    with pytest.raises(DemoError, match=r"2 continuous actions") as err:
        load_demonstration(path, ball, "trainer.behavioral_cloning.demo_path", "3DBall")
    message = str(err.value)
    assert "trainer.behavioral_cloning.demo_path=" in message and "3DBall" in message and "\n" not in message
    same_actions = BehaviorSpec((ObservationSpec((64, 84, 3)),), ActionSpec(discrete_branches=(5,)))
    with pytest.raises(DemoError, match=r"\(64, 84, 3\), \(2,\)\].*\[\(64, 84, 3\)\]"):
        load_demonstration(path, same_actions)


def test_missing_paths_and_empty_folders_are_named(tmp_path):
    with pytest.raises(DemoError, match="no .demo file or folder at"):
        load_demonstration(tmp_path / "nothing.demo")
    with pytest.raises(DemoError, match="holds no .demo file"):
        load_demonstration(tmp_path)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DemoError, match="is not a .demo file"):
        load_demonstration(tmp_path / "x.txt")


def test_every_truncation_gives_one_clear_error(tmp_path):
    spec = BehaviorSpec((ObservationSpec((4,)),), ActionSpec(1, (3,)))
    rng = np.random.default_rng(0)
    episodes = [
        DemoEpisode(
            obs=[rng.normal(size=(t + 1, 4)).astype(np.float32)],
            rewards=rng.normal(size=t + 1).astype(np.float32),
            continuous=rng.uniform(-1, 1, size=(t, 1)).astype(np.float32),
            discrete=rng.integers(0, 3, size=(t, 1)).astype(np.int32),
        )
        for t in (3, 5)
    ]
    good = tmp_path / "good.demo"
    write_demo(good, spec, "Cut", episodes)
    data = good.read_bytes()
    cut = tmp_path / "cut.demo"
    for n in range(len(data)):
        cut.write_bytes(data[:n])
        with pytest.raises(DemoError) as err:
            read_demo_file(cut)
        message = str(err.value)
        assert "\n" not in message and str(cut) in message
        assert any(word in message for word in ("truncated", "empty", "corrupt")), message


def build_file(meta: DemonstrationMetaProto, params: BrainParametersProto, pairs: list) -> bytes:
    def delimited(m: object) -> bytes:
        payload = m.SerializeToString()  # type: ignore[attr-defined]
        return varint(len(payload)) + payload

    head = delimited(meta).ljust(INITIAL_POS, b"\0")
    return head + delimited(params) + b"".join(delimited(p) for p in pairs)


def unity_pair(obs: list[float], reward: float, done: bool, action: list[float], deprecated: bool = False) -> object:
    info = AgentInfoProto(
        reward=reward,
        done=done,
        id=7,
        observations=[ObservationProto(shape=[len(obs)], float_data=ObservationProto.FloatData(data=obs))],
    )
    act = AgentActionProto(vector_actions_deprecated=action)
    if not deprecated:
        act = AgentActionProto(continuous_actions=action)
    return AgentInfoActionPairProto(agent_info=info, action_info=act)


def test_files_in_older_and_unclosed_forms_are_read(tmp_path):
    params = BrainParametersProto(brain_name="Walker?team=0", action_spec=ActionSpecProto(num_continuous_actions=1))
    pairs = [
        unity_pair([0.0, 1.0], 0.0, False, [0.5], deprecated=True),  # old files: vector_actions_deprecated
        unity_pair([1.0, 2.0], 0.25, False, [2.0]),  # clipped to the env's range
        unity_pair([2.0, 3.0], 1.0, True, [2.0]),  # Unity writes the last action on the closing record
    ]
    # number_steps 0: the recording was never closed (Unity writes the counts at the end): read it all.
    path = tmp_path / "unity.demo"
    path.write_bytes(build_file(DemonstrationMetaProto(api_version=1), params, pairs))
    demo = load_demonstration(path)
    np.testing.assert_array_equal(demo.continuous[:, 0], [0.5, 1.0])
    np.testing.assert_array_equal(demo.reward, [0.25, 1.0])
    np.testing.assert_array_equal(demo.done, [False, True])
    np.testing.assert_array_equal(demo.next_obs[0], [[1.0, 2.0], [2.0, 3.0]])
    assert read_demo_file(path).records.has_action.all()
    path.write_bytes(build_file(DemonstrationMetaProto(api_version=2, number_steps=3), params, pairs))
    with pytest.raises(DemoError, match="api_version 2"):
        read_demo_file(path)
    path.write_bytes(build_file(DemonstrationMetaProto(api_version=1, number_steps=4), params, pairs))
    with pytest.raises(DemoError, match="announces 4 steps but it holds 3"):
        read_demo_file(path)
    missing = [unity_pair([0.0, 1.0], 0.0, False, []), pairs[2]]
    path.write_bytes(build_file(DemonstrationMetaProto(api_version=1, number_steps=2), params, missing))
    with pytest.raises(DemoError, match="record 0 .* carries no action"):
        read_demo_file(path)


def test_fuzzed_files_either_read_or_raise_one_demo_error(tmp_path):
    """Random byte flips, insertions, deletions and random files: the reader never fails otherwise."""
    name, spec, episodes = record_episodes("gridworld", 1, 1)
    good = tmp_path / "good.demo"
    write_demo(good, spec, name, episodes)
    basic_name, basic_spec, basic_episodes = record_episodes("basic", 1, 2)
    small = tmp_path / "small.demo"
    write_demo(small, basic_spec, basic_name, basic_episodes)
    rng = random.Random(0)
    path = tmp_path / "fuzz.demo"
    outcomes = {"read": 0, "refused": 0}
    for trial in range(400):
        data = bytearray((good if trial % 4 == 0 else small).read_bytes())
        kind = trial % 5
        if kind == 0:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:  # insert bytes
            pos = rng.randrange(len(data))
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif kind == 2:  # delete a span
            pos = rng.randrange(len(data))
            del data[pos : pos + rng.randint(1, 64)]
        elif kind == 3:  # random bytes
            data = bytearray(rng.randbytes(rng.randint(1, 4000)))
        else:  # a valid header followed by garbage
            data = data[: INITIAL_POS + 40] + bytearray(rng.randbytes(rng.randint(0, 500)))
        path.write_bytes(bytes(data))
        try:
            demo = load_demonstration(path)
        except DemoError as exc:
            assert "\n" not in str(exc) and str(exc), repr(exc)
            outcomes["refused"] += 1
        else:
            assert len(demo) > 0 and all(np.isfinite(o).all() for o in demo.obs)
            outcomes["read"] += 1
    assert outcomes["refused"] > 100 and outcomes["read"] > 10, outcomes


def test_recorded_episodes_are_whole_and_follow_the_env():
    name, spec, episodes = record_episodes("basic", 4, 10, seed=3)
    assert len(episodes) == 10
    for e in episodes:
        assert len(e.obs[0]) == len(e) + 1 and len(e.continuous) == len(e)
        # Basic: each episode starts at position 10 and ends on a goal (7 or 17).
        assert e.obs[0][0].argmax() == 10 and e.obs[0][-1].argmax() in (7, 17)
        steps = e.obs[0].argmax(axis=1)
        moves = np.array([0, -1, 1])[e.discrete[:, 0]]
        np.testing.assert_array_equal(np.clip(steps[:-1] + moves, 0, 20), steps[1:])
        assert e.total_reward == pytest.approx(-0.01 * len(e) + (1.0 if steps[-1] == 17 else 0.1), abs=1e-5)


def test_recorder_spreads_a_recording_over_agents_rather_than_taking_the_shortest_episodes():
    """Agent 0 ends an episode every 2 steps, agent 1 every 5: the first two episodes to end are both
    agent 0's short ones, but a recording of 2 takes each agent's first episode."""
    spec = BehaviorSpec((ObservationSpec((1,)),), ActionSpec(discrete_branches=(2,)))
    recorder = EpisodeRecorder(spec)
    ids = np.array([0, 1])
    for t in range(1, 11):
        ended = ids[[t % 2 == 0, t % 5 == 0]]
        obs = np.full((len(ended), 1), t, np.float32)
        terminal = TerminalSteps([obs], np.ones(len(ended), np.float32), ended, np.zeros(len(ended), bool))
        decision = DecisionSteps([np.full((2, 1), t, np.float32)], np.zeros(2, np.float32), ids)
        recorder.record(decision, terminal, ActionTuple(np.zeros((2, 0), np.float32), ids[:, None].astype(np.int32)))
        if t < 5:
            assert not recorder.ready(2)
    assert recorder.ready(2) and recorder.completed == 7
    lengths = sorted(len(e) for e in recorder.episodes(2))
    assert lengths == [1, 4]  # one of each agent (the first decisions come at t = 1)
    assert [len(e) for e in recorder.episodes(4)] == [1, 4, 2, 5]  # episode 0 of both agents, then episode 1
