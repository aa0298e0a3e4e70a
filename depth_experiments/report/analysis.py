"""The report's answers, computed from a collected sweep (`collect.SweepData`); no I/O.

- `diagnose(run, chance)`: one diagnosis per depth from the rules below, first match wins,
  with the numbers it looked at and the ones that triggered it.
- `answer(sweep)`: best depth, Spearman rank correlation of depth and test accuracy, cost
  against depth and the verdict on "are deeper networks better?".
- `parameter_rows(sweep)`: the unknowns (weights and biases) per depth, from
  `depth_experiments.models.parameter_count`, beside the count MLflow logged.

Diagnosis rules (the report prints them with the thresholds):

1. missing: the sweep names no run for the depth.
2. unfinished: the run has no outcome tag (still running, killed or failed mid-way).
3. exploding: training diverged, or a layer's gradient had non-finite entries, or the
   largest layer gradient norm grew by at least EXPLODING_GROWTH from the first to the last
   recorded epoch.
4. vanishing: the first hidden layer's gradient norm is below VANISHING_RATIO times the last
   hidden layer's (last recorded epoch) and test accuracy is within NEAR_CHANCE_MARGIN of
   chance.
5. overfitting: final training accuracy exceeds final validation accuracy by more than
   OVERFIT_GAP.
6. underfitting: final training accuracy is below UNDERFIT_TRAIN_ACCURACY.
7. trained well: none of the above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import spearmanr

from depth_experiments.models import NORMALIZATION_PARAMS_PER_UNIT, hidden_widths, parameter_count
from depth_experiments.report.collect import DepthRun, SweepData, finite_or_none
from depth_experiments.training import COLLAPSE_MARGIN

VANISHING_RATIO = 1e-2
NEAR_CHANCE_MARGIN = COLLAPSE_MARGIN
EXPLODING_GROWTH = 100.0
OVERFIT_GAP = 0.10
UNDERFIT_TRAIN_ACCURACY = 0.90
MARGINAL_GAIN = 0.01
TREND_MIN_DEPTHS = 3
# Largest slope of each activation: backpropagation multiplies the gradient by it once per
# layer, so (slope)^(L-1) bounds what the activations alone let through L layers.
MAX_DERIVATIVE = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "linear": 1.0}
DIAGNOSIS_CODES = ("missing", "unfinished", "exploding", "vanishing", "overfitting",
                   "underfitting", "trained_well")


@dataclass(frozen=True)
class Diagnosis:
    code: str
    evidence: dict[str, float | None]
    triggered: tuple[str, ...] = ()


@dataclass
class Answer:
    verdict: str                     # insufficient | no | marginal | yes | peak
    finished: list[DepthRun]
    best: DepthRun | None
    shallowest: DepthRun | None
    deepest: DepthRun | None
    rho: float | None
    p_value: float | None
    gain: float | None               # best accuracy minus the shallowest depth's
    diagnoses: dict[int, Diagnosis] = field(default_factory=dict)
    cost: list[dict] = field(default_factory=list)


def evidence_of(run: DepthRun, chance: float | None) -> dict[str, float | None]:
    """The numbers the rules read, None where the run did not log them."""
    train, val = run.final("accuracy"), run.final("val_accuracy")
    max_norms = [value for value in run.history.get("grad_norm_max", []) if math.isfinite(value)]
    growth = max_norms[-1] / max_norms[0] if len(max_norms) > 1 and max_norms[0] > 0 else None
    nonfinite = run.history.get("grad_nonfinite_layers") or []
    if run.evidence is not None:
        nonfinite = nonfinite + run.evidence.nonfinite_layers
    return {
        "test_accuracy": run.test_accuracy, "chance": chance,
        "train_accuracy": train, "val_accuracy": val,
        "gap": None if train is None or val is None else train - val,
        "ratio": finite_or_none(run.metrics.get("grad_norm_ratio_first_to_last")),
        "nonfinite_layers": float(max(nonfinite)) if nonfinite else None,
        "growth": growth,
        "saturation": finite_or_none(run.metrics.get("saturation_mean")),
    }


def diagnose(run: DepthRun, chance: float | None) -> Diagnosis:
    """Apply the module's rules in order; the first that matches is the diagnosis."""
    if run.missing:
        return Diagnosis("missing", {})
    evidence = evidence_of(run, chance)
    if run.outcome is None:
        return Diagnosis("unfinished", evidence)
    checks = (("exploding", _exploding), ("vanishing", _vanishing),
              ("overfitting", _overfitting), ("underfitting", _underfitting))
    for code, check in checks:
        triggered = check(run, evidence)
        if triggered:
            return Diagnosis(code, evidence, triggered)
    return Diagnosis("trained_well", evidence)


def _exploding(run: DepthRun, evidence: dict) -> tuple[str, ...]:
    triggered = []
    if run.outcome == "diverged":
        triggered.append("diverged")
    if (evidence["nonfinite_layers"] or 0) > 0:
        triggered.append("nonfinite_layers")
    if evidence["growth"] is not None and evidence["growth"] >= EXPLODING_GROWTH:
        triggered.append("growth")
    return tuple(triggered)


def _vanishing(run: DepthRun, evidence: dict) -> tuple[str, ...]:
    ratio, accuracy, chance = evidence["ratio"], evidence["test_accuracy"], evidence["chance"]
    if None in (ratio, accuracy, chance):
        return ()
    if ratio < VANISHING_RATIO and accuracy <= chance + NEAR_CHANCE_MARGIN:
        return ("ratio", "test_accuracy")
    return ()


def _overfitting(run: DepthRun, evidence: dict) -> tuple[str, ...]:
    gap = evidence["gap"]
    return ("gap",) if gap is not None and gap > OVERFIT_GAP else ()


def _underfitting(run: DepthRun, evidence: dict) -> tuple[str, ...]:
    train = evidence["train_accuracy"]
    return ("train_accuracy",) if train is not None and train < UNDERFIT_TRAIN_ACCURACY else ()


def rank_correlation(depths: list[int], accuracies: list[float]) -> tuple[float | None, float | None]:
    """Spearman's rho and its p-value; None when fewer than 3 depths or no variation."""
    if len(depths) < TREND_MIN_DEPTHS or len(set(accuracies)) < 2:
        return None, None
    result = spearmanr(depths, accuracies)
    return float(result.statistic), float(result.pvalue)


def answer(sweep: SweepData) -> Answer:
    finished = [run for run in sweep.depths if run.test_accuracy is not None]
    diagnoses = {run.depth: diagnose(run, sweep.chance_accuracy) for run in sweep.depths}
    cost = cost_rows(sweep.depths)
    if not finished:
        return Answer("insufficient", [], None, None, None, None, None, None, diagnoses, cost)
    best = max(finished, key=lambda run: (run.test_accuracy, -run.depth))
    shallowest, deepest = finished[0], finished[-1]
    rho, p_value = rank_correlation([run.depth for run in finished],
                                    [run.test_accuracy for run in finished])
    gain = best.test_accuracy - shallowest.test_accuracy
    verdict = _verdict(finished, best, rho, gain)
    return Answer(verdict, finished, best, shallowest, deepest, rho, p_value, gain,
                  diagnoses, cost)


def _verdict(finished: list[DepthRun], best: DepthRun, rho: float | None, gain: float) -> str:
    """no: the shallowest wins; marginal: a deeper one wins by less than MARGINAL_GAIN;
    yes: the deepest wins and the rank correlation is not negative; peak: otherwise."""
    if len(finished) < 2:
        return "insufficient"
    if best.depth == finished[0].depth:
        return "no"
    if gain < MARGINAL_GAIN:
        return "marginal"
    if best.depth == finished[-1].depth and (rho is None or rho > 0):
        return "yes"
    return "peak"


def cost_rows(runs: list[DepthRun]) -> list[dict]:
    """Parameters and training time per depth, and both relative to the shallowest run."""
    present = [run for run in runs if not run.missing]
    if not present:
        return []
    base = present[0]
    base_params = finite_or_none(base.metrics.get("n_parameters"))
    base_time = finite_or_none(base.metrics.get("training_time_s"))
    rows = []
    for run in present:
        params = finite_or_none(run.metrics.get("n_parameters"))
        seconds = finite_or_none(run.metrics.get("training_time_s"))
        epochs = len(run.history.get("loss", [])) or None
        rows.append({"depth": run.depth, "n_parameters": params, "training_time_s": seconds,
                     "seconds_per_epoch": seconds / epochs if seconds and epochs else None,
                     "params_ratio": _ratio(params, base_params),
                     "time_ratio": _ratio(seconds, base_time)})
    return rows


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def parameter_rows(sweep: SweepData) -> list[dict]:
    """Per depth: the closed-form count, its terms, and what MLflow logged for the run."""
    split, config = sweep.split(), sweep.config
    if config is None or not split["input_dim"] or not split["num_classes"]:
        return []
    inputs, classes, width = split["input_dim"], split["num_classes"], config.width
    rows = []
    for run in sweep.depths:
        expected = parameter_count(inputs, hidden_widths(run.depth, width), classes,
                                   config.normalization)
        logged = finite_or_none(run.metrics.get("n_parameters"))
        rows.append({"depth": run.depth, "expected": expected,
                     "logged": None if logged is None else int(logged),
                     "terms": _formula_terms(inputs, width, classes, run.depth, config.normalization)})
    return rows


def _formula_terms(inputs: int, width: int, classes: int, depth: int, normalization: str) -> str:
    terms = [f"({inputs}·{width} + {width})"]
    if depth > 1:
        terms.append(f"{depth - 1}·({width}·{width} + {width})")
    terms.append(f"({width}·{classes} + {classes})")
    per_unit = NORMALIZATION_PARAMS_PER_UNIT[normalization]
    if per_unit:
        terms.append(f"{per_unit}·{depth}·{width}")
    return " + ".join(terms)


def gradient_bound(activation: str, depth: int) -> float | None:
    slope = MAX_DERIVATIVE.get(activation)
    return None if slope is None else slope ** (depth - 1)


def saturation_rows(sweep: SweepData) -> list[dict]:
    """Hidden-layer saturation at the first and last recorded epoch, and the gradient ratio
    beside the bound the activation's slope puts on it."""
    activation = sweep.config.activation if sweep.config else ""
    rows = []
    for run in sweep.depths:
        history = run.history.get("saturation_mean") or []
        peak = run.history.get("saturation_max") or []
        rows.append({"depth": run.depth, "present": not run.missing,
                     "first": finite_or_none(history[0]) if history else None,
                     "last": finite_or_none(history[-1]) if history else None,
                     "max": finite_or_none(max(peak)) if peak and all(map(math.isfinite, peak)) else None,
                     "ratio": finite_or_none(run.metrics.get("grad_norm_ratio_first_to_last")),
                     "bound": gradient_bound(activation, run.depth)})
    return rows


def softmax_stats(probabilities: np.ndarray, labels: list[int]) -> dict[str, float]:
    """How peaked the predicted distributions are: mean top probability and mean entropy."""
    clipped = np.clip(probabilities, 1e-12, 1.0)
    entropy = -np.sum(probabilities * np.log(clipped), axis=1)
    correct = np.argmax(probabilities, axis=1) == np.asarray(labels)
    return {"mean_top": float(np.mean(np.max(probabilities, axis=1))),
            "mean_entropy": float(np.mean(entropy)),
            "max_entropy": float(math.log(probabilities.shape[1])),
            "row_sum_error": float(np.max(np.abs(probabilities.sum(axis=1) - 1.0))),
            "correct": int(np.sum(correct)), "shown": len(labels)}
