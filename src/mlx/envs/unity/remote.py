"""Any native mlx env as an ML-Agents environment process: it plays Unity's side of the protocol.

    python -m mlx.envs.unity.remote 3dball --mlagents-port 5005 [--num-areas 12] [--seed 1]
    mlx-env 3dball --mlagents-port 5005                        # the same, as an installed command

It connects to the trainer's gRPC server (``--mlagents-host``, default localhost), hand-shakes (checking the
communication version), then answers every input: RESET resets the env (environment parameters from the
side channel applied first), STEP applies the actions and steps it, QUIT or a close (status 400) ends the
process with exit code 0. It accepts the arguments mlx and mlagents-learn give a Unity build
(``-logFile <file>``, ``-nographics``, ``-batchmode``; other unknown arguments are ignored with a warning),
so ``env=unity env.path=<launcher>`` runs it like an executable; see ``mlx.envs.unity.workers.remote_command``.

What it sends is what a Unity build sends: behaviour names with ``?team=<id>``, BrainParameters with the
first agents of each behaviour and team, a new agent id for every episode (Unity's episode ids, unique
across the process's behaviours; the trainer maps them back to stable ids), terminal infos before the
decision infos of agents that started a new episode in the same step, action masks as "masked" flags, and
statistics the env reports (``drain_stats``) on the stats side channel. 3-D observations go as float data,
or PNG-compressed with ``--png`` (8-bit, as a Unity camera sensor sends them).

Teams: a behaviour whose ``env.teams(name)`` is ``(0,)`` goes as one wire behaviour ``<Name>?team=0``, as
always. Any other (several teams, or one team that is not 0) goes as one wire behaviour per team,
``<Name>?team=<id>``, each with the agents whose ``team_id`` is that id (in the env's row order) and the
same BrainParameters; actions that come back for each wire behaviour go to those rows of the env's
``set_actions``. ``teams()`` is read at every step, so a team may join mid-run (the trainer accepts it).
A multi-team env must tag its rows (``team_id``, ids among ``teams()``), else the process stops with one
line naming the behaviour.

Envs outside the registry (a test's env, your own) are served the same way by ``serve_env(make, argv)``:
the same arguments less the env name, ``make(num_areas, seed)`` building the env (num_areas 0: its own
default). A script that calls it is then a launcher for ``env=unity env.path=<script>`` or
``UnityEnv(command=[python, script])``.

Seeds and areas: the trainer's handshake carries a seed (its seed + the worker index) and ``num_areas``
(``env.num_areas``); ``--seed`` and ``--num-areas`` override them. Sampler parameters go to envs that
draw per area (``set_environment_sampler``: every episode its own draw, as a Unity build reading the
parameter in OnEpisodeBegin); for the others this process draws anew before every reset and step (areas
that start an episode in the same step share a draw).

Errors (wrong version, unknown parameter, a trainer that is not there within ``--timeout-wait``) end the
process with one line on stderr (or the log file) and exit code 2; the trainer reports that line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

import grpc
import numpy as np
from threadpoolctl import threadpool_limits

import mlx
from mlx.envs import NATIVE_ENVS, env_class, make_env
from mlx.envs.api import (
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    IdMap,
    TerminalSteps,
)
from mlx.envs.unity.bulk import decode_actions, encode_infos
from mlx.envs.unity.communicator_objects.messages_pb2 import (
    QUIT,
    RESET,
    STEP,
    HeaderProto,
    UnityMessageProto,
    UnityRLInitializationOutputProto,
    UnityRLOutputProto,
)
from mlx.envs.unity.protocol import (
    ACADEMY_NAME,
    COMMUNICATION_VERSION,
    EDITOR_PORT,
    STATUS_OK,
    actions_from_protos,
    agent_infos,
    brain_parameters,
    capabilities,
    check_version,
    field_bytes,
    wire_behavior_name,
)
from mlx.envs.unity.rpc import EnvClient
from mlx.envs.unity.side_channels import (
    ChannelSampler,
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    SideChannelManager,
    StatsSideChannel,
)
from mlx.errors import ProtocolError, SideChannelError
from mlx.params.samplers import from_side_channel

USAGE_ERROR = 2
_OK_HEADER = field_bytes(0x0A, HeaderProto(status=STATUS_OK).SerializeToString())  # UnityMessageProto.header


class WireIdSource:
    """Fresh wire ids for every behaviour of one process: Unity's episode ids are unique across
    behaviours, and the trainer maps them per worker, not per behaviour."""

    def __init__(self) -> None:
        self._next = 0

    def take(self, n: int) -> np.ndarray:
        out = np.arange(self._next, self._next + n, dtype=np.int64) % 2**31  # wire ids are int32
        self._next = (self._next + n) % 2**31
        return out


class EpisodeIds:
    """Native agent ids -> wire ids that change every episode, as Unity's do (vectorised lookups)."""

    def __init__(self, source: WireIdSource | None = None) -> None:
        self._source = source or WireIdSource()
        self._map = IdMap(self._fresh)

    def lookup(self, native: np.ndarray) -> np.ndarray:
        return self._map.lookup(native)

    def renew(self, native: np.ndarray) -> None:
        """The agents' episodes ended: their next episode gets new wire ids."""
        if len(native):
            self._map.assign(native, self._fresh(len(native)))

    def renew_all(self) -> None:
        self._map.reassign_all(self._fresh)

    def _fresh(self, n: int) -> np.ndarray:
        return self._source.take(n)


def select_rows(steps: DecisionSteps | TerminalSteps, rows: np.ndarray) -> DecisionSteps | TerminalSteps:
    """The rows ``rows`` of a batch (every per-agent field, optional ones kept None)."""

    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.asarray(a)[rows]

    obs = [np.asarray(o)[rows] for o in steps.obs]
    reward, agent_id = np.asarray(steps.reward)[rows], np.asarray(steps.agent_id)[rows]
    if isinstance(steps, TerminalSteps):
        return TerminalSteps(
            obs,
            reward,
            agent_id,
            np.asarray(steps.interrupted)[rows],
            pick(steps.group_id),
            pick(steps.group_reward),
            pick(steps.team_id),
        )
    mask = None if steps.action_mask is None else [np.asarray(m)[rows] for m in steps.action_mask]
    return DecisionSteps(
        obs, reward, agent_id, mask, pick(steps.group_id), pick(steps.group_reward), pick(steps.team_id)
    )


def team_column(name: str, steps: DecisionSteps | TerminalSteps, teams: tuple[int, ...]) -> np.ndarray:
    """Each row's team, checked against ``teams``: a single-team behaviour may leave ``team_id`` None."""
    n = len(steps)
    if steps.team_id is None:
        if len(teams) == 1 or n == 0:
            return np.full(n, teams[0], dtype=np.int64)
        raise EnvError(f"behaviour {name} has teams {list(teams)} but its steps carry no team_id")
    column = np.asarray(steps.team_id, dtype=np.int64)
    if column.shape != (n,):
        raise EnvError(f"behaviour {name}: team_id has shape {list(column.shape)} for {n} agents")
    stray = ~np.isin(column, teams)
    if stray.any():
        raise EnvError(
            f"behaviour {name}: an agent is in team {int(column[stray][0])}, but env.teams() says {list(teams)}"
        )
    return column


def _read_actions(lst: Any, spec: BehaviorSpec, n: int, wire: str) -> ActionTuple:
    """The actions in one ListAgentActionProto (None: none sent): read in bulk from its bytes when they have
    the usual layout, else proto by proto (which also reports a wrong count or size)."""
    if lst is None or not lst.value:
        return actions_from_protos([], spec.action_spec, n, wire)
    a = spec.action_spec
    fast = decode_actions(lst.SerializeToString(), n, a.continuous_size, a.discrete_size)
    return fast if fast is not None else actions_from_protos(lst.value, a, n, wire)


class Session:
    """One connection: handshake, then answer the trainer's inputs until QUIT or close."""

    def __init__(
        self,
        make: Callable[[int, int], BaseEnv],
        client: EnvClient,
        num_areas: int | None = None,
        seed: int | None = None,
        timeout_wait: float = 60.0,
        png: bool = False,
        log: TextIO = sys.stderr,
    ) -> None:
        self.make = make
        self.client = client
        self.num_areas = num_areas
        self.seed = seed
        self.timeout_wait = timeout_wait
        self.png = png
        self.log = log
        self.engine = EngineConfigurationChannel()
        self.params = EnvironmentParametersChannel()
        self.stats = StatsSideChannel()
        self.channels = SideChannelManager([self.engine, self.params, self.stats])
        self.env: BaseEnv | None = None
        self.specs: dict[str, BehaviorSpec] = {}
        self.sent_specs: set[str] = set()
        self.ids: dict[str, EpisodeIds] = {}
        self.deciding: dict[str, int] = {}
        # Per multi-team behaviour: (wire name, its rows of the last DecisionSteps) for routing actions back.
        self.routes: dict[str, list[tuple[str, np.ndarray]]] = {}
        self._applied: dict[str, float] = {}
        # Samplers received: their generator when this process draws them, None when the env draws per area.
        self._rngs: dict[str, tuple[ChannelSampler, np.random.Generator | None]] = {}

    def say(self, text: str) -> None:
        print(f"[mlx.envs.unity.remote] {text}", file=self.log, flush=True)

    def handshake(self) -> None:
        hello = UnityMessageProto()
        hello.header.status = STATUS_OK
        hello.unity_output.rl_initialization_output.CopyFrom(
            UnityRLInitializationOutputProto(
                name=ACADEMY_NAME,
                communication_version=COMMUNICATION_VERSION,
                package_version=mlx.__version__,
                capabilities=capabilities(),
            )
        )
        try:
            reply = self.client.exchange(hello, timeout=self.timeout_wait, wait_for_ready=True)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ProtocolError(
                    f"no trainer answered at {self.client.address} within {self.timeout_wait:g} s; start the trainer "
                    "first, or check --mlagents-port"
                ) from None
            raise
        if reply.header.status != STATUS_OK:
            raise ProtocolError(f"the trainer refused the connection (status {reply.header.status})")
        init = reply.unity_input.rl_initialization_input
        check_version(init.communication_version, f"the trainer (mlx/ml-agents {init.package_version or '?'})")
        caps = init.capabilities
        self.png = self.png and caps.concatenatedPngObservations and caps.compressedChannelMapping
        areas = self.num_areas if self.num_areas is not None else (init.num_areas if init.num_areas > 0 else None)
        seed = self.seed if self.seed is not None else int(init.seed)
        self.env = self.make(areas, seed) if areas is not None else self.make(0, seed)
        self.specs = self.env.behavior_specs
        source = WireIdSource()
        self.ids = {name: EpisodeIds(source) for name in self.specs}
        self.say(f"connected to {self.client.address}: {len(self.specs)} behaviour(s), seed {seed}, areas {areas}")

    def run(self) -> int:
        self.handshake()
        empty = UnityMessageProto()
        empty.header.status = STATUS_OK
        message = self.exchange(empty)
        while True:
            if message is None:
                return 0
            rl = message.unity_input.rl_input
            if rl.side_channel:
                self.channels.dispatch(rl.side_channel)
                self.apply_parameters()
            if rl.command == QUIT:
                self.say("QUIT received")
                return 0
            assert self.env is not None
            if rl.command == RESET or not self.deciding:
                self.draw_samplers()
                self.env.reset()
                for ids in self.ids.values():
                    ids.renew_all()
            elif rl.command == STEP:
                for name, spec in self.specs.items():
                    self.env.set_actions(name, self.actions(name, spec, rl.agent_actions))
                self.draw_samplers()
                self.env.step()
            else:
                raise ProtocolError(f"unknown command {rl.command} from the trainer")
            message = self.exchange(self.output())

    def actions(self, name: str, spec: BehaviorSpec, agent_actions: Any) -> ActionTuple:
        """The actions of a behaviour's last deciders, from the trainer's ``agent_actions`` map: one wire
        behaviour (``Name?team=0``, or the bare name) or one per team, each put back on its team's rows."""
        n = self.deciding.get(name, 0)
        routes = self.routes.get(name)
        if routes is None:
            lst = agent_actions.get(name)
            wire = wire_behavior_name(name)
            if (lst is None or not lst.value) and wire in agent_actions:
                lst = agent_actions[wire]
            return _read_actions(lst, spec, n, wire)
        out = spec.action_spec.empty(n)
        for wire, rows in routes:
            part = _read_actions(agent_actions.get(wire), spec, len(rows), wire)
            out.continuous[rows] = part.continuous
            out.discrete[rows] = part.discrete
        return out

    def _listed(
        self,
        spec: BehaviorSpec,
        decision: DecisionSteps,
        terminal: TerminalSteps,
        d_wire: np.ndarray,
        t_wire: np.ndarray,
    ) -> bytes:
        """A serialised ListAgentInfoProto of one wire behaviour."""
        if self.png and any(len(o.shape) == 3 for o in spec.observation_specs):
            infos = agent_infos(decision, terminal, d_wire, t_wire, spec.observation_specs, compress=True)
            return UnityRLOutputProto.ListAgentInfoProto(value=infos).SerializeToString()
        return encode_infos(decision, terminal, d_wire, t_wire, spec.observation_specs)

    def output(self) -> bytes:
        """The serialised UnityMessageProto of this step. Agent infos are encoded with array operations
        (``encode_agent_infos``; per-agent protos only for PNG observations), the envelope by hand."""
        assert self.env is not None
        entries = []
        init = UnityRLInitializationOutputProto()
        for name, spec in self.specs.items():
            decision, terminal = self.env.get_steps(name)
            ids = self.ids[name]
            t_wire = ids.lookup(terminal.agent_id)
            ids.renew(terminal.agent_id)
            d_wire = ids.lookup(decision.agent_id)
            self.deciding[name] = len(decision)
            teams = tuple(self.env.teams(name))
            if teams == (0,):  # one wire behaviour, as a Unity build with one team sends it
                self.routes.pop(name, None)
                parts = [(wire_behavior_name(name), decision, terminal, d_wire, t_wire)]
            else:
                d_team, t_team = team_column(name, decision, teams), team_column(name, terminal, teams)
                parts, routes = [], []
                for team in teams:  # a few teams: one wire behaviour each
                    d_rows, t_rows = np.flatnonzero(d_team == team), np.flatnonzero(t_team == team)
                    wire = wire_behavior_name(name, team)
                    d_part, t_part = select_rows(decision, d_rows), select_rows(terminal, t_rows)
                    parts.append((wire, d_part, t_part, d_wire[d_rows], t_wire[t_rows]))
                    routes.append((wire, d_rows))
                self.routes[name] = routes
            for wire, d_part, t_part, d_ids, t_ids in parts:
                listed = self._listed(spec, d_part, t_part, d_ids, t_ids)  # type: ignore[arg-type]
                entries.append(
                    field_bytes(0x12, field_bytes(0x0A, wire.encode()) + field_bytes(0x12, listed))
                )  # agentInfos map
                if len(d_part) + len(t_part) and wire not in self.sent_specs:
                    init.brain_parameters.append(brain_parameters(wire, spec.action_spec))
                    self.sent_specs.add(wire)
        for stat in self.env.drain_stats():
            for value in stat.values.tolist():
                self.stats.send_stat(stat.name, value, stat.aggregation)
        side = self.channels.pack()
        rl_output = b"".join(entries) + (field_bytes(0x1A, side) if side else b"")
        unity_output = field_bytes(0x0A, rl_output)
        if init.brain_parameters:
            unity_output += field_bytes(0x12, init.SerializeToString())
        return _OK_HEADER + field_bytes(0x12, unity_output)

    def exchange(self, message: UnityMessageProto | bytes) -> UnityMessageProto | None:
        """Send a message and return the trainer's input; None when the trainer closes the connection."""
        data = message if isinstance(message, bytes) else message.SerializeToString()
        try:
            reply = UnityMessageProto.FromString(self.client.exchange_raw(data))
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.ABORTED):
                self.say(f"the trainer went away ({exc.code().name}); exiting")
                return None
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise ProtocolError(
                    f"the trainer refused a message of {len(data)} bytes as too large ({exc.details()}); "
                    "raise env.max_message_mb or use fewer areas per process"
                ) from None
            raise
        if reply.header.status != STATUS_OK:
            self.say(f"the trainer closed the connection (status {reply.header.status})")
            return None
        return reply

    def apply_parameters(self) -> None:
        assert self.env is not None
        for key, value in self.params.floats.items():
            if self._applied.get(key) != value:
                self.env.set_environment_parameter(key, value)
                self._applied[key] = value
        for key, sampler in self.params.samplers.items():
            if key not in self._rngs or self._rngs[key][0] != sampler:
                try:
                    per_area = from_side_channel(sampler)
                except ValueError as exc:
                    raise SideChannelError(f"environment parameters channel: sampler for '{key}': {exc}") from None
                native = self.env.set_environment_sampler(key, per_area)
                self._rngs[key] = (sampler, None if native else sampler.rng())
                self._applied.pop(key, None)
        for key in [k for k in self._rngs if k not in self.params.samplers]:
            del self._rngs[key]
        if self.engine.received:
            self.say(f"engine configuration: {self.engine.received}")
            self.engine.received = {}

    def draw_samplers(self) -> None:
        assert self.env is not None
        for key, (sampler, rng) in self._rngs.items():
            if rng is not None:
                self.env.set_environment_parameter(key, sampler.draw(rng))

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
        self.client.close()


class _Parser(argparse.ArgumentParser):
    """argparse, with a refused argument as one line (``mlx.envs.unity.remote: error: ...``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    value = _whole(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 1 to 65535 (got {text})")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number (got '{text}')") from None


def _areas(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"areas must be >= 1 (got {text}); leave it out for the trainer's num_areas")
    return value


def _seed(text: str) -> int:
    value = _whole(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**32 - 1 (got {text})")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds (got '{text}')") from None
    if not 0 < value <= 86400:  # also refuses nan
        raise argparse.ArgumentTypeError(f"seconds must be > 0 and at most 86400, a day (got {text})")
    return value


def parser(env_name: bool = True, prog: str = "python -m mlx.envs.unity.remote") -> argparse.ArgumentParser:
    """mlx-env's arguments; without ``env_name`` (``serve_env``) the env is the caller's, not named."""
    p = _Parser(
        prog=prog,
        description="Run a native mlx env as an ML-Agents environment process (the env side of the gRPC protocol).",
    )
    if env_name:
        p.add_argument("env", choices=sorted(NATIVE_ENVS), help="the native env (its conf/env/<name>.yaml name)")
    p.add_argument("--mlagents-port", type=_port, default=EDITOR_PORT, help="the trainer's port (as a Unity build)")
    p.add_argument("--mlagents-host", default="localhost", help="the trainer's host (default localhost)")
    p.add_argument(
        "--num-areas", type=_areas, default=None, help="areas to simulate (default: the trainer's num_areas)"
    )
    p.add_argument("--seed", type=_seed, default=None, help="env seed (default: the trainer's, + worker index)")
    p.add_argument("--timeout-wait", type=_seconds, default=60.0, help="seconds to wait for the trainer to answer")
    p.add_argument("--png", action="store_true", help="PNG-compress 3-D observations, as Unity camera sensors do")
    p.add_argument("-logFile", dest="log_file", default=None, help="append the process's log to this file")
    p.add_argument("-nographics", action="store_true", help="accepted for Unity compatibility (no effect)")
    p.add_argument("-batchmode", action="store_true", help="accepted for Unity compatibility (no effect)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``mlx-env <name> ...``: serve the registry's env ``name``."""
    args, unknown = parser().parse_known_args(argv)

    def make(num_areas: int, seed: int) -> BaseEnv:
        if num_areas > 0:
            return make_env(args.env, num_areas=num_areas, seed=seed)
        return env_class(args.env)(seed=seed)  # the env's own default number of areas

    return _serve(make, args, unknown)


def serve_env(make: Callable[[int, int], BaseEnv], argv: Sequence[str] | None = None) -> int:
    """``mlx-env`` for an env outside the registry (a test's env, your own): the same arguments less the env
    name (``--mlagents-port``, ``--num-areas``, ``-logFile``, ...), and the same serving; ``make(num_areas,
    seed)`` builds the env (num_areas 0: the env's own default). Call it from a script's ``__main__``."""
    args, unknown = parser(env_name=False, prog=sys.argv[0] or "mlx-env").parse_known_args(argv)
    return _serve(make, args, unknown)


def _serve(make: Callable[[int, int], BaseEnv], args: argparse.Namespace, unknown: list[str]) -> int:
    # One BLAS thread: env processes run beside the trainer and each other, and OpenBLAS's default of a
    # spinning thread per core makes them compete for every core.
    threadpool_limits(1, user_api="blas")
    log: TextIO = open(args.log_file, "a", buffering=1) if args.log_file else sys.stderr  # noqa: SIM115
    if unknown:
        print(f"[mlx.envs.unity.remote] ignoring arguments {unknown}", file=log, flush=True)
    session = Session(
        make,
        EnvClient(args.mlagents_port, args.mlagents_host),
        num_areas=args.num_areas,
        seed=args.seed,
        timeout_wait=args.timeout_wait,
        png=args.png,
        log=log,
    )
    try:
        return session.run()
    except (EnvError, grpc.RpcError) as exc:
        text = exc.details() if isinstance(exc, grpc.RpcError) else str(exc)  # type: ignore[attr-defined]
        line = f"mlx.envs.unity.remote: error: {' '.join(str(text).split())}"
        print(line, file=log, flush=True)
        if log is not sys.stderr:
            print(line, file=sys.stderr, flush=True)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130
    finally:
        session.close()


if __name__ == "__main__":
    sys.exit(main())
