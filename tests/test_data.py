"""Data: deterministic splits, Keras' cache honoured, and a useful message when offline."""

import subprocess
import sys

import numpy as np
import pytest

from depth_experiments.data import DataUnavailableError, load_splits
from tests.conftest import PROJECT_ROOT, SHARED_KERAS_HOME, subprocess_env


def test_digits_split_is_deterministic_and_disjoint(digits_splits):
    again = load_splits("digits", validation_split=0.1, seed=42)
    np.testing.assert_array_equal(digits_splits.x_val, again.x_val)
    np.testing.assert_array_equal(digits_splits.y_train, again.y_train)
    assert digits_splits.describe() == {"train_samples": 1293, "val_samples": 144,
                                        "test_samples": 360, "input_dim": 64, "num_classes": 10}
    assert 0.0 <= digits_splits.x_train.min() and digits_splits.x_train.max() <= 1.0
    train_rows = {row.tobytes() for row in digits_splits.x_train}
    assert not any(row.tobytes() in train_rows for row in digits_splits.x_test[:50])


def test_the_seed_moves_the_validation_split_but_not_the_test_split(digits_splits):
    other = load_splits("digits", validation_split=0.1, seed=7)
    assert not np.array_equal(digits_splits.y_val, other.y_val)
    np.testing.assert_array_equal(digits_splits.x_test, other.x_test)


def test_offline_without_cache_says_how_to_fix_it(monkeypatch):
    import keras.src.datasets.fashion_mnist as fashion_mnist

    def offline_get_file(*args, **kwargs):
        # What Keras raises when the download cannot reach the server.
        raise Exception("URL fetch failure on https://example.invalid/x.gz: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(fashion_mnist, "get_file", offline_get_file)
    with pytest.raises(DataUnavailableError) as error:
        load_splits("fashion_mnist", 0.1, 0)
    message = str(error.value)
    assert "KERAS_HOME" in message and "dataset=digits" in message and "\n" not in message


@pytest.mark.skipif(not SHARED_KERAS_HOME.is_dir(), reason="no offline Keras cache beside the project")
def test_fashion_mnist_loads_from_the_keras_home_cache(tmp_path):
    script = ("from depth_experiments.data import load_splits; "
              "s = load_splits('fashion_mnist', 0.1, 0); print(s.describe(), s.class_names[9])")
    env = subprocess_env(f"sqlite:///{tmp_path}/unused.db")
    env["KERAS_HOME"] = str(SHARED_KERAS_HOME)
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ("{'train_samples': 54000, 'val_samples': 6000, 'test_samples': 10000, "
            "'input_dim': 784, 'num_classes': 10} Ankle boot") in done.stdout
