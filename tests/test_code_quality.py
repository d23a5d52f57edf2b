"""House rules that a reviewer would otherwise check by hand: ruff lint and format,
mypy on the domain, and the domain never importing an adapter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff_lint_and_format() -> None:
    lint = run(str(BIN / "ruff"), "check", ".")
    assert lint.returncode == 0, lint.stdout
    fmt = run(str(BIN / "ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout


def test_mypy_on_the_domain() -> None:
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout


def test_the_domain_imports_no_adapter() -> None:
    pattern = re.compile(r"^\s*(from|import) (web|workers|scheduler|cli)([. ]|$)", re.M)
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "orchestrator").rglob("*.py")
        if pattern.search(p.read_text())
    ]
    assert offenders == []
