"""Per-depth learning-rate tuning with Optuna (`tune=true`).

`tune_depth(config, depth, splits)` runs inside the active depth run (the sweep opens it).
It loads or creates the depth's Optuna study in `config.storage`, runs only the trials the
study still lacks to hold `n_trials` complete or pruned ones, then retrains the depth with the
best learning rate through `training.train_depth`, so a tuned depth run carries the same
metrics and artifacts as an untuned one. `log_tuning_summary` writes the parent's
`summary/tuning.csv|json`: tuned against untuned accuracy per depth.

What it writes:
- Optuna: study `depth_experiments-<config.identity(depth)>` (n_trials, storage and n_jobs are
  not part of it, so raising n_trials continues the same study); `optuna-dashboard <storage>`
  opens it, with the storage as logged in the depth run's `optuna_storage` param.
- MLflow, one nested run per trial under the depth run that ran it: param `learning_rate`,
  per-epoch metrics (`val_accuracy`, ... with step=epoch), tags `depth_experiments.kind=trial`,
  `.study_name`, `.trial_number`, `.trial_state` (complete / pruned). Pruned trials end KILLED.
- MLflow, on the depth run: params `study_name`, `optuna_storage`, `best_learning_rate`;
  metrics `best_learning_rate`, `best_val_accuracy`, `n_trials_complete`, `n_trials_pruned`,
  `n_trials_failed`, `n_trials_run_here`; then everything `train_depth` logs.

Selection never sees the test split: trials get a copy of the splits without it, and score
the validation accuracy of their last epoch (the depth run reports its final-epoch model too).

    depth-experiments sweep --dataset digits --depths 1,9 --epochs 2 --tune true --n_trials 3
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import mlflow
import optuna
from mlflow.entities import Run
from optuna.trial import FrozenTrial, TrialState
from optuna_integration import KerasPruningCallback

from depth_experiments import tracking
from depth_experiments.config import JOURNAL_SCHEME, SweepConfig, redact_password, storage_kind
from depth_experiments.data import Splits
from depth_experiments.training import (TAG_PREFIX, DepthResult, DivergenceMonitor,
                                        EpochMetricsLogger, build_model_for, make_reproducible,
                                        train_depth)

STUDY_PREFIX = "depth_experiments-"
DEFAULT_STORAGE_FILE = "optuna.db"
STUDY_TAG, TRIAL_TAG = TAG_PREFIX + "study_name", TAG_PREFIX + "trial_number"
TRIAL_STATE_TAG, DEPTH_TAG = TAG_PREFIX + "trial_state", TAG_PREFIX + "depth"
MLFLOW_RUN_ATTR = "mlflow_run_id"
# Trials that answered the question; failed or interrupted ones are run again.
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
# The median pruner judges a trial against earlier ones only after a few have finished,
# and not on the first epoch, whose accuracy says little about where a run ends up.
PRUNER_STARTUP_TRIALS = 5
PRUNER_WARMUP_EPOCHS = 1
DIVERGED_SCORE = 0.0
TUNING_COLUMNS = ("depth", "best_learning_rate", "tuned_test_accuracy", "best_val_accuracy",
                  "n_trials_complete", "n_trials_pruned", "untuned_learning_rate",
                  "untuned_test_accuracy", "tuned_run_id", "untuned_run_id")


def study_name(config: SweepConfig, depth: int) -> str:
    return STUDY_PREFIX + config.identity(depth)


def resolve_storage(storage: str, tracking_uri: str) -> str:
    """The storage as `optuna-dashboard` takes it: a database URL or a journal file path."""
    if storage_kind(storage) == "journal":
        return str(Path(storage.removeprefix(JOURNAL_SCHEME)).expanduser().resolve())
    if storage:
        return storage
    return "sqlite:///" + str(_beside_mlflow_store(tracking_uri) / DEFAULT_STORAGE_FILE)


def _beside_mlflow_store(tracking_uri: str) -> Path:
    """The folder holding MLflow's SQLite file or `mlruns` folder; else the working directory."""
    parts = urlsplit(tracking_uri)
    database = tracking_uri.removeprefix("sqlite:///").split("?")[0]
    if parts.scheme == "sqlite" and tracking_uri.startswith("sqlite:///") and database:
        return Path(database).resolve().parent
    if parts.scheme == "file":
        return Path(url2pathname(parts.path)).resolve().parent
    if parts.scheme == "":
        return Path(tracking_uri).resolve().parent
    return Path.cwd()


def open_storage(resolved: str) -> str | optuna.storages.BaseStorage:
    if "://" in resolved:
        return resolved
    backend = optuna.storages.journal.JournalFileBackend(resolved)
    return optuna.storages.JournalStorage(backend)


def learning_rate_distribution(config: SweepConfig) -> optuna.distributions.FloatDistribution:
    return optuna.distributions.FloatDistribution(config.lr_min, config.lr_max, log=True)


def load_study(config: SweepConfig, depth: int, resolved_storage: str) -> optuna.Study:
    """The depth's study, created on first use. The sampler's seed moves on with the trials
    already stored, so a topped-up study does not replay the learning rates it has tried."""
    study = optuna.create_study(
        study_name=study_name(config, depth), storage=open_storage(resolved_storage),
        direction="maximize", load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS,
                                           n_warmup_steps=PRUNER_WARMUP_EPOCHS))
    study.sampler = optuna.samplers.TPESampler(seed=config.seed + len(study.trials))
    return study


def counted_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=COUNTED_STATES))


def study_covers(run: Run, config: SweepConfig) -> bool:
    """Whether a finished depth run can be reused: untuned, or tuned on enough trials."""
    if not config.tune:
        return True
    metrics = run.data.metrics
    done = metrics.get("n_trials_complete", 0) + metrics.get("n_trials_pruned", 0)
    return done >= config.n_trials


def tune_depth(config: SweepConfig, depth: int, splits: Splits) -> DepthResult:
    """Top the depth's study up to `n_trials`, then train and log the depth with its best
    learning rate in the active run."""
    depth_run = mlflow.active_run()
    resolved = resolve_storage(config.storage, mlflow.get_tracking_uri())
    study = load_study(config, depth, resolved)
    mlflow.log_params({"study_name": study.study_name,
                       "optuna_storage": redact_password(resolved)})
    done = counted_trials(study)
    missing = max(0, config.n_trials - done)
    print(f"[tune depth {depth}] study {study.study_name}: {done} of "
          f"{config.n_trials} trials done, running {missing}; optuna-dashboard "
          f"{redact_password(resolved)}", flush=True)
    if missing:
        objective = TrialObjective(config, depth, _without_test(splits),
                                   depth_run.info.run_id, depth_run.info.experiment_id)
        study.optimize(objective, n_trials=missing, n_jobs=config.n_jobs, callbacks=[
            optuna.study.MaxTrialsCallback(config.n_trials, states=COUNTED_STATES)])
    best = _log_study_outcome(study, missing)
    print(f"[tune depth {depth}] best learning rate {best.params['learning_rate']:.3g} "
          f"(val_accuracy {best.value:.4f}); training the depth with it", flush=True)
    return train_depth(config, depth, splits, learning_rate=best.params["learning_rate"])


def _without_test(splits: Splits) -> Splits:
    """The splits a trial may see: any read of the test data during selection fails loudly."""
    return dataclasses.replace(splits, x_test=None, y_test=None)


def _log_study_outcome(study: optuna.Study, run_here: int) -> FrozenTrial:
    best = study.best_trial
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    learning_rate = best.params["learning_rate"]
    mlflow.log_param("best_learning_rate", learning_rate)
    mlflow.log_metrics({"best_learning_rate": learning_rate, "best_val_accuracy": best.value,
                        "n_trials_complete": states.count(TrialState.COMPLETE),
                        "n_trials_pruned": states.count(TrialState.PRUNED),
                        "n_trials_failed": states.count(TrialState.FAIL),
                        "n_trials_run_here": run_here})
    mlflow.set_tags({TAG_PREFIX + "tuned": "true",
                     TAG_PREFIX + "best_trial_number": str(best.number),
                     TAG_PREFIX + "best_trial_run": best.user_attrs.get(MLFLOW_RUN_ATTR, "")})
    return best


@dataclasses.dataclass(frozen=True)
class TrialObjective:
    """One Optuna trial = one MLflow run nested under the depth run, trained on the training
    split and scored on the validation split. Safe to call from Optuna's worker threads:
    MLflow's active-run stack is per thread, so the parent is named explicitly."""

    config: SweepConfig
    depth: int
    splits: Splits
    depth_run_id: str
    experiment_id: str

    def __call__(self, trial: optuna.Trial) -> float:
        learning_rate = trial.suggest_float("learning_rate", self.config.lr_min,
                                            self.config.lr_max, log=True)
        tags = {tracking.KIND_TAG: "trial", STUDY_TAG: trial.study.study_name,
                TRIAL_TAG: str(trial.number), DEPTH_TAG: str(self.depth)}
        with tracking.run_scope(run_name=f"depth-{self.depth:02d}-trial-{trial.number:03d}",
                                nested=True, parent_run_id=self.depth_run_id,
                                experiment_id=self.experiment_id, tags=tags) as run:
            trial.set_user_attr(MLFLOW_RUN_ATTR, run.info.run_id)
            mlflow.log_params({"learning_rate": learning_rate, "trial_number": trial.number})
            try:
                score = self._fit(trial, learning_rate)
            except optuna.TrialPruned:
                mlflow.set_tag(TRIAL_STATE_TAG, "pruned")
                mlflow.end_run("KILLED")
                raise
            mlflow.set_tag(TRIAL_STATE_TAG, "complete")
            mlflow.log_metric("objective_val_accuracy", score)
        return score

    def _fit(self, trial: optuna.Trial, learning_rate: float) -> float:
        """Final-epoch validation accuracy; a diverged run scores 0 (its weights are NaN)."""
        config, splits = self.config, self.splits
        make_reproducible(config.seed)
        model = build_model_for(config, self.depth, splits, learning_rate)
        monitor = DivergenceMonitor()
        # The metrics logger goes first so a pruned trial's last epoch is in MLflow too.
        callbacks = [EpochMetricsLogger(), monitor, KerasPruningCallback(trial, "val_accuracy")]
        history = model.fit(splits.x_train, splits.y_train, epochs=config.epochs,
                            batch_size=config.batch_size,
                            validation_data=(splits.x_val, splits.y_val), shuffle=True,
                            callbacks=callbacks, verbose=0)
        if monitor.diverged_at_epoch is not None:
            mlflow.set_tag(TAG_PREFIX + "diverged_at_epoch", str(monitor.diverged_at_epoch))
            return DIVERGED_SCORE
        return float(history.history["val_accuracy"][-1])


def log_tuning_summary(config: SweepConfig, runs: dict[int, tuple[Run, bool]],
                       experiment_id: str) -> list[dict]:
    """Per depth, the tuned result beside the newest finished untuned run of the same config
    (if the experiment has one), as `summary/tuning.csv|json` on the active (parent) run."""
    untuned = dataclasses.replace(config, tune=False)
    rows = [_tuning_row(depth, run, tracking.finished_depth_run(
        experiment_id, untuned.identity(depth)), config.learning_rate)
        for depth, (run, _reused) in runs.items()]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TUNING_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    mlflow.log_text(buffer.getvalue(), "summary/tuning.csv")
    mlflow.log_dict({"rows": rows}, "summary/tuning.json")
    return rows


def _tuning_row(depth: int, tuned: Run, untuned: Run | None, untuned_lr: float) -> dict:
    metrics = tuned.data.metrics
    untuned_metrics = untuned.data.metrics if untuned else {}
    return {"depth": depth, "best_learning_rate": metrics.get("best_learning_rate"),
            "tuned_test_accuracy": metrics.get("test_accuracy"),
            "best_val_accuracy": metrics.get("best_val_accuracy"),
            "n_trials_complete": _count(metrics, "n_trials_complete"),
            "n_trials_pruned": _count(metrics, "n_trials_pruned"),
            "untuned_learning_rate": untuned_lr,
            "untuned_test_accuracy": untuned_metrics.get("test_accuracy"),
            "tuned_run_id": tuned.info.run_id,
            "untuned_run_id": untuned.info.run_id if untuned else None}


def _count(metrics: dict, name: str) -> int | None:
    return int(metrics[name]) if name in metrics else None
