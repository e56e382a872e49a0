"""Self-play (mlx.trainers.ghost): ELO as upstream, the controller's team queue, the ghost trainer's
snapshot window, swap schedule, play-against-latest ratio, team rotation with an env reset, ELO updates on
wins, losses and draws but not timeouts, and a resume that keeps ELO, snapshots, opponents and the learning
team. Driven on Duel (tests/duel_env.py), a two-team env small enough to run thousands of steps a second."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from duel_env import BEHAVIOR, AsymmetricDuel, DuelEnv

from mlx.config import TRAINER_SETTINGS, ExtrinsicSettings, SelfPlaySettings, TrainerSettings
from mlx.envs.api import ActionTuple, DecisionSteps, TerminalSteps
from mlx.errors import ConfigError
from mlx.modes.match import Tally, wilson
from mlx.stat_names import ELO
from mlx.tracking.tracker import Tracker
from mlx.trainers.ghost import GhostController, GhostTrainer, with_self_play
from mlx.trainers.ghost.elo import elo_change, expected_score, game_result
from mlx.trainers.registry import make_trainer
from mlx.training.loop import Loop
from mlx.training.summaries import Summaries


def settings(trainer: str = "ppo", **self_play: float) -> TrainerSettings:
    s = TRAINER_SETTINGS[trainer]()
    s.hyperparameters.batch_size = 64
    s.hyperparameters.buffer_size = 256
    s.network_settings.hidden_units = 16
    s.network_settings.num_layers = 1
    s.time_horizon = 16
    if trainer == "sac":
        s.hyperparameters.steps_per_update = 20  # SAC's default 1 would take 320 updates in the test below
    s.summary_freq = 10**9
    s.self_play = SelfPlaySettings(**self_play)  # type: ignore[arg-type]
    return s


def ghost(
    env: DuelEnv, controller: GhostController | None = None, seed: int = 0, trainer: str = "ppo", **self_play: float
) -> GhostTrainer:
    torch.manual_seed(seed)
    s = settings(trainer, **self_play)
    inner = make_trainer(BEHAVIOR, env.spec, s, {"extrinsic": ExtrinsicSettings()}, torch.device("cpu"), seed)
    assert s.self_play is not None
    return GhostTrainer(inner, s.self_play, env.teams(BEHAVIOR), controller or GhostController(), seed)


def play(env: DuelEnv, trainer: GhostTrainer, steps: int, loop: Loop | None = None) -> None:
    """Env steps with the ghost acting for both teams (and learning when ready), as the run loop does."""
    for _ in range(steps):
        env.set_actions(BEHAVIOR, trainer.process(*env.get_steps(BEHAVIOR)))
        env.step()
        if trainer.ready_to_update():
            trainer.update()
        if trainer.reset_requested:
            env.reset()
            trainer.reset_trajectories()


# ---- ELO --------------------------------------------------------------------------------------------
def test_elo_is_upstreams_without_a_k_factor():
    assert expected_score(1200, 1200) == pytest.approx(0.5)
    assert expected_score(1600, 1200) == pytest.approx(1 / (1 + 10 ** (-1)))
    assert expected_score(10**6, 0) == pytest.approx(1.0)  # no overflow
    assert [game_result(r) for r in (2.0, -0.5, 0.0)] == [1.0, 0.0, 0.5]
    assert elo_change(1200, 1200, 1.0) == pytest.approx(0.5)
    assert elo_change(1200, 1200, 0.0) == pytest.approx(-0.5)
    assert elo_change(1200, 1200, 0.5) == pytest.approx(0.0)
    assert elo_change(1400, 1200, 0.5) < 0  # a draw against a weaker player costs rating


# ---- the controller ---------------------------------------------------------------------------------
def test_controller_rotates_the_learning_team_and_queues_newcomers():
    c = GhostController()
    a, b = object(), object()
    c.subscribe(0, a)  # type: ignore[arg-type]
    c.subscribe(1, b)  # type: ignore[arg-type]
    c.subscribe(1, b)  # type: ignore[arg-type]
    assert c.learning_team == 0 and list(c.queue) == [1]
    c.change_learning_team()
    assert c.learning_team == 0 and c.reset_requested  # asked for: it happens with the env reset
    c.apply_change()
    c.apply_change()  # once per request
    assert c.learning_team == 1 and list(c.queue) == [0] and not c.reset_requested and c.changes == 1
    c.subscribe(2, a)  # type: ignore[arg-type]  # a team first seen mid-run waits its turn
    for _ in range(2):
        c.change_learning_team()
        c.apply_change()
    assert c.learning_team == 2 and list(c.queue) == [1, 0]
    restored = GhostController()
    restored.load_state(c.state())
    restored.subscribe(0, a)  # type: ignore[arg-type]  # already queued: not twice
    assert restored.learning_team == 2 and list(restored.queue) == [1, 0]


# ---- the ghost trainer ------------------------------------------------------------------------------
def test_learning_team_rows_train_and_the_others_play_frozen_snapshots():
    env = DuelEnv(num_areas=4)
    g = ghost(env)
    env.reset()
    play(env, g, 10)
    assert g.learning and g.controller.learning_team == 0
    assert g.step == 10 * 4  # only team 0's agents count as learning steps
    assert g.ghost_step == 10 * 4  # team 1's rows were played by the frozen opponent
    assert set(g.opponents) == {1}


@pytest.mark.parametrize("trainer", ["ppo", "sac", "poca"])
def test_every_trainer_plays_under_self_play(trainer):
    env = DuelEnv(num_areas=4)
    g = ghost(env, trainer=trainer, save_steps=50, team_change=120, swap_steps=30)
    env.reset()
    play(env, g, 80)  # 320 learning steps: updates, snapshots, swaps and two team changes
    assert g.controller.changes == 2 and len(g.snapshots) >= 3 and g.step == 320
    assert type(g.inner).__name__.lower().startswith(trainer)


def test_snapshot_window_is_a_ring_of_the_latest_policies():
    env = DuelEnv(num_areas=8)
    g = ghost(env, save_steps=40, window=3, team_change=10**6)
    env.reset()
    assert len(g.snapshots) == 1 and g.save_slot == 1  # the initial policy
    saves = []
    original = g._save_snapshot

    def spy():
        saves.append(g.step)
        original()

    g._save_snapshot = spy  # type: ignore[method-assign]
    play(env, g, 60)  # 8 learning steps a step, 480 in all
    assert saves == list(range(48, 481, 48))  # each time more than 40 steps passed since the last
    assert len(g.snapshots) == 3 and g.save_slot == (1 + len(saves)) % 3
    newest = g.snapshots[(g.save_slot - 1) % 3]
    latest = g._latest()
    assert all(torch.equal(newest[k], latest[k]) for k in latest)  # saved at the last step


def test_snapshots_follow_the_updates():
    env = DuelEnv(num_areas=8)
    g = ghost(env, save_steps=10, team_change=10**6)
    env.reset()
    first = g.snapshots[0]
    play(env, g, 40)  # one update at 256 steps
    changed = [k for k in first if not torch.equal(first[k], g._latest()[k])]
    assert changed, "the policy learnt, so the latest weights differ from the first snapshot"


def test_swaps_happen_every_swap_steps_of_the_opponents():
    env = DuelEnv(num_areas=4)
    g = ghost(env, swap_steps=20, team_change=10**6, save_steps=10**6)
    env.reset()
    swaps = []
    original = g._swap

    def spy():
        swaps.append(g.ghost_step)
        original()

    g._swap = spy  # type: ignore[method-assign]
    play(env, g, 30)  # 4 opponent rows a step
    assert swaps == [24, 48, 72, 96, 120]  # the first step past each 20 since the last swap


def test_play_against_latest_ratio_is_the_chance_of_the_latest_policy():
    env = DuelEnv(num_areas=2)
    g = ghost(env, play_against_latest_model_ratio=0.3, window=5)
    for _ in range(4):
        g._save_snapshot()
    drawn = []
    for _ in range(4000):
        g._swap()
        drawn.append(g.current_opponent)
    drawn = np.array(drawn)
    latest = float(np.mean(drawn == -1))
    assert abs(latest - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 4000)  # within 4 standard errors
    counts = np.bincount(drawn[drawn >= 0], minlength=5)
    assert len(counts) == 5 and counts.min() > 0.8 * counts.mean()  # snapshots drawn uniformly


def test_team_change_rotates_the_learning_team_and_resets_the_env():
    env = DuelEnv(num_areas=4)
    resets = []
    original = env.reset

    def spy():
        resets.append(1)
        original()

    env.reset = spy  # type: ignore[method-assign]
    g = ghost(env, team_change=40, save_steps=10**6)
    env.reset()
    learners = []
    for _ in range(40):
        play(env, g, 1)
        learners.append(g.controller.learning_team)
    # 4 learning steps per env step: the team changes on the first step past 40 learning steps of a team
    assert learners[:10] == [0] * 10 and learners[10] == 1 and learners[21] == 0 and learners[32] == 1
    assert len(resets) == 1 + 3  # the first reset and one per change
    assert not g.reset_requested
    assert g.step == 40 * 4  # both teams' learning steps count: one policy plays both sides


def _decide(teams: list[int]) -> DecisionSteps:
    n = len(teams)
    return DecisionSteps([np.zeros((n, 4), np.float32)], np.zeros(n, np.float32), np.arange(n), None, None, None,
                         np.array(teams))  # fmt: skip


def _end(ids: list[int], reward: list[float], interrupted: list[bool], teams: list[int], group=None, group_reward=None):
    n = len(ids)
    return TerminalSteps(
        [np.zeros((n, 4), np.float32)], np.array(reward, np.float32), np.array(ids), np.array(interrupted),
        None if group is None else np.array(group),
        None if group_reward is None else np.array(group_reward, np.float32),
        np.array(teams),
    )  # fmt: skip


def test_elo_moves_on_wins_losses_and_draws_but_not_on_timeouts():
    env = DuelEnv(num_areas=1)
    g = ghost(env, play_against_latest_model_ratio=0.0, initial_elo=1200)
    g.current_opponent = 0  # an old snapshot, rated in slot 0
    g._rate_games(_decide([0, 1]), _end([0], [1.0], [False], [0]))
    assert g.current_elo == pytest.approx(1200.5) and g.elos[0] == pytest.approx(1199.5)
    g._rate_games(_decide([0, 1]), _end([0], [-1.0], [False], [0]))
    assert g.current_elo < 1200.5
    before = (g.current_elo, g.elos[0])
    g._rate_games(_decide([0, 1]), _end([0], [0.0], [False], [0]))  # a draw at nearly equal ratings
    assert abs(g.current_elo - before[0]) < 0.01
    before = (g.current_elo, g.elos[0])
    g._rate_games(_decide([0, 1]), _end([0], [1.0], [True], [0]))  # a timeout: no rating change
    assert (g.current_elo, g.elos[0]) == before
    # a group game counts when the whole group is done; the group reward decides with the individual one
    g._rate_games(_decide([5]), _end([0, 1], [0.0, 0.0], [False, False], [0, 0], [3, 3], [1.0, 1.0]))
    assert g.current_elo == pytest.approx(before[0] + 2 * 0.5, abs=0.01)
    before = (g.current_elo, g.elos[0])
    going_on = DecisionSteps([np.zeros((1, 4), np.float32)], np.zeros(1, np.float32), np.array([1]), None,
                             np.array([3]), np.zeros(1, np.float32), np.array([0]))  # fmt: skip
    g._rate_games(going_on, _end([0], [0.0], [False], [0], [3], [1.0]))  # a mate plays on: not a finished game
    assert (g.current_elo, g.elos[0]) == before
    # against the latest policy in a symmetric game the two changes cancel (upstream)
    g.current_opponent = -1
    g._rate_games(_decide([0, 1]), _end([0], [1.0], [False], [0]))
    assert g.current_elo == before[0]
    assert g.inner.stats.summarise()[ELO].count == 6  # one per rated game of an agent


def test_elo_rises_as_the_policy_beats_its_old_snapshots():
    env = DuelEnv(num_areas=16, seed=3)
    g = ghost(env, seed=3, save_steps=2000, swap_steps=400, team_change=4000, window=5)
    env.reset()
    play(env, g, 1500)  # 24k learning steps
    assert g.current_elo > 1200 + 10


def test_a_resumed_ghost_keeps_elo_snapshots_opponents_and_learning_team():
    env = DuelEnv(num_areas=4)
    g = ghost(env, save_steps=30, team_change=50, swap_steps=10, window=4, play_against_latest_model_ratio=0.0)
    env.reset()
    play(env, g, 60)
    g.elos[-1] = 1234.5
    state = g.state_dict()
    fresh_env = DuelEnv(num_areas=4)
    h = ghost(fresh_env, seed=9, save_steps=30, team_change=50, swap_steps=10, window=4,
              play_against_latest_model_ratio=0.0)  # fmt: skip
    h.load_state_dict(state)
    assert h.current_elo == 1234.5 and h.elos == g.elos
    assert h.controller.state() == g.controller.state()
    assert len(h.snapshots) == len(g.snapshots)
    for a, b in zip(h.snapshots, g.snapshots, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    for team, weights in g.playing.items():
        assert all(torch.equal(weights[k], h.playing[team][k]) for k in weights)
    for key in ("save_slot", "current_opponent", "last_save", "last_swap", "ghost_step", "last_team_change", "step"):
        assert getattr(h, key) == getattr(g, key), key
    assert h.rng.uniform() == g.rng.uniform()  # the next opponent draw is the same
    other = ghost(DuelEnv(num_areas=4), window=3)
    with pytest.raises(ValueError, match="window"):
        other.load_state_dict(state)


def test_a_team_first_seen_mid_run_waits_in_the_queue():
    env = DuelEnv(num_areas=2)
    g = ghost(env)
    decision = _decide([0, 1, 2, 2])
    actions = g.process(decision, _end([], [], [], []))
    assert isinstance(actions, ActionTuple) and actions.discrete.shape == (4, 1)
    assert g.controller.learning_team == 0 and list(g.controller.queue) == [1, 2] and 2 in g.opponents


def test_self_play_on_an_env_with_one_team_is_refused():
    env = DuelEnv(num_areas=2, teams=1)
    s = settings()
    inner = make_trainer(BEHAVIOR, env.spec, s, {"extrinsic": ExtrinsicSettings()}, torch.device("cpu"), 0)
    with pytest.raises(ConfigError, match=r"trainer.self_play: env duel has one team \(Duel: team 0\)"):
        with_self_play({BEHAVIOR: inner}, lambda _: s, env, "duel", 0)


def test_the_console_line_ends_with_the_elo(tmp_path, capsys):
    env = DuelEnv(num_areas=8)
    g = ghost(env)
    s = settings()
    s.summary_freq = 200
    loop = Loop(env, {BEHAVIOR: g}, {BEHAVIOR: s}, Summaries(tmp_path / "stats.jsonl", Tracker()))  # type: ignore[dict-item]
    s.max_steps = 400
    loop.run()
    lines = [line for line in capsys.readouterr().out.splitlines() if "Mean Reward" in line]
    assert lines and all(line.endswith(".") and " Training. ELO: " in line for line in lines), lines


# ---- mode=evaluate's matches ---------------------------------------------------------------------------
def test_a_match_counts_each_teams_game_once_and_timeouts_apart():
    tally = Tally()
    # agents 0, 1 are one team's group 3 (a goal: group reward +1), agent 2 in no group loses, agent 4 draws
    tally.add(_decide([0]), _end([0, 1, 2, 4], [0, 0, -1, 0], [False] * 4, [0] * 4, [3, 3, 0, 0], [1, 1, 0, 0]))
    assert (tally.wins, tally.draws, tally.losses, tally.timeouts) == (1, 1, 1, 0)
    tally.add(_decide([0]), _end([0, 1, 2], [0, 0, 0], [True] * 3, [0] * 3, [3, 3, 0], [0, 0, 0]))
    assert tally.timeouts == 2 and tally.games == 5
    report = tally.report()
    assert report["win_rate_decided"] == 0.5 and report["win_rate_all"] == 0.2
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)
    assert wilson(100, 100)[1] == pytest.approx(1.0) and wilson(100, 100)[0] == pytest.approx(0.963, abs=1e-3)


def test_two_behaviours_take_turns_under_one_controller():
    """An asymmetric game: each behaviour has its own trainer and swap_steps; while one learns, the other
    is played by its snapshots and its trainer waits; ELO moves between the two."""
    env = AsymmetricDuel(num_areas=4)
    controller = GhostController()
    ghosts = {}
    for name, swap in (("Left", 10), ("Right", 40)):
        s = settings(save_steps=30, team_change=60, swap_steps=swap)
        inner = make_trainer(
            name, env.behavior_specs[name], s, {"extrinsic": ExtrinsicSettings()}, torch.device("cpu"), 0
        )
        assert s.self_play is not None
        ghosts[name] = GhostTrainer(inner, s.self_play, env.teams(name), controller, 0)
    env.reset()
    learning = []
    for _ in range(60):
        for name, g in ghosts.items():
            env.set_actions(name, g.process(*env.get_steps(name)))
        env.step()
        for g in ghosts.values():
            if g.ready_to_update():
                g.update()
        if controller.reset_requested:
            env.reset()
            for g in ghosts.values():
                g.reset_trajectories()
        learning.append(controller.learning_team)
    assert learning[0] == 0 and 1 in learning and controller.changes >= 2
    left, right = ghosts["Left"], ghosts["Right"]
    assert left.step + right.step == 60 * 4  # one behaviour learns at a time, 4 agents a step
    assert left.step >= 60 and right.step >= 60
    assert left.ghost_step + right.ghost_step == 60 * 4  # the other one's rows were played by snapshots
    assert left.current_elo != 1200.0 or right.current_elo != 1200.0 or left.elos != right.elos


def test_a_corrupt_self_play_state_in_a_checkpoint_is_one_line(tmp_path):
    """A checkpoint whose self-play part was damaged (hand-edited, truncated state) refuses the resume
    with one RunError line, as any checkpoint that does not fit its trainer."""
    from mlx.errors import RunError
    from mlx.training.checkpoints import atomic_torch_save, resume_trainer

    env = DuelEnv(num_areas=2)
    g = ghost(env)
    for damage in ({"elos": "high"}, {"controller": None}, {"snapshots": [{"actor.x": torch.zeros(1)}]}):
        state = g.state_dict()
        state["self_play"] = {**state["self_play"], **damage}
        path = tmp_path / "checkpoint.pt"
        atomic_torch_save({"trainer": state, "behavior": BEHAVIOR, "time_elapsed": 0.0}, path)
        with pytest.raises(RunError, match="does not fit this run's Duel trainer"):
            resume_trainer(ghost(DuelEnv(num_areas=2)), path)  # type: ignore[arg-type]


def test_a_behaviour_past_its_max_steps_hands_learning_on_at_once():
    """Left learns first and reaches its max_steps long before team_change: Right learns from the next
    reset instead of waiting out team_change steps (it still trains; Left only acts from then on)."""
    env = AsymmetricDuel(num_areas=4)
    controller = GhostController()
    ghosts = {}
    for name in ("Left", "Right"):
        s = settings(save_steps=30, team_change=10_000, swap_steps=10)
        s.max_steps = 40
        inner = make_trainer(
            name, env.behavior_specs[name], s, {"extrinsic": ExtrinsicSettings()}, torch.device("cpu"), 0
        )
        assert s.self_play is not None
        ghosts[name] = GhostTrainer(inner, s.self_play, env.teams(name), controller, 0)
    env.reset()
    for _ in range(40):
        for name, g in ghosts.items():
            env.set_actions(name, g.process(*env.get_steps(name)))
        env.step()
        if controller.reset_requested:
            env.reset()
            for g in ghosts.values():
                g.reset_trajectories()
    left, right = ghosts["Left"], ghosts["Right"]
    assert controller.changes == 1 and controller.learning_team == 1  # one hand-over, well before team_change
    assert left.step == 40 and right.step >= 40  # each learnt its max_steps (4 agents a step)
