"""mode=watch: a trained policy's play as a GIF (or MP4) of env.render() frames; and every training run
ends with its learning curves as a PNG, logged to MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlx.config import ConfigError, validate
from mlx.envs import make_env
from mlx.errors import RunError
from mlx.modes.policy import OnnxPolicy
from mlx.modes.watch import grid, watch_run
from tests.conftest import compose_tree, run_mlx
from tests.test_cli import TINY  # a real but short 3DBall run: its policy still drops the ball quickly


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("watch")
    proc = run_mlx(*TINY, "trainer.max_steps=1200", "run_id=w", "tracking.uri=sqlite:///mlruns.db", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return workdir


def watch_config(workdir: Path, *overrides: str):
    return validate(
        compose_tree("env=3dball", "run_id=w", "tracking=none", "mode=watch", f"results_dir={workdir / 'results'}",
                     *overrides)
    )  # fmt: skip


def test_every_run_ends_with_its_learning_curves_logged_to_mlflow(trained, tmp_path):
    png = trained / "results/w/run_logs/3DBall_curves.png"
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] >= 1000
    from mlflow.tracking import MlflowClient

    status = json.loads((trained / "results/w/run_logs/training_status.json").read_text())
    client = MlflowClient(tracking_uri=f"sqlite:///{trained / 'mlruns.db'}")
    run_id = status["metadata"]["mlflow_run_id"]
    assert "run_logs/3DBall_curves.png" in {a.path for a in client.list_artifacts(run_id, "run_logs")}
    copy = client.download_artifacts(run_id, "run_logs/3DBall_curves.png", str(tmp_path))
    assert Path(copy).read_bytes() == png.read_bytes()


def test_a_run_that_ends_before_its_first_summary_still_ends_with_one_and_its_curves(tmp_path):
    proc = run_mlx("env=basic", "run_id=short", "trainer.max_steps=100", "trainer.summary_freq=1000", "seed=1",
                   "progress=plain", "tracking.uri=sqlite:///mlflow.db", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    logs = tmp_path / "results/short/run_logs"
    rows = (logs / "stats.jsonl").read_text().splitlines()
    assert len(rows) == 1 and (logs / "Basic_curves.png").exists()  # the final summary, at the last step
    assert "summary_freq (1000) exceeds max_steps (100)" in proc.stdout + proc.stderr


def test_watch_plays_until_every_area_ended_its_episodes_and_writes_their_pictures(trained):
    policy = "results/w/3DBall.onnx"
    path = watch_run(watch_config(trained, "watch.areas=3", "watch.episodes=2", "seed=5",
                                  f"watch.policy={trained / policy}"))  # fmt: skip
    assert path == trained / "results/w/3DBall.gif"
    # The same play, counted here: one frame after reset and one per decision until each area ended twice.
    env = make_env("3dball", 3, 5)
    env.reset()
    act = OnnxPolicy(trained / policy, env.behavior_specs["3DBall"], deterministic=True)
    first = env.render()
    ended, frames = np.zeros(3, int), 1
    while (ended < 2).any():
        decision, _ = env.get_steps("3DBall")
        env.set_actions("3DBall", act.act(decision))
        env.step()
        np.add.at(ended, env.get_steps("3DBall")[1].agent_id, 1)
        frames += 1
    assert 10 < frames < 400
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == frames
        assert gif.info["duration"] == 50 and gif.info["loop"] == 0  # 20 fps, looping
        shown = np.asarray(gif.convert("RGB"))
    expected, corners = grid(first)
    assert shown.shape == expected.shape
    for row, col in corners:  # each area's picture (above its caption) is the env's, up to the palette
        diff = np.abs(shown[row - 168 : row, col : col + 168].astype(int) - expected[row - 168 : row, col : col + 168])
        assert diff.mean() < 2
        assert (shown[row : row + 14, col : col + 168] > 200).any()  # its caption has text


def test_watch_stops_at_max_frames_and_writes_mp4(trained, tmp_path, capsys):
    ffmpeg = pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "play.mp4"
    path = watch_run(watch_config(trained, "watch.areas=4", "watch.episodes=1000", "watch.max_frames=25",
                                  f"watch.path={out}"))  # fmt: skip
    assert path == out and not list(tmp_path.glob(".play-*"))  # written in place of its temporary file
    frames, seconds = ffmpeg.count_frames_and_secs(str(out))
    assert frames == 25 and abs(seconds - 25 / 20) < 0.1
    reader = ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["size"] == (340, 368)  # 2 x 2 areas of 168 px, a caption band each, gaps between
    assert "[WARNING] Stopped at watch.max_frames=25" in capsys.readouterr().out


def test_mode_watch_on_the_command_line(trained):
    proc = run_mlx("env=3dball", "run_id=w", "mode=watch", "tracking=none", "watch.max_frames=6", "watch.path=cli.gif",
                   cwd=trained, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[INFO] Wrote cli.gif: 6 frames of 1 area(s) at 20 fps (deterministic actions;" in proc.stdout
    with Image.open(trained / "cli.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (168, 168 + 14)


def test_watch_refuses_what_it_cannot_do_clearly(trained, tmp_path):
    with pytest.raises(ConfigError, match=r"watch.path must end in .gif or .mp4 \(got 'play.avi'\)"):
        watch_config(trained, "watch.path=play.avi")
    with pytest.raises(ConfigError, match=r"watch.areas must be > 0"):
        watch_config(trained, "watch.areas=0")
    remote = watch_config(trained, "env.subprocess=true")
    with pytest.raises(RunError, match=r"mode=watch draws envs in this process .*env.subprocess=true\) cannot be"):
        watch_run(remote)
    with pytest.raises(RunError, match=r"has no trained policy .* watch.policy=<file.pt\|file.onnx>"):
        watch_run(validate(compose_tree("env=basic", "run_id=none", "tracking=none", "mode=watch",
                                        f"results_dir={tmp_path}")))  # fmt: skip
