"""The import rule, as setup.cfg's import-linter contracts state it: the tree keeps it, and an upward import
or a cycle breaks it (checked on a copy of the tree with one planted)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.processes import REPO_ROOT

PACKAGES = ("ocicat", "api", "indexer", "migrations")


def _lint(root: Path) -> subprocess.CompletedProcess:
    """import-linter over the packages under ``root`` (found first on the path), with the repository's contracts."""
    command = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", command, "--no-cache", "--no-logo", str(REPO_ROOT / "setup.cfg")],
                          cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True,
                          timeout=120)


def test_the_tree_keeps_every_contract():
    result = _lint(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, planted, broken", [
    ("ocicat/accounts.py", "import indexer.registry", "ocicat is not allowed to import indexer"),
    ("api/schemas.py", "import indexer.helm", "api is not allowed to import indexer"),
    ("ocicat/oci/names.py", "import ocicat.config", "ocicat.oci is not allowed to import ocicat.config"),
    ("indexer/bus/protocol.py", "import indexer.bus.settle", "indexer.bus.protocol is not allowed to import"),
    ("indexer/registry.py", "import indexer.worker", "indexer.registry is not allowed to import indexer.worker"),
])
def test_an_upward_import_breaks_a_contract(tmp_path, module, planted, broken):
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    path = tmp_path / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    result = _lint(tmp_path)
    assert result.returncode == 1 and broken in result.stdout, result.stdout + result.stderr
