"""conda.yaml (for `mlflow run` with conda) and pyproject.toml must list the same packages."""

import tomllib

import yaml

from tests.conftest import PROJECT_ROOT


def test_conda_env_and_package_metadata_list_the_same_dependencies():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    conda = yaml.safe_load((PROJECT_ROOT / "conda.yaml").read_text())
    pip_section = next(item["pip"] for item in conda["dependencies"] if isinstance(item, dict))
    assert sorted(pip_section) == sorted(project["dependencies"])


def test_packages_named_by_the_guide_are_dependencies():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    names = {requirement.split(">")[0].split("=")[0].split("<")[0] for requirement in project["dependencies"]}
    assert {"mlflow", "keras", "tensorflow", "optuna", "jinja2", "matplotlib"} <= names
