"""TensorBoard event files as ML-Agents writes them: `tensorboard --logdir results` shows an mlx run.

Layout (upstream's TensorboardWriter): one file per behaviour and process,
results/<run_id>/<Behavior>/events.out.tfevents.<time>.<host>.<pid>.<n>, beside the behaviour's checkpoints;
one scalar per statistic at each summary, tagged with the ML-Agents name (Environment/Cumulative Reward,
Policy/Entropy, Losses/Policy Loss, ...) at the behaviour's step, the statistics upstream hides from
TensorBoard ("Is Training", "Step") left out; the behaviour's settings once as the text summary
"Hyperparameters" (tag Hyperparameters/text_summary), in the `key:<tab>value` layout of upstream's console
banner. A fresh run deletes event files left in its behaviour folders, as upstream does. Values are what
stats.jsonl holds, as float32 (TensorBoard's scalar type). The file is flushed at every summary, so a killed
run leaves a readable file.

Resume (better than upstream, which shows the steps between the checkpoint and the kill twice): each
behaviour resumes from its own checkpoint, at its step S (the behaviours of a run step at their own rates; 0
for one without a checkpoint), and first rewrites its older files without their events after S
(atomically, one file at a time), writes what stats.jsonl holds up to S and no file has (a run that
recorded no event files, or tracking.tensorboard switched on at the resume), then a SessionLog START at
S + 1, the standard purge marker, so a TensorBoard already open when the resume starts drops the old
points too; then the settings again at step S (a resume may change them) and the new summaries. Every
file starts with a START (step 0 in a fresh run's): TensorBoard's Python loader (--load_fast=false) takes
the first START it sees as the session's start and purges only at a later one; its Rust loader (the
default) purges at each (measured with tensorboard 2.21.0).

The writer is our own (TFRecord framing with masked CRC32C, the few Event/Summary protobuf fields encoded
by hand), chosen by measurement on this project's pins (Python 3.11, torch 2.13.0, tensorboard 2.21.0,
tensorboardX 2.6.5; a 2-core machine under load, so ranges over two sessions of medians of 9-15 fresh
processes). Import: with torch already imported, as in a training process. Summary: 20 scalars written and
flushed, 300 times.

=========================  ============  ============  ======================================================
writer                     import        a summary     what it installs
=========================  ============  ============  ======================================================
this module                1.3-3.8 ms    0.2 ms        nothing
tensorboardX               29-51 ms      4.7-5.7 ms    0.65 MB (88 KB wheel); imports torch itself: 1.1 s in a
                                                       process without torch (mlx's tools, sweeps' parents)
torch.utils.tensorboard    128-308 ms    0.9-1.3 ms    tensorboard, tensorboard-data-server, absl-py, markdown:
                                                       34 MB installed (12.4 MB of wheels)
=========================  ============  ============  ======================================================

One Event per summary holding all its scalars (upstream's writer makes one per scalar; TensorBoard reads both
alike) halves the file: 138 KB against 306 KB for those 300 summaries. Encoding by hand rather than through
protobuf message classes: the messages' definitions are not in the protobuf runtime (they would be generated
code, or descriptors built here: more lines than the encoder), and TensorBoard's own reader and protobuf
classes check every kind of event in the tests (tests/test_tensorboard.py).
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mlx.tracking.base import ROW_FIELDS, Tracker, read_rows
from mlx.tracking.keys import ResumeSteps, resume_step_of

if TYPE_CHECKING:
    from mlx.config import RunConfig

HIDDEN = ("Is Training", "Step")  # statistics upstream keeps out of TensorBoard
TEXT_TAG = "Hyperparameters/text_summary"  # torch's add_text("Hyperparameters", ...), as upstream calls it
PREFIX = "events.out.tfevents."
FILE_VERSION = "brain.Event:2"
SESSION_START = 1  # SessionLog.START
DT_STRING = 7
_uid = itertools.count()  # two files of one process in one second get distinct names, as torch's do


# ---- CRC32C and TFRecord framing ---------------------------------------------------------------------
def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC32C (rotated right by 15 bits, plus a constant)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One TFRecord: length (uint64), its masked CRC, the data, the data's masked CRC; little-endian."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))


def records(blob: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(the whole record, its data) for each record, stopping at one cut short by a kill or damaged (its
    length's CRC does not match). The data CRC is not recomputed: a record rewritten is copied unchanged."""
    pos = 0
    while pos + 12 <= len(blob):
        header = blob[pos : pos + 8]
        if struct.unpack("<I", blob[pos + 8 : pos + 12])[0] != masked_crc(header):
            return
        end = pos + 12 + struct.unpack("<Q", header)[0] + 4
        if end > len(blob):
            return
        yield blob[pos:end], blob[pos + 12 : end - 4]
        pos = end


# ---- protobuf wire format: the fields of Event, Summary, SummaryMetadata, TensorProto, SessionLog -----
def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 as protobuf writes it (two's complement)
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


def _int(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(value)


def _float32(value: float) -> bytes:
    try:
        return struct.pack("<f", value)
    except OverflowError:  # beyond float32's range: infinity, as a float32 cast gives
        return struct.pack("<f", math.copysign(math.inf, value))


def scalar_value(tag: str, value: float) -> bytes:
    """Summary.Value{tag, simple_value}: what TensorBoard's scalar dashboard shows."""
    return _bytes(1, tag.encode()) + _key(2, 5) + _float32(value)


def text_value(tag: str, text: str) -> bytes:
    """Summary.Value{tag, metadata: text plugin, tensor: one DT_STRING}: what torch's add_text writes."""
    metadata = _bytes(1, _bytes(1, b"text"))  # SummaryMetadata.plugin_data.plugin_name; content: version 0
    shape = _bytes(2, _int(1, 1))  # TensorShapeProto.dim[0].size = 1
    tensor = _int(1, DT_STRING) + _bytes(2, shape) + _bytes(8, text.encode())
    return _bytes(1, tag.encode()) + _bytes(9, metadata) + _bytes(8, tensor)


def event(
    step: int,
    *,
    values: list[bytes] | None = None,
    file_version: str | None = None,
    session_status: int | None = None,
    wall_time: float | None = None,
) -> bytes:
    """One Event: wall time, step and one of a summary (its values), a file version or a session log."""
    out = _key(1, 1) + struct.pack("<d", time.time() if wall_time is None else wall_time) + _int(2, step)
    if file_version is not None:
        out += _bytes(3, file_version.encode()) + _bytes(10, _bytes(1, b"mlx"))  # source_metadata.writer
    if values is not None:
        out += _bytes(5, b"".join(_bytes(1, v) for v in values))
    if session_status is not None:
        out += _bytes(7, _int(1, session_status))
    return out


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a message: varints as int, everything else as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            yield number, value
            continue
        if wire == 2:
            size, pos = _read_varint(data, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire}")
        if pos + size > len(data):
            raise ValueError("field past the end")
        yield number, data[pos : pos + size]
        pos += size


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return (value - (1 << 64) if value >= 1 << 63 else value), pos


class Record(NamedTuple):
    raw: bytes  # the whole record, written back unchanged when kept
    step: int
    tags: frozenset[str]  # its summary's tags
    scalars: bool  # a summary with a simple_value (a row of statistics)


def read_events(path: Path) -> tuple[list[Record], bool]:
    """The events of one file, and whether it ends cleanly (no record cut short by a kill). A record whose
    data does not parse as an Event gets step -1: kept by every rewind, since its step is unknown."""
    blob = path.read_bytes()
    out, used = [], 0
    for raw, data in records(blob):
        used += len(raw)
        step, tags, scalars = -1, set(), False
        try:
            for number, value in _fields(data):
                if number == 2 and isinstance(value, int):
                    step = value
                elif number == 5 and isinstance(value, bytes):
                    for vnum, summary_value in _fields(value):
                        if vnum != 1 or not isinstance(summary_value, bytes):
                            continue
                        for fnum, field in _fields(summary_value):
                            if fnum == 1 and isinstance(field, bytes):
                                tags.add(field.decode(errors="replace"))
                            scalars = scalars or fnum == 2
        except ValueError:
            step, tags, scalars = -1, set(), False
        out.append(Record(raw, step, frozenset(tags), scalars))
    return out, used == len(blob)


def rewind(folder: Path, step: int) -> set[int]:
    """Drop from the event files in ``folder`` every event after ``step``, and the settings text at ``step``
    (the resumed process writes it again); returns the steps whose statistics the files keep."""
    kept_steps: set[int] = set()
    for path in sorted(folder.glob(PREFIX + "*")):
        if not path.is_file():
            continue
        events, clean = read_events(path)
        kept = [e for e in events if not (e.step > step or (e.step == step and TEXT_TAG in e.tags))]
        kept_steps.update(e.step for e in kept if e.scalars)
        if clean and len(kept) == len(events):
            continue
        tmp = folder / f".{path.name}.rewind"  # not an event file name: TensorBoard never reads it half-written
        tmp.write_bytes(b"".join(e.raw for e in kept))
        os.replace(tmp, path)
    return kept_steps


# ---- what a behaviour's settings look like --------------------------------------------------------------
def settings_text(settings: Mapping[str, Any], depth: int = 0) -> str:
    """ML-Agents' layout of a behaviour's settings, one `key:<tab>value` line each, nested blocks indented:
    the text TensorBoard shows under Hyperparameters (the leading tab keeps markdown from reflowing it)."""
    lines = []
    for key, value in settings.items():
        line = "\t" + "  " * depth + f"{key}:\t"
        if isinstance(value, Mapping):
            lines.append(line)
            if value:
                lines.append(settings_text(value, depth + 1))
        else:
            lines.append(
                line + str(value.value if isinstance(value, Enum) else value)
            )  # linear, not ScheduleType.linear
    return "\n".join(lines)


def behavior_settings(cfg: RunConfig, behavior: str) -> dict[str, Any]:
    """One behaviour's trainer settings as ML-Agents lists them: its reward signals inside, behavioral
    cloning None while it has no demo_path."""
    trainer = cfg.trainer_for(behavior)
    out = asdict(trainer) if is_dataclass(trainer) else dict(trainer)  # type: ignore[call-overload]
    out["reward_signals"] = {
        name: asdict(signal) if is_dataclass(signal) else signal  # type: ignore[call-overload]
        for name, signal in cfg.signals_for(behavior).items()
    }
    cloning = out.get("behavioral_cloning")
    if isinstance(cloning, Mapping) and cloning.get("demo_path") is None:
        out["behavioral_cloning"] = None
    return out


# ---- the tracker -----------------------------------------------------------------------------------------
class EventFile:
    """One events.out.tfevents file of this process, opened with its file-version event."""

    def __init__(self, folder: Path) -> None:
        import socket  # lazy: only a run that writes event files needs the host name

        folder.mkdir(parents=True, exist_ok=True)
        stamp = f"{PREFIX}{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
        while True:
            self.path = folder / f"{stamp}.{next(_uid)}"
            try:
                self.file = self.path.open("xb")
                break
            except FileExistsError:
                continue
        self.write(event(0, file_version=FILE_VERSION))

    def write(self, data: bytes) -> None:
        self.file.write(frame(data))

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def row_scalars(row: Mapping[str, Any]) -> list[bytes]:
    """The TensorBoard scalars of one stats.jsonl row: its ML-Agents statistics, as upstream writes them."""
    return [
        scalar_value(key, float(value))
        for key, value in row.items()
        if key not in ROW_FIELDS
        and key not in HIDDEN
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    ]


class TensorboardTracker(Tracker):
    """Writes each behaviour's event file in ``root``/<Behavior>/ (see the module docstring); ``resume_step``:
    a resumed run's checkpoint step, each behaviour's own (a mapping) or one for all."""

    def __init__(
        self,
        root: Path,
        behaviors: Mapping[str, Mapping[str, Any]],
        resume_step: ResumeSteps | None = None,
        stats: Path | None = None,
    ) -> None:
        self.root = root
        self.files: dict[str, EventFile] = {}
        backlog: dict[str, list[dict[str, Any]]] = {}
        if resume_step is not None and stats is not None:
            for row in read_rows(stats):
                if row["step"] <= resume_step_of(resume_step, row["behavior"]):
                    backlog.setdefault(row["behavior"], []).append(row)
        for name, settings in behaviors.items():
            folder = root / name
            step = 0
            if resume_step is None:
                self._clear(folder)
                self._file(name).write(event(0, session_status=SESSION_START))  # see the module docstring
            else:
                step = resume_step_of(resume_step, name)
                have = rewind(folder, step) if folder.is_dir() else set()
                missing = [row for row in backlog.get(name, []) if row["step"] not in have]
                for row in missing:
                    self._file(name).write(event(row["step"], values=row_scalars(row)))
                self._file(name).write(event(step + 1, session_status=SESSION_START))
            text = text_value(TEXT_TAG, settings_text(settings))
            self._file(name).write(event(step, values=[text]))
            self.files[name].flush()

    @staticmethod
    def _clear(folder: Path) -> None:
        """A fresh run's folder holds no event file of an earlier run (upstream deletes them the same way)."""
        if not folder.is_dir():
            return
        for path in sorted(folder.glob(PREFIX + "*")):
            print(f"[WARNING] Deleting TensorBoard data {path} left over from a previous run.", file=sys.stderr)
            path.unlink(missing_ok=True)

    def _file(self, behavior: str) -> EventFile:
        if behavior not in self.files:
            self.files[behavior] = EventFile(self.root / behavior)
        return self.files[behavior]

    def log_summary(self, row: Mapping[str, Any]) -> None:
        values = row_scalars(row)
        if not values:
            return
        file = self._file(str(row["behavior"]))
        file.write(event(int(row["step"]), values=values))
        file.flush()  # a killed run leaves every summary readable

    def finish(self, status: str = "FINISHED") -> None:
        for file in self.files.values():
            file.close()
