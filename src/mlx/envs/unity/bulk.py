"""Messages on the wire in bulk: actions (both sides) and the env's agent infos written or read with array
operations over the agents instead of one protobuf object per agent.

Each produces or reads exactly the protobuf encoding of ML-Agents' messages (communication version 1.5.0),
checked by tests against the per-proto path on random data:

* ``encode_input`` / ``encode_action_list`` (trainer): the STEP message; upb parses it to the message
  ``protocol.action_protos`` builds, and writes the same bytes for the action lists.
* ``decode_actions`` (env): reads the usual layout (every agent: packed continuous_actions, then packed
  discrete_actions of values below 128, as mlx's trainer and upb write them) and returns None for
  anything else (another trainer's layout, large values, a wrong count), so that the per-proto path
  handles it and reports what is wrong.
* ``encode_infos`` (env): ``protocol.encode_agent_infos``'s bytes, as one byte matrix per batch when its
  records share one length (the usual case), else through that general encoder.

Reading agent infos in bulk on the trainer's side was tried and dropped: grouping records by layout cost
more than upb's per-agent reads up to about 100 agents per message (measured 2026-12-06).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import ActionTuple, DecisionSteps, ObservationSpec, TerminalSteps
from mlx.envs.unity.protocol import (
    STATUS_OK,
    _varints,
    encode_agent_infos,
    field_bytes,
    observation_tail,
    to_wire,
    varint,
    wire_shape,
)

_HEADER_OK = field_bytes(0x0A, bytes([0x08]) + varint(STATUS_OK))  # UnityMessageProto.header, status 200


def _rows(columns: list[tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
    """Per-row bytes [n, w] with which of them count (None: all), joined row after row into one byte array."""
    matrix = np.concatenate([c for c, _ in columns], axis=1)
    if all(v is None for _, v in columns):
        return matrix.reshape(-1)
    valid = np.concatenate([v if v is not None else np.ones(c.shape, bool) for c, v in columns], axis=1)
    return matrix[valid]


def encode_action_list(continuous: np.ndarray, discrete: np.ndarray) -> bytes | None:
    """The content of a ListAgentActionProto: one AgentActionProto per row (continuous_actions, field 6,
    and discrete_actions, field 7, both packed; empty ones left out as proto3 does). None when a discrete
    action is negative (ten-byte varints: left to the per-proto path)."""
    cont = np.ascontiguousarray(continuous, dtype="<f4")
    disc = np.asarray(discrete, dtype=np.int64)
    n = max(len(cont), len(disc))
    if n == 0:
        return b""
    if disc.size and disc.min() < 0:
        return None
    cont = cont.reshape(n, -1)
    disc = disc.reshape(n, -1)
    fixed = _fixed_action_list(cont, disc)
    if fixed is not None:
        return fixed
    columns: list[tuple[np.ndarray, np.ndarray | None]] = []
    size = np.zeros(n, np.int64)
    if cont.shape[1]:
        head = np.frombuffer(bytes([0x32]) + varint(4 * cont.shape[1]), np.uint8)
        columns += [(np.broadcast_to(head, (n, len(head))), None), (cont.view(np.uint8), None)]
        size += len(head) + 4 * cont.shape[1]
    if disc.shape[1]:
        data, lengths = _varints(disc.reshape(-1))
        width = data.shape[1]
        data, lengths = data.reshape(n, -1), lengths.reshape(n, -1)
        packed = lengths.sum(axis=1)
        packed_len, packed_len_n = _varints(packed)
        valid = (np.arange(width)[None, None, :] < lengths[:, :, None]).reshape(n, -1)
        columns += [
            (np.full((n, 1), 0x3A, np.uint8), None),
            (packed_len, np.arange(packed_len.shape[1])[None, :] < packed_len_n[:, None]),
            (data, valid),
        ]
        size += 1 + packed_len_n + packed
    rec_len, rec_len_n = _varints(size)
    head_cols: list[tuple[np.ndarray, np.ndarray | None]] = [
        (np.full((n, 1), 0x0A, np.uint8), None),
        (rec_len, np.arange(rec_len.shape[1])[None, :] < rec_len_n[:, None]),
    ]
    return _rows(head_cols + columns).tobytes()


def _fixed_action_list(cont: np.ndarray, disc: np.ndarray) -> bytes | None:
    """``encode_action_list`` when every record has the same bytes but for its values (one-byte lengths and
    discrete values below 128, the usual case): one [n, record] byte matrix filled by column blocks."""
    c, d = cont.shape[1], disc.shape[1]
    payload = (2 + 4 * c if c else 0) + (2 + d if d else 0)
    if payload > 127 or (d and disc.max() > 127):
        return None
    rows = np.empty((len(cont), 2 + payload), np.uint8)
    rows[:, 0], rows[:, 1] = 0x0A, payload
    at = 2
    if c:
        rows[:, at], rows[:, at + 1] = 0x32, 4 * c
        rows[:, at + 2 : at + 2 + 4 * c] = cont.view(np.uint8)
        at += 2 + 4 * c
    if d:
        rows[:, at], rows[:, at + 1] = 0x3A, d
        rows[:, at + 2 :] = disc
    return rows.tobytes()


def encode_input(command: int, action_lists: Mapping[str, bytes], side_channel: bytes) -> bytes:
    """A UnityMessageProto with status 200 and a UnityRLInputProto: ``action_lists`` maps wire behaviour
    names to ListAgentActionProto contents (``encode_action_list``)."""
    rl = b"".join(
        field_bytes(0x0A, field_bytes(0x0A, name.encode()) + field_bytes(0x12, data))  # agent_actions map
        for name, data in action_lists.items()
    )
    if command:
        rl += bytes([0x20]) + varint(command)  # 4: command (STEP, 0, is proto3's default and left out)
    if side_channel:
        rl += field_bytes(0x2A, side_channel)  # 5: side_channel
    return _HEADER_OK + field_bytes(0x1A, field_bytes(0x0A, rl))  # 3: unity_input { 1: rl_input }


def decode_actions(data: bytes, n: int, continuous: int, discrete: int) -> ActionTuple | None:
    """The actions of ``n`` agents from a serialised ListAgentActionProto in the usual layout (see the
    module docstring), or None when it is not in that layout (the caller then reads the protos one by one)."""
    c_len = 4 * continuous
    payload = (2 + c_len if continuous else 0) + (2 + discrete if discrete else 0)
    if n == 0 or payload == 0 or payload > 127 or 4 * continuous > 127:
        return None
    width = 2 + payload
    if len(data) != n * width:
        return None
    rows = np.frombuffer(data, np.uint8).reshape(n, width)
    expect = [(0, 0x0A), (1, payload)]
    at = 2
    if continuous:
        expect += [(at, 0x32), (at + 1, c_len)]
        at += 2 + c_len
    if discrete:
        expect += [(at, 0x3A), (at + 1, discrete)]
    cols = [c for c, _ in expect]
    if not (rows[:, cols] == np.array([v for _, v in expect], np.uint8)).all():
        return None
    cont = np.zeros((n, 0), np.float32)
    disc = np.zeros((n, 0), np.int32)
    if continuous:
        cont = rows[:, 4 : 4 + c_len].copy().view("<f4").astype(np.float32, copy=False)
    if discrete:
        values = rows[:, at + 2 : at + 2 + discrete]
        if (values >= 0x80).any():
            return None
        disc = values.astype(np.int32)
    return ActionTuple(continuous=cont, discrete=disc)


# ---- agent infos (env side) -----------------------------------------------------------------------------
def _uniform_varint(values: np.ndarray) -> np.ndarray | None:
    """Varints [n, L] of non-negative ints < 2**35 that all take L bytes, or None if their lengths differ."""
    lo, hi = int(values.min()), int(values.max())
    width = max(1, (hi.bit_length() + 6) // 7)
    if lo < 0 or max(1, (lo.bit_length() + 6) // 7) != width:
        return None
    shifts = (7 * np.arange(width, dtype=np.uint64))[None, :]
    groups = (values.astype(np.uint64)[:, None] >> shifts) & np.uint64(0x7F)
    groups[:, :-1] |= np.uint64(0x80)
    return groups.astype(np.uint8)


@functools.lru_cache(maxsize=256)
def _obs_frame(spec: ObservationSpec, floats: int) -> tuple[bytes, bytes]:
    """The bytes of an ObservationProto (field 13 of AgentInfoProto) before and after its float values."""
    shape = b"".join(varint(d) for d in wire_shape(spec.shape))
    head = bytes([0x0A]) + varint(4 * floats)  # FloatData.data, packed
    float_data_len = len(head) + 4 * floats
    tail = observation_tail(spec)
    body_len = len(field_bytes(0x0A, shape)) + 1 + len(varint(float_data_len)) + float_data_len + len(tail)
    return bytes([0x6A]) + varint(body_len) + field_bytes(0x0A, shape) + bytes([0x22]) + varint(
        float_data_len
    ) + head, tail


def _fixed_infos(
    steps: DecisionSteps | TerminalSteps,
    ids: np.ndarray,
    done: bool,
    specs: Sequence[ObservationSpec],
    grouped: bool,
) -> bytes | None:
    """AgentInfoProto records of one batch whose records all have the same length (ids, and group ids, of
    one varint length): one [n, record] byte matrix of column blocks, or None for the general encoder."""
    n = len(ids)
    if n == 0:
        return b""
    ids = np.asarray(ids, np.int64)
    id_bytes = _uniform_varint(ids)
    if id_bytes is None or int(ids.max()) >= 2**31:
        return None
    blocks: list[bytes | np.ndarray] = []  # constant bytes (every record) or per-record bytes [n, w]
    const = blocks.append

    def raw(arr: np.ndarray) -> None:
        blocks.append(np.ascontiguousarray(arr).view(np.uint8).reshape(n, -1))

    const(b"\x3d")  # 7: reward
    raw(np.asarray(steps.reward, "<f4"))
    const(bytes([0x40, 1 if done else 0, 0x48]))  # 8: done, 9: max_step_reached
    raw(np.asarray(steps.interrupted, np.uint8) if isinstance(steps, TerminalSteps) else np.zeros(n, np.uint8))
    const(b"\x50")  # 10: id
    blocks.append(id_bytes)
    if isinstance(steps, DecisionSteps) and isinstance(steps.action_mask, list) and steps.action_mask:
        allowed = np.concatenate([np.asarray(m, bool) for m in steps.action_mask], axis=1)
        const(bytes([0x5A]) + varint(allowed.shape[1]))  # 11: action_mask, packed, True = masked
        raw((~allowed).astype(np.uint8))
    for k, spec in enumerate(specs):  # 13: observations
        values = to_wire(np.asarray(steps.obs[k], "<f4"), len(spec.shape)).reshape(n, -1)
        head, tail = _obs_frame(spec, values.shape[1])
        const(head)
        raw(values)
        const(tail)
    if grouped:
        gid = np.asarray(steps.group_id if steps.group_id is not None else np.zeros(n), np.int64)
        gid_bytes = _uniform_varint(gid)
        if gid_bytes is None:
            return None
        const(b"\x70")  # 14: group_id
        blocks.append(gid_bytes)
        const(b"\x7d")  # 15: group_reward
        raw(np.asarray(steps.group_reward if steps.group_reward is not None else np.zeros(n), "<f4"))
    widths = [len(b) if isinstance(b, bytes) else b.shape[1] for b in blocks]
    head = bytes([0x0A]) + varint(sum(widths))
    rows = np.empty((n, len(head) + sum(widths)), np.uint8)
    rows[:, : len(head)] = np.frombuffer(head, np.uint8)
    at = len(head)
    for block, width in zip(blocks, widths, strict=True):
        rows[:, at : at + width] = np.frombuffer(block, np.uint8) if isinstance(block, bytes) else block
        at += width
    return rows.tobytes()


def encode_infos(
    decision: DecisionSteps,
    terminal: TerminalSteps,
    decision_ids: np.ndarray,
    terminal_ids: np.ndarray,
    specs: Sequence[ObservationSpec],
) -> bytes:
    """``protocol.encode_agent_infos`` (the same bytes, tests check it), faster in the usual case where
    every agent's record of a batch has one length; the general encoder otherwise."""
    grouped = decision.group_id is not None or terminal.group_id is not None
    term = _fixed_infos(terminal, terminal_ids, True, specs, grouped)
    dec = _fixed_infos(decision, decision_ids, False, specs, grouped) if term is not None else None
    if term is None or dec is None:
        return encode_agent_infos(decision, terminal, decision_ids, terminal_ids, specs)
    return term + dec
