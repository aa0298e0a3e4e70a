"""Render a collected sweep into one self-contained HTML file with Jinja2 and Babel.

`write_report(parent_run_id, output, lang, client)` is what the sweep calls at its end;
`report_for_experiment(experiment_name, output, lang, sweep_run_id, client)` is what the
`report` command calls. Both read MLflow (`collect`), compute the answers (`analysis`), draw
the figures (`figures`), render `report_templates/report.html.j2` with autoescaping and the
i18n extension, and write `output` (UTF-8). Translations are compiled at render time from
`report_templates/locale/<locale>/LC_MESSAGES/messages.po`, so no stale `.mo` can exist.
"""

from __future__ import annotations

import gettext
import io
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from mlflow import MlflowClient

import depth_experiments
from depth_experiments.config import ConfigError
from depth_experiments.provenance import git_commit
from depth_experiments.report import LANGUAGES, analysis, figures
from depth_experiments.report.collect import (DepthRun, SweepData, collect_sweep,
                                              collect_tuning, find_sweep)

CATALOG_LOCALES = {"zh-TW": "zh_TW"}
TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "report_templates"
LOCALE_DIR = TEMPLATE_DIR / "locale"
TEMPLATE_NAME = "report.html.j2"
SOFTMAX_SAMPLES = 4
NEAR_UNIFORM_LOSS = 0.95  # final loss at or above this fraction of ln K: a uniform guess


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ConfigError("lang", f"got {lang!r}; allowed: {', '.join(LANGUAGES)}")
    return lang


def check_output(output: Path | str) -> Path:
    path = Path(output)
    if not str(output).strip():
        raise ConfigError("output", "got an empty path")
    if path.is_dir():
        raise ConfigError("output", f"{str(path)!r} is a folder; give a file name such as report.html")
    return path


def translations(lang: str) -> gettext.NullTranslations:
    """English is the source language; other catalogs are compiled from their .po in memory."""
    if check_language(lang) == "en":
        return gettext.NullTranslations()
    locale = CATALOG_LOCALES[lang]
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def environment(lang: str) -> Environment:
    if not (TEMPLATE_DIR / TEMPLATE_NAME).is_file():
        raise FileNotFoundError(f"report templates not found in {TEMPLATE_DIR}; use the project "
                                "from its checkout (pip install -e .)")
    env = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                      undefined=StrictUndefined, extensions=["jinja2.ext.i18n"])
    # Trimmed trans blocks give one-line msgids, so the catalog does not depend on indentation.
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(lang), newstyle=True)
    env.filters.update(pct=format_percent, sci=format_scientific, grouped=format_grouped,
                       seconds=format_seconds, utc=format_utc, num=format_number)
    return env


# --- number formats (the same in both languages) -----------------------------------------

def _usable(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def format_percent(value, digits: int = 1) -> str:
    return f"{value * 100:.{digits}f}%" if _usable(value) else "—"


def format_number(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if _usable(value) else "—"


def format_grouped(value) -> str:
    return f"{int(value):,}" if _usable(value) else "—"


def format_seconds(value) -> str:
    return f"{value:.1f} s" if _usable(value) else "—"


def format_scientific(value, digits: int = 2) -> str:
    """1.2 × 10⁻⁴ for very small or large magnitudes, plain digits otherwise."""
    if not _usable(value):
        return "—"
    if value == 0 or 1e-2 <= abs(value) < 1e4:
        return f"{value:.{digits + 1}g}"
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    return f"{mantissa} × {figures.power_of_ten(int(exponent))}"


def format_utc(milliseconds) -> str:
    if not _usable(milliseconds):
        return "—"
    moment = datetime.fromtimestamp(milliseconds / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


# --- the template's context ---------------------------------------------------------------

def render(sweep: SweepData, lang: str, tuning: list[dict] | None = None) -> str:
    """The report's HTML for a collected sweep."""
    template = environment(lang).get_template(TEMPLATE_NAME)
    return template.render(**report_context(sweep, lang, tuning))


def report_context(sweep: SweepData, lang: str, tuning: list[dict] | None) -> dict:
    result = analysis.answer(sweep)
    num_classes = sweep.split()["num_classes"]
    return {
        "lang": lang, "sweep": sweep, "config": sweep.config, "answer": result,
        "split": sweep.split(), "chance": sweep.chance_accuracy,
        "provenance": provenance_view(sweep), "parameter_rows": analysis.parameter_rows(sweep),
        "saturation_rows": analysis.saturation_rows(sweep), "tuning": tuning,
        "deepest_measured": _deepest_measured(sweep.depths),
        "uniform_loss": math.log(num_classes) if num_classes else None,
        "near_uniform_depths": near_uniform_depths(sweep.depths, num_classes),
        "softmax_panels": softmax_panels(sweep, result),
        "figures": figure_set(sweep, result, num_classes),
        "by_code": _depths_by_code(result),
        "rules": {"vanishing_ratio": analysis.VANISHING_RATIO,
                  "near_chance": analysis.NEAR_CHANCE_MARGIN,
                  "growth": analysis.EXPLODING_GROWTH, "gap": analysis.OVERFIT_GAP,
                  "underfit": analysis.UNDERFIT_TRAIN_ACCURACY,
                  "marginal": analysis.MARGINAL_GAIN},
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "generator": {"version": depth_experiments.__version__, "commit": git_commit()},
    }


def figure_set(sweep: SweepData, result: analysis.Answer, num_classes: int | None) -> dict:
    present = [run for run in sweep.depths if not run.missing]
    limits = figures.norm_limits(present)
    measured = [run for run in present if run.evidence is not None and run.evidence.epochs]
    return {
        "accuracy": figures.accuracy_vs_depth(sweep.depths, sweep.chance_accuracy),
        "loss": figures.loss_curves(present, num_classes) if present else None,
        "cost": figures.cost(result.cost) if result.cost else None,
        "gradient_profile": figures.layer_profile(measured, "gradient") if measured else None,
        "saturation_profile": figures.layer_profile(measured, "saturation") if measured else None,
        "history": {run.depth: figures.history(run) for run in present if run.history},
        "heat": {run.depth: figures.heat_maps(run, limits) for run in measured},
    }


def _deepest_measured(runs: list[DepthRun]) -> DepthRun | None:
    measured = [run for run in runs if run.evidence is not None and run.evidence.epochs]
    return measured[-1] if measured else None


def near_uniform_depths(runs: list[DepthRun], num_classes: int | None) -> list[int]:
    """Depths whose final training loss stayed at the uniform guess's ln K."""
    if not num_classes:
        return []
    limit = NEAR_UNIFORM_LOSS * math.log(num_classes)
    return [run.depth for run in runs
            if run.final("loss") is not None and run.final("loss") >= limit]


def _depths_by_code(result: analysis.Answer) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for depth, diagnosis in result.diagnoses.items():
        grouped.setdefault(diagnosis.code, []).append(depth)
    return grouped


def softmax_panels(sweep: SweepData, result: analysis.Answer) -> list[dict]:
    """The best and the deepest model's predicted distributions on the same test images."""
    with_predictions = [run for run in sweep.depths if run.predictions is not None]
    if not with_predictions:
        return []
    chosen = [("best", result.best)] if result.best and result.best.predictions else []
    deepest = with_predictions[-1]
    if not chosen or chosen[0][1].depth != deepest.depth:
        chosen.append(("deepest", deepest))
    return [_softmax_panel(sweep, role, run) for role, run in chosen]


def _softmax_panel(sweep: SweepData, role: str, run: DepthRun) -> dict:
    images = _test_images(sweep, run)
    shown = slice(0, SOFTMAX_SAMPLES)
    return {"role": role, "run": run, "with_images": images is not None,
            "figure": figures.softmax(run.predictions, images, SOFTMAX_SAMPLES),
            "stats": analysis.softmax_stats(run.predictions.probabilities[shown],
                                            run.predictions.labels[shown])}


def _test_images(sweep: SweepData, run: DepthRun) -> np.ndarray | None:
    """The digits test images, when cheap (bundled data) and provably the logged ones."""
    config = sweep.config
    if config is None or config.dataset != "digits":
        return None
    from depth_experiments.data import load_splits

    splits = load_splits(config.dataset, config.validation_split, config.seed)
    count = min(SOFTMAX_SAMPLES, len(run.predictions.labels))
    if splits.y_test[:count].tolist() != run.predictions.labels[:count]:
        return None
    return splits.x_test[:count].reshape(count, *splits.image_shape)


def provenance_view(sweep: SweepData) -> dict:
    """Provenance as strings: the JSON artifact and MLflow's own tags are untrusted input."""
    logged = sweep.provenance or {}
    packages = logged.get("packages")
    tags = sweep.tags
    return {
        "available": sweep.provenance is not None,
        "packages": sorted((str(k), str(v)) for k, v in packages.items())
        if isinstance(packages, dict) else [],
        "text": {key: _text(logged.get(key)) for key in
                 ("started_at", "command", "python", "git_commit", "platform", "machine",
                  "processor", "cpu_count", "keras_home")},
        "gpus": ", ".join(map(str, logged.get("gpus") or [])) if isinstance(
            logged.get("gpus"), list) else _text(logged.get("gpus")),
        "mlflow_tags": sorted((key, value) for key, value in tags.items()
                              if key.startswith(("mlflow.source.", "mlflow.project.",
                                                 "mlflow.user")) and key != "mlflow.runName"),
    }


def _text(value) -> str | None:
    return None if value is None else str(value)


# --- entry points -------------------------------------------------------------------------

def write_report(parent_run_id: str, output: Path | str, lang: str = "en",
                 client: MlflowClient | None = None) -> Path:
    """Build the report of the sweep run `parent_run_id` and write it to `output`.

    Works while the sweep run is still open (the sweep calls this just before it ends): the
    report then says whether every depth has an outcome. Returns the written path.
    """
    return _write(client or MlflowClient(), output, lang, sweep_run_id=parent_run_id)


def report_for_experiment(experiment_name: str | None, output: Path | str, lang: str = "en",
                          sweep_run_id: str | None = None,
                          client: MlflowClient | None = None) -> Path:
    """The report of `sweep_run_id`, or else of the experiment's latest finished sweep."""
    return _write(client or MlflowClient(), output, lang, sweep_run_id, experiment_name)


def _write(client: MlflowClient, output: Path | str, lang: str, sweep_run_id: str | None,
           experiment_name: str | None = None) -> Path:
    check_language(lang)
    path = check_output(output)
    sweep = collect_sweep(client, find_sweep(client, experiment_name, sweep_run_id))
    html = render(sweep, lang, collect_tuning(client, sweep))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
