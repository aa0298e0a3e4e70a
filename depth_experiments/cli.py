"""Command line: `depth-experiments sweep ...` (also `python -m depth_experiments sweep ...`).

The options are generated from `SweepConfig`'s fields, so the CLI cannot drift from the
dataclass; `MLproject`'s entry points call these same functions. Bad values exit with status
2 and one line on stderr naming the parameter; no MLflow run is started before the whole
configuration is valid.

    depth-experiments sweep --dataset digits --depths 1,5,...,13 --epochs 2
    depth-experiments report --experiment-name NAME --output report.html --lang zh-TW
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Sequence

from depth_experiments.config import ConfigError, SweepConfig
from depth_experiments.data import DataUnavailableError

EXIT_BAD_INPUT, EXIT_NO_DATA = 2, 3


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus an error; users asked for one line naming the problem."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def add_config_options(parser: argparse.ArgumentParser, config_class=SweepConfig) -> None:
    for spec in dataclasses.fields(config_class):
        names = dict.fromkeys([f"--{spec.name}", f"--{spec.name.replace('_', '-')}"])
        default = spec.default
        shown = str(default).lower() if isinstance(default, bool) else default
        choices = f" ({', '.join(spec.metadata['choices'])})" if spec.metadata["choices"] else ""
        parser.add_argument(*names, dest=spec.name, default=None, metavar="VALUE",
                            help=f"{spec.metadata['help']}{choices}; default {shown}")


def config_from_args(args: argparse.Namespace, config_class=SweepConfig):
    values = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(config_class)}
    return config_class.from_strings(values)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="depth-experiments",
                           description="Are deeper networks better? Depth sweeps tracked in MLflow.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    sweep = commands.add_parser("sweep", help="train every depth and summarise the sweep")
    add_config_options(sweep)
    sweep.add_argument("--experiment-name", default=None,
                       help="MLflow experiment (default: MLFLOW_EXPERIMENT_NAME or MLflow's default)")
    report = commands.add_parser("report", help="write report.html for a sweep from MLflow")
    add_report_options(report)
    return parser


def add_report_options(parser: argparse.ArgumentParser) -> None:
    from depth_experiments.report import LANGUAGES

    # Both spellings: MLproject passes --experiment_name, people type --experiment-name.
    parser.add_argument("--experiment-name", "--experiment_name", dest="experiment_name",
                        default=None, help="experiment whose latest finished sweep is reported")
    parser.add_argument("--output", default="report.html", help="HTML file to write; "
                        "default report.html")
    parser.add_argument("--lang", default="en", choices=LANGUAGES,
                        help=f"report language ({', '.join(LANGUAGES)}); default en")
    parser.add_argument("--sweep-run-id", "--sweep_run_id", dest="sweep_run_id", default=None,
                        help="report this sweep run instead of the experiment's latest")


def sweep_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    import_tensorflow_quietly()
    import mlflow

    from depth_experiments.sweep import run_sweep

    if args.experiment_name and not os.environ.get("MLFLOW_RUN_ID"):
        mlflow.set_experiment(args.experiment_name)
    result = run_sweep(config)
    print(f"sweep run {result.parent_run_id} in experiment {result.experiment_id}; "
          f"tracking store {mlflow.get_tracking_uri()}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    if not args.experiment_name and not args.sweep_run_id:
        raise ConfigError("experiment_name", "give --experiment-name or --sweep-run-id")
    import_tensorflow_quietly()
    import mlflow

    from depth_experiments.report import report_for_experiment

    path = report_for_experiment(args.experiment_name or None, args.output, args.lang,
                                 args.sweep_run_id or None)
    project_run = os.environ.get("MLFLOW_RUN_ID")
    if project_run:
        # Under `mlflow run -e report` the file is also kept on that run, for the MLflow UI.
        mlflow.MlflowClient().log_artifact(project_run, str(path))
    print(f"report written to {path.resolve()} ({args.lang})")
    return 0


COMMANDS = {"sweep": sweep_command, "report": report_command}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as error:
        print(f"depth-experiments: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DataUnavailableError as error:
        print(f"depth-experiments: error: {error}", file=sys.stderr)
        return EXIT_NO_DATA
    except KeyboardInterrupt:
        print("depth-experiments: interrupted; finished depths are kept and a rerun resumes",
              file=sys.stderr)
        return 130


def sweep_main(argv: Sequence[str] | None = None) -> int:
    """Entry for `mlproject/main.py`: the `sweep` command's options without the word."""
    return main(["sweep", *(sys.argv[1:] if argv is None else argv)])


def report_main(argv: Sequence[str] | None = None) -> int:
    """Entry for `mlproject/report.py`: the `report` command's options without the word."""
    return main(["report", *(sys.argv[1:] if argv is None else argv)])


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with file descriptor 2 muted: it logs CUDA probes before its own
    log level applies. Skipped when the user set TF_CPP_MIN_LOG_LEVEL to see them."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") not in ("2", "3") or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
