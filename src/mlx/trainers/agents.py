"""The per-agent layer every trainer shares: which row each agent owns, and what is kept per agent.

Agents arrive with arbitrary ids; each gets a dense slot (a row) the first time it is seen, and every
per-agent array of a behaviour (the assemblers' pending steps, the networks' memories, episode returns
and lengths, each reward signal's episode return) is a column of an `AgentTable` with one row per slot,
grown for all of them at once when new agents appear. Every operation takes the slots of many agents:
no Python loop over agents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlx.envs.api import IdMap


@dataclass(frozen=True)
class Column:
    """One per-agent array: each row's shape, its dtype, and the value new rows start with."""

    shape: tuple[int, ...]
    dtype: Any
    fill: Any = 0


class AgentTable:
    """Named per-agent arrays [rows, *shape], read and written as attributes (``table.name[slots]``).

    Rows grow (at least doubling, old rows kept) through ``fit``; `Agents` fits every table it made
    when new agents appear, so a table always has a row for every slot.
    """

    def __init__(self, columns: dict[str, Column], rows: int = 0) -> None:
        self.columns = columns
        self.rows = 0
        self._resize(rows)

    def _resize(self, rows: int) -> None:
        for name, col in self.columns.items():
            array = np.full((rows, *col.shape), col.fill, dtype=col.dtype)
            if self.rows:
                array[: self.rows] = getattr(self, name)
            setattr(self, name, array)
        self.rows = rows

    def fit(self, count: int) -> None:
        """Make room for ``count`` rows."""
        if count > self.rows:
            self._resize(max(count, 2 * self.rows))

    def widen(self, names: tuple[str, ...], axis: int, size: int) -> None:
        """Grow axis ``axis`` of each row's shape of the named columns to ``size`` (never shrinks), old
        entries kept and new ones at the column's fill: MA-POCA's groupmate slots when a larger group appears."""
        for name in names:
            col = self.columns[name]
            if col.shape[axis] >= size:
                continue
            shape = list(col.shape)
            old = shape[axis]
            shape[axis] = size
            self.columns[name] = Column(tuple(shape), col.dtype, col.fill)
            array = np.full((self.rows, *shape), col.fill, dtype=col.dtype)
            array[(slice(None),) * (axis + 1) + (slice(0, old),)] = getattr(self, name)
            setattr(self, name, array)

    def __getattr__(self, name: str) -> np.ndarray:  # only reached for names that are not columns
        raise AttributeError(f"{type(self).__name__} has no column {name!r}")

    def reset(self, *names: str) -> None:
        """Every row of the named columns (all if none named) back to its starting value."""
        for name in names or tuple(self.columns):
            getattr(self, name)[:] = self.columns[name].fill


@dataclass
class EpisodeStats:
    """Returns and lengths of the episodes that ended at one step."""

    returns: np.ndarray
    lengths: np.ndarray


NO_EPISODES = EpisodeStats(np.zeros(0), np.zeros(0, dtype=np.int64))


class Agents:
    """A behaviour's agents: the slot table and the per-agent tables grown with it.

    Owns what every trainer keeps per agent: episode return and length (the env's reward), each reward
    signal's return in the current episode, and the networks' memory (zero at an episode's start).
    The assemblers add their own tables through ``table``.
    """

    def __init__(self, memory_size: int = 0, signals: Iterable[str] = ()) -> None:
        self.slots = IdMap()
        self._tables: list[AgentTable] = []
        self.episode = self.table({"returns": Column((), np.float64), "lengths": Column((), np.int64)})
        self.memory = self.table({"values": Column((memory_size,), np.float32)})
        self.signal_returns = self.table({name: Column((), np.float64) for name in signals})
        # Group episodes (mlx.trainers.groups.group_step): group rewards so far, and whether the agent is playing.
        self.group = self.table({"returns": Column((), np.float64), "playing": Column((), bool)})

    @property
    def memories(self) -> np.ndarray:
        """[rows, memory_size] each agent's current memory (actor's then critic's)."""
        return self.memory.values

    def table(self, columns: dict[str, Column]) -> AgentTable:
        """A new per-agent table, kept as large as the slot table."""
        table = AgentTable(columns, self.episode.rows if self._tables else 0)
        self._tables.append(table)
        return table

    def lookup(self, agent_ids: np.ndarray) -> np.ndarray:
        """Slot indices of agents; new agents get new slots and fresh rows in every table."""
        slots = self.slots.lookup(agent_ids)
        if self.slots.count > self.episode.rows:
            for table in self._tables:
                table.fit(self.slots.count)
        return slots

    # ---- episodes ------------------------------------------------------------------------------
    def add_rewards(self, slots: np.ndarray, reward: np.ndarray) -> None:
        self.episode.returns[slots] += reward

    def count_steps(self, slots: np.ndarray) -> None:
        self.episode.lengths[slots] += 1

    def end_episodes(self, slots: np.ndarray, reward: np.ndarray) -> EpisodeStats:
        """Add the last rewards of agents whose episode ended, and return and restart their episodes."""
        self.episode.returns[slots] += reward
        stats = EpisodeStats(self.episode.returns[slots].copy(), self.episode.lengths[slots].copy())
        self.episode.returns[slots] = 0.0
        self.episode.lengths[slots] = 0
        return stats

    def forget_memories(self, agent_ids: np.ndarray) -> None:
        """A new episode starts with no memory."""
        slots = self.lookup(agent_ids)  # first: a lookup may grow the tables (new arrays)
        self.memory.values[slots] = 0.0

    def add_signal_rewards(
        self, name: str, slots: np.ndarray, rewards: np.ndarray, ended: np.ndarray
    ) -> np.ndarray | None:
        """Add each agent's rewards of one signal (``slots`` distinct); return the episode returns of the
        agents in ``ended`` (whose episodes ended with these rewards) and restart them, or None."""
        totals = getattr(self.signal_returns, name)
        totals[slots] += rewards
        if not len(ended):
            return None
        out = totals[ended]
        totals[ended] = 0.0
        return out

    def reset(self) -> None:
        """Forget episodes in progress (returns, lengths, signal and group returns) and every memory (after an
        env reset)."""
        for table in (self.episode, self.memory, self.signal_returns, self.group):
            table.reset()
