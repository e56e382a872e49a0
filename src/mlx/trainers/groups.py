"""Agent groups (ML-Agents' SimpleMultiAgentGroup) at one env step, for every agent at once.

Group id 0 means "no group" (ML-Agents): such an agent is a group of one, with no mates. Rows are agents
of one env step; a row's mates are the other rows with its group id. Everything is index arithmetic on
sorted group ids: no Python loop over agents or groups.

``group_step`` is what every trainer reports about groups (``Environment/Group Cumulative Reward``: an
agent's group rewards over its episode, counted only when its whole group ended with it, as upstream);
MA-POCA also reads which agents carry their group on. The groupmate functions are MA-POCA's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlx.envs.api import BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.trainers.agents import Agents

NO_GROUP = 0
ABSENT = -1  # a mate slot with no agent in it


def mates_index(group_ids: np.ndarray, width: int = 0) -> np.ndarray:
    """[n, M] the row indices of each row's groupmates (the other rows with its nonzero group id), in row
    order, padded with ABSENT; M = max(width, largest group - 1)."""
    gid = np.asarray(group_ids).astype(np.int64, copy=False)
    n = len(gid)
    grouped = gid != NO_GROUP
    if not grouped.any():
        return np.full((n, width), ABSENT, np.int64)
    rows = np.flatnonzero(grouped)
    order = rows[np.argsort(gid[rows], kind="stable")]  # grouped rows, by group, in row order within one
    keys = gid[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    which = np.repeat(np.arange(len(starts)), sizes)  # each sorted row's group number
    rank = np.arange(len(order)) - starts[which]  # its place within its group
    width = max(width, int(sizes.max()) - 1)
    out = np.full((n, width), ABSENT, np.int64)
    if width == 0:
        return out
    # Mate j of the row at rank r is the group's member j (j < r) or j + 1 (j >= r), while it exists.
    j = np.arange(width)[None, :]
    member = j + (j >= rank[:, None])
    exists = member < sizes[which][:, None]
    source = starts[which][:, None] + np.where(exists, member, 0)
    out[order] = np.where(exists, order[source], ABSENT)
    return out


def gather_mates(values: np.ndarray, index: np.ndarray, fill: float) -> np.ndarray:
    """values [n, ...] -> [m, M, ...]: each row's mates' values (index from ``mates_index``), ``fill`` where
    a slot is ABSENT (NaN for observations, the critic's marker of an absent mate; 0 for actions)."""
    values = np.asarray(values)
    if not len(values):
        return np.full((*index.shape, *values.shape[1:]), fill, values.dtype)
    out = values[np.where(index == ABSENT, 0, index)]
    out[index == ABSENT] = fill
    return out


def mates_sum(group_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[n] the sum of ``values`` over each row's groupmates (its group's total minus its own); 0 without group."""
    gid = np.asarray(group_ids).astype(np.int64, copy=False)
    values = np.asarray(values, dtype=np.float64)
    if not len(gid):
        return np.zeros(0)
    _, inverse = np.unique(gid, return_inverse=True)
    totals = np.bincount(inverse, weights=values)
    return np.where(gid != NO_GROUP, totals[inverse] - values, 0.0)


def groups_present(group_ids: np.ndarray, among: np.ndarray) -> np.ndarray:
    """[n] True where a row's nonzero group id also occurs in ``among`` (some mate still plays on)."""
    gid = np.asarray(group_ids)
    return (gid != NO_GROUP) & np.isin(gid, among)


def mixed_groups(steps: dict[str, tuple[np.ndarray, BehaviorSpec]]) -> str | None:
    """The refusal for a group that holds agents of behaviours whose specs differ, or None.

    ``steps``: per behaviour, the group ids of this env step (decision and terminal rows) and its spec. A
    POCA critic reads every groupmate's observation and action with one network, so all of a group's agents
    must share one observation and action layout; agents of other behaviours with the same spec are simply
    not seen as groupmates (as upstream, whose groups are tracked per behaviour).
    """
    seen: dict[int, str] = {}
    for name, (group_ids, spec) in steps.items():
        for g in np.unique(group_ids[group_ids != NO_GROUP]).tolist():
            other = seen.setdefault(g, name)
            if other != name and steps[other][1] != spec:
                return (
                    f"group {g} holds agents of behaviours {other} and {name}, whose observation or action specs "
                    "differ; MA-POCA reads all of a group's agents with one critic, so a group's agents must share "
                    "one spec: put them in separate groups, or give them the same observations and actions"
                )
    return None


def group_ids(steps: DecisionSteps | TerminalSteps) -> np.ndarray:
    """The rows' group ids as int64 (all 0, no group, when the env sends none)."""
    gid = steps.group_id
    return np.zeros(len(steps), np.int64) if gid is None else np.asarray(gid).astype(np.int64, copy=False)


def group_rewards(steps: DecisionSteps | TerminalSteps) -> np.ndarray:
    """The rows' group rewards as float32 (0 when the env sends none)."""
    reward = steps.group_reward
    return np.zeros(len(steps), np.float32) if reward is None else np.asarray(reward, np.float32)


@dataclass
class GroupStep:
    """One env step seen through groups."""

    going_on: np.ndarray  # [decisions] True: already playing and did not end now (carries its group on)
    group_done: np.ndarray  # [terminals] True: no groupmate carries on (the group ended with this agent)
    returns: np.ndarray  # group returns of the terminal agents in a group whose group ended with them


def group_step(agents: Agents, decision: DecisionSteps, terminal: TerminalSteps) -> GroupStep:
    """Account one env step's group rewards per agent (``Agents.group``) and say who carries each group on.

    Terminal rows are taken first (an agent may end and start again in one step). An agent starting an
    episode (its first decision, or one removed earlier that its group's next episode brings back) does not
    carry its group on: a group whose other agents all ended now is done.
    """
    d_slots = agents.lookup(decision.agent_id)
    t_slots = agents.lookup(terminal.agent_id)  # both lookups before reading: one may grow the tables
    table = agents.group
    going_on = table.playing[d_slots]
    if len(terminal):
        going_on &= ~np.isin(decision.agent_id, terminal.agent_id)
    gid_t = group_ids(terminal)
    group_done = ~groups_present(gid_t, group_ids(decision)[going_on])
    table.returns[t_slots] += group_rewards(terminal)
    returns = table.returns[t_slots[group_done & (gid_t != NO_GROUP)]]
    table.returns[t_slots] = 0.0
    table.playing[t_slots] = False
    table.returns[d_slots] += group_rewards(decision)
    table.playing[d_slots] = True
    return GroupStep(going_on, group_done, returns)
