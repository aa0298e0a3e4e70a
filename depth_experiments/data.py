"""Data sets as flat, scaled feature vectors with a deterministic train/validation/test split.

`load_splits(dataset, validation_split, seed)` returns a `Splits` with float32 features in
[0, 1] and integer labels. Keras' loaders (`fashion_mnist`, `mnist`, `cifar10`) read and
download into `$KERAS_HOME/datasets` (default `~/.keras`); `digits` is scikit-learn's bundled
8x8 set and needs no download. The test split is the data set's own (digits: a fixed,
stratified 20%, independent of the seed); the validation split is drawn from the training
data with `seed`. Nothing is written except by Keras' own download cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

CLASS_NAMES = {
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "mnist": tuple(str(digit) for digit in range(10)),
    "digits": tuple(str(digit) for digit in range(10)),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                "ship", "truck"),
}
IMAGE_SHAPES = {"fashion_mnist": (28, 28), "mnist": (28, 28), "digits": (8, 8),
                "cifar10": (32, 32, 3)}
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0


class DataUnavailableError(RuntimeError):
    """The data set is neither cached nor downloadable; the message says how to fix it."""


@dataclass(frozen=True)
class Splits:
    dataset: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return IMAGE_SHAPES[self.dataset]

    def chance_accuracy(self) -> float:
        """Accuracy of always predicting the most frequent test class."""
        return float(np.bincount(self.y_test).max() / len(self.y_test))

    def describe(self) -> dict[str, int]:
        return {"train_samples": len(self.y_train), "val_samples": len(self.y_val),
                "test_samples": len(self.y_test), "input_dim": self.input_dim,
                "num_classes": self.num_classes}


def load_splits(dataset: str, validation_split: float, seed: int) -> Splits:
    (x_train, y_train), (x_test, y_test) = _load_raw(dataset)
    x_train, x_test = _flatten_scaled(x_train, dataset), _flatten_scaled(x_test, dataset)
    y_train, y_test = y_train.reshape(-1).astype("int64"), y_test.reshape(-1).astype("int64")
    order = np.random.default_rng(seed).permutation(len(y_train))
    n_val = max(1, int(round(validation_split * len(y_train))))
    val_index, train_index = order[:n_val], order[n_val:]
    return Splits(dataset, x_train[train_index], y_train[train_index], x_train[val_index],
                  y_train[val_index], x_test, y_test, CLASS_NAMES[dataset])


def _flatten_scaled(images: np.ndarray, dataset: str) -> np.ndarray:
    scale = 16.0 if dataset == "digits" else 255.0
    return (images.reshape(len(images), -1).astype("float32") / scale)


def _load_raw(dataset: str):
    if dataset == "digits":
        return _load_digits()
    return _load_keras(dataset)


def _load_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.images, bunch.target, test_size=DIGITS_TEST_FRACTION,
        random_state=DIGITS_TEST_SEED, stratify=bunch.target)
    return (x_train, y_train), (x_test, y_test)


def _load_keras(dataset: str):
    import keras

    loader = getattr(keras.datasets, dataset)
    try:
        return loader.load_data()
    # Keras' get_file raises a bare Exception ("URL fetch failure ...") when offline;
    # we re-raise it with the fix, keeping the original as the cause.
    except Exception as error:
        raise DataUnavailableError(_unavailable_message(dataset, error)) from error


def _unavailable_message(dataset: str, error: Exception) -> str:
    from keras.src.backend.config import keras_home

    cache = os.path.join(keras_home(), "datasets")
    return (f"dataset: cannot load {dataset!r}: it is not in the Keras cache {cache} and "
            f"downloading failed ({str(error).splitlines()[0][:120]}). Connect to the "
            f"internet once, or set KERAS_HOME to a folder holding a Keras cache "
            f"(datasets/...), or use -P dataset=digits, which needs no download.")
