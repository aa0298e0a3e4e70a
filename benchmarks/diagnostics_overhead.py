"""Per-epoch cost of the LayerDiagnostics callback on a deep sigmoid MLP.

Takes: ``--dataset fashion_mnist`` (default; Keras's loader, so set KERAS_HOME to
a folder holding ``datasets/fashion-mnist``, e.g. the offline cache
``/work/shared/data/keras``) or ``--dataset digits`` (scikit-learn, for a quick
run), plus the model and timing options listed by ``--help``.
Trains two identically initialised models (37 hidden Dense layers of 128 units,
sigmoid, Adam, batch 128 by default), one with the callback and one without,
``--epochs-per-fit`` epochs per ``fit`` call (default 1), alternating between the
two so machine-load drift hits both alike.
Writes: only into a temporary folder (event files, data file, a throwaway SQLite
MLflow store, so metric logging is part of the cost). Prints the per-epoch
seconds of both, the overhead in percent, and the time spent inside the
callback's own epoch hook (a direct measure that load noise barely touches).

Run: KERAS_HOME=/work/shared/data/keras python benchmarks/diagnostics_overhead.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import keras
import mlflow
import numpy as np

from depth_experiments.diagnostics import LayerDiagnostics


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["fashion_mnist", "digits"], default="fashion_mnist")
    parser.add_argument("--depth", type=int, default=37, help="hidden Dense layers")
    parser.add_argument("--width", type=int, default=128, help="units per hidden layer")
    parser.add_argument("--activation", default="sigmoid")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--probe-size", type=int, default=512, help="examples in the probe batch")
    parser.add_argument("--warmup-epochs", type=int, default=1, help="untimed epochs (tracing)")
    parser.add_argument("--timed-epochs", type=int, default=5)
    parser.add_argument("--epochs-per-fit", type=int, default=1,
                        help="epochs per fit call; the conditions alternate between fit calls")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-mlflow", action="store_true", help="run without an active MLflow run")
    args = parser.parse_args()
    if args.timed_epochs % args.epochs_per_fit:
        parser.error("--timed-epochs must be a multiple of --epochs-per-fit")
    return args


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training features/labels and held-out features/labels, features scaled to [0, 1]."""
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        features = (digits.data / 16.0).astype("float32")
        return features[:1500], digits.target[:1500], features[1500:], digits.target[1500:]
    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    flatten = lambda images: images.reshape(len(images), -1).astype("float32") / 255.0  # noqa: E731
    return flatten(x_train), y_train, flatten(x_test), y_test


def build_model(input_dim: int, classes: int, args: argparse.Namespace) -> keras.Model:
    # Same seed for both models so they start from identical weights.
    keras.utils.set_random_seed(args.seed)
    inputs = keras.Input(shape=(input_dim,))
    hidden = inputs
    for _ in range(args.depth):
        hidden = keras.layers.Dense(args.width, activation=args.activation)(hidden)
    outputs = keras.layers.Dense(classes, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy")
    return model


class TimedLayerDiagnostics(LayerDiagnostics):
    """LayerDiagnostics that also clocks its own hooks: the direct cost, free of load noise."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hook_seconds: list[float] = []
        self.train_end_seconds: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        started = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.hook_seconds.append(time.perf_counter() - started)

    def on_train_end(self, logs=None):
        started = time.perf_counter()
        super().on_train_end(logs)
        self.train_end_seconds.append(time.perf_counter() - started)


class EpochTimer(keras.callbacks.Callback):
    """Seconds from epoch begin to the end of every callback's on_epoch_end (list it last)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)


def fit_epochs(model, callbacks, data, first_epoch: int, epochs: int, batch_size: int):
    """Epoch-window seconds of each epoch and the seconds of the whole fit call."""
    features, labels = data
    timer = EpochTimer()
    started = time.perf_counter()
    model.fit(features, labels, batch_size=batch_size, initial_epoch=first_epoch,
              epochs=first_epoch + epochs, verbose=0, callbacks=[*callbacks, timer])
    return timer.seconds, time.perf_counter() - started


def interleaved_epochs(models, callbacks, data, args) -> dict[str, dict[str, list[float]]]:
    """Per-epoch seconds per condition: epoch windows, and fit-call time per epoch."""
    timings = {name: {"warmup": [], "epoch": [], "fit": []} for name in models}
    names = list(models)
    for name in names:
        seconds, _ = fit_epochs(models[name], callbacks[name], data, 0, args.warmup_epochs,
                                args.batch_size)
        timings[name]["warmup"] = seconds
    for block in range(args.timed_epochs // args.epochs_per_fit):
        first_epoch = args.warmup_epochs + block * args.epochs_per_fit
        # Alternate which condition goes first so neither always runs on a warmer cache.
        for name in names if block % 2 == 0 else names[::-1]:
            seconds, fit_seconds = fit_epochs(models[name], callbacks[name], data, first_epoch,
                                              args.epochs_per_fit, args.batch_size)
            timings[name]["epoch"] += seconds
            timings[name]["fit"] += [fit_seconds / args.epochs_per_fit] * args.epochs_per_fit
            print(f"epochs {first_epoch}-{first_epoch + args.epochs_per_fit - 1} {name:>7}: "
                  f"{_seconds(seconds)} s (epoch windows), {fit_seconds:.2f} s (fit call)",
                  flush=True)
    return timings


def report(timings: dict[str, dict[str, list[float]]], diagnostics: TimedLayerDiagnostics,
           warmup_epochs: int) -> None:
    plain_epoch = statistics.median(timings["without"]["epoch"])
    timed_hooks = diagnostics.hook_seconds[warmup_epochs:]
    print("\ndirect cost: seconds inside the callback's on_epoch_end (timed epochs)")
    print(f"  {_seconds(timed_hooks, 3)}  median {statistics.median(timed_hooks):.3f}"
          f" = {100.0 * statistics.median(timed_hooks) / plain_epoch:.1f} % of the median"
          f" plain epoch ({plain_epoch:.2f} s)")
    for measure, title in (("epoch", "epoch-window seconds"),
                           ("fit", "fit-call seconds per epoch (includes on_train_end)")):
        without, with_callback = timings["without"][measure], timings["with"][measure]
        overhead = 100.0 * (statistics.median(with_callback) / statistics.median(without) - 1.0)
        print(f"\n{title}, timed epochs")
        print(f"  without callback: {_seconds(without)}  median {statistics.median(without):.2f}")
        print(f"  with callback:    {_seconds(with_callback)}"
              f"  median {statistics.median(with_callback):.2f}")
        print(f"  overhead (ratio of medians): {overhead:+.1f} %")
    print(f"\nwarm-up epochs (include tracing): without {_seconds(timings['without']['warmup'])}"
          f" s, with {_seconds(timings['with']['warmup'])} s")
    print(f"one-off: first on_epoch_end (traces the probe) "
          f"{diagnostics.hook_seconds[0]:.2f} s; on_train_end (data file, heat maps, MLflow "
          f"artifacts; once per fit call) median "
          f"{statistics.median(diagnostics.train_end_seconds):.2f} s")


def _seconds(values: list[float], decimals: int = 2) -> str:
    return ", ".join(f"{value:.{decimals}f}" for value in values)


def main() -> None:
    args = parse_args()
    x_train, y_train, x_held_out, y_held_out = load_dataset(args.dataset)
    classes = int(y_train.max()) + 1
    print(f"{args.dataset}: {x_train.shape[0]} training examples, {x_train.shape[1]} features, "
          f"depth {args.depth}, width {args.width}, {args.activation}, batch {args.batch_size}, "
          f"probe {args.probe_size}")
    with tempfile.TemporaryDirectory(prefix="diagnostics_overhead_") as scratch:
        scratch_dir = Path(scratch)
        models = {"without": build_model(x_train.shape[1], classes, args),
                  "with": build_model(x_train.shape[1], classes, args)}
        probe = slice(0, args.probe_size)
        diagnostics = TimedLayerDiagnostics(x_held_out[probe], y_held_out[probe],
                                            scratch_dir / "diagnostics")
        callbacks = {"without": [], "with": [diagnostics]}
        if args.no_mlflow:
            timings = interleaved_epochs(models, callbacks, (x_train, y_train), args)
        else:
            mlflow.set_tracking_uri(f"sqlite:///{scratch_dir / 'mlflow.db'}")
            experiment = mlflow.create_experiment(
                "overhead", artifact_location=str(scratch_dir / "artifacts"))
            with mlflow.start_run(experiment_id=experiment):
                timings = interleaved_epochs(models, callbacks, (x_train, y_train), args)
    report(timings, diagnostics, args.warmup_epochs)


if __name__ == "__main__":
    main()
