"""Learning curves of one run, from its run_logs/stats.jsonl: run_logs/<Behavior>_curves.png.

Written at the end of every training run and logged to MLflow beside stats.jsonl (artifact folder
run_logs/); ``python -m mlx.tracking.curves results/<run_id>`` draws them again for any run folder, e.g. one
stopped with Ctrl-C. One PNG per behaviour, one panel per statistic: the cumulative reward with a band
of ± its std over the summary period's episodes, the episode length, the policy's entropy, then every
``Losses/*`` statistic the trainer reported (PPO: policy and value loss; SAC: policy, Q and entropy
coefficient losses; reward signals add theirs). The panels are drawn by mlx.tracking.compare's plotting code,
so they look like ``python -m mlx.tracking.compare``'s curves.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlx.errors import one_line_error
from mlx.stat_names import GROUP_REWARD, REWARD
from mlx.tracking.compare import Group, RunCurve, draw_groups, figure, save_figure

KEY_STATISTICS = ("Environment/Episode Length", "Policy/Entropy")
BEHAVIOR_NAME = re.compile(r"[^/\\\x00]{1,200}")  # a behaviour names a PNG file: no folders, no NUL


def _number(value: Any) -> bool:
    """A JSON number numpy can hold (an int beyond 64 bits cannot)."""
    return isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63)


def read_stats(path: Path) -> list[dict[str, Any]]:
    """The summary rows of a stats.jsonl: a line that is not one (cut short by a kill, or garbage) is
    skipped, and so is every value of a row that is not a number, so that anything read can be drawn."""
    rows = []
    for line in path.read_bytes().decode(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        name = row.get("behavior") if isinstance(row, dict) else None
        if not isinstance(name, str) or not BEHAVIOR_NAME.fullmatch(name):
            continue
        if not (isinstance(row.get("step"), int) and _number(row["step"])):
            continue
        rows.append({k: v for k, v in row.items() if k == "behavior" or v is None or _number(v)})
    return rows


def row_score(row: dict[str, Any]) -> float | None:
    """What a summary row scores (stop_at_reward, sweep objectives): the mean group reward for a group
    behaviour, the mean reward otherwise; None when no episode (no group episode) ended in it."""
    return row["mean_group_reward"] if "mean_group_reward" in row else row.get("mean_reward")


def panels(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The statistics to draw, in order: the group reward (group behaviours), reward, the key statistics,
    the losses (those present)."""
    names = {k for row in rows for k, v in row.items() if v is not None}
    losses = sorted(k for k in names if k.startswith("Losses/"))
    group = [GROUP_REWARD] if any("mean_group_reward" in row for row in rows) else []
    return [*group, REWARD, *(k for k in KEY_STATISTICS if k in names), *losses]


def write_curves(stats: Path, behavior: str, out: Path, title: str = "") -> Path | None:
    """Draw one behaviour's curves from a stats.jsonl into out (PNG); None when it has no summary yet."""
    rows = [r for r in read_stats(stats) if r["behavior"] == behavior] if stats.exists() else []
    if not rows:
        return None
    rows.sort(key=lambda r: r["step"])
    names = panels(rows)
    cols = 2 if len(names) > 1 else 1
    fig, axes = figure(math.ceil(len(names) / cols), cols, panel=(6, 3.6))
    for ax, name in zip(axes.flat, names, strict=False):
        key = "mean_reward" if name == REWARD else name
        kept = [r for r in rows if r.get(key) is not None]
        steps = np.array([r["step"] for r in kept], np.int64)
        values = np.array([r[key] for r in kept], np.float64)
        curve = RunCurve(run_id=behavior, name=behavior, params={}, tags={}, steps=steps, values=values)
        draw_groups(ax, [Group(key=(), runs=[curve], label=behavior)], name, legend=False)
        if name == REWARD and len(kept):
            std = np.array([r.get("std_reward") or 0.0 for r in kept], np.float64)
            band = ax.fill_between(steps, values - std, values + std, alpha=0.2, linewidth=0)
            ax.legend([band], ["± std over the episodes of a summary"], fontsize=8, loc="best")
        if not len(kept):
            ax.text(0.5, 0.5, "no episode ended yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(name, fontsize=10)
        ax.set_ylabel("")  # the title names it
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(title or behavior)
    save_figure(fig, out)
    return out


def write_run_curves(root: Path, behaviors: Sequence[str] | None = None) -> list[Path]:
    """Curves of every behaviour of a run folder (results/<run_id>) into its run_logs/."""
    stats = root / "run_logs" / "stats.jsonl"
    if behaviors is None:
        behaviors = sorted({r["behavior"] for r in read_stats(stats)}) if stats.exists() else []
    written = []
    for name in behaviors:
        path = write_curves(stats, name, root / "run_logs" / f"{name}_curves.png", f"{root.name}: {name}")
        if path is not None:
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlx.tracking.curves", description="Draw a run's learning curves into its run_logs/ (PNG)."
    )
    parser.add_argument("run", help="a run folder, e.g. results/<run_id>")
    parser.add_argument("--behavior", action="append", help="only this behaviour's curves (repeatable)")
    parser.add_argument(
        "--when-told", action="store_true", help="import matplotlib, then draw only once stdin says 'draw'"
    )
    args = parser.parse_args(argv)
    if args.when_told:
        import matplotlib.pyplot  # noqa: F401 - imported now, while the run that started this trains

        if sys.stdin.readline().strip() != "draw":
            return 0  # the run ended another way (failed, stopped): nothing to draw here
    root = Path(args.run)
    stats = root / "run_logs" / "stats.jsonl"
    if not stats.exists():
        print(
            f"mlx.tracking.curves: error: {stats} does not exist; give a run folder such as results/<run_id>",
            file=sys.stderr,
        )
        return 2
    try:
        written = write_run_curves(root, args.behavior)
    except (OSError, ValueError) as exc:  # an unwritable run_logs/, a title matplotlib cannot typeset
        print(f"mlx.tracking.curves: error: {stats}: {one_line_error(exc)}", file=sys.stderr)
        return 2
    if not written:
        why = (
            "holds no summary row mlx can read (is it a run's stats.jsonl?)"
            if stats.stat().st_size
            else "has no summary yet (a run writes one every summary_freq steps)"
        )
        print(f"mlx.tracking.curves: error: {stats} {why}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


def start_drawing(root: Path, behaviors: Sequence[str]) -> subprocess.Popen[str]:
    """A run's curves drawn by a child process (this module's command with ``--when-told``), started as the
    run's loop starts: matplotlib's import happens beside training, and the drawing beside the final
    checkpoint and ONNX export, instead of after them. ``drawn`` tells it to draw and collects it;
    ``dismiss`` ends it without drawing."""
    from mlx.config.paths import child_env

    cmd = [sys.executable, "-m", "mlx.tracking.curves", str(root), "--when-told"]
    for name in behaviors:
        cmd += ["--behavior", name]
    return subprocess.Popen(
        cmd, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def draw_now(proc: subprocess.Popen[str]) -> None:
    """Tell ``start_drawing``'s child to draw (stats.jsonl is complete); ``drawn`` collects what it wrote."""
    if proc.stdin is None or proc.stdin.closed:
        return
    try:
        proc.stdin.write("draw\n")
        proc.stdin.flush()
    except (BrokenPipeError, OSError, ValueError):  # it ended already: drawn reports why
        pass


def drawn(proc: subprocess.Popen[str], timeout: float = 600.0) -> list[Path]:
    """The PNGs ``start_drawing``'s child wrote once told to draw (``draw_now``, here if not yet), [] for a
    run without a summary; a failure raises RuntimeError with the child's last line."""
    draw_now(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"not drawn within {timeout:.0f} s") from None
    if proc.returncode == 0:
        return [Path(line[len("wrote ") :]) for line in out.splitlines() if line.startswith("wrote ")]
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit code {proc.returncode}"
    if proc.returncode == 2 and ("has no summary yet" in last or "holds no summary row" in last):
        return []
    raise RuntimeError(last.removeprefix("mlx.tracking.curves: error: "))


def dismiss(proc: subprocess.Popen[str]) -> None:
    """End ``start_drawing``'s child without drawing (a run that failed or stopped draws in-process)."""
    if proc.poll() is not None:
        return
    try:
        proc.communicate(timeout=10)  # stdin closed without 'draw': it exits
    except (subprocess.TimeoutExpired, OSError, ValueError):
        proc.kill()
        proc.wait()


class FinalCurves:
    """A run's final curves: ``start_drawing``'s child, started with the run's loop, told to draw as the run
    finishes (``draw_now``), collected by ``paths``; drawn in this process where the child could not start.
    A drawing failure only warns: the final checkpoints and policies are saved by then."""

    def __init__(self, root: Path, behaviors: Sequence[str]) -> None:
        self.root, self.behaviors = root, list(behaviors)
        self.child: subprocess.Popen[str] | None = None
        try:
            self.child = start_drawing(root, self.behaviors)
        except OSError as exc:
            _warn(f"[WARNING] Learning curves not drawn by a child process: {one_line_error(exc)}")

    def draw_now(self) -> None:
        if self.child is not None:
            draw_now(self.child)

    def paths(self) -> list[Path]:
        """The PNGs written, [] when none could be."""
        child, self.child = self.child, None
        return draw_here(self.root, self.behaviors) if child is None else _warned(lambda: drawn(child))

    def dismiss(self) -> None:
        if self.child is not None:
            dismiss(self.child)


def draw_here(root: Path, behaviors: Sequence[str]) -> list[Path]:
    """write_run_curves in this process (a stopped run's curves), warning instead of failing."""
    return _warned(lambda: write_run_curves(root, behaviors))


def _warned(draw: Any) -> list[Path]:
    try:
        return list(draw())
    except Exception as exc:  # noqa: BLE001 - a plotting library's failure must not fail a finished run
        _warn(f"[WARNING] Learning curves not drawn: {type(exc).__name__}: {one_line_error(exc)}")
        return []


def _warn(message: str) -> None:
    from mlx.training.output import warn  # light: logging only

    warn(message)


if __name__ == "__main__":
    sys.exit(main())
