"""Hierarchical timers: where a run's time goes, as ML-Agents' ``run_logs/timers.json`` shows it.

A `Timers` is a tree of named blocks; each node keeps its total seconds and how often it was entered, and
its self time (total minus its children's) is derived when the tree is written. Blocks nest as they run:
``with timers.block("update"):`` inside ``with timers.block("act"):`` is the node ``act > update``.
Gauges keep a value with its min, max and count (ML-Agents writes each summary's statistics as gauges).

Cheap enough to leave on in every run: a block object is made once per name and reused, so entering one
is a dict lookup, two list operations and two `time.perf_counter` calls, about half a microsecond (a
training step enters three or four blocks). Code that cannot reach the run's `Timers` (a trainer's
methods) uses the `timed` decorator, which times into the timers the current thread activated
(`Timers.activated`), or into a throwaway tree when none is.

The *phases* of the loop (`PHASES`) are the split the progress line and the ``Timers/...`` statistics
show: each node's self time belongs to the nearest phase at or above it, so a trajectory processed while
acting counts as trajectory processing, not acting, and the phases never count a second twice.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from time import perf_counter
from typing import Any, TypeVar

FORMAT_VERSION = "0.1.0"  # timers.json's layout: ML-Agents' timer_format_version it follows

# Block name -> the phase its time counts for. get_steps, env_step and env_reset are all the env's (the loop
# asks for the steps at the start of an iteration and steps the env at its end).
PHASES: dict[str, str] = {
    "get_steps": "env",
    "env_step": "env",
    "env_reset": "env",
    "act": "act",
    "process_trajectory": "trajectory",
    "update": "update",
}
PHASE_ORDER = ("env", "act", "trajectory", "update")
# The statistic each phase's share of wall time is recorded as at each summary; "other" is the rest
# (summaries, checkpoints, callbacks, the loop itself).
PHASE_STATS = {
    "env": "Timers/Env Step Fraction",
    "act": "Timers/Act Fraction",
    "trajectory": "Timers/Trajectory Fraction",
    "update": "Timers/Update Fraction",
    "other": "Timers/Other Fraction",
}
PHASE_LABELS = {"env": "env", "act": "act", "trajectory": "traj", "update": "update"}

F = TypeVar("F", bound=Callable[..., Any])


class Node:
    """One block of the tree: seconds spent in it (closed entries only) and how often it was entered."""

    __slots__ = ("children", "count", "total")

    def __init__(self) -> None:
        self.children: dict[str, Node] = {}
        self.total = 0.0
        self.count = 0

    def child(self, name: str) -> Node:
        node = self.children.get(name)
        if node is None:
            node = self.children[name] = Node()
        return node

    def as_json(self, total: float | None = None) -> dict[str, Any]:
        """ML-Agents' node layout: total, count, self (never below 0: float error), children when any."""
        total = self.total if total is None else total
        inner = sum(c.total for c in self.children.values())
        out: dict[str, Any] = {"total": round(total, 6), "count": self.count, "self": round(max(total - inner, 0.0), 6)}
        if self.children:
            out["children"] = {name: c.as_json() for name, c in self.children.items()}
        return out


class Block:
    """A reusable context manager for the child ``name`` of whatever block is open when it is entered.
    Re-entrant: start times live on the timers' stack, not here. It holds the timers' two stacks itself
    (lists changed in place, never replaced) to save attribute lookups on every entry."""

    __slots__ = ("name", "stack", "starts")

    def __init__(self, timers: Timers, name: str) -> None:
        self.name = name
        self.stack = timers.stack
        self.starts = timers.starts

    def __enter__(self) -> None:
        stack = self.stack
        parent = stack[-1]
        node = parent.children.get(self.name)
        stack.append(node if node is not None else parent.child(self.name))
        self.starts.append(perf_counter())

    def __exit__(self, *exc: object) -> None:
        elapsed = perf_counter() - self.starts.pop()
        node = self.stack.pop()
        node.total += elapsed
        node.count += 1


class Nested:
    """Nested blocks entered and left together (``act > 3DBall``: debug's finer blocks)."""

    __slots__ = ("blocks",)

    def __init__(self, blocks: tuple[Block, ...]) -> None:
        self.blocks = blocks

    def __enter__(self) -> None:
        for block in self.blocks:
            block.__enter__()

    def __exit__(self, *exc: object) -> None:
        for block in reversed(self.blocks):
            block.__exit__()


class Timers:
    """One run's timer tree (its root runs from construction until the tree is written), gauges and
    metadata. Not shared between threads: the thread that enters blocks owns it."""

    def __init__(self) -> None:
        self.root = Node()
        self.root.count = 1
        self.stack = [self.root]
        self.starts: list[float] = []
        self.start = perf_counter()
        self.start_time = time.time()
        self.gauges: dict[str, dict[str, float]] = {}
        self.metadata: dict[str, str] = {}
        self._blocks: dict[str, Block] = {}
        self._paths: dict[tuple[str, ...], Nested] = {}

    def block(self, name: str) -> Block:
        """The context manager timing ``name`` under the open block (made once, then looked up)."""
        block = self._blocks.get(name)
        if block is None:
            block = self._blocks[name] = Block(self, name)
        return block

    def nested(self, *names: str) -> Nested:
        """Blocks nested in this order, entered together."""
        nested = self._paths.get(names)
        if nested is None:
            nested = self._paths[names] = Nested(tuple(self.block(n) for n in names))
        return nested

    def add(self, name: str, seconds: float) -> None:
        """Seconds measured outside a block (the set-up before the loop), as one entry of ``name``."""
        node = self.stack[-1].child(name)
        node.total += seconds
        node.count += 1

    def elapsed(self) -> float:
        return perf_counter() - self.start

    def gauge(self, name: str, value: float) -> None:
        """The latest ``value`` of ``name``, with the min, max and count of every value it had."""
        g = self.gauges.get(name)
        if g is None:
            self.gauges[name] = {"value": value, "min": value, "max": value, "count": 1}
        else:
            g["value"] = value
            g["min"] = min(g["min"], value)
            g["max"] = max(g["max"], value)
            g["count"] += 1

    @contextlib.contextmanager
    def activated(self) -> Iterator[Timers]:
        """Make these the timers `timed` functions of this thread time into, until the block ends."""
        before = getattr(_local, "timers", None)
        _local.timers = self
        try:
            yield self
        finally:
            _local.timers = before

    # ---- reading ------------------------------------------------------------------------------
    def phase_seconds(self) -> dict[str, float]:
        """Seconds of each phase so far (closed blocks only), each node's self time given to the nearest
        phase at or above it."""
        out = dict.fromkeys(PHASE_ORDER, 0.0)
        _attribute(self.root, None, out)
        return out

    def as_json(self) -> dict[str, Any]:
        """The tree as ML-Agents writes timers.json: the root (open until now) with gauges and metadata."""
        tree = self.root.as_json(total=self.elapsed())
        metadata = {
            "timer_format_version": FORMAT_VERSION,
            "start_time_seconds": str(int(self.start_time)),
            "end_time_seconds": str(int(time.time())),
            "python_version": platform.python_version(),
            "command_line_arguments": " ".join(sys.argv),
            **self.metadata,
        }
        return {"name": "root", "gauges": self.gauges, "metadata": metadata, **tree}

    def dumps(self) -> bytes:
        """timers.json's bytes (the run writes them atomically: a reader never sees half a file)."""
        return (json.dumps(self.as_json(), indent=2) + "\n").encode()


def _attribute(node: Node, phase: str | None, out: dict[str, float]) -> None:
    inner = 0.0
    for name, child in node.children.items():
        inner += child.total
        _attribute(child, PHASES.get(name, phase), out)
    if phase is not None:
        out[phase] += max(node.total - inner, 0.0)


class PhaseWindow:
    """Each phase's share of the wall time since the window last restarted (a summary, for statistics)."""

    def __init__(self, timers: Timers, since: float | None = None) -> None:
        """From now, or from ``since`` (a perf_counter time before any phase was timed: the loop's start)."""
        self.timers = timers
        self.since = perf_counter() if since is None else since
        self.seconds = timers.phase_seconds() if since is None else dict.fromkeys(PHASE_ORDER, 0.0)

    def shares(self, restart: bool = False) -> dict[str, float]:
        """Fractions of wall time per phase plus "other" (the rest); all 0 for an empty window."""
        now, seconds = perf_counter(), self.timers.phase_seconds()
        wall = now - self.since
        out = {p: (seconds[p] - self.seconds[p]) / wall if wall > 0 else 0.0 for p in PHASE_ORDER}
        out["other"] = max(1.0 - sum(out.values()), 0.0) if wall > 0 else 0.0
        if restart:
            self.since, self.seconds = now, seconds
        return out


def describe_shares(shares: Mapping[str, float]) -> str:
    """The progress line's split: 'env 41% act 22% traj 9% update 28%'."""
    return " ".join(f"{PHASE_LABELS[p]} {100 * shares[p]:.0f}%" for p in PHASE_ORDER)


class _Local(threading.local):
    timers: Timers | None = None


_local = _Local()
_fallback = threading.local()  # per thread: blocks timed while no run's timers are active go here


def current() -> Timers:
    """The timers this thread activated, else a throwaway tree of its own."""
    timers = _local.timers
    if timers is None:
        timers = getattr(_fallback, "timers", None)
        if timers is None:
            timers = _fallback.timers = Timers()
    return timers


def timed(name: str) -> Callable[[F], F]:
    """Decorate a function so that each call is the block ``name`` of the current thread's timers."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with current().block(name):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


@contextlib.contextmanager
def debug_logging(on: bool) -> Iterator[None]:
    """debug=true: the ``mlx`` loggers at DEBUG while the run lasts (ML-Agents' --debug), then as before."""
    logger = logging.getLogger("mlx")
    before = logger.level
    if on:
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.setLevel(before)
