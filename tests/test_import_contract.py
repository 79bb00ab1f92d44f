"""The import contract (`.importlinter`): it passes on the tree, and it fails on an arrow that runs back up."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONFIG = ROOT / ".importlinter"
PACKAGES = ("ticketing", "backoffice", "payments", "bookings", "events", "core")

LAYERS = "Layers: wiring > back office > payments > bookings > events > foundation"
FOUNDATION = "The foundation (core) imports no app"
EVENTS = "events imports neither bookings nor payments"
BOOKINGS = "bookings never imports payments"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the packages under `root`, with the project's contract, without a cache."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / ".importlinter"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def verdicts(output: str) -> dict[str, str]:
    """Each contract's name -> "KEPT" or "BROKEN", from lint-imports' summary."""
    found = {}
    for line in output.splitlines():
        for verdict in ("KEPT", "BROKEN"):
            if line.endswith(f" {verdict}"):
                found[line.removesuffix(f" {verdict}")] = verdict
    return found


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the contract and the six packages' sources, to add a bad import to."""
    shutil.copy(CONFIG, tmp_path / ".importlinter")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_contract_lists_no_exceptions():
    config = configparser.ConfigParser()
    config.read(CONFIG)
    contracts = [section for section in config.sections() if section.startswith("importlinter:contract:")]
    assert len(contracts) == 4
    for section in contracts:
        assert "ignore_imports" not in config[section], section
    assert config["importlinter:contract:layers"]["layers"].split() == list(PACKAGES)


def test_the_tree_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts(result.stdout) == dict.fromkeys([LAYERS, FOUNDATION, EVENTS, BOOKINGS], "KEPT")


@pytest.mark.parametrize(("module", "source", "broken"), [
    ("events/upward.py", "from payments.services import event_cancel_and_refund\n", {LAYERS, EVENTS}),
    ("events/upward.py", "def later():\n    from bookings import models\n", {LAYERS, EVENTS}),
    ("bookings/upward.py", "import payments.models\n", {LAYERS, BOOKINGS}),
    ("core/upward.py", "from events.models import Event\n", {LAYERS, FOUNDATION}),
    ("payments/upward.py", "from backoffice import views\n", {LAYERS}),
    ("backoffice/upward.py", "from ticketing import api_urls\n", {LAYERS}),
])
def test_an_arrow_that_runs_back_up_breaks_the_contract(tree, module, source, broken):
    kept = lint_imports(tree)
    assert kept.returncode == 0, kept.stdout + kept.stderr  # the copy alone passes: the arrow is what fails

    (tree / module).write_text(source)
    result = lint_imports(tree)

    assert result.returncode == 1, result.stdout + result.stderr
    assert {name for name, verdict in verdicts(result.stdout).items() if verdict == "BROKEN"} == broken
    assert module.removesuffix(".py").replace("/", ".") in result.stdout
