"""mlx.envs.unity.env with real env processes over gRPC: stepping, ids, parameters, stats, restarts, refusals.

Every test uses ports the OS picks (base_port=0) and short timeouts, so none can hang or collide.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlx.envs.api import EnvError, StatAggregation
from mlx.envs.unity.env import RestartPolicy, UnityEnv, find_executable, remote_command
from mlx.errors import ProtocolError

FAKE = str(Path(__file__).with_name("fake_envs.py"))


def fake(mode: str) -> list[str]:
    return [sys.executable, FAKE, mode]


def random_steps(env: UnityEnv, n: int, seed: int = 0) -> tuple[int, int, set[int]]:
    """Steps with random actions; returns (decisions, episode ends, agent ids seen)."""
    rng = np.random.default_rng(seed)
    decisions = ends = 0
    seen: set[int] = set()
    for _ in range(n):
        for name, spec in env.behavior_specs.items():
            d, _ = env.get_steps(name)
            env.set_actions(name, spec.action_spec.random(len(d), rng))
        env.step()
        for name in env.behavior_specs:
            d, t = env.get_steps(name)
            decisions, ends = decisions + len(d), ends + len(t)
            seen |= set(d.agent_id.tolist()) | set(t.agent_id.tolist())
    return decisions, ends, seen


def test_two_env_processes_step_as_one_env_with_stable_recycled_ids(tmp_path):
    env = UnityEnv(
        command=remote_command("3dball"),
        num_envs=2,
        base_port=0,
        num_areas=3,
        seed=5,
        timeout_wait=30,
        log_folder=tmp_path,
    )
    try:
        assert list(env.behavior_specs) == ["3DBall"]
        spec = env.behavior_specs["3DBall"]
        assert spec.observation_specs[0].shape == (8,) and spec.action_spec.continuous_size == 2
        env.reset()  # the constructor's reset is not repeated
        d, t = env.get_steps("3DBall")
        assert sorted(d.agent_id.tolist()) == list(range(6)) and len(t) == 0
        # Falling balls end episodes; Unity-style new episode ids come back as the same stable numbers.
        decisions, ends, seen = random_steps(env, 150)
        assert decisions == 150 * 6
        assert ends > 0
        assert seen == set(range(6))
        assert (tmp_path / "Player-0.log").exists() and (tmp_path / "Player-1.log").exists()
        pids = [p for p in env.pids if p is not None]
    finally:
        env.close()
    for pid in pids:  # close() asked them to quit; none is left running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_environment_parameters_reach_the_env_process(tmp_path):
    def velocity_after(parameters: dict[str, float]) -> float:
        env = UnityEnv(command=remote_command("3dball"), base_port=0, num_areas=4, seed=1, parameters=parameters)
        try:
            zero = env.behavior_specs["3DBall"].action_spec.empty(4)
            for _ in range(5):
                env.set_actions("3DBall", zero)
                env.step()
            return float(np.abs(env.get_steps("3DBall")[0].obs[0][:, 5:8]).max())
        finally:
            env.close()

    assert velocity_after({}) > 0.05  # the ball rolls under gravity
    assert velocity_after({"gravity": 0.0}) < 1e-6  # with gravity 0 sent over the side channel, it cannot


def test_an_env_process_error_is_reported_with_its_log(tmp_path):
    with pytest.raises(EnvError, match="unknown environment parameter 'nope'"):
        UnityEnv(command=remote_command("3dball"), base_port=0, parameters={"nope": 1.0}, log_folder=tmp_path)


def test_env_statistics_arrive_with_their_aggregation():
    env = UnityEnv(command=fake("stats"), base_port=0, num_areas=2, timeout_wait=30)
    try:
        random_steps(env, 3)
        stats = {(s.name, s.aggregation): s.values.tolist() for s in env.drain_stats()}
        assert stats[("Custom/Steps", StatAggregation.SUM)] == [1.0, 1.0, 1.0]
        assert ("Custom/Position", StatAggregation.MOST_RECENT) in stats
        assert stats[("Custom/Average", StatAggregation.AVERAGE)] == [2.0, 4.0] * 3
        assert env.drain_stats() == []
    finally:
        env.close()


def test_a_killed_env_process_is_restarted_within_the_limits(tmp_path, capsys):
    env = UnityEnv(
        command=remote_command("3dball"),
        num_envs=2,
        base_port=0,
        num_areas=3,
        timeout_wait=30,
        restarts=RestartPolicy(max_lifetime_restarts=10, rate_limit_n=1, rate_limit_period_s=60),
        log_folder=tmp_path,
    )
    try:
        random_steps(env, 5)
        before = env.pids
        os.kill(before[0], signal.SIGKILL)
        decisions, _, seen = random_steps(env, 5)
        assert env.pids[0] != before[0] and env.pids[1] == before[1]
        assert decisions == 5 * 6  # the relaunched env's agents are back in the batch
        assert max(seen) >= 6  # ... under new numbers: no trajectory is joined across the crash
        out = capsys.readouterr().out
        warning = next(line for line in out.splitlines() if line.startswith("[WARNING]"))
        assert f"pid {before[0]}) was killed by signal 9" in warning and warning.endswith("restarting it (restart 1)")
        os.kill(env.pids[0], signal.SIGKILL)  # a second crash within the period: over the rate limit
        with pytest.raises(EnvError, match=r"not restarting it: it was restarted 1 time\(s\) in the last 60 s"):
            random_steps(env, 5)
    finally:
        env.close()


def test_wrong_communication_version_ends_with_one_clear_message():
    start = time.monotonic()
    with pytest.raises(
        ProtocolError, match=r"communication version 0\.9\.0, mlx speaks 1\.5\.0; they are incompatible"
    ):
        UnityEnv(command=fake("wrong_version"), base_port=0, timeout_wait=20)
    assert time.monotonic() - start < 15


def test_a_malformed_message_ends_with_one_clear_message():
    with pytest.raises(ProtocolError, match="malformed message .* not a UnityMessageProto"):
        UnityEnv(command=fake("garbage"), base_port=0, timeout_wait=20)


def test_an_oversized_message_ends_with_one_clear_message():
    # The handshake is small; the first 12 agents (~900 bytes) are above a 600-byte limit.
    with pytest.raises(ProtocolError, match=r"above the limit of .* \(env\.max_message_mb\)"):
        UnityEnv(command=remote_command("3dball"), base_port=0, num_areas=12, max_message_bytes=600, timeout_wait=20)
    # Far above it (over twice the limit) gRPC refuses the message itself; the env process says why.
    with pytest.raises(
        EnvError, match=r"exited with code 2; last lines of .*the trainer refused a message of \d+ bytes"
    ):
        UnityEnv(command=remote_command("3dball"), base_port=0, num_areas=12, max_message_bytes=200, timeout_wait=20)


def test_no_editor_on_the_port_ends_after_timeout_wait():
    port = free_port()
    start = time.monotonic()
    with pytest.raises(
        EnvError, match=rf"nothing connected to port {port} within 1 s \(env.timeout_wait\); press Play"
    ):
        UnityEnv(None, base_port=port, timeout_wait=1)
    assert time.monotonic() - start < 10


def test_an_env_that_stops_answering_is_given_up_after_timeout_wait():
    # It connects and hand-shakes (which takes a moment on a busy machine), then never answers again.
    with pytest.raises(EnvError, match="no message from the environment within 4 s"):
        UnityEnv(command=fake("silent"), base_port=0, timeout_wait=4)


def test_an_env_process_without_a_trainer_exits_with_one_clear_line():
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "mlx.envs.unity.remote", "basic", "--mlagents-port", str(port), "--timeout-wait", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(f"mlx.envs.unity.remote: error: no trainer answered at localhost:{port} within 1 s")
    )


def test_a_port_in_use_is_refused_clearly():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(EnvError, match=f"cannot listen on 127.0.0.1:{port}: the port is in use"):
            UnityEnv(command=remote_command("basic"), base_port=port)


def test_unknown_behaviours_and_bad_actions_are_refused():
    env = UnityEnv(command=remote_command("basic"), base_port=0, num_areas=2)
    try:
        with pytest.raises(EnvError, match="unknown behaviour 'Nope'; this env has: Basic"):
            env.get_steps("Nope")
        with pytest.raises(EnvError, match=r"discrete of shape \(2, 1\)"):
            env.set_actions("Basic", env.behavior_specs["Basic"].action_spec.empty(3))
    finally:
        env.close()


def test_a_missing_executable_is_named():
    with pytest.raises(EnvError, match="no executable at /nonexistent/Build"):
        find_executable("/nonexistent/Build")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_env_process_plays_unitys_side_of_the_protocol_and_quits():
    """Drive `python -m mlx.envs.unity.remote` by hand, as mlagents-learn would: handshake, reset, step, QUIT."""
    from mlx.envs.unity.communicator_objects.messages_pb2 import QUIT, RESET, STEP, UnityMessageProto
    from mlx.envs.unity.rpc import EnvServer

    server = EnvServer(0)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlx.envs.unity.remote",
            "3dball",
            "--mlagents-port",
            str(server.port),
            "--num-areas",
            "2",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        hello = server.receive(30).unity_output.rl_initialization_output
        assert (hello.name, hello.communication_version) == ("AcademySingleton", "1.5.0")
        assert hello.capabilities.baseRLCapabilities and not hello.brain_parameters

        def send(command: int, actions: int = 0) -> UnityMessageProto:
            msg = UnityMessageProto()
            msg.header.status = 200
            msg.unity_input.rl_input.command = command
            for _ in range(actions):
                msg.unity_input.rl_input.agent_actions["3DBall?team=0"].value.add(continuous_actions=[0.5, -0.5])
            server.reply(msg)
            return server.receive(30)

        init = UnityMessageProto()
        init.header.status = 200
        init.unity_input.rl_initialization_input.communication_version = "1.5.0"
        init.unity_input.rl_initialization_input.seed = 3
        server.reply(init)
        empty = server.receive(30)
        assert not empty.HasField("unity_output")
        first = send(RESET).unity_output
        (params,) = first.rl_initialization_output.brain_parameters
        assert params.brain_name == "3DBall?team=0" and params.action_spec.num_continuous_actions == 2
        agents = first.rl_output.agentInfos["3DBall?team=0"].value
        assert len(agents) == 2 and not any(a.done for a in agents)
        assert [list(a.observations[0].shape) for a in agents] == [[8], [8]]
        second = send(STEP, actions=2).unity_output
        assert not second.rl_initialization_output.brain_parameters  # sent once, with the first agents
        assert [a.id for a in second.rl_output.agentInfos["3DBall?team=0"].value] == [a.id for a in agents]
        reply = UnityMessageProto()
        reply.header.status = 200
        reply.unity_input.rl_input.command = QUIT
        server.reply(reply)
        assert proc.wait(timeout=30) == 0
        assert "QUIT received" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()


@pytest.mark.parametrize("png", [False, True], ids=["float", "png"])
def test_a_visual_env_with_masks_and_a_goal_signal_equals_the_native_env(png):
    """GridWorld (an 84x64 RGB camera, a goal-signal vector, masked moves) in an env process steps exactly
    like the env in-process: images as floats (exact) or PNGs (8-bit, as Unity's camera sensors send)."""
    from mlx.envs import make_env

    extra = ["--png"] if png else []
    remote = UnityEnv(command=remote_command("gridworld") + extra, base_port=0, num_areas=3, seed=4)
    native = make_env("gridworld", 3, 4)
    try:
        assert remote.behavior_specs == native.behavior_specs  # [h, w, c] images, GOAL_SIGNAL kept
        native.reset()
        rng = np.random.default_rng(0)
        spec = native.behavior_specs["GridWorld"].action_spec
        for _ in range(20):
            (d, t), (nd, nt) = remote.get_steps("GridWorld"), native.get_steps("GridWorld")
            for got, want in zip(d.obs + t.obs, nd.obs + nt.obs, strict=True):
                np.testing.assert_allclose(got, want, atol=1e-6 if png else 0)
            assert d.action_mask is not None and nd.action_mask is not None
            np.testing.assert_array_equal(d.action_mask[0], nd.action_mask[0])
            np.testing.assert_array_equal(d.reward, nd.reward)
            np.testing.assert_array_equal(t.reward, nt.reward)
            actions = spec.random(len(d), rng)
            remote.set_actions("GridWorld", actions)
            native.set_actions("GridWorld", actions)
            remote.step()
            native.step()
    finally:
        remote.close()


def test_a_custom_side_channel_talks_both_ways():
    """A user's channel (here on a server bound to every address, env.bind=0.0.0.0) sends to the env and
    receives its answers."""
    from tests.fake_envs import EchoChannel

    echo = EchoChannel(reply=False)
    env = UnityEnv(command=fake("echo"), base_port=0, num_areas=2, side_channels=[echo], bind="0.0.0.0")
    try:
        echo.send("hello")
        echo.send("env")
        random_steps(env, 1)  # sent with the step; the env's answer comes with its next message
        assert echo.received == ["HELLO", "ENV"]
        random_steps(env, 1)
        assert echo.received == ["HELLO", "ENV"]  # each message once
    finally:
        env.close()
