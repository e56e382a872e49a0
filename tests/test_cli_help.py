"""mlx's own command-line pages, as a user meets them: `python -m mlx --help`, `--version`, a reader that
stops early, bash tab completion for `mlx` and `python -m mlx`, and the settings reference kept in step with
the schema. Every test runs the real command in a subprocess (about half a second each)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def mlx(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlx", *args], capture_output=True, text=True, env=env or ENV, timeout=120
    )


def test_help_lists_modes_groups_keys_and_docs() -> None:
    out = mlx("--help")
    assert out.returncode == 0, out.stderr
    page = out.stdout
    assert page.startswith("python -m mlx: ")
    for mode in ("train", "evaluate", "watch", "record"):
        assert f"\n  {mode} " in page
    for group in ("trainer", "env", "network", "reward_signals", "curriculum", "sampler", "tracking", "sweep"):
        assert f"\n  {group} " in page, group
    assert "poca ppo sac" in page  # the trainer group's options
    assert "3dball" in page and "walljump" in page and "CartPole" in page
    for key in ("trainer.max_steps", "seed=", "run_id=", "progress=auto|plain", "debug=true"):
        assert key in page, key
    assert "mlx-learn" in page
    assert "README.md" in page and "settings.md" in page
    assert "_schema" not in page
    assert mlx("-h").stdout == page


def test_help_names_the_command_it_was_run_as(tmp_path: Path) -> None:
    """The `mlx` console script's page shows `mlx ...` commands."""
    script = tmp_path / "mlx"
    script.write_text(f"#!{sys.executable}\nfrom mlx.__main__ import main\nmain()\n")
    script.chmod(0o755)
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=ENV, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("mlx: ") and "\n  mlx env=3dball" in out.stdout


def test_schemas_are_no_options_anywhere() -> None:
    """Hydra's own group listing (--hydra-help's page of the app, --help of Hydra) and unknown-option errors
    come from the same config repository: no *_schema there, while the schemas still type the config."""
    listing = mlx("--cfg", "job", "trainer=nope")
    assert listing.returncode == 2
    assert "ppo" in listing.stderr and "_schema" not in listing.stderr
    typed = mlx("--cfg", "job", "trainer.hyperparameters.batch_size=abc")
    assert typed.returncode == 2 and "could not be converted to Integer" in typed.stderr


def test_version() -> None:
    out = mlx("--version")
    assert out.returncode == 0, out.stderr
    from mlx import __version__

    line = out.stdout.strip()
    assert line.startswith(f"mlx {__version__} (torch ") and "Hydra 1.3" in line, line
    assert "\n" not in line


@pytest.mark.parametrize("args", [("--help",), ("--cfg", "job")])
def test_a_reader_that_stops_early_ends_it_quietly(args: tuple[str, ...]) -> None:
    """`python -m mlx --help | head -1`: the reader is gone before mlx writes; no traceback, exit 141 as a
    command killed by SIGPIPE reports."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlx", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_head_of_help_in_a_shell() -> None:
    out = subprocess.run(
        f"{sys.executable} -m mlx --help | head -1", shell=True, capture_output=True, text=True, env=ENV, timeout=120
    )
    assert out.stdout.startswith("python -m mlx: ") and out.stderr == ""


def query(line: str) -> list[str]:
    """Hydra's completion query, as bash asks it."""
    env = {**ENV, "COMP_LINE": line, "COMP_POINT": str(len(line))}
    out = mlx("-sc", "query=bash", env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_completion_query_for_mlx_and_python_m_mlx() -> None:
    assert query("mlx trainer=") == ["trainer=poca", "trainer=ppo", "trainer=sac"]
    assert query("python -m mlx trainer=") == ["trainer=poca", "trainer=ppo", "trainer=sac"]
    assert query("/usr/bin/python3.11 -m mlx env=3dball") == ["env=3dball", "env=3dballhard"]
    assert "trainer.hyperparameters.batch_size=" in query("python -m mlx trainer.hyperparameters.b")
    everything = query("mlx ") + query("mlx env=") + query("mlx tracking=")
    assert "trainer=" in everything and not [w for w in everything if "schema" in w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_installed_bash_completion(tmp_path: Path) -> None:
    """The README's one-liner in a real bash: `mlx` and `python -m mlx` complete, other python scripts not."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, command in (("mlx", f'{sys.executable} -m mlx "$@"'), ("python", f'{sys.executable} "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\nexec {command}\n")
        (bin_dir / name).chmod(0o755)
    script = """
eval "$(mlx -sc install=bash)"
comp() { COMP_LINE="$1"; COMP_POINT=${#1}; COMP_WORDS=($1); COMP_CWORD=$((${#COMP_WORDS[@]}-1));
         _mlx_completion; echo "${COMPREPLY[*]}"; }
comp "python -m mlx trainer="
comp "mlx network=l"
comp "python other.py trainer="
"""
    env = {**ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["trainer=poca trainer=ppo trainer=sac", "network=large network=lstm", ""]


def test_settings_reference_is_up_to_date() -> None:
    """docs/settings.md is what the schema generates now: a changed default or comment fails here."""
    out = subprocess.run(
        [sys.executable, "-m", "mlx.config.reference"], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert out.returncode == 0, out.stderr
    committed = (ROOT / "docs" / "settings.md").read_text()
    assert out.stdout == committed, "docs/settings.md is stale: python -m mlx.config.reference > docs/settings.md"


def test_every_setting_has_a_meaning() -> None:
    from dataclasses import fields

    from mlx.config.reference import reference, undocumented
    from mlx.config.run import MlxConfig

    assert undocumented() == [], "add a comment to these fields in src/mlx/config/"
    page = reference()
    for f in fields(MlxConfig):
        assert f"| `{f.name}` |" in page, f.name
    assert "| `progress` | str | `auto` | auto: a live line" in page
    assert "| `debug` | bool | `false` | mlagents-learn's --debug" in page
    for key in (
        "trainer.hyperparameters.steps_per_update",
        "trainer.reward_signals.gail.use_vail",
        "sweep.pruner.type",
    ):
        assert f"| `{key}` |" in page, key


def test_meanings_come_from_the_fields_comments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "schema_example.py").write_text(
        "from dataclasses import dataclass\n\n\n@dataclass\nclass Base:\n"
        "    a: int = 1  # the a\n    # two lines\n    # about b\n    b: str = 'x'\n    c: bool = False\n\n\n"
        "@dataclass\nclass Child(Base):\n    a: int = 2\n    c: bool = True  # own c\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import schema_example

    from mlx.config.reference import describe, rows

    assert describe(schema_example.Child, "a") == "the a"  # inherited: the subclass only changes the default
    assert describe(schema_example.Child, "b") == "two lines about b"
    assert describe(schema_example.Base, "c") == "" and describe(schema_example.Child, "c") == "own c"
    assert rows(schema_example.Child, "x.", {}) == [
        ("x.a", "int", "2", "the a"),
        ("x.b", "str", "x", "two lines about b"),
        ("x.c", "bool", "true", "own c"),
    ]
