"""The sweep in-process on digits: the run tree, reuse, reproducibility, divergence, resume."""

import json
import math

import mlflow
import pytest

from depth_experiments import training
from depth_experiments.config import SweepConfig
from depth_experiments.sweep import run_sweep
from depth_experiments.tracking import child_runs

FAST = dict(dataset="digits", epochs=2, diagnostics_every=0)


def depth_runs(client, experiment_id):
    runs = client.search_runs([experiment_id], "tags.`depth_experiments.kind` = 'depth'")
    return sorted(runs, key=lambda run: int(run.data.params["depth"]))


def test_sweep_tree_metrics_and_artifacts(tracking_store, digits_splits, tmp_path):
    client, experiment_id = tracking_store
    result = run_sweep(SweepConfig(depths="1,3", **FAST), digits_splits)
    parent = client.get_run(result.parent_run_id)
    children = child_runs(result.parent_run_id, experiment_id)
    assert parent.info.status == "FINISHED" and parent.data.params["depth_list"] == "1,3"
    assert sorted(int(run.data.params["depth"]) for run in children) == [1, 3]
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.params["learning_rate"] == "0.001" and "n_parameters" in run.data.params
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [point.step for point in history] == [0, 1]
        for key in ("loss", "accuracy", "val_loss", "test_accuracy", "test_loss", "training_time_s"):
            assert key in run.data.metrics, key
        artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
        assert {"model_summary.txt", "history.json", "result.json", "predictions"} <= artifacts
        assert parent.data.tags[f"depth_experiments.depth_run.{run.data.params['depth']}"] == run.info.run_id
    summary = json.loads(open(client.download_artifacts(
        result.parent_run_id, "summary/depth_accuracy.json", str(tmp_path))).read())
    assert [row["test_accuracy"] for row in summary["rows"]] == [
        run.data.metrics["test_accuracy"] for run in sorted(children, key=lambda r: int(r.data.params["depth"]))]
    assert {item.path for item in client.list_artifacts(result.parent_run_id, "summary")} >= {
        "summary/accuracy_vs_depth.png", "summary/depth_accuracy.csv"}
    # The default report path is relative: the test runs in tmp_path (conftest).
    assert (tmp_path / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "report.html" in {item.path for item in client.list_artifacts(result.parent_run_id)}


def test_identical_sweep_reuses_runs_and_rerun_forces_training(tracking_store, digits_splits):
    client, experiment_id = tracking_store
    first = run_sweep(SweepConfig(depths="1,2", **FAST), digits_splits)
    second = run_sweep(SweepConfig(depths="1,2", **FAST), digits_splits)
    assert len(depth_runs(client, experiment_id)) == 2
    assert [row["reused"] for row in second.rows] == [True, True]
    assert [row["run_id"] for row in second.rows] == [row["run_id"] for row in first.rows]
    assert child_runs(second.parent_run_id, experiment_id) == []
    forced = run_sweep(SweepConfig(depths="1,2", rerun=True, **FAST), digits_splits)
    assert len(depth_runs(client, experiment_id)) == 4
    # Same seed and config on the same machine: the same numbers.
    assert [row["test_accuracy"] for row in forced.rows] == [row["test_accuracy"] for row in first.rows]


def test_a_changed_setting_trains_again(tracking_store, digits_splits):
    client, experiment_id = tracking_store
    run_sweep(SweepConfig(depths="1", **FAST), digits_splits)
    result = run_sweep(SweepConfig(depths="1", learning_rate=0.01, **FAST), digits_splits)
    assert result.rows[0]["reused"] is False
    assert len(depth_runs(client, experiment_id)) == 2


def test_divergence_fails_that_depth_and_the_sweep_goes_on(tracking_store, digits_splits):
    client, experiment_id = tracking_store
    config = SweepConfig(depths="1,2", activation="linear", optimizer="sgd", learning_rate=1e6, **FAST)
    result = run_sweep(config, digits_splits)
    assert client.get_run(result.parent_run_id).info.status == "FINISHED"
    runs = depth_runs(client, experiment_id)
    assert [int(run.data.params["depth"]) for run in runs] == [1, 2]
    for run in runs:
        assert run.info.status == "FAILED"
        assert run.data.tags["depth_experiments.outcome"] == "diverged"
        assert run.data.tags["depth_experiments.diverged"] == "true"
        assert "test_accuracy" not in run.data.metrics
    assert [row["outcome"] for row in result.rows] == ["diverged", "diverged"]
    # A diverged depth is a result: the same config does not train it again.
    again = run_sweep(config, digits_splits)
    assert [row["reused"] for row in again.rows] == [True, True]


def test_chance_level_accuracy_is_tagged_collapsed(tracking_store, digits_splits):
    client, experiment_id = tracking_store
    result = run_sweep(SweepConfig(depths="12", **FAST), digits_splits)
    row = result.rows[0]
    assert row["test_accuracy"] <= digits_splits.chance_accuracy() + training.COLLAPSE_MARGIN
    run = client.get_run(row["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["depth_experiments.collapsed"] == "true"


def test_interrupted_sweep_ends_killed_and_resumes_where_it_stopped(
        tracking_store, digits_splits, monkeypatch):
    client, experiment_id = tracking_store
    real_train = training.train_depth

    def interrupted_at_depth_2(config, depth, splits, **kwargs):
        if depth == 2:
            raise KeyboardInterrupt
        return real_train(config, depth, splits, **kwargs)

    monkeypatch.setattr("depth_experiments.sweep.train_depth", interrupted_at_depth_2)
    config = SweepConfig(depths="1,2,3", **FAST)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(config, digits_splits)
    statuses = {int(run.data.params["depth"]): run.info.status for run in depth_runs(client, experiment_id)}
    assert statuses == {1: "FINISHED", 2: "KILLED"}
    assert mlflow.active_run() is None
    monkeypatch.setattr("depth_experiments.sweep.train_depth", real_train)
    resumed = run_sweep(config, digits_splits)
    assert [row["reused"] for row in resumed.rows] == [True, False, False]
    assert all(math.isfinite(row["test_accuracy"]) for row in resumed.rows)


def test_stale_runs_of_an_ended_sweep_are_closed_with_their_trials(tracking_store):
    from depth_experiments.tracking import KEY_TAG, PARENT_TAG, close_stale_runs

    client, experiment_id = tracking_store
    sweep = client.create_run(experiment_id)
    depth = client.create_run(experiment_id, tags={PARENT_TAG: sweep.info.run_id, KEY_TAG: "k1"})
    trial = client.create_run(experiment_id, tags={PARENT_TAG: depth.info.run_id})
    client.set_terminated(sweep.info.run_id, "FAILED")
    closed = close_stale_runs(experiment_id, "k1", current_parent="another-sweep")
    assert set(closed) == {depth.info.run_id, trial.info.run_id}
    assert {client.get_run(run_id).info.status for run_id in closed} == {"KILLED"}
    assert close_stale_runs(experiment_id, "k1", current_parent="another-sweep") == []
