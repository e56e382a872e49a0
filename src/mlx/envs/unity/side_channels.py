"""ML-Agents side channels: typed messages beside the agent data, in both directions.

Every message carries ``side_channel`` bytes: a run of records, each a 16-byte channel UUID (little-endian
byte order, Python's ``uuid.bytes_le``), an int32 little-endian payload length, and the payload. The payload
is a sequence of int32 / float32 (little-endian), bools (one byte), strings (int32 length + UTF-8) and float
lists (int32 count + float32s), written and read in order by :class:`OutgoingMessage` / :class:`IncomingMessage`.

Both sides use these classes: the trainer (``mlx.envs.unity.env``) sends engine configuration and environment
parameters and receives statistics; an env process (``mlx.envs.unity.remote``) does the reverse. A user adds a
channel of their own by subclassing :class:`SideChannel` and passing it to ``UnityEnv(side_channels=[...])``
(or to ``mlx.envs.unity.env.register_side_channel`` so that runs started from the command line use it too).

Reading is bounds-checked: a short, truncated or garbled record raises :class:`SideChannelError` naming the
channel, never an IndexError deep inside struct.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from mlx.envs.api import EnvStat, StatAggregation
from mlx.errors import SideChannelError

ENGINE_CONFIGURATION_ID = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")
ENVIRONMENT_PARAMETERS_ID = uuid.UUID("534c891e-810f-11ea-a9d0-822485860400")
STATS_ID = uuid.UUID("a1d8f7b7-cec8-50f9-b78b-d3e165a78520")
FLOAT_PROPERTIES_ID = uuid.UUID("60ccf7d0-4f7e-11ea-b238-784f4387d1f7")

_I32 = struct.Struct("<i")
_F32 = struct.Struct("<f")
_HEADER = 16 + _I32.size


class OutgoingMessage:
    """A payload being written, value by value, in the order the receiver reads them."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write_bool(self, value: bool) -> None:
        self.buffer += b"\x01" if value else b"\x00"

    def write_int32(self, value: int) -> None:
        self.buffer += _I32.pack(int(value))

    def write_float32(self, value: float) -> None:
        self.buffer += _F32.pack(float(value))

    def write_float32_list(self, values: Iterable[float]) -> None:
        arr = np.asarray(list(values), dtype="<f4")
        self.write_int32(len(arr))
        self.buffer += arr.tobytes()

    def write_string(self, value: str) -> None:
        data = value.encode("utf-8")
        self.write_int32(len(data))
        self.buffer += data


class IncomingMessage:
    """A received payload, read value by value; reading past its end raises SideChannelError."""

    def __init__(self, data: bytes, channel: str = "side channel") -> None:
        self.data = bytes(data)
        self.offset = 0
        self.channel = channel

    def _take(self, size: int, what: str) -> bytes:
        if size < 0 or self.offset + size > len(self.data):
            raise SideChannelError(
                f"{self.channel}: message too short reading {what} at byte {self.offset} "
                f"(needs {size}, has {len(self.data) - self.offset}); the env's ML-Agents version may not match"
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def at_end(self) -> bool:
        return self.offset >= len(self.data)

    def read_bool(self) -> bool:
        return self._take(1, "a bool") != b"\x00"

    def read_int32(self) -> int:
        return _I32.unpack(self._take(4, "an int32"))[0]

    def read_float32(self) -> float:
        return _F32.unpack(self._take(4, "a float32"))[0]

    def read_float32_list(self) -> list[float]:
        count = self.read_int32()
        return np.frombuffer(self._take(4 * count, f"a list of {count} floats"), dtype="<f4").tolist()

    def read_string(self) -> str:
        size = self.read_int32()
        raw = self._take(size, f"a string of {size} bytes")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SideChannelError(f"{self.channel}: a string is not valid UTF-8") from None


class SideChannel:
    """One channel: messages queued to send, and a handler for messages received."""

    channel_id: uuid.UUID
    name: str = "side channel"

    def __init__(self, channel_id: uuid.UUID | None = None) -> None:
        if channel_id is not None:
            self.channel_id = channel_id
        self.queue: list[bytes] = []

    def queue_message(self, message: OutgoingMessage) -> None:
        self.queue.append(bytes(message.buffer))

    def on_message_received(self, message: IncomingMessage) -> None:
        """Called once per record for this channel; the default refuses (most channels are one-way)."""
        raise SideChannelError(f"{self.name} ({self.channel_id}) does not expect messages from the other side")


class EngineConfigurationChannel(SideChannel):
    """Trainer -> env: screen size, quality level, time scale, target and capture frame rates."""

    channel_id = ENGINE_CONFIGURATION_ID
    name = "engine configuration channel"

    class Kind(IntEnum):
        SCREEN_RESOLUTION = 0
        QUALITY_LEVEL = 1
        TIME_SCALE = 2
        TARGET_FRAME_RATE = 3
        CAPTURE_FRAME_RATE = 4

    def __init__(self) -> None:
        super().__init__()
        self.received: dict[str, float | tuple[int, int]] = {}  # env side: what the trainer asked for

    def set_configuration(
        self,
        width: int | None = None,
        height: int | None = None,
        quality_level: int | None = None,
        time_scale: float | None = None,
        target_frame_rate: int | None = None,
        capture_frame_rate: int | None = None,
    ) -> None:
        if (width is None) != (height is None):
            raise SideChannelError("engine configuration: give both width and height, or neither")
        if width is not None and height is not None:
            self._send(self.Kind.SCREEN_RESOLUTION, ("i", width), ("i", height))
        if quality_level is not None:
            self._send(self.Kind.QUALITY_LEVEL, ("i", quality_level))
        if time_scale is not None:
            self._send(self.Kind.TIME_SCALE, ("f", time_scale))
        if target_frame_rate is not None:
            self._send(self.Kind.TARGET_FRAME_RATE, ("i", target_frame_rate))
        if capture_frame_rate is not None:
            self._send(self.Kind.CAPTURE_FRAME_RATE, ("i", capture_frame_rate))

    def _send(self, kind: Kind, *values: tuple[str, float]) -> None:
        msg = OutgoingMessage()
        msg.write_int32(kind)
        for fmt, value in values:
            msg.write_int32(int(value)) if fmt == "i" else msg.write_float32(value)
        self.queue_message(msg)

    def on_message_received(self, message: IncomingMessage) -> None:
        kind = message.read_int32()
        if kind == self.Kind.SCREEN_RESOLUTION:
            self.received["screen_resolution"] = (message.read_int32(), message.read_int32())
        elif kind == self.Kind.QUALITY_LEVEL:
            self.received["quality_level"] = message.read_int32()
        elif kind == self.Kind.TIME_SCALE:
            self.received["time_scale"] = message.read_float32()
        elif kind == self.Kind.TARGET_FRAME_RATE:
            self.received["target_frame_rate"] = message.read_int32()
        elif kind == self.Kind.CAPTURE_FRAME_RATE:
            self.received["capture_frame_rate"] = message.read_int32()
        else:
            raise SideChannelError(f"{self.name}: unknown configuration type {kind}")


class SamplerType(IntEnum):
    UNIFORM = 0
    GAUSSIAN = 1
    MULTIRANGE_UNIFORM = 2


@dataclass(frozen=True)
class ChannelSampler:
    """An environment parameter drawn anew by the env (ML-Agents' samplers), seeded by the trainer."""

    kind: SamplerType
    seed: int
    values: tuple[float, ...]  # (min, max), (mean, st_dev) or flattened intervals

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed & 0xFFFFFFFF)

    def draw(self, rng: np.random.Generator) -> float:
        if self.kind == SamplerType.UNIFORM:
            return float(rng.uniform(self.values[0], self.values[1]))
        if self.kind == SamplerType.GAUSSIAN:
            return float(rng.normal(self.values[0], self.values[1]))
        lows, highs = np.asarray(self.values[0::2]), np.asarray(self.values[1::2])
        widths = highs - lows
        i = rng.choice(len(lows), p=widths / widths.sum()) if widths.sum() > 0 else rng.integers(len(lows))
        return float(rng.uniform(lows[i], highs[i]))


class EnvironmentParametersChannel(SideChannel):
    """Trainer -> env: named float parameters, or samplers the env draws from."""

    channel_id = ENVIRONMENT_PARAMETERS_ID
    name = "environment parameters channel"

    FLOAT = 0
    SAMPLER = 1

    def __init__(self) -> None:
        super().__init__()
        self.floats: dict[str, float] = {}  # env side: received values, in arrival order
        self.samplers: dict[str, ChannelSampler] = {}

    def set_float_parameter(self, key: str, value: float) -> None:
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_int32(self.FLOAT)
        msg.write_float32(value)
        self.queue_message(msg)

    def set_sampler(self, key: str, sampler: ChannelSampler) -> None:
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_int32(self.SAMPLER)
        msg.write_int32(sampler.seed)
        msg.write_int32(sampler.kind)
        if sampler.kind == SamplerType.MULTIRANGE_UNIFORM:
            msg.write_float32_list(sampler.values)
        else:
            msg.write_float32(sampler.values[0])
            msg.write_float32(sampler.values[1])
        self.queue_message(msg)

    def on_message_received(self, message: IncomingMessage) -> None:
        key = message.read_string()
        kind = message.read_int32()
        if kind == self.FLOAT:
            self.samplers.pop(key, None)
            self.floats[key] = message.read_float32()
        elif kind == self.SAMPLER:
            seed = message.read_int32()
            sampler_kind = message.read_int32()
            if sampler_kind == SamplerType.MULTIRANGE_UNIFORM:
                values = tuple(message.read_float32_list())
                if len(values) < 2 or len(values) % 2:
                    raise SideChannelError(f"{self.name}: '{key}' has {len(values)} interval bounds, not pairs")
            elif sampler_kind in (SamplerType.UNIFORM, SamplerType.GAUSSIAN):
                values = (message.read_float32(), message.read_float32())
            else:
                raise SideChannelError(f"{self.name}: unknown sampler type {sampler_kind} for '{key}'")
            self.floats.pop(key, None)
            self.samplers[key] = ChannelSampler(SamplerType(sampler_kind), seed, values)
        else:
            raise SideChannelError(f"{self.name}: unknown parameter type {kind} for '{key}'")


class StatsSideChannel(SideChannel):
    """Env -> trainer: (name, value, aggregation) statistics the run loop reports beside its own."""

    channel_id = STATS_ID
    name = "stats channel"

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[tuple[str, StatAggregation], list[float]] = {}

    def send_stat(self, key: str, value: float, aggregation: StatAggregation = StatAggregation.AVERAGE) -> None:
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_float32(value)
        msg.write_int32(aggregation)
        self.queue_message(msg)

    def on_message_received(self, message: IncomingMessage) -> None:
        key = message.read_string()
        value = message.read_float32()
        raw = message.read_int32()
        try:
            aggregation = StatAggregation(raw)
        except ValueError:
            raise SideChannelError(f"{self.name}: unknown aggregation {raw} for statistic '{key}'") from None
        self._pending.setdefault((key, aggregation), []).append(value)

    def drain(self) -> list[EnvStat]:
        """The statistics received since the last call, grouped by name and aggregation."""
        out = [EnvStat(k, np.asarray(v, dtype=np.float64), agg) for (k, agg), v in self._pending.items()]
        self._pending.clear()
        return out


class SideChannelManager:
    """Packs queued messages of several channels into one bytes field, and dispatches received ones."""

    def __init__(self, channels: Iterable[SideChannel] = ()) -> None:
        self.channels: dict[uuid.UUID, SideChannel] = {}
        self.unknown: set[uuid.UUID] = set()  # ids received with no channel registered (reported once)
        for channel in channels:
            self.add(channel)

    def add(self, channel: SideChannel) -> None:
        if channel.channel_id in self.channels:
            raise SideChannelError(
                f"two side channels with id {channel.channel_id} ({self.channels[channel.channel_id].name} and "
                f"{channel.name}); each channel id may be registered once"
            )
        self.channels[channel.channel_id] = channel

    def pack(self) -> bytes:
        out = bytearray()
        for channel_id, channel in self.channels.items():
            for payload in channel.queue:
                out += channel_id.bytes_le + _I32.pack(len(payload)) + payload
            channel.queue.clear()
        return bytes(out)

    def dispatch(self, data: bytes) -> list[uuid.UUID]:
        """Hand each record to its channel; returns ids of records no channel is registered for."""
        unknown = []
        for channel_id, payload in split_records(data):
            channel = self.channels.get(channel_id)
            if channel is None:
                unknown.append(channel_id)
                continue
            message = IncomingMessage(payload, channel.name)
            channel.on_message_received(message)
        new = [u for u in unknown if u not in self.unknown]
        self.unknown.update(unknown)
        return new


def split_records(data: bytes) -> list[tuple[uuid.UUID, bytes]]:
    """The (channel id, payload) records of side-channel bytes, refusing truncated ones."""
    records = []
    offset, size = 0, len(data)
    while offset < size:
        if offset + _HEADER > size:
            raise SideChannelError(
                f"side-channel data truncated: {size - offset} bytes left at byte {offset}, a record header needs "
                f"{_HEADER}; the env's ML-Agents version may not match"
            )
        channel_id = uuid.UUID(bytes_le=bytes(data[offset : offset + 16]))
        (length,) = _I32.unpack_from(data, offset + 16)
        offset += _HEADER
        if length < 0 or offset + length > size:
            raise SideChannelError(
                f"side-channel record for channel {channel_id} claims {length} bytes but {size - offset} remain"
            )
        records.append((channel_id, bytes(data[offset : offset + length])))
        offset += length
    return records
