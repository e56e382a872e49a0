"""ML-Agents' wire protocol: the generated code, field numbers, side channels, conversions (no processes)."""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from mlx.envs.api import (
    ActionSpec,
    ActionTuple,
    BehaviorSpec,
    DecisionSteps,
    EnvStat,
    ObservationSpec,
    StatAggregation,
    TerminalSteps,
)
from mlx.envs.unity.communicator_objects import messages_pb2
from mlx.envs.unity.env import RestartPolicy
from mlx.envs.unity.merge import RecycledIds
from mlx.envs.unity.protocol import (
    action_protos,
    actions_from_protos,
    agent_infos,
    behavior_spec,
    brain_parameters,
    check_version,
    decode_png,
    encode_png,
    split_behavior_name,
    steps_from_infos,
)
from mlx.envs.unity.remote import EpisodeIds
from mlx.envs.unity.side_channels import (
    ChannelSampler,
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    IncomingMessage,
    SamplerType,
    SideChannelManager,
    StatsSideChannel,
    split_records,
)
from mlx.errors import ProtocolError, SideChannelError
from mlx.trainers.base import StatsRecorder

REPO = Path(__file__).resolve().parents[1]


# ---- the schema ---------------------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None, reason="grpcio-tools (dev extra) not installed")
def test_committed_generated_code_equals_a_fresh_generation(tmp_path):
    spec = importlib.util.spec_from_file_location("gen_protos", REPO / "scripts" / "gen_protos.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    fresh = gen.generate(tmp_path)
    assert len(fresh) == 3  # messages_pb2.py, messages_pb2.pyi, messages_pb2_grpc.py (one .proto)
    for path in fresh:
        committed = REPO / "src" / "mlx" / "envs" / "unity" / "communicator_objects" / path.name
        assert committed.read_bytes() == path.read_bytes(), f"{committed.name} is stale: run scripts/gen_protos.py"


def fields(message: type) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}


def test_field_numbers_are_ml_agents_ones():
    """Wire compatibility is field numbers and types: these are the schema facts of protocol.md."""
    assert fields(messages_pb2.HeaderProto) == {"status": 1, "message": 2}
    assert fields(messages_pb2.UnityMessageProto) == {"header": 1, "unity_output": 2, "unity_input": 3}
    assert fields(messages_pb2.UnityOutputProto) == {"rl_output": 1, "rl_initialization_output": 2}
    assert fields(messages_pb2.UnityInputProto) == {"rl_input": 1, "rl_initialization_input": 2}
    assert fields(messages_pb2.UnityRLOutputProto) == {"agentInfos": 2, "side_channel": 3}
    assert fields(messages_pb2.UnityRLInputProto) == {"agent_actions": 1, "command": 4, "side_channel": 5}
    assert fields(messages_pb2.UnityRLInitializationInputProto) == {
        "seed": 1,
        "communication_version": 2,
        "package_version": 3,
        "capabilities": 4,
        "num_areas": 5,
    }
    assert fields(messages_pb2.UnityRLInitializationOutputProto) == {
        "name": 1,
        "communication_version": 2,
        "log_path": 3,
        "brain_parameters": 5,
        "package_version": 7,
        "capabilities": 8,
    }
    assert fields(messages_pb2.UnityRLCapabilitiesProto) == {
        "baseRLCapabilities": 1,
        "concatenatedPngObservations": 2,
        "compressedChannelMapping": 3,
        "hybridActions": 4,
        "trainingAnalytics": 5,
        "variableLengthObservation": 6,
        "multiAgentGroups": 7,
    }
    assert fields(messages_pb2.AgentInfoProto) == {
        "reward": 7,
        "done": 8,
        "max_step_reached": 9,
        "id": 10,
        "action_mask": 11,
        "observations": 13,
        "group_id": 14,
        "group_reward": 15,
    }
    assert fields(messages_pb2.AgentActionProto) == {
        "vector_actions_deprecated": 1,
        "value": 4,
        "continuous_actions": 6,
        "discrete_actions": 7,
    }
    assert fields(messages_pb2.AgentInfoActionPairProto) == {"agent_info": 1, "action_info": 2}
    assert fields(messages_pb2.ObservationProto) == {
        "shape": 1,
        "compression_type": 2,
        "compressed_data": 3,
        "float_data": 4,
        "compressed_channel_mapping": 5,
        "dimension_properties": 6,
        "observation_type": 7,
        "name": 8,
    }
    assert fields(messages_pb2.ActionSpecProto) == {
        "num_continuous_actions": 1,
        "num_discrete_actions": 2,
        "discrete_branch_sizes": 3,
        "action_descriptions": 4,
    }
    assert fields(messages_pb2.BrainParametersProto) == {
        "vector_action_size_deprecated": 3,
        "vector_action_descriptions_deprecated": 5,
        "vector_action_space_type_deprecated": 6,
        "brain_name": 7,
        "is_training": 8,
        "action_spec": 9,
    }
    assert fields(messages_pb2.DemonstrationMetaProto) == {
        "api_version": 1,
        "demonstration_name": 2,
        "number_steps": 3,
        "number_episodes": 4,
        "mean_reward": 5,
    }
    assert fields(messages_pb2.EngineConfigurationProto) == {
        "width": 1,
        "height": 2,
        "quality_level": 3,
        "time_scale": 4,
        "target_frame_rate": 5,
        "show_monitor": 6,
    }
    assert (messages_pb2.STEP, messages_pb2.RESET, messages_pb2.QUIT) == (0, 1, 2)
    assert (messages_pb2.NONE, messages_pb2.PNG) == (0, 1)
    assert messages_pb2.DESCRIPTOR.package == "communicator_objects"
    service = messages_pb2.DESCRIPTOR.services_by_name["UnityToExternalProto"]
    assert service.full_name == "communicator_objects.UnityToExternalProto"
    assert [m.name for m in service.methods] == ["Exchange"]


def test_a_known_message_has_the_exact_bytes_upstream_expects():
    # AgentInfoProto{reward=0.5, done=true, id=3}: tags 0x3d (7, fixed32), 0x40 (8, varint), 0x50 (10, varint).
    info = messages_pb2.AgentInfoProto(reward=0.5, done=True, id=3)
    assert info.SerializeToString() == b"\x3d" + struct.pack("<f", 0.5) + b"\x40\x01\x50\x03"


# ---- versions and names ------------------------------------------------------------------------------
def test_version_rule_is_ml_agents_one():
    check_version("1.5.0", "env")
    check_version("1.0.0", "env")  # minor differences are compatible for major >= 1
    check_version("1.9.3", "env")
    for bad in ("2.0.0", "0.15.0", "not-a-version"):
        with pytest.raises(ProtocolError, match="version|unreadable"):
            check_version(bad, "env")


def test_behavior_names_split_off_the_team():
    assert split_behavior_name("3DBall?team=0") == ("3DBall", 0)
    assert split_behavior_name("Soccer?team=1") == ("Soccer", 1)
    assert split_behavior_name("Plain") == ("Plain", 0)
    assert split_behavior_name("Odd?name?team=12") == ("Odd?name", 12)


# ---- side channels ------------------------------------------------------------------------------------
def test_engine_configuration_bytes_follow_the_layout():
    channel = EngineConfigurationChannel()
    manager = SideChannelManager([channel])
    channel.set_configuration(width=84, height=84, time_scale=20.0)
    data = manager.pack()
    records = split_records(data)
    assert [r[0] for r in records] == [uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")] * 2
    assert data[:16] == uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7").bytes_le
    assert records[0][1] == struct.pack("<iii", 0, 84, 84)
    assert records[1][1] == struct.pack("<if", 2, 20.0)
    receiver = EngineConfigurationChannel()
    SideChannelManager([receiver]).dispatch(data)
    assert receiver.received == {"screen_resolution": (84, 84), "time_scale": 20.0}


def test_environment_parameters_round_trip_floats_and_samplers():
    sender, receiver = EnvironmentParametersChannel(), EnvironmentParametersChannel()
    sender.set_float_parameter("gravity", 9.5)
    sender.set_sampler("mass", ChannelSampler(SamplerType.UNIFORM, 7, (0.5, 2.0)))
    sender.set_sampler("scale", ChannelSampler(SamplerType.MULTIRANGE_UNIFORM, 3, (0.5, 1.0, 2.0, 3.0)))
    data = SideChannelManager([sender]).pack()
    # key "gravity": int32 length 7 + utf-8, type 0, float32 value
    first = split_records(data)[0][1]
    assert first == struct.pack("<i", 7) + b"gravity" + struct.pack("<if", 0, 9.5)
    SideChannelManager([receiver]).dispatch(data)
    assert receiver.floats == {"gravity": 9.5}
    assert receiver.samplers["mass"] == ChannelSampler(SamplerType.UNIFORM, 7, (0.5, 2.0))
    multi = receiver.samplers["scale"]
    draws = [multi.draw(rng) for rng in [multi.rng()] for _ in range(200)]
    assert all(0.5 <= x <= 1.0 or 2.0 <= x <= 3.0 for x in draws)
    assert any(x > 1.5 for x in draws) and any(x < 1.5 for x in draws)


def test_stats_channel_collects_values_by_name_and_aggregation():
    channel = StatsSideChannel()
    sender = StatsSideChannel()
    sender.send_stat("Env/Score", 1.0)
    sender.send_stat("Env/Score", 3.0)
    sender.send_stat("Env/Last", 5.0, StatAggregation.MOST_RECENT)
    SideChannelManager([channel]).dispatch(SideChannelManager([sender]).pack())
    stats = {(s.name, s.aggregation): s.values.tolist() for s in channel.drain()}
    assert stats == {
        ("Env/Score", StatAggregation.AVERAGE): [1.0, 3.0],
        ("Env/Last", StatAggregation.MOST_RECENT): [5.0],
    }
    assert channel.drain() == []


def test_stats_recorder_applies_ml_agents_aggregations():
    rec = StatsRecorder()
    rec.add_env_stat(EnvStat("avg", np.array([1.0, 3.0])))
    rec.add_env_stat(EnvStat("avg", np.array([5.0])))
    rec.add_env_stat(EnvStat("last", np.array([1.0, 2.0]), StatAggregation.MOST_RECENT))
    rec.add_env_stat(EnvStat("last", np.array([7.0]), StatAggregation.MOST_RECENT))
    rec.add_env_stat(EnvStat("total", np.array([1.0, 2.0]), StatAggregation.SUM))
    rec.add_env_stat(EnvStat("total", np.array([4.0]), StatAggregation.SUM))
    out = rec.summarise()
    assert out["avg"].mean == pytest.approx(3.0) and out["avg"].count == 3
    assert out["last"].mean == 7.0 and out["last"].count == 1
    assert out["total"].mean == 7.0


def test_truncated_or_garbled_side_channel_data_is_refused_clearly():
    channel = EnvironmentParametersChannel()
    good = SideChannelManager([EnvironmentParametersChannel()])
    good.channels[channel.channel_id].set_float_parameter("gravity", 1.0)  # type: ignore[attr-defined]
    data = good.pack()
    with pytest.raises(SideChannelError, match="truncated|claims"):
        split_records(data[:-3])
    with pytest.raises(SideChannelError, match="truncated"):
        split_records(data[:10])
    with pytest.raises(SideChannelError, match="too short"):
        IncomingMessage(struct.pack("<i", 50) + b"abc", "test").read_string()
    bad_type = (
        channel.channel_id.bytes_le + struct.pack("<i", 12) + struct.pack("<i", 1) + b"k" + struct.pack("<if", 9, 0)
    )
    with pytest.raises(SideChannelError, match="unknown parameter type 9"):
        SideChannelManager([channel]).dispatch(bad_type[:-1])  # the length prefix is re-checked below
    with pytest.raises(SideChannelError):
        SideChannelManager([channel]).dispatch(bad_type)
    unknown = uuid.uuid4()
    assert SideChannelManager([channel]).dispatch(unknown.bytes_le + struct.pack("<i", 0)) == [unknown]


def test_two_channels_with_one_id_are_refused():
    with pytest.raises(SideChannelError, match="two side channels"):
        SideChannelManager([StatsSideChannel(), StatsSideChannel()])


# ---- observations, steps, actions ---------------------------------------------------------------------
HYBRID = BehaviorSpec(
    (ObservationSpec((3,), "vec"), ObservationSpec((2, 4, 5), "img")),
    ActionSpec(continuous_size=2, discrete_branches=(3, 2)),
)


def sample_steps(rng: np.random.Generator) -> tuple[DecisionSteps, TerminalSteps]:
    mask = [np.ones((3, 3), bool), np.ones((3, 2), bool)]
    mask[0][1, 2] = False
    mask[1][2, 0] = False
    decision = DecisionSteps(
        obs=[rng.normal(size=(3, 3)).astype(np.float32), rng.random((3, 2, 4, 5)).astype(np.float32)],
        reward=np.array([0.1, 0.2, 0.3], np.float32),
        agent_id=np.array([0, 1, 2]),
        action_mask=mask,
        group_id=np.array([1, 1, 2], np.int32),
        group_reward=np.array([0.5, 0.5, 0.0], np.float32),
    )
    terminal = TerminalSteps(
        obs=[rng.normal(size=(2, 3)).astype(np.float32), rng.random((2, 2, 4, 5)).astype(np.float32)],
        reward=np.array([-1.0, 0.1], np.float32),
        agent_id=np.array([1, 4]),
        interrupted=np.array([False, True]),
        group_id=np.array([1, 2], np.int32),
        group_reward=np.array([1.0, 0.0], np.float32),
    )
    return decision, terminal


def test_steps_survive_the_wire_with_masks_groups_and_interruptions():
    rng = np.random.default_rng(0)
    decision, terminal = sample_steps(rng)
    infos = agent_infos(decision, terminal, np.array([10, 11, 12]), np.array([5, 9]), HYBRID.observation_specs)
    assert [i.done for i in infos] == [True, True, False, False, False]  # terminal steps first
    assert list(infos[2].action_mask) == [False] * 5  # wire flags: True = masked
    assert list(infos[3].action_mask) == [False, False, True, False, False]
    wire = messages_pb2.UnityRLOutputProto()
    wire.agentInfos["B?team=0"].value.extend(infos)
    parsed = messages_pb2.UnityRLOutputProto.FromString(wire.SerializeToString())
    dec, term, d_ids, t_ids = steps_from_infos(parsed.agentInfos["B?team=0"].value, HYBRID, "B")
    assert d_ids.tolist() == [10, 11, 12] and t_ids.tolist() == [5, 9]
    for got, want in zip(dec.obs, decision.obs, strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(term.obs, terminal.obs, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(dec.reward, decision.reward)
    np.testing.assert_array_equal(term.interrupted, [False, True])
    assert dec.action_mask is not None
    for got, want in zip(dec.action_mask, decision.action_mask, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(dec.group_id, [1, 1, 2])
    np.testing.assert_array_equal(term.group_reward, [1.0, 0.0])


def test_spec_from_brain_parameters_and_first_agent():
    rng = np.random.default_rng(1)
    decision, terminal = sample_steps(rng)
    infos = agent_infos(decision, terminal, np.arange(3), np.arange(2), HYBRID.observation_specs)
    params = brain_parameters("B?team=0", HYBRID.action_spec)
    spec = behavior_spec(messages_pb2.BrainParametersProto.FromString(params.SerializeToString()), infos[0])
    assert spec == HYBRID
    # mlx's [h, w, c] image (2, 4, 5) travels as ML-Agents' [c, h, w]: shape and data order
    assert list(infos[0].observations[1].shape) == [5, 2, 4]
    np.testing.assert_array_equal(
        infos[0].observations[1].float_data.data, terminal.obs[1][0].transpose(2, 0, 1).ravel()
    )
    legacy = messages_pb2.BrainParametersProto(
        brain_name="Old?team=0", vector_action_size_deprecated=[3, 2], vector_action_space_type_deprecated=0
    )
    assert behavior_spec(legacy, infos[0]).action_spec == ActionSpec(discrete_branches=(3, 2))


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 7])
def test_png_observations_round_trip_with_channel_mapping(channels):
    rng = np.random.default_rng(channels)
    image = (rng.integers(0, 256, size=(channels, 6, 5)) / 255.0).astype(np.float32)
    data, mapping = encode_png(image)
    assert data.startswith(b"\x89PNG") and data.count(b"\x89PNG") == (channels + 2) // 3
    np.testing.assert_allclose(decode_png(data, image.shape, mapping, "test"), image, atol=1e-6)


def test_png_without_mapping_takes_grey_or_first_channels():
    rng = np.random.default_rng(3)
    rgb = (rng.integers(0, 256, size=(3, 4, 4)) / 255.0).astype(np.float32)
    data, _ = encode_png(rgb)
    grey = decode_png(data, (1, 4, 4), [], "test")
    np.testing.assert_allclose(grey[0], rgb.mean(axis=0), atol=1e-6)
    with pytest.raises(ProtocolError, match="not PNG"):
        decode_png(b"garbage", (3, 4, 4), [], "test")
    with pytest.raises(ProtocolError, match="mapping"):
        decode_png(data, (3, 4, 4), [0, 1], "test")


def test_compressed_observations_decode_into_the_batch():
    rng = np.random.default_rng(4)
    decision, terminal = sample_steps(rng)
    decision.obs[1] = (np.round(decision.obs[1] * 255) / 255).astype(np.float32)
    infos = agent_infos(decision, terminal, np.arange(3), np.arange(3, 5), HYBRID.observation_specs, compress=True)
    assert infos[2].observations[1].compression_type == messages_pb2.PNG
    dec, _, _, _ = steps_from_infos(infos, HYBRID, "B")
    np.testing.assert_allclose(dec.obs[1], decision.obs[1], atol=1e-6)


def test_malformed_agent_data_is_refused_with_the_agent_named():
    rng = np.random.default_rng(5)
    decision, terminal = sample_steps(rng)
    infos = agent_infos(decision, terminal, np.array([10, 11, 12]), np.array([5, 9]), HYBRID.observation_specs)
    del infos[3].observations[0].float_data.data[-1]
    with pytest.raises(ProtocolError, match=r"agent 11: observation 0 has 2 floats, its shape \[3\] needs 3"):
        steps_from_infos(infos, HYBRID, "B")
    infos = agent_infos(decision, terminal, np.array([10, 11, 12]), np.array([5, 9]), HYBRID.observation_specs)
    del infos[4].observations[1]
    with pytest.raises(ProtocolError, match="agent 12: 1 observations, the behaviour has 2"):
        steps_from_infos(infos, HYBRID, "B")
    infos = agent_infos(decision, terminal, np.array([10, 11, 12]), np.array([5, 9]), HYBRID.observation_specs)
    infos[2].action_mask.append(True)
    with pytest.raises(ProtocolError, match="action mask has 6 flags"):
        steps_from_infos(infos, HYBRID, "B")
    infos = agent_infos(decision, terminal, np.array([10, 11, 12]), np.array([5, 9]), HYBRID.observation_specs)
    infos[2].reward = float("nan")
    with pytest.raises(ProtocolError, match="non-finite reward"):
        steps_from_infos(infos, HYBRID, "B")


def test_actions_round_trip_and_wrong_counts_are_refused():
    spec = HYBRID.action_spec
    actions = ActionTuple(np.array([[0.5, -1.0], [0.0, 1.0]], np.float32), np.array([[2, 1], [0, 0]], np.int32))
    protos = action_protos(actions, spec)
    back = actions_from_protos(protos, spec, 2, "B")
    np.testing.assert_array_equal(back.continuous, actions.continuous)
    np.testing.assert_array_equal(back.discrete, actions.discrete)
    assert len(actions_from_protos([], spec, 4, "B")) == 4  # nothing sent: zero actions, as Unity does
    with pytest.raises(ProtocolError, match="1 actions for 2 agents"):
        actions_from_protos(protos[:1], spec, 2, "B")
    del protos[0].continuous_actions[-1]
    with pytest.raises(ProtocolError, match="2 continuous and 2 discrete"):
        actions_from_protos(protos, spec, 2, "B")


# ---- agent ids --------------------------------------------------------------------------------------
def test_episode_ids_change_every_episode_on_the_env_side():
    ids = EpisodeIds()
    first = ids.lookup(np.array([0, 1, 2]))
    assert len(set(first.tolist())) == 3
    np.testing.assert_array_equal(ids.lookup(np.array([2, 0])), first[[2, 0]])
    ids.renew(np.array([1]))
    second = ids.lookup(np.array([0, 1, 2]))
    assert second[0] == first[0] and second[2] == first[2] and second[1] not in first


def test_trainer_side_ids_are_stable_and_recycled_after_an_episode():
    m = RecycledIds()
    m.begin_step()
    m.release()
    a = m.get(0, np.array([100, 101]))
    b = m.get(1, np.array([100]))  # another worker: another agent
    assert a.tolist() == [0, 1] and b.tolist() == [2]
    m.begin_step()
    ended = m.end(0, np.array([101]))  # agent 101's episode ended ...
    m.release()
    again = m.get(0, np.array([100, 555]))  # ... and it came back with a new episode id
    assert ended.tolist() == [1] and again.tolist() == [0, 1]
    m.retire(0)  # a restart: worker 0's numbers are never reused
    m.begin_step()
    m.release()
    assert m.get(0, np.array([100, 555])).tolist() == [3, 4]


def test_restart_policy_is_ml_agents_rules():
    policy = RestartPolicy(max_lifetime_restarts=2, rate_limit_n=1, rate_limit_period_s=60)
    assert policy.refusal(0, [], 1000.0) is None
    assert "last 60 s" in (policy.refusal(1, [990.0], 1000.0) or "")
    assert policy.refusal(1, [900.0], 1000.0) is None
    assert "max_lifetime_restarts=2" in (policy.refusal(2, [], 1000.0) or "")
    assert RestartPolicy(-1, -1, 60).refusal(100, [999.0] * 50, 1000.0) is None


def test_remote_accepts_a_unity_build_command_line():
    out = subprocess.run(
        [sys.executable, "-m", "mlx.envs.unity.remote", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for flag in ("--mlagents-port", "-logFile", "-nographics", "-batchmode", "--num-areas", "--seed"):
        assert flag in out


def test_array_encoder_writes_the_same_messages_as_per_agent_protos():
    """encode_agent_infos (what env processes send) parses to exactly what agent_infos builds, masks on
    deciding agents only, ids of every varint length, groups and goal-signal observations included."""
    from mlx.envs.api import ObservationType
    from mlx.envs.unity.protocol import encode_agent_infos

    rng = np.random.default_rng(6)
    decision, terminal = sample_steps(rng)
    specs = (
        ObservationSpec((3,), "vec", ObservationType.GOAL_SIGNAL),
        ObservationSpec((2, 4, 5), "img"),
    )
    d_ids, t_ids = np.array([0, 127, 128]), np.array([2**14, 2**31 - 1])
    protos = agent_infos(decision, terminal, d_ids, t_ids, specs)
    assert protos[0].observations[0].observation_type == messages_pb2.GOAL_SIGNAL
    assert list(protos[0].observations[1].shape) == [5, 2, 4]  # mlx [h, w, c] is [c, h, w] on the wire
    want = messages_pb2.UnityRLOutputProto.ListAgentInfoProto(value=protos)
    got = messages_pb2.UnityRLOutputProto.ListAgentInfoProto.FromString(
        encode_agent_infos(decision, terminal, d_ids, t_ids, specs)
    )
    assert got == want
    decision.action_mask, decision.group_id, terminal.group_id = None, None, None
    decision.group_reward, terminal.group_reward = None, None
    plain = messages_pb2.UnityRLOutputProto.ListAgentInfoProto(
        value=agent_infos(decision, terminal, d_ids, t_ids, specs)
    )
    assert plain == messages_pb2.UnityRLOutputProto.ListAgentInfoProto.FromString(
        encode_agent_infos(decision, terminal, d_ids, t_ids, specs)
    )
