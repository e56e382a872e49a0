"""`python -m mlx.tracking.compare`: compare runs recorded in MLflow.

Selects runs (by experiment, sweep id, tags, run ids), groups the runs that differ only by seed (and
other bookkeeping such as run_id), prints one table row per group with the final reward as mean ± std
over its seeds, and writes a PNG of the learning curves: the mean over seeds per group, with the band
of ± one standard deviation (the min-max band when a group has two runs, where a std says little).

    python -m mlx.tracking.compare --sweep ppo-3dball-20261122-042610
    python -m mlx.tracking.compare --experiment 3dball --tag mlx.trainer=ppo --out ppo.png
    python -m mlx.tracking.compare --run-id 1f2e... --run-id 9ab0... --metric "Losses/Value Loss"
    python -m mlx.tracking.compare --experiment walljump --behavior BigWallJump

A run with several behaviours logs each one's statistics as "<Behavior>/<name>" (mlx.tracking.keys):
--behavior picks one (the same as --metric "BigWallJump/Environment/Cumulative Reward"); when the metric
is missing from every run but those runs have it per behaviour, the error names the --behavior to pass.

A sweep's parent run is never compared, only its children. Bad input (nothing matches, an unknown
experiment) ends with one line on stderr and exit code 2, like `python -m mlx`.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlx.errors import CompareError
from mlx.stat_names import REWARD
from mlx.tracking.secrets import redact

USAGE_ERROR = 2
# Params that differ between the seeds of one configuration without changing what is compared.
BOOKKEEPING = ("seed", "run_id", "resume", "force", "progress", "results_dir", "initialize_from")
BOOKKEEPING_PREFIXES = ("tracking.",)


@dataclass
class RunCurve:
    run_id: str
    name: str
    params: dict[str, str]
    tags: dict[str, str]
    steps: np.ndarray
    values: np.ndarray

    @property
    def final(self) -> float:
        return float(self.values[-1])

    @property
    def final_step(self) -> int:
        return int(self.steps[-1])


@dataclass
class Group:
    key: tuple[tuple[str, str], ...]
    runs: list[RunCurve] = field(default_factory=list)
    label: str = ""

    def final_stats(self, last_n: int = 1) -> tuple[float, float]:
        finals = [float(np.mean(r.values[-last_n:])) for r in self.runs]
        return float(np.mean(finals)), float(np.std(finals))

    def curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(steps, mean, low, high) over the runs at the steps they share; a run that stopped early (a
        pruned trial, stop_at_reward) leaves the band where it ends."""
        steps = np.unique(np.concatenate([r.steps for r in self.runs]))
        stacked = np.full((len(self.runs), len(steps)), np.nan)
        for i, r in enumerate(self.runs):
            idx = np.searchsorted(steps, r.steps)
            stacked[i, idx] = r.values
        counts = np.sum(~np.isnan(stacked), axis=0)
        with np.errstate(all="ignore"):
            mean = np.nanmean(stacked, axis=0)
            if len(self.runs) == 2:
                low, high = np.nanmin(stacked, axis=0), np.nanmax(stacked, axis=0)
            else:
                std = np.nanstd(stacked, axis=0)
                low, high = mean - std, mean + std
        keep = counts > 0
        return steps[keep], mean[keep], low[keep], high[keep]


def is_bookkeeping(key: str) -> bool:
    return key in BOOKKEEPING or key.startswith(BOOKKEEPING_PREFIXES)


def group_runs(runs: Sequence[RunCurve], by: Sequence[str] | None = None) -> list[Group]:
    """Runs with equal params (bookkeeping aside, or equal `by` params) form a group; each group is
    labelled with the params that tell it apart from the other groups."""
    groups: dict[tuple[tuple[str, str], ...], Group] = {}
    for run in runs:
        if by:
            key = tuple((k, run.params.get(k, "")) for k in by)
        else:
            key = tuple(sorted((k, v) for k, v in run.params.items() if not is_bookkeeping(k)))
        groups.setdefault(key, Group(key)).runs.append(run)
    result = list(groups.values())
    label_groups(result)
    return result


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that is still unique among `keys`."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if sum(1 for other in keys if other == suffix or other.endswith("." + suffix)) == 1:
                out[key] = suffix
                break
        else:
            out[key] = key
    return out


def label_groups(groups: list[Group]) -> None:
    if len(groups) == 1:
        only = groups[0]
        only.label = only.runs[0].tags.get("mlx.sweep_id") or (only.runs[0].name if len(only.runs) == 1 else "all runs")
        return
    values: dict[str, set[str]] = {}
    for g in groups:
        for k, v in g.key:
            values.setdefault(k, set()).add(v)
    all_keys = {k for g in groups for k, _ in g.key}
    differing = sorted(
        k for k in all_keys if len(values.get(k, set())) > 1 or any(k not in dict(g.key) for g in groups)
    )
    names = short_names(differing)
    for g in groups:
        params = dict(g.key)
        parts = [f"{names[k]}={params.get(k, '-')}" for k in differing]
        g.label = " ".join(parts) if parts else g.runs[0].name


def select_runs(
    client: Any,
    experiments: Sequence[str],
    sweep: str | None,
    tags: Mapping[str, str],
    run_ids: Sequence[str],
) -> list[Any]:
    """MLflow runs matching every filter given; parents of sweeps are left out."""
    from mlflow.entities import ViewType  # lazy for start-up speed (mlflow)

    if run_ids:
        runs = [client.get_run(r) for r in run_ids]
    else:
        if experiments:
            ids = []
            for name in experiments:
                exp = client.get_experiment_by_name(name)
                if exp is None:
                    known = ", ".join(sorted(e.name for e in client.search_experiments()))
                    raise CompareError(f"no experiment named '{name}'; experiments: {known or 'none'}")
                ids.append(exp.experiment_id)
        else:
            ids = [e.experiment_id for e in client.search_experiments()]
        clauses = []
        if sweep:
            clauses.append(f"tags.`mlx.sweep_id` = '{sweep}'")
        for key, value in tags.items():
            clauses.append(f"tags.`{key}` = '{value}'")
        runs = client.search_runs(
            ids, filter_string=" and ".join(clauses), run_view_type=ViewType.ACTIVE_ONLY, max_results=5000
        )
    runs = [r for r in runs if r.data.tags.get("mlx.sweep_role") != "parent"]
    if not runs:
        what = [f"sweep {sweep}"] if sweep else []
        what += [f"tag {k}={v}" for k, v in tags.items()] + [f"experiment {e}" for e in experiments]
        raise CompareError(f"no runs match {', '.join(what) or 'the tracking store'}")
    return runs


def load_curves(client: Any, runs: Sequence[Any], metric: str) -> tuple[list[RunCurve], list[str]]:
    curves, missing = [], []
    for run in runs:
        history = client.get_metric_history(run.info.run_id, metric)
        if not history:
            missing.append(run.info.run_name or run.info.run_id)
            continue
        points = sorted((m.step, m.value) for m in history)
        curves.append(
            RunCurve(
                run_id=run.info.run_id,
                name=run.info.run_name or run.info.run_id,
                params=dict(run.data.params),
                tags=dict(run.data.tags),
                steps=np.array([p[0] for p in points], dtype=np.int64),
                values=np.array([p[1] for p in points], dtype=np.float64),
            )
        )
    return curves, missing


def behavior_hint(runs: Sequence[Any], metric: str) -> str:
    """'; ...pass --behavior NAME' when runs log ``metric`` per behaviour (mlx.tracking.keys), else ''."""
    suffix = "/" + metric
    names = sorted({k[: -len(suffix)] for r in runs for k in r.data.metrics if k.endswith(suffix)})
    if not names:
        return ""
    return (
        f"; these runs have several behaviours, each with its own '<Behavior>/{metric}': pass --behavior "
        f"{names[0]} (behaviours: {', '.join(names)})"
    )


def table(groups: Sequence[Group], metric: str, last_n: int) -> str:
    """One row per group, best first."""
    rows = []
    for g in groups:
        mean, std = g.final_stats(last_n)
        steps = int(np.mean([r.final_step for r in g.runs]))
        seeds = ",".join(sorted({r.params.get("seed", "?") for r in g.runs}, key=lambda s: (len(s), s)))
        rows.append((mean, g.label, len(g.runs), f"{mean:.3f} ± {std:.3f}", steps, seeds))
    rows.sort(key=lambda r: -r[0] if math.isfinite(r[0]) else math.inf)
    what = "final" if last_n == 1 else f"last {last_n} mean"
    head = ("group", "runs", f"{what}: mean ± std", "steps", "seeds")
    body = [(r[1], str(r[2]), r[3], str(r[4]), r[5]) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def figure(rows: int = 1, cols: int = 1, panel: tuple[float, float] = (8, 5)) -> tuple[Any, np.ndarray]:
    """A matplotlib figure (headless Agg backend) of rows x cols panels of the given size in inches; the
    panels as an array [rows, cols]."""
    import matplotlib  # lazy for start-up speed (matplotlib)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy for start-up speed (matplotlib)

    fig, axes = plt.subplots(rows, cols, figsize=(panel[0] * cols, panel[1] * rows), dpi=120, squeeze=False)
    return fig, axes


def draw_groups(ax: Any, groups: Sequence[Group], metric: str, legend: bool = True) -> None:
    """Each group's mean curve over its runs on one panel, with a band (± std; min-max for two runs)."""
    for g in sorted(groups, key=lambda g: g.label):
        steps, mean, low, high = g.curve()
        n = len(g.runs)
        band = "min-max" if n == 2 else "± std"
        label = f"{g.label} (n={n}, mean{', ' + band if n > 1 else ''})"
        (line,) = ax.plot(steps, mean, label=label, linewidth=1.8)
        if n > 1:
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("Agent steps")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=8, loc="best")


def save_figure(fig: Any, out: Path) -> None:
    import matplotlib.pyplot as plt  # lazy for start-up speed (matplotlib)

    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def plot(groups: Sequence[Group], metric: str, out: Path, title: str) -> None:
    fig, axes = figure()
    draw_groups(axes[0, 0], groups, metric)
    axes[0, 0].set_title(title)
    save_figure(fig, out)


def parse_tags(items: Sequence[str]) -> dict[str, str]:
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CompareError(f"--tag '{item}' must look like key=value, e.g. --tag mlx.trainer=ppo")
        tags[key] = value
    return tags


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlx.tracking.compare",
        description="Compare MLflow runs: final metrics (mean ± std over seeds) and learning curves (PNG).",
    )
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow tracking URI (as tracking.uri)")
    parser.add_argument("--experiment", action="append", default=[], help="experiment name (repeatable; default all)")
    parser.add_argument("--sweep", help="a sweep's id (tag mlx.sweep_id: a grid's id or an Optuna study name)")
    parser.add_argument("--tag", action="append", default=[], help="key=value tag filter (repeatable)")
    parser.add_argument("--run-id", action="append", default=[], help="MLflow run id (repeatable)")
    parser.add_argument("--metric", default=REWARD, help=f"metric to compare (default '{REWARD}')")
    parser.add_argument(
        "--behavior",
        help="the behaviour whose metric to compare, in runs with several behaviours (WallJump's BigWallJump, "
        "...): they log '<Behavior>/<metric>'",
    )
    parser.add_argument("--last-n", type=int, default=1, help="final value = mean of a run's last N points")
    parser.add_argument("--group-by", default="", help="comma-separated params to group by (default: all but seed)")
    parser.add_argument("--out", default="compare.png", help="PNG file for the learning curves")
    args = parser.parse_args(argv)
    try:
        if args.last_n < 1:
            raise CompareError(f"--last-n must be >= 1 (got {args.last_n})")
        if args.tracking_uri.startswith("sqlite:///"):
            store = Path(args.tracking_uri[len("sqlite:///") :])
            if not store.exists():  # MLflow would create an empty store and find nothing in it
                raise CompareError(
                    f"no MLflow store at {store}; run from the folder you trained in or pass --tracking-uri"
                )
        from mlflow.tracking import MlflowClient  # lazy for start-up speed (mlflow)

        client = MlflowClient(tracking_uri=args.tracking_uri)
        if args.behavior is not None and not args.behavior.strip():
            raise CompareError("--behavior is empty; name a behaviour, e.g. --behavior BigWallJump")
        base = args.metric
        if args.behavior:
            args.metric = f"{args.behavior}/{base}"
        runs = select_runs(client, args.experiment, args.sweep, parse_tags(args.tag), args.run_id)
        curves, missing = load_curves(client, runs, args.metric)
        if not curves:
            hint = behavior_hint(runs, base)
            raise CompareError(f"none of the {len(runs)} selected runs logged metric '{args.metric}'{hint}")
        by = [k.strip() for k in args.group_by.split(",") if k.strip()]
        groups = group_runs(curves, by or None)
    except CompareError as exc:
        print(f"mlx.tracking.compare: error: {redact(str(exc))}", file=sys.stderr)
        return USAGE_ERROR
    except Exception as exc:  # noqa: BLE001 - an unreachable server, a bad URI or a corrupt store is the user's
        from mlflow.exceptions import MlflowException  # lazy for start-up speed (mlflow)
        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(exc, (MlflowException, SQLAlchemyError, OSError)):
            raise
        reason = redact(" ".join(str(exc).split("[SQL:")[0].split())[:240])
        print(
            f"mlx.tracking.compare: error: the tracking store {redact(args.tracking_uri)} cannot be read ({reason}); "
            "pass --tracking-uri of an MLflow store",
            file=sys.stderr,
        )
        return USAGE_ERROR
    title = f"sweep {args.sweep}" if args.sweep else ", ".join(args.experiment) or "MLflow runs"
    print(f"{len(curves)} runs in {len(groups)} groups ({title}, {redact(args.tracking_uri)}); metric: {args.metric}")
    print(table(groups, args.metric, args.last_n))
    if missing:
        print(f"(skipped {len(missing)} runs without '{args.metric}': {', '.join(missing[:5])})")
    out = Path(args.out)
    plot(groups, args.metric, out, f"{args.metric}: {title}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
