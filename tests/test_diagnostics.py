"""Tests for depth_experiments.diagnostics on tiny models (seconds, CPU only).

Checks the recorded numbers against direct computations (GradientTape,
np.histogram, hand-made activations), the TensorBoard event files, the data
file schema and the MLflow metric keys (through conftest's ``tracking_store``).
Run: ``pytest tests/test_diagnostics.py``.
"""

import json
import math

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from depth_experiments.diagnostics import (
    DIAGNOSTICS_FILENAME,
    LOG10_GRADIENT_BIN_EDGES,
    SUMMARY_METRIC_KEYS,
    LayerDiagnostics,
    gradient_statistics,
    histogram_buckets,
    saturation_fraction,
)

INPUTS, CLASSES, EXAMPLES, PROBE_SIZE = 4, 3, 64, 16


def tiny_mlp(depth: int, activation: str = "sigmoid", width: int = 3) -> keras.Model:
    keras.utils.set_random_seed(depth)
    inputs = keras.Input(shape=(INPUTS,))
    hidden = inputs
    for _ in range(depth):
        hidden = keras.layers.Dense(width, activation=activation)(hidden)
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def random_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(EXAMPLES, INPUTS)).astype("float32")
    labels = rng.integers(0, CLASSES, size=EXAMPLES)
    return features, labels


def fit_with_diagnostics(model, log_dir, epochs=2, **callback_options) -> LayerDiagnostics:
    features, labels = random_data()
    callback = LayerDiagnostics(
        features[:PROBE_SIZE], labels[:PROBE_SIZE], log_dir, **callback_options
    )
    model.fit(features, labels, epochs=epochs, batch_size=16, verbose=0, callbacks=[callback])
    return callback


def numpy_log10_histogram(values: np.ndarray) -> np.ndarray:
    finite = np.asarray(values, dtype=np.float64).ravel()
    finite = finite[np.isfinite(finite)]
    with np.errstate(divide="ignore"):
        log_magnitudes = np.log10(np.abs(finite))
    lowest, highest = LOG10_GRADIENT_BIN_EDGES[0], LOG10_GRADIENT_BIN_EDGES[-1]
    clipped = np.clip(log_magnitudes, lowest, highest)
    return np.histogram(clipped, bins=LOG10_GRADIENT_BIN_EDGES)[0]


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory):
    """A depth-2 model fitted for two epochs; log_to_mlflow is on but no run is active."""
    log_dir = tmp_path_factory.mktemp("diagnostics")
    model = tiny_mlp(depth=2)
    callback = fit_with_diagnostics(model, log_dir)
    return model, callback, log_dir


@pytest.mark.parametrize(
    ("activation", "values", "expected"),
    [
        ("sigmoid", [0.0, 0.03, 0.5, 0.7, 0.97, 1.0], 4 / 6),
        ("tanh", [-1.0, -0.97, -0.5, 0.0, 0.2, 0.5, 0.99, 1.0], 4 / 8),
        ("relu", [[0.0, 0.0, 1.5], [0.0, 2.0, 0.1]], 3 / 6),
        ("ReLU", [[0.0, 1.0], [3.0, 4.0]], 1 / 4),
    ],
)
def test_saturation_fraction_on_hand_made_activations(activation, values, expected):
    assert saturation_fraction(np.array(values), activation) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("activation", "values"),
    [("linear", [0.0, 1.0]), ("softmax", [0.0, 1.0]), ("sigmoid", [0.5, np.nan]), ("relu", [])],
)
def test_saturation_fraction_is_nan_when_not_applicable(activation, values):
    assert math.isnan(saturation_fraction(np.array(values), activation))


def test_gradient_statistics_bins_zeros_and_out_of_range_values_into_end_bins():
    gradient = np.array(
        [0.0, 1e-15, -3e-4, 2e-4, 0.5, -7.0, 250.0, np.nan, np.inf], dtype=np.float32
    )
    statistics = gradient_statistics(gradient)
    counts = np.array(statistics["log10_histogram"])
    np.testing.assert_array_equal(counts, numpy_log10_histogram(gradient))
    assert len(counts) == len(LOG10_GRADIENT_BIN_EDGES) - 1
    assert counts[0] == 2 and counts[-1] == 1
    assert counts.sum() == 7 and statistics["nonfinite_count"] == 2
    assert math.isnan(statistics["l2_norm"])


def test_tensorboard_buckets_match_numpy_histogram_of_finite_values():
    values = np.random.default_rng(0).normal(size=(50, 20)).astype("float32")
    values[0, :3] = [np.nan, np.inf, -np.inf]
    finite = values[np.isfinite(values)].astype(np.float64)
    counts, edges = np.histogram(finite, bins=30)
    buckets = histogram_buckets(values)
    np.testing.assert_array_equal(buckets[:, 2], counts)
    np.testing.assert_allclose(buckets[:, 0], edges[:-1], rtol=1e-6)
    np.testing.assert_allclose(buckets[:, 1], edges[1:], rtol=1e-6)


def test_recorded_gradients_match_direct_gradient_tape(two_epoch_run):
    model, callback, _ = two_epoch_run
    features, labels = random_data()
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    with tf.GradientTape() as tape:
        predictions = model(features[:PROBE_SIZE], training=False)
        loss = keras.losses.SparseCategoricalCrossentropy()(labels[:PROBE_SIZE], predictions)
    kernel_gradients, bias_gradients = tape.gradient(
        loss, ([layer.kernel for layer in dense], [layer.bias for layer in dense])
    )
    record = callback.records[-1]
    assert record["probe_loss"] == pytest.approx(float(loss), rel=1e-6)
    for layer_record, kernel, bias in zip(record["layers"], kernel_gradients, bias_gradients):
        for name, direct in (("kernel_gradient", kernel), ("bias_gradient", bias)):
            recorded = layer_record[name]
            direct = direct.numpy().astype(np.float64)
            np.testing.assert_allclose(recorded["l2_norm"], np.linalg.norm(direct), rtol=1e-5)
            np.testing.assert_allclose(recorded["mean_abs"], np.mean(np.abs(direct)), rtol=1e-5)
            np.testing.assert_array_equal(
                recorded["log10_histogram"], numpy_log10_histogram(direct)
            )


def test_recorded_activations_match_layer_outputs(two_epoch_run):
    model, callback, _ = two_epoch_run
    features, _ = random_data()
    hidden = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][:-1]
    hidden_model = keras.Model(model.inputs[0], [layer.output for layer in hidden])
    outputs = hidden_model(features[:PROBE_SIZE])
    for layer_record, output in zip(callback.records[-1]["layers"], outputs):
        output = np.asarray(output, dtype=np.float64)
        activation = layer_record["activation"]
        np.testing.assert_allclose(activation["mean"], output.mean(), rtol=1e-5)
        np.testing.assert_allclose(activation["std"], output.std(), rtol=1e-5)
        assert activation["saturation_fraction"] == saturation_fraction(output, "sigmoid")
    assert callback.records[-1]["layers"][-1]["activation"] is None


def test_tensorboard_has_one_histogram_step_per_epoch_for_every_layer(two_epoch_run):
    _, _, log_dir = two_epoch_run
    accumulator = EventAccumulator(str(log_dir / "tensorboard"), size_guidance={"tensors": 0})
    accumulator.Reload()
    # TF2 summaries are tensor events; the plugin name makes TensorBoard draw histograms.
    tags = accumulator.Tags()["tensors"]
    for position in (1, 2, 3):
        for kind in ("gradients", "weights"):
            tag = f"{kind}/layer_{position:02d}/kernel"
            assert tag in tags
            assert accumulator.SummaryMetadata(tag).plugin_data.plugin_name == "histograms"
            assert [event.step for event in accumulator.Tensors(tag)] == [0, 1]
    assert "gradients/layer_04/kernel" not in tags
    assert {"gradients/layer_03/bias", "activations/layer_01", "activations/layer_02"} <= set(tags)
    assert "activations/layer_03" not in tags
    assert {f"summary/{key}" for key in SUMMARY_METRIC_KEYS} <= set(tags)


def test_data_file_has_documented_shapes(two_epoch_run):
    _, callback, log_dir = two_epoch_run
    document = json.loads((log_dir / DIAGNOSTICS_FILENAME).read_text())
    bins = len(document["log10_gradient_bin_edges"]) - 1
    assert document["format_version"] == 1 and document["probe_examples"] == PROBE_SIZE
    assert [layer["role"] for layer in document["layers"]] == ["hidden", "hidden", "output"]
    assert [layer["kernel_shape"] for layer in document["layers"]] == [[4, 3], [3, 3], [3, 3]]
    assert [record["epoch"] for record in document["records"]] == [0, 1]
    assert [record["step"] for record in document["records"]] == [4, 8]
    for record in document["records"]:
        assert set(record["summary"]) == set(SUMMARY_METRIC_KEYS)
        assert [layer["position"] for layer in record["layers"]] == [1, 2, 3]
        for layer, meta in zip(record["layers"], document["layers"]):
            kernel_size = meta["kernel_shape"][0] * meta["kernel_shape"][1]
            assert len(layer["kernel_gradient"]["log10_histogram"]) == bins
            assert sum(layer["kernel_gradient"]["log10_histogram"]) == kernel_size
            assert sum(layer["bias_gradient"]["log10_histogram"]) == meta["units"]
    assert document["records"] == callback.records
    assert (log_dir / "gradient_norms.png").stat().st_size > 0
    assert (log_dir / "saturation.png").stat().st_size > 0


def test_cadence_of_epoch_and_step_records_on_a_sequential_model(tmp_path):
    output_layer = keras.layers.Dense(CLASSES, activation="softmax")
    model = keras.Sequential([keras.layers.Dense(3, activation="relu"), output_layer])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    callback = fit_with_diagnostics(model, tmp_path, epochs=3, every_n_epochs=2, every_n_steps=3)
    # 4 batches per epoch; epoch 2 is recorded because it is the last planned epoch.
    kinds = [(record["kind"], record["epoch"], record["step"]) for record in callback.records]
    assert kinds == [
        ("step", 0, 3), ("step", 1, 6), ("epoch", 1, 8),
        ("step", 2, 9), ("step", 2, 12), ("epoch", 2, 12),
    ]
    accumulator = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"tensors": 0})
    accumulator.Reload()
    assert [event.step for event in accumulator.Tensors("gradients/layer_01/kernel")] == [1, 2]


def test_activation_after_normalisation_is_measured_at_the_activation_layer(tmp_path):
    inputs = keras.Input(shape=(INPUTS,))
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    hidden = keras.layers.BatchNormalization()(hidden)
    hidden = keras.layers.Activation("tanh", name="squash")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(hidden))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    callback = fit_with_diagnostics(model, tmp_path, epochs=1)
    assert callback.layers[0]["activation"] == "tanh"
    assert callback.layers[0]["activation_layer"] == "squash"
    assert not math.isnan(callback.records[0]["layers"][0]["activation"]["saturation_fraction"])


def test_mlflow_metric_keys_do_not_depend_on_depth(tracking_store, tmp_path):
    client, _ = tracking_store
    metric_keys = {}
    for depth in (1, 5):
        with mlflow.start_run() as run:
            fit_with_diagnostics(tiny_mlp(depth), tmp_path / f"depth_{depth}")
        metric_keys[depth] = set(client.get_run(run.info.run_id).data.metrics)
        history = client.get_metric_history(run.info.run_id, "grad_norm_min")
        assert sorted(metric.step for metric in history) == [0, 1]
    assert metric_keys[1] == metric_keys[5] == set(SUMMARY_METRIC_KEYS)


def test_nonfinite_run_still_logs_metrics_and_artifacts(tracking_store, tmp_path):
    client, _ = tracking_store
    model = tiny_mlp(depth=2)
    first_kernel = model.layers[1].kernel
    first_kernel.assign(np.full(first_kernel.shape, np.nan, dtype="float32"))
    features, labels = random_data()
    log_dir = tmp_path / "diagnostics"
    callback = LayerDiagnostics(features[:PROBE_SIZE], labels[:PROBE_SIZE], log_dir)
    with mlflow.start_run() as run:
        model.fit(features, labels, epochs=3, batch_size=16, verbose=0,
                  callbacks=[keras.callbacks.TerminateOnNaN(), callback])
    assert [record["epoch"] for record in callback.records] == [0]
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["grad_nonfinite_layers"] == 3.0
    assert math.isnan(metrics["grad_norm_output"])
    document = json.loads((log_dir / DIAGNOSTICS_FILENAME).read_text())
    assert document["records"][0]["layers"][0]["kernel_gradient"]["l2_norm"] is None
    logged = {artifact.path for artifact in client.list_artifacts(run.info.run_id, "diagnostics")}
    assert {
        f"diagnostics/{DIAGNOSTICS_FILENAME}",
        "diagnostics/gradient_norms.png",
        "diagnostics/saturation.png",
        "diagnostics/tensorboard",
    } <= logged
    assert client.list_artifacts(run.info.run_id, "diagnostics/tensorboard")


def test_one_callback_refuses_a_second_model(tmp_path):
    callback = fit_with_diagnostics(tiny_mlp(depth=1), tmp_path, epochs=1)
    features, labels = random_data()
    with pytest.raises(ValueError, match="one model"):
        tiny_mlp(depth=2).fit(features, labels, epochs=1, verbose=0, callbacks=[callback])
