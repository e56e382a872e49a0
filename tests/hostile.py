"""Helpers of the hostile-file tests: payloads whose unpickling would run code (each writes a marker file),
the one-line check of a reader's error, and deterministic mutations of a valid file."""

from __future__ import annotations

import builtins
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MUTATIONS = 30


class SystemCall:
    """Unpickles as os.system(...): a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class ExecCall:
    """Unpickles as exec(...): arbitrary Python."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",))


class SetStateMarker:
    """An ordinary-looking class whose __setstate__ (run on unpickling) writes the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).touch()


def one_line(exc: BaseException, path: Path) -> str:
    """The error's message, checked to be one line that names ``path``."""
    message = str(exc)
    assert message and "\n" not in message, message
    assert str(path) in message, message
    return message


def mutations(data: bytes, seed: int, n: int = MUTATIONS) -> Iterator[bytes]:
    """``n`` deterministic mutations of ``data``: truncations, byte flips and junk insertions, in turn."""
    rng = random.Random(seed)
    for i in range(n):
        out = bytearray(data)
        if i % 3 == 0:
            del out[rng.randrange(len(out)) :]
        elif i % 3 == 1:
            for _ in range(rng.randint(1, 8)):
                out[rng.randrange(len(out))] = rng.randrange(256)
        else:
            pos = rng.randrange(len(out))
            out[pos:pos] = rng.randbytes(rng.randint(1, 32))
        yield bytes(out)
