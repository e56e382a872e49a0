"""How the workers of a UnityEnv become one env: their batches concatenated, their agent ids renumbered.

Every worker's agents of a behaviour are concatenated into one DecisionSteps/TerminalSteps batch (worker
order, then team order: teams by number, each team's agents in the order its worker sent them); actions are
split back the same way (``Part`` records each piece). Once a behaviour has shown a team other than 0, both
of its batches carry ``team_id`` (each row's team, from its part's ``?team=<id>``) at every step, empty ones
included, so a self-play trainer can split rows by team; a behaviour only ever in team 0 leaves it None.

Unity gives an agent a new id every episode, per worker; trainers key their per-agent state on ids, so
``RecycledIds`` maps them to small stable numbers that are recycled when an episode ends. Group ids are per
worker too (each build numbers its groups from 1), so ``merged_group_ids`` makes them unique across workers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from mlx.envs.api import BehaviorSpec, DecisionSteps, TerminalSteps


class RecycledIds:
    """Wire agent ids (per worker; Unity's episode ids) -> small stable ids the trainers key on."""

    def __init__(self) -> None:
        self._maps: dict[int, dict[int, int]] = {}
        self._free: deque[int] = deque()
        self._next = 0
        self._released: list[int] = []

    def _new(self) -> int:
        if self._free:
            return self._free.popleft()
        self._next += 1
        return self._next - 1

    def end(self, worker: int, wire: np.ndarray) -> np.ndarray:
        """Ids of agents whose episode ended; their numbers are free again after this step."""
        m = self._maps.setdefault(worker, {})
        out = np.array([m.pop(i) if i in m else self._new() for i in wire.tolist()], dtype=np.int64)
        self._released.extend(out.tolist())
        return out

    def get(self, worker: int, wire: np.ndarray) -> np.ndarray:
        m = self._maps.setdefault(worker, {})
        out = []
        for i in wire.tolist():
            k = m.get(i)
            if k is None:
                k = m[i] = self._new()
            out.append(k)
        return np.array(out, dtype=np.int64)

    def begin_step(self) -> None:
        self._released = []

    def release(self) -> None:
        """Free the numbers of this step's ended episodes (before mapping this step's deciders, so an agent
        that ends an episode and starts the next in one step keeps its number)."""
        self._free.extend(self._released)
        self._released = []

    def retire(self, worker: int) -> None:
        """Forget a worker's agents without freeing their numbers (restart, reset): their trajectories
        were cut, and a new agent must not continue one."""
        self._maps.pop(worker, None)


# More than any wire group id (a 32-bit integer on the wire).
WORKER_STRIDE = 2**32


def merged_group_ids(worker: int, group_id: np.ndarray | None) -> np.ndarray | None:
    """A worker's group ids made unique across workers: 0 (no group) stays 0, id g becomes
    g + worker * WORKER_STRIDE (worker 0's ids as sent), the same whichever workers have agents at a step."""
    if group_id is None:
        return None
    gid = group_id.astype(np.int64)
    return np.where(gid == 0, 0, gid + worker * WORKER_STRIDE)


@dataclass
class Part:
    """The agents of one worker and one wire behaviour name within a merged batch."""

    worker: int
    wire_name: str
    n_decision: int
    team: int = 0


def concat(
    spec: BehaviorSpec,
    parts: list[tuple[Part, DecisionSteps, TerminalSteps, np.ndarray, np.ndarray]],
    d_ids: list[np.ndarray],
    t_ids: list[np.ndarray],
    tag_teams: bool = False,
) -> tuple[DecisionSteps, TerminalSteps]:
    """One behaviour's batches of several workers/teams, concatenated in part order; with ``tag_teams``
    both carry ``team_id`` (each part's team for its rows; zero-length arrays when there are no rows)."""
    n_obs = len(spec.observation_specs)
    if not parts:
        empty_obs = [np.zeros((0, *o.shape), np.float32) for o in spec.observation_specs]
        empty_mask = [np.zeros((0, b), bool) for b in spec.action_spec.discrete_branches] or None
        no_team = np.zeros(0, np.int64) if tag_teams else None
        return (
            DecisionSteps(empty_obs, np.zeros(0, np.float32), np.zeros(0, np.int64), empty_mask, team_id=no_team),
            TerminalSteps(
                list(empty_obs),
                np.zeros(0, np.float32),
                np.zeros(0, np.int64),
                np.zeros(0, bool),
                team_id=None if no_team is None else no_team.copy(),
            ),
        )
    decs = [p[1] for p in parts]
    terms = [p[2] for p in parts]
    for part, d, t, *_ in parts:
        d.group_id = merged_group_ids(part.worker, d.group_id)
        t.group_id = merged_group_ids(part.worker, t.group_id)
    if len(parts) == 1:
        dec, term = decs[0], terms[0]
        dec.agent_id, term.agent_id = d_ids[0], t_ids[0]
    else:
        dec = DecisionSteps(
            obs=[np.concatenate([d.obs[k] for d in decs]) for k in range(n_obs)],
            reward=np.concatenate([d.reward for d in decs]),
            agent_id=np.concatenate(d_ids),
            action_mask=_concat_masks(spec, decs),
            group_id=_concat_optional([d.group_id for d in decs], [len(d) for d in decs], np.int64),
            group_reward=_concat_optional([d.group_reward for d in decs], [len(d) for d in decs], np.float32),
        )
        term = TerminalSteps(
            obs=[np.concatenate([t.obs[k] for t in terms]) for k in range(n_obs)],
            reward=np.concatenate([t.reward for t in terms]),
            agent_id=np.concatenate(t_ids),
            interrupted=np.concatenate([t.interrupted for t in terms]),
            group_id=_concat_optional([t.group_id for t in terms], [len(t) for t in terms], np.int64),
            group_reward=_concat_optional([t.group_reward for t in terms], [len(t) for t in terms], np.float32),
        )
    if tag_teams:
        teams = np.array([p[0].team for p in parts], dtype=np.int64)
        dec.team_id = np.repeat(teams, [len(d) for d in decs])
        term.team_id = np.repeat(teams, [len(t) for t in terms])
    return dec, term


def _concat_masks(spec: BehaviorSpec, decs: list[DecisionSteps]) -> list[np.ndarray] | None:
    branches = spec.action_spec.discrete_branches
    if not branches or all(d.action_mask is None for d in decs):
        return None
    return [
        np.concatenate([d.action_mask[k] if d.action_mask is not None else np.ones((len(d), b), bool) for d in decs])
        for k, b in enumerate(branches)
    ]


def _concat_optional(arrays: list[np.ndarray | None], sizes: list[int], dtype: type) -> np.ndarray | None:
    if all(a is None for a in arrays):
        return None
    return np.concatenate([a if a is not None else np.zeros(n, dtype) for a, n in zip(arrays, sizes, strict=True)])
