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
from collections.abc import Sequence
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


@dataclass(frozen=True)
class ObservationSpec:
    """Shape and role of one observation (one sensor) of every agent of a behaviour."""

    shape: tuple[int, ...]
    name: str = "vector"
    observation_type: ObservationType = ObservationType.DEFAULT


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

    def random(self, n_agents: int, rng: np.random.Generator) -> ActionTuple:
        """Uniform random actions; used for env benchmarks and SAC's buffer_init_steps."""
        cont = rng.uniform(-1.0, 1.0, size=(n_agents, self.continuous_size)).astype(np.float32)
        disc = (
            np.stack([rng.integers(0, b, size=n_agents) for b in self.discrete_branches], axis=1)
            if self.discrete_branches
            else np.zeros((n_agents, 0))
        )
        return ActionTuple(continuous=cont, discrete=disc.astype(np.int32))


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


@dataclass
class DecisionSteps:
    """Agents that need an action now. ``obs`` holds one array per observation spec, each [n, *shape].

    ``reward`` is what each agent earned since its previous decision. ``action_mask`` holds one boolean
    array per discrete branch, [n, branch_size], True where the action is *allowed* (None: all allowed).
    """

    obs: list[np.ndarray]
    reward: np.ndarray
    agent_id: np.ndarray
    action_mask: list[np.ndarray] | None = None
    group_id: np.ndarray | None = None
    group_reward: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.agent_id)


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

    def __len__(self) -> int:
        return len(self.agent_id)


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
            f"{type(self).__name__} cannot draw itself: mode=watch works with mlx's native envs "
            "(3dball, 3dballhard, visual3dball, basic, gridworld, pushblock, pyramids, hallway, walljump)"
        )

    def close(self) -> None:
        """Release processes and sockets; safe to call twice."""

    def __enter__(self) -> BaseEnv:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
