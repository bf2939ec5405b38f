"""The import layers of pyproject.toml's [tool.importlinter] hold (lint-imports).

import-linter finds a package's modules by walking its folder, and retain's subpackages live
in top-level folders (features/, models/, ...) that pyproject.toml maps into ``retain.*``. So
the check runs on a copy of the sources laid out as the installed package is.
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def installed_layout(target: Path) -> Path:
    """The sources copied into ``target`` as the package ``retain`` is installed."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in sorted(config["package-dir"].items(), key=lambda item: item[0].count(".")):
        shutil.copytree(ROOT / folder, target / package.replace(".", "/"), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return target


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                           "lint_imports_command()", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


def test_the_import_layers_hold(tmp_path):
    result = lint_imports(installed_layout(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken" in result.stdout, result.stdout


def test_an_upward_import_breaks_a_layer(tmp_path):
    """The check is real: a feature module importing the serving layer is caught."""
    tree = installed_layout(tmp_path)
    module = tree / "retain" / "features" / "drift.py"
    module.write_text(module.read_text() + "\nfrom retain.serving.scoring import ModelPair  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode != 0 and "retain.features.drift -> retain.serving.scoring" in result.stdout
