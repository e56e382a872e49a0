"""The 2D arena engine (mlx.envs.native.arena): ray perception against hand-computed hits, contacts, pushing,
friction, per-area layouts, spawning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlx.envs.api import EnvError
from mlx.envs.native.arena import (
    TOUCH_DISTANCE,
    Arena,
    BodySpec,
    StaticSpec,
    box_overlaps,
    rounded_box_contact,
    sample_positions,
)
from mlx.envs.native.rays import RaySensor, RaySensorSpec, ray_angles

TAGS = ("block", "goal", "wall")
NO_FRICTION = (0.0, 0.0)


def make_arena(n: int = 1, half: float = 10.0, statics=(), block=(1.0, 1.0), drag=(0.0, 0.0), **kwargs) -> Arena:
    """An agent (circle r=0.5, 1 m tall) and a block (box, 0.75 m tall) in a square of side 2*half."""
    bodies = [
        BodySpec.circle("agent", 0.5, height=(0.0, 1.0), mass=10.0, drag=drag[0], friction=NO_FRICTION, tag="agent"),
        BodySpec.box("block", block, height=(0.0, 0.75), mass=10.0, drag=drag[1], friction=NO_FRICTION, tag="block"),
    ]
    kwargs.setdefault("ground_friction", NO_FRICTION)
    return Arena(
        n,
        bodies,
        statics,
        bounds=(-half, -half, half, half),
        bounds_height=(-0.5, 1.5),
        num_agents=1,
        run_speed=3.0,
        turn_speed=200.0,
        **kwargs,
    )


def place(arena: Arena, agent=(0.0, 0.0), block=(100.0, 100.0), heading: float = 0.0) -> None:
    """Positions for every area; a block far outside the bounds is out of every ray's reach."""
    arena.pos[:, 0] = np.asarray(agent, np.float32)[:, None]
    arena.pos[:, 1] = np.asarray(block, np.float32)[:, None]
    arena.heading[:] = heading


def rays(sensor: RaySensor) -> np.ndarray:
    """The first area's frame as [ray, tags + 2]."""
    return sensor.perceive()[0].reshape(sensor.spec.num_rays, -1)


def sensor(arena: Arena, radius: float = 0.0, length: float = 20.0, offset: float = 0.0, stacks: int = 1, **kw):
    spec = RaySensorSpec(TAGS, 3, 90.0, radius, length, offset, stacks, **kw)
    return RaySensor(arena, spec)


MISS = [0.0, 0.0, 0.0, 1.0, 1.0]


def hit(tag: str, fraction: float) -> list[float]:
    return [float(t == tag) for t in TAGS] + [0.0, fraction]


# --------------------------------------------------------------------------------------------------
# ray perception
# --------------------------------------------------------------------------------------------------


def test_ray_angles_alternate_from_the_centre_as_ml_agents():
    assert ray_angles(3, 90.0).tolist() == [90, 60, 120, 30, 150, 0, 180]
    assert ray_angles(2, 70.0).tolist() == [90, 55, 125, 20, 160]
    assert ray_angles(0, 70.0).tolist() == [90]


def test_spec_sizes_and_names():
    spec = RaySensorSpec(TAGS, 3, 90.0, 0.5, 12.0, 0.0, 3)
    assert (spec.num_rays, spec.frame_size, spec.size) == (7, 35, 105)
    assert spec.observation_name == "StackingSensor_size3_RayPerceptionSensor"
    assert RaySensorSpec(TAGS, name="Eyes").observation_name == "Eyes"


def test_wall_straight_ahead_at_a_known_distance():
    arena = make_arena(half=10.0)
    place(arena, agent=(0.0, 4.0))  # facing +z: the wall's inner face is 6 m ahead
    got = rays(sensor(arena, radius=0.0, length=20.0))
    assert got[0] == pytest.approx(hit("wall", 6.0 / 20.0))
    # Rays 30 degrees right and left of forward meet the same wall at 6 / cos(30 deg).
    assert got[1] == pytest.approx(hit("wall", 6.0 / math.cos(math.radians(30)) / 20.0), rel=1e-5)
    assert got[2] == pytest.approx(got[1])
    # A sphere of radius 0.5 stops half a metre earlier.
    assert rays(sensor(arena, radius=0.5, length=20.0))[0] == pytest.approx(hit("wall", 5.5 / 20.0))


def test_block_to_the_side_and_ray_order():
    arena = make_arena(half=10.0)
    place(arena, agent=(0.0, 0.0), block=(4.0, 0.0))  # block 4 m to the right, half width 1
    got = rays(sensor(arena, radius=0.5, length=20.0))
    # Ray 5 is the rightmost (angle 0): the grown block face is at 4 - 1 - 0.5.
    assert got[5] == pytest.approx(hit("block", 2.5 / 20.0))
    assert got[6] == pytest.approx(hit("wall", 9.5 / 20.0))  # leftmost: the -x wall
    # Turned to face +x, the block is straight ahead (ray 0) and the right ray sees the -z wall.
    arena.heading[:] = math.pi / 2
    got = rays(sensor(arena, radius=0.5, length=20.0))
    assert got[0] == pytest.approx(hit("block", 2.5 / 20.0), abs=1e-6)
    assert got[5] == pytest.approx(hit("wall", 9.5 / 20.0), abs=1e-6)


def test_nothing_hit_and_untagged_hits():
    arena = make_arena(half=50.0)
    place(arena)
    assert rays(sensor(arena, radius=0.5, length=10.0)).tolist() == [MISS] * 7
    # The block's tag not detectable: a hit with an all-zero one-hot.
    spec = RaySensorSpec(("goal", "wall"), 3, 90.0, 0.0, 10.0)
    place(arena, block=(0.0, 5.0))
    assert rays(RaySensor(arena, spec))[0] == pytest.approx([0.0, 0.0, 0.0, 0.4 / 1.0])


def test_inactive_and_per_area_statics():
    goal = StaticSpec("goal", (0.0, 5.0), (2.0, 1.0), (0.0, 1.0), tag="goal")
    arena = make_arena(n=3, half=50.0, statics=[goal])
    place(arena)
    arena.place_static("goal", (np.array([0.0, 0.0, 3.0]), np.array([5.0, 8.0, 5.0])))
    arena.set_active("goal", np.array([True, True, False]))
    frames = sensor(arena, radius=0.0, length=10.0).perceive().reshape(3, 7, 5)
    assert frames[0, 0] == pytest.approx(hit("goal", 0.4))
    assert frames[1, 0] == pytest.approx(hit("goal", 0.7))
    assert frames[2, 0] == pytest.approx(MISS)


def test_sphere_cast_corners_are_round():
    """A ray passing a box corner diagonally meets the rounded corner, not the grown square."""
    arena = make_arena(half=50.0)
    place(arena, agent=(0.0, 0.0), block=(2.0, 5.0), heading=0.0)  # corner (1, 4) of the block
    place(arena, agent=(0.5, 0.0), block=(2.0, 5.0))
    got = rays(sensor(arena, radius=0.8, length=20.0))
    # The grown square would be met at z = 4 - 0.8; the circle of radius 0.8 round the corner (1, 4)
    # is met later, at x = 0.5.
    expected = 4.0 - math.sqrt(0.8**2 - 0.5**2)
    assert got[0] == pytest.approx(hit("block", expected / 20.0), rel=1e-5)
    place(arena, agent=(0.1, 0.0), block=(2.0, 5.0))  # 0.9 from the corner: passes it
    assert rays(sensor(arena, radius=0.8, length=20.0))[0] == pytest.approx(MISS)


def test_vertical_reach_of_offset_sensors():
    """A sensor 1.5 m up (a 2 m-high sphere centre) passes over the 0.75 m block and grazes the 1.5 m
    walls (a tangent touch counts, as a thin ray); a 0.5 m sensor sees the block."""
    arena = make_arena(half=10.0)
    place(arena, agent=(0.0, 0.0), block=(0.0, 4.0))
    low, high = sensor(arena, radius=0.5), sensor(arena, radius=0.5, offset=1.5)
    assert rays(low)[0] == pytest.approx(hit("block", 2.5 / 20.0))
    assert rays(high)[0] == pytest.approx(hit("wall", 10.0 / 20.0))
    assert high.targets.size == 0 and high.sees_bounds
    assert rays(sensor(arena, radius=0.5, offset=1.6)).tolist() == [MISS] * 7


def test_start_overlap_is_ignored():
    """Unity's SphereCast ignores a collider the sphere overlaps at its start: an agent pressed against
    the block sees through it, and never sees itself."""
    arena = make_arena(half=10.0)
    place(arena, agent=(0.0, 2.5), block=(0.0, 4.0))  # agent face against the block face
    assert rays(sensor(arena, radius=0.5))[0] == pytest.approx(hit("wall", 7.0 / 20.0))
    assert rays(sensor(arena, radius=0.0))[0] == pytest.approx(hit("block", 0.5 / 20.0))
    place(arena, agent=(0.0, 9.5))  # against the +z wall: rays towards it see nothing of it
    got = rays(sensor(arena, radius=0.5))
    assert got[0] == pytest.approx(MISS)
    assert got[5] == pytest.approx(hit("wall", 9.5 / 20.0))  # the +x wall is still seen


def test_observation_stacking_oldest_first_and_restart():
    arena = make_arena(n=2, half=10.0)
    place(arena, agent=(0.0, 0.0))
    s = sensor(arena, radius=0.0, length=20.0, stacks=3)
    frames = []
    for z in (0.0, 2.0, 4.0):
        arena.pos[1, 0] = z
        frames.append(s.perceive()[0].copy())
        out = s.observe()
    assert out.shape == (2, 105) and out.dtype == np.float32
    assert np.array_equal(out[0], np.concatenate(frames))
    arena.pos[1, 0] = 6.0
    first = s.restart(np.array([1]))
    assert np.array_equal(first[0, :70], np.zeros(70)) and np.array_equal(first[0, 70:], s.perceive()[1])
    nxt = s.observe()
    assert np.array_equal(nxt[1, :35], np.zeros(35))  # area 1 restarted: one zero frame left
    assert np.array_equal(nxt[0, :35], frames[1])  # area 0 went on


# --------------------------------------------------------------------------------------------------
# physics
# --------------------------------------------------------------------------------------------------


def test_agent_speed_follows_velocity_change_and_damping():
    arena = make_arena(half=100.0)
    arena.set_drag(0, 4.0)
    place(arena)
    arena.drive(np.ones((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)))
    v = 0.0
    for _ in range(30):
        arena.step()
        v = (v + 3.0) * (1 - 4.0 * 0.02)  # ForceMode.VelocityChange, then PhysX damping
    assert arena.vel[1, 0, 0] == pytest.approx(v, rel=1e-5)
    assert arena.vel[0, 0, 0] == pytest.approx(0.0, abs=1e-6)


def test_commands_move_relative_to_the_heading_and_turn_right():
    arena = make_arena(n=3, half=100.0)
    place(arena)
    arena.heading[:] = np.array([0.0, math.pi / 2, math.pi])
    arena.drive(np.array([[1.0, 1.0, 0.0]]), np.array([[0.0, 0.0, 0.75]]), np.zeros((1, 3)))
    arena.step()
    # forward at heading 0 is +z, at 90 degrees +x; strafing right at heading 180 is -x.
    assert np.allclose(arena.vel[:, 0].T, [[0, 3], [3, 0], [-2.25, 0]], atol=1e-5)
    arena.drive(np.zeros((1, 3)), np.zeros((1, 3)), np.array([[1.0, -1.0, 0.0]]))
    arena.step(5)
    turned = np.degrees(arena.heading[0] - np.array([0.0, math.pi / 2, math.pi]))
    assert turned == pytest.approx([20.0, -20.0, 0.0], abs=1e-4)  # 200 deg/s * 0.02 s * 5 steps


def test_walls_stop_bodies_and_report_touches():
    arena = make_arena(half=5.0, drag=(4.0, 0.5))
    place(arena, agent=(0.0, 0.0), block=(-2.0, -2.0))
    arena.drive(np.ones((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)))
    for _ in range(50):
        arena.step()
    assert arena.pos[1, 0, 0] == pytest.approx(4.5)  # radius 0.5 against the wall at 5
    assert arena.vel[1, 0, 0] == pytest.approx(0.0, abs=1e-6)
    assert arena.touch_bounds[0, 0] and not arena.touch_bounds[1, 0]
    arena.clear_touches()
    assert not arena.touch_bounds.any()


def test_agent_pushes_block_inelastically():
    arena = make_arena(half=50.0, drag=(4.0, 0.5))
    place(arena, agent=(0.0, 0.0), block=(0.0, 3.0))
    arena.drive(np.ones((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)))
    moved_at = None
    for i in range(40):
        arena.step()
        if moved_at is None and arena.vel[1, 1, 0] > 0:
            moved_at = i
            # Equal masses, no bounce: both move at the common speed after the first impact.
            assert arena.vel[1, 0, 0] == pytest.approx(arena.vel[1, 1, 0], rel=1e-5)
            assert arena.touch_pair[0, 0]
    assert moved_at is not None
    assert arena.pos[1, 1, 0] > 5.0 and arena.vel[1, 1, 0] > 5.0  # the block was carried forward
    gap = arena.pos[1, 1, 0] - arena.pos[1, 0, 0] - 1.5
    assert gap > -0.05  # no deep overlap
    assert abs(arena.pos[0, 1, 0]) < 1e-6  # pushed straight


def test_heavier_block_moves_less():
    arena = make_arena(n=2, half=50.0)
    arena.set_mass(1, np.array([10.0, 40.0]))
    place(arena, agent=(0.0, 0.0), block=(0.0, 1.5))  # touching
    arena.vel[1, 0] = 10.0
    arena.step()
    # Momentum is shared: v = 10 m / (m + M) for the 10 kg agent.
    assert arena.vel[1, 1] == pytest.approx([5.0, 2.0], rel=1e-4)


def test_solid_statics_block_and_triggers_only_report():
    statics = [
        StaticSpec("goal", (0.0, 6.0), (10.0, 1.0), (0.0, 1.5), solid=True, tag="goal"),
        StaticSpec("zone", (0.0, 2.0), (10.0, 0.5), (0.0, 0.1), solid=False, tag=None),
    ]
    arena = make_arena(half=50.0, statics=statics, drag=(4.0, 0.5))
    place(arena, agent=(0.0, 0.0))
    arena.drive(np.ones((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)))
    zone_seen = False
    for _ in range(60):
        arena.step()
        zone_seen |= bool(arena.touch_static[0, 1, 0])
    assert arena.pos[1, 0, 0] == pytest.approx(4.5)  # stopped by the goal's face at 5
    assert arena.touch_static[0, 0, 0]
    assert zone_seen  # the trigger was crossed without stopping the agent


def test_static_box_pushes_a_box_out_along_least_overlap():
    arena = make_arena(half=50.0, statics=[StaticSpec("goal", (0.0, 0.0), (2.0, 2.0), tag="goal")])
    place(arena, agent=(30.0, 30.0), block=(2.5, 0.4))  # overlapping 0.5 in x, 2.6 in z
    arena.step()
    assert arena.pos[:, 1, 0] == pytest.approx([3.0, 0.4])


def test_floor_friction_stops_a_sliding_block():
    arena = make_arena(half=500.0, ground_friction=(0.4, 0.4))
    arena.friction[:] = 0.4  # combined 0.4
    arena.refresh()
    place(arena, agent=(-100.0, -100.0), block=(0.0, 0.0))
    arena.vel[0, 1] = 5.0
    for _ in range(200):
        arena.step()
    # No drag: the speed falls by mu g dt per step until it is below mu_s g dt, then it sticks.
    step, v, x = 0.4 * 9.81 * 0.02, 5.0, 0.0
    while v > step:
        v -= step
        x += v * 0.02
    assert arena.vel[0, 1, 0] == 0.0
    assert arena.pos[0, 1, 0] == pytest.approx(x, rel=1e-4)
    assert x == pytest.approx(5.0**2 / (2 * 0.4 * 9.81), rel=0.05)


def test_areas_are_independent():
    """Random states stepped together equal the same states stepped one area at a time."""
    rng = np.random.default_rng(3)
    n = 16
    goal = StaticSpec("goal", (0.0, -10.5), (12.5, 2.15), (-1.5, 1.5), tag="goal")
    batch = make_arena(n=n, half=12.5, statics=[goal], ground_friction=(0.3, 0.3), drag=(4.0, 0.5))
    pos = rng.uniform(-6, 6, (2, 2, n)).astype(np.float32)
    heading = rng.uniform(-3, 3, (1, n)).astype(np.float32)
    cmds = rng.uniform(-1, 1, (3, 1, n)).astype(np.float32)
    batch.pos[:] = pos
    batch.heading[:] = heading
    batch.drive(*cmds)
    batch.step(25)
    view = sensor(batch, radius=0.5, length=12.0).perceive()
    for i in range(n):
        one = make_arena(n=1, half=12.5, statics=[goal], ground_friction=(0.3, 0.3), drag=(4.0, 0.5))
        one.pos[:] = pos[:, :, i : i + 1]
        one.heading[:] = heading[:, i : i + 1]
        one.drive(*cmds[:, :, i : i + 1])
        one.step(25)
        assert np.allclose(one.pos[..., 0], batch.pos[..., i], atol=1e-5)
        assert np.allclose(sensor(one, radius=0.5, length=12.0).perceive()[0], view[i], atol=1e-5)


def test_rounded_box_contact_cases():
    h = np.array([[1.0], [1.0]], np.float32)
    n, pen = rounded_box_contact(np.array([[2.5], [0.0]], np.float32), h, np.array([1.0], np.float32))
    assert n[:, 0] == pytest.approx([1.0, 0.0]) and pen[0] == pytest.approx(-0.5)
    n, pen = rounded_box_contact(np.array([[1.5], [1.5]], np.float32), h, np.array([1.0], np.float32))
    assert n[:, 0] == pytest.approx([math.sqrt(0.5)] * 2) and pen[0] == pytest.approx(1 - math.sqrt(0.5))
    n, pen = rounded_box_contact(np.array([[0.2], [-0.9]], np.float32), h, np.array([0.0], np.float32))
    assert n[:, 0] == pytest.approx([0.0, -1.0]) and pen[0] == pytest.approx(0.1)


def test_touch_distance_is_the_contact_offsets():
    arena = make_arena(half=50.0)
    place(arena, agent=(0.0, 0.0), block=(0.0, 1.5 + TOUCH_DISTANCE / 2))
    arena.step()
    assert arena.touch_pair[0, 0]
    arena.clear_touches()
    place(arena, agent=(0.0, 0.0), block=(0.0, 1.5 + 2 * TOUCH_DISTANCE))
    arena.step()
    assert not arena.touch_pair[0, 0]


# --------------------------------------------------------------------------------------------------
# set-up helpers
# --------------------------------------------------------------------------------------------------


def test_sample_positions_respects_the_test_and_the_seed():
    def free(x, z, rows):
        return ~box_overlaps(x, z, (1.0, 1.0), 0.0, 0.0, 2.0, 2.0)

    a = sample_positions(np.random.default_rng(5), 200, (-5, -5), (5, 5), free)
    b = sample_positions(np.random.default_rng(5), 200, (-5, -5), (5, 5), free)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.all(np.maximum(np.abs(a[0]), np.abs(a[1])) >= 3.0)
    assert np.all(np.abs(a[0]) <= 5.0) and np.all(np.abs(a[1]) <= 5.0)
    with pytest.raises(EnvError, match="free spawn position"):
        sample_positions(np.random.default_rng(0), 3, (-1, -1), (1, 1), lambda x, z, r: x > 5, max_rounds=5)


def test_box_overlaps_circle_and_box():
    assert box_overlaps(0.0, 0.0, (1.0, 1.0), 1.5, 0.0, 0.0, 0.0, 0.6)  # circle reaching into the box
    assert not box_overlaps(0.0, 0.0, (1.0, 1.0), 1.5, 0.0, 0.0, 0.0, 0.5)  # touching only
    assert box_overlaps(0.0, 0.0, (1.0, 1.0), 2.9, 0.0, 2.0, 2.0)
    assert not box_overlaps(0.0, 0.0, (1.0, 1.0), 3.0, 0.0, 2.0, 2.0)


def test_bad_settings_are_refused():
    with pytest.raises(EnvError, match="num_areas"):
        make_arena(n=0)
    arena = make_arena()
    with pytest.raises(EnvError, match="unknown tag 'gaol'"):
        arena.tag_id("gaol")
    with pytest.raises(EnvError, match="mass"):
        arena.set_mass(1, 0.0)
    with pytest.raises(EnvError, match="agent"):
        RaySensor(arena, RaySensorSpec(TAGS), agent=1)
