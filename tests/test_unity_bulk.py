"""Actions written and read in bulk (mlx.envs.unity.bulk) against the per-proto path, on random data."""

from __future__ import annotations

import numpy as np
import pytest

from mlx.envs.api import ActionSpec, ActionTuple
from mlx.envs.unity import bulk
from mlx.envs.unity.bulk import decode_actions, encode_action_list, encode_input
from mlx.envs.unity.communicator_objects.messages_pb2 import (
    QUIT,
    RESET,
    STEP,
    UnityInputProto,
    UnityMessageProto,
    UnityRLInputProto,
)
from mlx.envs.unity.protocol import action_protos, actions_from_protos

LIST = UnityRLInputProto.ListAgentActionProto
SPECS = [
    ActionSpec(continuous_size=2),
    ActionSpec(continuous_size=0, discrete_branches=(3, 2, 5)),
    ActionSpec(continuous_size=3, discrete_branches=(4,)),
    ActionSpec(continuous_size=40, discrete_branches=(200, 2)),  # 2-byte varints: still exact
]


def _random(spec: ActionSpec, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    cont = rng.normal(size=(n, spec.continuous_size)).astype(np.float32)
    disc = np.zeros((n, spec.discrete_size), np.int32)
    for k, b in enumerate(spec.discrete_branches):
        disc[:, k] = rng.integers(0, b, n)
    return cont, disc


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("n", [0, 1, 7, 64])
def test_encoded_actions_parse_to_the_per_proto_messages_and_decode_back(spec, n):
    rng = np.random.default_rng(n)
    cont, disc = _random(spec, n, rng)
    data = encode_action_list(cont, disc)
    assert data is not None
    slow = LIST(value=action_protos(ActionTuple(cont, disc), spec))
    assert LIST.FromString(data) == slow
    assert data == slow.SerializeToString()  # upb writes the same bytes: the usual layout
    fast = decode_actions(data, n, spec.continuous_size, spec.discrete_size)
    if n == 0 or (disc >= 128).any():  # nothing to read, or 2-byte varints: left to the per-proto path
        assert fast is None
        return
    assert fast is not None
    ref = actions_from_protos(slow.value, spec, n, "B")
    np.testing.assert_array_equal(fast.continuous, ref.continuous)
    np.testing.assert_array_equal(fast.discrete, ref.discrete)
    assert fast.continuous.dtype == np.float32 and fast.discrete.dtype == np.int32


def test_other_layouts_and_counts_are_left_to_the_per_proto_path():
    spec = ActionSpec(continuous_size=2, discrete_branches=(3,))
    cont, disc = _random(spec, 4, np.random.default_rng(0))
    data = encode_action_list(cont, disc)
    assert decode_actions(data, 5, 2, 1) is None  # wrong count: the slow path names it
    assert decode_actions(data, 4, 3, 1) is None  # wrong size
    assert decode_actions(data, 4, 2, 0) is None
    # mlagents-learn style: the deprecated vector_actions too
    other = LIST(value=[p for p in LIST.FromString(data).value])
    for p in other.value:
        p.vector_actions_deprecated.extend([1.0])
    assert decode_actions(other.SerializeToString(), 4, 2, 1) is None
    # one agent without its continuous actions
    short = LIST.FromString(data)
    del short.value[1].continuous_actions[:]
    assert decode_actions(short.SerializeToString(), 4, 2, 1) is None
    assert encode_action_list(cont, -disc - 1) is None  # negative discrete: ten-byte varints, per proto


@pytest.mark.parametrize("command", [STEP, RESET, QUIT])
@pytest.mark.parametrize("side", [b"", b"\x01\x02side"])
def test_encoded_input_parses_to_the_message_built_field_by_field(command, side):
    rng = np.random.default_rng(3)
    spec = ActionSpec(continuous_size=2, discrete_branches=(3, 3))
    lists = {}
    ref = UnityMessageProto()
    ref.header.status = 200
    rl = UnityRLInputProto(command=command, side_channel=side)
    for name, n in (("A?team=0", 5), ("B?team=1", 0), ("C?team=0", 2)):
        cont, disc = _random(spec, n, rng)
        lists[name] = encode_action_list(cont, disc)
        rl.agent_actions[name].value.extend(action_protos(ActionTuple(cont, disc), spec))
    ref.unity_input.CopyFrom(UnityInputProto(rl_input=rl))
    got = UnityMessageProto.FromString(encode_input(command, lists, side))
    assert got == ref
    assert set(got.unity_input.rl_input.agent_actions) == {"A?team=0", "B?team=1", "C?team=0"}


def _steps(rng: np.random.Generator, n_dec: int, n_term: int, masks: bool, groups: str, specs) -> tuple:
    from mlx.envs.api import DecisionSteps, TerminalSteps

    def obs(n):
        return [rng.normal(size=(n, *s.shape)).astype(np.float32) for s in specs]

    mask = None
    if masks:
        mask = [rng.random((n_dec, b)) < 0.7 for b in (3, 2)]
        for m in mask:
            m[:, 0] = True
    gid = {"none": None, "small": lambda n: rng.integers(0, 5, n), "mixed": lambda n: rng.integers(0, 300, n)}[groups]
    decision = DecisionSteps(
        obs(n_dec),
        rng.normal(size=n_dec).astype(np.float32),
        np.arange(n_dec),
        mask,
        None if gid is None else gid(n_dec),
        None if gid is None else rng.normal(size=n_dec).astype(np.float32),
    )
    terminal = TerminalSteps(
        obs(n_term),
        rng.normal(size=n_term).astype(np.float32),
        np.arange(n_term),
        rng.random(n_term) < 0.5,
        None if gid is None else gid(n_term),
        None if gid is None else rng.normal(size=n_term).astype(np.float32),
    )
    return decision, terminal


@pytest.mark.parametrize("masks", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("groups", ["none", "small", "mixed"])
@pytest.mark.parametrize("ids", ["one-byte", "three-byte", "mixed"])
def test_fixed_layout_agent_infos_are_the_general_encoders_bytes(masks, groups, ids, monkeypatch):
    """encode_infos writes byte for byte what protocol.encode_agent_infos writes (which tests check
    against per-agent AgentInfoProtos), several observation specs, goal signals, images, masks, groups."""
    from mlx.envs.api import ObservationSpec, ObservationType
    from mlx.envs.unity.bulk import encode_infos
    from mlx.envs.unity.communicator_objects.messages_pb2 import UnityRLOutputProto
    from mlx.envs.unity.protocol import agent_infos, encode_agent_infos

    specs = (
        ObservationSpec((8,), "vec"),
        ObservationSpec((3,), "goal", ObservationType.GOAL_SIGNAL),
        ObservationSpec((4, 5, 2), "img"),
    )
    rng = np.random.default_rng(len(masks * "m" + groups + ids))
    for n_dec, n_term in ((7, 2), (0, 3), (5, 0), (0, 0), (40, 9)):
        decision, terminal = _steps(rng, n_dec, n_term, masks, groups, specs)
        base = {"one-byte": 3, "three-byte": 20_000, "mixed": 100}[ids]
        d_ids = base + 2 * np.arange(n_dec)
        t_ids = base + 2 * np.arange(n_term) + 1
        want = encode_agent_infos(decision, terminal, d_ids, t_ids, specs)
        if "mixed" in (ids, groups):
            assert encode_infos(decision, terminal, d_ids, t_ids, specs) == want
        else:  # one varint length per batch: the fixed-layout path alone
            with monkeypatch.context() as m:
                m.setattr(bulk, "encode_agent_infos", None)
                assert encode_infos(decision, terminal, d_ids, t_ids, specs) == want
        protos = UnityRLOutputProto.ListAgentInfoProto(value=agent_infos(decision, terminal, d_ids, t_ids, specs))
        assert UnityRLOutputProto.ListAgentInfoProto.FromString(want) == protos


def test_fixed_layout_refuses_ids_outside_the_wire_range_like_the_general_encoder():
    from mlx.envs.api import ObservationSpec
    from mlx.envs.unity.bulk import encode_infos
    from mlx.errors import ProtocolError

    specs = (ObservationSpec((2,), "v"),)
    decision, terminal = _steps(np.random.default_rng(0), 2, 0, False, "none", specs)
    for bad in (np.array([-1, 3]), np.array([2**31, 5])):
        with pytest.raises(ProtocolError, match="agent ids"):
            encode_infos(decision, terminal, bad, np.zeros(0, np.int64), specs)
