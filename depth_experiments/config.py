"""The one source of truth for a sweep's configuration.

`SweepConfig` is a frozen dataclass: every field has its single default here, and its
metadata says how a command-line string is parsed, which values are allowed, and whether the
field changes what a depth run computes (its *identity*, used to reuse finished runs).
`MLproject`, the CLI (`depth_experiments.cli`) and `log_params` all derive from it;
`tests/test_config.py` checks that `MLproject` has not drifted.

Build one from strings (as the entry points receive them) with `SweepConfig.from_strings`;
bad values raise `ConfigError`, whose message is one line naming the parameter.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

MAX_DEPTH = 1000
MAX_DEPTH_COUNT = 200
DEPTHS_FORMS = "a comma list like 1,5,13 or a progression like 1,5,9,...,37"

DATASETS = ("fashion_mnist", "mnist", "cifar10", "digits")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "elu", "selu", "gelu", "linear")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                "lecun_normal", "random_normal")
NORMALIZATIONS = ("none", "batch", "layer")
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adamw")
REPORT_LANGUAGES = ("en", "zh-TW")
JOURNAL_SCHEME = "journal://"


class ConfigError(ValueError):
    """A parameter value that is not allowed; the message is one line for the user."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


def parse_depths(text: str) -> tuple[int, ...]:
    """Parse `1,5,13` or `1,5,9,...,37` into a strictly increasing tuple of depths."""
    parts = [part.strip() for part in str(text).split(",")]
    if not text or not str(text).strip() or any(part == "" for part in parts):
        _depths_error(f"got {text!r}")
    if "..." in parts:
        depths = _expand_progression(parts, text)
    else:
        depths = [_depth_number(part, text) for part in parts]
    _check_depth_list(depths, text)
    return tuple(depths)


def _depths_error(detail: str) -> None:
    raise ConfigError("depths", f"{detail}; expected {DEPTHS_FORMS} "
                      f"(positive integers up to {MAX_DEPTH}, increasing, no duplicates)")


def _depth_number(part: str, text: str) -> int:
    try:
        number = int(part)
    except ValueError:
        _depths_error(f"{part!r} in {text!r} is not an integer")
    if number < 1 or number > MAX_DEPTH:
        _depths_error(f"{number} in {text!r} is out of range")
    return number


def _expand_progression(parts: list[str], text: str) -> list[int]:
    dots = parts.index("...")
    if parts.count("...") != 1 or dots < 2 or dots != len(parts) - 2:
        _depths_error(f"'...' in {text!r} must follow two numbers and precede the last one")
    head = [_depth_number(part, text) for part in parts[:dots]]
    last = _depth_number(parts[-1], text)
    step = head[-1] - head[-2]
    if step <= 0:
        _depths_error(f"the progression in {text!r} does not increase")
    if (last - head[-1]) % step != 0 or last <= head[-1]:
        _depths_error(f"{last} is not on the progression {head[-2]},{head[-1]},... (step {step})")
    if (last - head[-1]) // step > MAX_DEPTH_COUNT:
        _depths_error(f"{text!r} expands to more than {MAX_DEPTH_COUNT} depths")
    return head + list(range(head[-1] + step, last + 1, step))


def _check_depth_list(depths: list[int], text: str) -> None:
    if len(depths) > MAX_DEPTH_COUNT:
        _depths_error(f"{text!r} has more than {MAX_DEPTH_COUNT} depths")
    if len(set(depths)) != len(depths):
        _depths_error(f"{text!r} repeats a depth")
    if any(later <= earlier for earlier, later in zip(depths, depths[1:])):
        _depths_error(f"{text!r} is not increasing")


def _option(default: Any, help: str, *, choices: tuple = (), minimum: float | None = None,
            maximum: float | None = None, exclusive_minimum: bool = False,
            identity: bool = True, tuning_only: bool = False) -> Any:
    """A dataclass field whose metadata drives parsing, validation and the CLI help.

    `tuning_only` identity fields count only when `tune` is on, so untuned runs keep the
    identity they had before tuning existed and do not depend on the search range."""
    metadata = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum,
                "exclusive_minimum": exclusive_minimum, "identity": identity,
                "tuning_only": tuning_only}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class SweepConfig:
    """Everything that defines a depth sweep. Depth runs with equal `identity()` are equal."""

    depths: str = _option("1,5,9,...,37", f"hidden-layer counts: {DEPTHS_FORMS}",
                          identity=False)
    dataset: str = _option("fashion_mnist", "data set", choices=DATASETS)
    epochs: int = _option(15, "training epochs per depth", minimum=1, maximum=10_000)
    batch_size: int = _option(128, "mini-batch size", minimum=1, maximum=1_000_000)
    width: int = _option(128, "units in every hidden layer", minimum=1, maximum=100_000)
    activation: str = _option("sigmoid", "hidden-layer activation", choices=ACTIVATIONS)
    initializer: str = _option("glorot_uniform", "kernel initialiser", choices=INITIALIZERS)
    normalization: str = _option("none", "normalisation after each hidden layer",
                                 choices=NORMALIZATIONS)
    residual: bool = _option(False, "add a skip connection around every hidden layer "
                             "after the first")
    optimizer: str = _option("adam", "optimiser", choices=OPTIMIZERS)
    learning_rate: float = _option(0.001, "learning rate", minimum=0.0, maximum=1e6,
                                   exclusive_minimum=True)
    validation_split: float = _option(0.1, "fraction of the training data held out for "
                                      "validation", minimum=0.0, maximum=0.9,
                                      exclusive_minimum=True)
    seed: int = _option(42, "random seed for the split, initial weights and batch order",
                        minimum=0, maximum=2**31 - 1)
    diagnostics_every: int = _option(1, "log per-layer gradient/activation diagnostics every "
                                     "N epochs (0 switches them off)", minimum=0,
                                     maximum=10_000)
    probe_size: int = _option(256, "training samples in the fixed diagnostics probe batch",
                              minimum=1, maximum=100_000)
    rerun: bool = _option(False, "train every depth even if a finished run with the same "
                          "config exists", identity=False)
    tune: bool = _option(False, "give every depth its own Optuna study over the learning rate "
                         "(validation accuracy) and train it with the best one",
                         tuning_only=True)
    n_trials: int = _option(20, "Optuna trials per depth in total; a rerun with more tops the "
                            "same study up", minimum=1, maximum=10_000, identity=False)
    lr_min: float = _option(1e-5, "lowest learning rate tried when tuning (log scale)",
                            minimum=0.0, maximum=1e6, exclusive_minimum=True, tuning_only=True)
    lr_max: float = _option(0.1, "highest learning rate tried when tuning (log scale)",
                            minimum=0.0, maximum=1e6, exclusive_minimum=True, tuning_only=True)
    storage: str = _option("", "Optuna storage: a database URL (sqlite:///optuna.db, "
                           "postgresql://host/db) or a journal file (journal:///path.log or "
                           "path.log); empty: optuna.db beside the MLflow store",
                           identity=False)
    n_jobs: int = _option(1, "trials trained at once per depth (threads); above 1 needs a "
                          "PostgreSQL or journal-file storage", minimum=1, maximum=64,
                          identity=False)
    report: str = _option("report.html", "file the sweep writes its HTML report to (it is "
                          "also logged on the sweep run); empty: only log it", identity=False)
    lang: str = _option("en", "language of the report", choices=REPORT_LANGUAGES,
                        identity=False)

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            _validate(spec, getattr(self, spec.name))
        parse_depths(self.depths)
        _check_tuning(self)

    @property
    def depth_list(self) -> tuple[int, ...]:
        return parse_depths(self.depths)

    @classmethod
    def from_strings(cls, values: Mapping[str, str | None]) -> "SweepConfig":
        """Build from command-line strings; a missing or None value takes the default."""
        unknown = set(values) - {spec.name for spec in dataclasses.fields(cls)}
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(name, "unknown parameter")
        parsed = {spec.name: _convert(spec, values[spec.name])
                  for spec in dataclasses.fields(cls) if values.get(spec.name) is not None}
        return cls(**parsed)

    def as_params(self) -> dict[str, str]:
        """All fields as MLflow params (strings), plus the expanded depth list."""
        params = {spec.name: _format(getattr(self, spec.name))
                  for spec in dataclasses.fields(self)}
        params["storage"] = redact_password(self.storage)
        params["depth_list"] = ",".join(str(depth) for depth in self.depth_list)
        return params

    def identity(self, depth: int) -> str:
        """A stable key for the depth run this config trains at `depth`."""
        fields = {spec.name: _format(getattr(self, spec.name))
                  for spec in dataclasses.fields(self) if spec.metadata["identity"]
                  and (self.tune or not spec.metadata["tuning_only"])}
        fields["depth"] = str(depth)
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]


def storage_kind(storage: str) -> str:
    """"sqlite", "journal" or "rdb" (another database) for a `storage` value; "" is the
    SQLite file beside the MLflow store."""
    if storage.startswith(JOURNAL_SCHEME) or storage.endswith(".log"):
        if not storage.removeprefix(JOURNAL_SCHEME).strip():
            raise ConfigError("storage", f"got {storage!r}; a journal storage needs a file path")
        return "journal"
    if storage == "" or storage.startswith("sqlite:"):
        return "sqlite"
    if "://" in storage:
        try:
            urlsplit(storage).port
        except ValueError as error:
            raise ConfigError("storage", f"got {storage!r}; not a valid URL ({error})") from None
        return "rdb"
    raise ConfigError("storage", f"got {storage!r}; expected a database URL (sqlite:///path.db, "
                      "postgresql://user@host/db), journal:///path.log, a path ending in .log, "
                      "or empty for optuna.db beside the MLflow store")


def redact_password(url: str) -> str:
    """The URL with any password masked, for logging (MLflow params are readable by all)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _check_tuning(config: SweepConfig) -> None:
    """Rules that involve several tuning fields."""
    if config.lr_min >= config.lr_max:
        raise ConfigError("lr_max", f"got {config.lr_max!r}; must be above lr_min "
                          f"({config.lr_min!r})")
    kind = storage_kind(config.storage)
    if config.tune and config.n_jobs > 1 and kind == "sqlite":
        raise ConfigError("n_jobs", f"got {config.n_jobs} with a SQLite storage, which is not "
                          "safe for concurrent writers; set storage to a PostgreSQL URL "
                          "(postgresql://user@host/db) or a journal file "
                          "(journal:///path/optuna.log), or use n_jobs=1")


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _convert(spec: dataclasses.Field, text: Any) -> Any:
    """Turn a command-line string into the field's type, or raise ConfigError."""
    kind = type(spec.default)
    if not isinstance(text, str):
        return text
    text = text.strip()
    if kind is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(spec.name, f"got {text!r}; expected true or false")
        return lowered in ("true", "1", "yes")
    if kind in (int, float):
        try:
            number = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise ConfigError(spec.name, f"got {text!r}; expected {expected}") from None
        return number
    return text


def _validate(spec: dataclasses.Field, value: Any) -> None:
    meta = spec.metadata
    if meta["choices"] and value not in meta["choices"]:
        raise ConfigError(spec.name, f"got {value!r}; allowed: {', '.join(meta['choices'])}")
    if meta["minimum"] is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(spec.name, f"got {value!r}; expected a finite number")
    low, high = meta["minimum"], meta["maximum"]
    too_low = value <= low if meta["exclusive_minimum"] else value < low
    if too_low or value > high:
        bracket = "(" if meta["exclusive_minimum"] else "["
        raise ConfigError(spec.name, f"got {value!r}; allowed range {bracket}{low:g}, {high:g}]")
