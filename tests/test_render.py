"""env.render(): every native env draws uint8 RGB pictures of chosen areas, and the pictures show the
state (the ball where the ball is, Basic's agent on its cell, arena bodies where they stand)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlx.envs import NATIVE_ENVS, make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.native.camera import project
from mlx.envs.native.render import TAG_COLOURS, Canvas, tag_colour

AGENT = np.array(TAG_COLOURS["agent"])
BLOCK = np.array(TAG_COLOURS["block"])


GL_RENDERED = {"worm", "crawler", "walker"}  # drawn by MuJoCo's offscreen OpenGL renderer


def stepped(name: str, areas: int = 3, steps: int = 5, seed: int = 0):
    env = make_env(name, areas, seed)
    env.reset()
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        for behavior, spec in env.behavior_specs.items():
            decision, _ = env.get_steps(behavior)
            env.set_actions(behavior, spec.action_spec.random(len(decision), rng))
        env.step()
    return env


def centroid(picture: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(row, col) of the mean pixel centre of the pixels of exactly this colour."""
    rows, cols = np.nonzero((picture == colour).all(axis=-1))
    assert rows.size, f"no pixel of colour {colour}"
    return np.array([rows.mean() + 0.5, cols.mean() + 0.5])


@pytest.mark.parametrize("name", sorted(NATIVE_ENVS))
def test_every_native_env_draws_the_areas_asked_for(name):
    env = stepped(name)
    every = env.render()
    assert every.dtype == np.uint8 and every.ndim == 4 and every.shape[0] == 3 and every.shape[-1] == 3
    assert min(every.shape[1:3]) >= 36
    # MuJoCo's OpenGL pictures (the walkers) may differ by one level in a few pixels from call to call
    np.testing.assert_allclose(env.render([2, 0]), every[[2, 0]], rtol=0, atol=1 if name in GL_RENDERED else 0)
    assert every.reshape(3, -1, 3).std(axis=1).max() > 10, "a picture of one flat colour shows nothing"


def test_envs_without_a_picture_say_so():
    env = make_env("gym", 1, 0, env_id="CartPole-v1")  # made without render_mode: Gymnasium draws nothing
    env.reset()
    with pytest.raises(EnvError, match="render_mode=None; pictures need render_mode='rgb_array'"):
        env.render()


def test_the_3dball_picture_shows_the_ball_where_it_is():
    env = make_env("3dball", 3, 0)
    env.reset()
    ball = np.array([[-1.5, 3.0, 0.0], [0.0, 3.0, 0.0], [1.5, 3.0, 1.5]])
    env.debug_set_state(rotation=np.array([0.0, 0.0, 0.0, 1.0]), ball_position=ball, ball_velocity=np.zeros(3))
    pictures = env.render()
    assert pictures.shape == (3, 168, 168, 3)
    for picture, where in zip(pictures, ball, strict=True):
        grey = (picture.min(axis=-1) > 60) & (np.ptp(picture.astype(int), axis=-1) < 10)  # the grey ball, lit or not
        rows, cols = np.nonzero(grey)
        row, col = project(where, 168)
        assert abs(rows.mean() + 0.5 - row) < 1.5 and abs(cols.mean() + 0.5 - col) < 1.5
    # A tilted platform is another picture; the same state draws the same picture.
    env.debug_set_state(areas=[0], rotation=np.array([0.0, 0.0, math.sin(0.1), math.cos(0.1)]))
    again = env.render()
    assert (again[0] != pictures[0]).any()
    np.testing.assert_array_equal(again[1:], pictures[1:])


def test_3dballhard_and_visual3dball_draw_3dballs_scene():
    for name in ("3dballhard", "visual3dball"):
        env = make_env(name, 2, 0)
        env.reset()
        np.testing.assert_array_equal(env.render(), env._inner.render())


def test_basic_shows_the_agent_on_its_cell():
    env = make_env("basic", 2, 0)
    env.reset()
    for step in range(3):  # area 0 goes right three times, area 1 left twice then waits
        env.set_actions("Basic", ActionTuple(np.zeros((2, 0), np.float32), np.array([[2], [1 if step < 2 else 0]])))
        env.step()
    pictures = env.render()
    assert pictures.shape == (2, 36, 252, 3)
    for picture, position in zip(pictures, (13, 8), strict=True):
        row, col = centroid(picture, AGENT)
        assert abs(col - (position + 0.5) * 12) < 0.6 and abs(row - 18) < 0.6


def test_gridworld_pictures_are_its_camera_bytes():
    env = stepped("gridworld", areas=4)
    decision, _ = env.get_steps("GridWorld")
    np.testing.assert_array_equal(np.multiply(env.render(), np.float32(1 / 255), dtype=np.float32), decision.obs[0])
    np.testing.assert_array_equal(np.rint(decision.obs[0] * 255), env.render())


def test_arena_pictures_put_bodies_where_they_are_and_show_the_heading():
    env = stepped("pushblock", areas=2)
    arena = env.arena
    canvas = Canvas((-13.5, -13.5, 13.5, 13.5), 320)  # the bounds and a 1 m band of wall
    arena.pos[:, 1, 0] = (4.0, 2.0)  # the block of area 0
    arena.pos[:, 0, 0] = (-5.0, -3.0)  # its agent, facing +x (right)
    arena.heading[0, 0] = math.pi / 2
    picture = env.render([0])[0]
    assert picture.shape == (320, 320, 3)
    for (x, z), colour in (((4.0, 2.0), BLOCK), ((-5.0, -3.0), AGENT)):
        row, col = centroid(picture, colour)
        assert abs(col - (x + 13.5) / canvas.scale) < 1.5 and abs(row - (13.5 - z) / canvas.scale) < 1.5
    white = centroid(picture, np.array([255, 255, 255]))
    agent = np.array([(13.5 + 3.0) / canvas.scale, (-5.0 + 13.5) / canvas.scale])
    assert white[1] - agent[1] > 2 and abs(white[0] - agent[0]) < 1  # the dot is ahead: to the right
    # Every present static of the other envs shows its tag's colour.
    for name in ("pyramids", "hallway"):
        env = stepped(name, areas=1)
        arena = env.arena
        colours = {tuple(c) for c in env.render()[0].reshape(-1, 3)}
        lo, hi = arena.bounds[0:2, 0], arena.bounds[2:4, 0]
        for s in range(arena.W):
            inside = (arena.center[:, s, 0] > lo).all() and (arena.center[:, s, 0] < hi).all()
            if arena.active[s, 0] and inside:
                assert tag_colour(arena.tags[arena.tag[s, 0]]) in colours, (name, arena.static_specs[s].name)


def test_walljump_shows_the_wall_height_and_the_agent_jumping():
    env = stepped("walljump", areas=2)
    env.wall_height[:] = (0.0, 8.0)
    env.pos[:, 0] = (0.0, 0.95, -10.0)
    env.pos[:, 1] = (0.0, 3.45, -10.0)  # 2.5 m higher
    pictures = env.render()
    wall = np.array(TAG_COLOURS["wall"])  # the highest wall has the full colour
    assert not (pictures[0] == wall).all(-1).any() and (pictures[1] == wall).all(-1).any()
    top = Canvas((-11.5, -15.5, 11.5, 7.5), 256)
    side = pictures[:, :, top.width + 2 :]
    low, high = centroid(side[0], AGENT), centroid(side[1], AGENT)
    assert abs(low[0] - high[0]) < 0.5  # same z: same rows
    assert abs((high[1] - low[1]) * top.scale - 2.5) < 0.15  # heights grow to the right


def test_canvas_draws_circles_and_boxes_of_the_right_size_for_every_area():
    canvas = Canvas((0.0, 0.0, 10.0, 10.0), 200)  # 20 pixels a metre
    out = canvas.blank(2, (0, 0, 0))
    canvas.fill(out, np.array([3.0, 7.0]), 5.0, 0.0, 0.0, np.array([[255, 0, 0], [0, 255, 0]]), radius=1.0)
    red, green = (out[0] == (255, 0, 0)).all(-1).sum(), (out[1] == (0, 255, 0)).all(-1).sum()
    assert abs(red - math.pi * 400) < 0.03 * math.pi * 400 and abs(green - red) < 10
    assert abs(centroid(out[1], np.array([0, 255, 0]))[1] - 140) < 0.5
    canvas.fill(out, 5.0, 5.0, 2.0, 1.0, (0, 0, 255), present=np.array([True, False]))
    assert (out[0] == (0, 0, 255)).all(-1).sum() == 80 * 40 and not (out[1] == (0, 0, 255)).all(-1).any()
