"""`python -m depth_experiments sweep|report ...`: the command line (see `cli`)."""

from depth_experiments.cli import main

raise SystemExit(main())
