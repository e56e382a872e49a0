"""MA-POCA on the cooperative scenes: the upstream benchmark, and POCA against independent PPO.

    python benchmarks/poca_groups.py --work DIR [--envs dungeonescape pushblockcollab] [--seed 1]
                                     [--compare-steps 5000000] [--only poca ppo] [--report-only]

For each env, two runs, each the command a user types (upstream tuned settings, MLflow off):

    poca  python -m mlx trainer=poca env=<env> seed=S stop_at_reward=<target>     (upstream budget)
    ppo   python -m mlx trainer=ppo env=<env> env.parameters.shared_reward=1 seed=S
              trainer.max_steps=<compare-steps>

The PPO run has the same settings (conf/tuned/<env>_ppo.yaml repeats the POCA file) and is paid the group
reward as its individual reward (``shared_reward=1``: PPO reads only individual rewards, which are 0 in
these scenes). Both are scored by the same statistic, the mean group reward
(``Environment/Group Cumulative Reward``, which every trainer reports for group behaviours). POCA at the
comparison budget is read from its long run: the upstream configs use constant schedules, so its first
``compare-steps`` steps are exactly a run with that max_steps.

Runs take hours on 2 cores: each one resumes where it stopped (``resume=true``) when its folder in
``--work`` exists and it has neither reached its target nor spent its budget; run the script again in a
later session. Writes benchmarks/results/poca_groups.json (steps, seconds, best scores, steps/s, the
machine's load average) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from common import mlx, stats_rows  # benchmarks/common.py

HERE = Path(__file__).resolve().parent
# env -> (behaviour, upstream target mean group reward, upstream max_steps)
UPSTREAM = {
    "dungeonescape": ("DungeonEscape", 1.0, 20_000_000),
    "pushblockcollab": ("PushBlockCollab", 11.0, 15_000_000),
}


# A summary scores only when enough episodes ended in it. PushBlockCollab's areas time out together, so a
# window can hold just the few groups that finished early (3 of them scored 11.73 at 6.12M steps while the
# policy's typical episode still timed out at about 5): such a window is no mean group reward of the policy.
MIN_EPISODES = 30  # agent episodes (10 groups of 3)


def score(row: dict) -> float | None:
    if (row.get("episodes") or 0) < MIN_EPISODES:
        return None
    return row.get("mean_group_reward")


def state(folder: Path, target: float | None, budget: int) -> str:
    """'new', 'done' (target reached or budget spent) or 'stopped' (resume it)."""
    stats = folder / "run_logs" / "stats.jsonl"
    if not stats.exists():
        return "new"
    rows = stats_rows(folder)
    reached = target is not None and any((score(r) or float("-inf")) >= target for r in rows)
    return "done" if reached or (rows and rows[-1]["step"] >= budget) else "stopped"


def train(
    work: Path, run_id: str, overrides: list[str], target: float | None, budget: int, extend: bool = False
) -> None:
    """Start, or resume, a run; ``extend``: a resume also sets trainer.max_steps to ``budget`` (a PPO run made
    for a smaller comparison budget continues to a larger one: its constant schedules make that the same as
    a run started with the larger max_steps)."""
    folder = work / "results" / run_id
    now = state(folder, target, budget)
    if now == "done":
        return
    # No stop_at_reward: the run's own check reads every summary, however few episodes ended in it (above).
    if now == "new":
        mlx(*overrides, f"run_id={run_id}", "tracking=none", "progress=plain", cwd=work)
    else:
        more = [f"trainer.max_steps={budget}"] if extend else []
        mlx(f"run_id={run_id}", "resume=true", "stop_at_reward=null", *more, "progress=plain", cwd=work)


def summary(folder: Path, target: float | None, up_to: int | None = None) -> dict:
    """A run's result from its summaries (those up to step ``up_to`` only, when given)."""
    rows = [r for r in stats_rows(folder) if up_to is None or r["step"] <= up_to]
    scored = [r for r in rows if score(r) is not None]
    hit = next((r for r in scored if target is not None and score(r) >= target), None)
    best = max(scored, key=score) if scored else None
    return {
        "reached": hit is not None,
        "steps_to_target": hit["step"] if hit else None,
        "seconds_to_target": hit["time_elapsed"] if hit else None,
        "steps_run": rows[-1]["step"] if rows else 0,
        "seconds_run": rows[-1]["time_elapsed"] if rows else 0.0,
        "best_group_reward": score(best) if best else None,
        "best_at_step": best["step"] if best else None,
        "last_group_reward": score(scored[-1]) if scored else None,
        "steps_per_sec": round(rows[-1]["step"] / rows[-1]["time_elapsed"], 1) if rows else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="folder of the runs (kept: runs resume there)")
    parser.add_argument("--envs", nargs="+", choices=sorted(UPSTREAM), default=sorted(UPSTREAM))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--compare-steps", type=int, default=5_000_000, help="the equal smaller budget")
    parser.add_argument("--only", nargs="+", choices=("poca", "ppo"), default=("poca", "ppo"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "poca_groups.json")
    parser.add_argument("--report-only", action="store_true", help="read the runs as they stand; train nothing")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "envs": {}}
    for env in args.envs:
        behavior, target, budget = UPSTREAM[env]
        poca_id, ppo_id = f"{env}-poca-{args.seed}", f"{env}-ppo-{args.seed}"
        if "poca" in args.only and not args.report_only:
            train(args.work, poca_id, ["trainer=poca", f"env={env}", f"seed={args.seed}"], target, budget)
        if "ppo" in args.only and not args.report_only:
            ppo = ["trainer=ppo", f"env={env}", "env.parameters.shared_reward=1", f"seed={args.seed}"]
            train(args.work, ppo_id, [*ppo, f"trainer.max_steps={args.compare_steps}"], None, args.compare_steps, True)
        entry: dict = {"behavior": behavior, "target": target, "upstream_max_steps": budget}
        for name, run_id in (("poca", poca_id), ("ppo", ppo_id)):
            folder = args.work / "results" / run_id
            if (folder / "run_logs" / "stats.jsonl").exists():
                entry[name] = summary(folder, target)
        poca_folder = args.work / "results" / poca_id
        if (poca_folder / "run_logs" / "stats.jsonl").exists():
            entry["poca_at_compare_steps"] = summary(poca_folder, target, args.compare_steps)
        entry["compare_steps"] = args.compare_steps
        report["envs"][env] = entry
    report["load_average"] = os.getloadavg()  # when the report was written; the runs shared the machine
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'env':16} {'run':22} {'steps':>10} {'seconds':>9} {'best':>7} {'to target':>10}")
    for env, entry in report["envs"].items():
        for name in ("poca", "poca_at_compare_steps", "ppo"):
            if name in entry:
                e = entry[name]
                best = "-" if e["best_group_reward"] is None else f"{e['best_group_reward']:.3f}"
                to = e["steps_to_target"] if e["steps_to_target"] is not None else "-"
                print(f"{env:16} {name:22} {e['steps_run']:>10} {e['seconds_run']:>9.0f} {best:>7} {to!s:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
