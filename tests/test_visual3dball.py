"""Visual3DBall: 3DBall's dynamics seen through a stacked 84x84 RGB camera."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.checker import check_env
from mlx.envs.native.ball3d import BEHAVIOR_NAME as BALL
from mlx.envs.native.camera import (
    AMBIENT,
    BALL_COLOUR,
    CAMERA_POSITION,
    DIFFUSE,
    HALF_SIZE,
    LIGHT,
    PLATFORM_COLOUR,
    SIZE,
    Renderer,
    project,
    rotation_matrices,
)
from mlx.envs.native.visual3dball import BEHAVIOR_NAME, STACK, Visual3DBallEnv


def act(n: int, rng: np.random.Generator) -> ActionTuple:
    return ActionTuple(rng.uniform(-1, 1, (n, 2)).astype(np.float32), np.zeros((n, 0), np.int32))


def frames(obs: np.ndarray) -> np.ndarray:
    """[m, 84, 84, 12] -> [m, 4, 84, 84, 3], oldest frame first."""
    return obs.reshape(len(obs), SIZE, SIZE, STACK, 3).transpose(0, 3, 1, 2, 4)


def quaternion(axis: str, degrees: float) -> np.ndarray:
    """(x, y, z, w) of a rotation about one local axis."""
    half = math.radians(degrees) / 2
    q = np.zeros(4)
    q["xyz".index(axis)] = math.sin(half)
    q[3] = math.cos(half)
    return q


def reference_image(rotation: np.ndarray, ball: np.ndarray, radius: float) -> np.ndarray:
    """A plain per-pixel ray caster (float64, textbook slab and sphere tests), written independently of
    the module's affine formulation: the oracle for Renderer."""
    cam = CAMERA_POSITION
    pitch = math.radians(30)
    forward = np.array([0, -math.sin(pitch), math.cos(pitch)])
    up = np.array([0, math.cos(pitch), math.sin(pitch)])
    right = np.array([1.0, 0, 0])
    tan = math.tan(math.radians(30))
    c = (np.arange(SIZE) + 0.5) / SIZE * 2 - 1
    v, u = np.meshgrid(-c * tan, c * tan, indexing="ij")
    rays = forward + u[..., None] * right + v[..., None] * up  # [84, 84, 3]
    rot = rotation_matrices(rotation[None])[0]
    # Box: slab test in its frame.
    o, d = rot.T @ cam, rays @ rot
    with np.errstate(divide="ignore"):
        t1, t2 = (-HALF_SIZE - o) / d, (HALF_SIZE - o) / d
    tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
    near, far = tmin.max(-1), tmax.min(-1)
    box = (near <= far) & (near > 0)
    axis = tmin.argmax(-1)
    normal_local = -np.sign(np.take_along_axis(d, axis[..., None], -1)) * np.eye(3)[axis]
    box_shade = AMBIENT + DIFFUSE * np.maximum((normal_local @ rot.T) @ LIGHT, 0)
    # Sphere.
    rel = ball - cam
    a = (rays * rays).sum(-1)
    b = rays @ rel
    disc = b * b - a * (rel @ rel - radius**2)
    t = (b - np.sqrt(np.maximum(disc, 0))) / a
    sphere = (disc > 0) & (t > 0) & (~box | (t < near))
    normal = (t[..., None] * rays - rel) / radius
    ball_shade = AMBIENT + DIFFUSE * np.maximum(normal @ LIGHT, 0)
    image = np.zeros((SIZE, SIZE, 3))
    image[box] = box_shade[box, None] * PLATFORM_COLOUR
    image[sphere] = ball_shade[sphere, None] * BALL_COLOUR
    return np.rint(image * 255).astype(np.uint8)


def random_states(m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q = rng.normal(size=(m, 4)) * [0.15, 0.05, 0.15, 1.0]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ball = np.column_stack([rng.uniform(-3.5, 3.5, m), rng.uniform(-4, 4.5, m), rng.uniform(-3.5, 3.5, m)])
    radius = rng.uniform(0.25, 1.0, m)
    return q, ball, radius


def test_contract_and_spec():
    check_env(lambda seed: make_env("visual3dball", num_areas=3, seed=seed), steps=60)
    spec = Visual3DBallEnv(1).behavior_specs[BEHAVIOR_NAME]
    assert [o.shape for o in spec.observation_specs] == [(84, 84, 12)]
    assert spec.action_spec.continuous_size == 2 and not spec.action_spec.discrete_branches


def test_renderer_matches_a_plain_ray_caster():
    rng = np.random.default_rng(0)
    q, ball, radius = random_states(40, rng)
    images = Renderer().render(q, ball, radius)
    covered = 0
    for i in range(40):
        expected = reference_image(q[i], ball[i], radius[i])
        diff = np.abs(images[i].astype(int) - expected).max(axis=-1)
        assert (diff > 1).mean() < 0.002, f"state {i}: {(diff > 1).sum()} pixels differ"  # edge pixels only
        covered += (expected > 0).any(-1).mean()
    assert covered / 40 > 0.15  # the scenes were actually in view


def test_ball_pixels_sit_where_the_camera_projects_the_ball():
    env = Visual3DBallEnv(1, seed=0)
    env.reset()
    for x, y, z in [(0, 3.5, 0), (1.5, 3.2, -1), (-2, 4.5, 1.5), (0.5, 6, 2)]:
        env.debug_set_state(rotation=[0, 0, 0, 1], ball_position=[x, y, z])
        newest = frames(env.get_steps(BEHAVIOR_NAME)[0].obs[0])[0, -1]
        ball = (newest[..., 0] > 0.2) & (np.abs(newest[..., 0] - newest[..., 2]) < 0.05)  # grey, not blue
        rows, cols = np.nonzero(ball)
        row, col = project(np.array([x, y, z]))
        assert abs(rows.mean() + 0.5 - row) < 0.5 and abs(cols.mean() + 0.5 - col) < 0.5
        depth = (np.array([x, y, z]) - CAMERA_POSITION) @ np.array([0, -0.5, math.sqrt(0.75)])
        area = math.pi * (0.5 / depth * 42 / math.tan(math.radians(30))) ** 2
        assert abs(ball.sum() - area) < 0.15 * area + 6


def test_image_moves_with_the_ball_and_hides_it_behind_the_platform():
    env = Visual3DBallEnv(1, seed=0)
    env.reset()

    def ball_centroid(position):
        env.debug_set_state(rotation=[0, 0, 0, 1], ball_position=position)
        newest = frames(env.get_steps(BEHAVIOR_NAME)[0].obs[0])[0, -1]
        rows, cols = np.nonzero((newest[..., 0] > 0.2) & (np.abs(newest[..., 0] - newest[..., 2]) < 0.05))
        return (rows.mean(), cols.mean()) if len(rows) else None

    base = ball_centroid([0, 3, 0])
    assert ball_centroid([1, 3, 0])[1] > base[1] + 5  # +x is to the right
    assert ball_centroid([0, 4, 0])[0] < base[0] - 5  # +y is up
    assert ball_centroid([0, 3, 1])[0] < base[0]  # farther (+z) on the top face: higher in the picture
    assert ball_centroid([0, 0, 4]) is None  # behind the platform, below its top: hidden


def top_face_pixels(env: Visual3DBallEnv, rot: np.ndarray) -> int:
    """Pixels of the newest frame in the top face's colour: the platform colour lit along its normal."""
    q = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1], 0.0])
    q[3] = math.sqrt(max(1 + np.trace(rot), 0)) / 2
    q[:3] /= 4 * q[3]
    env.debug_set_state(rotation=q, ball_position=[0, -20, 0])
    newest = np.rint(frames(env.get_steps(BEHAVIOR_NAME)[0].obs[0])[0, -1] * 255)
    colour = np.rint(255 * (AMBIENT + DIFFUSE * max(rot[:, 1] @ LIGHT, 0)) * PLATFORM_COLOUR)
    return int((newest == colour).all(axis=-1).sum())


@pytest.mark.parametrize(("axis", "degrees"), [("z", 20), ("z", -20), ("x", 20), ("x", -20)])
def test_platform_image_follows_its_tilt(axis, degrees):
    """The top edge of the platform's silhouette rises where the 3D rotation raises the platform."""
    env = Visual3DBallEnv(1, seed=0)
    env.reset()

    def silhouette_top(rotation) -> np.ndarray:
        env.debug_set_state(rotation=rotation, ball_position=[0, -20, 0])  # ball out of view
        newest = frames(env.get_steps(BEHAVIOR_NAME)[0].obs[0])[0, -1]
        blue = newest[..., 2] > 0.1
        cols = np.flatnonzero(blue.any(axis=0))
        return cols, blue.argmax(axis=0)  # per column: the first (top) platform row

    level_cols, level_top = silhouette_top([0, 0, 0, 1])
    q = quaternion(axis, degrees)
    cols, top = silhouette_top(q)
    rot = rotation_matrices(q[None])[0]
    if axis == "z":  # the +x edge of the top face goes up or down in the world; so does the picture
        right_up = (rot @ [HALF_SIZE, HALF_SIZE, 0])[1] > (rot @ [-HALF_SIZE, HALF_SIZE, 0])[1]
        left, right = top[SIZE // 2 - 10], top[SIZE // 2 + 10]  # on the far top edge, either side
        assert (right < left) == right_up and abs(right - left) > 3
    else:  # the far (+z) edge goes up: the top face turns toward the camera and its far edge rises
        far_up = (rot @ [0, HALF_SIZE, HALF_SIZE])[1] > HALF_SIZE
        middle = SIZE // 2
        assert (top[middle] < level_top[middle]) == far_up
        # Facing the camera more, the top face covers more pixels (found by its shade under the light).
        level, tilted = top_face_pixels(env, np.eye(3)), top_face_pixels(env, rot)
        assert tilted > 1.3 * level if far_up else tilted < 0.8 * level
    # A convex body's silhouette is the hull of its projected corners: compare its left, right and top.
    corners = np.array(np.meshgrid(*[[-HALF_SIZE, HALF_SIZE]] * 3)).reshape(3, -1).T @ rot.T
    row, col = project(corners)
    assert abs(cols[0] - col.min()) < 1.5 and abs(cols[-1] + 1 - col.max()) < 1.5
    assert abs(top[cols].min() - row.min()) < 1.5


def test_dynamics_and_rewards_are_3dballs_and_the_stack_holds_the_last_four_frames():
    n = 5
    env, ball = Visual3DBallEnv(n, seed=3), make_env("3dball", n, seed=3)
    env.reset()
    ball.reset()
    rng = np.random.default_rng(1)
    renderer = Renderer()
    history = [frames(env.get_steps(BEHAVIOR_NAME)[0].obs[0])[:, -1]]
    age = np.zeros(n, int)
    ended = 0
    for _ in range(120):
        a = act(n, rng)
        env.set_actions(BEHAVIOR_NAME, a)
        ball.set_actions(BALL, a)
        env.step()
        ball.step()
        decision, terminal = env.get_steps(BEHAVIOR_NAME)
        bd, bt = ball.get_steps(BALL)
        np.testing.assert_array_equal(decision.reward, bd.reward)
        np.testing.assert_array_equal(terminal.agent_id, bt.agent_id)
        np.testing.assert_array_equal(terminal.reward, bt.reward)
        np.testing.assert_array_equal(terminal.interrupted, bt.interrupted)
        stack = frames(decision.obs[0])
        assert np.array_equal(np.rint(stack * 255).astype(np.uint8) * np.float32(1 / 255), stack)  # 8-bit
        # The newest frame is the current state's picture.
        rotation = env._inner.platform_rotations()  # all of the rotation: the observation holds q.z, q.x
        np.testing.assert_array_equal(rotation[:, [2, 0]], bd.obs[0][:, :2])
        np.testing.assert_allclose(np.linalg.norm(rotation, axis=1), 1, atol=1e-5)
        expected = renderer.render(rotation, bd.obs[0][:, 2:5], np.full(n, 0.5))
        np.testing.assert_array_equal(np.rint(stack[:, -1] * 255), expected)
        if len(bt):  # the final frame shows the terminal state: 3DBall's terminal rotation and ball
            rotation = env._inner.platform_rotations(terminal=True)
            np.testing.assert_array_equal(rotation[:, [2, 0]], bt.obs[0][:, :2])  # q.z, q.x
            expected = renderer.render(rotation, bt.obs[0][:, 2:5], np.full(len(bt), 0.5))
            np.testing.assert_array_equal(np.rint(frames(terminal.obs[0])[:, -1] * 255), expected)
        for row, agent in enumerate(bt.agent_id):  # terminal: the previous frames plus the final one
            final = frames(terminal.obs[0])[row]
            kept = min(age[agent] + 1, STACK - 1)
            for back in range(1, kept + 1):
                assert np.array_equal(final[-1 - back], history[-back][agent])
            assert not final[: STACK - 1 - kept].any()
        ended += len(bt)
        age += 1
        age[bt.agent_id] = 0
        history.append(stack[:, -1])
        for agent in range(n):
            kept = min(age[agent] + 1, STACK)
            for back in range(1, kept + 1):
                assert np.array_equal(stack[agent, -back], history[-back][agent])
            assert not stack[agent, : STACK - kept].any()  # zeros before the episode start
    assert ended >= 3


def test_scale_sets_the_apparent_ball_size_from_the_next_episode():
    env = Visual3DBallEnv(2, seed=4)
    env.reset()

    def ball_pixels() -> np.ndarray:
        env.debug_set_state(rotation=[0, 0, 0, 1], ball_position=[0, 3.5, 0])
        newest = frames(env.get_steps(BEHAVIOR_NAME)[0].obs[0])[:, -1]
        return ((newest[..., 0] > 0.2) & (np.abs(newest[..., 0] - newest[..., 2]) < 0.05)).sum(axis=(1, 2))

    small = ball_pixels()
    env.set_environment_parameter("scale", 2.0)
    assert (ball_pixels() == small).all()  # not before the areas' next episodes
    env.reset()
    assert (ball_pixels() > 3 * small).all()
    with pytest.raises(EnvError, match="unknown environment parameter 'size'"):
        env.set_environment_parameter("size", 1.0)
    with pytest.raises(EnvError, match="unknown environment parameter"):
        Visual3DBallEnv(1, parameters={"masss": 1.0})
    with pytest.raises(EnvError, match="continuous actions of shape"):
        env.set_actions(BEHAVIOR_NAME, act(3, np.random.default_rng(0)))
