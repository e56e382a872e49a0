"""The distribution's name (unique on the package index, where "mlx" is Apple's MLX) and the one-line warning
when Apple's MLX shares the environment (both install the import package mlx)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO


def test_the_distribution_is_not_named_mlx():
    text = (REPO / "pyproject.toml").read_text()  # (tomllib is 3.11+; mlx supports 3.10)
    assert re.search(r'^name = "mlx-mlagents"$', text, flags=re.M)
    assert re.search(r'^mlx = "mlx.__main__:main"', text, flags=re.M)  # the command keeps its name


def _mlx_help(extra_path: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), extra_path) if p)
    return subprocess.run([sys.executable, "-m", "mlx", "--help"], capture_output=True, text=True, env=env, timeout=120)


def test_apple_mlx_in_the_same_environment_is_named_in_one_line(tmp_path):
    # What Apple's wheel installs: its dist-info lists the compiled mlx/core next to the package files.
    info = tmp_path / "mlx-0.32.4.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlx\nVersion: 0.32.4\n")
    (info / "RECORD").write_text("mlx/core.cpython-311-x86_64-linux-gnu.so,,\nmlx/utils.py,,\n")
    proc = _mlx_help(str(tmp_path))
    warnings = [line for line in proc.stderr.splitlines() if "Apple's MLX" in line]
    assert len(warnings) == 1 and "'mlx-mlagents'" in warnings[0] and "separate virtual environments" in warnings[0]
    assert "Apple's MLX" not in _mlx_help(None).stderr
