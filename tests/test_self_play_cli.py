"""Self-play as users run it: over gRPC from env processes (team ids on the wire), killed and resumed with its
ELO, snapshots and learning team, evaluated as matches; and the settings it refuses, each in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from tests.conftest import assert_refused, run_mlx

SMALL = (
    "trainer.hyperparameters.batch_size=128",
    "trainer.hyperparameters.buffer_size=1024",
    "trainer.time_horizon=64",
    "trainer.self_play={save_steps:1000,team_change:2000,swap_steps:500,window:3}",
    "tracking=none",
    "progress=plain",
)


def status(workdir, run_id: str) -> dict:
    return json.loads((workdir / f"results/{run_id}/run_logs/training_status.json").read_text())


def test_tennis_trains_with_self_play_over_grpc_then_resumes_and_plays_matches(workdir):
    proc = run_mlx("trainer=ppo", "env=tennis", "env.subprocess=true", "env.num_envs=2", "env.num_areas=4",
                   "env.base_port=0", "trainer.max_steps=6000", "trainer.summary_freq=2000", "run_id=t", *SMALL,
                   cwd=workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [x for x in proc.stdout.splitlines() if "Mean Reward:" in x]
    assert lines and all(" Training. ELO: " in x for x in lines), proc.stdout[-2000:]
    elo = status(workdir, "t")["Tennis"]["elo"]
    assert isinstance(elo, float)
    saved = torch.load(workdir / "results/t/Tennis/checkpoint.pt", weights_only=False)["trainer"]["self_play"]
    assert saved["controller"]["changes"] >= 2 and len(saved["snapshots"]) == 3 and saved["elos"][-1] == elo

    again = run_mlx("run_id=t", "resume=true", "trainer.max_steps=8000", cwd=workdir)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = torch.load(workdir / "results/t/Tennis/checkpoint.pt", weights_only=False)["trainer"]["self_play"]
    assert resumed["controller"]["changes"] >= saved["controller"]["changes"]  # counted on, not from scratch
    assert resumed["ghost_step"] > saved["ghost_step"]

    match = run_mlx("mode=evaluate", "run_id=t", "evaluate.opponent=random", "evaluate.episodes=20", "tracking=none",
                    cwd=workdir)  # fmt: skip
    assert match.returncode == 0, match.stderr[-2000:]
    assert "Team 0 (the run's newest policy) against random: " in match.stdout
    report = json.loads((workdir / "results/t/run_logs/evaluation.json").read_text())["match"]
    assert report["games"] >= 20 and report["wins"] + report["draws"] + report["losses"] + report["timeouts"] >= 20
    older = sorted((workdir / "results/t/Tennis").glob("Tennis-*.onnx"))[0]
    mirror = run_mlx("mode=evaluate", "run_id=t", "evaluate.team=1", f"evaluate.opponent={older}",
                     "evaluate.episodes=10", "tracking=none", cwd=workdir)  # fmt: skip
    assert mirror.returncode == 0 and "Team 1 " in mirror.stdout, mirror.stderr[-2000:]


def test_self_play_on_an_env_with_one_team_is_refused(workdir):
    assert_refused(
        run_mlx("trainer=ppo", "env=3dball", "trainer.self_play={}", "tracking=none", cwd=workdir),
        "trainer.self_play: env 3dball has one team (3DBall: team 0)",
        "remove self_play",
    )


def test_bad_self_play_settings_are_refused_in_one_line(workdir):
    assert_refused(
        run_mlx("trainer=ppo", "env=tennis", "trainer.self_play={window:0}", "tracking=none", cwd=workdir),
        "trainer.self_play.window must be > 0",
    )
    assert_refused(
        run_mlx("trainer=ppo", "env=tennis", "trainer.self_play={swap_step:5}", "tracking=none", cwd=workdir),
        "trainer.self_play.swap_step",
    )
    evaluate = ("mode=evaluate", "run_id=x", "evaluate.opponent=random", "evaluate.policy=random", "tracking=none")
    assert_refused(run_mlx("env=tennis", "evaluate.team=5", *evaluate, cwd=workdir), "evaluate.team=5")


def test_soccertwos_from_an_mlx_env_process_trains_poca_with_self_play(workdir):
    """env=unity launching `mlx-env soccertwos` (what a Unity build of SoccerTwos would be): the two teams
    arrive as SoccerTwos?team=0 and ?team=1, and POCA + self-play trains one while the other plays snapshots."""
    launcher = str(Path(sys.executable).parent / "mlx-env")
    proc = run_mlx("trainer=poca", "env=unity", f"env.path={launcher}", "env.env_args=[soccertwos]",
                   "tuned=soccertwos_poca", "env.num_areas=2", "env.base_port=0", "trainer.max_steps=4000",
                   "trainer.summary_freq=2000", "trainer.time_horizon=64", "run_id=s",
                   "trainer.hyperparameters.batch_size=128", "trainer.hyperparameters.buffer_size=1024",
                   "trainer.network_settings.hidden_units=32",
                   "trainer.self_play={save_steps:500,team_change:1000,swap_steps:200,window:3}",
                   "tracking=none", "progress=plain", cwd=workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = torch.load(workdir / "results/s/SoccerTwos/checkpoint.pt", weights_only=False)["trainer"]
    play = saved["self_play"]
    assert saved["step"] >= 4000 and play["ghost_step"] >= 3000  # the other team's rows were the snapshots'
    assert play["controller"]["changes"] >= 3 and sorted(play["teams"]) == [0, 1]
    assert "elo" in status(workdir, "s")["SoccerTwos"]


def test_strikers_and_goalie_take_turns_learning(workdir):
    """The asymmetric game: two behaviours, each POCA with its own self_play block (the Goalie swaps
    opponents more often), under one controller; each learns in turn and keeps its own ELO."""
    proc = run_mlx("trainer=poca", "env=strikersvsgoalie", "env.num_areas=4", "trainer.max_steps=3000",
                   "trainer.summary_freq=1000", "trainer.time_horizon=64", "run_id=g",
                   "trainer.hyperparameters.batch_size=128", "trainer.hyperparameters.buffer_size=1024",
                   "trainer.network_settings.hidden_units=32",
                   "trainer.self_play={save_steps:300,team_change:600,swap_steps:400,window:3}",
                   "behaviors.Goalie.self_play.swap_steps=100", "tracking=none", "progress=plain",
                   cwd=workdir, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    states = {
        b: torch.load(workdir / f"results/g/{b}/checkpoint.pt", weights_only=False)["trainer"]
        for b in ("Striker", "Goalie")
    }
    assert all(s["step"] >= 3000 for s in states.values())  # both learnt, taking turns
    assert states["Goalie"]["self_play"]["controller"] == states["Striker"]["self_play"]["controller"]
    assert states["Goalie"]["self_play"]["teams"] == [1] and states["Striker"]["self_play"]["teams"] == [0]
    assert set(status(workdir, "g")) >= {"Striker", "Goalie"}
