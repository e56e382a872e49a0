"""mode=watch on a Gymnasium env: Gymnasium draws the copies (render_mode="rgb_array", set by watch only),
and their play becomes a GIF with the same captions and episode counting as the native envs'."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlx.envs import make_env
from tests.conftest import run_mlx

CARTPOLE = ["env=gym", "env.id=CartPole-v1", "tracking=none", "progress=plain"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("gymwatch")
    proc = run_mlx(*CARTPOLE, "run_id=c", "seed=1", "trainer.max_steps=512", "trainer.summary_freq=256", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return workdir


def test_gymnasium_draws_each_copy_in_its_own_state():
    env = make_env("gym", 3, 0, env_id="CartPole-v1", env_kwargs={"render_mode": "rgb_array"})
    env.reset()
    pictures = env.render()
    assert pictures.shape == (3, 400, 600, 3) and pictures.dtype == np.uint8
    np.testing.assert_array_equal(env.render([2, 0]), pictures[[2, 0]])
    assert not np.array_equal(pictures[0], pictures[1])  # seeds 0 and 1 start the carts differently
    env.close()


def test_watch_plays_a_gymnasium_env_to_a_gif(trained):
    proc = run_mlx(*CARTPOLE, "run_id=c", "mode=watch", "watch.areas=2", "watch.max_frames=400", cwd=trained)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "XDG_RUNTIME_DIR" not in proc.stderr  # SDL looks for no display (off-screen pictures)
    gif = trained / "results" / "c" / "CartPole-v1.gif"
    pattern = r"\[INFO\] Wrote (\S+): (\d+) frames of 2 area\(s\) at 20 fps .*mean return ([\d.]+) over (\d+)"
    written = re.search(pattern, proc.stdout)
    assert written, proc.stdout[-2000:]
    assert trained / written[1] == gif
    frames, mean, episodes = int(written[2]), float(written[3]), int(written[4])
    assert episodes >= 2 and 8 <= mean <= 400  # CartPole pays 1 a step: a barely trained pole falls early
    with Image.open(gif) as image:
        assert image.n_frames == frames
        assert image.size == (2 * 600 + 4, 400 + 14)  # two copies side by side, a caption band below
        image.seek(0)
        first = np.asarray(image.convert("RGB"))
        image.seek(frames - 1)
        last = np.asarray(image.convert("RGB"))
    assert not np.array_equal(first, last)  # the carts moved


def test_without_pygame_watch_says_what_to_install(trained):
    """Gymnasium's classic-control envs draw with pygame; where it is missing, one line names the fix."""
    script = "import sys; sys.modules['pygame'] = None; from mlx.__main__ import main; sys.argv[0] = 'mlx'; main()"
    proc = subprocess.run(
        [sys.executable, "-c", script, *CARTPOLE, "run_id=c", "mode=watch", "watch.path=none.gif"],
        cwd=trained, env=dict(os.environ), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("mlx: error: Gymnasium cannot draw CartPole-v1: pygame")
    assert "mlx-mlagents[gym-render]" in proc.stderr and not (trained / "none.gif").exists()
