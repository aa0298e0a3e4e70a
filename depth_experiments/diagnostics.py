"""Per-layer gradient and activation diagnostics for Keras models of any depth.

Takes a compiled single-output Keras functional or Sequential model with
``keras.layers.Dense`` layers (handed over by ``model.fit``) and a fixed probe
batch ``(probe_x, probe_y)``. At the end of every ``every_n_epochs``-th epoch
(and optionally every ``every_n_steps`` training batches) one compiled call
computes the training loss's gradients w.r.t. every Dense kernel and bias and
every hidden Dense layer's output on the probe batch.

Writes into ``log_dir``: TensorBoard histograms (``tensorboard/``), the data
file ``layer_diagnostics.json`` and two layer x epoch heat maps
(``gradient_norms.png``, ``saturation.png``). With an active MLflow run it also
logs ten depth-independent summary metrics per recorded epoch and, when
training ends, the files above as artifacts under ``diagnostics/``.

Run it from any training script::

    callback = LayerDiagnostics(x_val[:512], y_val[:512], "runs/diagnostics")
    model.fit(x, y, epochs=10, callbacks=[callback])

docs/diagnostics.md documents the metric keys, tag names and file schema.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import mlflow
import numpy as np
import tensorflow as tf
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from tensorboard.plugins.histogram import metadata as histogram_plugin_metadata

# Quarter-decade bins from 1e-12 to 1e2, shared by every layer, epoch and
# depth so histograms from different runs can be compared bin by bin.
LOG10_GRADIENT_BIN_EDGES = np.linspace(-12.0, 2.0, 57)
LOG10_GRADIENT_BIN_EDGES.setflags(write=False)

SATURATION_MARGIN = 0.05
DIAGNOSTICS_FILENAME = "layer_diagnostics.json"
GRADIENT_NORM_FIGURE = "gradient_norms.png"
SATURATION_FIGURE = "saturation.png"
TENSORBOARD_SUBDIR = "tensorboard"
MLFLOW_ARTIFACT_PATH = "diagnostics"
FORMAT_VERSION = 1

SUMMARY_METRIC_KEYS = (
    "grad_norm_first_hidden",
    "grad_norm_last_hidden",
    "grad_norm_output",
    "grad_norm_ratio_first_to_last",
    "grad_norm_min",
    "grad_norm_median",
    "grad_norm_max",
    "saturation_mean",
    "saturation_max",
    "grad_nonfinite_layers",
)


def saturation_fraction(activations: np.ndarray, activation_name: str) -> float:
    """Fraction of activation values in the saturated (or dead) region.

    sigmoid: value <= 0.05 or >= 0.95; tanh: |value| >= 0.95; relu: value == 0.
    Any other activation has no saturated region and gives NaN, as does an
    empty array or one containing NaN.
    """
    values = np.asarray(activations, dtype=np.float64)
    name = activation_name.lower()
    if values.size == 0 or np.isnan(values).any():
        return math.nan
    if name == "sigmoid":
        saturated = (values <= SATURATION_MARGIN) | (values >= 1.0 - SATURATION_MARGIN)
    elif name == "tanh":
        saturated = np.abs(values) >= 1.0 - SATURATION_MARGIN
    elif name == "relu":
        saturated = values == 0.0
    else:
        return math.nan
    return float(np.mean(saturated))


def log10_gradient_histogram(gradient: np.ndarray) -> np.ndarray:
    """Counts of log10|g| over LOG10_GRADIENT_BIN_EDGES, finite entries only.

    Equals ``np.histogram(np.clip(np.log10(np.abs(g)), lo, hi), edges)[0]`` for
    the finite entries of ``g`` (as float64): exact zeros and values below
    1e-12 land in the first bin, values of 1e2 and above in the last one.
    """
    values = np.asarray(gradient, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    with np.errstate(divide="ignore"):
        log_magnitudes = np.log10(np.abs(finite))
    clipped = np.clip(
        log_magnitudes, LOG10_GRADIENT_BIN_EDGES[0], LOG10_GRADIENT_BIN_EDGES[-1]
    )
    counts, _ = np.histogram(clipped, bins=LOG10_GRADIENT_BIN_EDGES)
    return counts


def gradient_statistics(gradient: np.ndarray) -> dict:
    """L2 norm, mean and max |g|, non-finite count and log10 histogram of one tensor.

    Norm and means are taken over every entry (so a NaN or inf entry makes
    them non-finite); the histogram counts finite entries only.
    """
    values = np.asarray(gradient, dtype=np.float64).ravel()
    magnitudes = np.abs(values)
    return {
        "l2_norm": _l2_norm(values),
        "mean_abs": float(np.mean(magnitudes)),
        "max_abs": float(np.max(magnitudes)),
        "nonfinite_count": int(values.size - np.count_nonzero(np.isfinite(values))),
        "log10_histogram": log10_gradient_histogram(values).tolist(),
    }


def _l2_norm(values: np.ndarray) -> float:
    # Not np.linalg.norm: its BLAS call contends with TensorFlow's threads and
    # was 30x slower than this inside a training process.
    flat = np.asarray(values, dtype=np.float64).ravel()
    return float(np.sqrt(np.sum(flat * flat)))


def activation_statistics(activations: np.ndarray, activation_name: str) -> dict:
    """Mean, standard deviation and saturation fraction of one layer's outputs."""
    values = np.asarray(activations, dtype=np.float64)
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "saturation_fraction": saturation_fraction(values, activation_name),
    }


def summary_metrics(record_layers: list[dict]) -> dict[str, float]:
    """The ten depth-independent summary numbers of one record's layers.

    ``record_layers`` is the ``layers`` list of a record; hidden layers carry an
    ``activation`` entry and the output layer has None. Min, median and max use
    the finite kernel-gradient norms only; a layer with any non-finite gradient
    entry is counted in ``grad_nonfinite_layers``. Undefined values are NaN.
    """
    kernel_norms = np.array([layer["kernel_gradient"]["l2_norm"] for layer in record_layers])
    hidden_norms = kernel_norms[:-1]
    saturations = np.array(
        [
            layer["activation"]["saturation_fraction"]
            for layer in record_layers
            if layer["activation"] is not None
        ],
        dtype=np.float64,
    )
    finite_norms = kernel_norms[np.isfinite(kernel_norms)]
    applicable_saturations = saturations[~np.isnan(saturations)]
    first_hidden = float(hidden_norms[0]) if hidden_norms.size else math.nan
    last_hidden = float(hidden_norms[-1]) if hidden_norms.size else math.nan
    return {
        "grad_norm_first_hidden": first_hidden,
        "grad_norm_last_hidden": last_hidden,
        "grad_norm_output": float(kernel_norms[-1]),
        "grad_norm_ratio_first_to_last": _safe_ratio(first_hidden, last_hidden),
        "grad_norm_min": _reduce_or_nan(np.min, finite_norms),
        "grad_norm_median": _reduce_or_nan(np.median, finite_norms),
        "grad_norm_max": _reduce_or_nan(np.max, finite_norms),
        "saturation_mean": _reduce_or_nan(np.mean, applicable_saturations),
        "saturation_max": _reduce_or_nan(np.max, applicable_saturations),
        "grad_nonfinite_layers": float(sum(map(_has_nonfinite_gradient, record_layers))),
    }


def _safe_ratio(numerator: float, denominator: float) -> float:
    # numpy division yields inf for x/0 and NaN for 0/0 instead of raising.
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(numerator) / np.float64(denominator))


def _reduce_or_nan(reduction: Callable, values: np.ndarray) -> float:
    return float(reduction(values)) if values.size else math.nan


def _has_nonfinite_gradient(layer_record: dict) -> bool:
    gradients = [layer_record["kernel_gradient"], layer_record["bias_gradient"]]
    return any(gradient is not None and gradient["nonfinite_count"] > 0 for gradient in gradients)


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    """The model's Dense layers in graph order (first = nearest the input)."""
    nested = [layer.name for layer in model.layers if _is_model_with_dense(layer)]
    if nested:
        raise ValueError(
            f"Dense layers inside nested models {nested} are not supported; "
            "build the model as one flat functional or Sequential model."
        )
    found = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not found:
        raise ValueError(f"Model {model.name!r} has no keras.layers.Dense layers.")
    return found


def _is_model_with_dense(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.Model) and any(
        isinstance(inner, keras.layers.Dense) for inner in layer.layers
    )


def activation_name(layer: keras.layers.Layer) -> str:
    """Lower-case name of a layer's activation function, e.g. 'sigmoid' or 'linear'."""
    function = layer.activation
    return getattr(function, "__name__", type(function).__name__).lower()


def activation_sources(
    model: keras.Model, layers: list[keras.layers.Dense]
) -> list[keras.layers.Layer]:
    """For each hidden Dense layer, the layer whose output is its activation.

    That is the Dense layer itself, unless it is linear and a
    ``keras.layers.Activation`` comes after it and before the next Dense in
    ``model.layers`` order (Dense -> normalisation -> Activation blocks).
    """
    order = {id(layer): index for index, layer in enumerate(model.layers)}
    sources = []
    for dense, next_dense in zip(layers[:-1], layers[1:]):
        between = model.layers[order[id(dense)] + 1 : order[id(next_dense)]]
        followers = [layer for layer in between if isinstance(layer, keras.layers.Activation)]
        use_follower = activation_name(dense) == "linear" and followers
        sources.append(followers[0] if use_follower else dense)
    return sources


def layer_tag(position: int, layer_count: int) -> str:
    """Zero-padded position tag, e.g. 'layer_01' (three digits from 100 layers)."""
    width = max(2, len(str(layer_count)))
    return f"layer_{position:0{width}d}"


def layer_metadata(
    layers: list[keras.layers.Dense], sources: list[keras.layers.Layer]
) -> list[dict]:
    """Position, tag, name, role, units, activation and shapes of each Dense layer.

    ``sources`` are the hidden layers' activation sources (see activation_sources);
    the output layer reports its own activation and no activation layer.
    """
    measured = list(sources) + [None]
    return [
        {
            "position": position,
            "tag": layer_tag(position, len(layers)),
            "name": layer.name,
            "role": "output" if position == len(layers) else "hidden",
            "units": int(layer.units),
            "activation": activation_name(source if source is not None else layer),
            "activation_layer": None if source is None else source.name,
            "kernel_shape": [int(size) for size in layer.kernel.shape],
            "has_bias": bool(layer.use_bias),
        }
        for position, (layer, source) in enumerate(zip(layers, measured), start=1)
    ]


def _compiled_training_loss(model: keras.Model) -> Callable:
    # compute_loss adds regularisation penalties to the compiled loss, so the
    # probe gradient is the gradient of the loss that training minimises.
    def training_loss(labels, predictions):
        return model.compute_loss(y=labels, y_pred=predictions, training=False)

    return training_loss


class _ProbeComputation:
    """One compiled forward/backward pass of a model on the probe batch."""

    def __init__(self, model: keras.Model, loss_fn: Callable | None):
        if len(model.outputs) != 1:
            raise ValueError("LayerDiagnostics supports single-output models only.")
        self.model = model
        self.layers = dense_layers(model)
        self.biased_layers = [layer for layer in self.layers if layer.use_bias]
        sources = activation_sources(model, self.layers)
        self.metadata = layer_metadata(self.layers, sources)
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        self._extractor = keras.Model(
            inputs, [source.output for source in sources] + [model.outputs[0]]
        )
        self._loss_fn = loss_fn or _compiled_training_loss(model)
        self._variables = [layer.kernel for layer in self.layers] + [
            layer.bias for layer in self.biased_layers
        ]
        self._compiled = tf.function(self._forward_backward, autograph=False)

    def _forward_backward(self, probe_x, probe_y):
        with tf.GradientTape() as tape:
            # training=False: no dropout noise, no batch-norm statistic updates.
            outputs = self._extractor(probe_x, training=False)
            loss = self._loss_fn(probe_y, outputs[-1])
        gradients = tape.gradient(
            loss, self._variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        kernel_count = len(self.layers)
        return loss, gradients[:kernel_count], gradients[kernel_count:], outputs[:-1]

    def run(self, probe_x, probe_y) -> ProbeResult:
        """Loss, gradients, activations and weights on the probe batch, as numpy."""
        loss, kernel_gradients, bias_gradients, activations = self._compiled(probe_x, probe_y)
        bias_by_layer = {id(layer): g for layer, g in zip(self.biased_layers, bias_gradients)}
        return ProbeResult(
            loss=float(loss),
            kernel_gradients=[np.asarray(gradient) for gradient in kernel_gradients],
            bias_gradients=[
                _numpy_or_none(bias_by_layer.get(id(layer))) for layer in self.layers
            ],
            activations=[np.asarray(values) for values in activations] + [None],
            kernels=[np.asarray(layer.kernel) for layer in self.layers],
            biases=[np.asarray(layer.bias) if layer.use_bias else None for layer in self.layers],
        )


@dataclass
class ProbeResult:
    """Per-Dense-layer numpy arrays of one probe pass (None where not applicable)."""

    loss: float
    kernel_gradients: list[np.ndarray]
    bias_gradients: list[np.ndarray | None]
    activations: list[np.ndarray | None]
    kernels: list[np.ndarray]
    biases: list[np.ndarray | None]


def _numpy_or_none(tensor) -> np.ndarray | None:
    return None if tensor is None else np.asarray(tensor)


def histogram_buckets(values: np.ndarray, bucket_count: int = 30) -> np.ndarray:
    """TensorBoard histogram rows (left edge, right edge, count) of the finite values.

    ``bucket_count`` equal-width buckets from the minimum to the maximum, the
    last one closed, as ``np.histogram(values, bucket_count)`` makes them.
    """
    flat = np.ravel(values)
    finite_mask = np.isfinite(flat)
    finite = flat if finite_mask.all() else flat[finite_mask]
    if finite.size == 0:
        return np.zeros((bucket_count, 3))
    low, high = float(finite.min()), float(finite.max())
    if high == low:
        low, high = low - 0.5, high + 0.5
    # Direct index arithmetic: np.histogram took twice as long on the large
    # activation arrays, and this runs for every layer every recorded epoch.
    indices = ((finite - low) * (bucket_count / (high - low))).astype(np.int64)
    counts = np.bincount(np.minimum(indices, bucket_count - 1), minlength=bucket_count)
    edges = np.linspace(low, high, bucket_count + 1)
    return np.stack([edges[:-1], edges[1:], counts], axis=1)


class _TensorBoardWriter:
    """Histogram and scalar summaries, one step per recorded epoch."""

    def __init__(self, directory: Path, metadata: list[dict]):
        self.writer = tf.summary.create_file_writer(str(directory))
        self._tags = [meta["tag"] for meta in metadata]
        # The plugin metadata tf.summary.histogram writes, so TensorBoard's
        # Histograms tab shows these summaries.
        self._histogram_metadata = tf.compat.v1.SummaryMetadata.FromString(
            histogram_plugin_metadata.create_summary_metadata(
                display_name=None, description=None
            ).SerializeToString()
        )

    def _histogram_values(self, probe: ProbeResult) -> dict[str, np.ndarray]:
        histograms = {}
        for tag, kernel_gradient, bias_gradient, activations, kernel, bias in zip(
            self._tags, probe.kernel_gradients, probe.bias_gradients,
            probe.activations, probe.kernels, probe.biases,
        ):
            histograms[f"gradients/{tag}/kernel"] = kernel_gradient
            histograms[f"weights/{tag}/kernel"] = kernel
            if bias is not None:
                histograms[f"gradients/{tag}/bias"] = bias_gradient
                histograms[f"weights/{tag}/bias"] = bias
            if activations is not None:
                histograms[f"activations/{tag}"] = activations
        return histograms

    def write(self, epoch: int, probe: ProbeResult, summary: dict[str, float]) -> None:
        # One serialised Summary with every histogram, bucketed in numpy:
        # tf.summary.histogram took 0.4 s per epoch eagerly for depth 37, or
        # 20 s to trace once inside tf.function.
        histograms = tf.compat.v1.Summary()
        for tag, values in self._histogram_values(probe).items():
            histograms.value.add(
                tag=tag,
                metadata=self._histogram_metadata,
                tensor=tf.make_tensor_proto(histogram_buckets(values)),
            )
        with self.writer.as_default(step=epoch):
            tf.summary.experimental.write_raw_pb(histograms.SerializeToString())
            for key, value in summary.items():
                tf.summary.scalar(f"summary/{key}", value)


def _layer_records(probe: ProbeResult, metadata: list[dict]) -> list[dict]:
    return [
        {
            "position": meta["position"],
            "kernel_gradient": gradient_statistics(kernel_gradient),
            "bias_gradient": None if bias_gradient is None else gradient_statistics(bias_gradient),
            "kernel_l2_norm": _l2_norm(kernel),
            "activation": None
            if activations is None
            else activation_statistics(activations, meta["activation"]),
        }
        for meta, kernel_gradient, bias_gradient, activations, kernel in zip(
            metadata, probe.kernel_gradients, probe.bias_gradients, probe.activations, probe.kernels
        )
    ]


def _json_safe(value):
    # JSON has no NaN/inf; null keeps the file strict (nonfinite_count and
    # grad_nonfinite_layers still say what happened).
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _heat_map(matrix: np.ndarray, epochs: list[int], title: str, label: str, **limits) -> Figure:
    """Layer x recorded-epoch image of ``matrix`` (rows = layers, columns = records)."""
    width, height = max(4.0, 1.0 + 0.25 * len(epochs)), max(3.0, 1.5 + 0.12 * len(matrix))
    figure = Figure(figsize=(width, height))
    axes = figure.add_subplot()
    image = axes.imshow(
        np.ma.masked_invalid(matrix),
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        extent=(-0.5, len(epochs) - 0.5, 0.5, len(matrix) + 0.5),
        cmap=colormaps["viridis"].with_extremes(bad="lightgrey"),
        **limits,
    )
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.xaxis.set_major_formatter(
        FuncFormatter(lambda index, _: str(epochs[int(index)]) if 0 <= index < len(epochs) else "")
    )
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch (0-based)")
    axes.set_ylabel("Dense layer (1 = nearest input)")
    axes.set_title(f"{title}\n(grey: non-finite or not applicable)", fontsize=9)
    figure.colorbar(image, ax=axes, label=label)
    figure.tight_layout()
    return figure


class LayerDiagnostics(keras.callbacks.Callback):
    """Keras callback logging per-layer gradient and activation evidence.

    ``probe_x``/``probe_y``: fixed probe batch (labels as the compiled loss
    expects them). ``loss_fn(labels, predictions)``: defaults to the model's own
    ``compute_loss`` (compiled loss plus regularisation). ``records`` holds every
    record in memory, with NaN/inf where the data file has null.
    """

    def __init__(
        self,
        probe_x,
        probe_y,
        log_dir,
        every_n_epochs: int = 1,
        every_n_steps: int | None = None,
        log_to_mlflow: bool = True,
        loss_fn: Callable | None = None,
    ):
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}.")
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be None or >= 1, got {every_n_steps}.")
        self.probe_x = tf.nest.map_structure(tf.convert_to_tensor, probe_x)
        self.probe_y = tf.convert_to_tensor(probe_y)
        self.log_dir = Path(log_dir)
        self.every_n_epochs = every_n_epochs
        self.every_n_steps = every_n_steps
        self.log_to_mlflow = log_to_mlflow
        self.loss_fn = loss_fn
        self.records: list[dict] = []
        # Each record is serialised once; the data file is these strings joined.
        self._serialised_records: list[str] = []
        self._probe: _ProbeComputation | None = None
        self._tensorboard: _TensorBoardWriter | None = None
        self._epoch = 0
        self._steps_before_epoch = 0
        self._steps_done = 0

    @property
    def layers(self) -> list[dict]:
        """Metadata of the Dense layers (empty until the first record)."""
        return self._probe.metadata if self._probe is not None else []

    @property
    def data_path(self) -> Path:
        return self.log_dir / DIAGNOSTICS_FILENAME

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self._steps_before_epoch = self._steps_done
        last_planned = epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every_n_epochs == 0 or last_planned or self.model.stop_training:
            self._record(kind="epoch", epoch=epoch)

    def on_train_batch_end(self, batch, logs=None):
        previous = self._steps_done
        self._steps_done = self._steps_before_epoch + batch + 1
        if self.every_n_steps is None:
            return
        # Keras reports the last batch index of a step, which jumps by
        # steps_per_execution, so count crossings rather than exact multiples.
        if self._steps_done // self.every_n_steps > previous // self.every_n_steps:
            self._record(kind="step", epoch=self._epoch)

    def on_train_end(self, logs=None):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self._tensorboard is not None:
            self._tensorboard.writer.flush()
        self._write_data_file()
        figure_paths = self._write_figures()
        if self.log_to_mlflow and mlflow.active_run() is not None:
            self._log_artifacts(figure_paths)

    def _ensure_probe(self) -> _ProbeComputation:
        if self._probe is not None and self._probe.model is not self.model:
            # Records of two models cannot share one data file or heat map.
            raise ValueError("A LayerDiagnostics instance serves one model; create a new one.")
        if self._probe is None:
            self._probe = _ProbeComputation(self.model, self.loss_fn)
            self._tensorboard = _TensorBoardWriter(
                self.log_dir / TENSORBOARD_SUBDIR, self._probe.metadata
            )
        return self._probe

    def _record(self, kind: str, epoch: int) -> None:
        probe = self._ensure_probe()
        result = probe.run(self.probe_x, self.probe_y)
        layer_records = _layer_records(result, probe.metadata)
        record = {
            "kind": kind,
            "epoch": int(epoch),
            "step": int(self._steps_done),
            "probe_loss": result.loss,
            "layers": layer_records,
            "summary": summary_metrics(layer_records),
        }
        self.records.append(record)
        self._serialised_records.append(json.dumps(_json_safe(record), allow_nan=False))
        if kind == "epoch":
            self._tensorboard.write(record["epoch"], result, record["summary"])
            # Rewritten every epoch so a crash mid-run still leaves the evidence.
            self._write_data_file()
            if self.log_to_mlflow and mlflow.active_run() is not None:
                mlflow.log_metrics(record["summary"], step=record["epoch"])

    def _write_data_file(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        document = {
            "format": "layer_diagnostics",
            "format_version": FORMAT_VERSION,
            "log10_gradient_bin_edges": LOG10_GRADIENT_BIN_EDGES.tolist(),
            "saturation_margin": SATURATION_MARGIN,
            "probe_examples": int(self.probe_y.shape[0]),
            "summary_metric_keys": list(SUMMARY_METRIC_KEYS),
            "layers": self.layers,
        }
        header = json.dumps(document, allow_nan=False)[:-1]
        records = ", ".join(self._serialised_records)
        temporary = self.data_path.with_suffix(".json.tmp")
        temporary.write_text(f'{header}, "records": [{records}]}}')
        os.replace(temporary, self.data_path)

    def _epoch_matrices(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        epoch_records = [record for record in self.records if record["kind"] == "epoch"]
        epochs = [record["epoch"] for record in epoch_records]
        norms = np.array(
            [
                [layer["kernel_gradient"]["l2_norm"] for layer in record["layers"]]
                for record in epoch_records
            ]
        ).T
        saturation = np.array(
            [
                [layer["activation"]["saturation_fraction"] for layer in record["layers"][:-1]]
                for record in epoch_records
            ],
            dtype=np.float64,
        ).T
        return epochs, norms, saturation

    def _write_figures(self) -> list[Path]:
        epochs, norms, saturation = self._epoch_matrices()
        if not epochs:
            return []
        with np.errstate(divide="ignore", invalid="ignore"):
            log_norms = np.log10(norms)
        figures = {
            GRADIENT_NORM_FIGURE: _heat_map(
                log_norms, epochs, "Kernel gradient L2 norm on the probe batch", "log10 norm"
            )
        }
        if saturation.size:
            figures[SATURATION_FIGURE] = _heat_map(
                saturation, epochs, "Saturation fraction of hidden layers", "fraction",
                vmin=0.0, vmax=1.0,
            )
        paths = []
        for filename, figure in figures.items():
            path = self.log_dir / filename
            figure.savefig(path, dpi=100)
            paths.append(path)
        return paths

    def _log_artifacts(self, figure_paths: list[Path]) -> None:
        mlflow.log_artifact(str(self.data_path), artifact_path=MLFLOW_ARTIFACT_PATH)
        for path in figure_paths:
            mlflow.log_artifact(str(path), artifact_path=MLFLOW_ARTIFACT_PATH)
        tensorboard_dir = self.log_dir / TENSORBOARD_SUBDIR
        if tensorboard_dir.is_dir():
            mlflow.log_artifacts(
                str(tensorboard_dir), artifact_path=f"{MLFLOW_ARTIFACT_PATH}/{TENSORBOARD_SUBDIR}"
            )
