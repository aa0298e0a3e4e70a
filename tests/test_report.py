"""report.html from a fixture store: one real tiny digits sweep plus runs logged directly.

The module fixture trains depths 1 and 6 (2 epochs, diagnostics on), gives the experiment,
a run and a param hostile names, logs an interrupted sweep (a reused depth, a killed depth,
a diverged depth, a missing depth) and an open sweep whose depths are all done, then
renders the reports once. Checks: section ids and order, each depth's accuracy against
MLflow, escaping, self-containment, both languages and the catalog, the diagnosis rules
and the verdict, the command line and `mlflow run -e report`.
The store is built once per session (tests/test_report_browser.py reuses it).
Run: `pytest tests/test_report.py` (about 40 s on 2 cores).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import mlflow
import numpy as np
import pytest

from depth_experiments.config import ConfigError, SweepConfig
from tests.conftest import PROJECT_ROOT, subprocess_env

HOSTILE_RUN = '<img src=x onerror="alert(1)">'
HOSTILE_EXPERIMENT = "<script>alert('experiment')</script> depth"
HOSTILE_PARAM = "</td><script>alert('param')</script>"
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
             "source", "track", "wbr"}


# --- a small DOM for assertions (the standard library has no HTML tree builder) -----------

@dataclass
class Element:
    tag: str
    attrs: dict
    parts: list

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())


class ElementCollector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), [])
        self.elements.append(element)
        if tag not in VOID_TAGS:
            self._open.append(element)

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data):
        for element in self._open:
            element.parts.append(data)


def parse(html: str) -> list[Element]:
    collector = ElementCollector()
    collector.feed(html)
    collector.close()
    return collector.elements


def by_id(elements: list[Element], element_id: str) -> Element:
    return next(element for element in elements if element.attrs.get("id") == element_id)


# --- the fixture store --------------------------------------------------------------------

@dataclass
class FixtureStore:
    root: Path
    uri: str
    experiment_id: str
    sweep_id: str
    partial_id: str
    open_id: str
    depth_runs: dict[int, str]


def build_fixture_store(root: Path, splits, depths: str = "1,6") -> FixtureStore:
    """A real tiny sweep, hostile names, and two sweeps logged directly (no training)."""
    from depth_experiments.sweep import run_sweep

    uri = f"sqlite:///{root}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    experiment_id = client.create_experiment(HOSTILE_EXPERIMENT,
                                             artifact_location=str(root / "artifacts"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        config = SweepConfig(depths=depths, dataset="digits", epochs=2, width=32, probe_size=64)
        result = run_sweep(config, splits)
    depth_runs = {row["depth"]: row["run_id"] for row in result.rows}
    client.set_tag(depth_runs[1], "mlflow.runName", HOSTILE_RUN)
    client.set_tag(result.parent_run_id, "mlflow.source.name", HOSTILE_RUN)
    client.log_param(result.parent_run_id, "note", HOSTILE_PARAM)
    partial_id = _log_interrupted_sweep(client, experiment_id, depth_runs[1], splits)
    open_id = _log_open_sweep(client, experiment_id, depth_runs[1], splits)
    return FixtureStore(root, uri, experiment_id, result.parent_run_id, partial_id, open_id,
                        depth_runs)


def _sweep_run(client, experiment_id: str, depths: str, splits) -> str:
    config = SweepConfig(depths=depths, dataset="digits", epochs=2, width=32)
    run = client.create_run(experiment_id, run_name=HOSTILE_RUN,
                            tags={"depth_experiments.kind": "sweep"})
    run_id = run.info.run_id
    for name, value in config.as_params().items():
        client.log_param(run_id, name, value)
    for name, value in splits.describe().items():
        client.set_tag(run_id, f"depth_experiments.{name}", str(value))
    return run_id


def _log_interrupted_sweep(client, experiment_id: str, reused_run: str, splits) -> str:
    """Depth 1 reused, 3 killed mid-training, 5 diverged, 7 never started; sweep KILLED."""
    sweep_id = _sweep_run(client, experiment_id, "1,3,5,7", splits)
    client.set_tag(sweep_id, "depth_experiments.depth_run.1", reused_run)
    killed = _depth_run(client, experiment_id, sweep_id, 3, {})
    client.log_metric(killed, "loss", 2.31, step=0)
    client.set_terminated(killed, "KILLED")
    diverged = _depth_run(client, experiment_id, sweep_id, 5, {
        "depth_experiments.outcome": "diverged", "depth_experiments.diverged": "true",
        "depth_experiments.collapsed": "false", "depth_experiments.diverged_at_epoch": "1"})
    for epoch, (loss, accuracy) in enumerate([(2.4, 0.11), (math.nan, 0.09)]):
        client.log_metric(diverged, "loss", loss, step=epoch)
        client.log_metric(diverged, "accuracy", accuracy, step=epoch)
    client.log_metric(diverged, "n_parameters", 3562)
    client.set_terminated(diverged, "FAILED")
    client.set_tag(sweep_id, "depth_experiments.depth_run.5", diverged)
    client.set_terminated(sweep_id, "KILLED")
    return sweep_id


def _depth_run(client, experiment_id: str, sweep_id: str, depth: int, tags: dict) -> str:
    run = client.create_run(experiment_id, run_name=f"depth-{depth:02d}", tags={
        "depth_experiments.kind": "depth", "mlflow.parentRunId": sweep_id, **tags})
    client.log_param(run.info.run_id, "depth", str(depth))
    return run.info.run_id


def _log_open_sweep(client, experiment_id: str, done_run: str, splits) -> str:
    """A sweep still RUNNING whose only depth has an outcome: the sweep writing its report."""
    sweep_id = _sweep_run(client, experiment_id, "1", splits)
    client.set_tag(sweep_id, "depth_experiments.depth_run.1", done_run)
    return sweep_id


def session_fixture_store(tmp_path_factory, splits) -> FixtureStore:
    """The fixture store, built once per test session and shared with the browser test
    through a manifest in the session's temporary folder (training is the slow part)."""
    root = tmp_path_factory.getbasetemp() / "report_fixture_store"
    manifest = root / "store.json"
    if manifest.exists():
        fields = json.loads(manifest.read_text())
        return FixtureStore(**{**fields, "root": Path(fields["root"]),
                               "depth_runs": {int(k): v for k, v in fields["depth_runs"].items()}})
    root.mkdir()
    store = build_fixture_store(root, splits)
    manifest.write_text(json.dumps({**dataclasses.asdict(store), "root": str(store.root)}))
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory, digits_splits) -> FixtureStore:
    return session_fixture_store(tmp_path_factory, digits_splits)


@pytest.fixture(scope="module")
def reports(store) -> dict[str, str]:
    """The real sweep in both languages, chosen by experiment name; the others by run id."""
    from depth_experiments.report import report_for_experiment, write_report

    client = mlflow.MlflowClient(store.uri)
    paths = {lang: report_for_experiment(HOSTILE_EXPERIMENT, store.root / f"report-{lang}.html",
                                         lang, client=client) for lang in ("en", "zh-TW")}
    paths["partial"] = write_report(store.partial_id, store.root / "out" / "partial.html",
                                    "en", client)
    paths["open"] = write_report(store.open_id, store.root / "open.html", "zh-TW", client)
    return {name: Path(path).read_text(encoding="utf-8") for name, path in paths.items()}


# --- structure and numbers ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["en", "zh-TW", "partial", "open"])
def test_sections_q1_to_q4_in_order(reports, name):
    elements = parse(reports[name])
    sections = [element.attrs["id"] for element in elements if element.tag == "section"]
    assert sections == ["q1", "q2", "q3", "q4"]
    for sub in ("q2a", "q2b", "q2c", "q2d"):
        by_id(elements, sub)


def test_each_depth_accuracy_is_what_mlflow_holds(store, reports):
    client = mlflow.MlflowClient(store.uri)
    for lang in ("en", "zh-TW"):
        rows = [element for element in parse(reports[lang]) if "depth-row" in element.classes]
        assert [int(row.attrs["data-depth"]) for row in rows] == sorted(store.depth_runs)
        for row in rows:
            held = client.get_run(store.depth_runs[int(row.attrs["data-depth"])]).data.metrics
            assert float(row.attrs["data-test-accuracy"]) == held["test_accuracy"]
            assert f"{held['test_accuracy'] * 100:.1f}%" in row.text


def test_the_latest_finished_sweep_is_reported_and_named(store, reports):
    header = parse(reports["en"])
    assert store.sweep_id in next(e for e in header if e.tag == "header").text


def test_parameter_formula_matches_every_logged_count(store, reports):
    client = mlflow.MlflowClient(store.uri)
    table = by_id(parse(reports["en"]), "parameter-table")
    for depth, run_id in store.depth_runs.items():
        logged = int(client.get_run(run_id).data.metrics["n_parameters"])
        assert f"{logged:,}" in table.text
    assert table.text.count("✓") == len(store.depth_runs) and "✗" not in table.text


def test_every_depth_has_inline_figures_and_the_accuracy_chart(store, reports):
    elements = parse(reports["en"])
    figure_ids = ["accuracy-vs-depth", "loss-curves", "gradient-profile", "cost",
                  *[f"history-{depth}" for depth in store.depth_runs],
                  *[f"heat-{depth}" for depth in store.depth_runs]]
    position = {id(element): index for index, element in enumerate(elements)}
    for figure_id in figure_ids:
        figure = by_id(elements, figure_id)
        image = next(e for e in elements[position[id(figure)]:] if e.tag == "img")
        prefix, payload = image.attrs["src"].split(",", 1)
        assert prefix == "data:image/svg+xml;base64"
        root = ElementTree.fromstring(base64.b64decode(payload))
        assert root.tag.endswith("svg")


def test_diagnosis_rows_use_the_logged_gradient_evidence(store, reports):
    from depth_experiments.report import analysis
    from depth_experiments.report.render import format_scientific

    client = mlflow.MlflowClient(store.uri)
    rows = [e for e in parse(reports["en"]) if "diagnosis-row" in e.classes]
    assert [int(row.attrs["data-depth"]) for row in rows] == sorted(store.depth_runs)
    for row in rows:
        metrics = client.get_run(store.depth_runs[int(row.attrs["data-depth"])]).data.metrics
        assert row.attrs["data-diagnosis"] in analysis.DIAGNOSIS_CODES
        assert format_scientific(metrics["grad_norm_ratio_first_to_last"]) in row.text


# --- safety -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["en", "zh-TW", "partial"])
def test_hostile_names_and_params_appear_as_text(reports, name):
    html = reports[name]
    elements = parse(html)
    assert not [e for e in elements if e.tag == "script"]
    assert not [e for e in elements if e.tag == "img" and e.attrs.get("src") == "x"]
    assert not [(e.tag, key) for e in elements for key in e.attrs if key.startswith("on")]
    run_names = [e.text for e in elements if "run-name" in e.classes]
    assert HOSTILE_RUN in run_names
    header = next(e for e in elements if e.tag == "header")
    assert HOSTILE_EXPERIMENT in header.text
    assert HOSTILE_EXPERIMENT in next(e for e in elements if e.tag == "title").text
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html


def test_hostile_param_is_escaped_in_the_configuration_table(reports):
    html = reports["en"]
    assert "&lt;/td&gt;&lt;script&gt;" in html
    assert HOSTILE_PARAM in by_id(parse(html), "q1").text


@pytest.mark.parametrize("name", ["en", "zh-TW"])
def test_the_file_fetches_nothing_and_needs_no_javascript(reports, name):
    html = reports[name]
    elements = parse(html)
    for element in elements:
        for key in ("src", "href", "action", "srcset", "poster", "data"):
            value = element.attrs.get(key)
            if value is not None:
                assert value.startswith(("data:", "#")), (element.tag, key, value[:60])
    assert not [e for e in elements if e.tag in ("link", "iframe", "object", "embed")]
    style = "".join(e.text for e in elements if e.tag == "style")
    assert "@import" not in style and not re.search(r"url\(\s*['\"]?(?!data:)", style)
    policy = next(e for e in elements if e.attrs.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in policy.attrs["content"]
    assert "@media print" in style


# --- languages ----------------------------------------------------------------------------

def test_both_languages_set_html_lang_and_translate_the_same_numbers(reports):
    english, chinese = parse(reports["en"]), parse(reports["zh-TW"])
    assert english[0].tag == "html" and english[0].attrs["lang"] == "en"
    assert chinese[0].tag == "html" and chinese[0].attrs["lang"] == "zh-TW"
    assert "越深的網路越好嗎？" in chinese[0].text and "Are deeper networks better?" not in chinese[0].text
    assert "Are deeper networks better?" in english[0].text and "網路" not in english[0].text
    numbers = lambda elements: [(e.attrs["data-depth"], e.attrs["data-test-accuracy"])
                                for e in elements if "depth-row" in e.classes]
    assert numbers(english) == numbers(chinese)
    assert by_id(english, "verdict").attrs["data-verdict"] == by_id(chinese, "verdict").attrs["data-verdict"]


def test_the_catalog_translates_every_template_message():
    from babel.messages.pofile import read_po
    from jinja2.ext import babel_extract

    from depth_experiments.report.render import LOCALE_DIR, TEMPLATE_DIR

    extracted = _template_messages(TEMPLATE_DIR, babel_extract)
    with (LOCALE_DIR / "zh_TW" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="zh_TW")
    translated = {message.id: message.string for message in catalog if message.id}
    assert extracted, "no messages extracted"
    assert sorted(extracted - set(translated)) == []
    assert [message for message in extracted if not translated[message]] == []
    assert not [message.id for message in catalog if message.id and message.fuzzy]
    # Placeholders (%(name)s) must survive translation.
    assert [(message.id, errors) for message, errors in catalog.check()] == []


def _template_messages(template_dir: Path, extractor) -> set[str]:
    messages = set()
    for path in sorted(template_dir.glob("*.j2")):
        with path.open("rb") as handle:
            for _, _, message, _ in extractor(handle, ["_", "gettext", "ngettext"], [],
                                              {"extensions": "jinja2.ext.i18n", "trimmed": "true"}):
                messages.add(message if isinstance(message, str) else message[0])
    return messages


# --- partial and open sweeps --------------------------------------------------------------

def test_an_interrupted_sweep_says_what_is_missing_unfinished_and_diverged(store, reports):
    elements = parse(reports["partial"])
    notices = by_id(elements, "notices").text
    assert "partial sweep" in notices and "Missing depths (no run): 7." in notices
    assert "Depth 3 has no result: its run is killed." in notices
    assert "Training diverged (non-finite loss) at depth 5" in notices
    diagnoses = {int(e.attrs["data-depth"]): e.attrs["data-diagnosis"]
                 for e in elements if "diagnosis-row" in e.classes}
    assert diagnoses[3] == "unfinished" and diagnoses[5] == "exploding" and diagnoses[7] == "missing"
    rows = {int(e.attrs["data-depth"]): e for e in elements if "depth-row" in e.classes}
    assert sorted(rows) == [1, 3, 5, 7]
    assert "reused from an earlier sweep" in rows[1].text
    assert "diverged (epoch 1)" in rows[5].text and rows[5].attrs["data-test-accuracy"] == ""
    assert "missing" in rows[7].text and by_id(elements, "history-7")


def test_a_sweep_writing_its_own_report_is_reported_as_done(reports):
    notices = by_id(parse(reports["open"]), "notices").text
    assert "但每個深度都已有結果" in notices


def test_latest_finished_sweep_is_preferred_to_newer_unfinished_ones(store):
    from depth_experiments.report.collect import find_sweep

    client = mlflow.MlflowClient(store.uri)
    assert find_sweep(client, HOSTILE_EXPERIMENT).info.run_id == store.sweep_id
    assert find_sweep(client, None, store.partial_id).info.run_id == store.partial_id


@pytest.mark.parametrize("arguments, parameter", [
    (dict(experiment_name="no such experiment"), "experiment_name"),
    (dict(experiment_name=None, sweep_run_id="0" * 32), "sweep_run_id"),
    (dict(experiment_name="Default", sweep_run_id=None), "experiment_name"),
])
def test_bad_experiment_or_run_raises_a_config_error_naming_it(store, arguments, parameter):
    from depth_experiments.report.collect import find_sweep

    with pytest.raises(ConfigError) as raised:
        find_sweep(mlflow.MlflowClient(store.uri), **arguments)
    assert raised.value.parameter == parameter and "\n" not in str(raised.value)


def test_a_depth_run_is_not_a_sweep(store):
    from depth_experiments.report import write_report

    with pytest.raises(ConfigError, match="sweep_run_id: .* is not a sweep"):
        write_report(store.depth_runs[1], store.root / "x.html", client=mlflow.MlflowClient(store.uri))


@pytest.mark.parametrize("lang, output, parameter", [
    ("fr", "r.html", "lang"), ("en", "", "output"), ("en", ".", "output")])
def test_bad_language_or_output_is_refused_before_reading_mlflow(store, lang, output, parameter):
    from depth_experiments.report import write_report

    with pytest.raises(ConfigError) as raised:
        write_report(store.sweep_id, output, lang, client=mlflow.MlflowClient(store.uri))
    assert raised.value.parameter == parameter


def test_a_sweep_with_unreadable_params_still_renders_and_says_why(tmp_path):
    from depth_experiments.report import write_report

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("broken", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(experiment, tags={"depth_experiments.kind": "sweep"}).info.run_id
    client.log_param(run_id, "depths", "1,2,x")
    client.log_param(run_id, "epochs", "-5")
    client.set_terminated(run_id, "FAILED")
    elements = parse(write_report(run_id, tmp_path / "r.html", "en", client).read_text())
    notices = by_id(elements, "notices").text
    assert "this report shows a partial sweep" in notices
    assert "sweep param depths unreadable" in notices and "epochs: got -5" in notices
    assert by_id(elements, "verdict").attrs["data-verdict"] == "insufficient"
    assert [e.attrs["id"] for e in elements if e.tag == "section"] == ["q1", "q2", "q3", "q4"]


def test_a_tuned_sweep_shows_the_learning_rate_beside_the_untuned_run(tmp_path, digits_splits):
    from depth_experiments.report import write_report

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("tuned", artifact_location=str(tmp_path / "artifacts"))
    untuned = SweepConfig(depths="2", dataset="digits", epochs=2)
    untuned_run = client.create_run(experiment, tags={
        "depth_experiments.kind": "depth", "depth_experiments.outcome": "trained",
        "depth_experiments.run_key": untuned.identity(2)}).info.run_id
    client.log_metric(untuned_run, "test_accuracy", 0.61)
    client.set_terminated(untuned_run, "FINISHED")
    tuned = dataclasses.replace(untuned, tune=True)
    sweep_id = client.create_run(experiment, tags={"depth_experiments.kind": "sweep"}).info.run_id
    for name, value in tuned.as_params().items():
        client.log_param(sweep_id, name, value)
    tuned_run = _depth_run(client, experiment, sweep_id, 2, {
        "depth_experiments.outcome": "trained", "depth_experiments.run_key": tuned.identity(2)})
    client.log_metric(tuned_run, "test_accuracy", 0.93)
    client.log_metric(tuned_run, "best_learning_rate", 0.0042)
    client.set_terminated(tuned_run, "FINISHED")
    client.set_terminated(sweep_id, "FINISHED")
    table = by_id(parse(write_report(sweep_id, tmp_path / "r.html", "en", client).read_text()),
                  "tuning-table")
    assert "4.2 × 10⁻³" in table.text and "93.0%" in table.text and "61.0%" in table.text


# --- the rules and the verdict, on synthetic runs -----------------------------------------

def depth_run(depth: int, **values):
    from depth_experiments.report.collect import DepthRun

    history = {key: values.pop(key) for key in list(values)
               if key in ("accuracy", "val_accuracy", "loss", "grad_norm_max",
                          "grad_nonfinite_layers")}
    return DepthRun(depth, run_id=f"run{depth}", status=values.pop("status", "FINISHED"),
                    outcome=values.pop("outcome", "trained"), history=history, metrics=values)


@pytest.mark.parametrize("run, code, triggered", [
    (dict(outcome="diverged", status="FAILED"), "exploding", ("diverged",)),
    (dict(test_accuracy=0.5, grad_nonfinite_layers=[0, 2], accuracy=[0.5], val_accuracy=[0.5]),
     "exploding", ("nonfinite_layers",)),
    (dict(test_accuracy=0.9, grad_norm_max=[0.1, 50.0], accuracy=[0.95], val_accuracy=[0.9]),
     "exploding", ("growth",)),
    (dict(test_accuracy=0.11, grad_norm_ratio_first_to_last=1e-4, accuracy=[0.1],
          val_accuracy=[0.1]), "vanishing", ("ratio", "test_accuracy")),
    (dict(test_accuracy=0.11, grad_norm_ratio_first_to_last=0.5, accuracy=[0.1],
          val_accuracy=[0.1]), "underfitting", ("train_accuracy",)),
    (dict(test_accuracy=0.60, grad_norm_ratio_first_to_last=1e-4, accuracy=[0.99],
          val_accuracy=[0.6]), "overfitting", ("gap",)),
    (dict(test_accuracy=0.95, grad_norm_ratio_first_to_last=0.3, accuracy=[0.97],
          val_accuracy=[0.95]), "trained_well", ()),
    (dict(outcome=None, status="RUNNING"), "unfinished", ()),
])
def test_diagnosis_rules(run, code, triggered):
    from depth_experiments.report.analysis import diagnose

    diagnosis = diagnose(depth_run(5, **run), chance=0.1)
    assert (diagnosis.code, diagnosis.triggered) == (code, triggered)


def test_a_missing_depth_is_diagnosed_missing():
    from depth_experiments.report.analysis import diagnose
    from depth_experiments.report.collect import DepthRun

    assert diagnose(DepthRun(9), chance=0.1).code == "missing"


@pytest.mark.parametrize("accuracies, verdict", [
    ({1: 0.9, 5: 0.8, 9: 0.1}, "no"),
    ({1: 0.5, 5: 0.7, 9: 0.9}, "yes"),
    ({1: 0.5, 5: 0.9, 9: 0.6}, "peak"),
    ({1: 0.900, 5: 0.905, 9: 0.2}, "marginal"),
    ({1: 0.9}, "insufficient"),
])
def test_verdict_from_accuracies(accuracies, verdict):
    from scipy.stats import spearmanr

    from depth_experiments.report import analysis
    from depth_experiments.report.collect import SweepData

    runs = [depth_run(depth, test_accuracy=acc) for depth, acc in accuracies.items()]
    sweep = SweepData("s", "", "0", "e", "FINISHED", None, None, {}, {}, None,
                      list(accuracies), None, None, runs)
    result = analysis.answer(sweep)
    assert result.verdict == verdict
    if len(accuracies) >= 3:
        assert result.rho == pytest.approx(spearmanr(list(accuracies), list(accuracies.values())).statistic)
    best = max(accuracies, key=accuracies.get)
    assert result.best.depth == best


def test_scientific_format_keeps_magnitude():
    from depth_experiments.report.render import format_percent, format_scientific

    assert format_scientific(2.8373e-8) == "2.8 × 10⁻⁸"
    assert format_scientific(0.5) == "0.5" and format_scientific(None) == "—"
    assert format_scientific(float("nan")) == "—" and format_percent(0.35833) == "35.8%"
    assert format_scientific(np.float64(3e5)) == "3.0 × 10⁵"


# --- the command line and the MLflow entry point ------------------------------------------

def test_cli_rejects_a_bad_language_in_one_line(capsys):
    from depth_experiments.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["report", "--experiment-name", "x", "--lang", "fr"])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--lang" in lines[0]


def test_cli_names_a_missing_experiment_in_one_line(store, capsys, monkeypatch):
    from depth_experiments.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    assert main(["report", "--experiment-name", "nope", "--output", str(store.root / "n.html")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["depth-experiments: error: experiment_name: no experiment named 'nope' in "
                     "the tracking store (MLFLOW_TRACKING_URI)"]
    assert main(["report"]) == 2
    assert "experiment_name: give --experiment-name or --sweep-run-id" in capsys.readouterr().err


def test_mlflow_run_report_entry_point_writes_and_logs_the_report(store):
    output = store.root / "from-mlflow-run.html"
    command = [os.path.join(os.path.dirname(sys.executable), "mlflow"), "run", str(PROJECT_ROOT),
               "-e", "report", "--env-manager", "local", "--experiment-id", store.experiment_id,
               "-P", f"experiment_name={HOSTILE_EXPERIMENT}", "-P", f"output={output}",
               "-P", "lang=zh-TW"]
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=subprocess_env(store.uri),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    elements = parse(output.read_text(encoding="utf-8"))
    assert elements[0].attrs["lang"] == "zh-TW"
    assert store.sweep_id in next(e for e in elements if e.tag == "header").text
    client = mlflow.MlflowClient(store.uri)
    project_runs = [run for run in client.search_runs([store.experiment_id])
                    if run.data.tags.get("mlflow.project.entryPoint") == "report"]
    assert len(project_runs) == 1 and project_runs[0].info.status == "FINISHED"
    logged = {item.path for item in client.list_artifacts(project_runs[0].info.run_id)}
    assert logged == {"from-mlflow-run.html"}
