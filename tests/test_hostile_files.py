"""Every checkpoint, replay buffer, ONNX policy and .demo file mlx reads, crafted or mutated: one clear error
(never a traceback) and never code execution.

Each reader gets a table of hostile files (code-execution payloads that would write a marker file, wrong
types, wrong shapes, truncations) and a seeded fuzz test that mutates a real file mlx wrote (truncated at
random offsets, random bytes flipped, junk inserted): the file either loads or raises that reader's user
error, whose message is one line naming the file. A few cases run end to end through `python -m mlx`.
The run's logs (training_status.json, stats.jsonl) are in test_hostile_run_logs.py.
"""

from __future__ import annotations

import copy
import io
import math
import pickle
import random
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from mlx.config import validate
from mlx.envs import make_env
from mlx.errors import DemoError, RunError
from mlx.formats.demo import load_demonstration, write_demo
from mlx.modes.policy import OnnxPolicy, load_policy
from mlx.trainers.registry import make_trainer
from mlx.trainers.sac.replay import ReplayBuffer
from mlx.training.checkpoints import atomic_torch_save, load_checkpoint, resume_trainer
from tests.conftest import compose_tree, run_mlx
from tests.hostile import ExecCall, SetStateMarker, SystemCall, mutations, one_line
from tests.test_demo import record_episodes

BEHAVIOR = "3DBall"


# ---- fixtures: real files, written by mlx's own writers ----------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny PPO trainer on 3DBall after a few steps, its config, and a checkpoint as save_checkpoint writes
    it (the same dict, through atomic_torch_save)."""
    folder = tmp_path_factory.mktemp("run")
    cfg = validate(compose_tree("env=3dball", f"results_dir={folder}"))
    env = make_env("3dball", 1, 0)
    spec = env.behavior_specs[BEHAVIOR]
    trainer = make_trainer(BEHAVIOR, spec, cfg.trainer_for(BEHAVIOR), cfg.signals_for(BEHAVIOR), torch.device("cpu"))
    env.reset()
    for _ in range(5):
        decision, terminal = env.get_steps(BEHAVIOR)
        env.set_actions(BEHAVIOR, trainer.process(decision, terminal))
        env.step()
    state = {"trainer": trainer.state_dict(), "behavior": BEHAVIOR, "behavior_spec": repr(spec), "time_elapsed": 1.5}
    checkpoint = folder / "checkpoint.pt"
    atomic_torch_save(state, checkpoint)
    onnx = trainer.export(folder / "policy.onnx")
    decision, _ = env.get_steps(BEHAVIOR)
    env.close()
    return {"cfg": cfg, "spec": spec, "trainer": trainer, "state": state, "checkpoint": checkpoint,
            "onnx": onnx, "decision": decision}  # fmt: skip


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    """Where a payload would write if it ran; checked to be absent after the test."""
    path = tmp_path / "CODE_RAN"
    yield path
    assert not path.exists(), "a file's contents ran code"


# ---- checkpoints: code execution ---------------------------------------------------------------------------
def write_payload(kind: str, path: Path, marker: Path) -> None:
    if kind == "os_system":
        torch.save({"trainer": SystemCall(marker)}, path)
    elif kind == "exec":
        torch.save({"trainer": {"module": ExecCall(marker)}}, path)
    elif kind == "setstate":
        torch.save({"trainer": SetStateMarker(marker)}, path)
    elif kind == "legacy_format":  # torch's pre-zip format is read by the same safe unpickler
        torch.save({"trainer": SystemCall(marker)}, path, _use_new_zipfile_serialization=False)
    elif kind == "plain_pickle":
        path.write_bytes(pickle.dumps(SystemCall(marker)))
    elif kind == "numpy_array":  # what a checkpoint holding numpy arrays would be: refused, numpy named
        torch.save({"trainer": {"numpy_rng": np.zeros(3)}}, path)
    else:
        raise AssertionError(kind)


PAYLOADS = ["os_system", "exec", "setstate", "legacy_format", "plain_pickle", "numpy_array"]


@pytest.mark.parametrize("kind", PAYLOADS)
@pytest.mark.parametrize("reader", ["resume", "evaluate"])
def test_a_crafted_checkpoint_is_refused_without_running_it(run, tmp_path, marker, kind, reader):
    path = tmp_path / f"{kind}.pt"
    write_payload(kind, path, marker)
    with pytest.raises(RunError) as info:
        if reader == "resume":
            resume_trainer(run["trainer"], path)
        else:
            load_policy(run["cfg"], BEHAVIOR, run["spec"], path, deterministic=True)
    message = one_line(info.value, path)
    assert "only tensors and plain data are loaded" in message
    if kind == "numpy_array":
        assert "numpy" in message


# ---- checkpoints: files that are not (this run's) checkpoints ----------------------------------------------
def _state_edit(edit: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    def apply(state: dict[str, Any]) -> Any:
        state = copy.deepcopy(state)
        edit(state)
        return state

    return apply


def _wrong_shape(state: dict[str, Any]) -> None:
    module = state["trainer"]["module"]
    key = next(k for k, v in module.items() if v.ndim == 2)
    module[key] = torch.zeros(3, 3)


BAD_STATES: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "a_list": (lambda s: [1, 2, 3], "not an mlx checkpoint"),
    "a_tensor": (lambda s: torch.zeros(4), "not an mlx checkpoint"),
    "no_trainer": (_state_edit(lambda s: s.pop("trainer")), "not an mlx checkpoint"),
    "trainer_is_text": (_state_edit(lambda s: s.update(trainer="weights")), "not an mlx checkpoint"),
    "time_elapsed_nan": (_state_edit(lambda s: s.update(time_elapsed=math.nan)), "time_elapsed"),
    "time_elapsed_text": (_state_edit(lambda s: s.update(time_elapsed="1h")), "time_elapsed"),
    "no_module": (_state_edit(lambda s: s["trainer"].pop("module")), "does not fit"),
    "module_is_a_list": (_state_edit(lambda s: s["trainer"].update(module=[1])), "does not fit"),
    "wrong_shape": (_state_edit(_wrong_shape), "does not fit"),
    "optimizer_empty": (_state_edit(lambda s: s["trainer"].update(optimizer={})), "does not fit"),
    "step_negative": (_state_edit(lambda s: s["trainer"].update(step=-5)), "does not fit"),
    "step_text": (_state_edit(lambda s: s["trainer"].update(step="100")), "does not fit"),
    "torch_rng_a_list": (_state_edit(lambda s: s["trainer"].update(torch_rng=[1, 2])), "does not fit"),
    "torch_rng_floats": (_state_edit(lambda s: s["trainer"].update(torch_rng=torch.zeros(3))), "does not fit"),
    "numpy_rng_garbage": (_state_edit(lambda s: s["trainer"].update(numpy_rng={"state": 1})), "does not fit"),
}


@pytest.mark.parametrize("case", list(BAD_STATES))
def test_a_torch_file_that_is_not_this_runs_checkpoint_is_one_line(run, tmp_path, case):
    edit, expected = BAD_STATES[case]
    path = tmp_path / f"{case}.pt"
    torch.save(edit(run["state"]), path)
    fresh = make_trainer(BEHAVIOR, run["spec"], run["cfg"].trainer_for(BEHAVIOR), run["cfg"].signals_for(BEHAVIOR),
                         torch.device("cpu"))  # fmt: skip
    with pytest.raises(RunError, match=expected) as info:
        resume_trainer(fresh, path)
    one_line(info.value, path)


def _zip_of_other_members(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/notes.txt", "hello")


def _text(path: Path) -> None:
    path.write_text("model weights: none\n")


UNREADABLE: dict[str, Callable[[Path, bytes], None]] = {
    "zero_bytes": lambda p, good: p.write_bytes(b""),
    "random_bytes": lambda p, good: p.write_bytes(random.Random(1).randbytes(4096)),
    "truncated_half": lambda p, good: p.write_bytes(good[: len(good) // 2]),
    "truncated_to_header": lambda p, good: p.write_bytes(good[:100]),
    "zip_with_other_members": lambda p, good: _zip_of_other_members(p),
    "text": lambda p, good: _text(p),
    "a_folder": lambda p, good: p.mkdir(),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_an_unreadable_checkpoint_is_one_line(run, tmp_path, case):
    path = tmp_path / "checkpoint.pt"
    UNREADABLE[case](path, run["checkpoint"].read_bytes())
    with pytest.raises(RunError, match="give a .pt file written by mlx") as info:
        load_checkpoint(path)
    one_line(info.value, path)


H, R = "trainer.hyperparameters", "trainer.reward_signals"
DEMO = "demos/Expert3DBall.demo"
SMALL = ["trainer.network_settings.hidden_units=16", "trainer.network_settings.num_layers=1"]
TRAINER_KINDS = {  # every kind of state a trainer puts in its checkpoint, each after two updates
    "ppo": ["trainer=ppo", f"{H}.buffer_size=64", f"{H}.batch_size=32", "trainer.time_horizon=8"],
    "ppo_lstm_curiosity_rnd": [
        "trainer=ppo", "network=lstm", "trainer.network_settings.memory.sequence_length=8",
        "trainer.network_settings.memory.memory_size=8", "reward_signals=[extrinsic,curiosity,rnd]",
        f"{R}.curiosity.network_settings.hidden_units=16", f"{R}.rnd.network_settings.hidden_units=16",
        f"{H}.buffer_size=64", f"{H}.batch_size=32", f"{H}.num_epoch=1", "trainer.time_horizon=8",
    ],
    "sac": ["trainer=sac", f"{H}.batch_size=16", f"{H}.buffer_init_steps=16", f"{H}.steps_per_update=8"],
    "sac_gail_bc": [
        "trainer=sac", "reward_signals=[extrinsic,gail]", f"{R}.gail.demo_path={DEMO}",
        f"{R}.gail.network_settings.hidden_units=16", f"trainer.behavioral_cloning.demo_path={DEMO}",
        f"{H}.batch_size=16", f"{H}.buffer_init_steps=16", f"{H}.steps_per_update=8",
    ],
}  # fmt: skip


def _same(a: Any, b: Any, where: str = "state") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("kind", list(TRAINER_KINDS))
def test_every_trainers_checkpoint_is_weights_only_and_resumes_exactly(tmp_path, kind):
    """The format itself is safe: whatever a trainer keeps (optimisers, normaliser, reward signals, BC, numpy
    and torch RNG states) is read by torch's weights_only loader, and a fresh trainer resumed from it has
    the very same state."""
    cfg = validate(compose_tree("env=3dball", *SMALL, *TRAINER_KINDS[kind], f"results_dir={tmp_path}"))
    env = make_env("3dball", 4, 0)
    spec = env.behavior_specs[BEHAVIOR]

    def build(seed: int) -> Any:
        return make_trainer(BEHAVIOR, spec, cfg.trainer_for(BEHAVIOR), cfg.signals_for(BEHAVIOR), torch.device("cpu"),
                            seed)  # fmt: skip

    trainer = build(0)
    env.reset()
    updates = 0
    for _ in range(40):
        decision, terminal = env.get_steps(BEHAVIOR)
        env.set_actions(BEHAVIOR, trainer.process(decision, terminal))
        env.step()
        if trainer.ready_to_update():
            trainer.update()
            updates += 1
            if updates == 2:
                break
    env.close()
    assert updates == 2
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save({"trainer": trainer.state_dict(), "time_elapsed": 2.0}, path)
    saved = torch.load(path, weights_only=True)["trainer"]
    fresh = build(7)
    assert resume_trainer(fresh, path) == 2.0
    _same(fresh.state_dict(), saved)


def _rezip(archive: bytes, member_suffix: str, replacement: bytes) -> bytes:
    """The torch zip ``archive`` with one member (e.g. the pickle, data.pkl) replaced."""
    source = zipfile.ZipFile(io.BytesIO(archive))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info in source.infolist():
            data = source.read(info.filename)
            z.writestr(info.filename, replacement if info.filename.endswith(member_suffix) else data)
    return out.getvalue()


@pytest.mark.parametrize("target", ["file", "pickle"])
def test_fuzzed_checkpoints_load_or_are_one_line(run, tmp_path, marker, target):
    """Mutations of the whole file, and of the pickle inside it (what the safe unpickler must survive)."""
    good = run["checkpoint"].read_bytes()
    archive = zipfile.ZipFile(io.BytesIO(good))
    pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    if target == "file":
        variants = mutations(good, 10)
    else:
        variants = (_rezip(good, "data.pkl", m) for m in mutations(pickled, 11))
    path = tmp_path / "fuzz.pt"
    cfg, spec = run["cfg"], run["spec"]
    trainer = make_trainer(BEHAVIOR, spec, cfg.trainer_for(BEHAVIOR), cfg.signals_for(BEHAVIOR), torch.device("cpu"))
    outcomes = {"loaded": 0, "refused": 0}
    for data in variants:
        path.write_bytes(data)
        try:
            resume_trainer(trainer, path)
            load_policy(cfg, BEHAVIOR, spec, path, deterministic=True)
        except RunError as exc:
            one_line(exc, path)
            outcomes["refused"] += 1
        else:
            outcomes["loaded"] += 1
    assert outcomes["refused"] >= 10, outcomes


# ---- SAC's replay_buffer.npz -------------------------------------------------------------------------------
FIELDS: dict[str, tuple[tuple[int, ...], np.dtype]] = {"obs": ((3,), np.float32), "done": ((), bool)}


def saved_buffer(path: Path) -> ReplayBuffer:
    buffer = ReplayBuffer(8, FIELDS)
    rng = np.random.default_rng(0)
    for _ in range(3):
        buffer.add(obs=rng.normal(size=(4, 3)).astype(np.float32), done=rng.random(4) < 0.5)
    buffer.save(path)
    return buffer


def _npz(path: Path, **arrays: Any) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _huge_header(path: Path) -> None:
    """A member whose .npy header announces 10^12 rows: must be refused before anything is allocated."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 3)})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("size.npy", _npy(np.array(4)))
        z.writestr("cursor.npy", _npy(np.array(4)))
        z.writestr("data_obs.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + b"\0" * 64)
        z.writestr("data_done.npy", _npy(np.zeros(4, bool)))


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def _good_arrays(**changes: Any) -> dict[str, Any]:
    arrays = {"size": np.array(4), "cursor": np.array(4), "data_obs": np.zeros((4, 3), np.float32),
              "data_done": np.zeros(4, bool)}  # fmt: skip
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


BAD_BUFFERS: dict[str, Callable[[Path, bytes, Path], None]] = {
    "zero_bytes": lambda p, good, m: p.write_bytes(b""),
    "random_bytes": lambda p, good, m: p.write_bytes(random.Random(2).randbytes(2000)),
    "truncated": lambda p, good, m: p.write_bytes(good[: len(good) // 2]),
    "truncated_end": lambda p, good, m: p.write_bytes(good[:-10]),
    "one_array": lambda p, good, m: p.write_bytes(_npy(np.zeros(3))),
    "object_array_payload": lambda p, good, m: _npz(p, **_good_arrays(data_obs=np.array([SystemCall(m)] * 4))),
    "no_size": lambda p, good, m: _npz(p, **_good_arrays(size=None)),
    "size_text": lambda p, good, m: _npz(p, **_good_arrays(size=np.array("4"))),
    "size_negative": lambda p, good, m: _npz(p, **_good_arrays(size=np.array(-1))),
    "size_fraction": lambda p, good, m: _npz(p, **_good_arrays(size=np.array(2.5))),
    "size_over_capacity": lambda p, good, m: _npz(p, **_good_arrays(size=np.array(100))),
    "size_an_array": lambda p, good, m: _npz(p, **_good_arrays(size=np.array([4, 4]))),
    "rows_fewer_than_size": lambda p, good, m: _npz(p, **_good_arrays(data_obs=np.zeros((2, 3), np.float32))),
    "wrong_row_shape": lambda p, good, m: _npz(p, **_good_arrays(data_obs=np.zeros((4, 5), np.float32))),
    "missing_field": lambda p, good, m: _npz(p, **_good_arrays(data_done=None)),
    "strings": lambda p, good, m: _npz(p, **_good_arrays(data_obs=np.full((4, 3), "x"))),
    "huge_header": lambda p, good, m: _huge_header(p),
}


@pytest.mark.parametrize("case", list(BAD_BUFFERS))
def test_a_bad_replay_buffer_is_one_line(tmp_path, marker, case):
    good = tmp_path / "good.npz"
    saved_buffer(good)
    path = tmp_path / "replay_buffer.npz"
    BAD_BUFFERS[case](path, good.read_bytes(), marker)
    buffer = ReplayBuffer(8, FIELDS)
    with pytest.raises(RunError, match="delete it to resume with an empty replay buffer") as info:
        buffer.load(path)
    one_line(info.value, path)
    assert len(buffer) == 0  # nothing half-loaded


def test_fuzzed_replay_buffers_load_or_are_one_line(tmp_path):
    good = tmp_path / "good.npz"
    saved = saved_buffer(good)
    path = tmp_path / "replay_buffer.npz"
    refused = 0
    for data in mutations(good.read_bytes(), 20):
        path.write_bytes(data)
        buffer = ReplayBuffer(8, FIELDS)
        try:
            buffer.load(path)
        except RunError as exc:
            one_line(exc, path)
            refused += 1
        else:
            assert len(buffer) == len(saved)
    assert refused >= 10


# ---- .demo files -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    name, spec, episodes = record_episodes("basic", 1, 2)
    path = tmp_path_factory.mktemp("demo") / "basic.demo"
    write_demo(path, spec, name, episodes)
    return path


@pytest.mark.parametrize("case", ["pickle_payload", "a_checkpoint", "zero_bytes", "random_bytes"])
def test_a_file_that_is_not_a_demo_is_one_line(run, tmp_path, marker, case):
    path = tmp_path / "x.demo"
    if case == "pickle_payload":
        path.write_bytes(pickle.dumps(SystemCall(marker)))
    elif case == "a_checkpoint":
        path.write_bytes(run["checkpoint"].read_bytes())
    elif case == "zero_bytes":
        path.write_bytes(b"")
    else:
        path.write_bytes(random.Random(5).randbytes(3000))
    with pytest.raises(DemoError) as info:
        load_demonstration(path)
    one_line(info.value, path)


def test_fuzzed_demos_load_or_are_one_line(demo, tmp_path):
    path = tmp_path / "fuzz.demo"
    refused = 0
    for data in mutations(demo.read_bytes(), 30):
        path.write_bytes(data)
        try:
            load_demonstration(path)
        except DemoError as exc:
            one_line(exc, path)
            refused += 1
    assert refused >= 10


# ---- ONNX policies (mode=evaluate / watch / record with evaluate.policy=<file.onnx>) ------------------------
@pytest.mark.parametrize("case", ["zero_bytes", "random_bytes", "truncated", "a_checkpoint"])
def test_a_corrupt_onnx_policy_is_one_line(run, tmp_path, case):
    path = tmp_path / "policy.onnx"
    good = run["onnx"].read_bytes()
    contents = {"zero_bytes": b"", "random_bytes": random.Random(6).randbytes(4000),
                "truncated": good[: len(good) // 3], "a_checkpoint": run["checkpoint"].read_bytes()}  # fmt: skip
    path.write_bytes(contents[case])
    with pytest.raises(RunError) as info:
        load_policy(run["cfg"], BEHAVIOR, run["spec"], path, deterministic=True)
    one_line(info.value, path)


def test_fuzzed_onnx_policies_act_or_are_one_line(run, tmp_path, capfd):
    path = tmp_path / "policy.onnx"
    refused = 0
    for data in mutations(run["onnx"].read_bytes(), 40):
        path.write_bytes(data)
        try:
            policy = OnnxPolicy(path, run["spec"], deterministic=True)
            actions = policy.act(run["decision"])
        except RunError as exc:
            one_line(exc, path)
            refused += 1
        else:
            assert actions.continuous.shape == (len(run["decision"]), 2)
    assert refused >= 10
    printed = capfd.readouterr()
    assert not printed.out and not printed.err, printed  # onnxruntime's retry banner is kept off the console


# ---- end to end: exit 2, one line on stderr, nothing ran ---------------------------------------------------
E2E = {  # how a checkpoint reaches mlx from the command line
    "resume": ["run_id=victim", "resume=true"],
    "initialize_from": ["run_id=other", "initialize_from=victim"],
    "evaluate": ["run_id=victim", "mode=evaluate", "evaluate.policy=results/victim/3DBall/checkpoint.pt"],
}


@pytest.mark.parametrize("how", list(E2E))
def test_a_crafted_checkpoint_end_to_end_is_exit_2_and_one_line(tmp_path, marker, how):
    """A run folder whose checkpoint.pt was replaced by a payload, met through resume, initialize_from and
    evaluate.policy: exit 2, one line on stderr, nothing ran."""
    base = ["env=3dball", "env.num_areas=1", "tracking=none", "seed=0"]
    root = tmp_path / "results" / "victim"
    (root / BEHAVIOR).mkdir(parents=True)
    resolved = validate(compose_tree(*base, "run_id=victim")).resolved  # what the run wrote when it started
    (root / "configuration.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    torch.save({"trainer": SystemCall(marker)}, root / BEHAVIOR / "checkpoint.pt")
    proc = run_mlx(*base, *E2E[how], cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlx: error: "), proc.stderr
    assert "only tensors and plain data are loaded" in lines[0], lines[0]


def test_no_unsafe_loader_in_the_sources():
    """Every loader of mlx is safe: no weights_only=False, no pickle, no allow_pickle=True, no yaml.load."""
    src = Path(__file__).resolve().parents[1] / "src" / "mlx"
    unsafe = ("weights_only=False", "allow_pickle=True", "yaml.load(", "pickle.load", "yaml.unsafe_load")
    found = [
        f"{path.relative_to(src)}: {needle}"
        for path in src.rglob("*.py")
        for needle in unsafe
        if needle in path.read_text()
    ]
    assert not found, found
