"""Matplotlib figures for the report, returned as `data:image/svg+xml;base64,...` URIs.

Each function takes collected runs (`collect.DepthRun`) and returns one inline figure, so
the HTML needs no external file. Figure text is numbers and short English axis labels; the
translated captions live in the template. Run and experiment names never reach a figure;
logged class names do, as tick labels, with math text off so that a `$` in one cannot break
the drawing. Output is deterministic (fixed SVG ids, no date).
"""

from __future__ import annotations

import base64
import io
import math
from typing import Callable

import matplotlib
import numpy as np
# The object-oriented Figure needs no pyplot and no GUI backend, and leaves global state alone.
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from depth_experiments.report.collect import DepthRun, Predictions

STYLE = {"text.parse_math": False, "svg.fonttype": "none", "svg.hashsalt": "depth-report",
         "font.size": 8, "axes.titlesize": 9, "axes.spines.top": False,
         "axes.spines.right": False, "legend.fontsize": 7, "legend.frameon": False}
TRAIN_COLOUR, VAL_COLOUR, TEST_COLOUR, CHANCE_COLOUR = "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"
FAILED_COLOUR = "#d62728"
SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(exponent: int) -> str:
    """10⁻⁴ as plain text: math text is off, so log axes cannot use matplotlib's $10^{-4}$."""
    return "10" + str(exponent).translate(SUPERSCRIPTS)


def _decade_label(value: float, _position) -> str:
    if value <= 0:
        return ""
    exponent = math.log10(value)
    return power_of_ten(round(exponent)) if abs(exponent - round(exponent)) < 1e-9 else ""


def _log_axis(axes) -> None:
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(FuncFormatter(_decade_label))
    axes.yaxis.set_minor_formatter(NullFormatter())


def _integer_ticks(axis, count: int) -> None:
    """Every layer or epoch number when there are few, whole numbers otherwise."""
    if count <= 8:
        axis.set_ticks(range(1, count + 1))
    else:
        axis.set_major_locator(MaxNLocator(nbins=6, integer=True))


def inline_svg(build: Callable[[], Figure]) -> str:
    """Build a figure under the report's style and return it as a data URI."""
    with matplotlib.rc_context(STYLE):
        figure = build()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _legend(axes, **options) -> None:
    """A legend only where something is labelled (an empty legend warns and draws a box)."""
    if axes.get_legend_handles_labels()[0]:
        axes.legend(**options)


def _depth_colours(depths: list[int]) -> dict[int, tuple]:
    palette = matplotlib.colormaps["viridis"]
    span = max(len(depths) - 1, 1)
    return {depth: palette(0.9 * index / span) for index, depth in enumerate(depths)}


def accuracy_vs_depth(runs: list[DepthRun], chance: float | None) -> str:
    """Test and final validation accuracy per depth; failed or missing depths marked."""
    def build() -> Figure:
        figure = Figure(figsize=(6.4, 3.2))
        axes = figure.subplots()
        done = [run for run in runs if run.test_accuracy is not None]
        depths = [run.depth for run in done]
        axes.plot(depths, [run.test_accuracy for run in done], marker="o", color=TEST_COLOUR,
                  label="test accuracy")
        val = [(run.depth, run.final("val_accuracy")) for run in done]
        axes.plot([d for d, v in val if v is not None], [v for d, v in val if v is not None],
                  marker="s", linestyle="--", color=VAL_COLOUR, label="validation (last epoch)")
        for run in done:
            axes.annotate(f"{run.test_accuracy:.1%}", (run.depth, run.test_accuracy),
                          textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
        _mark_failed(axes, [run for run in runs if run.test_accuracy is None])
        if chance is not None:
            axes.axhline(chance, color=CHANCE_COLOUR, linestyle=":", label="chance")
        axes.set(xlabel="hidden layers (depth)", ylabel="accuracy", ylim=(0, 1.08))
        axes.set_xticks([run.depth for run in runs])
        _legend(axes, loc="best")
        figure.tight_layout()
        return figure
    return inline_svg(build)


def _mark_failed(axes, runs: list[DepthRun]) -> None:
    for index, run in enumerate(runs):
        axes.axvline(run.depth, color=FAILED_COLOUR, linestyle=":", linewidth=1)
        axes.plot([run.depth], [0.02], marker="x", color=FAILED_COLOUR,
                  label="no test accuracy" if index == 0 else None)


def history(run: DepthRun) -> str:
    """Accuracy and loss per epoch, training against validation, for one depth."""
    def build() -> Figure:
        figure = Figure(figsize=(5.6, 2.5), layout="constrained")
        left, right = figure.subplots(1, 2)
        for axes, key, title in ((left, "accuracy", "accuracy"), (right, "loss", "loss")):
            _curve(axes, run.history.get(key, []), TRAIN_COLOUR, "train")
            _curve(axes, run.history.get(f"val_{key}", []), VAL_COLOUR, "validation")
            axes.set(title=f"depth {run.depth}: {title}", xlabel="epoch")
            if key == "accuracy":
                axes.set_ylim(0, 1.02)
        if run.diverged_at_epoch is not None:
            for axes in (left, right):
                axes.axvline(run.diverged_at_epoch, color=FAILED_COLOUR, linestyle=":",
                             label="diverged")
        # One legend under both panels, where it cannot cover a curve.
        handles, labels = left.get_legend_handles_labels()
        if handles:
            figure.legend(handles, labels, loc="outside lower center", ncol=len(handles))
        return figure
    return inline_svg(build)


def _curve(axes, values: list[float], colour: str, label: str) -> None:
    epochs = list(range(len(values)))
    axes.plot(epochs, values, marker="o", markersize=3, color=colour, label=label)
    axes.xaxis.get_major_locator().set_params(integer=True)


def loss_curves(runs: list[DepthRun], num_classes: int | None) -> str:
    """Training (solid) and validation (dashed) cross-entropy of every depth, with ln K."""
    def build() -> Figure:
        figure = Figure(figsize=(6.4, 3.0))
        axes = figure.subplots()
        colours = _depth_colours([run.depth for run in runs])
        for run in runs:
            for key, style in (("loss", "-"), ("val_loss", "--")):
                values = run.history.get(key, [])
                axes.plot(range(len(values)), values, linestyle=style, marker=".",
                          color=colours[run.depth],
                          label=f"depth {run.depth}" if key == "loss" and values else None)
        if num_classes:
            axes.axhline(math.log(num_classes), color=CHANCE_COLOUR, linestyle=":",
                         label=f"ln {num_classes} (uniform guess)")
        axes.set(xlabel="epoch", ylabel="cross-entropy (solid: train, dashed: validation)")
        axes.xaxis.get_major_locator().set_params(integer=True)
        _legend(axes, loc="upper right", ncol=2)
        figure.tight_layout()
        return figure
    return inline_svg(build)


def layer_profile(runs: list[DepthRun], quantity: str) -> str:
    """Per-layer gradient norm (log scale) or saturation at each depth's last recorded epoch."""
    def build() -> Figure:
        figure = Figure(figsize=(6.4, 3.0))
        axes = figure.subplots()
        measured = [run for run in runs if run.evidence is not None and run.evidence.epochs]
        colours = _depth_colours([run.depth for run in measured])
        for run in measured:
            values = (run.evidence.grad_norms if quantity == "gradient"
                      else run.evidence.saturation)[:, -1]
            axes.plot(range(1, len(values) + 1), values, marker="o", markersize=3,
                      color=colours[run.depth], label=f"depth {run.depth}")
        if quantity == "gradient":
            _log_axis(axes)
            axes.set_ylabel("kernel gradient L2 norm")
        else:
            axes.set(ylim=(-0.02, 1.02), ylabel="saturated fraction")
        axes.set(xlabel="Dense layer (1 = nearest the input; last = output)" if quantity ==
                 "gradient" else "hidden layer (1 = nearest the input)")
        axes.xaxis.get_major_locator().set_params(integer=True)
        _legend(axes, loc="best", ncol=2)
        figure.tight_layout()
        return figure
    return inline_svg(build)


def heat_maps(run: DepthRun, norm_limits: tuple[float, float]) -> str:
    """Layer x epoch maps of log10 gradient norm and saturation (grey: non-finite)."""
    evidence = run.evidence

    def build() -> Figure:
        layers = evidence.grad_norms.shape[0]
        figure = Figure(figsize=(6.4, max(2.2, 1.2 + 0.11 * layers)))
        left, right = figure.subplots(1, 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_norms = np.log10(evidence.grad_norms)
        _heat(figure, left, log_norms, evidence.epochs, "log10 gradient norm", *norm_limits)
        left.set_title(f"depth {run.depth}: gradient norm")
        _heat(figure, right, evidence.saturation, evidence.epochs, "saturated fraction", 0.0, 1.0)
        right.set_title(f"depth {run.depth}: saturation")
        left.set_ylabel("Dense layer (1 = input side)")
        figure.tight_layout()
        return figure
    return inline_svg(build)


def _heat(figure: Figure, axes, matrix: np.ndarray, epochs: list[int], label: str,
          low: float, high: float) -> None:
    if matrix.size == 0:
        axes.set_axis_off()
        return
    colour_map = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    image = axes.imshow(np.ma.masked_invalid(matrix), aspect="auto", origin="lower",
                        interpolation="nearest", cmap=colour_map, vmin=low, vmax=high,
                        extent=(-0.5, len(epochs) - 0.5, 0.5, matrix.shape[0] + 0.5))
    step = max(1, math.ceil(len(epochs) / 12))
    axes.set_xticks(range(0, len(epochs), step), [str(epoch) for epoch in epochs[::step]])
    _integer_ticks(axes.yaxis, matrix.shape[0])
    axes.set_xlabel("epoch")
    figure.colorbar(image, ax=axes, label=label)


def norm_limits(runs: list[DepthRun]) -> tuple[float, float]:
    """One colour scale for every depth's gradient map, so the maps compare."""
    values = [run.evidence.grad_norms for run in runs
              if run.evidence is not None and run.evidence.grad_norms.size]
    if not values:
        return (-8.0, 0.0)
    stacked = np.concatenate([value.ravel() for value in values])
    positive = stacked[np.isfinite(stacked) & (stacked > 0)]
    if positive.size == 0:
        return (-8.0, 0.0)
    low, high = np.log10(positive.min()), np.log10(positive.max())
    return (math.floor(low), max(math.ceil(high), math.floor(low) + 1))


def softmax(predictions: Predictions, images: np.ndarray | None, count: int) -> str:
    """Predicted class distributions of the first test images (true class in green)."""
    shown = min(count, len(predictions.labels))

    def build() -> Figure:
        rows = 2 if images is not None else 1
        figure = Figure(figsize=(1.6 * shown + 0.4, 1.4 * rows + 1.0))
        grid = figure.subplots(rows, shown, squeeze=False,
                               gridspec_kw={"height_ratios": [1, 1.6]} if rows == 2 else None)
        for column in range(shown):
            if images is not None:
                grid[0][column].imshow(images[column], cmap="gray_r")
                grid[0][column].set_axis_off()
            _distribution(grid[-1][column], predictions, column)
        figure.tight_layout()
        return figure
    return inline_svg(build)


def _distribution(axes, predictions: Predictions, index: int) -> None:
    probabilities = predictions.probabilities[index]
    label = predictions.labels[index]
    colours = [TEST_COLOUR if k == label else TRAIN_COLOUR for k in range(len(probabilities))]
    axes.bar(range(len(probabilities)), probabilities, color=colours)
    axes.set_ylim(0, 1)
    axes.set_xticks(range(len(probabilities)),
                    [_short(name) for name in predictions.class_names], rotation=90, fontsize=6)
    axes.set_title(f"test #{index}: top p = {probabilities.max():.2f}", fontsize=7)


def _short(name: str) -> str:
    return name if len(name) <= 12 else name[:11] + "…"


def cost(rows: list[dict]) -> str:
    """Parameters and training time against depth."""
    def build() -> Figure:
        figure = Figure(figsize=(6.4, 2.4))
        left, right = figure.subplots(1, 2)
        for axes, key, label in ((left, "n_parameters", "parameters (weights + biases)"),
                                 (right, "training_time_s", "training time (s)")):
            points = [(row["depth"], row[key]) for row in rows if row[key] is not None]
            axes.plot([d for d, _ in points], [v for _, v in points], marker="o",
                      color=TRAIN_COLOUR)
            axes.set(xlabel="hidden layers (depth)", ylabel=label, ylim=(0, None))
        figure.tight_layout()
        return figure
    return inline_svg(build)
