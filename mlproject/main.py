"""MLproject entry point `main`: a depth sweep. Parses nothing itself; see depth_experiments.cli."""

from depth_experiments.cli import sweep_main

if __name__ == "__main__":
    raise SystemExit(sweep_main())
