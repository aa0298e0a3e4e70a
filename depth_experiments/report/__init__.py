"""report.html: the assignment answered from one sweep's MLflow runs.

Takes a sweep run (by id, or the latest finished sweep of an experiment) from the tracking
store in `MLFLOW_TRACKING_URI`; writes one self-contained HTML file (CSS and figures inline,
no JavaScript, no external fetch) in English (`en`) or Traditional Chinese (`zh-TW`), with
sections q1 (provenance), q2 (theory, tied to this sweep's numbers), q3 (the comparison)
and q4 (the answer, with a per-depth diagnosis from the rules in `analysis`).

    depth-experiments report --experiment-name NAME --output report.html --lang zh-TW
    mlflow run . -e report -P experiment_name=NAME -P output=report.html -P lang=en

From Python (the sweep calls this at its end and logs the file on the parent run):

    from depth_experiments.report import write_report
    write_report(parent_run_id, Path("report.html"), lang="en")

Modules: `collect` (read MLflow), `analysis` (rules and answers), `figures` (inline SVG),
`render` (Jinja2 + Babel). Templates and catalogs live in `report_templates/`.
"""

from __future__ import annotations

from pathlib import Path

# The functions below import the renderer (and with it Keras) only when called, so that
# the CLI can validate its options, and `sweep` import this package, at no cost.
from depth_experiments.config import REPORT_LANGUAGES as LANGUAGES  # noqa: E402


def write_report(parent_run_id: str, output: Path | str, lang: str = "en", client=None) -> Path:
    """Write the report of the sweep run `parent_run_id` to `output` and return its path.

    `lang` is `en` or `zh-TW`; `client` an `mlflow.MlflowClient` (default: the current
    tracking URI). Safe to call while the sweep run is still open, e.g. just before it ends.
    Bad arguments raise `depth_experiments.config.ConfigError` naming the parameter.
    """
    from depth_experiments.report import render

    return render.write_report(parent_run_id, output, lang, client)


def report_for_experiment(experiment_name: str | None, output: Path | str, lang: str = "en",
                          sweep_run_id: str | None = None, client=None) -> Path:
    """The report of `sweep_run_id`, or else of the experiment's latest finished sweep."""
    from depth_experiments.report import render

    return render.report_for_experiment(experiment_name, output, lang, sweep_run_id, client)


__all__ = ["LANGUAGES", "report_for_experiment", "write_report"]
