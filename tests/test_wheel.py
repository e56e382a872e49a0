"""A built wheel is all mlx needs: installed into a fresh venv outside the checkout, with the checkout on no
path, it composes its configs, trains, and its command lines start (issue 21: "Primary config directory not
found" was what a non-editable install printed).

Offline and quick: the wheel is built without build isolation (the setuptools already installed) and
installed with --no-deps; the venv sees the dependencies already installed through a .pth that names their
folder (a plain path line: .pth files there, such as an editable install of mlx, are not processed, so
neither this checkout nor any other mlx is importable in the venv).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_3DBALL

SOURCES = ["pyproject.toml", "setup.py", "README.md", "src", "conf", "sweeps", "demos"]

# Run inside the venv: where mlx and its data come from.
PROBE = """
import json, sys
from pathlib import Path
import mlx, hydra_plugins.mlx_sweeper
from mlx.config import CONF_DIR, DATA_ROOT, resolve_demo_path
from mlx.sweep.files import sweep_dirs
print(json.dumps({
    "mlx": mlx.__file__,
    "plugin": hydra_plugins.mlx_sweeper.__file__,
    "conf": str(CONF_DIR),
    "data": str(DATA_ROOT),
    "demo": str(resolve_demo_path("demos/Expert3DBall.demo").resolve()),
    "sweeps": [str(d) for d in sweep_dirs()],
    "with_mlx": [p for p in sys.path if (Path(p or ".") / "mlx" / "__init__.py").is_file()],
    "gym_tuned": (Path(CONF_DIR) / "tuned" / "gym" / "CartPole-v1_ppo.yaml").is_file(),
}))
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with the wheel built from this checkout installed in it."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a copy: building in place would leave build/ and *.egg-info in the checkout
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), str(source)]
    subprocess.run(build, check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = (tmp / "dist").glob("mlx_mlagents-*.whl")

    root = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "mlx_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: the dependencies' folder may hold an (editable) mlx-mlagents; pip must install beside
    # it, never uninstall it.
    install = [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, text=True, timeout=300, env=_clean_env())
    return root


def _clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH (the tests run with the checkout's src/ on it)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "MLX_CONF_DIR")}


def _run(venv: Path, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(_clean_env(), PYTHONUNBUFFERED="1")
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_installed_wheel_imports_its_own_copy(venv: Path, tmp_path: Path) -> None:
    proc = _run(venv, "python", "-c", PROBE, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    where = json.loads(proc.stdout)
    site = Path(where["mlx"]).parents[1]
    assert site.is_relative_to(venv.resolve()) or site.is_relative_to(venv), where
    assert where["with_mlx"] == [str(site)], where  # no checkout (this one or /work/main's) on the path
    assert Path(where["plugin"]).is_relative_to(site), where  # the sweeper plugin is in the wheel too
    assert where["data"] == str(site / "mlx") and where["conf"] == str(site / "mlx" / "conf"), where
    assert where["demo"] == str(site / "mlx" / "demos" / "Expert3DBall.demo"), where
    assert where["sweeps"][0] == str(site / "mlx" / "sweeps"), where
    assert (site / "mlx" / "sweeps" / "3dball_ppo.yaml").is_file()
    assert where["gym_tuned"], where  # conf/'s subfolders too (tuned/gym/<id>_<trainer>.yaml)


def test_installed_wheel_trains(venv: Path, tmp_path: Path) -> None:
    """A tiny 3DBall run from a folder outside the checkout: results land there, with a summary and a policy."""
    overrides = [*TINY_3DBALL, "trainer.max_steps=800", "trainer.summary_freq=400", "run_id=w", "tracking=none"]
    proc = _run(venv, "python", "-m", "mlx", *overrides, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / "results" / "w"
    rows = [json.loads(line) for line in (root / "run_logs" / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows][-1] == 800
    assert (root / "3DBall.onnx").is_file()
    assert not (tmp_path / "mlruns.db").exists()  # tracking=none was composed from the installed conf/


def test_installed_command_lines_start(venv: Path, tmp_path: Path) -> None:
    learn = _run(venv, "mlx-learn", "--help", cwd=tmp_path, timeout=120)
    assert learn.returncode == 0 and "usage: mlx-learn" in learn.stdout, learn.stderr[-2000:]
    imp = _run(venv, "python", "-m", "mlx.import_mlagents", "--help", cwd=tmp_path, timeout=120)
    assert imp.returncode == 0 and "usage" in imp.stdout.lower(), imp.stderr[-2000:]
    main = _run(venv, "mlx", "--help", cwd=tmp_path, timeout=120)
    assert main.returncode == 0 and "env" in main.stdout, main.stderr[-2000:]
