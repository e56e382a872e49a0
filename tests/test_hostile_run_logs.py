"""The run's logs mlx reads back, crafted or mutated: run_logs/training_status.json (resume), stats.jsonl
(resume's truncation, mlx.tracking.curves, a sweep's trial history), and an MLflow store that is not one
(mlx.tracking.compare): one clear line, or what is readable kept, never a traceback. Fuzz tests mutate a
valid file (see tests/hostile.py); checkpoints and the other binary files are in test_hostile_files.py.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from mlx.errors import RunError
from mlx.tracking import curves
from mlx.training.checkpoints import TrainingStatus, truncate_stats
from tests.hostile import mutations, one_line

BEHAVIOR = "3DBall"


# ---- run_logs/training_status.json -------------------------------------------------------------------------
def status_with(**changes: Any) -> dict[str, Any]:
    checkpoint = {"steps": 400, "file_path": "results/r/3DBall/3DBall-400.pt", "reward": 1.0, "creation_time": 1.0}
    data: dict[str, Any] = {
        BEHAVIOR: {"checkpoints": [checkpoint], "final_checkpoint": None},
        "difficulty": {"lesson_num": 1, "smoothing": 0.5},
        "metadata": {"mlx_version": "0.1.0", "mlflow_run_id": None, "time_elapsed": 3.0},
    }
    for where, value in changes.items():
        *parents, key = where.split("__")
        node = data
        for p in parents:
            node = node[p] if not p.isdigit() else node[int(p)]
        node[key] = value
    return data


BAD_STATUS: dict[str, bytes] = {
    "not_json": b"{checkpoints: [",
    "binary": bytes(range(256)) * 4,
    "a_list": b"[1, 2]",
    "a_number": b"42",
    "null": b"null",
    "deeply_nested": b"[" * 100_000 + b"]" * 100_000,
    "metadata_a_list": json.dumps(status_with(metadata=[1])).encode(),
    "mlflow_run_id_a_number": json.dumps(status_with(metadata__mlflow_run_id=7)).encode(),
    "time_elapsed_text": json.dumps(status_with(metadata__time_elapsed="long")).encode(),
    "time_elapsed_infinite": json.dumps(status_with(metadata__time_elapsed=float("inf"))).encode(),
    "steps_beyond_float": json.dumps(status_with(**{f"{BEHAVIOR}__checkpoints__0__steps": -(10**400)})).encode(),
    "behavior_a_string": json.dumps(status_with(**{BEHAVIOR: "x"})).encode(),
    "checkpoints_an_object": json.dumps(status_with(**{f"{BEHAVIOR}__checkpoints": {}})).encode(),
    "checkpoint_steps_text": json.dumps(status_with(**{f"{BEHAVIOR}__checkpoints__0__steps": "400"})).encode(),
    "checkpoint_path_a_number": json.dumps(status_with(**{f"{BEHAVIOR}__checkpoints__0__file_path": 3})).encode(),
    "final_checkpoint_a_list": json.dumps(status_with(**{f"{BEHAVIOR}__final_checkpoint": []})).encode(),
    "lesson_text": json.dumps(status_with(difficulty__lesson_num="two")).encode(),
    "smoothing_text": json.dumps(status_with(difficulty__smoothing="high")).encode(),
}


def test_a_valid_status_loads(tmp_path):
    path = tmp_path / "training_status.json"
    path.write_text(json.dumps(status_with()))
    status = TrainingStatus.load(path)
    assert status.metadata["time_elapsed"] == 3.0 and status.behaviors[BEHAVIOR]["checkpoints"][0]["steps"] == 400


@pytest.mark.parametrize("case", list(BAD_STATUS))
def test_a_bad_training_status_is_one_line(tmp_path, case):
    path = tmp_path / "training_status.json"
    path.write_bytes(BAD_STATUS[case])
    with pytest.raises(RunError, match="remove it to resume from the checkpoints alone") as info:
        TrainingStatus.load(path)
    one_line(info.value, path)


def test_fuzzed_training_status_loads_or_is_one_line(tmp_path):
    path = tmp_path / "training_status.json"
    path.write_text(json.dumps(status_with(), indent=2))
    refused = 0
    for data in mutations(path.read_bytes(), 30):
        path.write_bytes(data)
        try:
            TrainingStatus.load(path)
        except RunError as exc:
            one_line(exc, path)
            refused += 1
    assert refused >= 10


# ---- run_logs/stats.jsonl: mlx.tracking.curves and resume's truncation -------------------------------------
def stats_lines(n: int = 4) -> list[str]:
    return [json.dumps({"behavior": BEHAVIOR, "step": 400 * (i + 1), "time_elapsed": 1.0 + i, "mean_reward": 0.5 * i,
                        "std_reward": 0.1, "Environment/Episode Length": 20.0, "Losses/Value Loss": 1.0 / (i + 1)})
            for i in range(n)]  # fmt: skip


GARBAGE_STATS: dict[str, tuple[bytes, int]] = {  # contents, exit code of mlx.tracking.curves
    "binary": (random.Random(3).randbytes(3000), 2),
    "json_but_not_rows": (b'[1, 2]\n42\nnull\n"text"\n', 2),
    "rows_of_wrong_types": (b'{"behavior": 5, "step": 1}\n{"behavior": "B", "step": "400"}\n', 2),
    "behavior_a_path": (b'{"behavior": "../../x", "step": 400, "mean_reward": 1}\n', 2),
    "step_beyond_64_bits": (b'{"behavior": "B", "step": 100000000000000000000000, "mean_reward": 1}\n', 2),
    "values_of_wrong_types": (
        (
            "\n".join(stats_lines(2)) + '\n{"behavior": "3DBall", "step": 1200, '
            '"mean_reward": "high", "Losses/Value Loss": [1]}\n'
        ).encode(),
        0,
    ),  # fmt: skip
    "infinite_values": (b'{"behavior": "B", "step": 400, "mean_reward": Infinity, "std_reward": NaN}\n', 0),
    "garbage_between_rows": ("\n".join([stats_lines()[0], "\x00\xff{{", *stats_lines()[1:]]).encode(), 0),
    "deeply_nested_line": (b"[" * 50_000 + b"\n" + "\n".join(stats_lines(1)).encode(), 0),
}


@pytest.mark.parametrize("case", list(GARBAGE_STATS))
def test_curves_of_a_garbage_stats_file_draw_what_is_readable_or_say_so(tmp_path, capsys, case):
    data, code = GARBAGE_STATS[case]
    stats = tmp_path / "run_logs" / "stats.jsonl"
    stats.parent.mkdir()
    stats.write_bytes(data)
    assert curves.main([str(tmp_path)]) == code
    err = capsys.readouterr().err
    if code:
        assert err.count("\n") == 1 and str(stats) in err and "holds no summary row" in err, err
    else:
        assert not err and list((tmp_path / "run_logs").glob("*_curves.png"))


def test_curves_drawn_by_a_child_process_come_back_as_paths_or_one_line(tmp_path):
    """What a run's finish collects (curves.start_drawing / drawn): the PNGs, nothing for a run without a
    summary, and a failure as one line (an unwritable run_logs/)."""
    stats = tmp_path / "run_logs" / "stats.jsonl"
    stats.parent.mkdir()
    stats.write_text("\n".join(stats_lines()) + "\n")
    assert curves.drawn(curves.start_drawing(tmp_path, [BEHAVIOR])) == [
        tmp_path / "run_logs" / f"{BEHAVIOR}_curves.png"
    ]
    stats.write_bytes(b"")
    assert curves.drawn(curves.start_drawing(tmp_path, [BEHAVIOR])) == []
    stats.write_text("\n".join(stats_lines()) + "\n")
    png = tmp_path / "run_logs" / f"{BEHAVIOR}_curves.png"
    png.unlink()
    png.mkdir()  # where the PNG should go: a folder
    with pytest.raises(RuntimeError) as failed:
        curves.drawn(curves.start_drawing(tmp_path, [BEHAVIOR]))
    assert "\n" not in str(failed.value) and "_curves.png" in str(failed.value)


def test_resume_keeps_the_readable_rows_of_a_garbage_stats_file(tmp_path):
    stats = tmp_path / "stats.jsonl"
    lines = stats_lines()
    junk = ["\x00\xff garbage", '{"step": "800"}', "[3]", '{"behavior": "3DBall", "step": 1' + "0" * 400 + "}"]
    stats.write_bytes("\n".join([lines[0], *junk, *lines[1:]]).encode())
    truncate_stats(stats, 800)
    assert stats.read_text().splitlines() == lines[:2]


def test_fuzzed_stats_files_never_break_the_readers(tmp_path):
    stats = tmp_path / "stats.jsonl"
    good = ("\n".join(stats_lines()) + "\n").encode()
    for data in mutations(good, 40):
        stats.write_bytes(data)
        rows = curves.read_stats(stats)
        assert all(isinstance(r["behavior"], str) and isinstance(r["step"], int) for r in rows)
        truncate_stats(stats, 800)
        assert all(json.loads(line)["step"] <= 800 for line in stats.read_text().splitlines())


def test_compare_with_a_garbage_tracking_store_is_one_line(tmp_path, capsys):
    from mlx.tracking import compare

    store = tmp_path / "mlruns.db"
    store.write_bytes(random.Random(4).randbytes(5000))
    assert compare.main(["--tracking-uri", f"sqlite:///{store}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(store) in err and "cannot be read" in err, err


# ---- the sweep's readers of a trial's files (a resumed or re-run trial) ------------------------------------
@pytest.mark.parametrize("case", ["binary", "a_list", "a_number", "deeply_nested", "checkpoints_an_object"])
def test_sweep_readers_treat_a_bad_status_as_no_checkpoint(tmp_path, case):
    from mlx.sweep.search import checkpoint_step
    from mlx.sweep.tracking import mlflow_run_id_of

    path = tmp_path / "trial" / "run_logs" / "training_status.json"
    path.parent.mkdir(parents=True)
    (tmp_path / "trial" / BEHAVIOR).mkdir()
    (tmp_path / "trial" / BEHAVIOR / "checkpoint.pt").write_bytes(b"")
    path.write_bytes(BAD_STATUS[case])
    assert checkpoint_step(tmp_path, "trial") is None
    assert mlflow_run_id_of(str(tmp_path), "trial") is None
    path.write_text(json.dumps(status_with(metadata__mlflow_run_id="abc")))
    assert checkpoint_step(tmp_path, "trial") == 400 and mlflow_run_id_of(str(tmp_path), "trial") == "abc"


def test_sweep_history_of_a_garbage_stats_file_keeps_the_readable_rows(tmp_path):
    from mlx.sweep.objective import read_history

    stats = tmp_path / "stats.jsonl"
    stats.write_bytes(b"\n".join([stats_lines()[0].encode(), b"\xff\x00[1]", b'{"behavior": [1], "step": 2}',
                                  b'{"behavior": "3DBall", "step": "800"}', stats_lines()[1].encode()]))  # fmt: skip
    assert read_history(stats) == {BEHAVIOR: [(400, 0.0), (800, 0.5)]}


def test_a_dismissed_curves_child_draws_nothing_and_exits(tmp_path):
    """A run that fails or stops after its loop started ends the prestarted child (FinalCurves.dismiss)
    without a drawing: a stopped run draws its curves in-process instead."""
    stats = tmp_path / "run_logs" / "stats.jsonl"
    stats.parent.mkdir()
    stats.write_text("\n".join(stats_lines()) + "\n")
    final = curves.FinalCurves(tmp_path, [BEHAVIOR])
    assert final.child is not None
    final.dismiss()
    assert final.child.returncode == 0
    assert not list((tmp_path / "run_logs").glob("*.png"))
    assert curves.draw_here(tmp_path, [BEHAVIOR]) == [tmp_path / "run_logs" / f"{BEHAVIOR}_curves.png"]
