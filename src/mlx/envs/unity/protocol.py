"""ML-Agents' wire protocol: constants, version check, and conversions between protos and mlx's env API.

Both sides of a connection use these functions: the trainer (``mlx.envs.unity.env``) turns AgentInfoProtos
into DecisionSteps/TerminalSteps and actions into AgentActionProtos; an env process (``mlx.envs.unity.remote``)
does the reverse. Facts of the protocol (field meanings, conventions) are ML-Agents' (communication
version 1.5.0):

* behaviour names on the wire are ``<Name>?team=<id>`` (``split_behavior_name`` / ``wire_behavior_name``);
  mlx keys behaviours by ``<Name>`` and carries the team as ``team_id`` on the steps of multi-team behaviours;
* on the wire an action-mask flag is True where the action is *masked*; in mlx True means *allowed*;
* visual (3-D) observations are [channels, height, width] on the wire and [height, width, channels] in
  mlx (its native envs and encoders): both sides transpose at the boundary; PNG-compressed ones may
  hold several PNGs back to back (more than 3 channels), with ``compressed_channel_mapping`` saying
  which channel each decoded channel feeds (-1: padding; several decoded channels mapped to one are
  averaged);
* a variable-length observation (ML-Agents' BufferSensor, ``ObservationSpec.variable_length``) is
  [max_entities, entity_size] on both sides, zero rows as padding, with ``dimension_properties``
  (VARIABLE_SIZE, NONE); both sides announce ``variableLengthObservation``. Other dimension properties
  are not kept: mlx reads 1-D as vectors and 3-D as cameras, as before.

Every malformed input raises ``ProtocolError`` (an EnvError) naming the behaviour, the agent and the field.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np

from mlx.envs.api import (
    VARIABLE_LENGTH,
    ActionSpec,
    ActionTuple,
    BehaviorSpec,
    DecisionSteps,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)
from mlx.envs.unity.communicator_objects.messages_pb2 import (
    PNG,
    ActionSpecProto,
    AgentActionProto,
    AgentInfoProto,
    BrainParametersProto,
    ObservationProto,
    UnityRLCapabilitiesProto,
)
from mlx.errors import ProtocolError

COMMUNICATION_VERSION = "1.5.0"
ACADEMY_NAME = "AcademySingleton"
EDITOR_PORT = 5004
BASE_PORT = 5005
PORT_ARG = "--mlagents-port"
STATUS_OK = 200
STATUS_CLOSE = 400
PNG_HEADER = b"\x89PNG\r\n\x1a\n"

_TEAM = re.compile(r"^(?P<name>.*)\?team=(?P<team>-?\d+)$")


def capabilities() -> UnityRLCapabilitiesProto:
    """What mlx handles, announced by both sides (the trainer and mlx's env processes)."""
    return UnityRLCapabilitiesProto(
        baseRLCapabilities=True,
        concatenatedPngObservations=True,
        compressedChannelMapping=True,
        hybridActions=True,
        trainingAnalytics=False,
        variableLengthObservation=True,
        multiAgentGroups=True,
    )


def _version(text: str) -> tuple[int, int]:
    parts = text.split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise ProtocolError(
            f"unreadable communication version '{text}' (expected like {COMMUNICATION_VERSION})"
        ) from None


def check_version(other: str, who: str) -> None:
    """ML-Agents' rule: major versions must match (for major 0, major and minor)."""
    mine, theirs = _version(COMMUNICATION_VERSION), _version(other)
    compatible = mine == theirs if theirs[0] == 0 or mine[0] == 0 else mine[0] == theirs[0]
    if not compatible:
        raise ProtocolError(
            f"{who} speaks ML-Agents communication version {other or '(none)'}, mlx speaks {COMMUNICATION_VERSION}; "
            "they are incompatible: use a build made with an ML-Agents package of communication version 1.x "
            "(com.unity.ml-agents 2.0 or later)"
        )


def split_behavior_name(wire_name: str) -> tuple[str, int]:
    """``3DBall?team=0`` -> (``3DBall``, 0); a name without the suffix is team 0."""
    m = _TEAM.match(wire_name)
    return (m["name"], int(m["team"])) if m else (wire_name, 0)


def wire_behavior_name(name: str, team: int = 0) -> str:
    return f"{name}?team={team}"


def wire_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """mlx's observation shape on the wire: [h, w, c] -> [c, h, w]; other ranks unchanged."""
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


def mlx_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """A wire observation shape in mlx: [c, h, w] -> [h, w, c]; other ranks unchanged."""
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else tuple(shape)


def wire_dimension_properties(spec: ObservationSpec) -> list[int]:
    """The spec's dimension properties in wire axis order (cameras' [h, w, c] -> [c, h, w]); [] if none."""
    props = [int(p) for p in spec.dimension_property]
    return [props[2], props[0], props[1]] if len(props) == 3 else props


def observation_tail(spec: ObservationSpec) -> bytes:
    """The encoded fields of an ObservationProto after its float data: dimension_properties (6, packed),
    observation_type (7, when not DEFAULT), name (8); what ``observation_proto`` gives upb to write."""
    props = wire_dimension_properties(spec)
    dims = field_bytes(0x32, b"".join(varint(p) for p in props)) if props else b""
    kind = b"\x38\x01" if spec.observation_type == ObservationType.GOAL_SIGNAL else b""
    return dims + kind + field_bytes(0x42, spec.name.encode())


def to_wire(obs: np.ndarray, rank: int) -> np.ndarray:
    """A batch [n, h, w, c] of 3-D observations as [n, c, h, w] (others unchanged)."""
    return np.moveaxis(obs, -1, 1) if rank == 3 else obs


def from_wire(obs: np.ndarray, rank: int) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(obs, 1, -1)) if rank == 3 else obs


# ---- behaviour specs --------------------------------------------------------------------------------
def brain_parameters(wire_name: str, spec: ActionSpec) -> BrainParametersProto:
    """The BrainParametersProto an env sends the first time a behaviour's agents appear."""
    proto = BrainParametersProto(
        brain_name=wire_name,
        is_training=True,
        action_spec=ActionSpecProto(
            num_continuous_actions=spec.continuous_size,
            num_discrete_actions=spec.discrete_size,
            discrete_branch_sizes=list(spec.discrete_branches),
        ),
    )
    # Older trainers read the deprecated fields; fill them when the space is not hybrid.
    if spec.is_continuous and not spec.is_discrete:
        proto.vector_action_size_deprecated.append(spec.continuous_size)
        proto.vector_action_space_type_deprecated = 1
    elif spec.is_discrete and not spec.is_continuous:
        proto.vector_action_size_deprecated.extend(spec.discrete_branches)
    return proto


def behavior_spec(params: BrainParametersProto, agent: AgentInfoProto) -> BehaviorSpec:
    """The spec of a behaviour from its BrainParametersProto and its first agent's observations."""
    a = params.action_spec
    if params.HasField("action_spec") and (a.num_continuous_actions or a.num_discrete_actions):
        if len(a.discrete_branch_sizes) != a.num_discrete_actions:
            raise ProtocolError(
                f"behaviour {params.brain_name}: {a.num_discrete_actions} discrete actions but "
                f"{len(a.discrete_branch_sizes)} branch sizes"
            )
        action = ActionSpec(a.num_continuous_actions, tuple(int(b) for b in a.discrete_branch_sizes))
    elif params.vector_action_space_type_deprecated == 1:
        action = ActionSpec(continuous_size=int(params.vector_action_size_deprecated[0]))
    else:
        action = ActionSpec(discrete_branches=tuple(int(b) for b in params.vector_action_size_deprecated))
    if action.continuous_size < 0 or any(b < 1 for b in action.discrete_branches):
        raise ProtocolError(f"behaviour {params.brain_name}: invalid action spec {action}")
    obs = []
    for i, o in enumerate(agent.observations):
        shape = tuple(int(d) for d in o.shape)
        if not shape or any(d < 1 for d in shape):
            raise ProtocolError(f"behaviour {params.brain_name}: observation {i} has invalid shape {list(shape)}")
        kind = ObservationType(o.observation_type) if o.observation_type in (0, 1) else ObservationType.DEFAULT
        props = tuple(int(p) for p in o.dimension_properties)
        name = o.name or f"obs_{i}"
        if props == VARIABLE_LENGTH and len(shape) == 2:
            if kind == ObservationType.GOAL_SIGNAL:
                raise ProtocolError(
                    f"behaviour {params.brain_name}: observation {i} ({name}) is a variable-length goal signal, "
                    "which ML-Agents' trainers refuse too"
                )
            obs.append(ObservationSpec(shape, name, kind, VARIABLE_LENGTH))
            continue
        if 4 in props:  # VARIABLE_SIZE anywhere else: no trainer knows how to read it
            raise ProtocolError(
                f"behaviour {params.brain_name}: observation {i} ({name}) has dimension properties {list(props)}; "
                "a variable-size axis is only understood as the first of a 2-D observation (VARIABLE_SIZE, NONE)"
            )
        obs.append(ObservationSpec(shape=mlx_shape(shape), name=name, observation_type=kind))
    if not obs:
        raise ProtocolError(f"behaviour {params.brain_name}: its agents send no observation")
    return BehaviorSpec(tuple(obs), action)


# ---- observations -----------------------------------------------------------------------------------
def encode_png(image: np.ndarray) -> tuple[bytes, list[int]]:
    """A [C, H, W] observation in [0, 1] as PNG bytes (several PNGs back to back above 3 channels) and its
    channel mapping, as Unity's camera sensors send them (quantised to 8 bits)."""
    from PIL import Image  # lazy: start-up speed (only PNG-compressed camera observations need it)

    c = image.shape[0]
    pixels = np.clip(np.rint(np.asarray(image, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    mapping: list[int] = []
    for start in range(0, c, 3):
        chunk = pixels[start : start + 3]
        n = len(chunk)
        if n == 1:
            Image.fromarray(chunk[0], mode="L").save(out, format="PNG")
            mapping += [start]
            continue
        if n == 2:  # pad to RGB; the padding channel is mapped to -1
            chunk = np.concatenate([chunk, np.zeros_like(chunk[:1])])
        Image.fromarray(np.ascontiguousarray(np.moveaxis(chunk, 0, -1)), mode="RGB").save(out, format="PNG")
        mapping += [start + k if k < n else -1 for k in range(3)]
    return out.getvalue(), mapping


def decode_png(data: bytes, shape: Sequence[int], mapping: Sequence[int], where: str) -> np.ndarray:
    """PNG bytes (one or several PNGs) back into a float32 [C, H, W] array in [0, 1]."""
    from PIL import Image, UnidentifiedImageError  # lazy: start-up speed (only PNG observations need it)

    channels: list[np.ndarray] = []
    starts = [i for i in _png_offsets(data)]
    if not starts or starts[0] != 0:
        raise ProtocolError(f"{where}: compressed observation is not PNG data")
    for begin, end in zip(starts, [*starts[1:], len(data)], strict=True):
        try:
            with Image.open(io.BytesIO(data[begin:end])) as img:
                arr = np.asarray(img, dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ProtocolError(f"{where}: a PNG in the observation cannot be decoded ({exc})") from None
        channels.extend([arr] if arr.ndim == 2 else list(np.moveaxis(arr, -1, 0)))
    expected_c = int(shape[0])
    if mapping:
        if len(mapping) != len(channels):
            raise ProtocolError(
                f"{where}: the PNG data has {len(channels)} channels but its channel mapping has {len(mapping)}"
            )
        targets = sorted({m for m in mapping if m >= 0})
        if targets != list(range(expected_c)):
            raise ProtocolError(f"{where}: channel mapping {list(mapping)} does not cover channels 0..{expected_c - 1}")
        out = np.stack(
            [np.mean([ch for ch, m in zip(channels, mapping, strict=True) if m == t], axis=0) for t in targets]
        )
    elif expected_c == 1 and len(channels) >= 1:
        out = np.mean(channels[:3], axis=0)[None]  # grey scale from RGB, as upstream
    else:
        if len(channels) < expected_c:
            raise ProtocolError(f"{where}: the PNG data has {len(channels)} channels, the observation {expected_c}")
        out = np.stack(channels[:expected_c])
    if tuple(out.shape) != tuple(shape):
        raise ProtocolError(f"{where}: decoded image is {list(out.shape)}, the observation says {list(shape)}")
    return out.astype(np.float32, copy=False)


def _png_offsets(data: bytes) -> list[int]:
    offsets, start = [], 0
    while True:
        i = data.find(PNG_HEADER, start)
        if i < 0:
            return offsets
        offsets.append(i)
        start = i + len(PNG_HEADER)


def observation_proto(obs: np.ndarray, spec: ObservationSpec, compress: bool = False) -> ObservationProto:
    """One agent's observation of one sensor (mlx layout); 3-D observations are PNG-compressed when asked."""
    wire = to_wire(np.asarray(obs, np.float32)[None], len(obs.shape))[0]
    kind = int(spec.observation_type)
    if compress and wire.ndim == 3:
        data, mapping = encode_png(wire)
        return ObservationProto(
            shape=list(wire.shape),
            compression_type=PNG,
            compressed_data=data,
            compressed_channel_mapping=mapping,
            dimension_properties=wire_dimension_properties(spec),
            observation_type=kind,
            name=spec.name,
        )
    return ObservationProto(
        shape=list(wire.shape),
        float_data=ObservationProto.FloatData(data=wire.ravel()),
        dimension_properties=wire_dimension_properties(spec),
        observation_type=kind,
        name=spec.name,
    )


def _batch_obs(infos: Sequence[AgentInfoProto], index: int, spec: ObservationSpec, behavior: str) -> np.ndarray:
    n = len(infos)
    shape, rank = wire_shape(spec.shape), len(spec.shape)
    if n == 0:
        return np.zeros((0, *spec.shape), dtype=np.float32)
    obs = [info.observations[index] for info in infos]
    size = int(np.prod(shape))
    if all(o.WhichOneof("observation_data") == "float_data" for o in obs):
        # One C call per agent: FloatData re-serialised is a key byte, a varint length and the packed floats.
        raw = b"".join([o.float_data.SerializeToString() for o in obs])
        head = 1 + len(varint(4 * size))
        if len(raw) == n * (head + 4 * size):
            rows = np.frombuffer(raw, dtype=np.uint8).reshape(n, head + 4 * size)
            if (rows[:, 0] == 0x0A).all():
                flat = rows[:, head:].copy().view("<f4").astype(np.float32, copy=False)
                return from_wire(flat.reshape(n, *shape), rank)
        bad = next((i for i, o in enumerate(obs) if len(o.float_data.data) != size), 0)
        raise ProtocolError(
            f"behaviour {behavior}, agent {infos[bad].id}: observation {index} has "
            f"{len(obs[bad].float_data.data)} floats, its shape {list(shape)} needs {size}"
        )
    out = np.empty((n, *shape), dtype=np.float32)
    for row, (info, o) in enumerate(zip(infos, obs, strict=True)):
        where = f"behaviour {behavior}, agent {info.id}, observation {index}"
        if tuple(o.shape) != shape:
            raise ProtocolError(f"{where}: shape {list(o.shape)}, expected {list(shape)}")
        if o.WhichOneof("observation_data") == "compressed_data":
            if o.compression_type != PNG:
                raise ProtocolError(f"{where}: unknown compression type {o.compression_type}")
            out[row] = decode_png(o.compressed_data, shape, list(o.compressed_channel_mapping), where)
        elif len(o.float_data.data) == size:
            out[row] = np.asarray(o.float_data.data, dtype=np.float32).reshape(shape)
        else:
            raise ProtocolError(f"{where}: {len(o.float_data.data)} floats, its shape {list(shape)} needs {size}")
    return from_wire(out, rank)


def steps_from_infos(
    infos: Sequence[AgentInfoProto], spec: BehaviorSpec, behavior: str
) -> tuple[DecisionSteps, TerminalSteps, np.ndarray, np.ndarray]:
    """DecisionSteps/TerminalSteps of one behaviour from its AgentInfoProtos, plus the wire agent ids of
    both (the caller maps them to stable ids). Observations of every agent are checked against the spec.

    Per agent it reads its scalars in one pass and its observations with one C call each; the rest is
    array operations over the batch."""
    n, n_obs = len(infos), len(spec.observation_specs)
    scalars = np.array(
        [(i.done, i.max_step_reached, i.id, i.reward, i.group_id, i.group_reward, len(i.observations)) for i in infos],
        dtype=np.float64,
    ).reshape(n, 7)
    wrong = np.flatnonzero(scalars[:, 6] != n_obs)
    if len(wrong):
        k = int(wrong[0])
        raise ProtocolError(
            f"behaviour {behavior}, agent {infos[k].id}: {len(infos[k].observations)} observations, "
            f"the behaviour has {n_obs}"
        )
    if not np.isfinite(scalars[:, [3, 5]]).all():
        raise ProtocolError(f"behaviour {behavior}: an agent sent a non-finite reward")
    done = scalars[:, 0] != 0
    d_idx, t_idx = np.flatnonzero(~done), np.flatnonzero(done)
    obs = [_batch_obs(infos, k, s, behavior) for k, s in enumerate(spec.observation_specs)]
    ids = scalars[:, 2].astype(np.int64)
    reward = scalars[:, 3].astype(np.float32)
    group = scalars[:, 4].astype(np.int32)
    group_reward = scalars[:, 5].astype(np.float32)
    mask = None
    branches = spec.action_spec.discrete_branches
    if branches and len(d_idx):
        total = int(sum(branches))
        flags = np.zeros((len(d_idx), total), dtype=bool)
        for row, k in enumerate(d_idx.tolist()):
            m = infos[k].action_mask
            if len(m) == total:
                flags[row] = m
            elif len(m):
                raise ProtocolError(
                    f"behaviour {behavior}, agent {infos[k].id}: action mask has {len(m)} flags, "
                    f"the branches {list(branches)} need {total}"
                )
        allowed = ~flags
        mask = np.split(allowed, np.cumsum(branches)[:-1], axis=1)
        for m, b in zip(mask, branches, strict=True):
            if m.shape[1] == b and not m.any(axis=1).all():
                row = int(np.argmin(m.any(axis=1)))
                raise ProtocolError(
                    f"behaviour {behavior}, agent {infos[int(d_idx[row])].id}: a branch has every action masked"
                )
    grouped = bool(group.any())
    decision_steps = DecisionSteps(
        obs=[o[d_idx] for o in obs],
        reward=reward[d_idx],
        agent_id=ids[d_idx],
        action_mask=mask,
        group_id=group[d_idx] if grouped else None,
        group_reward=group_reward[d_idx] if grouped else None,
    )
    terminal_steps = TerminalSteps(
        obs=[o[t_idx] for o in obs],
        reward=reward[t_idx],
        agent_id=ids[t_idx],
        interrupted=scalars[t_idx, 1] != 0,
        group_id=group[t_idx] if grouped else None,
        group_reward=group_reward[t_idx] if grouped else None,
    )
    return decision_steps, terminal_steps, ids[d_idx], ids[t_idx]


def agent_infos(
    decision: DecisionSteps,
    terminal: TerminalSteps,
    decision_ids: np.ndarray,
    terminal_ids: np.ndarray,
    specs: Sequence[ObservationSpec],
    compress: bool = False,
) -> list[AgentInfoProto]:
    """The env side: AgentInfoProtos of one behaviour, terminal steps first (as Unity sends an agent's
    end of episode before its next decision). ``*_ids`` are the wire ids (episode ids)."""
    out: list[AgentInfoProto] = []
    for steps, ids, done in ((terminal, terminal_ids, True), (decision, decision_ids, False)):
        n = len(ids)
        if n == 0:
            continue
        rewards = np.asarray(steps.reward, dtype=np.float32).tolist()
        obs = [np.asarray(o, dtype=np.float32) for o in steps.obs]
        max_step = np.asarray(steps.interrupted, bool).tolist() if done else [False] * n  # type: ignore[union-attr]
        groups = steps.group_id.tolist() if steps.group_id is not None else [0] * n
        group_rewards = steps.group_reward.tolist() if steps.group_reward is not None else [0.0] * n
        masks: list[list[bool]] | None = None
        if not done and isinstance(steps, DecisionSteps) and steps.action_mask is not None:
            masks = (~np.concatenate([np.asarray(m, bool) for m in steps.action_mask], axis=1)).tolist()
        for row, agent in enumerate(ids.tolist()):
            info = AgentInfoProto(
                reward=rewards[row],
                done=done,
                max_step_reached=max_step[row],
                id=agent,
                group_id=groups[row],
                group_reward=group_rewards[row],
                observations=[observation_proto(o[row], sp, compress) for o, sp in zip(obs, specs, strict=True)],
            )
            if masks is not None:
                info.action_mask.extend(masks[row])
            out.append(info)
    return out


# ---- fast encoding (env side) ---------------------------------------------------------------------------
def varint(value: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative int."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _varints(values: np.ndarray, width: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised varints of non-negative ints < 2**35: bytes [n, width] (left-aligned) and lengths [n]."""
    v = np.asarray(values, dtype=np.uint64)
    shifts = (7 * np.arange(width, dtype=np.uint64))[None, :]
    groups = (v[:, None] >> shifts) & np.uint64(0x7F)
    lengths = np.maximum(1, np.ceil(np.log2(v.astype(np.float64) + 1) / 7).astype(np.int64))
    cols = np.arange(width)[None, :]
    more = cols < (lengths[:, None] - 1)
    return (groups | (more.astype(np.uint64) << np.uint64(7))).astype(np.uint8), lengths


def field_bytes(key: int, payload: bytes) -> bytes:
    """A length-delimited field: its key byte ((number << 3) | 2), the length, the payload."""
    return bytes([key]) + varint(len(payload)) + payload


def encode_agent_infos(
    decision: DecisionSteps,
    terminal: TerminalSteps,
    decision_ids: np.ndarray,
    terminal_ids: np.ndarray,
    obs_specs: Sequence[ObservationSpec],
) -> bytes:
    """The serialised content of a ListAgentInfoProto (terminal steps first), built with array operations.

    Equivalent to ``agent_infos`` with float observations (tests check that upb parses it to the same
    messages), but without a Python object per agent: an env process spends most of its time here
    otherwise. Fields are written in field-number order, every scalar present (valid proto3)."""
    parts = [(terminal, terminal_ids, True), (decision, decision_ids, False)]
    n = len(terminal_ids) + len(decision_ids)
    if n == 0:
        return b""
    ids = np.concatenate([np.asarray(terminal_ids, np.int64), np.asarray(decision_ids, np.int64)])
    if (ids < 0).any() or (ids >= 2**31).any():
        raise ProtocolError("agent ids on the wire must be in [0, 2**31)")
    reward = np.concatenate([np.asarray(t.reward, "<f4") for t, _, _ in parts])
    done = np.repeat(np.array([1, 0], np.uint8), [len(terminal_ids), len(decision_ids)])
    interrupted = np.concatenate([np.asarray(terminal.interrupted, np.uint8), np.zeros(len(decision_ids), np.uint8)])
    columns: list[tuple[np.ndarray, np.ndarray | None]] = []  # (bytes [n, w], valid [n, w] or None: all valid)

    def const(data: bytes) -> None:
        columns.append((np.broadcast_to(np.frombuffer(data, np.uint8), (n, len(data))), None))

    def fixed(tag: int, arr: np.ndarray) -> None:
        const(bytes([tag]))
        columns.append((np.ascontiguousarray(arr).view(np.uint8).reshape(n, -1), None))

    def var(tag: int, values: np.ndarray) -> np.ndarray:
        const(bytes([tag]))
        data, lengths = _varints(values)
        columns.append((data, np.arange(data.shape[1])[None, :] < lengths[:, None]))
        return lengths

    fixed(0x3D, reward)  # 7: reward
    fixed(0x40, done)  # 8: done
    fixed(0x48, interrupted)  # 9: max_step_reached
    id_len = var(0x50, ids)  # 10: id
    size = 9 + 1 + id_len
    if isinstance(decision.action_mask, list) and decision.action_mask and len(decision_ids):
        allowed = np.concatenate([np.asarray(m, bool) for m in decision.action_mask], axis=1)
        total = allowed.shape[1]
        flags = np.concatenate([np.zeros((len(terminal_ids), total), bool), ~allowed]).astype(np.uint8)
        head = bytes([0x5A]) + varint(total)  # 11: action_mask, packed; only deciding agents carry one
        block = np.concatenate([np.broadcast_to(np.frombuffer(head, np.uint8), (n, len(head))), flags], axis=1)
        deciding = done == 0
        columns.append((block, np.broadcast_to(deciding[:, None], block.shape)))
        size = size + block.shape[1] * deciding
    for k, spec in enumerate(obs_specs):  # 13: observations
        rank = len(spec.shape)
        values = np.concatenate(
            [to_wire(np.asarray(t.obs[k], "<f4"), rank).reshape(len(i), -1) for t, i, _ in parts if len(i)], axis=0
        )
        shape = b"".join(varint(d) for d in wire_shape(spec.shape))
        floats = varint(0x0A) + varint(4 * values.shape[1])
        float_data_len = len(floats) + 4 * values.shape[1]
        tail = observation_tail(spec)
        body_len = len(field_bytes(0x0A, shape)) + 1 + len(varint(float_data_len)) + float_data_len + len(tail)
        const(
            bytes([0x6A])
            + varint(body_len)
            + field_bytes(0x0A, shape)
            + bytes([0x22])
            + varint(float_data_len)
            + floats
        )
        columns.append((np.ascontiguousarray(values).view(np.uint8), None))
        const(tail)
        size = size + 1 + len(varint(body_len)) + body_len
    groups = [t.group_id for t, _, _ in parts]
    if any(g is not None for g in groups):
        gid = np.concatenate(
            [
                np.asarray(g if g is not None else np.zeros(len(i)), np.int64)
                for g, (_, i, _) in zip(groups, parts, strict=True)
            ]
        )
        grew = np.concatenate(
            [np.asarray(t.group_reward if t.group_reward is not None else np.zeros(len(i)), "<f4") for t, i, _ in parts]
        )
        size = size + 1 + var(0x70, gid)  # 14: group_id
        fixed(0x7D, grew)  # 15: group_reward
        size = size + 5
    rec_len, rec_lengths = _varints(size)
    head_cols = [
        (np.full((n, 1), 0x0A, np.uint8), None),
        (rec_len, np.arange(rec_len.shape[1])[None, :] < rec_lengths[:, None]),
    ]
    cols = head_cols + columns
    matrix = np.concatenate([c for c, _ in cols], axis=1)
    valid = np.concatenate([v if v is not None else np.ones(c.shape, bool) for c, v in cols], axis=1)
    return matrix[valid].tobytes()


# ---- actions ----------------------------------------------------------------------------------------
def action_protos(actions: ActionTuple, spec: ActionSpec) -> list[AgentActionProto]:
    """The trainer side: one AgentActionProto per deciding agent, in DecisionSteps order."""
    cont = np.asarray(actions.continuous, dtype=np.float32).reshape(len(actions), spec.continuous_size).tolist()
    disc = np.asarray(actions.discrete, dtype=np.int32).reshape(len(actions), spec.discrete_size).tolist()
    return [AgentActionProto(continuous_actions=c, discrete_actions=d) for c, d in zip(cont, disc, strict=True)]


def actions_from_protos(protos: Sequence[AgentActionProto], spec: ActionSpec, n: int, behavior: str) -> ActionTuple:
    """The env side: actions for the ``n`` agents that requested a decision, refusing a wrong count or size.

    An empty list (the trainer sent nothing for this behaviour) means zero actions, as Unity treats it."""
    if len(protos) == 0:
        return spec.empty(n)
    if len(protos) != n:
        raise ProtocolError(f"behaviour {behavior}: {len(protos)} actions for {n} agents that requested a decision")
    try:
        cont = np.array([p.continuous_actions for p in protos], dtype=np.float32).reshape(n, spec.continuous_size)
        disc = np.array([p.discrete_actions for p in protos], dtype=np.int32).reshape(n, spec.discrete_size)
    except ValueError:
        raise ProtocolError(
            f"behaviour {behavior}: actions must hold {spec.continuous_size} continuous and "
            f"{spec.discrete_size} discrete values each"
        ) from None
    return ActionTuple(continuous=cont, discrete=disc)
