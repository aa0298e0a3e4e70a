"""One MLP builder for every depth and architecture choice.

Depth is data: `build_mlp(input_dim, hidden_widths, num_classes, ...)` stacks one Dense layer
per entry of `hidden_widths` (layer 1 nearest the input) and a softmax output layer.
Activation, initialiser, normalisation and residual connections are arguments, never copies
of this code. `parameter_count` is the closed-form count the tests check Keras against.

    model = build_mlp(64, [32] * 5, 10, activation="relu", kernel_initializer="he_normal")
"""

from __future__ import annotations

from typing import Sequence

import keras

NORMALIZATION_PARAMS_PER_UNIT = {"none": 0, "batch": 4, "layer": 2}


def hidden_widths(depth: int, width: int) -> list[int]:
    return [width] * depth


def build_mlp(input_dim: int, hidden_widths: Sequence[int], num_classes: int, *,
              activation: str = "sigmoid", kernel_initializer: str = "glorot_uniform",
              normalization: str = "none", residual: bool = False,
              seed: int | None = None, name: str | None = None) -> keras.Model:
    """A functional-API MLP; residual skips apply where a layer keeps its input's width."""
    inputs = keras.Input(shape=(input_dim,), name="features")
    hidden = inputs
    for position, units in enumerate(hidden_widths, start=1):
        block_input = hidden
        hidden = _hidden_block(hidden, units, position, activation, kernel_initializer,
                               normalization, seed)
        if residual and block_input.shape[-1] == units and position > 1:
            hidden = keras.layers.Add(name=f"skip_{position:02d}")([block_input, hidden])
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", name="output",
        kernel_initializer=_initializer(kernel_initializer, seed, len(hidden_widths) + 1))(hidden)
    depth = len(hidden_widths)
    return keras.Model(inputs, outputs, name=name or f"mlp_depth_{depth}")


def _hidden_block(inputs, units: int, position: int, activation: str, initializer: str,
                  normalization: str, seed: int | None):
    # With normalisation the activation must come after it, so the Dense stays linear.
    dense_activation = activation if normalization == "none" else "linear"
    hidden = keras.layers.Dense(units, activation=dense_activation, name=f"hidden_{position:02d}",
                                kernel_initializer=_initializer(initializer, seed, position))(inputs)
    if normalization == "none":
        return hidden
    norm_layer = {"batch": keras.layers.BatchNormalization,
                  "layer": keras.layers.LayerNormalization}[normalization]
    hidden = norm_layer(name=f"{normalization}_norm_{position:02d}")(hidden)
    return keras.layers.Activation(activation, name=f"activation_{position:02d}")(hidden)


def _initializer(name: str, seed: int | None, position: int) -> keras.initializers.Initializer:
    # A distinct, derived seed per layer: equal seeds would give every layer the same weights.
    layer_seed = None if seed is None else seed * 1009 + position
    return keras.initializers.get({"class_name": name, "config": {"seed": layer_seed}})


def parameter_count(input_dim: int, hidden_widths: Sequence[int], num_classes: int,
                    normalization: str = "none") -> int:
    """Weights and biases: sum of (fan_in * units + units) per Dense layer, plus norm params."""
    widths = [input_dim, *hidden_widths, num_classes]
    dense = sum(fan_in * units + units for fan_in, units in zip(widths, widths[1:]))
    norm = NORMALIZATION_PARAMS_PER_UNIT[normalization] * sum(hidden_widths)
    return dense + norm
