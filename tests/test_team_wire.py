"""Team ids over ML-Agents' gRPC protocol, both directions (``<Name>?team=<id>``).

The env side: ``mlx-env`` (here ``serve_env``, the same serving for an env outside the registry) sends a
multi-team behaviour as one wire behaviour per team and routes the actions back to each team's rows. The
trainer side: ``UnityEnv`` merges the teams into one batch (worker order, then team order), tags every row
with ``team_id`` and lists the teams in ``teams(name)``, accepting a team that first appears mid-run.

``DuelEnv`` is a tiny two-team native env written for these tests (no such env is in the registry yet).
Run as a script, this module is its env process:

    python tests/test_team_wire.py [MODE] --mlagents-port PORT [mlx-env's other arguments]

MODE ``duel`` (the default) serves DuelEnv through ``serve_env``. The others are fake env processes that
serve DuelEnv and, from their third message on, also send a copy of team 1's agents under another wire
behaviour: ``newteam`` as ``Duel?team=2`` (same spec), ``badteam`` as ``Duel?team=2`` with another action
spec, ``newname`` as ``Other?team=0``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from mlx.envs.api import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    ObservationSpec,
    TerminalSteps,
    unknown_behavior,
)
from mlx.envs.checker import check_env
from mlx.envs.unity.env import UnityEnv
from mlx.envs.unity.merge import WORKER_STRIDE, Part, concat
from mlx.envs.unity.remote import select_rows, team_column
from mlx.errors import ProtocolError

BEHAVIOR = "Duel"
GOAL = 3  # cells -GOAL..GOAL; team 0 wins at +GOAL, team 1 at -GOAL
MAX_STEPS = 8
SCRIPT = str(Path(__file__).resolve())


class DuelEnv(BaseEnv):
    """Two agents per area on a line of cells -3..3, agent id ``area * 2 + k`` in team k, group id
    ``agent id + 1`` (one group per area and team, as SoccerTwos' fields). Team 0 starts in -2..0 and wins by
    reaching +3, team 1 starts in 0..2 and wins at -3 (team 0 first if both do). Action: one branch (left,
    stay, right) and one continuous value whose magnitude costs reward; stepping into one's own wall is
    masked. Reward: -0.01 - 0.01 |c| per step, then +1 / -1 to the winner / loser (also as group reward); an
    episode reaching MAX_STEPS is interrupted. Team 1 of odd areas decides only at even steps of its
    episode, so the teams differ in size at some steps (its reward accumulates in between).
    Rows are in agent-id order, so the teams interleave: the wire must route them."""

    def __init__(self, num_areas: int = 3, seed: int = 0) -> None:
        n = num_areas
        self.num_areas = n
        self._rng = np.random.default_rng(seed)
        self._pos = np.zeros((n, 2), np.int64)
        self._t = np.zeros(n, np.int64)
        self._reward = np.zeros((n, 2), np.float32)  # earned since each agent's last decision
        self._move = np.zeros((n, 2), np.int64)
        self._cost = np.zeros((n, 2), np.float32)
        self._spec = BehaviorSpec((ObservationSpec((4,), "duel"),), ActionSpec(1, (3,)))
        self._steps: tuple[DecisionSteps, TerminalSteps] | None = None

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR: self._spec}

    def teams(self, behavior_name: str) -> tuple[int, ...]:
        if behavior_name != BEHAVIOR:
            raise unknown_behavior(behavior_name, [BEHAVIOR])
        return (0, 1)

    def _start(self, areas: np.ndarray) -> None:
        self._pos[areas, 0] = self._rng.integers(-2, 1, len(areas))
        self._pos[areas, 1] = self._rng.integers(0, 3, len(areas))
        self._t[areas] = 0
        self._reward[areas] = 0.0

    def _observe(self) -> np.ndarray:
        """[2 * areas, 4]: own cell, opponent's cell (both / GOAL), side (+1 team 0, -1 team 1), time."""
        n = self.num_areas
        side = np.broadcast_to(np.array([1.0, -1.0]), (n, 2))
        time = np.broadcast_to((self._t / MAX_STEPS)[:, None], (n, 2))
        obs = np.stack([self._pos / GOAL, self._pos[:, ::-1] / GOAL, side, time], axis=-1)
        return obs.reshape(2 * n, 4).astype(np.float32)

    def _publish(self, terminal: TerminalSteps) -> None:
        deciding = np.ones((self.num_areas, 2), bool)
        deciding[:, 1] = (np.arange(self.num_areas) % 2 == 0) | (self._t % 2 == 0)
        ids = np.flatnonzero(deciding.ravel())
        team, pos = ids % 2, self._pos.ravel()[ids]
        allowed = np.ones((len(ids), 3), bool)
        allowed[:, 0] = ~((team == 0) & (pos == -GOAL))
        allowed[:, 2] = ~((team == 1) & (pos == GOAL))
        flat_reward = self._reward.reshape(-1)
        reward = flat_reward[ids].copy()
        flat_reward[ids] = 0.0
        decision = DecisionSteps(
            [self._observe()[ids]],
            reward,
            ids,
            [allowed],
            group_id=ids + 1,
            group_reward=np.zeros(len(ids), np.float32),
            team_id=team,
        )
        self._steps = (decision, terminal)

    def reset(self) -> None:
        self._start(np.arange(self.num_areas))
        none = np.zeros(0, np.int64)
        empty = TerminalSteps(
            [np.zeros((0, 4), np.float32)], np.zeros(0, np.float32), none, np.zeros(0, bool), none, none, none
        )
        self._publish(empty)

    def step(self) -> None:
        if self._steps is None:
            raise EnvError("DuelEnv: call reset() first")
        self._pos = np.clip(self._pos + self._move, -GOAL, GOAL)
        self._reward -= np.float32(0.01) + np.float32(0.01) * self._cost
        self._move[:], self._cost[:] = 0, 0.0
        self._t += 1
        win0 = self._pos[:, 0] == GOAL
        won = win0 | (self._pos[:, 1] == -GOAL)
        result = (np.where(win0[:, None], [1.0, -1.0], [-1.0, 1.0]) * won[:, None]).astype(np.float32)
        self._reward += result
        timeout = (self._t >= MAX_STEPS) & ~won
        areas = np.flatnonzero(won | timeout)
        ids = (areas[:, None] * 2 + np.arange(2)).ravel()
        terminal = TerminalSteps(
            [self._observe()[ids]],
            self._reward.ravel()[ids].copy(),
            ids,
            np.repeat(timeout[areas], 2),
            group_id=ids + 1,
            group_reward=result.ravel()[ids],
            team_id=ids % 2,
        )
        self._start(areas)
        self._publish(terminal)

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        if behavior_name != BEHAVIOR:
            raise unknown_behavior(behavior_name, [BEHAVIOR])
        if self._steps is None:
            raise EnvError("DuelEnv: call reset() first")
        return self._steps

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        decision, _ = self.get_steps(behavior_name)
        n = len(decision)
        if len(actions) != n:
            raise EnvError(f"DuelEnv: {len(actions)} actions for {n} deciding agents")
        self._move.reshape(-1)[decision.agent_id] = np.asarray(actions.discrete).reshape(n, 1)[:, 0] - 1
        self._cost.reshape(-1)[decision.agent_id] = np.abs(np.asarray(actions.continuous).reshape(n, 1)[:, 0])


# ---- the env process (run as a script) ---------------------------------------------------------------------
def _make(num_areas: int, seed: int) -> DuelEnv:
    return DuelEnv(num_areas or 3, seed)


def _serve(argv: list[str]) -> int:
    from mlx.envs.unity.communicator_objects.messages_pb2 import UnityMessageProto
    from mlx.envs.unity.protocol import brain_parameters
    from mlx.envs.unity.remote import Session, serve_env
    from mlx.envs.unity.rpc import EnvClient

    mode = argv.pop(0) if argv and not argv[0].startswith("-") else "duel"
    if mode == "duel":
        return serve_env(_make, argv)
    wire, spec = {
        "newteam": ("Duel?team=2", ActionSpec(1, (3,))),
        "badteam": ("Duel?team=2", ActionSpec(0, (3,))),
        "newname": ("Other?team=0", ActionSpec(1, (3,))),
    }[mode]

    class AddsABehaviour(Session):
        """DuelEnv's process that, from its third message on, also sends team 1's agents as ``wire``
        (ids moved up by a million, so the trainer sees other agents); actions for it are dropped."""

        messages = 0

        def output(self) -> bytes:
            data = super().output()
            self.messages += 1
            if self.messages < 3:
                return data
            msg = UnityMessageProto.FromString(data)
            infos = msg.unity_output.rl_output.agentInfos
            copies = infos[wire].value
            for info in infos["Duel?team=1"].value:
                copy = copies.add()
                copy.CopyFrom(info)
                copy.id += 1_000_000
            if self.messages == 3:
                msg.unity_output.rl_initialization_output.brain_parameters.append(brain_parameters(wire, spec))
            return msg.SerializeToString()

    port = int(argv[argv.index("--mlagents-port") + 1])
    return AddsABehaviour(_make, EnvClient(port), timeout_wait=30).run()


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))


# ---- tests ---------------------------------------------------------------------------------------------------


def served(mode: str = "duel") -> list[str]:
    return [sys.executable, SCRIPT, mode]


def test_duel_env_is_a_valid_two_team_env():
    env = DuelEnv(4, 0)
    check_env(env)
    assert env.teams(BEHAVIOR) == (0, 1)


def _team_major(steps: DecisionSteps | TerminalSteps, worker: int) -> DecisionSteps | TerminalSteps:
    """A native batch as it arrives over the wire from worker ``worker``: team by team (stable), group ids
    moved to the worker's range."""
    out = select_rows(steps, np.argsort(steps.team_id, kind="stable"))
    out.group_id = np.where(out.group_id == 0, 0, out.group_id + worker * WORKER_STRIDE)
    return out


def _joined(batches: list) -> DecisionSteps | TerminalSteps:
    first = batches[0]
    fields = ("reward", "agent_id", "group_id", "group_reward", "team_id")
    cat = {k: np.concatenate([getattr(b, k) for b in batches]) for k in fields}
    obs = [np.concatenate([b.obs[0] for b in batches])]
    if isinstance(first, TerminalSteps):
        return TerminalSteps(obs, interrupted=np.concatenate([b.interrupted for b in batches]), **cat)
    mask = [np.concatenate([b.action_mask[0] for b in batches])]
    return DecisionSteps(obs, action_mask=mask, **cat)


@pytest.mark.parametrize("num_envs", [1, 2])
def test_two_teams_cross_the_wire_row_for_row(tmp_path, num_envs):
    """DuelEnv served by two env processes' worth of mlx-env steps as in-process: observations, rewards,
    masks, terminal steps, interruptions, team ids and group ids match row for row (each worker's rows team
    by team), actions reach the right agents, and each agent keeps one id through its episode."""
    remote = UnityEnv(
        command=served(), num_envs=num_envs, base_port=0, num_areas=3, seed=2, timeout_wait=30, log_folder=tmp_path
    )
    natives = [DuelEnv(3, 2 + w) for w in range(num_envs)]
    rng = np.random.default_rng(0)
    live: dict[tuple[int, int], int] = {}  # (worker, native id) -> the trainer's id
    seen = {"uneven": 0, "won": 0, "timeout": 0, "masked": 0}
    try:
        assert remote.teams(BEHAVIOR) == (0, 1)
        with pytest.raises(EnvError, match="unknown behaviour 'Nope'"):
            remote.teams("Nope")
        for env in natives:
            env.reset()
        for _ in range(40):
            d, t = remote.get_steps(BEHAVIOR)
            pairs = [env.get_steps(BEHAVIOR) for env in natives]
            want_d = _joined([_team_major(nd, w) for w, (nd, _) in enumerate(pairs)])
            want_t = _joined([_team_major(nt, w) for w, (_, nt) in enumerate(pairs)])
            for got, want in ((d, want_d), (t, want_t)):
                assert len(got) == len(want)
                np.testing.assert_array_equal(got.obs[0], want.obs[0])
                for field in ("reward", "team_id", "group_id", "group_reward"):
                    np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
            np.testing.assert_array_equal(d.action_mask[0], want_d.action_mask[0])
            np.testing.assert_array_equal(t.interrupted, want_t.interrupted)
            # Ids: an agent keeps the trainer's id through its episode, and no two live agents share one.
            native_t = [(w, i) for w, (_, nt) in enumerate(pairs) for i in _team_major(nt, w).agent_id.tolist()]
            native_d = [(w, i) for w, (nd, _) in enumerate(pairs) for i in _team_major(nd, w).agent_id.tolist()]
            for key, got_id in zip(native_t, t.agent_id.tolist(), strict=True):
                assert live.pop(key, got_id) == got_id
            for key, got_id in zip(native_d, d.agent_id.tolist(), strict=True):
                assert live.setdefault(key, got_id) == got_id
            assert len(set(live.values())) == len(live)
            # Actions drawn per native env (rows in agent-id order), given to the trainer team by team.
            chunks = []
            for env, (nd, _) in zip(natives, pairs, strict=True):
                action = ActionSpec(1, (3,)).random(len(nd), rng, nd.action_mask)
                env.set_actions(BEHAVIOR, action)
                order = np.argsort(nd.team_id, kind="stable")
                chunks.append((action.continuous[order], action.discrete[order]))
                seen["uneven"] += int((nd.team_id == 0).sum() != (nd.team_id == 1).sum())
            cont, disc = (np.concatenate(c) for c in zip(*chunks, strict=True))
            remote.set_actions(BEHAVIOR, ActionTuple(cont, disc))
            remote.step()
            for env in natives:
                env.step()
            seen["won"] += int((t.group_reward != 0).sum())
            seen["timeout"] += int(t.interrupted.sum())
            seen["masked"] += int((~d.action_mask[0]).sum())
        assert all(seen.values()), seen  # the steps covered uneven teams, wins, timeouts and masks
        assert remote.teams(BEHAVIOR) == (0, 1)
    finally:
        remote.close()


def test_a_team_that_appears_mid_run_is_accepted_tagged_and_listed(tmp_path):
    """A later message lists ``Duel?team=2`` (a fake env process copying team 1's agents): the trainer
    takes it with the behaviour's spec, tags its rows 2 after teams 0 and 1, and ``teams()`` grows."""
    env = UnityEnv(command=served("newteam"), base_port=0, num_areas=3, seed=2, timeout_wait=30, log_folder=tmp_path)
    rng = np.random.default_rng(1)
    try:
        listed = []
        for _ in range(8):
            listed.append(env.teams(BEHAVIOR))
            for batch in env.get_steps(BEHAVIOR):
                team = batch.team_id
                assert team is not None and len(team) == len(batch)
                assert (np.diff(team) >= 0).all()  # team order
                if listed[-1] == (0, 1, 2):
                    np.testing.assert_array_equal(batch.obs[0][team == 2], batch.obs[0][team == 1])
                    np.testing.assert_array_equal(batch.reward[team == 2], batch.reward[team == 1])
                    assert not set(batch.agent_id[team == 2].tolist()) & set(batch.agent_id[team != 2].tolist())
            decision, _ = env.get_steps(BEHAVIOR)
            env.set_actions(BEHAVIOR, ActionSpec(1, (3,)).random(len(decision), rng, decision.action_mask))
            env.step()
        assert listed[:2] == [(0, 1)] * 2 and listed[2:] == [(0, 1, 2)] * 6
        decision, _ = env.get_steps(BEHAVIOR)
        assert (decision.team_id == 2).sum() == (decision.team_id == 1).sum() > 0
    finally:
        env.close()


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (
            "badteam",
            r"Duel\?team=2 has spec .*continuous_size=0.* but behaviour Duel \(teams 0, 1\) has .*continuous_size=1",
        ),
        ("newname", r"behaviour Other appeared after training started"),
    ],
)
def test_a_mid_run_team_with_another_spec_or_a_new_name_is_one_error_line(tmp_path, mode, message):
    env = UnityEnv(command=served(mode), base_port=0, num_areas=3, seed=2, timeout_wait=30, log_folder=tmp_path)
    try:
        env.step()
        with pytest.raises(ProtocolError, match=message) as caught:
            env.step()
        assert "\n" not in str(caught.value)
    finally:
        env.close()


def test_merged_batches_carry_team_ids_even_when_empty():
    spec = DuelEnv().behavior_specs[BEHAVIOR]
    decision, terminal = concat(spec, [], [], [], tag_teams=True)
    assert decision.team_id.shape == (0,) and terminal.team_id.shape == (0,)
    decision, terminal = concat(spec, [], [], [])
    assert decision.team_id is None and terminal.team_id is None
    env = DuelEnv(2, 0)
    env.reset()
    env.step()
    d, t = env.get_steps(BEHAVIOR)
    parts = [(Part(0, "Duel?team=3", len(d), 3), d, t, d.agent_id, t.agent_id)]
    decision, terminal = concat(spec, parts, [d.agent_id], [t.agent_id], tag_teams=True)
    assert decision.team_id.tolist() == [3] * len(d) and terminal.team_id.tolist() == [3] * len(t)


def test_the_env_side_names_one_wire_behaviour_per_team_and_refuses_untagged_rows():
    from mlx.envs.native.basic import BasicEnv
    from mlx.envs.unity.communicator_objects.messages_pb2 import UnityMessageProto
    from mlx.envs.unity.remote import EpisodeIds, Session, WireIdSource

    class TeamOneBasic(BasicEnv):
        """Basic whose one team is 1 (as StrikersVsGoalie's Goalie): it may leave team_id None."""

        def teams(self, behavior_name: str) -> tuple[int, ...]:
            super().teams(behavior_name)
            return (1,)

    def wire_names(env: BaseEnv) -> dict[str, int]:
        session = Session(lambda n, s: env, client=None)  # type: ignore[arg-type]
        session.env, session.specs = env, env.behavior_specs
        source = WireIdSource()
        session.ids = {name: EpisodeIds(source) for name in session.specs}
        env.reset()
        out = UnityMessageProto.FromString(session.output()).unity_output
        assert {p.brain_name for p in out.rl_initialization_output.brain_parameters} == set(out.rl_output.agentInfos)
        return {name: len(agents.value) for name, agents in out.rl_output.agentInfos.items()}

    assert wire_names(BasicEnv(2, 0)) == {"Basic?team=0": 2}
    assert wire_names(TeamOneBasic(2, 0)) == {"Basic?team=1": 2}
    assert wire_names(DuelEnv(3, 0)) == {"Duel?team=0": 3, "Duel?team=1": 3}
    env = DuelEnv(3, 0)
    env.reset()
    decision, _ = env.get_steps(BEHAVIOR)
    with pytest.raises(EnvError, match=r"behaviour Duel has teams \[0, 1\] but its steps carry no team_id"):
        team_column(BEHAVIOR, dataclasses.replace(decision, team_id=None), (0, 1))
    with pytest.raises(EnvError, match="an agent is in team 1, but env.teams\\(\\) says \\[0, 2\\]"):
        team_column(BEHAVIOR, decision, (0, 2))
    shared = WireIdSource()
    c, e = EpisodeIds(shared), EpisodeIds(shared)
    assert not set(c.lookup(np.arange(3)).tolist()) & set(e.lookup(np.arange(3)).tolist())  # unique across behaviours


def test_the_shared_wire_helper_compares_multi_team_envs():
    """tests/wire.py's step_side_by_side (what the env ports' gRPC tests use) takes team order into account."""
    from tests.wire import random_actions, step_side_by_side

    absent, paid = step_side_by_side("duel", BEHAVIOR, 3, 30, random_actions(), False, served(), _make)
    assert absent and paid
