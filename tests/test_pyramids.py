"""Pyramids (mlx.envs.native.pyramids): the env contract, upstream's rules (switch, pyramid, gold brick, rewards,
episode ends, room layout), the three ray sensors against hand-computed hits, actions, parameters, seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.checker import check_env
from mlx.envs.native.pyramids import (
    BEHAVIOR_NAME,
    DECISION_PENALTY,
    GOLD_REWARD,
    MAX_DECISIONS,
    NUM_STONES,
    ROOMS,
    SPAWN_HALF,
    TAGS,
    PyramidsEnv,
)

FRAME = 56  # 7 rays x (6 tags + 2)
COL = {tag: i for i, tag in enumerate(TAGS)}
MISS = [0.0] * len(TAGS) + [1.0, 1.0]


def hit(tag: str, distance: float) -> list[float]:
    row = [0.0] * (len(TAGS) + 2)
    row[COL[tag]] = 1.0
    row[-1] = distance / 35.0
    return row


def act(env: PyramidsEnv, action: int | np.ndarray) -> ActionTuple:
    a = np.broadcast_to(np.asarray(action, np.int32), (env.num_areas,)).reshape(-1, 1)
    return ActionTuple(continuous=np.zeros((env.num_areas, 0), np.float32), discrete=a.copy())


def step(env: PyramidsEnv, action: int | np.ndarray = 0):
    env.set_actions(BEHAVIOR_NAME, act(env, action))
    env.step()
    return env.get_steps(BEHAVIOR_NAME)


def scene(env: PyramidsEnv, agent=(0.0, 0.0), heading: float = 0.0, switch=(200.0, 200.0)) -> None:
    """Every area: the agent at rest, the switch where given, the stones out of reach."""
    ar = env.arena
    ar.pos[:, 0] = np.asarray(agent, np.float32)[:, None]
    ar.heading[:] = heading
    ar.stop()
    ar.center[:, env._slot["switch"]] = np.asarray(switch, np.float32)[:, None]
    ar.center[:, env._stones] = 300.0
    ar.refresh()


def rays(obs: np.ndarray) -> np.ndarray:
    return obs[0].reshape(7, len(TAGS) + 2)


def test_env_contract():
    check_env(lambda seed: make_env("pyramids", num_areas=4, seed=seed), steps=150)


def test_specs_and_first_observation():
    env = make_env("pyramids", num_areas=3, seed=0)
    assert isinstance(env, PyramidsEnv)
    spec = env.behavior_specs[BEHAVIOR_NAME]
    assert [o.shape for o in spec.observation_specs] == [(FRAME,), (FRAME,), (FRAME,), (4,)]
    assert sum(o.shape[0] for o in spec.observation_specs) == 172
    assert [o.name for o in spec.observation_specs] == [
        "RayPerceptionSensor",
        "RayPerceptionSensor1",
        "RayPerceptionSensor2",
        "VectorSensor_size4",
    ]
    assert spec.action_spec.discrete_branches == (5,) and spec.action_spec.continuous_size == 0
    env.reset()
    dec, term = env.get_steps(BEHAVIOR_NAME)
    assert np.array_equal(dec.agent_id, [0, 1, 2]) and len(term) == 0
    assert np.all(dec.obs[3] == 0.0)  # switch off, at rest
    assert np.all(dec.reward == 0.0)


def test_episode_start_puts_one_object_per_room():
    env = PyramidsEnv(num_areas=64, seed=5)
    env.reset()
    ar = env.arena

    def room_of(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = np.abs(x[..., None] - ROOMS[:, 0]) + np.abs(z[..., None] - ROOMS[:, 1])
        return d.argmin(-1)

    agent = room_of(ar.pos[0, 0], ar.pos[1, 0])
    switch = room_of(*ar.center[:, env._slot["switch"]])
    stones = room_of(*ar.center[:, env._stones])  # [6, n]
    rooms = np.vstack([agent, switch, env.pyramid_room, stones])  # [9, n]
    assert np.all(np.sort(rooms, axis=0) == np.arange(9)[:, None])  # a permutation in every area
    for (x, z), r in ((ar.pos[:, 0], agent), (ar.center[:, env._slot["switch"]], switch)):
        assert np.all(np.abs(x - ROOMS[r, 0]) <= SPAWN_HALF) and np.all(np.abs(z - ROOMS[r, 1]) <= SPAWN_HALF)
    degrees = np.degrees(ar.heading[0])
    assert np.allclose(degrees, np.round(degrees), atol=1e-3) and degrees.min() >= 0 and degrees.max() < 360
    assert len(np.unique(agent)) > 5 and len(np.unique(np.round(degrees))) > 30  # really random
    assert not ar.active[env._slot["pyramid"]].any() and not ar.active[env._slot["gold"]].any()
    assert np.all(ar.tag[env._slot["switch"]] == ar.tag_id("switchOff")) and stones.shape[0] == NUM_STONES


def test_horizontal_and_tilted_rays_see_the_switch():
    env = PyramidsEnv(num_areas=1, seed=0)
    env.reset()
    scene(env, agent=(0.0, 0.0), heading=0.0, switch=(0.0, 10.0))
    dec, _ = step(env, 0)
    # The switch's face 8 m ahead, less the sphere's radius: every sensor's centre ray meets it (the
    # tilted ones are still below its 4 m top there).
    for k in range(3):
        assert rays(dec.obs[k])[0] == pytest.approx(hit("switchOff", 7.5), abs=1e-5)
    # Rays 46.67 degrees to the left meet the cruciform wall's arm at x = -16.06: 15.56 / sin(46.67)
    # away for the sphere; the 10 m sensor's ray (75 degrees: 50 degrees off) is above the 4.52 m wall
    # beyond 15.8 m and sees nothing.
    dist = 15.558 / math.sin(math.radians(70 * 2 / 3))
    assert rays(dec.obs[0])[4] == pytest.approx(hit("wall", dist), abs=2e-3)
    assert rays(dec.obs[2])[4] == pytest.approx(MISS)


def test_tilted_rays_pass_over_walls_beyond_their_height():
    env = PyramidsEnv(num_areas=1, seed=0)
    env.reset()
    scene(env, agent=(0.0, 25.0), heading=0.0)
    dec, _ = step(env, 0)
    to_wall = 49.1 - 0.5 - 25.0  # the outer wall's face, less the sphere's radius
    assert rays(dec.obs[0])[0] == pytest.approx(hit("wall", to_wall), abs=1e-4)
    assert rays(dec.obs[1])[0] == pytest.approx(hit("wall", to_wall), abs=1e-4)  # 3.9 m up there: below 5 m
    assert rays(dec.obs[2])[0] == pytest.approx(MISS)  # 7.2 m up: over the wall


def test_gold_brick_on_top_is_seen_by_the_rising_ray_only():
    env = PyramidsEnv(num_areas=1, seed=0)
    env.reset()
    scene(env, agent=(0.0, -10.0), heading=0.0)
    ar = env.arena
    for name in ("pyramid", "gold_top"):
        ar.center[:, env._slot[name], 0] = (0.0, 16.0)
        ar.active[env._slot[name], 0] = True
    ar.refresh()
    dec, _ = step(env, 0)
    # 26 m away: the horizontal ray meets the bricks' face; the 5 m sensor's ray is 3.8 m up at that face
    # (above the 3 m bricks) and meets the gold brick's face at 25 m, 4.1 m up; the 10 m sensor's ray
    # passes over both.
    assert rays(dec.obs[0])[0] == pytest.approx(hit("block", 26.0 - 2.25 - 0.5), abs=1e-4)
    assert rays(dec.obs[1])[0] == pytest.approx(hit("goal", 26.0 - 0.5 - 0.5), abs=1e-4)
    assert rays(dec.obs[2])[0] == pytest.approx(MISS)


def test_switch_pyramid_knock_and_gold():
    env = PyramidsEnv(num_areas=2, seed=3)
    env.reset()
    ar = env.arena
    scene(env, agent=(0.0, 0.0), heading=0.0, switch=(0.0, 3.0))  # area 0 and 1 face the switch
    ar.center[1, env._slot["switch"], 1] = 30.0  # area 1's switch out of reach
    ar.refresh()
    dec, term = step(env, 1)  # forward into the switch
    assert env.switch_on.tolist() == [True, False] and len(term) == 0
    assert dec.obs[3][:, 0].tolist() == [1.0, 0.0]
    assert ar.tag[env._slot["switch"], 0] == ar.tag_id("switchOn")
    ar.pos[:, 0, 0] = (0.0, -3.0)  # back off (a sphere cast ignores what it starts in): the switch is on
    ar.stop()
    dec, _ = step(env, 0)
    assert rays(dec.obs[0][:1])[0] == pytest.approx(hit("switchOn", 3.5), abs=1e-5)
    room = env.pyramid_room[0]
    px, pz = ar.center[:, env._slot["pyramid"], 0]
    assert ar.active[env._slot["pyramid"], 0] and ar.active[env._slot["gold_top"], 0]
    assert abs(px - ROOMS[room, 0]) <= SPAWN_HALF and abs(pz - ROOMS[room, 1]) <= SPAWN_HALF
    assert not ar.active[env._slot["pyramid"], 1]
    # Bring the agent next to the pyramid, facing it, and run into it: it falls.
    ar.pos[:, 0, 0] = (px, pz - 3.0)
    ar.heading[0, 0] = 0.0
    ar.stop()
    dec, term = step(env, 1)
    assert not ar.active[env._slot["pyramid"], 0] and not ar.active[env._slot["gold_top"], 0]
    assert ar.active[env._slot["rubble"], 0] and ar.active[env._slot["gold"], 0]
    assert ar.center[:, env._slot["gold"], 0] == pytest.approx([px, pz])
    assert len(term) == 0 and dec.reward[0] == pytest.approx(DECISION_PENALTY)
    # On through the rubble to the gold brick: exactly +2 (SetReward), a terminal, not interrupted state.
    for _ in range(10):
        dec, term = step(env, 1)
        if len(term):
            break
    assert term.agent_id.tolist() == [0]
    assert term.reward[0] == GOLD_REWARD and not term.interrupted[0]
    assert dec.reward.tolist() == pytest.approx([0.0, DECISION_PENALTY])
    # Area 0 started over: switch off, no pyramid.
    assert not env.switch_on[0] and not ar.active[env._slot["gold"], 0] and not ar.active[env._slot["rubble"], 0]
    assert dec.obs[3][0, 0] == 0.0


def test_step_penalty_and_interruption():
    env = PyramidsEnv(num_areas=2, seed=1)
    env.reset()
    for _ in range(3):
        dec, term = step(env, 0)  # doing nothing never finds the gold
        assert len(term) == 0 and dec.reward == pytest.approx([DECISION_PENALTY] * 2)
    assert pytest.approx(-1.0) == DECISION_PENALTY * MAX_DECISIONS  # -1/MaxStep per physics step
    env._steps[:] = MAX_DECISIONS - 2  # skip to the end of the episode
    dec, term = step(env, 0)
    assert len(term) == 0
    dec, term = step(env, 0)
    assert term.agent_id.tolist() == [0, 1] and term.interrupted.all()
    assert term.reward == pytest.approx([DECISION_PENALTY] * 2)
    assert np.all(dec.reward == 0.0) and np.all(env._steps == 0)


def test_velocity_observation_is_in_the_agent_frame():
    env = PyramidsEnv(num_areas=1, seed=0)
    env.reset()
    scene(env, agent=(0.0, 0.0), heading=math.pi / 2)  # facing +x
    dec, _ = step(env, 1)
    right, up, forward = dec.obs[3][0, 1:]
    assert forward > 5.0 and right == pytest.approx(0.0, abs=1e-4) and up == 0.0
    assert env.arena.vel[0, 0, 0] == pytest.approx(forward, rel=1e-5)  # moving along +x
    dec, _ = step(env, 3)  # turn right 20 degrees while sliding: part of the velocity is now to the left
    assert dec.obs[3][0, 1] < 0.0


def test_turning_and_moving_actions():
    env = PyramidsEnv(num_areas=5, seed=0)
    env.reset()
    scene(env, agent=(0.0, 0.0), heading=0.0)
    step(env, np.arange(5))
    ar = env.arena
    assert np.degrees(ar.heading[0]) == pytest.approx([0, 0, 0, 20, -20], abs=1e-4)  # 200 deg/s x 0.1 s
    assert ar.pos[1, 0, 1] > 0.5 and ar.pos[1, 0, 2] < -0.5  # forward, back along +z
    assert ar.pos[1, 0, 0] == 0.0


def test_seeds_give_different_layouts():
    a, b = PyramidsEnv(num_areas=4, seed=1), PyramidsEnv(num_areas=4, seed=2)
    a.reset()
    b.reset()
    assert not np.array_equal(a.arena.pos, b.arena.pos)


def test_bad_input_is_refused():
    with pytest.raises(EnvError, match="unknown environment parameter 'block_scale'"):
        make_env("pyramids", num_areas=1, seed=0, parameters={"block_scale": 2.0})
    env = PyramidsEnv(num_areas=2, seed=0)
    with pytest.raises(EnvError, match="unknown environment parameter 'gravity'"):
        env.set_environment_parameter("gravity", 9.81)
    with pytest.raises(EnvError, match="reset"):
        env.step()
    env.reset()
    with pytest.raises(EnvError, match=r"shape \(2, 1\)"):
        env.set_actions(BEHAVIOR_NAME, ActionTuple(np.zeros((2, 0), np.float32), np.zeros((3, 1), np.int32)))
    with pytest.raises(EnvError, match="0..4"):
        env.set_actions(BEHAVIOR_NAME, act(env, 5))
    with pytest.raises(EnvError, match="unknown behaviour"):
        env.get_steps("PushBlock")
    with pytest.raises(EnvError, match="num_areas"):
        PyramidsEnv(num_areas=0)


def test_config_runs_curiosity_at_the_upstream_settings_and_the_command_line_removes_it():
    from tests.conftest import compose_tree

    signals = compose_tree("env=pyramids")["trainer"]["reward_signals"]
    assert set(signals) == {"extrinsic", "curiosity"}
    cur = signals["curiosity"]
    assert (cur["strength"], cur["network_settings"]["hidden_units"], cur["learning_rate"]) == (0.02, 256, 3e-4)
    assert set(compose_tree("env=pyramids", "reward_signals=[extrinsic]")["trainer"]["reward_signals"]) == {"extrinsic"}
    rnd = compose_tree("env=pyramids", "reward_signals=[extrinsic,rnd]")["trainer"]["reward_signals"]
    assert set(rnd) == {"extrinsic", "rnd"} and rnd["rnd"]["strength"] == 0.01
    assert rnd["rnd"]["network_settings"]["hidden_units"] == 64 and rnd["rnd"]["network_settings"]["num_layers"] == 3
    tree = compose_tree("experiment=pyramids_rnd")  # upstream PyramidsRND.yaml
    assert tree["env"]["name"] == "pyramids" and tree["trainer"]["max_steps"] == 3_000_000
    assert set(tree["trainer"]["reward_signals"]) == {"extrinsic", "rnd"}
    # Curiosity elsewhere keeps the group's defaults.
    other = compose_tree("env=basic", "reward_signals=[extrinsic,curiosity]")["trainer"]["reward_signals"]
    assert other["curiosity"]["strength"] == 1.0
