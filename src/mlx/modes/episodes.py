"""Episode bookkeeping of the modes: returns and lengths as agents report them (watch), the fairly
sampled episodes evaluate counts, and the episodes record writes to a .demo file."""

from __future__ import annotations

import numpy as np

from mlx.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, IdMap, TerminalSteps
from mlx.formats.demo import DemoEpisode


class EpisodeCounter:
    """The returns of one behaviour's first ``wanted`` episodes in the order they *start*.

    Taking the first episodes to *end* would favour short ones: with many areas, quick successes (or quick
    falls) end before long episodes do, and the mean would be biased. An episode is counted or not when it
    starts, which depends only on earlier episodes, so the counted ones are a fair sample; evaluation then
    runs until every counted episode has ended.
    """

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.started = 0
        self.running: dict[int, list[float]] = {}  # agent -> [return, length, group return] (account_episodes)
        self.counted: set[int] = set()  # agents whose running episode is counted
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.group_returns: list[float] = []  # group rewards of counted episodes whose group ended with them
        self.grouped = False  # whether any agent belonged to a group (its behaviour is scored by group reward)

    @property
    def done(self) -> bool:
        return self.started >= self.wanted and not self.counted

    def _claim(self) -> bool:
        """Whether an episode starting now is counted."""
        counted = self.started < self.wanted
        self.started += counted
        return counted

    def add(self, decision: DecisionSteps, terminal: TerminalSteps) -> None:
        """One step of the behaviour: close the episodes that ended, then add the decisions' rewards."""
        ended_ids = terminal.agent_id.tolist()
        ended = set(ended_ids)
        # An episode starts at an agent's first decision, or its first after its previous episode ended.
        starts = [a for a in decision.agent_id.tolist() if a not in self.running or a in ended]
        # An episode that ends before any decision of it was seen starts and ends now.
        keep = [a in self.counted if a in self.running else self._claim() for a in ended_ids]
        self.counted.difference_update(ended_ids)
        # As training's Group Cumulative Reward: an agent's group rewards count when its group ended with it
        # (no groupmate carries on), not when it alone ended early (a sacrificed or dead agent).
        going_on = [a in self.running and a not in ended for a in decision.agent_id.tolist()]
        d_gid = decision.group_id.tolist() if decision.group_id is not None else [0] * len(decision)
        carried = {g for g, on in zip(d_gid, going_on, strict=True) if on}
        t_gid = terminal.group_id.tolist() if terminal.group_id is not None else [0] * len(terminal)
        group_done = [g != 0 and g not in carried for g in t_gid]
        returns: list[float] = []
        lengths: list[int] = []
        group_returns: list[float] = []
        account_episodes(self.running, decision, terminal, returns, lengths, group_returns)
        self.returns += [r for r, k in zip(returns, keep, strict=True) if k]
        self.lengths += [n for n, k in zip(lengths, keep, strict=True) if k]
        self.group_returns += [g for g, k, d in zip(group_returns, keep, group_done, strict=True) if k and d]
        self.grouped = self.grouped or any(
            s.group_id is not None and bool(s.group_id.any()) for s in (decision, terminal)
        )
        self.counted.update(a for a in starts if self._claim())


def account_episodes(
    running: dict[int, list[float]],
    decision: DecisionSteps,
    terminal: TerminalSteps,
    returns: list[float],
    lengths: list[int],
    group_returns: list[float] | None = None,
) -> None:
    """Add each step's rewards to its agent's episode (its own, and the group rewards it received); close
    the episodes that ended."""
    t_group = _group_rewards(terminal)
    for agent, reward, group in zip(terminal.agent_id.tolist(), terminal.reward.tolist(), t_group, strict=True):
        total = running.pop(agent, [0.0, 0, 0.0])
        returns.append(total[0] + reward)
        lengths.append(int(total[1]))
        if group_returns is not None:
            group_returns.append(total[2] + group)
    d_group = _group_rewards(decision)
    for agent, reward, group in zip(decision.agent_id.tolist(), decision.reward.tolist(), d_group, strict=True):
        entry = running.setdefault(agent, [0.0, 0, 0.0])
        entry[0] += reward
        entry[1] += 1
        entry[2] += group


def _group_rewards(steps: DecisionSteps | TerminalSteps) -> list[float]:
    return steps.group_reward.tolist() if steps.group_reward is not None else [0.0] * len(steps)


class EpisodeRecorder:
    """Collects the steps of every agent of one behaviour and cuts them into complete episodes.

    Taking the first episodes to end would favour short ones (every area starts together), so a
    recording of n episodes takes the first k = ceil(n / m) episodes of each of the first m = min(n,
    agents) agents seen, which are as typical as any, and ``ready(n)`` says when they have all ended.
    Each env step appends its terminal rows, then its decision rows (with the actions chosen) to flat
    logs; ``episodes()`` sorts the log by agent (stably, so each agent's steps stay in time order) and
    splits it at terminal rows. No Python loop over agents: a few array operations per step.
    """

    def __init__(self, spec: BehaviorSpec) -> None:
        self.spec = spec
        self.completed = 0  # episodes ended so far, over all agents
        self.slots = IdMap()  # agent id -> the order in which agents were first seen
        self.ends = np.zeros(0, np.int64)  # episodes ended per agent slot
        self._chunks: list[dict[str, np.ndarray]] = []
        self._rows = 0

    def _seen(self, agent_id: np.ndarray) -> np.ndarray:
        slots = self.slots.lookup(np.asarray(agent_id, np.int64))
        if self.slots.count > len(self.ends):
            self.ends = np.concatenate([self.ends, np.zeros(self.slots.count - len(self.ends), np.int64)])
        return slots

    def _add(
        self,
        obs: list[np.ndarray],
        reward: np.ndarray,
        agent_id: np.ndarray,
        terminal: bool,
        interrupted: np.ndarray,
        actions: ActionTuple | None,
        mask: np.ndarray,
    ) -> None:
        n = len(agent_id)
        if n == 0:
            return
        a = self.spec.action_spec
        cont = np.zeros((n, a.continuous_size), np.float32) if actions is None else actions.continuous
        disc = np.zeros((n, a.discrete_size), np.int32) if actions is None else actions.discrete
        chunk = {f"obs{k}": np.asarray(o, np.float32) for k, o in enumerate(obs)}
        chunk.update(
            reward=np.asarray(reward, np.float32),
            slot=self._seen(agent_id),
            terminal=np.full(n, terminal),
            interrupted=np.asarray(interrupted, bool),
            continuous=np.asarray(cont, np.float32).reshape(n, a.continuous_size),
            discrete=np.asarray(disc, np.int32).reshape(n, a.discrete_size),
            mask=mask,
            order=self._rows + np.arange(n),
        )
        self._chunks.append(chunk)
        self._rows += n

    def record(self, decision: DecisionSteps, terminal: TerminalSteps, actions: ActionTuple | None) -> None:
        """One env step of this behaviour: its terminal steps, then its decisions and the actions taken."""
        width = sum(self.spec.action_spec.discrete_branches)
        self._add(
            terminal.obs,
            terminal.reward,
            terminal.agent_id,
            True,
            terminal.interrupted,
            None,
            np.ones((len(terminal), width), bool),
        )
        if len(terminal):
            np.add.at(self.ends, self._seen(terminal.agent_id), 1)
            self.completed += len(terminal)
        if len(decision):
            mask = (
                np.ones((len(decision), width), bool)
                if decision.action_mask is None or not width
                else np.concatenate(decision.action_mask, axis=1).astype(bool)
            )
            self._add(
                decision.obs, decision.reward, decision.agent_id, False, np.zeros(len(decision), bool), actions, mask
            )

    def _plan(self, n: int) -> tuple[int, int]:
        """(m agents, k episodes each) of a recording of n episodes."""
        m = max(1, min(n, self.slots.count))
        return m, -(-n // m)

    def ready(self, n: int) -> bool:
        """True once the first k episodes of each of the first m agents have ended (see the class)."""
        m, k = self._plan(n)
        return self.slots.count > 0 and bool((self.ends[:m] >= k).all())

    def episodes(self, n: int) -> list[DemoEpisode]:
        """``n`` episodes chosen as the class says (in order of episode number, then agent); when not
        ``ready(n)`` (a step limit came first), the complete ones of those, else the first to end."""
        if not self._chunks:
            return []
        log = {k: np.concatenate([c[k] for c in self._chunks]) for k in self._chunks[0]}
        order = np.lexsort((log["order"], log["slot"]))
        log = {k: v[order] for k, v in log.items()}
        terminal, slot = log["terminal"], log["slot"]
        ends = np.flatnonzero(terminal)
        # A row's episode starts after the latest end before it, or at its agent's first row.
        rows = np.arange(len(slot))
        after_end = np.maximum.accumulate(np.concatenate([[0], np.where(terminal[:-1], rows[1:], 0)]))
        first_row = np.maximum.accumulate(np.where(np.concatenate([[True], slot[1:] != slot[:-1]]), rows, 0))
        starts = np.maximum(after_end, first_row)[ends]
        # Each episode's number within its agent's episodes.
        agent_first_end = np.searchsorted(slot[ends], slot[ends], side="left")
        number = np.arange(len(ends)) - agent_first_end
        m, k = self._plan(n)
        chosen = (slot[ends] < m) & (number < k) & (ends > starts)  # at least one decision before the end
        if chosen.sum() >= n:
            pick = np.flatnonzero(chosen)[np.lexsort((slot[ends][chosen], number[chosen]))][:n]
        else:
            complete = np.flatnonzero(ends > starts)
            pick = complete[np.argsort(log["order"][ends[complete]], kind="stable")][:n]
        n_obs = len(self.spec.observation_specs)
        out = []
        for i in pick.tolist():  # one iteration per episode written, not per agent
            s, e = int(starts[i]), int(ends[i])
            out.append(
                DemoEpisode(
                    obs=[log[f"obs{j}"][s : e + 1] for j in range(n_obs)],
                    rewards=log["reward"][s : e + 1],
                    continuous=log["continuous"][s:e],
                    discrete=log["discrete"][s:e],
                    action_mask=log["mask"][s:e],
                    interrupted=bool(log["interrupted"][e]),
                )
            )
        return out
