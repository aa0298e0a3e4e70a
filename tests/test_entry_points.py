"""End to end through the user's commands: `mlflow run .` and the console entry point."""

import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest

from tests.conftest import PROJECT_ROOT, subprocess_env

DONE_WHEN = ["-P", "depths=1,5,...,13", "-P", "dataset=digits", "-P", "epochs=2"]


def mlflow_run(args, tracking_uri, experiment_id, timeout=600):
    command = [os.path.join(os.path.dirname(sys.executable), "mlflow"), "run", str(PROJECT_ROOT),
               "--env-manager", "local", "--experiment-id", experiment_id, *args]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=subprocess_env(tracking_uri),
                          capture_output=True, text=True, timeout=timeout)


def runs_of_kind(client, experiment_id, kind):
    return client.search_runs([experiment_id], f"tags.`depth_experiments.kind` = '{kind}'")


def test_mlflow_run_digits_sweep_then_repeat_trains_nothing(tracking_store, tmp_path):
    client, experiment_id = tracking_store
    uri = os.environ["MLFLOW_TRACKING_URI"]
    report = tmp_path / "report.html"
    done = mlflow_run([*DONE_WHEN, "-P", f"report={report}"], uri, experiment_id)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[sweep 4/4] depth 13" in done.stdout
    assert 'id="q4"' in report.read_text(encoding="utf-8")
    parents = runs_of_kind(client, experiment_id, "sweep")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    assert sorted(int(run.data.params["depth"]) for run in children) == [1, 5, 9, 13]
    assert "report.html" in {item.path for item in client.list_artifacts(parents[0].info.run_id)}
    for run in children:
        assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 2
        assert 0.0 <= run.data.metrics["test_accuracy"] <= 1.0
    repeat = mlflow_run([*DONE_WHEN, "-P", f"report={report}"], uri, experiment_id)
    assert repeat.returncode == 0, repeat.stderr[-3000:]
    assert len(runs_of_kind(client, experiment_id, "depth")) == 4
    assert len(runs_of_kind(client, experiment_id, "sweep")) == 2
    assert repeat.stdout.count("(reused)") == 4


@pytest.mark.parametrize("parameter, value", [
    ("epochs", "0"), ("epochs", "-3"), ("dataset", "nope"), ("learning_rate", "-1"),
    ("batch_size", "0"), ("depths", "1,5,...,36"),
])
def test_console_entry_rejects_bad_values_in_one_line_without_a_run(tracking_store, tmp_path, parameter, value):
    client, experiment_id = tracking_store
    done = subprocess.run([sys.executable, "-m", "mlproject.main", f"--{parameter}", value,
                           "--dataset" if parameter != "dataset" else "--epochs",
                           "digits" if parameter != "dataset" else "1"],
                          cwd=tmp_path, env=subprocess_env(os.environ["MLFLOW_TRACKING_URI"], experiment_id),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{parameter}: " in lines[0] and "Traceback" not in done.stderr
    assert client.search_runs([experiment_id]) == []


def test_mlflow_run_with_a_bad_value_leaves_no_run_running(tracking_store):
    client, experiment_id = tracking_store
    done = mlflow_run(["-P", "epochs=0", "-P", "dataset=digits"], os.environ["MLFLOW_TRACKING_URI"], experiment_id)
    assert done.returncode != 0
    assert "epochs: got 0" in done.stderr and "Traceback (most recent call last)" not in done.stderr.split("epochs: got 0")[0][-500:]
    assert [run.info.status for run in client.search_runs([experiment_id])] == ["FAILED"]


def test_sweep_killed_with_sigkill_resumes_and_closes_the_dead_runs(tracking_store, tmp_path):
    client, experiment_id = tracking_store
    uri = os.environ["MLFLOW_TRACKING_URI"]
    command = [sys.executable, "-m", "depth_experiments", "sweep", "--dataset", "digits",
               "--depths", "1,40", "--epochs", "30", "--diagnostics_every", "0"]
    process = subprocess.Popen(command, cwd=tmp_path, env=subprocess_env(uri, experiment_id),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        running = client.search_runs([experiment_id], "params.depth = '40'")
        if running:
            break
        time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert [run.info.status for run in client.search_runs([experiment_id], "params.depth = '40'")] == ["RUNNING"]
    first = client.search_runs([experiment_id], "params.depth = '1'")[0]
    resumed = subprocess.run([*command[:-4], "--epochs", "30", "--diagnostics_every", "0"],
                             cwd=tmp_path, env=subprocess_env(uri, experiment_id),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "depth 1: trained (reused)" in resumed.stdout
    depth_40 = {run.info.status for run in client.search_runs([experiment_id], "params.depth = '40'")}
    assert depth_40 == {"KILLED", "FINISHED"}
    assert len(client.search_runs([experiment_id], "params.depth = '1'")) == 1
    assert client.search_runs([experiment_id], "params.depth = '1'")[0].info.run_id == first.info.run_id
    assert not client.search_runs([experiment_id], "attributes.status = 'RUNNING'")
