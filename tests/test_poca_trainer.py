"""MA-POCA's trainer (mlx.trainers.poca.trainer) on hand-made env steps: groupmates stored with each step,
group and individual rewards accounted as upstream, the bootstrap of an agent that leaves before its group
(posthumous credit) and of one whose whole group ended, lambda-returns and advantages against hand-computed
values, and a group of one for agents without a group."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlx.config import ExtrinsicSettings, POCASettings
from mlx.envs.api import ActionSpec, BaseEnv, BehaviorSpec, DecisionSteps, EnvError, ObservationSpec, TerminalSteps
from mlx.stat_names import GROUP_REWARD
from mlx.tracking.tracker import Tracker
from mlx.trainers.groups import ABSENT, gather_mates, groups_present, mates_index, mates_sum
from mlx.trainers.poca.returns import lambda_returns
from mlx.trainers.poca.trainer import POCATrainer
from mlx.trainers.registry import make_trainer
from mlx.training.loop import Loop
from mlx.training.summaries import Summaries

SPEC = BehaviorSpec((ObservationSpec((2,), "v"),), ActionSpec(discrete_branches=(3,)))
GAMMA, LAMBD = 0.9, 0.8
GROUP = 7  # agents 0, 1, 2; agent 9 is in no group


def trainer() -> POCATrainer:
    torch.manual_seed(0)
    settings = POCASettings()
    settings.hyperparameters.lambd = LAMBD
    settings.hyperparameters.buffer_size = 10_000  # never updates here
    t = make_trainer("T", SPEC, settings, {"extrinsic": ExtrinsicSettings(gamma=GAMMA)}, torch.device("cpu"), 0)
    assert isinstance(t, POCATrainer)
    return t


def obs(ids: list[int], t: int) -> list[np.ndarray]:
    """A distinct observation per agent and step."""
    return [np.array([[i + 0.1 * t, -i - 0.01 * t] for i in ids], np.float32).reshape(len(ids), 2)]


def decide(ids: list[int], t: int, reward: list[float], group_reward: list[float]) -> DecisionSteps:
    gid = [GROUP if i < 9 else 0 for i in ids]
    return DecisionSteps(
        obs(ids, t), np.array(reward, np.float32), np.array(ids, np.int32), None, np.array(gid), np.array(group_reward)
    )


def end(ids: list[int], t: int, reward: list[float], group_reward: list[float], interrupted: list[bool]):
    gid = [GROUP if i < 9 else 0 for i in ids]
    return TerminalSteps(
        obs(ids, t),
        np.array(reward, np.float32),
        np.array(ids, np.int32),
        np.array(interrupted),
        np.array(gid),
        np.array(group_reward, np.float32),
    )


NONE = end([], 0, [], [], [])


@pytest.fixture
def episode():
    """One group episode of agents 0, 1, 2 (group 7) and agent 9 (no group), recording every trajectory:
    t0 all decide; t1 rewards (agent 0: 1, agent 9: 0.5) and group reward 0.5; t2 agent 1 leaves (reward -1),
    its mates play on; t3 the group ends (group reward 2), agent 9 is interrupted, and all start again."""
    t = trainer()
    seen: list = []
    original = t._add_trajectories

    def spy(traj):
        original(traj)
        seen.append((traj, t._buffer[-1]))

    t._add_trajectories = spy  # type: ignore[method-assign]
    t.process(decide([0, 1, 2, 9], 0, [0, 0, 0, 0], [0, 0, 0, 0]), NONE)
    t.process(decide([0, 1, 2, 9], 1, [1, 0, 0, 0.5], [0.5, 0.5, 0.5, 0]), NONE)
    t.process(decide([0, 2, 9], 2, [0, 0, 0], [0, 0, 0]), end([1], 2, [-1], [0], [False]))
    stats_before = t.stats.summarise()
    ended = end([0, 2, 9], 3, [0, 0, 0], [2, 2, 0], [False, False, True])
    t.process(decide([0, 1, 2, 9], 0, [0, 0, 0, 0], [0, 0, 0, 0]), ended)
    by_slot = {}
    for traj, chunk in seen:
        for e, slot in enumerate(traj.slots):
            by_slot[int(slot)] = (traj, e, chunk)
    by_agent = {a: by_slot[int(t.agents.lookup(np.array([a]))[0])] for a in (0, 1, 2, 9)}
    return t, by_agent, stats_before, t.stats.summarise()


def rows_of(by_agent, agent: int, key: str) -> np.ndarray:
    traj, e, chunk = by_agent[agent]
    start = int(traj.lengths[:e].sum())
    return chunk[key][start : start + traj.lengths[e]]


def test_groupmates_of_one_step():
    gid = np.array([3, 0, 3, 3, 5])
    index = mates_index(gid)
    assert index.tolist() == [[2, 3], [ABSENT, ABSENT], [0, 3], [0, 2], [ABSENT, ABSENT]]
    mates = gather_mates(np.arange(5.0)[:, None], index, np.nan)[..., 0]
    np.testing.assert_array_equal(mates[0], [2, 3])
    assert np.isnan(mates[1]).all()
    np.testing.assert_array_equal(mates_sum(gid, [1, 2, 3, 4, 5]), [7, 0, 5, 4, 0])
    assert groups_present(gid, np.array([5])).tolist() == [False, False, False, False, True]
    assert mates_index(np.array([0, 0]), width=2).shape == (2, 2)


def test_every_step_holds_its_groupmates_rows_and_actions(episode):
    t, by_agent, _, _ = episode
    traj, e, _ = by_agent[0]
    mates = traj.extras["mates_obs"][e]  # [T, M, row]
    np.testing.assert_allclose(mates[0], obs([1, 2], 0)[0])  # t0: agents 1 and 2
    np.testing.assert_allclose(mates[2, 0], obs([2], 2)[0][0])  # t2: agent 1 has left: only agent 2
    assert np.isnan(mates[2, 1]).all()
    traj9, e9, _ = by_agent[9]
    assert np.isnan(traj9.extras["mates_obs"][e9, :3]).all()  # no group: no mates
    # The stored groupmate actions are the actions those mates took at that step.
    traj1, e1, _ = by_agent[1]
    assert traj.extras["mates_discrete"][e, 0, 0, 0] == traj1.discrete[e1, 0, 0]


def test_leaving_before_the_group_bootstraps_from_the_group_value(episode):
    t, by_agent, _, _ = episode
    traj, e, _ = by_agent[1]
    assert traj.needs_bootstrap[e]  # it ended (not interrupted) while agents 0 and 2 play on
    with torch.inference_mode():
        want = t.module.critic.value(torch.as_tensor(obs([1], 2)[0]), torch.as_tensor(obs([0, 2], 2)[0])[None])
    np.testing.assert_allclose(traj.bootstrap_value[e], want[0].numpy(), rtol=1e-5)
    assert traj.bootstrap_value[e, 0] != 0.0


def test_whole_group_ended_does_not_bootstrap_and_an_interruption_does(episode):
    t, by_agent, _, _ = episode
    for agent in (0, 2):
        traj, e, _ = by_agent[agent]
        assert not traj.needs_bootstrap[e] and traj.bootstrap_value[e, 0] == 0.0
    traj, e, _ = by_agent[9]  # alone and interrupted: its own value, no mates
    assert traj.needs_bootstrap[e]
    with torch.inference_mode():
        want = t.module.critic.value(torch.as_tensor(obs([9], 3)[0]), torch.zeros(1, 0, 2))
    np.testing.assert_allclose(traj.bootstrap_value[e], want[0].numpy(), rtol=1e-5)


def test_rewards_accounted_as_upstream(episode):
    t, by_agent, before, after = episode
    # The extrinsic stream: own + groupmates' individual rewards + group reward, per step.
    # Agent 0: t0 -> 1 + 0 + 0.5; t1 -> 0 + (agent 1's -1) + 0; t2 -> 0 + 0 + 2.
    np.testing.assert_allclose(rows_of(by_agent, 0, "returns")[:, 0], _returns(by_agent, 0, [1.5, -1.0, 2.0]))
    # Agent 1 left at t2: its steps get t0 -> 0 + (1 + 0) + 0.5 and t1 -> -1 + 0 + 0.
    np.testing.assert_allclose(rows_of(by_agent, 1, "returns")[:, 0], _returns(by_agent, 1, [1.5, -1.0]))
    np.testing.assert_allclose(rows_of(by_agent, 9, "returns")[:, 0], _returns(by_agent, 9, [0.5, 0.0, 0.0]))
    # Individual returns only in Environment/Cumulative Reward (agent 1 at t2; then 0, 2 and 9).
    assert before["Environment/Cumulative Reward"].mean == -1.0
    assert after["Environment/Cumulative Reward"].mean == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    # Group returns only for agents whose group ended with them: not agent 1 (left early), not agent 9.
    assert GROUP_REWARD not in before
    assert after[GROUP_REWARD].count == 2 and after[GROUP_REWARD].mean == pytest.approx(2.5)
    assert np.isfinite(after["Policy/Extrinsic Baseline Estimate"].mean)
    # ML-Agents' step count: one per agent decision.
    assert t.step == 4 + 4 + 3 + 4


def _returns(by_agent, agent: int, rewards: list[float]) -> np.ndarray:
    """Upstream's lambda-return over the stored values, bootstrapped as the trajectory says."""
    traj, e, _ = by_agent[agent]
    values = rows_of(by_agent, agent, "old_values")[:, 0]
    return lambda_returns(np.array(rewards), values, traj.bootstrap_value[e, 0], GAMMA, LAMBD)


def test_advantages_are_returns_minus_baselines(episode):
    _, by_agent, _, _ = episode
    for agent in (0, 1, 2, 9):
        returns = rows_of(by_agent, agent, "returns")
        baselines = rows_of(by_agent, agent, "old_baselines")
        np.testing.assert_allclose(rows_of(by_agent, agent, "advantages"), (returns - baselines).mean(1), atol=1e-6)


def test_update_runs_on_mixed_group_widths(episode):
    """Chunks of different groupmate widths pad into one buffer; an update changes the weights."""
    t, *_ = episode
    narrow = ("mates_obs", "mates_continuous", "mates_discrete")
    t._buffer.append({k: v[:, :1] if k in narrow else v for k, v in t._buffer[0].items()})
    before = [p.detach().clone() for p in t.module.parameters()]
    t.hp.batch_size = 4
    t.update()
    assert any(not torch.equal(a, b) for a, b in zip(before, t.module.parameters(), strict=True))
    summary = t.stats.summarise()
    for name in ("Losses/Policy Loss", "Losses/Value Loss", "Losses/Baseline Loss", "Policy/Explained Variance"):
        assert np.isfinite(summary[name].mean), name


class TwoBehaviours(BaseEnv):
    """Agents of behaviours A and B in one group (id 1); B's observation is ``b_size`` floats."""

    def __init__(self, b_size: int) -> None:
        self.specs = {"A": SPEC, "B": BehaviorSpec((ObservationSpec((b_size,), "v"),), SPEC.action_spec)}

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return self.specs

    def reset(self) -> None: ...

    def step(self) -> None: ...

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        size = self.specs[behavior_name].observation_specs[0].shape[0]
        agent = 0 if behavior_name == "A" else 1
        decision = DecisionSteps(
            [np.zeros((1, size), np.float32)], np.zeros(1, np.float32), np.array([agent]), None, np.array([1]), None
        )
        return decision, end([], 0, [], [], [])

    def set_actions(self, behavior_name: str, actions) -> None: ...


@pytest.mark.parametrize("b_size", [2, 3])
def test_a_group_across_behaviours_must_share_one_spec(tmp_path, b_size):
    """Mismatched groupmate specs are refused in one line naming the group and both behaviours; behaviours
    with one spec train side by side (each sees its own agents as groupmates, as upstream)."""
    env = TwoBehaviours(b_size)
    settings = POCASettings()
    settings.max_steps = 6
    trainers = {
        name: make_trainer(name, spec, settings, {"extrinsic": ExtrinsicSettings()}, torch.device("cpu"), 0)
        for name, spec in env.behavior_specs.items()
    }
    loop = Loop(env, trainers, dict.fromkeys(trainers, settings), Summaries(tmp_path / "stats.jsonl", Tracker()))
    if b_size == 2:
        loop.run()
        assert all(t.step >= 6 for t in trainers.values())
        return
    with pytest.raises(EnvError) as info:
        loop.run()
    message = str(info.value)
    assert "\n" not in message and "group 1" in message and "A and B" in message and "specs differ" in message


@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
def test_every_trainer_reports_group_returns(trainer_type):
    """PPO and SAC ignore group rewards when learning (as upstream) but report them, so that a group env's
    score (its mean group reward) reads the same whichever trainer ran."""
    from mlx.config import TRAINER_SETTINGS

    t = make_trainer(
        "T", SPEC, TRAINER_SETTINGS[trainer_type](), {"extrinsic": ExtrinsicSettings()}, torch.device("cpu")
    )
    t.process(decide([0, 1, 2, 9], 0, [0, 0, 0, 0], [0, 0, 0, 0]), NONE)
    t.process(decide([0, 1, 2, 9], 1, [1, 0, 0, 0.5], [0.5, 0.5, 0.5, 0]), NONE)
    t.process(decide([0, 2, 9], 2, [0, 0, 0], [0, 0, 0]), end([1], 2, [-1], [0], [False]))
    t.process(decide([0, 1, 2, 9], 0, [0] * 4, [0] * 4), end([0, 2, 9], 3, [0, 0, 0], [2, 2, 0], [False, False, True]))
    summary = t.stats.summarise()
    assert summary[GROUP_REWARD].count == 2 and summary[GROUP_REWARD].mean == pytest.approx(2.5)
    assert summary["Environment/Cumulative Reward"].count == 4  # individual: agent 1, then 0, 2 and 9


def test_a_group_too_large_for_memory_is_refused_in_one_line(monkeypatch):
    """Groupmates' rows are stored with every pending step: a group that would not fit is refused by name."""
    from mlx.errors import TrainingError

    t = trainer()
    monkeypatch.setenv("MLX_MEMORY_BYTES", str(50_000))  # then the machine has 50 kB
    ids = list(range(8))
    step = DecisionSteps(obs(ids, 0), np.zeros(8, np.float32), np.array(ids), None, np.full(8, 3), None)
    with pytest.raises(TrainingError) as info:
        t.process(step, NONE)
    assert "the env's group size=8 needs" in str(info.value) and "time_horizon" in str(info.value)
    assert "\n" not in str(info.value)
