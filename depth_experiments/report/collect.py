"""Read one sweep back from MLflow into plain dataclasses for the report.

`find_sweep(client, experiment_name, sweep_run_id)` picks the sweep run (the latest finished
sweep of the experiment unless a run id is given); `collect_sweep(client, run)` reads its
params, tags, `provenance.json`, `summary/depth_accuracy.json` and, for every depth of its
depth list, the run holding that depth (tag `depth_experiments.depth_run.<depth>`, falling
back to the sweep's child runs): metrics, per-epoch metric histories,
`predictions/test_samples.json` and `diagnostics/layer_diagnostics.json`. Nothing is written
except downloaded artifacts in a temporary folder. Everything read here is untrusted text:
it is parsed defensively and an unreadable artifact becomes a note in the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from depth_experiments.config import ConfigError, SweepConfig, parse_depths
from depth_experiments.tracking import KEY_TAG, KIND_TAG, OUTCOME_TAG, PARENT_TAG
from depth_experiments.training import TAG_PREFIX

# Spelled out rather than imported from `sweep`, which may import this package to write
# the report at the end of a sweep.
DEPTH_RUN_TAG = TAG_PREFIX + "depth_run."
SPLIT_TAGS = ("train_samples", "val_samples", "test_samples", "input_dim", "num_classes")
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "saturation_mean",
                "saturation_max", "grad_norm_max", "grad_nonfinite_layers")
PREDICTIONS_ARTIFACT = "predictions/test_samples.json"
DIAGNOSTICS_ARTIFACT = "diagnostics/layer_diagnostics.json"
PROVENANCE_ARTIFACT = "provenance.json"
SUMMARY_ARTIFACT = "summary/depth_accuracy.json"
MISSING_ERRORS = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class ArtifactFormatError(ValueError):
    """An artifact that exists but does not have the structure this project writes."""


@dataclass
class LayerEvidence:
    """Per-layer, per-epoch numbers from `layer_diagnostics.json` (rows = Dense layers)."""

    epochs: list[int]
    grad_norms: np.ndarray          # kernel-gradient L2 norm, layers x epochs (NaN: non-finite)
    saturation: np.ndarray          # hidden layers x epochs
    nonfinite_layers: list[int]     # per epoch: layers with any non-finite gradient entry


@dataclass
class Predictions:
    labels: list[int]
    class_names: list[str]
    probabilities: np.ndarray       # samples x classes


@dataclass
class DepthRun:
    """What the experiment holds for one depth of the sweep (run_id None: missing)."""

    depth: int
    run_id: str | None = None
    run_name: str = ""
    status: str = "MISSING"
    outcome: str | None = None
    parent_run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    predictions: Predictions | None = None
    evidence: LayerEvidence | None = None
    diverged_at_epoch: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> bool:
        return self.run_id is None

    @property
    def test_accuracy(self) -> float | None:
        return finite_or_none(self.metrics.get("test_accuracy"))

    def final(self, key: str) -> float | None:
        values = self.history.get(key) or []
        return finite_or_none(values[-1]) if values else finite_or_none(self.metrics.get(key))


@dataclass
class SweepData:
    run_id: str
    run_name: str
    experiment_id: str
    experiment_name: str
    status: str
    start_time: int | None
    end_time: int | None
    params: dict[str, str]
    tags: dict[str, str]
    config: SweepConfig | None
    depth_list: list[int]
    provenance: dict | None
    summary: dict | None
    depths: list[DepthRun]
    notes: list[str] = field(default_factory=list)

    def split(self) -> dict[str, int | None]:
        return {name: _int_or_none(self.tags.get(TAG_PREFIX + name)) for name in SPLIT_TAGS}

    @property
    def chance_accuracy(self) -> float | None:
        logged = finite_or_none((self.summary or {}).get("chance_accuracy"))
        if logged is not None:
            return logged
        classes = self.split()["num_classes"]
        return 1.0 / classes if classes else None

    @property
    def complete(self) -> bool:
        """Every depth of the list reached an outcome (the sweep may still be closing)."""
        return bool(self.depths) and all(run.outcome is not None for run in self.depths)


def finite_or_none(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _int_or_none(text) -> int | None:
    return int(text) if isinstance(text, str) and text.strip().isdigit() else None


# --- finding the sweep -------------------------------------------------------------------

def find_sweep(client: MlflowClient, experiment_name: str | None = None,
               sweep_run_id: str | None = None) -> Run:
    """The sweep run to report; bad names or ids raise ConfigError naming the parameter."""
    if sweep_run_id:
        return _sweep_by_id(client, sweep_run_id, experiment_name)
    if not experiment_name:
        raise ConfigError("experiment_name", "give an experiment name or a sweep run id")
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise ConfigError("experiment_name", f"no experiment named {experiment_name!r} in the "
                          "tracking store (MLFLOW_TRACKING_URI)")
    sweeps = client.search_runs([experiment.experiment_id], f"tags.`{KIND_TAG}` = 'sweep'",
                                order_by=["attributes.start_time DESC"], max_results=1000)
    if not sweeps:
        raise ConfigError("experiment_name", f"experiment {experiment_name!r} holds no sweep run "
                          f"(tag {KIND_TAG}=sweep); run the main entry point first")
    finished = [run for run in sweeps if run.info.status == "FINISHED"]
    return (finished or sweeps)[0]


def _sweep_by_id(client: MlflowClient, run_id: str, experiment_name: str | None) -> Run:
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        if error.error_code in MISSING_ERRORS:
            raise ConfigError("sweep_run_id", f"no run with id {run_id!r}") from None
        raise
    kind = run.data.tags.get(KIND_TAG)
    if kind != "sweep":
        raise ConfigError("sweep_run_id", f"run {run_id!r} is not a sweep "
                          f"(its tag {KIND_TAG} is {kind!r})")
    if experiment_name:
        experiment = client.get_experiment(run.info.experiment_id)
        if experiment.name != experiment_name:
            raise ConfigError("sweep_run_id", f"run {run_id!r} belongs to experiment "
                              f"{experiment.name!r}, not {experiment_name!r}")
    return run


# --- reading the sweep -------------------------------------------------------------------

def collect_sweep(client: MlflowClient, sweep: Run) -> SweepData:
    """Everything the report shows about `sweep`, read from MLflow."""
    notes: list[str] = []
    with _quiet_downloads(), tempfile.TemporaryDirectory(prefix="depth_report_") as scratch:
        reader = _ArtifactReader(client, Path(scratch), notes)
        depth_list = _depth_list(sweep, notes)
        run_ids = _depth_run_ids(client, sweep)
        depths = [_collect_depth(client, reader, depth, run_ids.get(depth))
                  for depth in sorted(set(depth_list) | set(run_ids))]
        provenance = reader.json(sweep.info.run_id, PROVENANCE_ARTIFACT)
        summary = reader.json(sweep.info.run_id, SUMMARY_ARTIFACT)
    experiment = client.get_experiment(sweep.info.experiment_id)
    return SweepData(
        run_id=sweep.info.run_id, run_name=sweep.info.run_name or "",
        experiment_id=sweep.info.experiment_id, experiment_name=experiment.name,
        status=sweep.info.status, start_time=sweep.info.start_time,
        end_time=sweep.info.end_time, params=dict(sweep.data.params),
        tags=dict(sweep.data.tags), config=_config_from_params(sweep.data.params, notes),
        depth_list=depth_list, provenance=provenance if isinstance(provenance, dict) else None,
        summary=summary if isinstance(summary, dict) else None, depths=depths, notes=notes)


def _depth_list(sweep: Run, notes: list[str]) -> list[int]:
    params = sweep.data.params
    for name in ("depth_list", "depths"):
        if name in params:
            try:
                return list(parse_depths(params[name]))
            except ConfigError as error:
                notes.append(f"sweep param {name} unreadable: {error}")
    return []


def _config_from_params(params: dict[str, str], notes: list[str]) -> SweepConfig | None:
    """The sweep's config; a value that no longer validates falls back to its default, with
    a note, so that one odd param does not blank the whole report."""
    names = {spec.name for spec in dataclasses.fields(SweepConfig)}
    values = {name: _unquoted(value) for name, value in params.items() if name in names}
    while True:
        try:
            return SweepConfig.from_strings(values)
        except ConfigError as error:
            if error.parameter not in values:
                notes.append(f"sweep params do not form a valid configuration: {error}")
                return None
            notes.append(f"sweep param {error}; the report assumes its default")
            del values[error.parameter]


def _unquoted(value: str) -> str:
    # `mlflow run` logs an empty parameter as the shell word '' (two quote characters).
    return "" if value in ("''", '""') else value


def _depth_run_ids(client: MlflowClient, sweep: Run) -> dict[int, str]:
    """Depth -> run id: the sweep's tags first (they also name reused runs), then children."""
    ids: dict[int, str] = {}
    children = client.search_runs([sweep.info.experiment_id],
                                  f"tags.`{PARENT_TAG}` = '{sweep.info.run_id}'",
                                  order_by=["attributes.start_time ASC"], max_results=10_000)
    for child in children:
        depth = _int_or_none(child.data.params.get("depth"))
        # Only depth runs: tuning trials nest under their depth run, but guard anyway.
        if depth is not None and child.data.tags.get(KIND_TAG, "depth") == "depth":
            ids[depth] = child.info.run_id
    for key, value in sweep.data.tags.items():
        depth = _int_or_none(key[len(DEPTH_RUN_TAG):]) if key.startswith(DEPTH_RUN_TAG) else None
        if depth is not None:
            ids[depth] = value
    return ids


def _collect_depth(client: MlflowClient, reader: "_ArtifactReader", depth: int,
                   run_id: str | None) -> DepthRun:
    if run_id is None:
        return DepthRun(depth)
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        if error.error_code not in MISSING_ERRORS:
            raise
        return DepthRun(depth, notes=[f"run {run_id!r} named by the sweep no longer exists"])
    tags = run.data.tags
    result = DepthRun(
        depth=depth, run_id=run_id, run_name=run.info.run_name or "", status=run.info.status,
        outcome=tags.get(OUTCOME_TAG), parent_run_id=tags.get(PARENT_TAG),
        params=dict(run.data.params), metrics=dict(run.data.metrics),
        history=_histories(client, run), diverged_at_epoch=_int_or_none(
            tags.get(TAG_PREFIX + "diverged_at_epoch")))
    result.predictions = _parse_or_note(reader.json(run_id, PREDICTIONS_ARTIFACT),
                                        parse_predictions, PREDICTIONS_ARTIFACT, result.notes)
    result.evidence = _parse_or_note(reader.json(run_id, DIAGNOSTICS_ARTIFACT),
                                     parse_layer_evidence, DIAGNOSTICS_ARTIFACT, result.notes)
    return result


def _histories(client: MlflowClient, run: Run) -> dict[str, list[float]]:
    """Per-epoch values (step = epoch); a step logged twice keeps its latest value."""
    histories = {}
    for key in HISTORY_KEYS:
        if key not in run.data.metrics:
            continue
        points = sorted(client.get_metric_history(run.info.run_id, key),
                        key=lambda point: (point.step, point.timestamp))
        by_step = {point.step: point.value for point in points}
        histories[key] = [by_step[step] for step in sorted(by_step)]
    return histories


def _parse_or_note(document, parse, artifact: str, notes: list[str]):
    if document is None:
        return None
    try:
        return parse(document)
    # Wrong structure surfaces as one of these (ArtifactFormatError is a ValueError).
    except (KeyError, TypeError, ValueError, IndexError) as error:
        notes.append(f"{artifact} unreadable ({type(error).__name__}: {str(error)[:120]})")
        return None


def parse_predictions(document: dict) -> Predictions:
    labels = [int(label) for label in document["labels"]]
    class_names = [str(name) for name in document["class_names"]]
    probabilities = np.asarray(document["probabilities"], dtype=np.float64)
    if probabilities.shape != (len(labels), len(class_names)):
        raise ArtifactFormatError(f"probabilities have shape {probabilities.shape}, expected "
                                  f"({len(labels)}, {len(class_names)})")
    if any(not 0 <= label < len(class_names) for label in labels):
        raise ArtifactFormatError("a label is outside the class list")
    return Predictions(labels, class_names, probabilities)


def parse_layer_evidence(document: dict) -> LayerEvidence:
    """Epoch records only (step records are finer-grained than the report needs)."""
    if document.get("format") != "layer_diagnostics":
        raise ArtifactFormatError(f"format is {document.get('format')!r}")
    layers = document["layers"]
    records = [record for record in document["records"] if record["kind"] == "epoch"]
    hidden = [layer for layer in layers if layer["role"] == "hidden"]
    norms = [[_number(layer["kernel_gradient"]["l2_norm"]) for layer in record["layers"]]
             for record in records]
    saturation = [[_number((layer["activation"] or {}).get("saturation_fraction"))
                   for layer in record["layers"][:len(hidden)]] for record in records]
    nonfinite = [sum(_layer_nonfinite(layer) for layer in record["layers"]) for record in records]
    return LayerEvidence(
        epochs=[int(record["epoch"]) for record in records],
        grad_norms=np.array(norms, dtype=np.float64).reshape(len(records), len(layers)).T,
        saturation=np.array(saturation, dtype=np.float64).reshape(len(records), len(hidden)).T,
        nonfinite_layers=nonfinite)


def _number(value) -> float:
    # The data file writes non-finite numbers as null.
    return math.nan if value is None else float(value)


def _layer_nonfinite(layer: dict) -> bool:
    gradients = [layer["kernel_gradient"], layer.get("bias_gradient")]
    return any(gradient and int(gradient["nonfinite_count"]) > 0 for gradient in gradients)


@contextlib.contextmanager
def _quiet_downloads():
    """MLflow draws a progress bar per downloaded file; a report reads dozens of tiny ones.
    The user's own setting wins, and the previous environment is restored."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if name in os.environ:
        yield
        return
    os.environ[name] = "false"
    try:
        yield
    finally:
        os.environ.pop(name, None)


class _ArtifactReader:
    """Downloads small JSON artifacts when they exist; a broken one becomes a note."""

    def __init__(self, client: MlflowClient, scratch: Path, notes: list[str]):
        self.client, self.scratch, self.notes = client, scratch, notes
        self._listings: dict[tuple[str, str], set[str]] = {}

    def exists(self, run_id: str, path: str) -> bool:
        folder = path.rpartition("/")[0]
        key = (run_id, folder)
        if key not in self._listings:
            self._listings[key] = {item.path for item in
                                   self.client.list_artifacts(run_id, folder or None)}
        return path in self._listings[key]

    def json(self, run_id: str, path: str):
        if not self.exists(run_id, path):
            return None
        target = self.scratch / run_id
        target.mkdir(exist_ok=True)
        local = self.client.download_artifacts(run_id, path, str(target))
        try:
            return json.loads(Path(local).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            self.notes.append(f"artifact {path} of run {run_id} is not JSON ({error})")
            return None


# --- tuned sweeps -------------------------------------------------------------------------

def collect_tuning(client: MlflowClient, sweep: SweepData) -> list[dict] | None:
    """For a sweep with param tune=true: per depth, the best learning rate found and, when
    the experiment holds one, the untuned run of the same config (tune=false) beside it."""
    if sweep.params.get("tune", "").strip().lower() != "true" or sweep.config is None:
        return None
    untuned_config = _untuned(sweep.config)
    rows = []
    for run in sweep.depths:
        untuned = None
        if untuned_config is not None and not run.missing:
            untuned = _finished_run_with_key(client, sweep.experiment_id,
                                             untuned_config.identity(run.depth), run.run_id)
        rows.append({"depth": run.depth, "tuned": run,
                     "best_learning_rate": _best_learning_rate(run),
                     "untuned_accuracy": None if untuned is None else finite_or_none(
                         untuned.data.metrics.get("test_accuracy")),
                     "untuned_run_id": None if untuned is None else untuned.info.run_id})
    return rows


def _untuned(config: SweepConfig) -> SweepConfig | None:
    if "tune" not in {spec.name for spec in dataclasses.fields(SweepConfig)}:
        return None
    return dataclasses.replace(config, tune=False)


def _best_learning_rate(run: DepthRun) -> float | None:
    logged = finite_or_none(run.metrics.get("best_learning_rate"))
    if logged is not None:
        return logged
    try:
        return finite_or_none(float(run.params.get("best_learning_rate", "")))
    except ValueError:
        return None


def _finished_run_with_key(client: MlflowClient, experiment_id: str, run_key: str,
                           exclude_run_id: str | None) -> Run | None:
    runs = client.search_runs([experiment_id], f"tags.`{KEY_TAG}` = '{run_key}'",
                              order_by=["attributes.start_time DESC"], max_results=100)
    for run in runs:
        tuned = run.data.params.get("tune", "false").strip().lower() == "true"
        if run.info.run_id != exclude_run_id and not tuned and OUTCOME_TAG in run.data.tags:
            return run
    return None
