"""A depth sweep: one parent MLflow run, one nested run per depth, reuse of finished depths.

`run_sweep(config)` loads the data once, then for each depth either reuses a finished run
with the same config identity (unless `config.rerun`) or trains it in a new nested run.
Under `mlflow run` the parent is the run MLflow created (`MLFLOW_RUN_ID`); otherwise a new
run in the active experiment. The parent gets the config, a tag per depth naming the run
that holds it (`depth_experiments.depth_run.<depth>`, so reused runs are linked), the summary
table `summary/depth_accuracy.csv|json`, the figure `summary/accuracy_vs_depth.png` and
summary metrics. A diverged depth ends FAILED (tagged) and the sweep goes on.
With `tune`, each depth is tuned by `depth_experiments.tuning` (trial runs nest under the
depth run; a tuned run is reused only if its study held `n_trials`, else a new depth run tops
the study up) and the parent also gets `summary/tuning.csv|json`. Last, the sweep writes
`report.html` (`config.report`, in `config.lang`) and logs it on the parent run.
"""

from __future__ import annotations

import csv
import io
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow.entities import Run

from depth_experiments import tracking, tuning
from depth_experiments.config import SweepConfig
from depth_experiments.data import Splits, load_splits
from depth_experiments.provenance import collect_provenance
from depth_experiments.report import write_report
from depth_experiments.training import OUTCOME_DIVERGED, TAG_PREFIX, train_depth

DEPTH_RUN_TAG = TAG_PREFIX + "depth_run."
SUMMARY_COLUMNS = ("depth", "outcome", "test_accuracy", "test_loss", "final_val_accuracy",
                   "n_parameters", "epochs_completed", "training_time_s", "reused", "run_id")


@dataclass
class SweepResult:
    parent_run_id: str
    experiment_id: str
    rows: list[dict] = field(default_factory=list)

    def row(self, depth: int) -> dict:
        return next(row for row in self.rows if row["depth"] == depth)


@dataclass
class _Progress:
    """Sweep-level feedback; time left scales with the layers still to train."""

    depths: tuple[int, ...]
    started: float = field(default_factory=time.perf_counter)
    trained_layers: int = 0
    training_seconds: float = 0.0

    def report(self, index: int, depth: int, run: Run, reused: bool, seconds: float) -> None:
        if not reused:
            self.trained_layers += depth + 1
            self.training_seconds += seconds
        remaining = sum(d + 1 for d in self.depths[index + 1:])
        per_layer = self.training_seconds / self.trained_layers if self.trained_layers else 0
        accuracy = run.data.metrics.get("test_accuracy")
        shown = "n/a" if accuracy is None else f"{accuracy:.1%}"
        outcome = run.data.tags.get(tracking.OUTCOME_TAG, "?")
        print(f"[sweep {index + 1}/{len(self.depths)}] depth {depth}: {outcome}"
              f"{' (reused)' if reused else ''}, test accuracy {shown}; "
              f"elapsed {_duration(time.perf_counter() - self.started)}, "
              f"about {_duration(per_layer * remaining)} left", flush=True)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def run_sweep(config: SweepConfig, splits: Splits | None = None) -> SweepResult:
    """Train (or reuse) every depth of `config` and summarise them on the parent run."""
    splits = splits or load_splits(config.dataset, config.validation_split, config.seed)
    with tracking.sigterm_as_interrupt(), tracking.run_scope(run_name=_sweep_name(config)) as parent:
        parent_id, experiment_id = parent.info.run_id, parent.info.experiment_id
        _describe_parent(config, splits, parent_id)
        progress = _Progress(config.depth_list)
        runs = {}
        for index, depth in enumerate(config.depth_list):
            started = time.perf_counter()
            run, reused = _run_depth(config, depth, splits, parent_id, experiment_id)
            runs[depth] = (run, reused)
            mlflow.set_tag(f"{DEPTH_RUN_TAG}{depth}", run.info.run_id)
            progress.report(index, depth, run, reused, time.perf_counter() - started)
        result = SweepResult(parent_id, experiment_id,
                             [summary_row(depth, run, reused) for depth, (run, reused) in runs.items()])
        _log_summary(result, splits.chance_accuracy())
        if config.tune:
            tuning.log_tuning_summary(config, runs, experiment_id)
        _write_and_log_report(config, parent_id)
    return result


def _write_and_log_report(config: SweepConfig, parent_id: str) -> None:
    """report.html answers the assignment; it is also logged so the MLflow UI shows it."""
    with tempfile.TemporaryDirectory(prefix="depth_report_") as scratch:
        path = write_report(parent_id, Path(config.report or Path(scratch) / "report.html"),
                            config.lang)
        mlflow.log_artifact(str(path))
    if config.report:
        print(f"report written to {path.resolve()}", flush=True)


def _sweep_name(config: SweepConfig) -> str:
    return f"sweep-{config.dataset}-{config.activation}-depths-{config.depth_list[0]}-{config.depth_list[-1]}"


def _describe_parent(config: SweepConfig, splits: Splits, parent_id: str) -> None:
    tracking.log_params_once(parent_id, config.as_params())
    mlflow.set_tags({tracking.KIND_TAG: "sweep", **tracking.process_tags(),
                     **{TAG_PREFIX + name: str(value) for name, value in splits.describe().items()}})
    mlflow.log_dict(collect_provenance(), "provenance.json")


def _run_depth(config: SweepConfig, depth: int, splits: Splits, parent_id: str,
               experiment_id: str) -> tuple[Run, bool]:
    run_key = config.identity(depth)
    tracking.close_stale_runs(experiment_id, run_key, parent_id)
    if not config.rerun:
        existing = tracking.finished_depth_run(experiment_id, run_key)
        if existing is not None and tuning.study_covers(existing, config):
            return existing, True
    tags = {tracking.KIND_TAG: "depth", tracking.KEY_TAG: run_key}
    with tracking.run_scope(run_name=f"depth-{depth:02d}", nested=True, tags=tags) as child:
        mlflow.log_params({**config.as_params(), "depth": depth})
        result = (tuning.tune_depth if config.tune else train_depth)(config, depth, splits)
        if result.outcome == OUTCOME_DIVERGED:
            mlflow.end_run("FAILED")
    return mlflow.MlflowClient().get_run(child.info.run_id), False


def summary_row(depth: int, run: Run, reused: bool) -> dict:
    metrics = run.data.metrics
    return {"depth": depth, "outcome": run.data.tags.get(tracking.OUTCOME_TAG, "unfinished"),
            "test_accuracy": metrics.get("test_accuracy"), "test_loss": metrics.get("test_loss"),
            "final_val_accuracy": metrics.get("val_accuracy"),
            "n_parameters": int(metrics.get("n_parameters", 0)),
            "epochs_completed": int(metrics.get("epochs_completed", 0)),
            "training_time_s": metrics.get("training_time_s"), "reused": reused,
            "run_id": run.info.run_id}


def _log_summary(result: SweepResult, chance: float) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    writer.writerows(result.rows)
    mlflow.log_text(buffer.getvalue(), "summary/depth_accuracy.csv")
    mlflow.log_dict({"chance_accuracy": chance, "rows": result.rows}, "summary/depth_accuracy.json")
    mlflow.log_figure(_accuracy_figure(result.rows, chance), "summary/accuracy_vs_depth.png")
    finished = [row for row in result.rows if row["test_accuracy"] is not None]
    metrics = {"depths_total": len(result.rows),
               "depths_reused": sum(row["reused"] for row in result.rows),
               "depths_diverged": sum(row["outcome"] == "diverged" for row in result.rows),
               "depths_collapsed": sum(row["outcome"] == "collapsed" for row in result.rows)}
    if finished:
        best = max(finished, key=lambda row: row["test_accuracy"])
        metrics.update(best_test_accuracy=best["test_accuracy"], best_depth=best["depth"])
    mlflow.log_metrics(metrics)


def _accuracy_figure(rows: list[dict], chance: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.6), dpi=110)
    axes = figure.subplots()
    finished = [row for row in rows if row["test_accuracy"] is not None]
    axes.plot([row["depth"] for row in finished], [row["test_accuracy"] for row in finished],
              marker="o", label="test accuracy")
    for row in rows:
        if row["test_accuracy"] is None:
            axes.axvline(row["depth"], color="tab:red", linestyle=":", label=f"depth {row['depth']} {row['outcome']}")
    axes.axhline(chance, color="grey", linestyle="--", label="chance")
    axes.set(xlabel="hidden layers", ylabel="test accuracy", ylim=(0, 1),
             title="Test accuracy against depth")
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return figure
