"""Self-play on the soccer scenes: SoccerTwos (POCA + self-play) and StrikersVsGoalie (two behaviours).

    python benchmarks/self_play_soccer.py --work DIR [--envs soccertwos strikersvsgoalie] [--seed 1]
                                          [--steps 5000000] [--early 1000000] [--games 200] [--report-only]
                                          [--checkpoint-interval 500000]

Each env trains once, with the command a user types (upstream's tuned settings, self_play included; MLflow
off), to ``--steps`` agent steps of each behaviour; checkpoints are kept (``keep_checkpoints``) so that the
early snapshot survives. The run resumes (``resume=true``) where it stopped when its folder in ``--work``
exists: run the script again in a later session. Then ``mode=evaluate`` plays matches (deterministic
actions, ``--games`` games):

* SoccerTwos: the final policy (blue, team 0) against a random team, and against the policy's own
  checkpoint nearest ``--early`` steps (the issue's bars: at 5M steps >= 90% and >= 65% of decided games);
* StrikersVsGoalie: each side's final policy against the other side's checkpoint nearest ``--early``
  steps: the strikers' win rate, and the goalie's share of games not lost (a timeout is a goal kept out).

Writes benchmarks/results/self_play.json (steps, seconds, ELO, win rates with 95% intervals, the machine's
load average) and benchmarks/results/self_play_<env>_elo.png (the ELO curve of each behaviour).
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
ENVS = {"soccertwos": ("SoccerTwos",), "strikersvsgoalie": ("Striker", "Goalie")}
TEAM = {"SoccerTwos": 0, "Striker": 0, "Goalie": 1}
KEEP = 100  # checkpoints kept (every --checkpoint-interval steps): the early one must survive to the end


def trained_to(folder: Path, behaviors: tuple[str, ...]) -> int:
    """The fewest steps any behaviour has reached (0 before the first summary)."""
    stats = folder / "run_logs" / "stats.jsonl"
    if not stats.exists():
        return 0
    rows = stats_rows(folder)
    return min((max((r["step"] for r in rows if r["behavior"] == b), default=0) for b in behaviors), default=0)


def train(work: Path, env: str, run_id: str, seed: int, steps: int, interval: int) -> None:
    folder = work / "results" / run_id
    if trained_to(folder, ENVS[env]) >= steps:
        return
    if not (folder / "configuration.yaml").exists():
        mlx("trainer=poca", f"env={env}", f"seed={seed}", f"run_id={run_id}", f"trainer.keep_checkpoints={KEEP}",
            f"trainer.max_steps={steps}", f"trainer.checkpoint_interval={interval}", "tracking=none",
            "progress=plain", cwd=work)  # fmt: skip
    else:
        mlx(f"run_id={run_id}", "resume=true", f"trainer.max_steps={steps}", "progress=plain", cwd=work)


def checkpoint_near(folder: Path, behavior: str, step: int) -> Path:
    files = sorted((folder / behavior).glob(f"{behavior}-*.pt"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    if not files:
        raise SystemExit(f"no checkpoint of {behavior} in {folder}")
    return min(files, key=lambda p: abs(int(p.stem.rsplit("-", 1)[1]) - step))


def match(work: Path, run_id: str, team: int, opponent: str, games: int) -> dict:
    mlx("mode=evaluate", f"run_id={run_id}", f"evaluate.team={team}", f"evaluate.opponent={opponent}",
        f"evaluate.episodes={games}", "tracking=none", cwd=work)  # fmt: skip
    report = json.loads((work / "results" / run_id / "run_logs" / "evaluation.json").read_text())["match"]
    return {k: report[k] for k in ("games", "wins", "draws", "losses", "timeouts", "win_rate_decided",
                                   "win_rate_decided_ci95", "win_rate_all", "not_lost_all", "opponent")}  # fmt: skip


def plot_elo(folder: Path, behaviors: tuple[str, ...], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = stats_rows(folder)
    fig, ax = plt.subplots(figsize=(7, 4))
    for b in behaviors:
        pts = [(r["step"], r["Self-play/ELO"]) for r in rows if r["behavior"] == b and r.get("Self-play/ELO")]
        if pts:
            ax.plot(*zip(*pts, strict=True), label=b)
    ax.set_xlabel("agent steps of the behaviour")
    ax.set_ylabel("Self-play/ELO")
    ax.set_title(folder.name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="folder of the runs (kept: runs resume there)")
    parser.add_argument("--envs", nargs="+", choices=sorted(ENVS), default=sorted(ENVS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5_000_000)
    parser.add_argument("--early", type=int, default=1_000_000)
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--checkpoint-interval", type=int, default=500_000, help="500k upstream; less: short runs")
    parser.add_argument("--report-only", action="store_true", help="evaluate the runs as they stand; train nothing")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "self_play.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    report: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    report.update(machine=platform.processor() or platform.machine(), cpus=os.cpu_count())
    report.setdefault("envs", {})
    for env in args.envs:
        run_id = f"{env}-poca-{args.seed}"
        folder = args.work / "results" / run_id
        if not args.report_only:
            train(args.work, env, run_id, args.seed, args.steps, args.checkpoint_interval)
        rows = stats_rows(folder)
        behaviors = ENVS[env]
        entry: dict = {"run_id": run_id, "steps_wanted": args.steps, "early": args.early, "behaviors": {}}
        for b in behaviors:
            mine = [r for r in rows if r["behavior"] == b]
            elo = [r["Self-play/ELO"] for r in mine if r.get("Self-play/ELO") is not None]
            entry["behaviors"][b] = {
                "steps": mine[-1]["step"] if mine else 0,
                "seconds": mine[-1]["time_elapsed"] if mine else 0.0,
                "elo_first": elo[0] if elo else None,
                "elo_last": elo[-1] if elo else None,
            }
        if env == "soccertwos":
            early = checkpoint_near(folder, "SoccerTwos", args.early)
            entry["matches"] = {
                "final_vs_random": match(args.work, run_id, 0, "random", args.games),
                f"final_vs_{early.stem}": match(args.work, run_id, 0, str(early.resolve()), args.games),
            }
        else:
            entry["matches"] = {}
            for b, other in (("Striker", "Goalie"), ("Goalie", "Striker")):
                early = checkpoint_near(folder, other, args.early)
                entry["matches"][f"{b}_final_vs_{early.stem}"] = match(
                    args.work, run_id, TEAM[b], str(early.resolve()), args.games
                )
        plot_elo(folder, behaviors, HERE / "results" / f"self_play_{env}_elo.png")
        entry["load_average"] = os.getloadavg()  # when the report was written; the runs shared the machine
        report["envs"][env] = entry
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        for name, m in entry["matches"].items():
            low, high = m["win_rate_decided_ci95"]
            print(f"{env:16} {name:40} {m['wins']:>4}-{m['draws']}-{m['losses']} (+{m['timeouts']} timeouts) "
                  f"{m['win_rate_decided']:.3f} [{low:.3f}, {high:.3f}]")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
