"""MA-POCA's trajectories: the on-policy assembler plus what each step holds about the agent's group.

Per stored step, besides the agent's own (observation, action, log-probability): each groupmate's flat
observation row and action at that step (NaN rows and zero actions for empty slots), the group reward and
the sum of the groupmates' individual rewards that arrived with the next step (ML-Agents' group statuses).
Per emitted trajectory: the groupmates' rows after its last step (``next_mates_obs``, for the bootstrap
value) and whether it must be bootstrapped at all (``needs_bootstrap``): always, unless the agent's episode
and its whole group's ended together without an interruption. An agent that leaves while its group plays
on bootstraps from the group's value: its posthumous credit.

Group episode returns and who carries a group on are every trainer's (``mlx.trainers.groups.group_step``).
Groupmate slots are as wide as the largest group seen so far less one; the per-agent columns widen when a
larger group appears (``AgentTable.widen``).

With memory, each step also holds the actor's input memory (the base assembler's ``memory`` column, as PPO
stores it); the critic's memories are not known while acting (values are computed when trajectories end)
and are worked out by the trainer then.
"""

from __future__ import annotations

import numpy as np

from mlx.envs.api import BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.errors import TrainingError
from mlx.memory import require
from mlx.trainers.agents import NO_EPISODES, Agents, Column, EpisodeStats
from mlx.trainers.trajectory import Trajectories, TrajectoryAssembler

MATE_COLUMNS = ("mates_obs", "mates_continuous", "mates_discrete")


class GroupTrajectoryAssembler(TrajectoryAssembler):
    """TrajectoryAssembler with groupmates, group rewards and group episode returns (module docstring)."""

    def __init__(
        self,
        spec: BehaviorSpec,
        time_horizon: int,
        num_streams: int,
        row_size: int,
        agents: Agents,
        memory_size: int = 0,
    ) -> None:
        """``memory_size``: floats of the actor's memory stored with each step (0 without memory)."""
        super().__init__(spec, time_horizon, num_streams, memory_size, agents)
        h, a = time_horizon, spec.action_spec
        self.row_size = row_size
        self.components = a.continuous_size + a.discrete_size  # log-probabilities per step
        self.group = self.agents.table(
            {
                "mates_obs": Column((h, 0, row_size), np.float32, np.nan),
                "mates_continuous": Column((h, 0, a.continuous_size), np.float32),
                "mates_discrete": Column((h, 0, a.discrete_size), np.int32),
                "group_reward": Column((h,), np.float32),
                "mates_reward": Column((h,), np.float32),
                "log_prob_parts": Column((h, self.components), np.float32),
            }
        )

    @property
    def width(self) -> int:
        """Groupmate slots per step: the largest group seen so far, less one."""
        return self.group.columns["mates_obs"].shape[1]

    def _check_width(self, mates: int) -> None:
        """Refuse, in one line, a group so large that its groupmates' rows (stored with every agent's every
        pending step, and again in the update buffer) would not fit in memory."""
        a = self.spec.action_spec
        per_step = mates * 4 * (self.row_size + a.continuous_size + a.discrete_size)
        agents = max(self.agents.slots.count, 1)
        require(
            2 * agents * self.horizon * per_step,  # the pending steps, and their copies in trajectories
            "the env's group size",
            mates + 1,
            f"the groupmates' observations MA-POCA stores with each of {agents} agents' {self.horizon} pending steps",
            TrainingError,
            "use smaller groups, fewer agents (env.num_areas) or a shorter trainer.time_horizon",
        )

    def _emit(
        self, slots: np.ndarray, bootstrap: np.ndarray, needs: np.ndarray, next_obs: list[np.ndarray], ended: bool
    ) -> Trajectories:
        traj = super()._emit(slots, bootstrap, needs, next_obs, ended)
        t = traj.log_prob.shape[1]
        g = self.group
        for name in (*MATE_COLUMNS, "group_reward", "mates_reward", "log_prob_parts"):
            traj.extras[name] = getattr(g, name)[slots, :t]
        return traj

    def _pending_rewards(self, slots: np.ndarray, group_reward: np.ndarray, mates_reward: np.ndarray) -> None:
        """The group and groupmates' rewards that close the agents' pending steps."""
        pending = self.steps.awaiting[slots]
        ps = slots[pending]
        last = self.steps.length[ps] - 1
        self.group.group_reward[ps, last] = group_reward[pending]
        self.group.mates_reward[ps, last] = mates_reward[pending]

    def end_group_episodes(
        self,
        terminal: TerminalSteps,
        group_reward: np.ndarray,
        mates_reward: np.ndarray,
        next_mates_obs: np.ndarray,
        group_done: np.ndarray,
    ) -> tuple[Trajectories | None, EpisodeStats]:
        """``end_episodes`` for agents in groups. Per terminal row: its group reward and mates' rewards,
        its groupmates' rows now [n, M, row], and whether its whole group is done."""
        if len(terminal) == 0:
            return None, NO_EPISODES
        slots = self.agents.lookup(terminal.agent_id)
        self._pending_rewards(slots, group_reward, mates_reward)
        pending = self.steps.awaiting[slots].copy()
        traj, stats = self.end_episodes(terminal)
        if traj is not None:
            traj.extras["next_mates_obs"] = next_mates_obs[pending]
            traj.needs_bootstrap = terminal.interrupted[pending].astype(bool) | ~group_done[pending]
        return traj, stats

    def record_group_rewards(
        self, decision: DecisionSteps, group_reward: np.ndarray, mates_reward: np.ndarray, mates_obs: np.ndarray
    ) -> Trajectories | None:
        """``record_rewards`` for agents in groups; trajectories cut at time_horizon bootstrap from the group's
        value at the deciding step (computed by the trainer from ``next_obs`` and ``next_mates_obs``)."""
        slots = self.agents.lookup(decision.agent_id)
        self._pending_rewards(slots, group_reward, mates_reward)
        values = np.zeros((len(decision), self.num_streams), np.float32)
        traj = self.record_rewards(decision, values)
        if traj is not None:
            row = np.full(self.agents.slots.count, -1, np.int64)
            row[slots] = np.arange(len(slots))
            traj.extras["next_mates_obs"] = mates_obs[row[traj.slots]]
            traj.needs_bootstrap[:] = True
        return traj

    def store_group(
        self,
        decision: DecisionSteps,
        continuous: np.ndarray,
        discrete: np.ndarray,
        log_prob_parts: np.ndarray,
        mask: np.ndarray | None,
        mates_obs: np.ndarray,
        mates_continuous: np.ndarray,
        mates_discrete: np.ndarray,
        memories: np.ndarray | None = None,
    ) -> None:
        """Store the transitions begun now with the groupmates' rows and actions [n, M, ...] at this step (and
        the actor's input memories [n, m] with memory)."""
        values = np.zeros((len(decision), self.num_streams), np.float32)
        self.store(decision, continuous, discrete, log_prob_parts.sum(1), values, memories, mask)
        slots = self.agents.lookup(decision.agent_id)
        idx = self.steps.length[slots] - 1
        m = mates_obs.shape[1]
        if m > self.width:
            self._check_width(m)
            self.group.widen(MATE_COLUMNS, 1, m)
        g = self.group
        g.log_prob_parts[slots, idx] = log_prob_parts
        g.group_reward[slots, idx] = 0.0
        g.mates_reward[slots, idx] = 0.0
        if m < self.width:
            g.mates_obs[slots, idx] = np.nan
            g.mates_continuous[slots, idx] = 0.0
            g.mates_discrete[slots, idx] = 0
        g.mates_obs[slots, idx, :m] = mates_obs
        g.mates_continuous[slots, idx, :m] = mates_continuous
        g.mates_discrete[slots, idx, :m] = mates_discrete
