"""MLproject entry point `report`: writes report.html for a sweep. Parses nothing itself;
see `depth_experiments.cli` (`report` command) and `depth_experiments.report`."""

from depth_experiments.cli import report_main

if __name__ == "__main__":
    raise SystemExit(report_main())
