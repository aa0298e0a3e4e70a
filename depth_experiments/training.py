"""Train and evaluate one depth inside the active MLflow run.

`train_depth(config, depth, splits)` builds the MLP, fits it with Keras callbacks that log
per-epoch metrics (`step=epoch`), stop on a non-finite loss and (optionally) record per-layer
diagnostics, then evaluates on the test split. It writes to the active MLflow run: params
(`n_parameters`; the caller logs the config and depth), metrics, the model summary, the history and a few
test-set softmax outputs, and returns a `DepthResult`. The caller owns the run's lifetime.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import keras
import mlflow
import numpy as np
import tensorflow as tf

from depth_experiments.config import SweepConfig
from depth_experiments.data import Splits
from depth_experiments.models import build_mlp, hidden_widths, parameter_count

COLLAPSE_MARGIN = 0.05
PREDICTION_SAMPLES = 8
TAG_PREFIX = "depth_experiments."
OUTCOME_TRAINED, OUTCOME_COLLAPSED, OUTCOME_DIVERGED = "trained", "collapsed", "diverged"


@dataclass(frozen=True)
class DepthResult:
    depth: int
    outcome: str
    n_parameters: int
    epochs_completed: int
    training_time_s: float
    test_accuracy: float
    test_loss: float
    final_val_accuracy: float
    diverged_at_epoch: int | None = None


class EpochMetricsLogger(keras.callbacks.Callback):
    """Logs Keras' epoch logs and the epoch's duration to the active MLflow run."""

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        metrics = {name: float(value) for name, value in (logs or {}).items()}
        metrics["epoch_time_s"] = time.perf_counter() - self._epoch_start
        mlflow.log_metrics(metrics, step=epoch)


class DivergenceMonitor(keras.callbacks.Callback):
    """Stops training at the first non-finite batch loss and remembers the epoch."""

    def __init__(self):
        super().__init__()
        self.diverged_at_epoch: int | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at_epoch = self._epoch
            self.model.stop_training = True


def make_reproducible(seed: int) -> None:
    """Seed Python, NumPy and TF, and make TF's kernels deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model_for(config: SweepConfig, depth: int, splits: Splits,
                    learning_rate: float | None = None) -> keras.Model:
    model = build_mlp(splits.input_dim, hidden_widths(depth, config.width), splits.num_classes,
                      activation=config.activation, kernel_initializer=config.initializer,
                      normalization=config.normalization, residual=config.residual,
                      seed=config.seed)
    optimizer = keras.optimizers.get({"class_name": config.optimizer, "config": {
        "learning_rate": learning_rate or config.learning_rate}})
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def diagnostics_callbacks(config: SweepConfig, splits: Splits, log_dir: Path) -> list:
    if config.diagnostics_every == 0:
        return []
    from depth_experiments.diagnostics import LayerDiagnostics

    probe = slice(0, config.probe_size)
    return [LayerDiagnostics(splits.x_train[probe], splits.y_train[probe], log_dir,
                             every_n_epochs=config.diagnostics_every)]


def train_depth(config: SweepConfig, depth: int, splits: Splits, *,
                learning_rate: float | None = None,
                extra_callbacks: Sequence[keras.callbacks.Callback] = (),
                with_diagnostics: bool = True, verbose: int = 2) -> DepthResult:
    """Fit, evaluate and log one depth in the active MLflow run."""
    make_reproducible(config.seed)
    model = build_model_for(config, depth, splits, learning_rate)
    n_parameters = model.count_params()
    expected = parameter_count(splits.input_dim, hidden_widths(depth, config.width),
                               splits.num_classes, config.normalization)
    assert n_parameters == expected, (n_parameters, expected)
    mlflow.log_param("n_parameters", n_parameters)
    mlflow.log_text(_summary_text(model), "model_summary.txt")
    monitor = DivergenceMonitor()
    with tempfile.TemporaryDirectory(prefix="depth_diagnostics_") as log_dir:
        callbacks = [EpochMetricsLogger(), monitor, *extra_callbacks]
        if with_diagnostics:
            callbacks += diagnostics_callbacks(config, splits, Path(log_dir))
        started = time.perf_counter()
        history = model.fit(splits.x_train, splits.y_train, epochs=config.epochs,
                            batch_size=config.batch_size,
                            validation_data=(splits.x_val, splits.y_val), shuffle=True,
                            callbacks=callbacks, verbose=verbose)
        training_time = time.perf_counter() - started
    mlflow.log_dict(_history_records(history.history), "history.json")
    result = _evaluate(model, splits, depth, n_parameters, history.history, training_time,
                       monitor.diverged_at_epoch)
    _log_result(result)
    if result.outcome != OUTCOME_DIVERGED:
        _log_sample_predictions(model, splits)
    return result


def _evaluate(model, splits: Splits, depth: int, n_parameters: int, history: dict,
              training_time: float, diverged_at_epoch: int | None) -> DepthResult:
    epochs_completed = len(history.get("loss", []))
    final_val = float(history["val_accuracy"][-1]) if history.get("val_accuracy") else math.nan
    if diverged_at_epoch is not None:
        return DepthResult(depth, OUTCOME_DIVERGED, n_parameters, epochs_completed,
                           training_time, math.nan, math.nan, final_val, diverged_at_epoch)
    test_loss, test_accuracy = model.evaluate(splits.x_test, splits.y_test, verbose=0,
                                              batch_size=1024)
    collapsed = test_accuracy <= splits.chance_accuracy() + COLLAPSE_MARGIN
    outcome = OUTCOME_COLLAPSED if collapsed else OUTCOME_TRAINED
    return DepthResult(depth, outcome, n_parameters, epochs_completed, training_time,
                       float(test_accuracy), float(test_loss), final_val)


def _log_result(result: DepthResult) -> None:
    metrics = {"n_parameters": result.n_parameters, "epochs_completed": result.epochs_completed,
               "training_time_s": result.training_time_s}
    if result.outcome != OUTCOME_DIVERGED:
        metrics.update(test_accuracy=result.test_accuracy, test_loss=result.test_loss)
    mlflow.log_metrics(metrics)
    tags = {TAG_PREFIX + "outcome": result.outcome,
            TAG_PREFIX + "collapsed": str(result.outcome == OUTCOME_COLLAPSED).lower(),
            TAG_PREFIX + "diverged": str(result.outcome == OUTCOME_DIVERGED).lower()}
    if result.diverged_at_epoch is not None:
        tags[TAG_PREFIX + "diverged_at_epoch"] = str(result.diverged_at_epoch)
    mlflow.set_tags(tags)
    mlflow.log_dict(asdict(result), "result.json")


def _log_sample_predictions(model, splits: Splits) -> None:
    """Softmax outputs on the first test images, for the report's softmax question."""
    images = splits.x_test[:PREDICTION_SAMPLES]
    probabilities = model.predict(images, verbose=0)
    mlflow.log_dict({"test_indices": list(range(len(images))),
                     "labels": splits.y_test[:PREDICTION_SAMPLES].tolist(),
                     "class_names": list(splits.class_names),
                     "probabilities": np.round(probabilities, 6).tolist()},
                    "predictions/test_samples.json")


def _history_records(history: dict) -> list[dict]:
    epochs = len(next(iter(history.values()), []))
    return [{"epoch": epoch, **{name: float(values[epoch]) for name, values in history.items()}}
            for epoch in range(epochs)]


def _summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line), line_length=100)
    return "\n".join(lines) + "\n"
