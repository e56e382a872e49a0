"""Every option of every config group composes and validates (so a broken YAML never reaches a user)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx.config import CONF_DIR, ConfigError, validate
from tests.conftest import compose_tree

# Options that need a value the YAML cannot know (given here as a user would).
NEEDS = {"env/gym": ["env.id=CartPole-v1"]}
SKIP_GROUPS = {"tuned"}  # selected automatically from env x trainer; covered by the env x trainer cases


def options() -> list[tuple[str, str]]:
    out = []
    for group in sorted(p for p in Path(CONF_DIR).iterdir() if p.is_dir() and p.name not in SKIP_GROUPS):
        for yaml in sorted(group.glob("*.yaml")):
            out.append((group.name, yaml.stem))
    return out


@pytest.mark.parametrize(("group", "option"), options(), ids=[f"{g}={o}" for g, o in options()])
def test_option_composes_and_validates(group, option):
    if group == "reward_signals":
        override = f"reward_signals=[extrinsic,{option}]" if option != "extrinsic" else "reward_signals=[extrinsic]"
    else:
        override = f"{group}={option}"
    extra = NEEDS.get(f"{group}/{option}", [])
    if group == "env" and option == "unity":
        pytest.skip("env=unity needs an executable; covered by the gRPC tests")
    if group == "sweep":
        pytest.skip("sweeps are composed by the sweep tests")
    validate(compose_tree(override, *extra))


TUNED = sorted(p.stem for p in (Path(CONF_DIR) / "tuned").glob("*.yaml"))
# Tuned files that keep an upstream setting mlx refuses for now (the message a user gets).
REFUSED: dict[str, str] = {}


@pytest.mark.parametrize("name", TUNED)
def test_every_tuned_file_is_selected_by_its_env_and_trainer(name):
    env, trainer = name.rsplit("_", 1)
    extra = NEEDS.get(f"env/{env}", [])
    if name in REFUSED:
        with pytest.raises(ConfigError, match=REFUSED[name]):
            validate(compose_tree(f"env={env}", f"trainer={trainer}", *extra))
        extra = [*extra, "trainer.network_settings.memory=null"]
    run = validate(compose_tree(f"env={env}", f"trainer={trainer}", *extra))
    assert run.trainer.trainer_type == trainer
    tuned = (Path(CONF_DIR) / "tuned" / f"{name}.yaml").read_text()
    written = tuned.split("max_steps:")[1].split()[0] if "max_steps:" in tuned else None
    if written is not None and not written.startswith("${"):  # the tuned value, not the default, reached the run
        value = int(float(written))
        assert run.trainer.max_steps == value
