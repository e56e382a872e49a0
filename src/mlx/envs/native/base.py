"""The shared base of mlx's native envs: everything of the env API that is not the simulation.

A port of an ML-Agents example writes its physics, observations and rewards; ``NativeEnv`` owns the
rest, the same for every port: behaviour specs and names (refusing unknown ones), agent ids (agent id =
area index; ports with several agents an area number them area * agents_per_area + k), action checks
(shape, dtype, branch ranges), DecisionSteps / TerminalSteps bookkeeping,
episode step counting with the MaxStep interruption, environment parameters (checks, samplers), seeding,
and the reset / step order. A port fills in these hooks, each vectorised over areas:

* ``_reset_areas(idx)``: start new episodes in the given areas (OnEpisodeBegin);
* ``_restart_observations(idx)``: those areas' first observations, one [m, *shape] array per spec;
* ``_act(rows, continuous, discrete)``: take checked actions (rows: the deciding agents, None for all);
* ``_advance()``: one decision of physics; returns (reward [n] float32 including the rewards of
  episodes that end now, terminated [n] bool: ended by the task, not by MaxStep);
* ``_observe()``: every area's observations after the decision, one [n, *shape] array per spec;
* optional: ``_no_actions()`` (what agents do until set_actions, ML-Agents' empty action),
  ``_mask()`` (action masks of the DecisionSteps), ``_check_parameters(values)``.

``step()`` then runs, for all areas at once: advance, count the decision, observe, end the episodes
that terminated or reached ``max_decisions`` (their last observation and reward go to TerminalSteps,
``interrupted`` where only MaxStep ended them), reset those areas and put their first observations
into the DecisionSteps with reward 0. Envs whose decision differs (3DBall's sub-step terminal
observations, stacked wrappers) override ``step``/``reset`` and still use ``_end``, ``_no_terminal``
and ``_publish``.

Envs with several behaviours (WallJump) set ``behavior`` (each agent's behaviour index for its current
episode): DecisionSteps and TerminalSteps are split by it, and set_actions takes the rows of that
behaviour's deciding agents.

``FrameStack`` is ML-Agents' StackingSensor for any of them (ray sensors, vector observations).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from mlx.envs.api import (
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    EnvParameters,
    TerminalSteps,
    unknown_behavior,
)
from mlx.memory import check_areas

if TYPE_CHECKING:
    from mlx.params.samplers import AreaSampler

F32 = np.float32


class NativeEnv(BaseEnv):
    """``num_areas`` areas of one example, one agent each (agent id = area index); see the module doc."""

    behaviors: ClassVar[tuple[str, ...]]  # behaviour names; all share ``spec``
    parameter_defaults: ClassVar[Mapping[str, float]] = {}  # ML-Agents' names and defaults
    sampled_parameters: ClassVar[tuple[str, ...]] = ()  # drawn per area at each episode start
    max_decisions: ClassVar[int] = 0  # decisions per episode before MaxStep interrupts it (0: no limit)
    agents_per_area: ClassVar[int] = 1  # agent ids are area * agents_per_area + k

    def __init__(self, num_areas: int, seed: int, parameters: Mapping[str, float] | None, spec: BehaviorSpec) -> None:
        n = int(num_areas)
        if n < 1:
            raise EnvError(f"{type(self).__name__} needs num_areas >= 1, got {num_areas}")
        # Before any per-area array exists: what the areas will hold, now that the observations are known.
        obs = sum(math.prod(o.shape) for o in spec.observation_specs)
        what = f"{n} areas of {type(self).__name__} (env.num_areas x env.num_envs; {obs} observation floats each)"
        check_areas(n, obs, "env.num_areas", n, what, EnvError)
        self.n = n
        self._params = EnvParameters(defaults=dict(self.parameter_defaults), values=dict(parameters or {}))
        self._check_parameters(self._params.values)
        self._rng = np.random.default_rng(seed)
        # What behavior_specs shows; actions are checked against the spec the env was built with.
        self.spec = spec
        self._action_spec = spec.action_spec
        self._branch_limit = np.array(spec.action_spec.discrete_branches, np.int64)
        self._index = {name: b for b, name in enumerate(self.behaviors)}
        self._ids = np.arange(n, dtype=np.int32)
        self._ids.flags.writeable = False
        self._steps = np.zeros(n, np.int32)  # decisions taken in each area's current episode
        self.episodes = np.zeros(n, np.int64)  # episodes begun in each area (a group's episode in group envs)
        self.behavior: np.ndarray | None = None  # per-agent behaviour index (several behaviours only)
        self._started = False
        empty = TerminalSteps(
            obs=[np.zeros((0, *o.shape), F32) for o in spec.observation_specs],
            reward=np.zeros(0, F32),
            agent_id=np.zeros(0, np.int32),
            interrupted=np.zeros(0, bool),
        )
        self._empty = [empty] * len(self.behaviors)
        self._terminals = list(self._empty)
        self._decisions: list[DecisionSteps] = []
        self._rows: list[np.ndarray | None] = [None] * len(self.behaviors)  # deciding agents (None: all)

    # ------------------------------------------------------------------------------------------------
    # BaseEnv API
    # ------------------------------------------------------------------------------------------------

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {name: self.spec for name in self.behaviors}

    @property
    def num_areas(self) -> int:
        return self.n

    @property
    def parameters(self) -> EnvParameters:
        return self._params

    def reset(self) -> None:
        """New episodes in every area; every agent then decides, with reward 0."""
        every = np.arange(self.n)
        self._begin(every)
        obs = self._restart_observations(every)
        self._no_actions()
        self._started = True
        self._no_terminal()
        self._publish(obs, np.zeros(self.n, F32), self._mask())

    def step(self) -> None:
        self._require_reset("step")
        reward, terminated = self._advance()
        steps = self._steps
        steps += 1
        obs = self._observe()
        ended = (terminated | (steps >= self.max_decisions)) if self.max_decisions else terminated
        if ended.any():
            idx = np.flatnonzero(ended)
            self._end(idx, [o[idx] for o in obs], reward[idx], ~terminated[idx])
            self._begin(idx)
            for o, first in zip(obs, self._restart_observations(idx), strict=True):
                o[idx] = first
            reward[idx] = 0.0
        else:
            self._no_terminal()
        self._no_actions()  # until set_actions, agents do nothing (ML-Agents' empty action)
        self._publish(obs, reward, self._mask())

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        b = self._index.get(behavior_name)  # inlined checks: this runs every step
        if b is None:
            raise unknown_behavior(behavior_name, self.behaviors)
        if not self._started:
            raise EnvError("call reset() before get_steps()")
        return self._decisions[b], self._terminals[b]

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        b = self._index.get(behavior_name)
        if b is None:
            raise unknown_behavior(behavior_name, self.behaviors)
        rows = self._rows[b]
        n = self.n if rows is None else len(rows)
        spec = self._action_spec
        cont = np.asarray(actions.continuous)
        disc = np.asarray(actions.discrete)
        who = "" if rows is None else " for its deciding agents"
        if spec.continuous_size:
            if cont.shape != (n, spec.continuous_size):
                raise EnvError(
                    f"{behavior_name} expects continuous actions of shape ({n}, {spec.continuous_size}){who}, "
                    f"got {tuple(cont.shape)}"
                )
        elif cont.size:
            raise EnvError(f"{behavior_name} has no continuous actions, got shape {tuple(cont.shape)}")
        if spec.discrete_size:
            if disc.shape != (n, spec.discrete_size):
                raise EnvError(
                    f"{behavior_name} expects discrete actions of shape ({n}, {spec.discrete_size}){who}, "
                    f"got {tuple(disc.shape)}"
                )
            if not np.issubdtype(disc.dtype, np.integer):
                raise EnvError(f"{behavior_name} expects integer discrete actions, got dtype {disc.dtype}")
            if disc.size and ((disc < 0).any() or (disc >= self._branch_limit).any()):
                ranges = ", ".join(f"0..{size - 1}" for size in spec.discrete_branches)
                per = " per branch" if spec.discrete_size > 1 else ""
                raise EnvError(f"{behavior_name} actions must be in {ranges}{per}, got {disc.min()}..{disc.max()}")
        elif disc.size:
            raise EnvError(f"{behavior_name} has no discrete actions, got shape {tuple(disc.shape)}")
        self._act(rows, cont, disc)

    def set_environment_parameter(self, key: str, value: float) -> None:
        """Checked, then read by each area at its next episode start (envs that act at once override)."""
        self._params.check(key, value)
        self._check_parameters({**self._params.values, key: float(value)})
        self._params.set(key, value)

    def set_environment_sampler(self, key: str, sampler: AreaSampler) -> bool:
        """The ``sampled_parameters`` get a fresh draw per area at each episode start; others cannot."""
        if key not in self.sampled_parameters:
            self._params.check(key, 0.0)
            return False
        self._params.set_sampler(key, sampler)
        return True

    def close(self) -> None:
        self._started = False

    # ------------------------------------------------------------------------------------------------
    # hooks (see the module docstring)
    # ------------------------------------------------------------------------------------------------

    def area_of(self, agent_ids: np.ndarray) -> np.ndarray:
        """The area of each agent (what mode=watch captions by)."""
        return np.asarray(agent_ids) // self.agents_per_area

    def _reset_areas(self, idx: np.ndarray) -> None:
        raise NotImplementedError

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        raise NotImplementedError

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _observe(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _no_actions(self) -> None:
        """Forget the last actions (the default: the env reads none between decisions)."""

    def _mask(self) -> list[np.ndarray] | None:
        return None

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        """Refuse values the env cannot simulate (all of them, known names; EnvError naming the key)."""

    # ------------------------------------------------------------------------------------------------
    # bookkeeping shared by every port
    # ------------------------------------------------------------------------------------------------

    def _require_reset(self, call: str) -> None:
        if not self._started:
            raise EnvError(f"call reset() before {call}()")

    def _begin(self, idx: np.ndarray) -> None:
        """New episodes in areas idx: their step counts restart."""
        self._steps[idx] = 0
        self.episodes[idx] += 1
        self._reset_areas(idx)

    def _end(self, idx: np.ndarray, obs: list[np.ndarray], reward: np.ndarray, interrupted: np.ndarray) -> None:
        """The episodes of agents idx ended: their last observations [m, ...] and rewards go to TerminalSteps
        (of the behaviour each agent had in that episode)."""
        if self.behavior is None:
            self._terminals[0] = TerminalSteps(obs, reward, self._ids[idx], interrupted)
            return
        of = self.behavior[idx]
        for b in range(len(self.behaviors)):
            mine = of == b
            if mine.any():
                self._terminals[b] = TerminalSteps(
                    [o[mine] for o in obs], reward[mine], self._ids[idx[mine]], interrupted[mine]
                )
            else:
                self._terminals[b] = self._empty[b]

    def _no_terminal(self) -> None:
        self._terminals[:] = self._empty

    def _publish(self, obs: list[np.ndarray], reward: np.ndarray, mask: list[np.ndarray] | None = None) -> None:
        """DecisionSteps: every agent decides (under its current behaviour), observations [n, ...]."""
        if self.behavior is None:
            decision = DecisionSteps(obs, reward, self._ids, mask)
            if self._decisions:
                self._decisions[0] = decision
            else:
                self._decisions.append(decision)
            return
        self._decisions = []
        for b in range(len(self.behaviors)):
            rows = np.flatnonzero(self.behavior == b)
            self._rows[b] = rows
            part = None if mask is None else [m[rows] for m in mask]
            self._decisions.append(DecisionSteps([o[rows] for o in obs], reward[rows], self._ids[rows], part))


class FrameStack:
    """ML-Agents' StackingSensor over every area: the last ``stacks`` frames of ``frame`` floats, oldest first,
    as one [n, stacks * frame] float32 array (``data``), cleared to zeros at each episode start."""

    def __init__(self, n: int, frame: int, stacks: int) -> None:
        self.frame = frame
        self.data = np.zeros((n, stacks * frame), F32)

    def push(self, rows: np.ndarray) -> np.ndarray:
        """Every area's newest frame [n, frame]; returns the stacks (``data`` itself, not a copy)."""
        self.data[:, : -self.frame] = self.data[:, self.frame :]
        self.data[:, -self.frame :] = rows
        return self.data

    def restart(self, idx: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """New episodes in areas idx: their stacks hold only their first frames [m, frame]; returns them."""
        self.data[idx] = 0.0
        self.data[idx, -self.frame :] = rows
        return self.data[idx]
