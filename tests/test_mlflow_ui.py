"""Acceptance: a run opened as MLflow users open it. A tiny real run in a fresh folder, then plain `mlflow ui`
(its default store and host; only a free port chosen) in that folder, and the REST calls the UI makes find the
run: hyperparameters as params, ML-Agents metric names, the ONNX policy as a logged model, the curves."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import TINY_3DBALL, run_mlx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(base: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def ui(workdir: Path):
    """`mlflow ui` with its defaults in workdir (a free port), killed at the end; yields its base URL."""
    port = free_port()
    log = open(workdir / "ui.log", "w")  # noqa: SIM115 - open for the server's whole life
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--port", str(port)],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (workdir / "ui.log").read_text()[-2000:]
                    raise AssertionError("mlflow ui did not start: " + log_text) from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def trained(workdir: Path) -> subprocess.CompletedProcess[str]:
    proc = run_mlx(
        *TINY_3DBALL,
        "trainer.max_steps=800",
        "trainer.summary_freq=400",
        "trainer.network_settings.hidden_units=8",
        "tracking.tensorboard=false",
        "run_id=ui",
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_plain_mlflow_ui_shows_the_run_as_a_training_run(workdir, trained, ui):
    assert (workdir / "mlflow.db").exists() and not (workdir / "mlruns.db").exists()
    experiments = call(ui, "/api/2.0/mlflow/experiments/search", {"max_results": 100})["experiments"]
    experiment = next(e for e in experiments if e["name"] == "3dball")
    tags = {t["key"]: t["value"] for t in experiment.get("tags", [])}
    assert tags["mlflow.experimentKind"] == "custom_model_development"  # the model-training view

    runs = call(ui, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    assert len(runs) == 1
    run = runs[0]
    run_id = run["info"]["run_id"]
    # the run's start line says where it is
    line = next(x for x in trained.stdout.splitlines() if x.startswith("[INFO] MLflow run "))
    assert (
        run_id in line and "mlflow ui" in line and f"#/experiments/{experiment['experiment_id']}/runs/{run_id}" in line
    )

    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["trainer.hyperparameters.buffer_size"] == "400"
    assert params["trainer.network_settings.hidden_units"] == "8"
    assert params["env.num_areas"] == "4" and params["seed"] == "3" and params["trainer.trainer_type"] == "ppo"
    assert not [k for k in params if k.startswith(("watch.", "record.", "evaluate.", "engine_settings.", "tracking."))]
    assert not {"force", "progress", "mode", "results_dir", "debug", "env.bind"} & set(params)
    assert len(params) < 40

    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.user"] and tags["mlflow.source.name"]
    assert tags["mlx.command"].startswith(("python -m mlx", "__main__.py")) and "run_id=ui" in tags["mlx.command"]
    assert tags["mlx.version"]

    metrics = {m["key"] for m in run["data"]["metrics"]}
    assert {"Environment/Cumulative Reward", "Environment/Episode Length", "Losses/Policy Loss"} <= metrics

    files = call(ui, f"/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=run_logs")["files"]
    assert {"run_logs/3DBall_curves.png", "run_logs/mlx.log", "run_logs/stats.jsonl"} <= {f["path"] for f in files}

    models = call(ui, "/api/2.0/mlflow/logged-models/search", {"experiment_ids": [experiment["experiment_id"]]})
    model = next(m for m in models["models"] if m["info"]["source_run_id"] == run_id)
    assert model["info"]["name"] == "3DBall" and model["info"]["status"] == "LOGGED_MODEL_READY"
    listing = call(ui, f"/api/2.0/mlflow/logged-models/{model['info']['model_id']}/artifacts/directories")
    names = {f["path"] for f in listing["files"]}
    assert "MLmodel" in names and "model.onnx" in names
    url = (
        f"{ui}/ajax-api/2.0/mlflow/logged-models/{model['info']['model_id']}/artifacts/files?artifact_file_path=MLmodel"
    )
    mlmodel = urllib.request.urlopen(url, timeout=10).read().decode()
    assert "onnx:" in mlmodel and "obs_0" in mlmodel  # the ONNX flavour, with a signature from the specs


def test_an_evaluation_is_attached_to_the_run_it_evaluates(workdir, trained, ui):
    proc = run_mlx(*TINY_3DBALL, "run_id=ui", "mode=evaluate", "evaluate.episodes=3", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    experiments = call(ui, "/api/2.0/mlflow/experiments/search", {"max_results": 100})["experiments"]
    experiment = next(e for e in experiments if e["name"] == "3dball")
    runs = call(ui, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    assert len(runs) == 1  # no second run: the evaluation goes on the training's
    run_id = runs[0]["info"]["run_id"]
    assert f"[INFO] Attached to MLflow run {run_id}: evaluation/evaluation.json" in proc.stdout
    files = call(ui, f"/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=evaluation")["files"]
    assert [f["path"] for f in files] == ["evaluation/evaluation.json"]
    metrics = {m["key"] for m in runs[0]["data"]["metrics"]}
    assert "Evaluation/3DBall/mean_return" in metrics
