"""Actions on the wire in bulk: the trainer's STEP message written with array operations, and the env's
actions read back the same way, instead of one AgentActionProto (a Python object) per agent.

Both produce or read exactly the protobuf encoding of ML-Agents' messages (communication version 1.5.0):
``encode_input`` is a UnityMessageProto that upb parses to the message ``protocol.action_protos`` builds
(tests check it on random data); ``decode_actions`` reads the usual layout (every agent: packed
continuous_actions, then packed discrete_actions of values below 128, as mlx's trainer and upb write them)
and returns None for anything else (another trainer's layout, negative or large values, a wrong count),
so that the per-proto path handles it and reports what is wrong. Per exchange this saves a few
microseconds per agent on each side, what dominated the Python part of an exchange.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlx.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, ObservationSpec, ObservationType, TerminalSteps
from mlx.envs.unity.protocol import (
    STATUS_OK,
    _varints,
    assemble_steps,
    encode_agent_infos,
    field_bytes,
    from_wire,
    steps_from_infos,
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
    tail = (b"\x38\x01" if spec.observation_type == ObservationType.GOAL_SIGNAL else b"") + field_bytes(
        0x42, spec.name.encode()
    )
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


# ---- agent infos (trainer side) -------------------------------------------------------------------------
def _varint_at(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes, pos: int, end: int) -> list[tuple[int, int, int, int]] | None:
    """The fields of a message in buf[pos:end]: (number, wire type, value start, value end); None if it does
    not parse as the wire types mlx reads (varint, length-delimited, fixed32)."""
    out = []
    while pos < end:
        key, pos = _varint_at(buf, pos)
        number, kind = key >> 3, key & 7
        if kind == 0:
            _, stop = _varint_at(buf, pos)
        elif kind == 2:
            size, pos = _varint_at(buf, pos)
            stop = pos + size
        elif kind == 5:
            stop = pos + 4
        else:
            return None
        out.append((number, kind, pos, stop))
        pos = stop
    return out if pos == end else None


def _varint_column(rows: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Varints of one length at the same columns of every row, as int64."""
    out = np.zeros(len(rows), np.int64)
    for j in range(stop - start):
        out |= (rows[:, start + j].astype(np.int64) & 0x7F) << (7 * j)
    return out


def _read_group(rows: np.ndarray, spec: BehaviorSpec) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None] | None:
    """Scalars [k, 6], observations (wire layout, flat) and masked flags of records [k, L] that share one
    length: the layout is read from the first, and every other must have the same bytes outside the
    values (same keys, lengths, shapes, names; varints of the same length). None when not so."""
    first = rows[0].tobytes()
    fields = _fields(first, 0, len(first))
    if fields is None:
        return None
    k, width = rows.shape
    structure = np.ones(width, bool)  # bytes that must be equal in every record
    varint_cols: list[int] = []  # value bytes of varints: their continuation bits must be equal too
    scalars = np.zeros((k, 6), np.float64)
    obs: list[np.ndarray] = []
    flags = None
    sane = np.ones(k, bool)
    branches_total = int(sum(spec.action_spec.discrete_branches))
    columns = {8: 0, 9: 1, 10: 2, 7: 3, 14: 4, 15: 5}
    for number, kind, start, stop in fields:
        if number in (7, 15) and kind == 5:
            scalars[:, columns[number]] = rows[:, start:stop].copy().view("<f4")[:, 0]
        elif number in (8, 9, 10, 14) and kind == 0:
            if stop - start > 5:  # a negative int32: the per-proto path
                return None
            scalars[:, columns[number]] = _varint_column(rows, start, stop)
            varint_cols += range(start, stop)
        elif number == 11 and kind == 2:
            if stop - start != branches_total:
                return None
            flags = rows[:, start:stop].astype(bool)
            sane &= (rows[:, start:stop] <= 1).all(axis=1)  # bools are 0 or 1
        elif number == 13 and kind == 2:
            floats = _float_span(first, start, stop)
            if floats is None:
                return None
            a, b = floats
            obs.append(rows[:, a:b].copy().view("<f4"))
            structure[a:b] = False
            continue
        else:
            continue  # anything else: equal in every record
        structure[start:stop] = False
    if len(obs) != len(spec.observation_specs):
        return None
    if not sane[0]:
        return None
    same = sane & (rows[:, structure] == rows[0, structure]).all(axis=1)
    if varint_cols:
        same &= ((rows[:, varint_cols] & 0x80) == (rows[0, varint_cols] & 0x80)).all(axis=1)
    return scalars, obs, flags, same


def _float_span(buf: bytes, start: int, stop: int) -> tuple[int, int] | None:
    """Where an ObservationProto's float values lie (uncompressed only), or None."""
    inner = _fields(buf, start, stop)
    if inner is None or any(number == 3 for number, *_ in inner):
        return None
    data = [(a, b) for number, kind, a, b in inner if number == 4 and kind == 2]
    if len(data) != 1:
        return None
    values = _fields(buf, *data[0])
    if values is None or len(values) != 1 or values[0][:2] != (1, 2):
        return None
    return values[0][2], values[0][3]


def decode_infos(data: bytes, spec: BehaviorSpec) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None] | None:
    """What ``protocol.steps_from_infos`` reads from the AgentInfoProtos in a serialised ListAgentInfoProto
    (as upb writes it: fields in order, defaults left out): scalars [n, 6], observations in mlx's layout
    and the masked flags, read with array operations over the records of each length. None when a record
    is not what this reads (PNG observations, a shape or count that does not match the spec, ...): the
    per-proto path then reads it and reports what is wrong."""
    starts, stops = [], []
    pos = 0
    try:
        while pos < len(data):
            if data[pos] != 0x0A:
                return None
            size, pos = _varint_at(data, pos + 1)
            starts.append(pos)
            pos += size
            stops.append(pos)
    except (IndexError, ValueError):
        return None
    n = len(starts)
    if n == 0 or pos != len(data):
        return None
    begin, lengths = np.array(starts), np.array(stops) - np.array(starts)
    buf = np.frombuffer(data, np.uint8)
    scalars = np.zeros((n, 6), np.float64)
    sizes = [int(np.prod(s.shape)) for s in spec.observation_specs]
    flat = [np.empty((n, size), np.float32) for size in sizes]
    total = int(sum(spec.action_spec.discrete_branches))
    flags = np.zeros((n, total), bool) if total else None
    todo = [np.flatnonzero(lengths == length) for length in np.unique(lengths).tolist()]
    while todo:  # records of one length, then those of them with another layout than the first, ...
        idx = todo.pop()
        rows = buf[begin[idx, None] + np.arange(lengths[idx[0]])[None, :]]
        try:
            group = _read_group(rows, spec)
        except (IndexError, ValueError):
            return None
        if group is None:
            return None
        g_scalars, g_obs, g_flags, same = group
        if any(o.shape[1] != size for o, size in zip(g_obs, sizes, strict=True)):
            return None
        take = idx[same]
        scalars[take] = g_scalars[same]
        for out, values in zip(flat, g_obs, strict=True):
            out[take] = values[same]
        if flags is not None:
            flags[take] = g_flags[same] if g_flags is not None else False
        if not same.all():
            todo.append(idx[~same])
    obs = [
        from_wire(values.reshape(n, *wire_shape(s.shape)), len(s.shape))
        for values, s in zip(flat, spec.observation_specs, strict=True)
    ]
    return scalars, obs, flags


def steps_from_list(
    agents: Any, spec: BehaviorSpec, behavior: str
) -> tuple[DecisionSteps, TerminalSteps, np.ndarray, np.ndarray]:
    """``protocol.steps_from_infos`` of a ListAgentInfoProto: read in bulk from its bytes (``decode_infos``)
    when it can, else agent by agent (which also names what is wrong with a record)."""
    fast = decode_infos(agents.SerializeToString(), spec)
    if fast is None:
        return steps_from_infos(agents.value, spec, behavior)
    return assemble_steps(spec, behavior, *fast)
