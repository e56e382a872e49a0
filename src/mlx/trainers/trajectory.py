"""Per-agent trajectories, assembled with array operations over all agents of a behaviour.

Each agent owns a slot in preallocated [slots, time_horizon] arrays. At every env step the assembler
(1) gives each agent's pending transition the reward that arrived with its next step, (2) emits the
trajectories that ended, terminated, interrupted, or cut at time_horizon, as one padded batch with the
information needed to bootstrap, and (3) stores the new transitions. ML-Agents does the same per
agent in Python; here one step touches every agent at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlx.envs.api import BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.trainers.agents import NO_EPISODES, Agents, Column, EpisodeStats


@dataclass
class Trajectories:
    """A padded batch of finished trajectories: arrays [E, T, ...] valid where t < lengths[e].

    bootstrap_value: [E, K] value of the state after the last step, already 0 for terminated ones.
    For interrupted ones the caller fills it from `next_obs` (the final observation).
    """

    obs: list[np.ndarray]
    continuous: np.ndarray
    discrete: np.ndarray
    log_prob: np.ndarray  # [E, T], or [E, T, N] per action component (the assembler's log_prob_components)
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
    # A trainer's own per-step and per-trajectory arrays (MA-POCA's groupmates), [E, T, ...] or [E, ...].
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    _valid: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.lengths)

    def valid(self, t: int | None = None) -> np.ndarray:
        """[E, T] True where a step exists (computed once: flat and padded ask for it a dozen times)."""
        horizon = self.log_prob.shape[1]
        if t is not None and t != horizon:
            return np.arange(t)[None, :] < self.lengths[:, None]
        if self._valid is None:
            self._valid = np.arange(horizon)[None, :] < self.lengths[:, None]
        return self._valid

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


class TrajectoryAssembler:
    """Collects transitions per agent and emits finished trajectories (see the module docstring)."""

    def __init__(
        self,
        spec: BehaviorSpec,
        time_horizon: int,
        num_streams: int,
        memory_size: int = 0,
        agents: Agents | None = None,
        log_prob_components: int = 0,
    ) -> None:
        """``log_prob_components``: log-probabilities stored per step (PPO's one per action component for its
        per-component ratio); 0 stores one joint log-probability."""
        self.spec = spec
        self.horizon = time_horizon
        self.num_streams = num_streams
        self.memory_size = memory_size
        self.agents = agents if agents is not None else Agents()
        h, a = time_horizon, spec.action_spec
        columns = {f"obs{i}": Column((h, *o.shape), np.float32) for i, o in enumerate(spec.observation_specs)}
        self.steps = self.agents.table(
            {
                **columns,
                "continuous": Column((h, a.continuous_size), np.float32),
                "discrete": Column((h, a.discrete_size), np.int32),
                "log_prob": Column((h, log_prob_components) if log_prob_components else (h,), np.float32),
                "action_mask": Column((h, sum(a.discrete_branches)), bool),
                "values": Column((h, num_streams), np.float32),
                "env_reward": Column((h,), np.float32),
                "memory": Column((h, memory_size), np.float32),
                "length": Column((), np.int64),
                "awaiting": Column((), bool),
            }
        )
        self._obs_names = list(columns)

    @property
    def obs(self) -> list[np.ndarray]:
        """[rows, horizon, *shape] per observation spec."""
        return [getattr(self.steps, name) for name in self._obs_names]

    def _emit(
        self, slots: np.ndarray, bootstrap: np.ndarray, needs: np.ndarray, next_obs: list[np.ndarray], ended: bool
    ) -> Trajectories:
        st = self.steps
        t = int(st.length[slots].max())
        out = Trajectories(
            obs=[o[slots, :t] for o in self.obs],
            continuous=st.continuous[slots, :t],
            discrete=st.discrete[slots, :t],
            log_prob=st.log_prob[slots, :t],
            values=st.values[slots, :t],
            env_reward=st.env_reward[slots, :t],
            action_mask=st.action_mask[slots, :t],
            lengths=st.length[slots].copy(),
            bootstrap_value=bootstrap,
            needs_bootstrap=needs,
            next_obs=next_obs,
            slots=slots.copy(),
            episode_end=np.full(len(slots), ended),
            memory=st.memory[slots, :t] if self.memory_size else None,
        )
        st.length[slots] = 0
        return out

    def end_episodes(self, terminal: TerminalSteps) -> tuple[Trajectories | None, EpisodeStats]:
        """Record the last rewards of agents whose episode ended; emit their trajectories."""
        if len(terminal) == 0:
            return None, NO_EPISODES
        st = self.steps
        slots = self.agents.lookup(terminal.agent_id)
        reward = terminal.reward.astype(np.float32)
        stats = self.agents.end_episodes(slots, reward)
        pending = st.awaiting[slots]
        slots, reward = slots[pending], reward[pending]
        interrupted = terminal.interrupted[pending]
        if len(slots) == 0:
            return None, stats
        st.env_reward[slots, st.length[slots] - 1] = reward
        st.awaiting[slots] = False
        bootstrap = np.zeros((len(slots), self.num_streams), dtype=np.float32)
        next_obs = [o[pending] for o in terminal.obs]
        return self._emit(slots, bootstrap, interrupted.astype(bool), next_obs, ended=True), stats

    def record_rewards(self, decision: DecisionSteps, values: np.ndarray) -> Trajectories | None:
        """Give pending transitions their reward; emit trajectories that reached time_horizon,
        bootstrapped with `values` [n, K], the current value estimates of the deciding agents."""
        st = self.steps
        slots = self.agents.lookup(decision.agent_id)
        reward = decision.reward.astype(np.float32)
        self.agents.add_rewards(slots, reward)
        pending = st.awaiting[slots]
        ps = slots[pending]
        st.env_reward[ps, st.length[ps] - 1] = reward[pending]
        st.awaiting[ps] = False
        full = pending & (st.length[slots] >= self.horizon)
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
        mask: np.ndarray | None = None,
    ) -> None:
        """Store the transitions begun now (observation, action, log-prob, values, and the action mask
        [n, sum(branches)], None: all allowed); reward comes next step."""
        st = self.steps
        slots = self.agents.lookup(decision.agent_id)
        idx = st.length[slots]
        for store, obs in zip(self.obs, decision.obs, strict=True):
            store[slots, idx] = obs
        st.continuous[slots, idx] = continuous
        st.discrete[slots, idx] = discrete
        st.log_prob[slots, idx] = log_prob
        st.values[slots, idx] = values
        if memories is not None:
            st.memory[slots, idx] = memories
        if st.action_mask.shape[-1]:
            st.action_mask[slots, idx] = True if mask is None else mask
        st.env_reward[slots, idx] = 0.0
        st.length[slots] = idx + 1
        st.awaiting[slots] = True
        self.agents.count_steps(slots)

    def reset(self) -> None:
        """Forget every trajectory in progress (used after an env reset)."""
        self.steps.reset("length", "awaiting")
        self.agents.reset()
