"""Per-agent trajectories, assembled with array operations over all agents of a behaviour.

Each agent owns a slot in preallocated [slots, time_horizon] arrays. At every env step the assembler
(1) gives each agent's pending transition the reward that arrived with its next step, (2) emits the
trajectories that ended, terminated, interrupted, or cut at time_horizon, as one padded batch with the
information needed to bootstrap, and (3) stores the new transitions. ML-Agents does the same per
agent in Python; here one step touches every agent at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlx.envs.api import BehaviorSpec, DecisionSteps, TerminalSteps


@dataclass
class Trajectories:
    """A padded batch of finished trajectories: arrays [E, T, ...] valid where t < lengths[e].

    bootstrap_value: [E, K] value of the state after the last step, already 0 for terminated ones.
    For interrupted ones the caller fills it from `next_obs` (the final observation).
    """

    obs: list[np.ndarray]
    continuous: np.ndarray
    discrete: np.ndarray
    log_prob: np.ndarray
    values: np.ndarray
    env_reward: np.ndarray
    action_mask: np.ndarray  # [E, T, sum(branches)] True where allowed (empty last dim if continuous)
    lengths: np.ndarray
    bootstrap_value: np.ndarray
    needs_bootstrap: np.ndarray  # [E] True where bootstrap_value must be computed from next_obs
    next_obs: list[np.ndarray]  # [E, ...] the observation after each trajectory's last step
    slots: np.ndarray  # [E] the agents' dense slot indices (stable per agent id)
    episode_end: np.ndarray  # [E] True where the agent's episode ended with this trajectory
    memory: np.ndarray | None = None  # [E, T, M] each step's input memory (networks with memory)

    def __len__(self) -> int:
        return len(self.lengths)

    def valid(self, t: int | None = None) -> np.ndarray:
        """[E, T] True where a step exists."""
        return np.arange(self.log_prob.shape[1] if t is None else t)[None, :] < self.lengths[:, None]

    def flat(self, array: np.ndarray) -> np.ndarray:
        """The valid entries of a padded [E, T, ...] array, trajectory after trajectory."""
        return array[self.valid(array.shape[1])]

    def padded(self, flat: np.ndarray) -> np.ndarray:
        """The inverse of flat(): [N, ...] back to [E, T, ...], zeros where no step exists."""
        valid = self.valid()
        out = np.zeros((*valid.shape, *flat.shape[1:]), dtype=flat.dtype)
        out[valid] = flat
        return out

    def flat_next_obs(self) -> list[np.ndarray]:
        """The observation following every valid step, flat: obs[t + 1], and next_obs after the last."""
        out = []
        rows = np.arange(len(self.lengths))
        for obs, final in zip(self.obs, self.next_obs, strict=True):
            nxt = np.empty_like(obs)
            nxt[:, :-1] = obs[:, 1:]
            nxt[rows, self.lengths - 1] = final
            out.append(self.flat(nxt))
        return out


@dataclass
class EpisodeStats:
    """Returns and lengths of the episodes that ended at one step."""

    returns: np.ndarray
    lengths: np.ndarray


class AgentSlots:
    """Maps arbitrary agent ids to dense slot indices without a Python loop over agents."""

    def __init__(self) -> None:
        self._ids = np.zeros(0, dtype=np.int64)  # sorted
        self._slots = np.zeros(0, dtype=np.int64)
        self.count = 0

    def lookup(self, agent_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(agent_ids, dtype=np.int64)
        pos = np.searchsorted(self._ids, ids)
        found = (
            (pos < len(self._ids)) & (self._ids[np.minimum(pos, len(self._ids) - 1)] == ids)
            if len(self._ids)
            else np.zeros(len(ids), dtype=bool)
        )
        if not found.all():
            new = np.unique(ids[~found])
            order = np.concatenate([self._ids, new])
            slots = np.concatenate([self._slots, np.arange(self.count, self.count + len(new))])
            self.count += len(new)
            sort = np.argsort(order, kind="stable")
            self._ids, self._slots = order[sort], slots[sort]
            pos = np.searchsorted(self._ids, ids)
        return self._slots[pos]


class TrajectoryAssembler:
    """Collects transitions per agent and emits finished trajectories (see the module docstring)."""

    def __init__(self, spec: BehaviorSpec, time_horizon: int, num_streams: int, memory_size: int = 0) -> None:
        self.spec = spec
        self.horizon = time_horizon
        self.num_streams = num_streams
        self.memory_size = memory_size
        self.slots = AgentSlots()
        self._capacity = 0
        self._grow(16)

    def _grow(self, capacity: int) -> None:
        old = self._capacity
        h = self.horizon
        a = self.spec.action_spec

        def alloc(shape: tuple[int, ...], dtype: type, current: np.ndarray | None) -> np.ndarray:
            arr = np.zeros((capacity, *shape), dtype=dtype)
            if current is not None:
                arr[:old] = current
            return arr

        first = old == 0
        self.obs = [
            alloc((h, *o.shape), np.float32, None if first else self.obs[i])
            for i, o in enumerate(self.spec.observation_specs)
        ]
        self.continuous = alloc((h, a.continuous_size), np.float32, None if first else self.continuous)
        self.discrete = alloc((h, a.discrete_size), np.int32, None if first else self.discrete)
        self.log_prob = alloc((h,), np.float32, None if first else self.log_prob)
        self.action_mask = alloc((h, sum(a.discrete_branches)), bool, None if first else self.action_mask)
        self.values = alloc((h, self.num_streams), np.float32, None if first else self.values)
        self.env_reward = alloc((h,), np.float32, None if first else self.env_reward)
        self.memory = alloc((h, self.memory_size), np.float32, None if first else self.memory)
        self.length = alloc((), np.int64, None if first else self.length)
        self.awaiting = alloc((), bool, None if first else self.awaiting)
        self.episode_return = alloc((), np.float64, None if first else self.episode_return)
        self.episode_length = alloc((), np.int64, None if first else self.episode_length)
        self._capacity = capacity

    def slots_for(self, agent_ids: np.ndarray) -> np.ndarray:
        """Dense slot indices of agents (new agents get new slots)."""
        slots = self.slots.lookup(agent_ids)
        if self.slots.count > self._capacity:
            self._grow(max(self.slots.count, 2 * self._capacity))
        return slots

    def _emit(
        self, slots: np.ndarray, bootstrap: np.ndarray, needs: np.ndarray, next_obs: list[np.ndarray], ended: bool
    ) -> Trajectories:
        t = int(self.length[slots].max())
        out = Trajectories(
            obs=[o[slots, :t] for o in self.obs],
            continuous=self.continuous[slots, :t],
            discrete=self.discrete[slots, :t],
            log_prob=self.log_prob[slots, :t],
            values=self.values[slots, :t],
            env_reward=self.env_reward[slots, :t],
            action_mask=self.action_mask[slots, :t],
            lengths=self.length[slots].copy(),
            bootstrap_value=bootstrap,
            needs_bootstrap=needs,
            next_obs=next_obs,
            slots=slots.copy(),
            episode_end=np.full(len(slots), ended),
            memory=self.memory[slots, :t] if self.memory_size else None,
        )
        self.length[slots] = 0
        return out

    def end_episodes(self, terminal: TerminalSteps) -> tuple[Trajectories | None, EpisodeStats]:
        """Record the last rewards of agents whose episode ended; emit their trajectories."""
        if len(terminal) == 0:
            return None, EpisodeStats(np.zeros(0), np.zeros(0, dtype=np.int64))
        slots = self.slots_for(terminal.agent_id)
        reward = terminal.reward.astype(np.float32)
        self.episode_return[slots] += reward
        stats = EpisodeStats(self.episode_return[slots].copy(), self.episode_length[slots].copy())
        self.episode_return[slots] = 0.0
        self.episode_length[slots] = 0
        pending = self.awaiting[slots]
        slots, reward = slots[pending], reward[pending]
        interrupted = terminal.interrupted[pending]
        if len(slots) == 0:
            return None, stats
        self.env_reward[slots, self.length[slots] - 1] = reward
        self.awaiting[slots] = False
        bootstrap = np.zeros((len(slots), self.num_streams), dtype=np.float32)
        next_obs = [o[pending] for o in terminal.obs]
        return self._emit(slots, bootstrap, interrupted.astype(bool), next_obs, ended=True), stats

    def record_rewards(self, decision: DecisionSteps, values: np.ndarray) -> Trajectories | None:
        """Give pending transitions their reward; emit trajectories that reached time_horizon,
        bootstrapped with `values` [n, K], the current value estimates of the deciding agents."""
        slots = self.slots_for(decision.agent_id)
        reward = decision.reward.astype(np.float32)
        self.episode_return[slots] += reward
        pending = self.awaiting[slots]
        ps = slots[pending]
        self.env_reward[ps, self.length[ps] - 1] = reward[pending]
        self.awaiting[ps] = False
        full = pending & (self.length[slots] >= self.horizon)
        if not full.any():
            return None
        needs = np.zeros(int(full.sum()), dtype=bool)
        next_obs = [np.asarray(o)[full] for o in decision.obs]
        return self._emit(slots[full], values[full].astype(np.float32), needs, next_obs, ended=False)

    def store(
        self,
        decision: DecisionSteps,
        continuous: np.ndarray,
        discrete: np.ndarray,
        log_prob: np.ndarray,
        values: np.ndarray,
        memories: np.ndarray | None = None,
    ) -> None:
        """Store the transitions begun now (observation, action, log-prob, values); reward comes next step."""
        slots = self.slots_for(decision.agent_id)
        idx = self.length[slots]
        for store, obs in zip(self.obs, decision.obs, strict=True):
            store[slots, idx] = obs
        self.continuous[slots, idx] = continuous
        self.discrete[slots, idx] = discrete
        self.log_prob[slots, idx] = log_prob
        self.values[slots, idx] = values
        if memories is not None:
            self.memory[slots, idx] = memories
        if self.action_mask.shape[-1]:
            self.action_mask[slots, idx] = (
                True if decision.action_mask is None else np.concatenate(decision.action_mask, axis=1)
            )
        self.env_reward[slots, idx] = 0.0
        self.length[slots] = idx + 1
        self.awaiting[slots] = True
        self.episode_length[slots] += 1

    def reset(self) -> None:
        """Forget every trajectory in progress (used after an env reset)."""
        self.length[:] = 0
        self.awaiting[:] = False
        self.episode_return[:] = 0.0
        self.episode_length[:] = 0
