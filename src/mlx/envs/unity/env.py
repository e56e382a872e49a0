"""Environments behind ML-Agents' gRPC protocol: Unity builds, the Unity Editor, mlx env processes.

``env=unity env.path=<executable>`` launches ``env.num_envs`` copies of the executable, each told to
connect to its own port (``env.base_port + i``; 5005 by default) with ``--mlagents-port``, plus
``-nographics -batchmode`` (engine_settings.no_graphics; with no_graphics_monitor every worker but 0),
``-logFile results/<run_id>/run_logs/Player-<i>.log`` and ``env.env_args``. ``env.path=null`` listens on
5004 for the Unity Editor's Play button instead. mlx is the gRPC server (the trainer), the environments
are clients. Everything here is the mlx env API (``BaseEnv``), so the run loop trains on it unchanged.

How the copies become one env: every worker's agents of a behaviour are concatenated into one
DecisionSteps/TerminalSteps batch (worker order, then team order by number); actions are split back the same
way. Behaviours are keyed by their name without Unity's ``?team=<id>`` suffix; teams of one behaviour share
its batch and must share its spec. ``teams(name)`` lists the team ids seen for a behaviour since the
handshake; once it holds a team other than 0, both batches carry ``team_id`` (each row's team) at every
step, so a self-play trainer can split them (one policy plays every team otherwise). A team that first
appears mid-run (a later message lists ``<Name>?team=2``) is accepted with the behaviour's spec and joins
``teams(name)``; a behaviour *name* that appears mid-run is refused (one trainer per behaviour is built at
the start).

Unity gives an agent a new id every episode; trainers key their per-agent state on ids, so ids are mapped
to small stable numbers that are recycled when an episode ends (an agent that ends an episode and at once
starts the next keeps its number, as in native envs). A worker's numbers are retired, never reused, when it
restarts or resets, so no trajectory is joined across a crash.

Stepping: each step replies to every worker's open call (actions, command, side-channel bytes), then
waits for each worker's next message, so the workers simulate in parallel. A worker that crashes or
stops answering within ``env.timeout_wait`` is killed and relaunched (handshake, reset, the engine
configuration and current environment parameters sent again), within ``max_lifetime_restarts`` per
worker (-1: no limit) and at most ``restarts_rate_limit_n`` restarts per ``restarts_rate_limit_period_s``
(-1: no limit), ML-Agents' rules; beyond them the run stops with the reason and the log's last lines.

Side channels: engine configuration and environment parameters go to every worker; statistics from all
workers are returned by ``drain_stats()``; custom channels (``side_channels=`` or ``register_side_channel``)
receive from every worker, and what they queue is sent to every worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import mlx
from mlx.envs.api import (
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    EnvStat,
    TerminalSteps,
    unknown_behavior,
)
from mlx.envs.unity.bulk import encode_action_list, encode_input
from mlx.envs.unity.communicator_objects.messages_pb2 import (
    RESET,
    STEP,
    UnityMessageProto,
    UnityOutputProto,
    UnityRLInitializationInputProto,
    UnityRLInputProto,
)
from mlx.envs.unity.merge import Part, RecycledIds, concat
from mlx.envs.unity.protocol import (
    BASE_PORT,
    COMMUNICATION_VERSION,
    EDITOR_PORT,
    PORT_ARG,
    STATUS_OK,
    action_protos,
    behavior_spec,
    capabilities,
    check_version,
    split_behavior_name,
    steps_from_infos,
)
from mlx.envs.unity.rpc import EnvServer
from mlx.envs.unity.side_channels import (
    ChannelSampler,
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    SideChannel,
    SideChannelManager,
    StatsSideChannel,
)
from mlx.envs.unity.workers import RestartPolicy, Worker, find_executable, kill_all, log_tail, remote_command
from mlx.errors import EnvDisconnected, ProtocolError
from mlx.params.samplers import AreaSampler, to_side_channel

_CLOSE_WAIT_S = 5.0  # how long close() lets an env exit by itself before killing it

# Factories of custom side channels every UnityEnv built from the config gets (register_side_channel).
_REGISTERED_CHANNELS: list[Callable[[], SideChannel]] = []


def register_side_channel(factory: Callable[[], SideChannel]) -> None:
    """Make every UnityEnv built from a config (``python -m mlx env=unity ...``) use a custom channel:
    call this from a module imported before the run (e.g. a Hydra callback or your own launcher)."""
    _REGISTERED_CHANNELS.append(factory)


@dataclass(frozen=True)
class EngineConfig:
    """ML-Agents' engine settings, sent to every env at each (re)start; None leaves the env's own value."""

    width: int | None = 84
    height: int | None = 84
    quality_level: int | None = 5
    time_scale: float | None = 20.0
    target_frame_rate: int | None = -1
    capture_frame_rate: int | None = 60
    no_graphics: bool = False
    no_graphics_monitor: bool = False  # only worker 0 keeps its graphics (the others -nographics)


class UnityEnv(BaseEnv):
    """One or more environments speaking ML-Agents' protocol, as one mlx env (see the module docstring)."""

    def __init__(
        self,
        executable: str | None = None,
        *,
        command: Sequence[str] | None = None,
        num_envs: int = 1,
        base_port: int | None = None,
        seed: int = 0,
        num_areas: int = 1,
        timeout_wait: float = 60.0,
        bind: str = "127.0.0.1",
        env_args: Sequence[str] = (),
        parameters: Mapping[str, float] | None = None,
        engine: EngineConfig | None = None,
        restarts: RestartPolicy | None = None,
        side_channels: Iterable[SideChannel] = (),
        log_folder: str | Path | None = None,
        max_message_bytes: int = 64 << 20,
    ) -> None:
        """``executable`` (a Unity build or launcher; None with no ``command``: the Editor) or ``command``
        (an argv prefix the port arguments are appended to, e.g. ``[python, -m, mlx.envs.unity.remote, 3dball]``)."""
        if num_envs < 1:
            raise EnvError(f"env.num_envs must be >= 1 (got {num_envs})")
        self._command: list[str] | None = (
            list(command) if command is not None else [find_executable(executable)] if executable else None
        )
        if self._command is None and num_envs != 1:
            raise EnvError("env.path=null waits for the Unity Editor, which is one environment: use env.num_envs=1")
        if base_port is None:
            base_port = BASE_PORT if self._command is not None else EDITOR_PORT
        if base_port == 0 and self._command is None:
            raise EnvError("env.base_port=0 (any free port) needs env.path: the Editor connects to a known port")
        self._seed = seed
        self._num_areas = num_areas
        self._timeout = float(timeout_wait)
        self._env_args = list(env_args)
        self._engine = engine or EngineConfig()
        self._policy = restarts or RestartPolicy()
        # Without a folder, env logs go to a temporary one: a crashed env's last lines are always reported.
        self._log_folder = Path(log_folder or tempfile.mkdtemp(prefix="mlx-env-logs-")).resolve()
        self._parameters: dict[str, float | ChannelSampler] = dict(parameters or {})
        self._params_channel = EnvironmentParametersChannel()
        self._stats_channel = StatsSideChannel()
        self._channels = SideChannelManager(
            [EngineConfigurationChannel(), self._params_channel, self._stats_channel, *side_channels]
        )
        self._specs: dict[str, BehaviorSpec] = {}
        self._steps: dict[str, tuple[DecisionSteps, TerminalSteps]] = {}
        self._parts: dict[str, list[Part]] = {}
        self._teams: dict[str, set[int]] = {}  # behaviour -> team ids seen since the handshake
        self._actions: dict[str, ActionTuple] = {}
        self._ids = RecycledIds()
        self._fresh = False  # results of a reset not yet stepped: reset() need not reset again
        self._closed = False
        self._workers: list[Worker] = []
        self._finalizer = weakref.finalize(self, kill_all, self._workers)
        try:
            for i in range(num_envs):
                port = 0 if base_port == 0 else base_port + i
                server = EnvServer(port, bind=bind, max_message_bytes=max_message_bytes)
                self._workers.append(Worker(i, server.port, server))
            if self._command is None:
                print(
                    f"[INFO] Listening on port {self._workers[0].port}. "
                    "Start training by pressing the Play button in the Unity Editor.",
                    flush=True,
                )
            for w in self._workers:
                self._launch(w)
            for w in self._workers:
                self._start(w)
            self._merge()
            self._fresh = True
        except BaseException:
            self.close()
            raise

    # ---- processes ------------------------------------------------------------------------------
    def _launch(self, w: Worker) -> None:
        if self._command is None:
            return
        args = list(self._command)
        engine = self._engine
        if engine.no_graphics or (engine.no_graphics_monitor and w.index != 0):
            args += ["-nographics", "-batchmode"]
        args += [PORT_ARG, str(w.port)]
        log = None
        if self._log_folder is not None:
            self._log_folder.mkdir(parents=True, exist_ok=True)
            w.log_path = self._log_folder / f"Player-{w.index}.log"
            args += ["-logFile", str(w.log_path)]
            log = open(w.log_path, "ab")  # noqa: SIM115 - handed to the child, closed right after
        args += self._env_args
        try:
            w.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log if log is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the trainer, which closes its envs in order
            )
        except OSError as exc:
            raise EnvError(f"cannot launch {args[0]}: {exc}") from None
        finally:
            if log is not None:
                log.close()
        print(f"[INFO] Launched {w.describe()}: {' '.join(args)}", flush=True)

    def _gone(self, w: Worker) -> Callable[[], str | None]:
        def check() -> str | None:
            if w.proc is None:
                return None
            code = w.proc.poll()
            if code is None:
                return None
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            return f"{w.describe()} {how}{log_tail(w.log_path)}"

        return check

    def _receive(self, w: Worker) -> UnityMessageProto:
        try:
            msg = w.server.receive(self._timeout, self._gone(w))
        except ProtocolError as exc:
            text = str(exc) if str(exc).startswith(w.describe()) else f"{w.describe()}: {exc}"
            raise type(exc)(text) from None
        if msg.header.status != STATUS_OK:
            detail = f" ({msg.header.message})" if msg.header.message else ""
            raise EnvDisconnected(f"{w.describe()} closed the connection (status {msg.header.status}{detail})")
        return msg

    def _stop(self, w: Worker) -> None:
        if w.proc is not None and w.proc.poll() is None:
            try:
                os.killpg(w.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                w.proc.kill()
            w.proc.wait()

    # ---- handshake ------------------------------------------------------------------------------
    def _start_bytes(self) -> bytes:
        """What goes with an env's first reset: the engine configuration and the current parameters (every
        (re)started env gets them), then whatever custom channels queued."""
        e = self._engine
        engine, params = EngineConfigurationChannel(), EnvironmentParametersChannel()
        engine.set_configuration(e.width, e.height, e.quality_level, e.time_scale, e.target_frame_rate)
        if e.capture_frame_rate is not None:
            engine.set_configuration(capture_frame_rate=e.capture_frame_rate)
        for key, value in self._parameters.items():
            if isinstance(value, ChannelSampler):
                params.set_sampler(key, value)
            else:
                params.set_float_parameter(key, value)
        return SideChannelManager([engine, params]).pack() + self._channels.pack()

    def _start(self, w: Worker) -> None:
        """Handshake with a freshly started env, then reset it; its first agents wait in w.output."""
        try:
            hello = self._receive(w)
        except EnvDisconnected as exc:
            if "(env.timeout_wait)" not in str(exc):
                raise
            hint = (
                "press Play in the Unity Editor, or give env.path"
                if self._command is None
                else "is it an ML-Agents build that accepts --mlagents-port? Its log may say more"
            )
            raise EnvDisconnected(
                f"{w.describe()}: nothing connected to port {w.port} within {self._timeout:g} s "
                f"(env.timeout_wait); {hint}{log_tail(w.log_path)}"
            ) from None
        init = hello.unity_output.rl_initialization_output
        if not hello.unity_output.HasField("rl_initialization_output"):
            raise ProtocolError(f"{w.describe()}: its first message is not a handshake (no rl_initialization_output)")
        check_version(init.communication_version, f"{w.describe()} ({init.name or 'unnamed'} {init.package_version})")
        reply = UnityMessageProto()
        reply.header.status = STATUS_OK
        reply.unity_input.rl_initialization_input.CopyFrom(
            UnityRLInitializationInputProto(
                seed=self._seed + w.index,
                communication_version=COMMUNICATION_VERSION,
                package_version=mlx.__version__,
                capabilities=capabilities(),
                num_areas=self._num_areas,
            )
        )
        w.server.reply(reply)
        self._receive(w)  # the env's empty message; our reply to it is the first reset
        w.server.reply(self._input(RESET, {}, self._start_bytes()))
        w.output = self._receive(w).unity_output
        print(
            f"[INFO] Connected to {w.describe()}: {init.name} (package {init.package_version or '?'}, "
            f"communication {init.communication_version})",
            flush=True,
        )

    @staticmethod
    def _input(command: int, actions: Mapping[str, bytes], side_channel: bytes) -> bytes:
        """A serialised UnityMessageProto with the command, each wire behaviour's ListAgentActionProto
        (serialised) and the side-channel bytes, written directly (no message objects)."""
        return encode_input(command, actions, side_channel)

    # ---- restarts -------------------------------------------------------------------------------
    def _restart(self, w: Worker, reason: str) -> None:
        if self._command is None:
            raise EnvError(f"{reason}; the Editor cannot be restarted by mlx: press Play again and resume the run")
        now = time.monotonic()
        refusal = self._policy.refusal(w.restarts, w.restart_times, now)
        if refusal:
            raise EnvError(f"{reason}; not restarting it: {refusal}")
        w.restarts += 1
        w.restart_times = [t for t in w.restart_times if now - t < self._policy.rate_limit_period_s] + [now]
        print(f"[WARNING] {reason}; restarting it (restart {w.restarts})", flush=True)
        self._stop(w)
        w.server.drain()
        self._ids.retire(w.index)
        w.specs.clear()
        self._launch(w)
        self._start(w)

    def _collect(self, w: Worker) -> None:
        """Wait for a worker's next message; a crash or timeout restarts it (its reset output stands in).
        A relaunched env that fails again counts as another restart, so the policy bounds the attempts."""
        try:
            w.output = self._receive(w).unity_output
            return
        except EnvDisconnected as exc:
            reason = str(exc)
        while True:
            try:
                self._restart(w, reason)
                return
            except EnvDisconnected as exc:
                reason = str(exc)

    # ---- merging workers' agents ----------------------------------------------------------------
    def _learn_specs(self, w: Worker, out: UnityOutputProto) -> None:
        infos = out.rl_output.agentInfos
        for params in out.rl_initialization_output.brain_parameters:
            agents = infos[params.brain_name].value if params.brain_name in infos else []
            if not agents:
                raise ProtocolError(
                    f"{w.describe()}: BrainParameters of {params.brain_name} came without any of its agents"
                )
            spec = behavior_spec(params, agents[0])
            name, team = split_behavior_name(params.brain_name)
            known = self._specs.get(name)
            teams = self._teams.setdefault(name, set())
            if known is not None and known != spec:
                others = ", ".join(str(t) for t in sorted(teams))
                raise ProtocolError(
                    f"{w.describe()}: {params.brain_name} has spec {spec}, but behaviour {name} (teams {others}) has "
                    f"{known}; every team and worker of a behaviour must share one spec"
                )
            if known is None and self._steps:
                raise ProtocolError(
                    f"{w.describe()}: behaviour {name} appeared after training started; mlx builds one trainer per "
                    "behaviour present at the first reset, so its agents must exist from the start"
                )
            if team not in teams and self._steps:
                print(f"[INFO] {w.describe()}: behaviour {name} has a new team {team} mid-run", flush=True)
            teams.add(team)
            self._specs[name] = spec
            w.specs[params.brain_name] = spec
        for wire_name, lst in infos.items():
            if lst.value and wire_name not in w.specs:
                raise ProtocolError(
                    f"{w.describe()}: agents of behaviour {wire_name} arrived without its BrainParameters"
                )

    def _merge(self) -> None:
        """Turn every worker's last message into one DecisionSteps/TerminalSteps per behaviour."""
        self._ids.begin_step()
        per: dict[str, list[tuple[Part, DecisionSteps, TerminalSteps, np.ndarray, np.ndarray]]] = {}
        for w in self._workers:
            out = w.output
            assert out is not None
            self._learn_specs(w, out)
            for wire_name in sorted(out.rl_output.agentInfos, key=split_behavior_name):  # teams by number
                agents = out.rl_output.agentInfos[wire_name].value
                if not agents:
                    continue
                name, team = split_behavior_name(wire_name)
                dec, term, d_wire, t_wire = steps_from_infos(agents, w.specs[wire_name], wire_name)
                per.setdefault(name, []).append((Part(w.index, wire_name, len(dec), team), dec, term, d_wire, t_wire))
            if out.rl_output.side_channel:
                for unknown in self._channels.dispatch(out.rl_output.side_channel):
                    print(f"[WARNING] {w.describe()} sent side-channel data for unknown channel {unknown}", flush=True)
            w.output = None
        # Ended episodes first, so their numbers can pass to agents that start a new episode in this step.
        t_ids = {name: [self._ids.end(p.worker, t) for p, _, _, _, t in parts] for name, parts in per.items()}
        self._ids.release()
        d_ids = {name: [self._ids.get(p.worker, d) for p, _, _, d, _ in parts] for name, parts in per.items()}
        self._steps, self._parts, self._actions = {}, {}, {}
        for name, spec in self._specs.items():
            parts = per.get(name, [])
            self._parts[name] = [p[0] for p in parts]
            tag = self._teams.get(name, {0}) != {0}
            self._steps[name] = concat(spec, parts, d_ids.get(name, []), t_ids.get(name, []), tag_teams=tag)

    # ---- BaseEnv --------------------------------------------------------------------------------
    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return dict(self._specs)

    def teams(self, behavior_name: str) -> tuple[int, ...]:
        """The team ids (``<Name>?team=<id>``) seen for a behaviour since the handshake, sorted; it grows
        when a team first appears mid-run."""
        if behavior_name not in self._specs:
            raise unknown_behavior(behavior_name, sorted(self._specs))
        return tuple(sorted(self._teams.get(behavior_name, {0})))

    def _check_open(self) -> None:
        if self._closed:
            raise EnvError("this Unity env is closed")

    def reset(self) -> None:
        self._check_open()
        if self._fresh:
            return
        data = self._channels.pack()
        for w in self._workers:
            w.server.reply(self._input(RESET, {}, data))
            self._ids.retire(w.index)
        for w in self._workers:
            self._collect(w)
        self._merge()
        self._fresh = True

    def step(self) -> None:
        self._check_open()
        data = self._channels.pack()
        for w in self._workers:
            w.server.reply(self._input(STEP, self._worker_actions(w.index), data))
        for w in self._workers:
            self._collect(w)
        self._merge()
        self._fresh = False

    def _worker_actions(self, worker: int) -> dict[str, bytes]:
        """Each wire behaviour's actions for one worker, as serialised ListAgentActionProtos (in bulk;
        negative discrete actions, which no policy gives, through one AgentActionProto per agent)."""
        out: dict[str, bytes] = {}
        for name, parts in self._parts.items():
            spec = self._specs[name].action_spec
            actions = self._actions.get(name)
            start = 0
            for p in parts:
                if p.worker == worker and p.n_decision:
                    if actions is None:
                        chunk = spec.empty(p.n_decision)
                    else:
                        end = start + p.n_decision
                        chunk = ActionTuple(actions.continuous[start:end], actions.discrete[start:end])
                    data = encode_action_list(chunk.continuous, chunk.discrete)
                    if data is None:
                        data = UnityRLInputProto.ListAgentActionProto(value=action_protos(chunk, spec))
                        data = data.SerializeToString()
                    out[p.wire_name] = data
                start += p.n_decision
        return out

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        try:
            return self._steps[behavior_name]
        except KeyError:
            raise unknown_behavior(behavior_name, sorted(self._specs)) from None

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        decision, _ = self.get_steps(behavior_name)
        spec = self._specs[behavior_name].action_spec
        n = len(decision)
        cont = np.asarray(actions.continuous, dtype=np.float32)
        disc = np.asarray(actions.discrete, dtype=np.int32)
        if cont.size == 0 and spec.continuous_size == 0:
            cont = np.zeros((n, 0), np.float32)
        if disc.size == 0 and spec.discrete_size == 0:
            disc = np.zeros((n, 0), np.int32)
        if cont.shape != (n, spec.continuous_size) or disc.shape != (n, spec.discrete_size):
            raise EnvError(
                f"behaviour {behavior_name}: expected continuous actions of shape ({n}, {spec.continuous_size}) and "
                f"discrete of shape ({n}, {spec.discrete_size}), got {cont.shape} and {disc.shape}"
            )
        self._actions[behavior_name] = ActionTuple(cont, disc)

    def set_environment_parameter(self, key: str, value: float) -> None:
        """Sent to every env with the next step; it applies from each agent's next episode (env's choice)."""
        if not np.isfinite(value):
            raise EnvError(f"environment parameter '{key}' must be a finite number (got {value})")
        self._parameters[key] = float(value)
        self._params_channel.set_float_parameter(key, float(value))

    def set_sampler(self, key: str, sampler: ChannelSampler) -> None:
        """Let the envs draw ``key`` from a sampler themselves (ML-Agents' sampler parameters)."""
        self._parameters[key] = sampler
        self._params_channel.set_sampler(key, sampler)

    def set_environment_sampler(self, key: str, sampler: AreaSampler) -> bool:
        """The run's samplers travel over the environment-parameters side channel (constants as values):
        every env draws them itself at each read, as ML-Agents' envs do. Custom samplers cannot travel."""
        described = to_side_channel(sampler)
        if isinstance(described, float):
            self.set_environment_parameter(key, described)
        else:
            self.set_sampler(key, described)
        return True

    def drain_stats(self) -> list[EnvStat]:
        return self._stats_channel.drain()

    @property
    def ports(self) -> list[int]:
        return [w.port for w in self._workers]

    @property
    def pids(self) -> list[int | None]:
        return [w.proc.pid if w.proc is not None else None for w in self._workers]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        told = []
        for w in self._workers:
            told.append(w.server.has_pending)
            w.server.close()  # answers an open call with status 400: the env quits
        deadline = time.monotonic() + _CLOSE_WAIT_S
        for w, asked_to_quit in zip(self._workers, told, strict=True):
            if w.proc is not None:
                try:  # an env that was not waiting for us (hung, or mid-failure) cannot hear the 400
                    w.proc.wait(timeout=max(0.0, deadline - time.monotonic()) if asked_to_quit else 0.2)
                except subprocess.TimeoutExpired:
                    self._stop(w)
        self._finalizer.detach()


def make_unity_env(env: Any, engine: Any, seed: int, log_folder: Path | None) -> UnityEnv:
    """A UnityEnv from the run config: ``env`` is the EnvSettings, ``engine`` the EngineSettings.

    env=unity launches env.path (or waits for the Editor); a native env with env.subprocess=true runs
    its env.num_envs copies as ``python -m mlx.envs.unity.remote <name>`` processes."""
    native = env.name != "unity"
    return UnityEnv(
        None if native else env.path,
        command=remote_command(env.name) if native else None,
        num_envs=env.num_envs,
        base_port=env.base_port,
        seed=seed,
        num_areas=env.num_areas,
        timeout_wait=env.timeout_wait,
        bind=env.bind,
        env_args=list(env.env_args or []),
        parameters=dict(env.parameters or {}),
        engine=EngineConfig(
            width=engine.width,
            height=engine.height,
            quality_level=engine.quality_level,
            time_scale=engine.time_scale,
            target_frame_rate=engine.target_frame_rate,
            capture_frame_rate=engine.capture_frame_rate,
            no_graphics=engine.no_graphics,
            no_graphics_monitor=engine.no_graphics_monitor,
        ),
        restarts=RestartPolicy(env.max_lifetime_restarts, env.restarts_rate_limit_n, env.restarts_rate_limit_period_s),
        side_channels=[factory() for factory in _REGISTERED_CHANNELS],
        log_folder=log_folder,
        max_message_bytes=int(env.max_message_mb * 2**20),
    )
