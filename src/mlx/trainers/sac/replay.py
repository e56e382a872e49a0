"""Off-policy experience: a bounded, preallocated replay buffer and a per-agent transition assembler.

The buffer is a ring of numpy arrays allocated once at `buffer_size`, so memory never grows past it;
it saves and loads exactly (save_replay_buffer). The assembler turns consecutive env steps of each
agent into (obs, action, reward, next_obs, terminated) transitions with array operations over agents;
`HorizonHold` keeps them until their trajectory is cut at time_horizon (ML-Agents' trajectories), and
`SequenceBuilder` cuts trajectories into sequences for recurrent SAC.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlx.envs.api import BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.errors import RunError, one_line_error
from mlx.trainers.agents import NO_EPISODES, Agents, Column, EpisodeStats
from mlx.trainers.base import concat_vector_obs


class ReplayBuffer:
    """Fixed-capacity ring of named arrays; the oldest transitions are overwritten first."""

    def __init__(self, capacity: int, fields: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
        self.capacity = capacity
        self.data = {name: np.zeros((capacity, *shape), dtype=dtype) for name, (shape, dtype) in fields.items()}
        self.size = 0
        self.cursor = 0  # next row to write

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.data.values())

    def __len__(self) -> int:
        return self.size

    def add(self, **arrays: np.ndarray) -> None:
        n = len(next(iter(arrays.values())))
        if n == 0:
            return
        if n > self.capacity:  # only the newest `capacity` rows can be kept
            arrays = {k: v[-self.capacity :] for k, v in arrays.items()}
            n = self.capacity
        rows = (self.cursor + np.arange(n)) % self.capacity
        for name, store in self.data.items():
            store[rows] = arrays[name]
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self.size, size=n)
        return {name: store[idx] for name, store in self.data.items()}

    def save(self, path: Path) -> None:
        """Write the filled part atomically (np.savez, then rename)."""
        tmp = path.with_name(f".{path.name}.tmp.npz")
        filled = {f"data_{k}": v[: self.size] for k, v in self.data.items()}
        np.savez(tmp, size=self.size, cursor=self.cursor, capacity=self.capacity, **filled)
        tmp.replace(path)

    def load(self, path: Path) -> None:
        """Read a buffer written by ``save``, checked before anything is allocated or copied: each array's
        header must give this buffer's row shape and a row count within its capacity (a crafted header cannot
        ask for terabytes), and np.load never unpickles (allow_pickle=False). Any other file is one RunError."""
        fix = "delete it to resume with an empty replay buffer"
        try:
            size, cursor, arrays = self._read(path)
        except RunError as exc:
            raise RunError(f"{path} {exc}; {fix}") from None
        except (OSError, ValueError, EOFError, KeyError, TypeError, NotImplementedError, zipfile.BadZipFile,
                zlib.error, struct.error, OverflowError) as exc:  # fmt: skip
            raise RunError(f"{path} is not a readable replay buffer ({one_line_error(exc)[:160]}); {fix}") from None
        for name, store in self.data.items():
            store[:size] = arrays[name]
        self.size = size
        self.cursor = cursor % self.capacity if size == self.capacity else size

    def _read(self, path: Path) -> tuple[int, int, dict[str, np.ndarray]]:
        with np.load(path, allow_pickle=False) as f:
            if not isinstance(f, np.lib.npyio.NpzFile):
                raise RunError("is a single array, not a replay buffer (.npz)")
            size, cursor = _count(f, "size"), _count(f, "cursor")
            if size > self.capacity:
                raise RunError(f"holds {size} transitions but buffer_size is {self.capacity} (raise it to keep them)")
            arrays = {}
            for name, store in self.data.items():
                key = f"data_{name}"
                if key not in f.files or _header(f, key)[0] != (size, *store.shape[1:]):
                    raise RunError(f"does not match this behaviour's observations/actions ({name})")
                arrays[name] = f[key]
        return size, cursor, arrays


def _header(f: np.lib.npyio.NpzFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """An array's shape and dtype from its .npy header, without reading (or allocating) the array."""
    with f.zip.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(member)
    if dtype.hasobject or dtype.kind not in "biuf":
        raise RunError(f"holds {key} of type {dtype}, not numbers")
    return tuple(shape), dtype


def _count(f: np.lib.npyio.NpzFile, key: str) -> int:
    """A non-negative integer stored as a 0-d array (size, cursor)."""
    if key not in f.files or _header(f, key)[0] != ():
        raise RunError(f"has no {key} count")
    value = f[key].item()
    if isinstance(value, float) or value < 0:
        raise RunError(f"has {key} {value}, not a count")
    return int(value)


@dataclass
class Transitions:
    obs: np.ndarray
    continuous: np.ndarray
    discrete: np.ndarray
    reward: np.ndarray
    mask: np.ndarray  # action mask at obs (True = allowed)
    next_obs: np.ndarray
    terminated: np.ndarray
    slots: np.ndarray  # the agents' dense slot indices
    episode_end: bool  # these transitions end their agents' episodes
    memory: np.ndarray  # [n, M] the networks' memory when the action was chosen ([n, 0] without memory)


class TransitionAssembler:
    """Remembers each agent's last observation and action until its next step brings reward and next obs."""

    def __init__(self, spec: BehaviorSpec, obs_size: int, memory_size: int = 0, agents: Agents | None = None) -> None:
        self.spec = spec
        a = spec.action_spec
        self.mask_size = sum(a.discrete_branches)
        self.agents = agents if agents is not None else Agents()
        self.pending = self.agents.table(
            {
                "obs": Column((obs_size,), np.float32),
                "continuous": Column((a.continuous_size,), np.float32),
                "discrete": Column((a.discrete_size,), np.int32),
                "mask": Column((self.mask_size,), bool, True),
                "memory": Column((memory_size,), np.float32),
                "waiting": Column((), bool),
            }
        )

    def _close(
        self, slots: np.ndarray, reward: np.ndarray, next_obs: np.ndarray, terminated: np.ndarray, ended: bool
    ) -> Transitions:
        p = self.pending
        p.waiting[slots] = False
        return Transitions(
            p.obs[slots],
            p.continuous[slots],
            p.discrete[slots],
            reward.astype(np.float32),
            p.mask[slots],
            next_obs,
            terminated,
            slots,
            ended,
            p.memory[slots],
        )

    def end_episodes(self, terminal: TerminalSteps) -> tuple[Transitions | None, EpisodeStats]:
        if len(terminal) == 0:
            return None, NO_EPISODES
        slots = self.agents.lookup(terminal.agent_id)
        stats = self.agents.end_episodes(slots, terminal.reward)
        pending = self.pending.waiting[slots]
        if not pending.any():
            return None, stats
        next_obs = concat_vector_obs([o[pending] for o in terminal.obs])
        return self._close(
            slots[pending], terminal.reward[pending], next_obs, ~terminal.interrupted[pending].astype(bool), ended=True
        ), stats

    def next_step(self, decision: DecisionSteps, obs: np.ndarray) -> Transitions | None:
        """Close the pending transitions of deciding agents with `obs` (their flat observations) as next_obs."""
        slots = self.agents.lookup(decision.agent_id)
        self.agents.add_rewards(slots, decision.reward)
        pending = self.pending.waiting[slots]
        if not pending.any():
            return None
        return self._close(
            slots[pending], decision.reward[pending], obs[pending], np.zeros(int(pending.sum()), bool), ended=False
        )

    def begin(
        self,
        decision: DecisionSteps,
        obs: np.ndarray,
        continuous: np.ndarray,
        discrete: np.ndarray,
        mask: np.ndarray | None,
        memory: np.ndarray | None = None,
    ) -> None:
        p = self.pending
        slots = self.agents.lookup(decision.agent_id)
        if memory is not None:
            p.memory[slots] = memory
        if self.mask_size:
            p.mask[slots] = True if mask is None else mask
        p.obs[slots] = obs
        p.continuous[slots] = continuous
        p.discrete[slots] = discrete
        p.waiting[slots] = True
        self.agents.count_steps(slots)

    def reset(self) -> None:
        self.pending.reset("waiting")
        self.agents.reset()


class SequenceBuilder:
    """Cuts each agent's transitions into sequences of ``length`` steps for recurrent SAC.

    Transitions arrive in order per agent; a sequence is complete after ``length`` steps or at its
    episode's end (then zero-padded, with ``valid`` False on the padding). Complete sequences come out
    as arrays [S, length, ...] plus ``valid`` [S, length] and ``memories`` [S, M], the memory stored
    with each sequence's first step, from which training replays the networks. Sequences never cross
    episodes. Vectorised over agents: one call handles every agent of an env step.
    """

    def __init__(
        self,
        fields: dict[str, tuple[tuple[int, ...], np.dtype]],
        length: int,
        memory_size: int,
        agents: Agents | None = None,
    ) -> None:
        self.fields = fields
        self.length = length
        agents = agents if agents is not None else Agents()
        columns = {name: Column((length, *shape), dtype) for name, (shape, dtype) in fields.items()}
        columns["count"] = Column((), np.int64)
        columns["start_memory"] = Column((memory_size,), np.float32)
        self.agents = agents
        self.table = agents.table(columns)

    def add(
        self, slots: np.ndarray, ended: bool | np.ndarray, memory: np.ndarray, **arrays: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Append one transition per agent (``ended``: it ends the agent's trajectory, for all or per agent);
        returns the sequences completed by it (possibly none)."""
        t = self.table
        if len(slots):
            t.fit(int(slots.max()) + 1)  # slots come from the agents' table; a builder of its own grows here
        pos = t.count[slots]
        first = pos == 0
        t.start_memory[slots[first]] = memory[first]
        stores = [getattr(t, name) for name in self.fields]
        for name, store in zip(self.fields, stores, strict=True):
            store[slots, pos] = arrays[name]
        t.count[slots] = pos + 1
        done = slots[(pos + 1 >= self.length) | ended]
        out = {name: store[done].copy() for name, store in zip(self.fields, stores, strict=True)}
        out["valid"] = np.arange(self.length)[None, :] < t.count[done][:, None]
        out["memories"] = t.start_memory[done].copy()
        for store in stores:
            store[done] = 0
        t.count[done] = 0
        return out

    def reset(self) -> None:
        """Forget sequences in progress (after an env reset)."""
        self.table.reset("count")


class HorizonHold:
    """ML-Agents' time_horizon for off-policy trainers: each agent's transitions wait here until its
    trajectory is cut, after time_horizon of them or at its episode's end, and then enter the replay buffer
    together, as upstream's agent processor hands SAC whole trajectories. Targets do not change (each
    transition already carries its next observation, the bootstrap); what changes is when a step can be
    sampled. Vectorised over agents: per agent a row of ``horizon`` transitions and a count.
    """

    def __init__(
        self, fields: dict[str, tuple[tuple[int, ...], np.dtype]], horizon: int, agents: Agents | None = None
    ) -> None:
        self.fields = fields
        self.horizon = horizon
        agents = agents if agents is not None else Agents()
        columns = {name: Column((horizon, *shape), dtype) for name, (shape, dtype) in fields.items()}
        columns["held"] = Column((), np.int64)
        self.table = agents.table(columns)

    def add(
        self, slots: np.ndarray, ended: bool, **arrays: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray] | None:
        """Hold one transition per agent of ``slots`` (``ended``: they end their agents' episodes). Returns
        the trajectories this cuts: their slots [k], each field [k, horizon, ...] and their lengths [k]
        (entries past a length are stale); None when no trajectory ends here."""
        if not len(slots):
            return None
        t = self.table
        t.fit(int(slots.max()) + 1)  # slots come from the agents' table; a hold of its own grows here
        pos = t.held[slots]
        for name in self.fields:
            getattr(t, name)[slots, pos] = arrays[name]
        t.held[slots] = pos + 1
        cut = slots if ended else slots[pos + 1 >= self.horizon]
        if not len(cut):
            return None
        lengths = t.held[cut].copy()
        t.held[cut] = 0
        return cut, {name: getattr(t, name)[cut] for name in self.fields}, lengths

    def held(self) -> int:
        """Transitions waiting for their trajectory's end."""
        return int(self.table.held.sum())

    def reset(self) -> None:
        """Drop every trajectory in progress (an env reset: ML-Agents drops them too)."""
        self.table.reset("held")
