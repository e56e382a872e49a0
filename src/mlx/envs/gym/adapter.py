"""Any registered Gymnasium env as an mlx env (``env=gym env.id=CartPole-v1``).

``env.num_areas`` copies of the env run in a ``gymnasium.vector.SyncVectorEnv``, one agent each (agent
ids 0..num_areas-1), under one behaviour named after the env id (characters other than letters, digits,
``.``, ``_`` and ``-`` become ``_``: the name is also a results folder). Sync rather than Async: for
classic-control envs a step is ~10 us of physics, so the pipes and pickling of AsyncVectorEnv cost
far more than they save (measured here with 8 copies: CartPole 179 us/step sync vs 1365 us/step
async, Pendulum 232 vs 1839). Gymnasium's own vectorised CartPole (its ``vector_entry_point``) is not
used because it only knows the NEXT_STEP autoreset mode.

Episodes: the vector env autoresets in the SAME_STEP mode, so a copy whose episode ends appears, in the
same step, in TerminalSteps with its true final observation (Gymnasium's ``info["final_obs"]``) and the
final reward, and in DecisionSteps with the first observation of its next episode (reward 0), as the
mlx API requires. ``terminated`` is a true end (interrupted=False: no bootstrap); ``truncated`` alone,
e.g. the TimeLimit of CartPole-v1's 500 steps, is an interruption (interrupted=True: the trainers
bootstrap the value of the final observation).

Spaces:

* observations: ``Box`` -> one float32 ObservationSpec of the Box's shape (a scalar Box becomes (1,);
  multi-dimensional Boxes keep their shape); ``Discrete(n)`` -> a one-hot of length n;
  ``MultiBinary`` -> its 0/1 values as floats. Anything else (Dict, Tuple, Text, ...) is refused.
* actions: ``Discrete(n)`` -> one branch of n; ``MultiDiscrete`` -> one branch per entry (flattened);
  ``MultiBinary`` -> one branch of 2 per entry; ``Box`` -> continuous actions. mlx policies output
  continuous actions in [-1, 1]; they are clipped to [-1, 1], mapped linearly onto the Box,
  ``low + (a + 1) / 2 * (high - low)``, and clipped to [low, high] (float rounding). A dimension with
  an infinite bound cannot be mapped linearly and gets the [-1, 1] value unchanged. Anything else
  (a Tuple or Dict mixing kinds, Text, Graph, ...) is refused with an EnvError naming the space.

Pictures (mode=watch): ``render(areas)`` stacks the copies' own ``render()`` frames, which Gymnasium draws
only when the env was made with ``render_mode="rgb_array"`` (mode=watch passes it as ``env.kwargs``; training
never does, so it draws nothing). Classic-control envs draw with pygame (``pip install pygame``); the MuJoCo
tasks (HalfCheetah-v5, ..., the ``mujoco`` extra) with MuJoCo's off-screen renderer, through EGL when there is
no display (``offscreen_mujoco``).

Seeding: the first ``reset()`` seeds copy i with ``seed + i`` (Gymnasium's vector seeding); later
resets continue the copies' generators, so a run is reproducible from its seed. ``env.parameters``
(native envs' environment parameters) is refused: a Gymnasium env's settings are the keyword arguments
of ``gymnasium.make``, given as ``env.kwargs``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from mlx.envs.api import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    ObservationSpec,
    TerminalSteps,
    unknown_behavior,
)


def behavior_name(env_id: str) -> str:
    """The behaviour name of a Gymnasium id: a safe folder name (``ALE/Pong-v5`` -> ``ALE_Pong-v5``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", env_id)


def find_spec(env_id: str) -> gymnasium.envs.registration.EnvSpec:
    """The registered spec of an id, or one EnvError line naming the id and the closest registered ones."""
    try:
        return gymnasium.spec(env_id)
    except gymnasium.error.Error:
        known = list(gymnasium.registry)
        close = difflib.get_close_matches(env_id, known, n=5, cutoff=0.5)
        if not close:  # e.g. "cartpole": compare without case and version
            lowered = {k.lower(): k for k in known}
            close = [lowered[k] for k in difflib.get_close_matches(env_id.lower(), list(lowered), n=5, cutoff=0.5)]
        hint = f"; did you mean: {', '.join(close)}?" if close else "; gymnasium.pprint_registry() lists them"
        raise EnvError(f"unknown Gymnasium env id '{env_id}'{hint}") from None


MUJOCO_HINT = "Gymnasium's MuJoCo tasks need pip install 'mlx-mlagents[mujoco]'"


def is_mujoco(spec: gymnasium.envs.registration.EnvSpec) -> bool:
    """Whether an id is one of Gymnasium's MuJoCo tasks (HalfCheetah-v5, ...): by its entry point's module."""
    entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
    return "mujoco" in str(entry)


def offscreen_mujoco() -> None:
    """Pictures of a MuJoCo task on a machine without a display: MuJoCo's default OpenGL backend (GLFW) needs
    a window system, EGL draws off-screen (Mesa's software EGL here). A MUJOCO_GL the user set is kept."""
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"


# ---- spaces ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObservationMap:
    """How one Gymnasium observation space becomes an mlx observation: its spec and the batch conversion."""

    spec: ObservationSpec
    convert: Callable[[np.ndarray], np.ndarray]  # batched gym observations [n, ...] -> float32 [n, *spec.shape]


def observation_map(space: spaces.Space) -> ObservationMap:
    if isinstance(space, spaces.Box):
        shape = space.shape if space.shape else (1,)
        return ObservationMap(
            ObservationSpec(tuple(int(d) for d in shape), "observation"),
            lambda obs: np.asarray(obs, dtype=np.float32).reshape(len(obs), *shape),
        )
    if isinstance(space, spaces.Discrete):
        n, start = int(space.n), int(space.start)
        eye = np.eye(n, dtype=np.float32)
        return ObservationMap(ObservationSpec((n,), "one_hot"), lambda obs: eye[np.asarray(obs, np.int64) - start])
    if isinstance(space, spaces.MultiBinary):
        shape = tuple(int(d) for d in np.atleast_1d(space.shape))
        return ObservationMap(
            ObservationSpec(shape, "binary"), lambda obs: np.asarray(obs, dtype=np.float32).reshape(len(obs), *shape)
        )
    raise EnvError(
        f"the Gymnasium observation space {space} is not supported; mlx takes Box, Discrete or MultiBinary "
        "observations (wrap the env, e.g. with gymnasium.wrappers.FlattenObservation, and register it)"
    )


class ActionMap:
    """How mlx actions (continuous in [-1, 1], discrete branches) become a batch of Gymnasium actions."""

    def __init__(self, space: spaces.Space) -> None:
        self.space = space
        if isinstance(space, spaces.Box):
            self.spec = ActionSpec(continuous_size=int(np.prod(space.shape)) if space.shape else 1)
            low = np.asarray(space.low, np.float64).reshape(-1)
            high = np.asarray(space.high, np.float64).reshape(-1)
            self.finite = np.isfinite(low) & np.isfinite(high)
            self.low, self.high = np.where(self.finite, low, -1.0), np.where(self.finite, high, 1.0)
            self.bound_low, self.bound_high = low, high
        elif isinstance(space, spaces.Discrete):
            self.spec = ActionSpec(discrete_branches=(int(space.n),))
            self.start = np.array([int(space.start)])
        elif isinstance(space, spaces.MultiDiscrete):
            nvec = np.asarray(space.nvec).reshape(-1)
            self.spec = ActionSpec(discrete_branches=tuple(int(n) for n in nvec))
            self.start = np.asarray(space.start).reshape(-1)
        elif isinstance(space, spaces.MultiBinary):
            size = int(np.prod(space.shape))
            self.spec = ActionSpec(discrete_branches=(2,) * size)
            self.start = np.zeros(size, np.int64)
        else:
            raise EnvError(
                f"the Gymnasium action space {space} is not supported; mlx takes Box (continuous), Discrete, "
                "MultiDiscrete or MultiBinary actions"
            )

    def to_gym(self, actions: ActionTuple, n: int) -> np.ndarray:
        """A batch [n, *space.shape] of Gymnasium actions; wrong shapes or out-of-range choices are refused."""
        shape = self.space.shape or ()
        if self.spec.is_continuous:
            cont = np.asarray(actions.continuous, dtype=np.float64)
            if cont.shape != (n, self.spec.continuous_size):
                raise EnvError(
                    f"expected continuous actions of shape ({n}, {self.spec.continuous_size}), got {cont.shape}"
                )
            a = np.clip(cont, -1.0, 1.0)
            scaled = np.where(self.finite, self.low + (a + 1.0) * 0.5 * (self.high - self.low), a)
            scaled = np.clip(scaled, self.bound_low, self.bound_high)
            return scaled.astype(self.space.dtype).reshape(n, *shape)
        disc = np.asarray(actions.discrete)
        branches = np.asarray(self.spec.discrete_branches)
        if disc.shape != (n, len(branches)):
            raise EnvError(f"expected discrete actions of shape ({n}, {len(branches)}), got {disc.shape}")
        if ((disc < 0) | (disc >= branches)).any():
            raise EnvError(f"discrete actions must lie in [0, branch size) for branches {tuple(branches)}")
        out = disc.astype(np.int64) + self.start
        if isinstance(self.space, spaces.Discrete):
            return out[:, 0]
        return out.astype(self.space.dtype).reshape(n, *shape)


# ---- the env --------------------------------------------------------------------------------------
class GymEnv(BaseEnv):
    """``num_areas`` copies of a Gymnasium env, one agent each (see the module docstring)."""

    def __init__(
        self,
        env_id: str | None,
        num_areas: int = 8,
        seed: int = 0,
        parameters: Mapping[str, float] | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not env_id:
            raise EnvError("env=gym needs a Gymnasium env id: pass env.id=<id>, e.g. env.id=CartPole-v1")
        if parameters:
            raise EnvError(
                f"env.parameters ({', '.join(sorted(parameters))}) are for native envs; a Gymnasium env takes "
                f"the keyword arguments of gymnasium.make as env.kwargs, e.g. +env.kwargs.{next(iter(parameters))}=..."
            )
        if num_areas < 1:
            raise EnvError(f"num_areas must be >= 1 (got {num_areas})")
        spec = find_spec(env_id)
        self.env_id = env_id
        self.n = num_areas
        self.seed = seed
        self.name = behavior_name(env_id)
        kwargs = dict(env_kwargs or {})
        if kwargs.get("render_mode") == "rgb_array" and is_mujoco(spec):
            offscreen_mujoco()
        try:
            self.vec = SyncVectorEnv(
                [lambda: gymnasium.make(spec, **kwargs) for _ in range(num_areas)],
                autoreset_mode=AutoresetMode.SAME_STEP,
            )
        except (TypeError, ImportError, gymnasium.error.Error) as exc:
            hint = f" ({MUJOCO_HINT})" if is_mujoco(spec) and not isinstance(exc, TypeError) else ""
            raise EnvError(f"gymnasium.make('{env_id}', **env.kwargs) failed: {exc}{hint}") from None
        try:
            self.obs_map = observation_map(self.vec.single_observation_space)
            self.action_map = ActionMap(self.vec.single_action_space)
        except EnvError:
            self.vec.close()
            raise
        self.spec = BehaviorSpec((self.obs_map.spec,), self.action_map.spec)
        self.ids = np.arange(num_areas, dtype=np.int32)
        self._seeded = False
        self._actions: np.ndarray | None = None
        self._decision: DecisionSteps | None = None
        self._terminal: TerminalSteps | None = None
        self._closed = False
        self.episodes = np.zeros(num_areas, np.int64)  # episodes begun per copy (mode=watch counts endings)

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {self.name: self.spec}

    def _check_name(self, behavior_name: str) -> None:
        if behavior_name != self.name:
            raise unknown_behavior(behavior_name, [self.name])

    def _no_terminal(self) -> TerminalSteps:
        shape = self.obs_map.spec.shape
        return TerminalSteps(
            [np.zeros((0, *shape), np.float32)], np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(0, bool)
        )

    def reset(self) -> None:
        obs, _ = self.vec.reset(seed=None if self._seeded else self.seed)
        self._seeded = True
        self.episodes += 1
        self._actions = None
        self._decision = DecisionSteps([self.obs_map.convert(obs)], np.zeros(self.n, np.float32), self.ids)
        self._terminal = self._no_terminal()

    def set_actions(self, behavior_name: str, actions: ActionTuple) -> None:
        self._check_name(behavior_name)
        self._actions = self.action_map.to_gym(actions, self.n)

    def step(self) -> None:
        if self._decision is None:
            self.reset()
        if self._actions is None:
            raise EnvError(f"set_actions('{self.name}', ...) must be called before step()")
        obs, reward, terminated, truncated, info = self.vec.step(self._actions)
        self._actions = None
        reward = np.asarray(reward, dtype=np.float32)
        terminated = np.asarray(terminated, dtype=bool)
        done = terminated | np.asarray(truncated, dtype=bool)
        self.episodes += done  # SAME_STEP autoreset: the copy's next episode has begun
        if done.any():
            final = self.obs_map.convert(np.stack(info["final_obs"][done]))
            self._terminal = TerminalSteps([final], reward[done], self.ids[done], ~terminated[done])
        else:
            self._terminal = self._no_terminal()
        self._decision = DecisionSteps(
            [self.obs_map.convert(obs)], np.where(done, 0.0, reward).astype(np.float32), self.ids
        )

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        self._check_name(behavior_name)
        if self._decision is None or self._terminal is None:
            raise EnvError("call reset() before get_steps()")
        return self._decision, self._terminal

    def area_of(self, agent_ids: np.ndarray) -> np.ndarray:
        """Each agent's copy: agent i plays copy i."""
        return np.asarray(agent_ids, np.int64)

    def render(self, areas: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """The copies' pictures [m, H, W, 3] uint8, drawn by Gymnasium (render_mode="rgb_array")."""
        idx = np.arange(self.n) if areas is None else np.asarray(areas, np.int64).reshape(-1)
        mode = self.vec.envs[0].render_mode
        if mode != "rgb_array":
            raise EnvError(
                f"{self.env_id} was made with render_mode={mode!r}; pictures need render_mode='rgb_array' "
                "(mode=watch sets it; elsewhere pass +env.kwargs.render_mode=rgb_array)"
            )
        try:
            frames = [self.vec.envs[int(i)].render() for i in idx]
        except gymnasium.error.DependencyNotInstalled as exc:
            hint = "or pip install 'mlx-mlagents[gym-render]'"
            raise EnvError(f"Gymnasium cannot draw {self.env_id}: {exc} ({hint})") from None
        if not frames or any(not isinstance(f, np.ndarray) or f.ndim != 3 or f.shape[-1] != 3 for f in frames):
            shapes = [getattr(f, "shape", type(f).__name__) for f in frames]
            raise EnvError(f"{self.env_id}'s render() gave no RGB picture [H, W, 3] (got {shapes})")
        return np.stack(frames).astype(np.uint8, copy=False)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.vec.close()
