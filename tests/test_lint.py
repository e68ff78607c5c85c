"""ruff (configured in pyproject.toml: pyflakes, pycodestyle, bugbear, import order) finds nothing."""
from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    if find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install ruff, or pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"ruff check . found problems (`ruff check --fix .` fixes the [*] ones):\n"
                    f"{proc.stdout}{proc.stderr}", pytrace=False)
