"""Shared fixtures: a temporary MLflow tracking store and the digits data, loaded once."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_KERAS_HOME = PROJECT_ROOT.parent / "shared" / "data" / "keras"


@pytest.fixture(autouse=True)
def work_in_tmp_path(tmp_path, monkeypatch):
    """Run every test from its own folder, so that relative outputs (report.html, optuna.db)
    never land in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def tracking_store(tmp_path, monkeypatch):
    """A fresh SQLite store with an experiment whose artifacts live under tmp_path."""
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = mlflow.MlflowClient(uri)
    experiment_id = client.create_experiment("tests", artifact_location=str(tmp_path / "artifacts"))
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    yield client, experiment_id
    while mlflow.active_run():
        mlflow.end_run("KILLED")


@pytest.fixture(scope="session")
def digits_splits():
    from depth_experiments.data import load_splits

    return load_splits("digits", validation_split=0.1, seed=42)


def subprocess_env(tracking_uri: str, experiment_id: str | None = None) -> dict:
    """Environment for a child process that uses this interpreter's tools and our store."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MLFLOW_") and key != "PYTEST_CURRENT_TEST"}
    env.update(MLFLOW_TRACKING_URI=tracking_uri, TF_CPP_MIN_LOG_LEVEL="3",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    if experiment_id is not None:
        env["MLFLOW_EXPERIMENT_ID"] = experiment_id
    return env
