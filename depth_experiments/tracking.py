"""MLflow helpers shared by the sweep, the tuner and the report.

- `run_scope(...)`: start a run and end it FINISHED, KILLED (Ctrl-C / SIGTERM) or FAILED.
- `finished_depth_run(...)`: the reusable run for a config identity, if any.
- `child_runs(parent_id)`: a sweep's depth runs, found with `tags.mlflow.parentRunId`.
- `log_params_once(...)`: log params a run does not have yet (`mlflow run` logs its own).
Writes only through the MLflow client; needs an experiment id and run ids.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from typing import Iterator

import mlflow
from mlflow.entities import Run

from depth_experiments.training import TAG_PREFIX

KIND_TAG, KEY_TAG, OUTCOME_TAG = TAG_PREFIX + "kind", TAG_PREFIX + "run_key", TAG_PREFIX + "outcome"
PARENT_TAG = "mlflow.parentRunId"
HOST_TAG, PID_TAG = TAG_PREFIX + "host", TAG_PREFIX + "pid"


@contextlib.contextmanager
def run_scope(**start_run_kwargs) -> Iterator[mlflow.ActiveRun]:
    """`mlflow.start_run` that records an interrupted run as KILLED rather than FAILED."""
    run = mlflow.start_run(**start_run_kwargs)
    try:
        yield run
    except KeyboardInterrupt:
        _end_if_active(run.info.run_id, "KILLED")
        raise
    except BaseException:
        _end_if_active(run.info.run_id, "FAILED")
        raise
    _end_if_active(run.info.run_id, "FINISHED")


def _end_if_active(run_id: str, status: str) -> None:
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        mlflow.end_run(status)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (e.g. from `kill` or a scheduler) like Ctrl-C so runs end KILLED."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def log_params_once(run_id: str, params: dict[str, str]) -> None:
    """MLflow refuses to change a param; `mlflow run` has already logged its own spelling."""
    client = mlflow.MlflowClient()
    existing = client.get_run(run_id).data.params
    missing = {name: value for name, value in params.items() if name not in existing}
    if missing:
        mlflow.log_params(missing, run_id=run_id)


def runs_with_key(experiment_id: str, run_key: str) -> list[Run]:
    return mlflow.MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{run_key}'",
        order_by=["attributes.start_time DESC"])


def finished_depth_run(experiment_id: str, run_key: str) -> Run | None:
    """The newest run with this identity that reached an outcome (trained/collapsed/diverged)."""
    for run in runs_with_key(experiment_id, run_key):
        if OUTCOME_TAG in run.data.tags and run.info.status in ("FINISHED", "FAILED"):
            return run
    return None


def process_tags() -> dict[str, str]:
    """Who is running a sweep, so that a later sweep can tell a dead one from a live one."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _process_gone(run: Run) -> bool:
    tags = run.data.tags
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    try:
        os.kill(int(tags[PID_TAG]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def close_stale_runs(experiment_id: str, run_key: str, current_parent: str) -> list[str]:
    """Mark RUNNING depth runs left by a killed sweep (and that sweep) as KILLED.

    A run counts as stale when its sweep ended, or when the sweep's process no longer exists
    on this host (killed with SIGKILL, or the machine lost power). Live sweeps elsewhere are
    left alone."""
    client = mlflow.MlflowClient()
    closed = []
    for run in runs_with_key(experiment_id, run_key):
        parent_id = run.data.tags.get(PARENT_TAG)
        if run.info.status != "RUNNING" or parent_id == current_parent or not parent_id:
            continue
        parent = client.get_run(parent_id)
        if parent.info.status == "RUNNING" and not _process_gone(parent):
            continue
        if parent.info.status == "RUNNING":
            client.set_terminated(parent_id, "KILLED")
            closed.append(parent_id)
        closed += _kill_with_running_children(client, run)
    return closed


def _kill_with_running_children(client: mlflow.MlflowClient, run: Run) -> list[str]:
    """A killed depth run's tuning trials died with it; close them too."""
    children = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{run.info.run_id}' and attributes.status = 'RUNNING'")
    for stale in [run, *children]:
        client.set_terminated(stale.info.run_id, "KILLED")
    return [stale.info.run_id for stale in [run, *children]]


def child_runs(parent_id: str, experiment_id: str) -> list[Run]:
    return mlflow.MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'",
        order_by=["attributes.start_time ASC"], max_results=10_000)
