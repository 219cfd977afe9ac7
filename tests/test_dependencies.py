"""Every package that scaling and analysis import is a declared dependency or a named extra whose absence is
a one-line error (not one that arrives only with the test extra: `braceexpand` came with webdataset, so a
fresh `pip install -e .` failed every demo task)."""

import ast
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def imported_top_level_names() -> set[str]:
    names = set()
    for package in ("scaling", "analysis"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"scaling", "analysis", "__future__"}


def normalise(name: str) -> str:
    return name.lower().replace("_", "-")


def test_every_imported_package_is_a_declared_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for extra, reqs in project["optional-dependencies"].items() if extra != "test" for r in reqs]
    declared = {normalise(Requirement(r).name) for r in project["dependencies"] + extras}
    providers = metadata.packages_distributions()
    undeclared = {
        name: providers.get(name, ["(not installed)"])
        for name in imported_top_level_names()
        if not declared & {normalise(d) for d in providers.get(name, [])}
    }
    assert not undeclared, f"imported but not in [project] dependencies: {undeclared}"
