"""Recorded demonstrations in ML-Agents' ``.demo`` format: read (a file or a folder of them), write, record.

A ``.demo`` file is what Unity's DemonstrationRecorder writes and ML-Agents' ``demo_loader`` reads:

* byte 0: a varint length, then a ``DemonstrationMetaProto`` (api_version 1, the demonstration's name,
  number of steps and episodes, mean episode reward); it is (re)written when recording ends, so it must
  fit in the 33 bytes before the next record;
* byte 33: a varint length, then the behaviour's ``BrainParametersProto`` (its action spec);
* then ``number_steps`` records, each a varint length and an ``AgentInfoActionPairProto``: one step of one
  agent (its observations, the reward since its previous step, done, max_step_reached, the action mask)
  and an action.

Records follow one agent's episodes in order; a record with ``done`` closes an episode (its observation is
the final one) and the next record starts the next episode. The observation shapes of the behaviour come
from the first record, as ML-Agents derives them.

mlx writes every step with the action chosen on that step's observation, and a closing record with no
action (none is taken on a final observation). Unity's recorder writes a step before its agent decides,
so files recorded in Unity pair each observation with the previous decision's action; they are read as
written, which is what ML-Agents' trainers do too.

A file's records become *transitions* for imitation (``Demonstration``): every record that is not a
closing one and has a successor gives (observation, action, action mask) with the reward, done flag and
observation of the record after it. Unlike ML-Agents' loader, a closing record is not itself a
transition (its action was never taken on its observation). Continuous actions are clipped to [-1, 1],
the range envs act on.

Every malformed input (missing file, truncated or corrupt bytes, unsupported version, observations or
actions that do not fit the behaviour) raises ``DemoError``, an EnvError with one line naming the file
and the problem.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlx.config.paths import DATA_ROOT, resolve_demo_path
from mlx.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, EnvError, TerminalSteps
from mlx.envs.unity.communicator_objects.messages_pb2 import (
    AgentActionProto,
    AgentInfoActionPairProto,
    BrainParametersProto,
    DemonstrationMetaProto,
)
from mlx.envs.unity.protocol import (
    agent_infos,
    behavior_spec,
    brain_parameters,
    steps_from_infos,
    varint,
    wire_behavior_name,
)
from mlx.errors import DemoError

API_VERSION = 1
SUPPORTED_API_VERSIONS = (0, 1)
INITIAL_POS = 33  # where the brain parameters start: the meta data has the 33 bytes before them
MAX_NAME = 16  # Unity's DemonstrationRecorder limit on demonstration names
MAX_OBS_FLOATS = 1 << 26  # per observation of one step: anything larger is a corrupt shape


@dataclass(frozen=True)
class DemoMeta:
    """The header of one .demo file."""

    name: str
    number_steps: int
    number_episodes: int
    mean_reward: float
    api_version: int = API_VERSION


@dataclass
class DemoEpisode:
    """One agent's episode as a recorder sees it: T decisions, then the final observation.

    ``obs`` holds one array per observation spec, [T + 1, *shape]; ``rewards`` [T + 1] is the reward that
    came with each of those steps (``rewards[0]`` with the first decision, ``rewards[T]`` with the end);
    actions [T, ...] are what the env received; ``action_mask`` [T, sum(branches)] is True where allowed.
    """

    obs: list[np.ndarray]
    rewards: np.ndarray
    continuous: np.ndarray
    discrete: np.ndarray
    action_mask: np.ndarray | None = None
    interrupted: bool = False

    def __len__(self) -> int:
        return len(self.rewards) - 1

    @property
    def total_reward(self) -> float:
        return float(np.sum(self.rewards, dtype=np.float64))


@dataclass
class DemoRecords:
    """Every record of one file as arrays over records (N of them, in file order)."""

    obs: list[np.ndarray]  # one per observation spec, [N, *shape]
    reward: np.ndarray  # [N] float32
    done: np.ndarray  # [N] bool
    interrupted: np.ndarray  # [N] bool (max_step_reached)
    continuous: np.ndarray  # [N, C] float32 (zeros where a record has no action)
    discrete: np.ndarray  # [N, D] int32
    action_mask: np.ndarray  # [N, sum(branches)] True where allowed
    has_action: np.ndarray  # [N] bool
    agent_id: np.ndarray  # [N] int64

    def __len__(self) -> int:
        return len(self.reward)


@dataclass
class DemoFile:
    path: Path
    meta: DemoMeta
    brain_name: str
    spec: BehaviorSpec
    records: DemoRecords


@dataclass
class Demonstration:
    """Transitions of expert behaviour for imitation (see the module docstring), over N steps."""

    spec: BehaviorSpec
    obs: list[np.ndarray]  # one per observation spec, [N, *shape]
    next_obs: list[np.ndarray]
    continuous: np.ndarray  # [N, C] in [-1, 1], as the env received them
    discrete: np.ndarray  # [N, D] int32
    action_mask: np.ndarray  # [N, sum(branches)] True where allowed
    reward: np.ndarray  # [N] the reward that followed the action
    done: np.ndarray  # [N] the episode ended after this step
    interrupted: np.ndarray  # [N] ... because of a step limit
    episode: np.ndarray  # [N] episode number (over every file read), increasing
    files: list[DemoMeta] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.reward)

    def flat_obs(self) -> np.ndarray:
        """The [N, obs_size] float32 rows mlx's networks take (every observation flattened, in spec order)."""
        return np.concatenate([o.reshape(len(o), -1) for o in self.obs], axis=1).astype(np.float32, copy=False)

    @property
    def number_episodes(self) -> int:
        return int(self.done.sum())


# ---- paths --------------------------------------------------------------------------------------------
def demo_files(path: str | os.PathLike[str]) -> list[Path]:
    """The .demo files at ``path``: the file itself, or every .demo file of a folder (sorted)."""
    p = resolve_demo_path(path)
    if p.is_file():
        if p.suffix != ".demo":
            raise DemoError(f"{path} is not a .demo file (name a .demo file or a folder of them)")
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix == ".demo" and f.is_file())
        if not files:
            raise DemoError(f"the folder {path} holds no .demo file")
        return files
    raise DemoError(f"no .demo file or folder at {path} (looked in {Path.cwd()} and {DATA_ROOT})")


# ---- reading ------------------------------------------------------------------------------------------
def _varint_at(data: bytes, pos: int, path: Path, what: str) -> tuple[int, int]:
    """Protobuf's base-128 varint at ``pos``: (value, position after it)."""
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise DemoError(f"{path} is truncated: it ends inside the length of {what} (byte {pos})")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 64:
            raise DemoError(f"{path} is corrupt: bad length of {what} at byte {pos} (not a .demo file?)")


def _message(data: bytes, pos: int, path: Path, what: str) -> tuple[bytes, int]:
    length, start = _varint_at(data, pos, path, what)
    end = start + length
    if end > len(data):
        raise DemoError(
            f"{path} is truncated: {what} at byte {pos} needs {length} bytes, only {len(data) - start} remain"
        )
    return data[start:end], end


def _parse(message: object, payload: bytes, path: Path, what: str, pos: int) -> None:
    try:
        message.ParseFromString(payload)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError or, on odd bytes, others
        raise DemoError(f"{path} is corrupt: {what} at byte {pos} cannot be decoded ({type(exc).__name__})") from None


def read_demo_file(path: str | os.PathLike[str]) -> DemoFile:
    """Every record of one .demo file, checked: the header, the behaviour's spec and the records' arrays."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DemoError(f"cannot read {p}: {exc.strerror or exc}") from None
    if not data:
        raise DemoError(f"{p} is empty, not a .demo file")
    payload, _ = _message(data, 0, p, "the meta data")
    meta_proto = DemonstrationMetaProto()
    _parse(meta_proto, payload, p, "the meta data", 0)
    if meta_proto.api_version not in SUPPORTED_API_VERSIONS:
        raise DemoError(
            f"{p} has demonstration api_version {meta_proto.api_version}; mlx reads versions "
            f"{', '.join(map(str, SUPPORTED_API_VERSIONS))} (record it again with this ML-Agents or mlx)"
        )
    if meta_proto.number_steps < 0 or meta_proto.number_episodes < 0:
        raise DemoError(f"{p} is corrupt: negative step or episode count in its meta data")
    if len(data) <= INITIAL_POS:
        raise DemoError(f"{p} is truncated: it ends before its brain parameters (byte {INITIAL_POS})")
    payload, pos = _message(data, INITIAL_POS, p, "the brain parameters")
    params = BrainParametersProto()
    _parse(params, payload, p, "the brain parameters", INITIAL_POS)
    pairs: list[AgentInfoActionPairProto] = []
    expected = meta_proto.number_steps  # 0: a recording that was never closed; read to the end
    while pos < len(data) and (expected == 0 or len(pairs) < expected):
        what = f"record {len(pairs)}"
        payload, end = _message(data, pos, p, what)
        pair = AgentInfoActionPairProto()
        _parse(pair, payload, p, what, pos)
        pairs.append(pair)
        pos = end
    if expected and len(pairs) < expected:
        raise DemoError(f"{p} is truncated: its meta data announces {expected} steps but it holds {len(pairs)}")
    if not pairs:
        raise DemoError(f"{p} holds no recorded step")
    meta = DemoMeta(
        name=meta_proto.demonstration_name,
        number_steps=len(pairs),
        number_episodes=meta_proto.number_episodes,
        mean_reward=float(meta_proto.mean_reward),
        api_version=meta_proto.api_version,
    )
    try:
        spec = behavior_spec(params, pairs[0].agent_info)
        for i, o in enumerate(spec.observation_specs):
            if math.prod(o.shape) > MAX_OBS_FLOATS:
                raise DemoError(f"{p} is corrupt: observation {i} has shape {list(o.shape)}")
        records = _records(pairs, spec, p)
    except DemoError:
        raise
    except EnvError as exc:  # the protocol's checks (shapes, masks, rewards) on a record
        raise DemoError(f"{p}: {exc}") from None
    return DemoFile(p, meta, params.brain_name, spec, records)


def _records(pairs: Sequence[AgentInfoActionPairProto], spec: BehaviorSpec, path: Path) -> DemoRecords:
    infos = [pair.agent_info for pair in pairs]
    n = len(infos)
    decision, terminal, d_ids, t_ids = steps_from_infos(infos, spec, path.name)
    done = np.fromiter((info.done for info in infos), dtype=bool, count=n)
    d_idx, t_idx = np.flatnonzero(~done), np.flatnonzero(done)
    obs = []
    for d_obs, t_obs in zip(decision.obs, terminal.obs, strict=True):
        arr = np.empty((n, *d_obs.shape[1:]), np.float32)
        arr[d_idx], arr[t_idx] = d_obs, t_obs
        if not np.isfinite(arr).all():
            row = int(np.argwhere(~np.isfinite(arr.reshape(n, -1)))[0, 0])
            raise DemoError(f"{path} is corrupt: record {row} has a non-finite observation")
        obs.append(arr)
    reward = np.empty(n, np.float32)
    reward[d_idx], reward[t_idx] = decision.reward, terminal.reward
    interrupted = np.zeros(n, bool)
    interrupted[t_idx] = terminal.interrupted
    agent_id = np.empty(n, np.int64)
    agent_id[d_idx], agent_id[t_idx] = d_ids, t_ids
    a = spec.action_spec
    mask = np.ones((n, sum(a.discrete_branches)), bool)
    if decision.action_mask is not None:
        mask[d_idx] = np.concatenate(decision.action_mask, axis=1)
    continuous, discrete, has_action = _actions([pair.action_info for pair in pairs], a, done, path)
    return DemoRecords(obs, reward, done, interrupted, continuous, discrete, mask, has_action, agent_id)


def _actions(
    actions: Sequence[AgentActionProto], spec: ActionSpec, done: np.ndarray, path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Continuous [N, C], discrete [N, D] and which records carry an action; older files keep theirs in
    ``vector_actions_deprecated`` (continuous or discrete by the behaviour's action space)."""
    n, c, d = len(actions), spec.continuous_size, spec.discrete_size
    cont = np.zeros((n, c), np.float32)
    disc = np.zeros((n, d), np.int32)
    has = np.zeros(n, bool)
    for i, act in enumerate(actions):
        values_c, values_d = list(act.continuous_actions), list(act.discrete_actions)
        if not values_c and not values_d and act.vector_actions_deprecated:
            old = list(act.vector_actions_deprecated)
            values_c, values_d = (old, []) if c else ([], old)
        if not values_c and not values_d:
            if not done[i] and (c or d):
                raise DemoError(f"{path} is corrupt: record {i} (not an episode's end) carries no action")
            continue
        if len(values_c) != c or len(values_d) != d:
            raise DemoError(
                f"{path}: record {i} has {len(values_c)} continuous and {len(values_d)} discrete actions, its "
                f"behaviour {describe_actions(spec)}"
            )
        cont[i], disc[i], has[i] = values_c, values_d, True
    if not np.isfinite(cont).all():
        raise DemoError(f"{path} is corrupt: a continuous action is not finite")
    for b, size in enumerate(spec.discrete_branches):
        bad = np.flatnonzero(has & ((disc[:, b] < 0) | (disc[:, b] >= size)))
        if len(bad):
            raise DemoError(
                f"{path}: record {int(bad[0])} takes action {int(disc[bad[0], b])} on branch {b}, which has {size}"
            )
    return cont, disc, has


def describe_actions(spec: ActionSpec) -> str:
    return f"has {spec.continuous_size} continuous actions and discrete branches {list(spec.discrete_branches)}"


def describe_observations(spec: BehaviorSpec) -> str:
    return "[" + ", ".join(str(tuple(o.shape)) for o in spec.observation_specs) + "]"


def check_spec(
    demo: BehaviorSpec,
    expected: BehaviorSpec,
    where: str,
    behavior: str,
    advice: str = "record demonstrations of this env",
) -> None:
    """Refuse demonstrations of another observation or action layout than the behaviour's."""
    if demo.action_spec != expected.action_spec:
        raise DemoError(
            f"{where}: the demonstration's behaviour {describe_actions(demo.action_spec)}, but {behavior} "
            f"{describe_actions(expected.action_spec)}; {advice}"
        )
    got = [tuple(o.shape) for o in demo.observation_specs]
    want = [tuple(o.shape) for o in expected.observation_specs]
    if got != want:
        raise DemoError(
            f"{where}: the demonstration's observations have shapes {describe_observations(demo)}, but {behavior}'s "
            f"have {describe_observations(expected)}; {advice}"
        )


def transitions(records: DemoRecords, spec: BehaviorSpec, first_episode: int = 0) -> Demonstration:
    """The records' transitions (see the module docstring): each non-closing record with a successor."""
    n = len(records)
    src = np.flatnonzero(~records.done[:-1]) if n > 1 else np.zeros(0, np.int64)
    nxt = src + 1
    # Episodes: a new one starts after each closing record.
    episode = first_episode + np.concatenate([[0], np.cumsum(records.done[:-1])]).astype(np.int64)
    return Demonstration(
        spec=spec,
        obs=[o[src] for o in records.obs],
        next_obs=[o[nxt] for o in records.obs],
        continuous=np.clip(records.continuous[src], -1.0, 1.0),
        discrete=records.discrete[src],
        action_mask=records.action_mask[src],
        reward=records.reward[nxt],
        done=records.done[nxt],
        interrupted=records.interrupted[nxt],
        episode=episode[src],
    )


def load_demonstration(
    path: str | os.PathLike[str], spec: BehaviorSpec | None = None, where: str = "demo_path", behavior: str = ""
) -> Demonstration:
    """Transitions of a .demo file or of every .demo file of a folder, checked against ``spec`` when given
    (``where`` names the setting in errors, e.g. trainer.behavioral_cloning.demo_path)."""
    files = demo_files(path)
    parts: list[Demonstration] = []
    metas: list[DemoMeta] = []
    first_spec: BehaviorSpec | None = None
    episodes = 0
    for f in files:
        demo_file = read_demo_file(f)
        label = f"{where}={path}" if len(files) == 1 else f"{where}={path} ({f.name})"
        if spec is not None:
            check_spec(demo_file.spec, spec, label, behavior or "the behaviour")
        elif first_spec is not None:
            check_spec(
                demo_file.spec, first_spec, label, f"{files[0].name}'s", "keep one behaviour's files in a folder"
            )
        first_spec = first_spec or demo_file.spec
        part = transitions(demo_file.records, spec or demo_file.spec, episodes)
        episodes = int(part.episode.max()) + 1 if len(part) else episodes
        parts.append(part)
        metas.append(demo_file.meta)
    assert first_spec is not None
    out = Demonstration(
        spec=spec or first_spec,
        obs=[np.concatenate([p.obs[k] for p in parts]) for k in range(len(parts[0].obs))],
        next_obs=[np.concatenate([p.next_obs[k] for p in parts]) for k in range(len(parts[0].obs))],
        continuous=np.concatenate([p.continuous for p in parts]),
        discrete=np.concatenate([p.discrete for p in parts]),
        action_mask=np.concatenate([p.action_mask for p in parts]),
        reward=np.concatenate([p.reward for p in parts]),
        done=np.concatenate([p.done for p in parts]),
        interrupted=np.concatenate([p.interrupted for p in parts]),
        episode=np.concatenate([p.episode for p in parts]),
        files=metas,
    )
    if not len(out):
        raise DemoError(f"{where}={path} holds no complete step (a step needs the record after it)")
    return out


# ---- writing ------------------------------------------------------------------------------------------
def _delimited(message: object) -> bytes:
    payload = message.SerializeToString()  # type: ignore[attr-defined]
    return varint(len(payload)) + payload


def meta_bytes(meta: DemoMeta) -> bytes:
    """The delimited meta data, its name shortened if needed so that it fits before byte 33."""
    name = meta.name[:MAX_NAME]
    while True:
        proto = DemonstrationMetaProto(
            api_version=meta.api_version,
            demonstration_name=name,
            number_steps=meta.number_steps,
            number_episodes=meta.number_episodes,
            mean_reward=meta.mean_reward,
        )
        out = _delimited(proto)
        if len(out) <= INITIAL_POS:
            return out
        name = name[:-1]


class DemoWriter:
    """Writes episodes to a .demo file as they come; the header (counts, mean reward) is written on
    ``close()``. Writes go to a temporary file renamed over ``path`` at the end, so an interrupted
    recording never leaves a half-written demonstration behind."""

    def __init__(self, path: str | os.PathLike[str], spec: BehaviorSpec, behavior_name: str, name: str = "") -> None:
        self.path = Path(path)
        self.spec = spec
        self.name = (name or behavior_name)[:MAX_NAME]
        self.steps = 0
        self.episodes = 0
        self.total_reward = 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp")
        self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed by close()/abort()
        self._file.write(meta_bytes(DemoMeta(self.name, 0, 0, 0.0)).ljust(INITIAL_POS, b"\0"))
        params = brain_parameters(wire_behavior_name(behavior_name), spec.action_spec)
        params.is_training = False  # a recording, as Unity writes it
        self._file.write(_delimited(params))

    def add_episode(self, episode: DemoEpisode) -> None:
        """Append one episode: a record per decision (with its action), then a closing record."""
        t = len(episode)
        a = self.spec.action_spec
        if t < 1:
            raise DemoError("an episode needs at least one decision before its end")
        shapes = [tuple(o.shape) for o in episode.obs]
        want = [(t + 1, *o.shape) for o in self.spec.observation_specs]
        if shapes != want:
            raise DemoError(f"episode observations have shapes {shapes}, the behaviour needs {want}")
        cont = np.asarray(episode.continuous, np.float32).reshape(t, a.continuous_size)
        disc = np.asarray(episode.discrete, np.int32).reshape(t, a.discrete_size)
        mask = None
        if a.discrete_size and episode.action_mask is not None:
            allowed = np.asarray(episode.action_mask, bool).reshape(t, sum(a.discrete_branches))
            mask = np.split(allowed, np.cumsum(a.discrete_branches)[:-1], axis=1)
        rewards = np.asarray(episode.rewards, np.float32)
        ids = np.full(t, self.episodes, np.int64)
        steps = DecisionSteps([o[:t] for o in episode.obs], rewards[:t], ids, mask)
        end = TerminalSteps([o[t:] for o in episode.obs], rewards[t:], ids[:1], np.array([episode.interrupted]))
        none = np.zeros(0, np.int64)
        empty_end = TerminalSteps([o[:0] for o in episode.obs], rewards[:0], none, np.zeros(0, bool))
        empty_steps = DecisionSteps([o[:0] for o in episode.obs], rewards[:0], none)
        specs = self.spec.observation_specs
        infos = agent_infos(steps, empty_end, ids, none, specs) + agent_infos(empty_steps, end, none, ids[:1], specs)
        chunks = []
        for k, info in enumerate(infos):
            action = (
                AgentActionProto(continuous_actions=cont[k].tolist(), discrete_actions=disc[k].tolist())
                if k < t
                else AgentActionProto()
            )
            chunks.append(_delimited(AgentInfoActionPairProto(agent_info=info, action_info=action)))
        self._file.write(b"".join(chunks))
        self.steps += t + 1
        self.episodes += 1
        self.total_reward += episode.total_reward

    def close(self) -> DemoMeta:
        """Write the header and move the file into place; returns its meta data."""
        mean = self.total_reward / self.episodes if self.episodes else 0.0
        meta = DemoMeta(self.name, self.steps, self.episodes, mean)
        self._file.seek(0)
        self._file.write(meta_bytes(meta))
        self._file.close()
        os.replace(self._tmp, self.path)
        return meta

    def abort(self) -> None:
        """Drop the recording (nothing is left at ``path``)."""
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)


def write_demo(
    path: str | os.PathLike[str],
    spec: BehaviorSpec,
    behavior_name: str,
    episodes: Iterable[DemoEpisode],
    name: str = "",
) -> DemoMeta:
    """Write whole episodes to a .demo file at once."""
    writer = DemoWriter(path, spec, behavior_name, name)
    try:
        for episode in episodes:
            writer.add_episode(episode)
    except BaseException:
        writer.abort()
        raise
    return writer.close()
