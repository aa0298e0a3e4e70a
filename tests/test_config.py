"""The configuration: depths grammar, parameter validation, and MLproject/CLI drift."""

import dataclasses

import pytest
import yaml

from depth_experiments.config import ConfigError, SweepConfig, parse_depths
from tests.conftest import PROJECT_ROOT


@pytest.mark.parametrize("text, expected", [
    ("1,5,13", (1, 5, 13)),
    ("7", (7,)),
    ("1,5,9,...,37", (1, 5, 9, 13, 17, 21, 25, 29, 33, 37)),
    ("1,5,...,37", (1, 5, 9, 13, 17, 21, 25, 29, 33, 37)),
    ("1,5,...,13", (1, 5, 9, 13)),
    ("2,3,...,5", (2, 3, 4, 5)),
    (" 1, 5 , ..., 13 ", (1, 5, 9, 13)),
    ("1,2,4,...,10", (1, 2, 4, 6, 8, 10)),
    ("1,5,...,9", (1, 5, 9)),
])
def test_valid_depths(text, expected):
    assert parse_depths(text) == expected


@pytest.mark.parametrize("text", [
    "", "   ", ",", "1,,5", "a", "1.5", "1,5,x", "0", "-3", "1,0,5",
    "1,5,...,36",        # last number off the progression
    "5,1", "1,1", "1,5,5",  # not increasing, duplicates
    "5,5,...,9",         # zero step
    "9,5,...,1",         # decreasing progression
    "1,5,...", "...,5", "1,...,5", "...", "1,5,...,13,17", "1,5,...,...,13",
    "1,5,...,5", "1,5,...,1",
    "1,1001", "1,2,...,999",   # absurd depth, absurd count
])
def test_invalid_depths_name_the_parameter_and_the_forms(text):
    with pytest.raises(ConfigError) as error:
        parse_depths(text)
    message = str(error.value)
    assert message.startswith("depths: ")
    assert "1,5,9,...,37" in message and "\n" not in message


@pytest.mark.parametrize("name, value", [
    ("epochs", "0"), ("epochs", "-3"), ("epochs", "2.5"), ("epochs", "abc"),
    ("dataset", "nope"), ("learning_rate", "-1"), ("learning_rate", "0"),
    ("learning_rate", "nan"), ("learning_rate", "inf"), ("batch_size", "0"),
    ("width", "0"), ("validation_split", "1"), ("validation_split", "0"),
    ("activation", "softplusplus"), ("optimizer", "lbfgs"), ("residual", "maybe"),
    ("normalization", "group"), ("seed", "-1"), ("diagnostics_every", "-1"),
    ("initializer", "zeros"), ("probe_size", "0"), ("rerun", "2"),
])
def test_bad_values_get_one_line_naming_the_parameter(name, value):
    with pytest.raises(ConfigError) as error:
        SweepConfig.from_strings({name: value})
    assert str(error.value).startswith(f"{name}: ")
    assert "\n" not in str(error.value)


def test_unknown_parameter_is_rejected():
    with pytest.raises(ConfigError, match="^colour: unknown parameter"):
        SweepConfig.from_strings({"colour": "red"})


def test_strings_convert_to_typed_fields():
    config = SweepConfig.from_strings({"epochs": "3", "learning_rate": "1e-2",
                                       "residual": "true", "depths": "1,3,...,7"})
    assert (config.epochs, config.learning_rate, config.residual) == (3, 0.01, True)
    assert config.depth_list == (1, 3, 5, 7)
    assert SweepConfig.from_strings({}) == SweepConfig()


def test_identity_ignores_the_depth_list_and_rerun_but_not_training_settings():
    base = SweepConfig(dataset="digits")
    assert base.identity(5) == SweepConfig(dataset="digits", depths="5", rerun=True).identity(5)
    assert base.identity(5) != base.identity(9)
    assert base.identity(5) != SweepConfig(dataset="digits", learning_rate=0.01).identity(5)
    assert base.identity(5) != SweepConfig(dataset="digits", seed=1).identity(5)


def test_mlproject_main_parameters_match_the_dataclass():
    project = yaml.safe_load((PROJECT_ROOT / "MLproject").read_text())
    main = project["entry_points"]["main"]
    fields = {spec.name: spec for spec in dataclasses.fields(SweepConfig)}
    assert list(main["parameters"]) == list(fields)
    defaults = SweepConfig().as_params()
    for name, declared in main["parameters"].items():
        assert str(declared["default"]) == defaults[name], name
        assert f"--{name} {{{name}}}" in main["command"], name
    assert SweepConfig.from_strings({name: str(p["default"])
                                     for name, p in main["parameters"].items()}) == SweepConfig()


def test_cli_options_match_the_dataclass():
    from depth_experiments.cli import build_parser

    parser = build_parser()
    sweep = parser._subparsers._group_actions[0].choices["sweep"]
    destinations = {action.dest for action in sweep._actions} - {"help", "experiment_name"}
    assert destinations == {spec.name for spec in dataclasses.fields(SweepConfig)}
