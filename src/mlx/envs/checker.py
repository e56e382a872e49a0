"""An env checker for mlx envs: the API contract of mlx.envs.api, checked by running the env.

Every env's tests call ``check_env``; a third-party env (or a Unity build over gRPC) can be checked the
same way before a long training run. It steps the env with random actions (respecting action masks) and
checks, at every step and for every behaviour:

* specs: at least one behaviour; observation shapes positive; an action spec with something to act on;
* DecisionSteps / TerminalSteps: one float32 array per observation spec, shaped [n, *shape] and finite;
  rewards float32 [n] and finite; agent ids integer [n], unique within a batch; ``interrupted`` bool [n];
  action masks None or one bool [n, branch] array per branch with at least one allowed action per row;
  group ids / rewards, when present, [n];
* after ``reset()`` no agent is terminal and some agent decides (a behaviour may have none at a
  time); an agent that is terminal was seen before; the env refuses actions of the wrong shape and
  unknown behaviour names with EnvError;
* with a factory (``lambda seed: make_env(...)``): two envs built with the same seed give identical
  observations and rewards under the same actions (seeding is deterministic), and ``close()`` is
  idempotent.

It raises ``EnvCheckError`` naming the behaviour, the step and what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlx.envs.api import ActionTuple, BaseEnv, BehaviorSpec, DecisionSteps, EnvError, TerminalSteps
from mlx.errors import EnvCheckError


def _fail(behavior: str, step: int, what: str) -> None:
    raise EnvCheckError(f"behaviour '{behavior}', step {step}: {what}")


def _check_batch(batch: DecisionSteps | TerminalSteps, spec: BehaviorSpec, behavior: str, step: int, kind: str) -> None:
    n = len(batch.agent_id)
    ids = np.asarray(batch.agent_id)
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
        _fail(behavior, step, f"{kind}.agent_id must be an integer array [n], got {ids.dtype} {ids.shape}")
    if len(np.unique(ids)) != n:
        _fail(behavior, step, f"{kind}.agent_id has duplicates: {ids.tolist()}")
    if len(batch.obs) != len(spec.observation_specs):
        _fail(behavior, step, f"{kind}.obs has {len(batch.obs)} arrays for {len(spec.observation_specs)} specs")
    for i, (obs, ospec) in enumerate(zip(batch.obs, spec.observation_specs, strict=True)):
        obs = np.asarray(obs)
        if obs.shape != (n, *ospec.shape):
            _fail(
                behavior, step, f"{kind}.obs[{i}] ({ospec.name}) has shape {obs.shape}, spec says {(n, *ospec.shape)}"
            )
        if obs.dtype != np.float32:
            _fail(behavior, step, f"{kind}.obs[{i}] ({ospec.name}) has dtype {obs.dtype}, must be float32")
        if not np.isfinite(obs).all():
            _fail(behavior, step, f"{kind}.obs[{i}] ({ospec.name}) has non-finite values")
    reward = np.asarray(batch.reward)
    if reward.shape != (n,) or reward.dtype != np.float32:
        _fail(behavior, step, f"{kind}.reward must be float32 [{n}], got {reward.dtype} {reward.shape}")
    if not np.isfinite(reward).all():
        _fail(behavior, step, f"{kind}.reward has non-finite values")
    for name in ("group_id", "group_reward"):
        value = getattr(batch, name)
        if value is not None and np.asarray(value).shape != (n,):
            _fail(behavior, step, f"{kind}.{name} must be [{n}], got {np.asarray(value).shape}")
    if isinstance(batch, TerminalSteps):
        interrupted = np.asarray(batch.interrupted)
        if interrupted.shape != (n,) or interrupted.dtype != np.bool_:
            _fail(
                behavior, step, f"terminal.interrupted must be bool [{n}], got {interrupted.dtype} {interrupted.shape}"
            )
    else:
        _check_masks(batch, spec, behavior, step)


def _check_masks(batch: DecisionSteps, spec: BehaviorSpec, behavior: str, step: int) -> None:
    if batch.action_mask is None:
        return
    branches = spec.action_spec.discrete_branches
    if len(batch.action_mask) != len(branches):
        _fail(behavior, step, f"action_mask has {len(batch.action_mask)} arrays for {len(branches)} branches")
    for b, (mask, size) in enumerate(zip(batch.action_mask, branches, strict=True)):
        mask = np.asarray(mask)
        if mask.shape != (len(batch), size) or mask.dtype != np.bool_:
            _fail(
                behavior, step, f"action_mask[{b}] must be bool [{len(batch)}, {size}], got {mask.dtype} {mask.shape}"
            )
        if len(mask) and not mask.any(axis=1).all():
            _fail(behavior, step, f"action_mask[{b}] forbids every action for some agent")


def random_actions(spec: BehaviorSpec, decision: DecisionSteps, rng: np.random.Generator) -> ActionTuple:
    """Uniform random actions among those the masks allow (ActionSpec.random)."""
    return spec.action_spec.random(len(decision), rng, decision.action_mask)


def _check_refusals(env: BaseEnv, name: str, spec: BehaviorSpec, decision: DecisionSteps) -> None:
    n = len(decision)
    wrong = ActionTuple(
        continuous=np.zeros((n + 1, spec.action_spec.continuous_size), np.float32),
        discrete=np.zeros((n + 1, spec.action_spec.discrete_size), np.int32),
    )
    try:
        env.set_actions(name, wrong)
    except EnvError:
        pass
    else:
        _fail(name, 0, f"set_actions accepted actions for {n + 1} agents while {n} decide (must raise EnvError)")
    unknown = name + "?unknown"
    for call in (lambda: env.get_steps(unknown), lambda: env.set_actions(unknown, spec.action_spec.empty(n))):
        try:
            call()
        except EnvError:
            continue
        _fail(name, 0, f"an unknown behaviour name '{unknown}' was accepted (must raise EnvError)")


def _run(env: BaseEnv, steps: int, seed: int, check: bool) -> list[np.ndarray]:
    """Step the env with random actions; return a trace of observations and rewards."""
    rng = np.random.default_rng(seed)
    specs = env.behavior_specs
    if check:
        if not specs:
            raise EnvCheckError("the env has no behaviours")
        for name, spec in specs.items():
            if not isinstance(spec, BehaviorSpec):
                raise EnvCheckError(f"behaviour '{name}': spec is {type(spec).__name__}, not BehaviorSpec")
            if any(d <= 0 for o in spec.observation_specs for d in o.shape) or not spec.observation_specs:
                _fail(name, 0, f"observation shapes must be non-empty and positive: {spec.observation_specs}")
            a = spec.action_spec
            if a.continuous_size < 0 or (a.continuous_size == 0 and not a.discrete_branches):
                _fail(name, 0, f"action spec has nothing to act on: {a}")
            if any(b < 1 for b in a.discrete_branches):
                _fail(name, 0, f"discrete branches must have >= 1 action: {a.discrete_branches}")
    env.reset()
    trace: list[np.ndarray] = []
    seen: dict[str, set[int]] = {name: set() for name in specs}
    for step in range(steps + 1):
        for name, spec in specs.items():
            decision, terminal = env.get_steps(name)
            if check:
                _check_batch(decision, spec, name, step, "decision")
                _check_batch(terminal, spec, name, step, "terminal")
                if step == 0 and len(terminal):
                    _fail(name, step, f"{len(terminal)} agents are terminal right after reset()")
                unknown = set(np.asarray(terminal.agent_id).tolist()) - seen[name]
                if step > 0 and unknown:
                    _fail(name, step, f"terminal agents {sorted(unknown)} never decided before")
                seen[name].update(np.asarray(decision.agent_id).tolist())
                if step == 0:
                    _check_refusals(env, name, spec, decision)
            trace += [*(np.asarray(o) for o in decision.obs), np.asarray(decision.reward)]
            trace += [*(np.asarray(o) for o in terminal.obs), np.asarray(terminal.reward)]
            if step < steps:
                env.set_actions(name, random_actions(spec, decision, rng))
        if check and step == 0 and not any(seen.values()):
            # One behaviour may have no agent at a time (WallJump picks one per episode), but some agent must.
            raise EnvCheckError("no agent of any behaviour decides right after reset()")
        if step < steps:
            env.step()
    return trace


def check_env(env: BaseEnv | Callable[[int], BaseEnv], steps: int = 100, seed: int = 0) -> None:
    """Check an env (or a factory ``seed -> env``) against the mlx env contract; raises EnvCheckError.

    With a factory, also checks that equal seeds give identical trajectories and that close() may be
    called twice.
    """
    if isinstance(env, BaseEnv):
        _run(env, steps, seed, check=True)
        return
    first = env(seed)
    try:
        trace_a = _run(first, steps, seed, check=True)
    finally:
        first.close()
        first.close()
    second = env(seed)
    try:
        trace_b = _run(second, steps, seed, check=False)
    finally:
        second.close()
    if len(trace_a) != len(trace_b) or any(
        a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(trace_a, trace_b, strict=False)
    ):
        raise EnvCheckError(
            "two envs built with the same seed diverged under the same actions (seeding is not deterministic)"
        )
