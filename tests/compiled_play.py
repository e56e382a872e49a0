"""What the compiled-kernel tests share: play an env under seeded random actions and keep every record the
trainer sees, to compare an env stepped compiled (``mlx.envs.native.arena.COMPILED``) with its numpy form."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlx.envs.api import BaseEnv, TerminalSteps


def records(env: BaseEnv, steps: int, on_terminals: Callable[[TerminalSteps], None] | None = None) -> list[np.ndarray]:
    """Each behaviour's decision steps (observations, rewards, agent ids) and terminal steps (the same and
    ``interrupted``), step after step, under random actions from a generator seeded 0."""
    rng = np.random.default_rng(0)
    env.reset()
    out: list[np.ndarray] = []
    for _ in range(steps):
        for behavior, spec in env.behavior_specs.items():
            decisions, terminals = env.get_steps(behavior)
            out += [np.array(p) for p in (*decisions.obs, decisions.reward, decisions.agent_id)]
            out += [np.array(p) for p in (*terminals.obs, terminals.reward, terminals.agent_id, terminals.interrupted)]
            if on_terminals is not None:
                on_terminals(terminals)
            env.set_actions(behavior, spec.action_spec.random(len(decisions), rng))
        env.step()
    return out


def assert_same(compiled: list[np.ndarray], plain: list[np.ndarray]) -> None:
    """Equal records: shapes, dtypes and values (a zero's sign may differ)."""
    assert len(compiled) == len(plain)
    for i, (a, b) in enumerate(zip(compiled, plain, strict=True)):
        assert a.shape == b.shape and a.dtype == b.dtype, i
        assert np.array_equal(a, b), f"record {i} differs"
