"""Sorter (mlx.envs.native.sorter): the env contract, upstream's rules (tiles in ascending order, the
BufferSensor's layout, the curriculum parameter), and the variable-length observation over gRPC both ways."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlx.envs import make_env
from mlx.envs.api import (
    VARIABLE_LENGTH,
    ActionSpec,
    ActionTuple,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    ObservationSpec,
    TerminalSteps,
)
from mlx.envs.checker import check_env
from mlx.envs.native.sorter import (
    AGENT_RADIUS,
    BEHAVIOR_NAME,
    DECISION_PENALTY,
    ENTITY_SIZE,
    MAX_DECISIONS,
    NUM_TILES,
    TILE_HALF,
    TILE_RADIUS,
    SorterEnv,
    tile_frame,
)
from mlx.envs.unity.bulk import encode_infos
from mlx.envs.unity.communicator_objects import messages_pb2
from mlx.envs.unity.protocol import agent_infos, behavior_spec, brain_parameters, encode_agent_infos, steps_from_infos
from mlx.errors import ProtocolError
from tests.conftest import run_mlx, train_to

FRONT = TILE_RADIUS - TILE_HALF[1]  # a tile's face towards the room's centre


def step(env: SorterEnv, move: int = 0, strafe: int = 0, turn: int = 0) -> tuple[DecisionSteps, TerminalSteps]:
    a = np.tile(np.array([[move, strafe, turn]], np.int32), (env.num_areas, 1))
    env.set_actions(BEHAVIOR_NAME, ActionTuple(np.zeros((env.num_areas, 0), np.float32), a))
    env.step()
    return env.get_steps(BEHAVIOR_NAME)


def scene(env: SorterEnv, values: list[int], slots: list[int]) -> None:
    """Every area shows these tile values in these slots, agent at rest in the centre facing +z."""
    env.shown[:] = False
    env.visited[:] = False
    env.shown[:, values] = True
    env.slot[:, values] = slots
    env.order[:] = np.argsort(~env.shown, axis=1, kind="stable")
    env.count[:] = len(values)
    env.expected[:] = 0
    env.tile_sin[:], env.tile_cos[:] = tile_frame(env.slot)
    env.pos[:] = 0.0
    env.vel[:] = 0.0
    env.heading[:] = 0.0


def before(slot: int) -> np.ndarray:
    """Where the agent rests touching the front of the tile in ``slot``."""
    a = slot * 2 * math.pi / NUM_TILES
    return (FRONT - AGENT_RADIUS - 0.005) * np.array([math.sin(a), math.cos(a)])


def test_env_contract():
    check_env(lambda seed: make_env("sorter", num_areas=4, seed=seed, parameters={"num_tiles": 20}), steps=200)


def test_specs_are_upstreams():
    env = make_env("sorter", num_areas=2, seed=0)
    spec = env.behavior_specs[BEHAVIOR_NAME]
    buffer, vector = spec.observation_specs
    assert buffer.shape == (20, 23) and buffer.variable_length and buffer.name == "BufferSensor"
    assert vector.shape == (4,) and not vector.variable_length
    assert spec.action_spec == ActionSpec(discrete_branches=(3, 3, 3))
    assert MAX_DECISIONS == 1000 and pytest.approx(-0.001) == DECISION_PENALTY


def test_episode_start_shows_tiles_in_ascending_rows_from_the_top():
    env = make_env("sorter", num_areas=200, seed=3, parameters={"num_tiles": 20})
    env.reset()
    (buf, vec), counts = env.get_steps(BEHAVIOR_NAME)[0].obs, env.count
    assert counts.min() == 1 and counts.max() > 15  # uniform in 1..num_tiles
    for b in range(5):
        n = counts[b]
        values = buf[b, :n, :NUM_TILES].argmax(1)
        assert (np.diff(values) > 0).all() and (buf[b, :n, :NUM_TILES].sum(1) == 1).all()
        assert not buf[b, n:].any()  # padding: zero rows
        rel = buf[b, :n, NUM_TILES : NUM_TILES + 2]  # agent in the centre: the tile's position / 20
        np.testing.assert_allclose(np.hypot(rel[:, 0], rel[:, 1]), TILE_RADIUS / 20, rtol=1e-6)
        assert not buf[b, :n, ENTITY_SIZE - 1].any()
        slots = env.slot[b, values]
        assert len(set(slots.tolist())) == n  # distinct slots
        angle = slots * math.pi / 10  # slot * 18 degrees
        np.testing.assert_allclose(rel * 20, TILE_RADIUS * np.stack([np.sin(angle), np.cos(angle)], 1), atol=1e-5)
    np.testing.assert_allclose(vec[:, :2], 0.0)
    np.testing.assert_allclose(vec[:, 2:], [[0.0, 1.0]] * 200, atol=1e-7)  # facing +z


def test_the_curriculum_parameter_bounds_the_tiles_and_is_checked():
    env = make_env("sorter", num_areas=300, seed=0)  # default num_tiles 2 (the docs' DefaultMaxNumTiles)
    env.reset()
    assert set(env.count.tolist()) == {1, 2}
    env.set_environment_parameter("num_tiles", 4.0)
    env.reset()
    assert set(env.count.tolist()) == {1, 2, 3, 4}
    for bad in (0.0, 21.0):
        with pytest.raises(EnvError, match="'num_tiles' must be in 1..20"):
            env.set_environment_parameter("num_tiles", bad)
    with pytest.raises(EnvError, match="num_tiles"):
        make_env("sorter", num_areas=1, seed=0, parameters={"num_tiles": 30})


def test_tiles_in_order_pay_and_end_the_episode():
    env = make_env("sorter", num_areas=1, seed=0)
    env.reset()
    scene(env, [3, 7, 12], [5, 0, 14])
    d, t = step(env)
    assert d.reward[0] == pytest.approx(DECISION_PENALTY) and not len(t)
    env.pos[0] = before(5)  # value 3, the smallest: expected
    d, t = step(env)
    assert d.reward[0] == pytest.approx(1 + DECISION_PENALTY) and not len(t)
    assert d.obs[0][0, 0, ENTITY_SIZE - 1] == 1.0 and d.obs[0][0, 1, ENTITY_SIZE - 1] == 0.0  # visited flag
    d, _ = step(env)  # touching the visited tile again: nothing
    assert d.reward[0] == pytest.approx(DECISION_PENALTY)
    env.pos[0] = before(0)  # value 7
    step(env)
    env.pos[0] = before(14)  # value 12, the last: the episode ends
    _, t = step(env)
    assert len(t) == 1 and not t.interrupted[0] and t.reward[0] == pytest.approx(1 + DECISION_PENALTY)
    assert t.obs[0][0, :3, ENTITY_SIZE - 1].tolist() == [1.0, 1.0, 1.0]


def test_a_tile_out_of_order_costs_one_and_ends_the_episode():
    env = make_env("sorter", num_areas=1, seed=0)
    env.reset()
    scene(env, [3, 7], [5, 10])
    env.pos[0] = before(10)  # value 7 before 3
    _, t = step(env)
    assert len(t) == 1 and not t.interrupted[0] and t.reward[0] == pytest.approx(-1 + DECISION_PENALTY)


def test_hidden_tiles_are_not_there_and_tiles_are_solid():
    env = make_env("sorter", num_areas=1, seed=0)
    env.reset()
    scene(env, [3], [5])
    env.pos[0] = before(10)  # a hidden tile's place: nothing to touch, the agent walks on to the wall
    d, t = step(env, move=1)
    assert not len(t) and d.reward[0] == pytest.approx(DECISION_PENALTY)
    env.pos[0] = before(5) * 0.8  # run into the shown tile: stopped at its face, and it counts
    env.vel[0] = 0.0
    env.heading[0] = 5 * math.pi / 10
    decisions = 0
    while decisions < 20:
        _, t = step(env, move=1)
        decisions += 1
        assert np.hypot(*env.pos[0]) <= FRONT - AGENT_RADIUS + 1e-9
        if len(t):
            break
    assert len(t) == 1 and t.reward[0] == pytest.approx(1 + DECISION_PENALTY) and 1 < decisions < 10


def test_moving_and_turning():
    # 2 m/s added per physics step, then drag 4 (x 0.92), then the move: one decision from rest.
    v = dist = 0.0
    for _ in range(5):
        v = (v + 2.0) * (1 - 4.0 * 0.02)
        dist += v * 0.02
    env = make_env("sorter", num_areas=2, seed=0)
    env.reset()
    scene(env, [0], [0])
    d, _ = step(env, move=1)  # forward: +z
    x, z = d.obs[1][0, :2] * 20
    assert z == pytest.approx(dist, rel=1e-6) and abs(x) < 1e-9
    scene(env, [0], [0])
    d, _ = step(env, move=1, strafe=1)  # branch 1 replaces branch 0: right, +x
    x, z = d.obs[1][0, :2] * 20
    assert x == pytest.approx(dist, rel=1e-6) and abs(z) < 1e-6
    scene(env, [0], [0])
    d, _ = step(env, turn=2)  # 4 degrees per physics step, 5 steps a decision, clockwise from above
    np.testing.assert_allclose(d.obs[1][0, 2:], [math.sin(math.radians(20)), math.cos(math.radians(20))], atol=1e-6)


def test_max_step_interrupts():
    env = make_env("sorter", num_areas=2, seed=0)
    env.reset()
    scene(env, [0], [0])
    for _ in range(MAX_DECISIONS - 1):
        _, t = step(env)
        assert not len(t)
    _, t = step(env)
    assert len(t) == 2 and t.interrupted.all()


# ---- the variable-length observation on the wire ------------------------------------------------------
SPEC = BehaviorSpec((ObservationSpec.entities(4, 3), ObservationSpec((2,), "vec")), ActionSpec(discrete_branches=(3,)))


def sample(rng: np.random.Generator) -> tuple[DecisionSteps, TerminalSteps]:
    buf = rng.normal(size=(3, 4, 3)).astype(np.float32)
    buf[0, 2:] = 0.0
    decision = DecisionSteps([buf, rng.normal(size=(3, 2)).astype(np.float32)], np.zeros(3, np.float32), np.arange(3))
    terminal = TerminalSteps(
        [np.zeros((1, 4, 3), np.float32), np.ones((1, 2), np.float32)],
        np.ones(1, np.float32),
        np.array([7]),
        np.array([True]),
    )
    return decision, terminal


def test_variable_length_observations_travel_with_their_dimension_properties():
    rng = np.random.default_rng(0)
    decision, terminal = sample(rng)
    infos = agent_infos(decision, terminal, np.arange(3), np.array([9]), SPEC.observation_specs)
    o = infos[0].observations[0]
    assert list(o.shape) == [4, 3] and list(o.dimension_properties) == list(VARIABLE_LENGTH)  # as upstream
    assert list(infos[0].observations[1].dimension_properties) == []
    # The env side's array encoders write what upb parses to the same messages.
    listed = messages_pb2.UnityRLOutputProto.ListAgentInfoProto
    want = listed(value=infos)
    assert (
        listed.FromString(encode_agent_infos(decision, terminal, np.arange(3), np.array([9]), SPEC.observation_specs))
        == want
    )
    assert (
        listed.FromString(encode_infos(decision, terminal, np.arange(3), np.array([9]), SPEC.observation_specs)) == want
    )
    params = brain_parameters("S?team=0", SPEC.action_spec)
    assert behavior_spec(params, infos[0]) == SPEC
    dec, term, _, _ = steps_from_infos(infos, SPEC, "S")
    np.testing.assert_array_equal(dec.obs[0], decision.obs[0])
    np.testing.assert_array_equal(term.obs[0], terminal.obs[0])


def test_both_sides_announce_variable_length_observations_and_cameras_keep_their_axes():
    from mlx.envs.unity.protocol import capabilities, wire_dimension_properties

    assert capabilities().variableLengthObservation
    camera = ObservationSpec((4, 5, 3), "cam", dimension_property=(2, 2, 1))  # [h, w, c] in mlx
    assert wire_dimension_properties(camera) == [1, 2, 2]  # [c, h, w] on the wire, as upstream 1.x


def test_a_variable_size_axis_the_trainer_cannot_read_is_refused():
    rng = np.random.default_rng(1)
    infos = agent_infos(*sample(rng), np.arange(3), np.array([9]), SPEC.observation_specs)
    params = brain_parameters("S?team=0", SPEC.action_spec)
    bad = infos[0]
    bad.observations[0].ClearField("dimension_properties")
    bad.observations[0].dimension_properties.extend([1, 4])
    with pytest.raises(ProtocolError, match=r"BufferSensor\) has dimension properties \[1, 4\]"):
        behavior_spec(params, bad)


def test_mlx_env_serves_sorter_over_grpc_equal_to_the_env_in_process():
    """`mlx-env sorter` (a real env process on loopback) steps exactly like the env in-process."""
    from mlx.envs.unity.env import UnityEnv, remote_command

    remote = UnityEnv(command=remote_command("sorter"), base_port=0, num_areas=8, seed=4, parameters={"num_tiles": 20})
    native = make_env("sorter", 8, 4, parameters={"num_tiles": 20})
    try:
        assert remote.behavior_specs == native.behavior_specs  # the buffer keeps its kind
        native.reset()
        rng = np.random.default_rng(0)
        spec = native.behavior_specs[BEHAVIOR_NAME].action_spec
        ends = 0
        for _ in range(100):
            (d, t), (nd, nt) = remote.get_steps(BEHAVIOR_NAME), native.get_steps(BEHAVIOR_NAME)
            for got, want in zip(d.obs + t.obs, nd.obs + nt.obs, strict=True):
                np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(d.reward, nd.reward)
            np.testing.assert_array_equal(t.reward, nt.reward)
            ends += len(t)
            actions = spec.random(len(d), rng)
            actions.discrete[:, 0] = 1  # run forward (turning at random): tiles are met, episodes end
            remote.set_actions(BEHAVIOR_NAME, actions)
            native.set_actions(BEHAVIOR_NAME, actions)
            remote.step()
            native.step()
        assert ends  # some episodes ended on both sides alike
    finally:
        remote.close()


def test_render_draws_the_room_tiles_and_agent():
    from mlx.envs.native.render import tag_colour

    env = make_env("sorter", num_areas=2, seed=0)
    env.reset()
    scene(env, [3, 7], [0, 10])
    env.visited[:, 3] = True
    env.expected[:] = 1
    img = env.render([1])
    assert img.shape == (1, 320, 320, 3) and img.dtype == np.uint8
    colours = {tuple(c) for c in img[0].reshape(-1, 3).tolist()}
    for tag in ("agent", "goal", "key"):  # the agent, tile 3 visited, tile 7 expected
        assert tag_colour(tag) in colours
    assert tag_colour("block") not in colours  # no other tile shown


# ---- learning ---------------------------------------------------------------------------------------------
# A tile's place is in the BufferSensor only. With one tile a random agent, sliding along the wall, scores
# about 0.85 (episodes of ~150 decisions); sweeping the wall blind would take ~45 decisions (~0.955); 0.965
# needs ~35, i.e. heading for the tile it sees. Measured with these settings, seed 1: 0.955 at 57k steps,
# 0.969 at 65k, 0.974 at 74k (upstream's lr 3e-4, beta 0.005, 3 epochs: 0.956 only at 115k). The run takes
# about 24 s of CPU (2026-12-06: 159 s of wall time on 2 cores at load 11).
ONE_TILE = ("env=sorter", "~environment_parameters.num_tiles", "env.parameters.num_tiles=1")
SMALL_PPO = (
    "trainer.hyperparameters.buffer_size=4096",
    "trainer.hyperparameters.batch_size=512",
    "trainer.hyperparameters.learning_rate=0.001",
    "trainer.hyperparameters.beta=0.001",
    "trainer.hyperparameters.num_epoch=4",
    "trainer.time_horizon=64",
    "trainer.summary_freq=8192",
)


@pytest.mark.learning
def test_ppo_heads_for_the_tile_it_sees_in_the_buffer(workdir):
    proc, best = train_to(workdir, 0.965, *ONE_TILE, *SMALL_PPO, "trainer.max_steps=150000")
    assert best["mean_reward"] >= 0.965, best
    assert "Reached stop_at_reward=0.965" in proc.stdout


@pytest.mark.learning
@pytest.mark.slow
def test_ppo_learns_the_first_lesson_with_upstreams_settings(workdir):
    """Upstream's Sorter settings (the tuned config) on Lesson0's task, num_tiles 2 (the curriculum removed:
    stop_at_reward waits for a curriculum's last lesson): the mean reward passes 1.0 within the 1.5M steps
    Lesson0 lasts, above the ~0.75 of touching the nearest tile first. Seed 1 with the curriculum (the same
    run while in Lesson0: its first 80k steps' summaries were checked equal): 1.01 at 500k steps, 1208 s on
    2 cores shared with ~6 other runs."""
    import json

    proc = run_mlx(
        "env=sorter", "~environment_parameters.num_tiles", "seed=1", "run_id=a", "stop_at_reward=1.0",
        "tracking=none", "progress=plain", cwd=workdir, timeout=3600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in (workdir / "results/a/run_logs/stats.jsonl").read_text().splitlines()]
    best = max((r for r in rows if r["mean_reward"] is not None), key=lambda r: r["mean_reward"])
    assert best["mean_reward"] >= 1.0 and best["step"] < 1_500_000, best
    assert "Reached stop_at_reward=1.0" in proc.stdout
