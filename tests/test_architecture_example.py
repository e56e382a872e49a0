"""docs/architecture.md's "Adding a native env" stays true: its example module, saved as its own file and
registered by its one registry line, builds through make_env and passes the env checker."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from mlx.envs import make_env, registry
from mlx.envs.api import ActionTuple, EnvError
from mlx.envs.checker import check_env

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def code_blocks() -> list[str]:
    section = DOC.read_text().split("## Adding a native env", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.fixture
def reach(tmp_path, monkeypatch):
    """The example module saved where the doc says (as a package module) and the doc's registry line added."""
    module, line = code_blocks()
    package = tmp_path / "example_envs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "reach.py").write_text(module)
    entry = ast.literal_eval("{" + line.strip().rstrip(",") + "}")
    assert entry == {"reach": "mlx.envs.native.reach:ReachEnv"}
    # The same line, pointing at where the test saved the module.
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "NATIVE_ENVS", {**registry.NATIVE_ENVS, "reach": "example_envs.reach:ReachEnv"})
    yield
    sys.modules.pop("example_envs.reach", None)
    sys.modules.pop("example_envs", None)


def test_the_example_env_builds_from_its_registry_line_and_passes_the_checker(reach):
    env = make_env("reach", num_areas=3, seed=0)
    assert list(env.behavior_specs) == ["Reach"]
    check_env(lambda seed: make_env("reach", num_areas=3, seed=seed), steps=120)


def test_the_example_env_ends_episodes_by_reaching_and_by_max_decisions(reach):
    env = make_env("reach", num_areas=2, seed=1, parameters={"target_range": 3.0})
    env.reset()
    reached = interrupted = 0
    for _ in range(200):
        decision, _ = env.get_steps("Reach")
        toward = np.sign(decision.obs[0][:, 1:2]).astype(np.float32)
        toward[1] = 0.0  # area 1 never moves: its episodes are interrupted after 50 decisions
        env.set_actions("Reach", ActionTuple(toward, np.zeros((2, 0), np.int32)))
        env.step()
        _, terminal = env.get_steps("Reach")
        reached += int((~terminal.interrupted & (terminal.reward == 1.0)).sum())
        interrupted += int(terminal.interrupted.sum())
    assert reached > 10 and interrupted == 4
    with pytest.raises(EnvError, match="target_range"):
        make_env("reach", num_areas=1, seed=0, parameters={"target_range": 0.0})


def test_the_example_env_is_an_env_option_without_a_config_file(reach):
    """`env=reach` composes and validates from the registry line alone (conf/env/reach.yaml is optional)."""
    from mlx.config import validate
    from tests.conftest import compose_tree

    assert not (DOC.parents[1] / "conf" / "env" / "reach.yaml").exists()
    cfg = validate(compose_tree("env=reach", "trainer=ppo"))
    assert cfg.env.name == "reach"
    env = make_env(cfg.env.name, num_areas=cfg.env.num_areas, seed=cfg.seed, parameters=cfg.env.parameters)
    assert list(env.behavior_specs) == ["Reach"]
