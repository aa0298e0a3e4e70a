"""The MLP builder: one Dense layer per width, parameter count equal to the formula."""

import keras
import numpy as np
import pytest

from depth_experiments.models import build_mlp, hidden_widths, parameter_count


def dense_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


@pytest.mark.parametrize("depth", [1, 5, 37])
def test_depth_is_the_number_of_hidden_dense_layers(depth):
    model = build_mlp(64, hidden_widths(depth, 16), 10, seed=0)
    assert len(dense_layers(model)) == depth + 1
    assert [layer.units for layer in dense_layers(model)] == [16] * depth + [10]


@pytest.mark.parametrize("widths, normalization", [
    ([3], "none"), ([32, 16, 8], "none"), ([16] * 9, "batch"), ([16] * 4, "layer"),
])
def test_parameter_count_matches_the_closed_form(widths, normalization):
    model = build_mlp(64, widths, 10, normalization=normalization, seed=0)
    assert model.count_params() == parameter_count(64, widths, 10, normalization)


def test_parameter_count_by_hand_for_one_hidden_layer():
    # 784*128 + 128 weights and biases into the hidden layer, 128*10 + 10 out of it.
    assert parameter_count(784, [128], 10) == 784 * 128 + 128 + 128 * 10 + 10 == 101_770


def test_residual_blocks_add_skips_but_no_parameters():
    plain = build_mlp(8, [16] * 4, 3, seed=0)
    residual = build_mlp(8, [16] * 4, 3, residual=True, seed=0)
    skips = [layer for layer in residual.layers if isinstance(layer, keras.layers.Add)]
    assert len(skips) == 3
    assert residual.count_params() == plain.count_params()


def test_architecture_choices_reach_the_layers():
    model = build_mlp(8, [4, 4], 3, activation="tanh", kernel_initializer="he_normal",
                      normalization="batch", seed=0)
    activations = [layer for layer in model.layers if isinstance(layer, keras.layers.Activation)]
    assert [layer.activation.__name__ for layer in activations] == ["tanh", "tanh"]
    assert all(layer.activation.__name__ == "linear" for layer in dense_layers(model)[:-1])
    assert type(dense_layers(model)[0].kernel_initializer).__name__ == "HeNormal"


def test_outputs_are_probability_distributions_and_seeded_weights_repeat():
    inputs = np.random.default_rng(0).random((5, 8), dtype="float32")
    first, second = build_mlp(8, [4] * 3, 3, seed=7), build_mlp(8, [4] * 3, 3, seed=7)
    probabilities = first.predict(inputs, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probabilities, second.predict(inputs, verbose=0))
    layer_kernels = [layer.get_weights()[0] for layer in dense_layers(first)[1:3]]
    assert not np.array_equal(*layer_kernels)
