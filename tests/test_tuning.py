"""Learning-rate tuning on digits: trial runs, top-up reruns, pruning, test-split isolation,
parallel trials, the storage default and optuna-dashboard, and the tuning parameters."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import keras
import mlflow
import numpy as np
import optuna
import pytest

from depth_experiments import tuning
from depth_experiments.config import ConfigError, SweepConfig
from depth_experiments.sweep import run_sweep
from depth_experiments.tracking import child_runs
from tests.conftest import PROJECT_ROOT, subprocess_env

FAST = dict(dataset="digits", epochs=2, diagnostics_every=0)
TUNED = dict(FAST, tune=True)


def depth_run(client, experiment_id, depth, tuned=True):
    """The newest depth run at `depth` (tuned or not)."""
    runs = client.search_runs([experiment_id], "tags.`depth_experiments.kind` = 'depth' and "
                              f"params.depth = '{depth}' and params.tune = '{str(tuned).lower()}'",
                              order_by=["attributes.start_time DESC"])
    return runs[0]


def trial_runs(client, experiment_id, parent_id):
    runs = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert all(run.data.tags["depth_experiments.kind"] == "trial" for run in runs)
    return sorted(runs, key=lambda run: int(run.data.params["trial_number"]))


def learning_rates(runs):
    return [float(run.data.params["learning_rate"]) for run in runs]


def dashboard_get(storage: str, path: str) -> dict:
    """Ask optuna-dashboard's WSGI app, built on the storage as logged, without serving."""
    from optuna_dashboard import wsgi

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    statuses = []
    body = b"".join(wsgi(storage)(environ, lambda status, headers, exc_info=None:
                                  statuses.append(status)))
    assert statuses == ["200 OK"], statuses
    return json.loads(body)


def test_trials_nest_under_depth_runs_and_the_parent_compares_with_untuned(
        tracking_store, digits_splits, tmp_path):
    client, experiment_id = tracking_store
    untuned = run_sweep(SweepConfig(depths="1", **FAST), digits_splits)
    result = run_sweep(SweepConfig(depths="1,3", n_trials=2, **TUNED), digits_splits)
    assert [run.data.params["depth"] for run in child_runs(result.parent_run_id, experiment_id)] == ["1", "3"]
    for depth in (1, 3):
        run = depth_run(client, experiment_id, depth)
        trials = trial_runs(client, experiment_id, run.info.run_id)
        assert len(trials) == 2 and len(set(learning_rates(trials))) == 2
        for trial in trials:
            assert trial.info.status == "FINISHED"
            assert trial.data.tags["depth_experiments.trial_state"] == "complete"
            history = client.get_metric_history(trial.info.run_id, "val_accuracy")
            assert [point.step for point in history] == [0, 1]
        best = max(trials, key=lambda trial: trial.data.metrics["objective_val_accuracy"])
        assert run.data.params["best_learning_rate"] == best.data.params["learning_rate"]
        assert run.data.metrics["n_trials_complete"] == 2 and run.data.metrics["n_trials_pruned"] == 0
        # The depth run retrains with the best rate; same seed, so the same validation curve.
        assert run.data.metrics["val_accuracy"] == best.data.metrics["val_accuracy"]
        assert 0.0 <= run.data.metrics["test_accuracy"] <= 1.0
        assert run.data.params["optuna_storage"] == f"sqlite:///{tmp_path}/optuna.db"
    summary = json.loads(Path(client.download_artifacts(
        result.parent_run_id, "summary/tuning.json", str(tmp_path))).read_text())["rows"]
    assert [row["depth"] for row in summary] == [1, 3]
    assert summary[0]["untuned_test_accuracy"] == untuned.rows[0]["test_accuracy"]
    assert summary[0]["untuned_run_id"] == untuned.rows[0]["run_id"]
    assert summary[1]["untuned_test_accuracy"] is None
    assert summary[1]["tuned_test_accuracy"] == result.row(3)["test_accuracy"]
    assert {item.path for item in client.list_artifacts(result.parent_run_id, "summary")} >= {
        "summary/tuning.csv", "summary/tuning.json"}
    storage = depth_run(client, experiment_id, 1).data.params["optuna_storage"]
    studies = dashboard_get(storage, "/api/studies")["study_summaries"]
    assert sorted(study["study_name"] for study in studies) == sorted(
        depth_run(client, experiment_id, depth).data.params["study_name"] for depth in (1, 3))
    detail = dashboard_get(storage, f"/api/studies/{studies[0]['study_id']}")
    assert [trial["state"] for trial in detail["trials"]] == ["Complete", "Complete"]


def test_a_rerun_with_more_trials_tops_up_the_same_study(tracking_store, digits_splits):
    client, experiment_id = tracking_store
    run_sweep(SweepConfig(depths="1", n_trials=2, **TUNED), digits_splits)
    first = depth_run(client, experiment_id, 1)
    topped = run_sweep(SweepConfig(depths="1", n_trials=3, **TUNED), digits_splits)
    assert topped.rows[0]["reused"] is False
    second = depth_run(client, experiment_id, 1)
    assert second.info.run_id != first.info.run_id
    assert second.data.params["study_name"] == first.data.params["study_name"]
    old_trials = trial_runs(client, experiment_id, first.info.run_id)
    new_trials = trial_runs(client, experiment_id, second.info.run_id)
    assert len(old_trials) == 2 and len(new_trials) == 1
    assert [int(run.data.params["trial_number"]) for run in old_trials + new_trials] == [0, 1, 2]
    assert len(set(learning_rates(old_trials + new_trials))) == 3
    assert second.data.metrics["n_trials_complete"] == 3 and second.data.metrics["n_trials_run_here"] == 1
    study = optuna.load_study(study_name=second.data.params["study_name"],
                              storage=second.data.params["optuna_storage"])
    assert len(study.trials) == 3
    # Enough trials already: both the same and a smaller n_trials reuse the depth run.
    for n_trials in (3, 2):
        again = run_sweep(SweepConfig(depths="1", n_trials=n_trials, **TUNED), digits_splits)
        assert again.rows[0]["reused"] is True and again.rows[0]["run_id"] == second.info.run_id
    assert len(optuna.load_study(study_name=study.study_name,
                                 storage=second.data.params["optuna_storage"]).trials) == 3


def test_hopeless_trials_are_pruned_killed_and_counted(tracking_store, digits_splits):
    client, experiment_id = tracking_store
    config = SweepConfig(depths="1", n_trials=7, **TUNED)
    # Five finished trials that reached perfect validation accuracy at every epoch: the
    # median pruner must stop the real trials, which cannot match them.
    study = tuning.load_study(config, 1, tuning.resolve_storage("", mlflow.get_tracking_uri()))
    for learning_rate in (1e-3, 2e-3, 3e-3, 4e-3, 5e-3):
        study.add_trial(optuna.trial.create_trial(
            params={"learning_rate": learning_rate},
            distributions={"learning_rate": tuning.learning_rate_distribution(config)},
            value=1.0, intermediate_values={0: 1.0, 1: 1.0}))
    run_sweep(config, digits_splits)
    run = depth_run(client, experiment_id, 1)
    trials = trial_runs(client, experiment_id, run.info.run_id)
    assert [trial.data.params["trial_number"] for trial in trials] == ["5", "6"]
    for trial in trials:
        assert trial.info.status == "KILLED"
        assert trial.data.tags["depth_experiments.trial_state"] == "pruned"
        assert [point.step for point in client.get_metric_history(trial.info.run_id, "val_accuracy")] == [0, 1]
    assert run.data.metrics["n_trials_pruned"] == 2 and run.data.metrics["n_trials_complete"] == 5
    states = [trial.state for trial in study.get_trials()]
    assert states.count(optuna.trial.TrialState.PRUNED) == 2
    assert run.info.status == "FINISHED"


def test_diverged_trials_score_zero_and_the_depth_run_records_the_divergence(
        tracking_store, digits_splits):
    client, experiment_id = tracking_store
    config = SweepConfig(depths="1", n_trials=2, activation="linear", optimizer="sgd",
                         lr_min=1e5, lr_max=1e6, **TUNED)
    result = run_sweep(config, digits_splits)
    run = depth_run(client, experiment_id, 1)
    for trial in trial_runs(client, experiment_id, run.info.run_id):
        assert trial.info.status == "FINISHED" and "depth_experiments.diverged_at_epoch" in trial.data.tags
        assert trial.data.metrics["objective_val_accuracy"] == 0.0
    assert run.info.status == "FAILED" and run.data.tags["depth_experiments.outcome"] == "diverged"
    assert "best_learning_rate" in run.data.params and result.rows[0]["outcome"] == "diverged"


def test_selection_never_reads_the_test_split(tracking_store, digits_splits, tmp_path, monkeypatch):
    uses = []
    phase = ["selection"]
    for method in ("fit", "evaluate", "predict"):
        monkeypatch.setattr(keras.Model, method, _recording(getattr(keras.Model, method),
                                                            method, digits_splits, phase, uses))
    real_train_depth = tuning.train_depth

    def final_training(*args, **kwargs):
        phase[0] = "final"
        return real_train_depth(*args, **kwargs)

    monkeypatch.setattr(tuning, "train_depth", final_training)
    real = _tune_once(SweepConfig(depths="1", n_trials=3, storage=str(tmp_path / "real.log"), **TUNED),
                      digits_splits)
    assert [use for use in uses if use[0] == "selection" and use[2]] == []
    # The spy does see the test split once selection is over, so it could have caught a use.
    assert ("final", "evaluate", True) in uses
    # And scrambling the test split changes the test accuracy but not a single selection number.
    scrambled_splits = dataclasses.replace(digits_splits, x_test=digits_splits.x_test[::-1].copy(),
                                           y_test=(digits_splits.y_test + 1) % 10)
    scrambled = _tune_once(SweepConfig(depths="1", n_trials=3, storage=str(tmp_path / "scrambled.log"),
                                       **TUNED), scrambled_splits)
    assert scrambled["trials"] == real["trials"] and scrambled["best"] == real["best"]
    assert scrambled["test_accuracy"] != real["test_accuracy"]


def _recording(method, name, splits, phase, uses):
    def recorded(model, *args, **kwargs):
        arrays = [value for value in (*args, *kwargs.values(), *kwargs.get("validation_data", ()))
                  if isinstance(value, np.ndarray)]
        touches_test = any(np.shares_memory(array, splits.x_test) for array in arrays)
        uses.append((phase[0], name, touches_test))
        return method(model, *args, **kwargs)

    return recorded


def _tune_once(config: SweepConfig, splits) -> dict:
    with mlflow.start_run():
        result = tuning.tune_depth(config, 1, splits)
    study = tuning.load_study(config, 1, tuning.resolve_storage(config.storage, ""))
    return {"trials": [(trial.params, trial.value) for trial in study.trials],
            "best": study.best_params, "test_accuracy": result.test_accuracy}


def test_parallel_trials_share_a_journal_storage(tracking_store, digits_splits, tmp_path):
    client, experiment_id = tracking_store
    journal = tmp_path / "optuna.log"
    run_sweep(SweepConfig(depths="1", n_trials=2, n_jobs=2, storage=f"journal://{journal}",
                          **TUNED), digits_splits)
    run = depth_run(client, experiment_id, 1)
    trials = trial_runs(client, experiment_id, run.info.run_id)
    assert [trial.info.status for trial in trials] == ["FINISHED", "FINISHED"]
    assert len(set(learning_rates(trials))) == 2
    assert run.data.params["optuna_storage"] == str(journal)
    studies = dashboard_get(str(journal), "/api/studies")["study_summaries"]
    assert [study["study_name"] for study in studies] == [run.data.params["study_name"]]


def test_unsafe_parallel_storage_exits_2_in_one_line_without_a_run(tracking_store):
    client, experiment_id = tracking_store
    done = subprocess.run([sys.executable, "-m", "depth_experiments", "sweep", "--dataset", "digits",
                           "--tune", "true", "--n_jobs", "2"], cwd=Path.cwd(),
                          env=subprocess_env(os.environ["MLFLOW_TRACKING_URI"], experiment_id),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "n_jobs: " in lines[0]
    assert "PostgreSQL" in lines[0] and "journal" in lines[0]
    assert client.search_runs([experiment_id]) == []


@pytest.mark.parametrize("values, parameter", [
    ({"lr_min": "0.1", "lr_max": "0.01"}, "lr_max"),
    ({"lr_min": "0.01", "lr_max": "0.01"}, "lr_max"),
    ({"lr_min": "0"}, "lr_min"),
    ({"n_trials": "0"}, "n_trials"),
    ({"tune": "maybe"}, "tune"),
    ({"n_jobs": "0"}, "n_jobs"),
    ({"tune": "true", "n_jobs": "2"}, "n_jobs"),
    ({"tune": "true", "n_jobs": "2", "storage": "sqlite:///optuna.db"}, "n_jobs"),
    ({"storage": "optuna.db"}, "storage"),
    ({"storage": "journal://"}, "storage"),
    ({"storage": "postgresql://host:port/db"}, "storage"),
])
def test_bad_tuning_values_get_one_line_naming_the_parameter(values, parameter):
    with pytest.raises(ConfigError) as error:
        SweepConfig.from_strings(values)
    assert str(error.value).startswith(f"{parameter}: ") and "\n" not in str(error.value)


def test_parallel_trials_are_allowed_on_journal_and_server_storages():
    for storage in ("journal:///tmp/optuna.log", "runs/optuna.log", "postgresql://user@host/optuna"):
        assert SweepConfig(tune=True, n_jobs=4, storage=storage).n_jobs == 4


def test_identity_counts_tuning_fields_only_when_tuning():
    base = SweepConfig(dataset="digits")
    assert base.identity(3) == SweepConfig(dataset="digits", lr_min=1e-3, lr_max=0.5).identity(3)
    tuned = SweepConfig(dataset="digits", tune=True)
    assert tuned.identity(3) != base.identity(3)
    assert tuned.identity(3) != SweepConfig(dataset="digits", tune=True, lr_max=0.5).identity(3)
    same_study = SweepConfig(dataset="digits", tune=True, n_trials=99, n_jobs=2,
                             storage="journal:///tmp/x.log")
    assert same_study.identity(3) == tuned.identity(3)
    assert tuning.study_name(tuned, 3) == "depth_experiments-" + tuned.identity(3)


def test_logged_params_hide_a_storage_password():
    config = SweepConfig(tune=True, storage="postgresql://user:secret@db.example:5432/optuna")
    assert config.as_params()["storage"] == "postgresql://user:***@db.example:5432/optuna"


@pytest.mark.parametrize("storage, tracking_uri, expected", [
    ("", "sqlite:////data/runs/mlflow.db", "sqlite:////data/runs/optuna.db"),
    ("", "file:///data/runs/mlruns", "sqlite:////data/runs/optuna.db"),
    ("", "/data/runs/mlruns", "sqlite:////data/runs/optuna.db"),
    ("", "http://tracking.example:5000", "sqlite:///{cwd}/optuna.db"),
    ("", "sqlite:///mlflow.db", "sqlite:///{cwd}/optuna.db"),
    ("postgresql://host/optuna", "sqlite:///mlflow.db", "postgresql://host/optuna"),
    ("journal:///data/optuna.log", "", "/data/optuna.log"),
    ("optuna.log", "", "{cwd}/optuna.log"),
])
def test_storage_default_sits_beside_the_mlflow_store(storage, tracking_uri, expected):
    resolved = tuning.resolve_storage(storage, tracking_uri)
    assert resolved == expected.format(cwd=Path.cwd().resolve())
