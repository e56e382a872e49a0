"""3DBall (mlx.envs.native.ball3d): API contract, Unity's rules, and the optimised physics checked against a
plain float64 rendering of the documented model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.native.ball3d import BEHAVIOR_NAME, DT, MAX_DECISIONS, Ball3DEnv

SIN5 = math.sin(math.radians(5.0))
FLAT = (0.0, 0.0, 0.0, 1.0)  # identity rotation as Unity's (x, y, z, w)


def actions(cont: np.ndarray) -> ActionTuple:
    cont = np.asarray(cont, np.float32)
    return ActionTuple(continuous=cont, discrete=np.zeros((len(cont), 0), np.int32))


def constant(n: int, a0: float, a1: float) -> ActionTuple:
    return actions(np.tile([a0, a1], (n, 1)))


def step(env: Ball3DEnv, act: ActionTuple | None = None):
    if act is not None:
        env.set_actions(BEHAVIOR_NAME, act)
    env.step()
    return env.get_steps(BEHAVIOR_NAME)


def resting_height(scale: float) -> float:
    return 2.5 + 0.5 * scale


# --------------------------------------------------------------------------------------------------
# a plain float64 rendering of the model in the module docstring (vectorised over areas, no tricks)
# --------------------------------------------------------------------------------------------------


def hamilton(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Unity's q * v for quaternions q = (w, x, y, z) and vectors v, both as rows."""
    u = q[1:]
    t = 2 * np.cross(u, v, axis=0)
    return v + q[0] * t + np.cross(u, t, axis=0)


def reference_rotate(q, act):
    """Step 1: the gated local rotations about z then x; returns q and the angles used (radians)."""
    used = []
    for axis, angle in ((3, 2.0 * np.clip(act[:, 0], -1, 1)), (1, 2.0 * np.clip(act[:, 1], -1, 1))):
        gate = ((q[axis] < 0.25) & (angle > 0)) | ((q[axis] > -0.25) & (angle < 0))
        eff = np.where(gate, np.radians(angle), 0.0)
        r = np.zeros_like(q)
        r[0], r[axis] = np.cos(eff / 2), np.sin(eff / 2)
        q = hamilton(q, r)
        used.append(eff)
    return q, used


def reference_physics(q, p, v, contact, used, radius, g):
    """Step 3: gravity (5/7 while rolling), semi-implicit Euler, top-face contact."""
    v = v + np.array([[0.0], [-g], [0.0]]) * np.where(contact, 5 / 7, 1.0) * DT
    p = p + v * DT
    local = rotate(q * np.array([[1.0], [-1.0], [-1.0], [-1.0]]), p)
    contact = (np.abs(local[0]) < 2.5) & (np.abs(local[2]) < 2.5) & (local[1] > 0) & (local[1] < 2.5 + radius)
    normal = rotate(q, np.tile([[0.0], [1.0], [0.0]], (1, q.shape[1])))
    p = p + np.where(contact, 2.5 + radius - local[1], 0.0) * normal
    face = (np.sin(used[0]) * local[0] - np.sin(used[1]) * local[2]) / DT
    vrel = (v * normal).sum(0) - face
    v = v - np.where(contact & (vrel < 0), vrel, 0.0) * normal
    return p, v, contact


def reference_decision(q, p, v, contact, act, radius=0.5, g=9.81):
    """Five physics steps; also returns the first sub-step on which each area was off (or -1)."""
    fell_at = np.full(q.shape[1], -1)
    for k in range(5):
        q, used = reference_rotate(q, act)
        off = (p[1] < -2) | (np.abs(p[0]) > 3) | (np.abs(p[2]) > 3)  # step 2, before the physics
        fell_at = np.where((fell_at < 0) & off, k, fell_at)
        p, v, contact = reference_physics(q, p, v, contact, used, radius, g)
    return q, p, v, contact, fell_at


def unity_quaternion(q_wxyz: np.ndarray) -> np.ndarray:
    """Rows (w, x, y, z) -> [n, 4] as Unity's (x, y, z, w)."""
    return np.stack([q_wxyz[1], q_wxyz[2], q_wxyz[3], q_wxyz[0]], axis=1)


def random_rotations(rng: np.random.Generator, n: int, max_deg: float) -> np.ndarray:
    """Rows (w, x, y, z): local x then local z tilts of up to max_deg, as OnEpisodeBegin does."""
    a, b = np.radians(rng.uniform(-max_deg, max_deg, (2, n)))
    rx = np.array([np.cos(a / 2), np.sin(a / 2), 0 * a, 0 * a])
    rz = np.array([np.cos(b / 2), 0 * b, 0 * b, np.sin(b / 2)])
    return hamilton(rx, rz)


# --------------------------------------------------------------------------------------------------
# API and Unity's rules
# --------------------------------------------------------------------------------------------------


def test_spec_and_factory():
    env = make_env("3dball", num_areas=3, seed=0)
    assert isinstance(env, Ball3DEnv)
    spec = env.behavior_specs[BEHAVIOR_NAME]
    assert list(env.behavior_specs) == ["3DBall"]
    assert [o.shape for o in spec.observation_specs] == [(8,)]
    assert spec.action_spec.continuous_size == 2
    assert spec.action_spec.discrete_branches == ()


def test_reset_ranges():
    n = 512
    env = Ball3DEnv(num_areas=n, seed=3)
    env.reset()
    dec, term = env.get_steps(BEHAVIOR_NAME)
    obs = dec.obs[0]
    assert obs.shape == (n, 8) and obs.dtype == np.float32 and obs.flags.c_contiguous
    assert dec.agent_id.dtype == np.int32 and np.array_equal(dec.agent_id, np.arange(n))
    assert np.array_equal(dec.reward, np.zeros(n)) and len(term) == 0
    qz, qx = obs[:, 0], obs[:, 1]
    assert np.abs(qz).max() <= SIN5 + 1e-6 and np.abs(qx).max() <= SIN5 + 1e-6
    assert np.abs(qz).max() > 0.8 * SIN5 and np.abs(qx).max() > 0.8 * SIN5  # really random tilts
    assert np.abs(obs[:, [2, 4]]).max() <= 1.5 and np.abs(obs[:, [2, 4]]).max() > 1.4
    assert np.all(obs[:, 3] == 4.0)
    assert np.all(obs[:, 5:8] == 0.0)


def test_rotation_limit():
    n = 64
    env = Ball3DEnv(num_areas=n, seed=1)
    env.reset()
    inc = math.sin(math.radians(1.0)) + 0.005  # one physics step's change of q.z (q.x), generously
    for a0, a1 in ((1.0, 1.0), (-1.0, -1.0)):
        seen = []
        for _ in range(40):
            dec, term = step(env, constant(n, a0, a1))
            seen += [dec.obs[0][:, 0:2], term.obs[0][:, 0:2]]
        q = np.concatenate(seen)
        signed = a0 * q  # both components pushed the same way
        assert signed.max() <= 0.25 + inc
        assert signed.max() >= 0.25  # the gate was reached, not just approached


def test_fall_ends_episode_and_resets():
    n = 4
    env = Ball3DEnv(num_areas=n, seed=2)
    env.reset()
    env.debug_set_state(rotation=FLAT, ball_position=(0.0, resting_height(1.0), 0.0), ball_velocity=(0, 0, 0))
    fell = None
    for i in range(100):
        dec, term = step(env, constant(n, 1.0, 0.0))  # tilt about z as far as allowed and hold
        if len(term):
            fell = i
            break
        assert np.allclose(dec.reward, 0.1)
    assert fell is not None and fell > 5  # it rolled off, it was not thrown off at once
    assert sorted(term.agent_id.tolist()) == list(range(n))
    assert np.all(term.reward == -1.0) and not term.interrupted.any()
    final = term.obs[0]
    assert np.all((final[:, 3] < -2) | (np.abs(final[:, 2]) > 3) | (np.abs(final[:, 4]) > 3))
    assert np.all(np.abs(final[:, 2]) > 2.5)  # rolled along x (the z tilt)
    # The areas were reset at once: new episode, reward 0, ball back at height 4 and at rest.
    assert np.all(dec.reward == 0.0)
    assert np.all(dec.obs[0][:, 3] == 4.0) and np.all(dec.obs[0][:, 5:8] == 0.0)
    dec2, term2 = step(env, constant(n, 0.0, 0.0))
    assert len(term2) == 0 and np.allclose(dec2.reward, 0.1)


def test_balanced_reward_and_max_step_interrupts():
    n = 3
    env = Ball3DEnv(num_areas=n, seed=0)
    env.reset()
    env.debug_set_state(rotation=FLAT, ball_position=(0.0, resting_height(1.0), 0.0), ball_velocity=(0, 0, 0))
    total = np.zeros(n)
    for _ in range(MAX_DECISIONS - 1):
        env.step()  # no set_actions: zero actions
        dec, term = env.get_steps(BEHAVIOR_NAME)
        assert len(term) == 0
        total += dec.reward
    assert np.allclose(total, 0.1 * (MAX_DECISIONS - 1), atol=1e-3)
    assert np.allclose(dec.obs[0][:, 2:8], [0, 3.0, 0, 0, 0, 0], atol=1e-4)  # still resting centred
    dec, term = step(env)
    assert sorted(term.agent_id.tolist()) == list(range(n))
    assert np.all(term.interrupted) and np.allclose(term.reward, 0.1)
    assert np.allclose(term.obs[0][:, 3], 3.0, atol=1e-4)
    assert np.all(dec.reward == 0.0) and np.all(dec.obs[0][:, 3] == 4.0)


def test_scale_sets_ball_radius_and_applies_at_episode_start():
    n = 2
    env = Ball3DEnv(num_areas=n, seed=0, parameters={"scale": 2.0})
    env.reset()
    env.debug_set_state(rotation=FLAT, ball_position=(0.0, 4.5, 0.0), ball_velocity=(0, 0, 0))
    for _ in range(20):
        dec, _ = step(env)
    assert np.allclose(dec.obs[0][:, 3], resting_height(2.0), atol=1e-4)
    assert np.allclose(dec.obs[0][:, 5:8], 0.0, atol=1e-4)
    env.set_environment_parameter("scale", 0.5)
    for _ in range(5):
        dec, _ = step(env)
    assert np.allclose(dec.obs[0][:, 3], resting_height(2.0), atol=1e-4)  # same episode, same ball
    env.reset()
    env.debug_set_state(rotation=FLAT, ball_position=(0.0, 4.0, 0.0), ball_velocity=(0, 0, 0))
    for _ in range(20):
        dec, _ = step(env)
    assert np.allclose(dec.obs[0][:, 3], resting_height(0.5), atol=1e-4)


def test_gravity_sets_fall_speed():
    speeds = {}
    for g in (9.81, 4.0):
        env = Ball3DEnv(num_areas=2, seed=0, parameters={"gravity": g})
        env.reset()
        env.debug_set_state(rotation=FLAT, ball_position=(0.0, 40.0, 0.0), ball_velocity=(0, 0, 0))
        dec, _ = step(env)
        dec, _ = step(env)
        speeds[g] = dec.obs[0][:, 6]
        k = 10  # physics steps: semi-implicit Euler has v = -g k dt, p = p0 - g dt^2 k (k + 1) / 2
        assert np.allclose(speeds[g], -g * k * DT, rtol=1e-5)
        assert np.allclose(dec.obs[0][:, 3], 40.0 - g * DT * DT * k * (k + 1) / 2, rtol=1e-5)
    env.set_environment_parameter("gravity", 9.81)  # gravity acts at once, as in Unity
    dec, _ = step(env)
    assert np.allclose(dec.obs[0][:, 6] - speeds[4.0], -9.81 * 5 * DT, rtol=1e-4)


def test_unknown_parameter_and_behavior():
    with pytest.raises(EnvError, match="masss"):
        Ball3DEnv(num_areas=2, parameters={"masss": 2.0})
    env = Ball3DEnv(num_areas=2, parameters={"mass": 2.0, "scale": 1.5, "gravity": 5.0})
    with pytest.raises(EnvError, match="gravty"):
        env.set_environment_parameter("gravty", 1.0)
    env.reset()
    with pytest.raises(EnvError, match="unknown behaviour"):
        env.get_steps("3DBallHard")


def test_wrong_action_shape():
    env = Ball3DEnv(num_areas=4, seed=0)
    env.reset()
    with pytest.raises(EnvError, match=r"\(4, 2\).*\(3, 2\)"):
        env.set_actions(BEHAVIOR_NAME, actions(np.zeros((3, 2))))
    with pytest.raises(EnvError, match=r"\(4, 2\).*\(4, 1\)"):
        env.set_actions(BEHAVIOR_NAME, actions(np.zeros((4, 1))))
    with pytest.raises(EnvError, match="reset"):
        Ball3DEnv(num_areas=4).step()


def test_action_applies_on_every_physics_step():
    env = Ball3DEnv(num_areas=3, seed=0)
    env.reset()
    env.debug_set_state(rotation=FLAT, ball_position=(0.0, 40.0, 0.0))
    dec, _ = step(env, actions([[1.0, 0.0], [0.0, -0.5], [3.0, 0.0]]))  # 3.0 is clipped to 1
    # 5 physics steps of 2*a degrees about local z (a0) or x (a1): q.z = sin(5 deg), q.x = -sin(2.5 deg).
    assert np.allclose(dec.obs[0][:, 0:2], [[SIN5, 0], [0, -math.sin(math.radians(2.5))], [SIN5, 0]], atol=1e-6)


def test_step_without_actions_keeps_the_platform_still():
    env = Ball3DEnv(num_areas=8, seed=4)
    env.reset()
    before = env.get_steps(BEHAVIOR_NAME)[0].obs[0][:, 0:2].copy()
    dec, _ = step(env, constant(8, 1.0, -1.0))
    moved = dec.obs[0][:, 0:2].copy()
    assert not np.allclose(moved, before)
    dec, _ = step(env)  # no set_actions since the last step: zero actions
    assert np.allclose(dec.obs[0][:, 0:2], moved, atol=1e-6)


def test_same_seed_same_trajectory():
    def run(seed: int) -> list[np.ndarray]:
        env = Ball3DEnv(num_areas=16, seed=seed)
        rng = np.random.default_rng(0)
        env.reset()
        out = [env.get_steps(BEHAVIOR_NAME)[0].obs[0]]
        for _ in range(60):
            dec, term = step(env, actions(rng.uniform(-1, 1, (16, 2))))
            out += [dec.obs[0], dec.reward, term.obs[0], term.agent_id]
        return out

    a, b, c = run(7), run(7), run(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_compact_and_expanded_layouts_agree():
    """Small batches store the rotation coefficients expanded, large ones compact and broadcast."""
    rng = np.random.default_rng(5)
    small, large = Ball3DEnv(num_areas=12, seed=9), Ball3DEnv(num_areas=300, seed=9)
    assert small._expanded and not large._expanded
    small.reset()
    large.reset()
    first = large.get_steps(BEHAVIOR_NAME)[0].obs[0][:12]
    assert np.array_equal(small.get_steps(BEHAVIOR_NAME)[0].obs[0], first)  # same draws
    for _ in range(15):
        a = rng.uniform(-1, 1, (300, 2))
        ds, ts = step(small, actions(a[:12]))
        dl, tl = step(large, actions(a))
        if len(ts):
            break
        assert np.array_equal(ds.obs[0], dl.obs[0][:12])


# --------------------------------------------------------------------------------------------------
# the optimised float32 physics against the plain float64 model
# --------------------------------------------------------------------------------------------------


def test_matches_reference_model():
    n = 24
    rng = np.random.default_rng(11)
    env = Ball3DEnv(num_areas=n, seed=0, parameters={"scale": 1.2})
    radius = 0.6
    env.reset()
    q = random_rotations(rng, n, 8.0)
    p = np.array([rng.uniform(-1, 1, n), rng.uniform(3.0, 4.0, n), rng.uniform(-1, 1, n)])
    p[1, :8] = 40.0  # some balls far above: free fall while the platforms turn
    v = np.array([rng.uniform(-0.5, 0.5, n), rng.uniform(-1, 0, n), rng.uniform(-0.5, 0.5, n)])
    env.debug_set_state(rotation=unity_quaternion(q), ball_position=p.T, ball_velocity=v.T)
    contact = np.zeros(n, bool)
    rolling = []
    for _ in range(12):
        act = rng.uniform(-0.6, 0.6, (n, 2))
        act[:8] = rng.choice([-1.0, 1.0], (8, 2))  # the free-fall areas go to the gates
        dec, term = step(env, actions(act))
        q, p, v, contact, fell_at = reference_decision(q, p, v, contact, act, radius)
        assert len(term) == 0 and np.all(fell_at < 0)
        obs = dec.obs[0]
        assert np.allclose(obs[:, 0], q[3], atol=2e-5) and np.allclose(obs[:, 1], q[1], atol=2e-5)
        assert np.allclose(obs[:, 2:5], p.T, atol=1e-4)
        assert np.allclose(obs[:, 5:8], v.T, atol=1e-4)
        rolling.append(contact[8:].mean())
    assert np.abs(q[[1, 3], :8]).max() >= 0.25  # the gates were exercised
    assert np.mean(rolling) > 0.4  # and the other balls spent much of the time on their platforms


def test_terminal_observation_is_the_fall_substep():
    """The episode ends on the first sub-step whose starting position is off, with that state."""
    n = 6
    env = Ball3DEnv(num_areas=n, seed=0)
    env.reset()
    q = random_rotations(np.random.default_rng(1), n, 3.0)
    p = np.array([[2.9, 2.95, -2.99, 0, 0, 0], [3.0, 3.0, 3.0, -1.0, -1.9, 5.0], [0, 0, 0, 0, 0, 2.99]])
    v = np.array([[3.0, 2.0, -1.0, 0, 0, 0], [0, 0, 0, 0, -3.0, 0], [0, 0, 0, 0, 0, 4.0]])
    env.debug_set_state(rotation=unity_quaternion(q), ball_position=p.T, ball_velocity=v.T)
    act = np.tile([0.7, -0.4], (n, 1))
    _, rp, _, _, fell_at = reference_decision(q, p, v, np.zeros(n, bool), act)
    assert fell_at.tolist() == [2, 2, 1, -1, 2, 1]  # the situations are what this test means
    dec, term = step(env, actions(act))
    assert term.agent_id.tolist() == [0, 1, 2, 4, 5]
    assert np.all(term.reward == -1.0) and not term.interrupted.any()
    for row, i in enumerate(term.agent_id):
        qi, pi, vi, ci = q[:, [i]], p[:, [i]], v[:, [i]], np.zeros(1, bool)
        for _ in range(fell_at[i]):
            qi, used = reference_rotate(qi, act[[i]])
            pi, vi, ci = reference_physics(qi, pi, vi, ci, used, 0.5, 9.81)
        qi, _ = reference_rotate(qi, act[[i]])
        got = term.obs[0][row]
        assert np.allclose(got[0:2], [qi[3, 0], qi[1, 0]], atol=1e-5)
        assert np.allclose(got[2:5], pi[:, 0], atol=1e-4) and np.allclose(got[5:8], vi[:, 0], atol=1e-3)
    assert np.allclose(dec.obs[0][3, 2:5], rp[:, 3], atol=1e-4)  # area 3 is still on
