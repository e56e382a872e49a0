"""Any mlx env as a Gymnasium env, so Gymnasium tools and other libraries (e.g. Stable-Baselines3) can
train on mlx's native envs. The reverse direction of mlx.envs.gym.adapter (hence the name: export, not import).

``MlxVectorEnv`` is a ``gymnasium.vector.VectorEnv`` with one sub-env per agent of one behaviour (all
areas of a native env step together, so nothing is lost to a Python loop over copies). It requires that
every agent of that behaviour decides at every step (true of 3DBall, Basic and most ML-Agents examples
with a DecisionRequester period of 1 decision per step); a step where an agent does not decide is
refused with an EnvError, because a Gymnasium vector env must return every sub-env at every step.

Spaces: one observation spec -> ``Box(-inf, inf, shape, float32)``; several -> a ``Dict`` of such Boxes
keyed by the spec names. Actions: continuous only -> ``Box(-1, 1, (C,), float32)`` (mlx envs take
continuous actions in [-1, 1]; values outside are clipped); one discrete branch -> ``Discrete(n)``;
several -> ``MultiDiscrete``; continuous and discrete together -> ``Dict(continuous=Box,
discrete=MultiDiscrete)``. The Dict keeps every action of a hybrid behaviour (refusing would leave
such envs unusable from Gymnasium); libraries without Dict actions (Stable-Baselines3) refuse it
themselves. Action masks, when the env gives them, are in ``info["action_mask"]`` [n, sum(branches)]
(True = allowed) and from ``action_masks()``, the method sb3-contrib's MaskablePPO calls.

Autoreset: SAME_STEP (``metadata["autoreset_mode"]``), which is how mlx envs behave. When agent i's
episode ends, that step returns for i the episode's last reward, ``terminated`` (a true end) or
``truncated`` (mlx's ``interrupted``: a step limit), the first observation of its next episode in
``obs``, and the episode's final observation in ``info["final_obs"][i]`` (an object array, with the
mask ``info["_final_obs"]``), as Gymnasium's own vector envs in SAME_STEP mode. A reward the env gives a
new episode before its first action (none of mlx's native envs do) has no place in Gymnasium's step
and is dropped.

Seeding: mlx envs are seeded when built, so ``reset(seed=s)`` rebuilds the env with seed s, and
``reset()`` starts new episodes from the env's own generator: equal seeds give equal runs.

``MlxGymEnv`` is the single-agent ``gymnasium.Env`` (an env with one area and one agent), which passes
``gymnasium.utils.env_checker.check_env``: after an episode ends, ``reset()`` starts a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from mlx.envs import make_env
from mlx.envs.api import ActionSpec, ActionTuple, BaseEnv, BehaviorSpec, DecisionSteps, EnvError, unknown_behavior

EnvSource = str | Callable[[int], BaseEnv]


def observation_space(spec: BehaviorSpec) -> spaces.Space:
    """Box for one observation spec, Dict of Boxes (keyed by spec name) for several."""
    boxes = [spaces.Box(-np.inf, np.inf, tuple(o.shape), np.float32) for o in spec.observation_specs]
    if len(boxes) == 1:
        return boxes[0]
    names: list[str] = []
    for i, o in enumerate(spec.observation_specs):
        names.append(o.name if o.name not in names else f"{o.name}_{i}")
    return spaces.Dict(dict(zip(names, boxes, strict=True)))


def action_space(spec: ActionSpec) -> spaces.Space:
    """Box [-1, 1] (continuous), Discrete (one branch), MultiDiscrete (several), Dict of both (hybrid)."""
    cont = spaces.Box(-1.0, 1.0, (spec.continuous_size,), np.float32) if spec.is_continuous else None
    disc: spaces.Space | None = None
    if spec.discrete_size == 1:
        disc = spaces.Discrete(spec.discrete_branches[0])
    elif spec.discrete_size > 1:
        disc = spaces.MultiDiscrete(np.array(spec.discrete_branches, np.int64))
    if cont is not None and disc is not None:
        multi = spaces.MultiDiscrete(np.array(spec.discrete_branches, np.int64))
        return spaces.Dict({"continuous": cont, "discrete": multi})
    return cont if cont is not None else disc  # an ActionSpec always has one kind


class MlxVectorEnv(gymnasium.vector.VectorEnv):
    """One Gymnasium sub-env per agent of one behaviour of an mlx env (see the module docstring).

    ``env``: a registered env name (``"3dball"``) built with ``make_env(env, num_areas, seed,
    parameters)``, or a factory ``seed -> BaseEnv``. ``behavior_name`` picks a behaviour when the env
    has several.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        env: EnvSource,
        num_areas: int = 1,
        seed: int = 0,
        parameters: Mapping[str, float] | None = None,
        behavior_name: str | None = None,
    ) -> None:
        if isinstance(env, str):
            name, params = env, dict(parameters or {})
            self._factory: Callable[[int], BaseEnv] = lambda s: make_env(name, num_areas, s, params)
        else:
            if parameters:
                raise EnvError("parameters are for an env given by name; pass them to your factory instead")
            self._factory = env
        self._seed = seed
        self.env = self._factory(seed)
        specs = self.env.behavior_specs
        if behavior_name is None:
            if len(specs) != 1:
                self.env.close()
                raise EnvError(
                    f"this env has {len(specs)} behaviours ({', '.join(specs)}); a Gymnasium env drives one: "
                    "pass behavior_name=<one of them>"
                )
            behavior_name = next(iter(specs))
        if behavior_name not in specs:
            self.env.close()
            raise unknown_behavior(behavior_name, list(specs))
        self.behavior_name = behavior_name
        self.spec_mlx = specs[behavior_name]
        self.single_observation_space = observation_space(self.spec_mlx)
        self.single_action_space = action_space(self.spec_mlx.action_spec)
        self._obs_keys = (
            list(self.single_observation_space.spaces) if isinstance(self.single_observation_space, spaces.Dict) else []
        )
        self.env.reset()
        decision, _ = self.env.get_steps(behavior_name)
        if len(decision) == 0:
            self.env.close()
            raise EnvError(f"behaviour '{behavior_name}' has no agent deciding after reset(); nothing to drive")
        self.agent_ids = np.sort(np.asarray(decision.agent_id))
        self.num_envs = len(self.agent_ids)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._decision: DecisionSteps = decision
        self._rows = self._positions(decision.agent_id)
        self.render_mode = None  # mlx envs do not render
        self._closed = False

    # ---- conversions ------------------------------------------------------------------------------
    def _positions(self, agent_ids: np.ndarray) -> np.ndarray:
        """Sub-env index of each agent id; refuses agents that are new or missing."""
        ids = np.asarray(agent_ids)
        pos = np.searchsorted(self.agent_ids, ids)
        known = (pos < self.num_envs) & (self.agent_ids[np.minimum(pos, self.num_envs - 1)] == ids)
        if not known.all() or len(ids) != self.num_envs:
            missing = sorted(set(self.agent_ids.tolist()) - set(ids.tolist()))
            raise EnvError(
                f"behaviour '{self.behavior_name}': every agent must decide at every step to be a Gymnasium vector "
                f"env (agents {self.agent_ids.tolist()}), but this step the deciding agents were {ids.tolist()}"
                + (f" (missing {missing})" if missing else "")
            )
        return pos

    def _observations(self, obs: list[np.ndarray], rows: np.ndarray) -> Any:
        """Observations in sub-env order (rows[k] is the sub-env of the batch's k-th agent)."""
        ordered = []
        for o in obs:
            out = np.empty((self.num_envs, *o.shape[1:]), np.float32)
            out[rows] = o
            ordered.append(out)
        return dict(zip(self._obs_keys, ordered, strict=True)) if self._obs_keys else ordered[0]

    def _to_mlx(self, actions: Any) -> ActionTuple:
        """Gymnasium batch actions -> the ActionTuple of the last DecisionSteps, in its agent order."""
        a = self.spec_mlx.action_spec
        n = self.num_envs
        if isinstance(self.single_action_space, spaces.Dict):
            cont, disc = actions["continuous"], actions["discrete"]
        elif a.is_continuous:
            cont, disc = actions, np.zeros((n, 0), np.int32)
        else:
            cont, disc = np.zeros((n, 0), np.float32), actions
        cont = np.asarray(cont, dtype=np.float32)
        disc = np.asarray(disc)
        if cont.size != n * a.continuous_size or disc.size != n * a.discrete_size:
            raise EnvError(
                f"expected actions for {n} sub-envs in {self.action_space}, got shapes "
                f"{np.shape(cont)} (continuous) and {np.shape(disc)} (discrete)"
            )
        cont = np.clip(cont.reshape(n, a.continuous_size), -1.0, 1.0)
        disc = disc.reshape(n, a.discrete_size).astype(np.int32)
        return ActionTuple(continuous=cont[self._rows], discrete=disc[self._rows])

    def _mask(self, decision: DecisionSteps, rows: np.ndarray) -> np.ndarray | None:
        if decision.action_mask is None:
            return None
        mask = np.ones((self.num_envs, sum(self.spec_mlx.action_spec.discrete_branches)), bool)
        mask[rows] = np.concatenate(decision.action_mask, axis=1)
        return mask

    # ---- Gymnasium API ----------------------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        if isinstance(seed, list):
            if len(set(seed)) != 1:
                raise EnvError("an mlx env is seeded as a whole: pass one int seed to reset(), not one per sub-env")
            seed = seed[0]
        super().reset(seed=seed)
        if seed is not None:  # mlx envs are seeded when built: rebuild with this seed
            self.env.close()
            self._seed = seed
            self.env = self._factory(seed)
        self.env.reset()
        decision, _ = self.env.get_steps(self.behavior_name)
        rows = self._positions(decision.agent_id)
        self._decision, self._rows = decision, rows
        info: dict[str, Any] = {}
        mask = self._mask(decision, rows)
        if mask is not None:
            info["action_mask"], info["_action_mask"] = mask, np.ones(self.num_envs, bool)
        return self._observations(decision.obs, rows), info

    def step(self, actions: Any):  # type: ignore[override]
        self.env.set_actions(self.behavior_name, self._to_mlx(actions))
        self.env.step()
        decision, terminal = self.env.get_steps(self.behavior_name)
        rows = self._positions(decision.agent_id)
        n = self.num_envs
        reward = np.zeros(n, np.float32)
        terminated = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        reward[rows] = decision.reward
        info: dict[str, Any] = {}
        if len(terminal):
            ended = self._positions_of_ended(terminal.agent_id)
            reward[ended] = terminal.reward  # a reset agent's decision reward belongs to its new episode
            interrupted = np.asarray(terminal.interrupted, bool)
            terminated[ended] = ~interrupted
            truncated[ended] = interrupted
            final = [np.asarray(o, np.float32) for o in terminal.obs]
            final_obs = np.full(n, None, dtype=object)
            for k, i in enumerate(ended):  # a loop over the few agents that ended this step
                if self._obs_keys:
                    final_obs[i] = {key: o[k] for key, o in zip(self._obs_keys, final, strict=True)}
                else:
                    final_obs[i] = final[0][k]
            done = np.zeros(n, bool)
            done[ended] = True
            info.update(final_obs=final_obs, _final_obs=done, final_info={}, _final_info=done.copy())
        mask = self._mask(decision, rows)
        if mask is not None:
            info["action_mask"], info["_action_mask"] = mask, np.ones(n, bool)
        self._decision, self._rows = decision, rows
        return self._observations(decision.obs, rows), reward, terminated, truncated, info

    def _positions_of_ended(self, agent_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(agent_ids)
        pos = np.searchsorted(self.agent_ids, ids)
        if (pos >= self.num_envs).any() or (self.agent_ids[np.minimum(pos, self.num_envs - 1)] != ids).any():
            raise EnvError(f"behaviour '{self.behavior_name}': agents {ids.tolist()} ended but were never seen")
        return pos

    def action_masks(self) -> np.ndarray:
        """[num_envs, sum(branches)] True where allowed (all True without masks): MaskablePPO's hook."""
        mask = self._mask(self._decision, self._rows)
        return (
            mask
            if mask is not None
            else np.ones((self.num_envs, sum(self.spec_mlx.action_spec.discrete_branches)), bool)
        )

    def close_extras(self, **kwargs: Any) -> None:
        if not self._closed:
            self._closed = True
            self.env.close()


class MlxGymEnv(gymnasium.Env):
    """A single-agent mlx env (one area, one agent) as a ``gymnasium.Env``.

    ``env`` as for MlxVectorEnv (a name is built with num_areas=1). After an episode ends the caller
    calls ``reset()``, which starts a new one (the env's own next episode is discarded).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        env: EnvSource,
        seed: int = 0,
        parameters: Mapping[str, float] | None = None,
        behavior_name: str | None = None,
    ) -> None:
        self.vector = MlxVectorEnv(env, num_areas=1, seed=seed, parameters=parameters, behavior_name=behavior_name)
        if self.vector.num_envs != 1:
            n = self.vector.num_envs
            self.vector.close()
            raise EnvError(f"MlxGymEnv drives one agent but this env has {n}; use MlxVectorEnv, or one area")
        self.observation_space = self.vector.single_observation_space
        self.action_space = self.vector.single_action_space

    @staticmethod
    def _first(batch: Any) -> Any:
        if isinstance(batch, dict):
            return {k: v[0].copy() for k, v in batch.items()}
        return batch[0].copy()

    def _batched(self, action: Any) -> Any:
        if isinstance(action, dict):
            return {k: np.asarray(v)[None] for k, v in action.items()}
        return np.asarray(action)[None]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        super().reset(seed=seed)
        obs, info = self.vector.reset(seed=seed)
        return self._first(obs), {k: v[0] for k, v in info.items() if not k.startswith("_")}

    def step(self, action: Any):  # type: ignore[override]
        obs, reward, terminated, truncated, info = self.vector.step(self._batched(action))
        out: dict[str, Any] = {}
        if "action_mask" in info:
            out["action_mask"] = info["action_mask"][0]
        if terminated[0] or truncated[0]:
            final = info["final_obs"][0]
            obs_out = {k: np.array(v) for k, v in final.items()} if isinstance(final, dict) else np.array(final)
        else:
            obs_out = self._first(obs)
        return obs_out, float(reward[0]), bool(terminated[0]), bool(truncated[0]), out

    def action_masks(self) -> np.ndarray:
        return self.vector.action_masks()[0]

    def close(self) -> None:
        self.vector.close()
