"""depth_experiments: are deeper networks better? Depth sweeps of MLPs tracked in MLflow.

Modules: `config` (the one configuration dataclass), `data`, `models`, `training`,
`diagnostics` (per-layer gradient/activation evidence), `sweep`, `tracking`, `cli`.
Run a sweep with `python -m depth_experiments sweep --dataset digits --epochs 2`.
"""

import os

# TensorFlow's C++ side logs CUDA probes and graph notices that are not errors of ours;
# Python-level warnings and exceptions still show. Setting the variable yourself wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
