"""Resume and the modes act on the run as it was saved (mlx.config.resume): the command line is a delta
on top, changes are printed and kept, a change the checkpoints cannot follow is refused in one line, every
hint mlx prints works as printed, and a refused start changes no file."""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from mlx.config.resume import (
    ABSENT,
    Change,
    apply,
    changes,
    check_resumable,
    diff,
    merged_overrides,
    rebase,
    run_folder,
)
from mlx.errors import ConfigError
from tests.conftest import compose_tree, run_mlx, start_mlx

QUICK = ("tracking=none", "progress=plain")


def _compose(overrides):
    tree = compose_tree(*overrides)
    tree.pop("sweep", None)
    return tree


def _saved(*overrides: str) -> dict:
    return _compose(["run_id=x", *overrides])


# ---- the delta, in-process ------------------------------------------------------------------------------
LR = "trainer.hyperparameters.learning_rate"
REBASE_CASES = [
    # (original overrides, new overrides, key, expected value in the result)
    (["env=gym", "env.id=CartPole-v1"], ["run_id=x", "resume=true"], "env.name", "gym"),
    (["env=gym", "env.id=CartPole-v1"], ["run_id=x", "resume=true"], "env.id", "CartPole-v1"),
    (["trainer=sac"], ["run_id=x", "resume=true"], "trainer.trainer_type", "sac"),
    ([f"{LR}=1e-5"], ["run_id=x", "resume=true"], LR, 1e-5),
    (["stop_at_reward=90"], ["run_id=x", "resume=true"], "stop_at_reward", 90),
    (["env=pushblock"], ["env=pushblock", "run_id=x", "resume=true"], "env.name", "pushblock"),
    ([], ["trainer.hyperparameters.learning_rate=1e-4", "resume=true"], "trainer.hyperparameters.learning_rate", 1e-4),
    ([], ["trainer.max_steps=123456"], "trainer.max_steps", 123456),
    ([], ["tracking=none"], "tracking.backend", "none"),
    ([], ["env.parameters.mass=2.0"], "env.parameters.mass", 2.0),
    ([f"{LR}=1e-5"], ["trainer.max_steps=1000"], LR, 1e-5),
]


@pytest.mark.parametrize(("original", "new", "key", "value"), REBASE_CASES)
def test_rebase_applies_only_what_the_command_line_changes(original, new, key, value):
    saved = _saved(*original)
    tree = rebase(saved, ["run_id=x", *original], new, _compose)
    node = tree
    for part in key.split("."):
        node = node[part]
    assert node == value


def test_rebase_keeps_settings_conf_no_longer_gives():
    """The saved tree is the truth: a value the defaults would give differently today stays as saved."""
    saved = _saved()
    saved["trainer"]["hyperparameters"]["batch_size"] = 77  # as if conf/ changed since the run started
    tree = rebase(saved, ["run_id=x"], ["run_id=x", "resume=true", "trainer.max_steps=10"], _compose)
    assert tree["trainer"]["hyperparameters"]["batch_size"] == 77
    assert tree["trainer"]["max_steps"] == 10


def test_group_change_removes_keys_the_new_option_lacks():
    tree = rebase(_saved(), ["run_id=x"], ["trainer=sac"], _compose)
    assert "beta_schedule" not in tree["trainer"]["hyperparameters"]
    assert tree["trainer"]["hyperparameters"]["tau"] == pytest.approx(0.005)


def test_a_repeated_override_replaces_the_original():
    assert merged_overrides(["env=gym", "seed=1", "+a.b=2"], ["seed=3", "a.b=4"]) == ["env=gym", "seed=3", "a.b=4"]


def test_diff_and_apply_tell_absent_from_null():
    before = {"a": {"b": None, "c": 1}, "d": {}}
    after = {"a": {"c": 1}, "d": {"e": 2}}
    found = diff(before, after)
    assert Change("a.b", None, ABSENT) in found
    assert Change("d.e", ABSENT, 2) in found
    assert apply(before, found) == after


def test_operational_keys_are_not_changes():
    saved = _saved()
    now = _compose(["run_id=x", "resume=true", "mode=evaluate", "evaluate.episodes=3", "progress=plain"])
    assert changes(saved, now) == []


REFUSED = [
    ("trainer=sac", "trainer.trainer_type"),
    ("env=gridworld", "env.name"),
    ("trainer.network_settings.hidden_units=64", "trainer.network_settings.hidden_units"),
    ("network=lstm", "trainer.network_settings.memory"),
    ("reward_signals=[extrinsic,curiosity]", "trainer.reward_signals.curiosity"),
]


@pytest.mark.parametrize(("override", "key"), REFUSED)
def test_a_change_the_checkpoints_cannot_follow_is_refused(override, key):
    saved = _saved()
    tree = rebase(saved, ["run_id=x"], ["run_id=x", "resume=true", override], _compose)
    with pytest.raises(ConfigError, match=re.escape(key)) as err:
        check_resumable(changes(saved, tree), "x")
    assert "\n" not in str(err.value)


ALLOWED = [
    "trainer.hyperparameters.learning_rate=1e-4",
    "trainer.max_steps=2000000",
    "trainer.reward_signals.extrinsic.strength=0.5",
    "env.num_areas=4",
    "stop_at_reward=50",
    "trainer.keep_checkpoints=2",
]


@pytest.mark.parametrize("override", ALLOWED)
def test_a_change_that_can_apply_is_allowed(override):
    saved = _saved()
    tree = rebase(saved, ["run_id=x"], ["run_id=x", "resume=true", override], _compose)
    found = changes(saved, tree)
    assert len(found) == 1 and found[0].key == override.split("=")[0]
    check_resumable(found, "x")


@pytest.mark.parametrize("run_id", ["../victim", "a/b", "..", ".", ""])
def test_no_folder_outside_results_is_named(run_id):
    assert run_folder({"run_id": run_id, "results_dir": "results"}) is None


# ---- end to end: hints work as printed, refused starts change nothing ------------------------------------
def _snapshot(root: Path) -> dict[str, str]:
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _interrupt_after_first_summary(cwd: Path, *overrides: str) -> str:
    """Start a run, Ctrl-C it once its first summary is printed; its output."""
    proc = start_mlx(*overrides, cwd=cwd, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = []
    for line in proc.stdout:
        out.append(line)
        if "Step:" in line:
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(out) + rest
    return "".join(out) + rest


def test_the_interrupt_hint_works_as_printed_on_a_gym_run_and_evaluate_needs_only_the_run_id(workdir):
    gym = ("env=gym", "env.id=CartPole-v1")
    out = _interrupt_after_first_summary(
        workdir, *gym, "run_id=cp", "trainer.max_steps=4000", "trainer.summary_freq=500", *QUICK
    )
    hint = re.search(r"continue with (run_id=\S+ resume=true)", out)
    assert hint, out
    proc = run_mlx(*hint.group(1).split(), cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"CartPole-v1\. Resuming from step \d+", proc.stdout), proc.stdout
    assert "CartPole-v1-4000.pt" in proc.stdout
    proc = run_mlx("run_id=cp", "mode=evaluate", "evaluate.episodes=2", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "CartPole-v1. Evaluated 2 episodes" in proc.stdout


def test_resume_keeps_the_run_settings_records_changes_and_refuses_what_cannot_apply(workdir):
    first = run_mlx(
        "trainer=sac",
        "run_id=s",
        "trainer.max_steps=600",
        "trainer.hyperparameters.learning_rate=1e-5",
        "trainer.hyperparameters.buffer_init_steps=0",
        "trainer.summary_freq=300",
        *QUICK,
        cwd=workdir,
    )
    assert first.returncode == 0, first.stderr
    root = workdir / "results/s"
    before = _snapshot(root)
    # A refused start, a refused resume and a run_id outside results/ change no file.
    unusable = ("tracking=mlflow", "tracking.uri=sqlite:///no/such/folder/mlruns.db")
    for overrides in (
        ["run_id=s"],
        ["run_id=s", "resume=true", "trainer=ppo"],
        ["run_id=s", "resume=true", *unusable],
        ["run_id=../victim"],
        ["run_id=fresh", *unusable],
    ):
        proc = run_mlx(*overrides, cwd=workdir)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _snapshot(root) == before
    assert not (workdir / "victim").exists()
    assert not (workdir / "results/fresh").exists()
    # README's resume example, on a SAC run: the env group repeated, the rest from the run.
    proc = run_mlx("env=3dball", "run_id=s", "resume=true", "trainer.max_steps=900", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "Resume changes trainer.max_steps: 600 -> 900" in proc.stdout
    saved = yaml.safe_load((root / "configuration.yaml").read_text())
    assert saved["trainer"]["trainer_type"] == "sac"
    assert saved["trainer"]["hyperparameters"]["learning_rate"] == pytest.approx(1e-5)
    assert yaml.safe_load((root / "run_logs/configuration-1.yaml").read_text())["trainer"]["max_steps"] == 600
    row = yaml.safe_load((root / "run_logs/resumes.jsonl").read_text().splitlines()[0])
    assert row["changes"] == [{"key": "trainer.max_steps", "before": 600, "after": 900}]
    assert _snapshot(root)[".hydra/overrides.yaml"] == before[".hydra/overrides.yaml"]
    assert "trainer=sac" in (root / ".hydra/overrides.yaml").read_text()  # the first start's record is kept


def test_a_run_that_reached_stop_at_reward_stops_again_when_resumed(workdir):
    common = ("trainer.summary_freq=500", "trainer.max_steps=100000", *QUICK)
    proc = run_mlx("run_id=r", "stop_at_reward=-100", *common, cwd=workdir)
    assert proc.returncode == 0 and "Reached stop_at_reward=-100" in proc.stdout, proc.stderr
    proc = run_mlx("run_id=r", "resume=true", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "Reached stop_at_reward=-100.0 at step 1" in proc.stdout, proc.stdout


def test_an_experiment_run_resumes_by_its_run_id_alone(workdir):
    folder = workdir / "mine/experiment"
    folder.mkdir(parents=True)
    (folder / "tiny.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /env: basic\n  - _self_\ntrainer:\n  max_steps: 600\n"
        "  summary_freq: 300\n"
    )
    search = f"hydra.searchpath=[file://{folder.parent}]"
    proc = run_mlx("experiment=tiny", search, "run_id=e", *QUICK, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    proc = run_mlx("run_id=e", "resume=true", "trainer.max_steps=900", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "Basic. Resuming from step" in proc.stdout


def test_refusals_leave_the_run_id_free_and_their_hints_work_as_printed(workdir):
    short = ("trainer.max_steps=300", "trainer.summary_freq=300", *QUICK)
    proc = run_mlx("run_id=i", "initialize_from=nosuchrun", *QUICK, cwd=workdir)
    assert proc.returncode == 2 and "initialize_from=nosuchrun" in proc.stderr, proc.stderr
    assert not (workdir / "results/i/configuration.yaml").exists()
    proc = run_mlx("run_id=i", "resume=true", *short, cwd=workdir)
    assert proc.returncode == 2 and "start it without resume=true" in proc.stderr, proc.stderr
    proc = run_mlx("run_id=i", *short, cwd=workdir)  # ... as that hint says
    assert proc.returncode == 0, proc.stderr
    proc = run_mlx("run_id=i", *short, cwd=workdir)
    assert proc.returncode == 2, proc.stderr
    for hint in re.findall(r"(resume=true|force=true) to", proc.stderr):  # "pass resume=true to continue it, ..."
        again = run_mlx("run_id=i", *short, hint, cwd=workdir)  # the same command, with what it says to pass
        assert again.returncode == 0, (hint, again.stderr)


# ---- hostile records ------------------------------------------------------------------------------------
BAD_CONFIGURATIONS = {
    "binary": b"\x00\xff\xfe\x00garbage",
    "not yaml": b"trainer: [unclosed",
    "a list": b"- 1\n- 2\n",
    "a number": b"42\n",
    "empty": b"",
    "deep nesting": b"[" * 5000 + b"]" * 5000,
    "non-string keys": b"1: a\n2: b\n",
    "python object": b"!!python/object/apply:os.system ['touch pwned']\n",
    "too big": b"a: " + b"x" * (11 * 2**20) + b"\n",
}


@pytest.mark.parametrize("content", BAD_CONFIGURATIONS.values(), ids=BAD_CONFIGURATIONS)
def test_a_corrupt_saved_configuration_is_one_clear_error(tmp_path, content):
    from mlx.config.resume import load_original_overrides, load_saved
    from mlx.errors import RunError

    (tmp_path / "configuration.yaml").write_bytes(content)
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra/overrides.yaml").write_bytes(content)
    with pytest.raises(RunError, match="configuration.yaml") as err:
        load_saved(tmp_path)
    assert "\n" not in str(err.value)
    assert load_original_overrides(tmp_path) == []  # an unreadable record: the delta comes from conf/
    assert not (tmp_path / "pwned").exists()


def test_a_corrupt_saved_configuration_refuses_resume_and_evaluate_in_one_line(workdir):
    root = workdir / "results/bad"
    root.mkdir(parents=True)
    (root / "configuration.yaml").write_bytes(b"\x00\xff binary")
    for mode in ("resume=true", "mode=evaluate"):
        proc = run_mlx("run_id=bad", mode, cwd=workdir)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "configuration.yaml" in proc.stderr, proc.stderr
