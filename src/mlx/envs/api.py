"""The batched multi-agent environment API, shaped like ML-Agents' low-level API.

An environment holds one or more *behaviours*; every agent belongs to one. Each call to ``step()``
advances the simulation until at least one agent needs a decision. Afterwards ``get_steps(behavior)``
returns two batches: ``DecisionSteps`` (agents waiting for an action) and ``TerminalSteps`` (agents whose
episode ended since the last call). An agent whose episode ended and that was reset at once appears in
both: in ``TerminalSteps`` with its last observation and in ``DecisionSteps`` with the first observation
of its next episode. ``set_actions(behavior, actions)`` gives one action per agent of the last
``DecisionSteps``, in the same order.

Every field is an array over agents, so trainers never loop over agents in Python. Native envs, the
Gymnasium adapter and the gRPC communicator all implement this one interface.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from mlx.errors import EnvError

if TYPE_CHECKING:
    from mlx.params.samplers import AreaSampler


class ObservationType(IntEnum):
    """What an observation is for (ML-Agents' ObservationTypeProto)."""

    DEFAULT = 0
    GOAL_SIGNAL = 1


class DimensionProperty(IntEnum):
    """What one axis of an observation means to an encoder (ML-Agents' DimensionProperty, sent on the wire
    as ``ObservationProto.dimension_properties``)."""

    UNSPECIFIED = 0
    NONE = 1
    TRANSLATIONAL_EQUIVARIANCE = 2
    VARIABLE_SIZE = 4


# The one layout ML-Agents' trainers take for a variable-length observation (a BufferSensor): rows are
# entities, as many as present up to the first axis' size; columns are each entity's features.
VARIABLE_LENGTH = (DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE)
# Below this sum of squares an entity row is padding (ML-Agents' get_zero_entities_mask): buffers are
# padded with zero rows, and a real entity must never be all zeros.
PADDING_SUM_SQUARES = 0.01


@dataclass(frozen=True)
class ObservationSpec:
    """Shape and role of one observation (one sensor) of every agent of a behaviour.

    ``dimension_property`` says what each axis is, as ML-Agents' specs do; empty means unspecified (mlx
    then reads 1-D as a vector and 3-D as a camera, height x width x channels). A variable-length
    observation (ML-Agents' BufferSensor, ``ObservationSpec.entities``) is [max_entities, entity_size]
    with ``VARIABLE_LENGTH``: present entities fill rows from the top, the rest are zero rows that the
    trainer masks out (``PADDING_SUM_SQUARES``).
    """

    shape: tuple[int, ...]
    name: str = "vector"
    observation_type: ObservationType = ObservationType.DEFAULT
    dimension_property: tuple[DimensionProperty, ...] = ()

    def __post_init__(self) -> None:
        try:
            props = tuple(DimensionProperty(int(p)) for p in self.dimension_property)
        except ValueError:
            known = ", ".join(f"{p.name} {p.value}" for p in DimensionProperty)
            raise EnvError(
                f"observation '{self.name}': dimension properties {list(self.dimension_property)} must be among {known}"
            ) from None
        object.__setattr__(self, "dimension_property", props)
        if props and len(props) != len(self.shape):
            raise EnvError(
                f"observation '{self.name}': {len(props)} dimension properties for shape {self.shape}; "
                "give one per axis (or none)"
            )
        if DimensionProperty.VARIABLE_SIZE in props and (props != VARIABLE_LENGTH or len(self.shape) != 2):
            raise EnvError(
                f"observation '{self.name}': a variable-size axis is only understood as the first of a 2-D "
                "[max_entities, entity_size] observation with dimension properties (VARIABLE_SIZE, NONE)"
            )
        if self.variable_length and self.observation_type == ObservationType.GOAL_SIGNAL:
            raise EnvError(f"observation '{self.name}': a goal signal cannot be variable-length (as in ML-Agents)")

    @classmethod
    def entities(cls, max_entities: int, entity_size: int, name: str = "BufferSensor") -> ObservationSpec:
        """A variable-length observation: up to ``max_entities`` rows of ``entity_size`` floats."""
        return cls((int(max_entities), int(entity_size)), name, ObservationType.DEFAULT, VARIABLE_LENGTH)

    @property
    def variable_length(self) -> bool:
        return self.dimension_property == VARIABLE_LENGTH


@dataclass(frozen=True)
class ActionSpec:
    """Continuous actions (a vector in [-1, 1]) and/or discrete branches, as in ML-Agents."""

    continuous_size: int = 0
    discrete_branches: tuple[int, ...] = ()

    @property
    def discrete_size(self) -> int:
        return len(self.discrete_branches)

    @property
    def is_continuous(self) -> bool:
        return self.continuous_size > 0

    @property
    def is_discrete(self) -> bool:
        return self.discrete_size > 0

    def empty(self, n_agents: int) -> ActionTuple:
        return ActionTuple(
            continuous=np.zeros((n_agents, self.continuous_size), dtype=np.float32),
            discrete=np.zeros((n_agents, self.discrete_size), dtype=np.int32),
        )

    def random(
        self, n_agents: int, rng: np.random.Generator, mask: Sequence[np.ndarray] | np.ndarray | None = None
    ) -> ActionTuple:
        """Uniform random actions, discrete ones drawn only among those ``mask`` allows: the one random
        policy of mlx (env checks and benchmarks, SAC's buffer_init_steps, mode=record's random actor).

        ``mask`` is DecisionSteps.action_mask (one bool [n, branch] array per branch) or those arrays
        concatenated [n, sum(branches)]; None allows everything. Draws, in order: the continuous block
        (uniform in [-1, 1]), then per branch one uniform score per action; the action is the allowed one
        with the highest score.
        """
        cont = rng.uniform(-1.0, 1.0, size=(n_agents, self.continuous_size)).astype(np.float32)
        cols = []
        offset = 0
        for b, size in enumerate(self.discrete_branches):
            scores = rng.random((n_agents, size))
            if mask is not None:
                allowed = mask[:, offset : offset + size] if isinstance(mask, np.ndarray) else mask[b]
                scores = np.where(allowed, scores, -1.0)
            cols.append(scores.argmax(axis=1))
            offset += size
        disc = np.stack(cols, axis=1).astype(np.int32) if cols else np.zeros((n_agents, 0), np.int32)
        return ActionTuple(continuous=cont, discrete=disc)


@dataclass(frozen=True)
class BehaviorSpec:
    """Everything a trainer needs to build a policy for a behaviour."""

    observation_specs: tuple[ObservationSpec, ...]
    action_spec: ActionSpec


@dataclass
class ActionTuple:
    """Actions for a batch of agents: continuous [n, continuous_size] float32 in [-1, 1] and
    discrete [n, num_branches] int32."""

    continuous: np.ndarray
    discrete: np.ndarray

    def __len__(self) -> int:
        return max(len(self.continuous), len(self.discrete))

    def put(self, rows: np.ndarray, part: ActionTuple) -> None:
        """Write ``part``'s actions into the agents at ``rows`` (indices or a boolean mask)."""
        if self.continuous.shape[1]:
            self.continuous[rows] = part.continuous
        if self.discrete.shape[1]:
            self.discrete[rows] = part.discrete


@dataclass
class DecisionSteps:
    """Agents that need an action now. ``obs`` holds one array per observation spec, each [n, *shape].

    ``reward`` is what each agent earned since its previous decision. ``action_mask`` holds one boolean
    array per discrete branch, [n, branch_size], True where the action is *allowed* (None: all allowed).
    ``team_id`` [n] is each agent's team (ML-Agents' ``?team=<id>``; None: every agent is in team 0):
    teams of one behaviour share its spec and, without self-play, its policy.
    """

    obs: list[np.ndarray]
    reward: np.ndarray
    agent_id: np.ndarray
    action_mask: list[np.ndarray] | None = None
    group_id: np.ndarray | None = None
    group_reward: np.ndarray | None = None
    team_id: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.agent_id)

    def take(self, rows: np.ndarray) -> DecisionSteps:
        """The agents at ``rows`` (indices or a boolean mask), every field alike."""
        return DecisionSteps(
            [o[rows] for o in self.obs],
            self.reward[rows],
            self.agent_id[rows],
            None if self.action_mask is None else [m[rows] for m in self.action_mask],
            *(None if a is None else a[rows] for a in (self.group_id, self.group_reward, self.team_id)),
        )


@dataclass
class TerminalSteps:
    """Agents whose episode ended. ``interrupted`` is True where the episode was cut by a step limit
    (max_step_reached): the last state is not terminal, so trainers bootstrap its value."""

    obs: list[np.ndarray]
    reward: np.ndarray
    agent_id: np.ndarray
    interrupted: np.ndarray
    group_id: np.ndarray | None = None
    group_reward: np.ndarray | None = None
    team_id: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.agent_id)

    def take(self, rows: np.ndarray) -> TerminalSteps:
        """The agents at ``rows`` (indices or a boolean mask), every field alike."""
        return TerminalSteps(
            [o[rows] for o in self.obs],
            self.reward[rows],
            self.agent_id[rows],
            self.interrupted[rows],
            *(None if a is None else a[rows] for a in (self.group_id, self.group_reward, self.team_id)),
        )


class StatAggregation(IntEnum):
    """How values of one env statistic within a summary period combine (ML-Agents' aggregation ids)."""

    AVERAGE = 0
    MOST_RECENT = 1
    SUM = 2
    HISTOGRAM = 3


@dataclass
class EnvStat:
    """Values of one statistic an env reported since the last drain_stats(), oldest first."""

    name: str
    values: np.ndarray
    aggregation: StatAggregation = StatAggregation.AVERAGE


@dataclass
class EnvParameters:
    """Named float parameters of an environment (ML-Agents' environment parameters), with defaults."""

    defaults: dict[str, float]
    values: dict[str, float] = field(default_factory=dict)
    # Parameters drawn afresh per area at each episode start (set_environment_sampler); a value set
    # with set() replaces the sampler.
    samplers: dict[str, AreaSampler] = field(default_factory=dict)

    def __post_init__(self) -> None:
        merged = dict(self.defaults)
        for key, value in self.values.items():
            self.check(key, value)
            merged[key] = float(value)
        self.values = merged

    def check(self, key: str, value: float) -> None:
        if key not in self.defaults:
            known = ", ".join(sorted(self.defaults)) or "(none)"
            raise EnvError(f"unknown environment parameter '{key}'; this env accepts: {known}")
        if not np.isfinite(value):
            raise EnvError(f"environment parameter '{key}' must be a finite number (got {value})")

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    def set(self, key: str, value: float) -> None:
        self.check(key, value)
        self.values[key] = float(value)
        self.samplers.pop(key, None)

    def set_sampler(self, key: str, sampler: AreaSampler) -> None:
        self.check(key, 0.0)
        self.samplers[key] = sampler

    def draw(self, key: str, areas: np.ndarray) -> np.ndarray:
        """The values of ``key`` for the episodes these areas start now: one draw per area from its
        sampler, or the current value for all."""
        sampler = self.samplers.get(key)
        if sampler is None:
            return np.full(len(areas), self.values[key])
        return sampler.draw(areas)


def unknown_behavior(name: str, known: Sequence[str]) -> EnvError:
    """The one refusal of a behaviour name an env does not have (raise it)."""
    return EnvError(f"unknown behaviour '{name}'; this env has: {', '.join(known) or '(none)'}")


class IdMap:
    """Integer ids (agent ids, wire ids) -> integer values, for whole batches without a Python loop per id.

    The keys are kept sorted, so a lookup is one ``searchsorted``; ids not seen before get values from
    ``fresh(k)`` (by default the next k of 0, 1, 2, ...: dense slots), in ascending id order.
    """

    def __init__(self, fresh: Callable[[int], np.ndarray] | None = None) -> None:
        self._keys = np.zeros(0, dtype=np.int64)  # sorted
        self._values = np.zeros(0, dtype=np.int64)
        self._fresh = fresh
        self.count = 0  # ids seen so far

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """The values of ``ids`` (any shape of int array), adding the unseen ones."""
        ids = np.asarray(ids, dtype=np.int64)
        keys = self._keys
        if ids.shape == keys.shape and ids.tobytes() == keys.tobytes():
            # Speed: every id seen, in ascending order (a native env's batch of all its agents, each step):
            # the values as they are, without the search (about 1 us instead of 7).
            return self._values.copy()
        pos = np.searchsorted(keys, ids)
        if len(keys):
            found = (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == ids)
        else:
            found = np.zeros(ids.shape, dtype=bool)
        if not found.all():
            new = np.unique(ids[~found])
            values = np.arange(self.count, self.count + len(new)) if self._fresh is None else self._fresh(len(new))
            self.count += len(new)
            keys = np.concatenate([keys, new])
            order = np.argsort(keys, kind="stable")
            self._keys, self._values = keys[order], np.concatenate([self._values, values])[order]
            pos = np.searchsorted(self._keys, ids)
        return self._values[pos]

    def assign(self, ids: np.ndarray, values: np.ndarray) -> None:
        """Give ids already seen new values."""
        self._values[np.searchsorted(self._keys, np.asarray(ids, dtype=np.int64))] = values

    def reassign_all(self, values: Callable[[int], np.ndarray]) -> None:
        """Give every id seen a new value: ``values(count)`` in ascending id order."""
        self._values = np.asarray(values(len(self._keys)), dtype=np.int64)


class BaseEnv(abc.ABC):
    """The one environment interface of mlx (see the module docstring for the contract)."""

    @property
    @abc.abstractmethod
    def behavior_specs(self) -> dict[str, BehaviorSpec]: ...

    @abc.abstractmethod
    def reset(self) -> None:
        """Start fresh episodes for every agent; afterwards every agent is in DecisionSteps."""

    @abc.abstractmethod
    def step(self) -> None:
        """Apply the actions given by set_actions and advance to the next decision."""

    @abc.abstractmethod
    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]: ...

    @abc.abstractmethod
    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None: ...

    def teams(self, behavior_name: str) -> tuple[int, ...]:
        """The team ids of a behaviour's agents (ML-Agents' ``<Name>?team=<id>``), known before any step so
        that self-play can refuse an env with one team at start-up. One team, 0, unless the env says more;
        its steps then carry ``team_id``."""
        if behavior_name not in self.behavior_specs:
            raise unknown_behavior(behavior_name, list(self.behavior_specs))
        return (0,)

    def set_environment_parameter(self, key: str, value: float) -> None:
        """Change an environment parameter; it takes effect at each agent's next episode start."""
        raise EnvError(f"{type(self).__name__} has no environment parameters (got '{key}')")

    def set_environment_sampler(self, key: str, sampler: AreaSampler) -> bool:
        """Draw ``key`` afresh for every area at each of its episode starts (ML-Agents' samplers), one
        vectorised ``sampler.draw(areas)`` for the areas starting together.

        Returns False when the env cannot (the default): the run loop then sets one fresh draw with
        ``set_environment_parameter`` before every step, so areas starting an episode in the same step
        share a value. Unknown keys raise EnvError as set_environment_parameter does.
        """
        return False

    def drain_stats(self) -> list[EnvStat]:
        """Statistics the env itself reports (a Unity build's StatsRecorder), handed over once each.

        The run loop calls this after every step and reports them beside the trainers' statistics, for
        every behaviour; most envs report none.
        """
        return []

    def render(self, areas: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """Pictures of some areas (all by default) in their current state, uint8 RGB [m, H, W, 3], for
        people watching a policy (``python -m mlx mode=watch``); never an observation.

        Native envs draw themselves (see mlx.envs.native.render); others raise EnvError (the default).
        """
        raise EnvError(
            f"{type(self).__name__} cannot draw itself: mode=watch works with every native env of mlx "
            "(env=3dball, pushblock, sorter, worm, ...) and with env=gym (Gymnasium's rgb_array pictures)"
        )

    def close(self) -> None:
        """Release processes and sockets; safe to call twice."""

    def __enter__(self) -> BaseEnv:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
