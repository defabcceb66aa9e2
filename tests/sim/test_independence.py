"""sim/ is a separate GitHub: it imports nothing from prsteward (bot, ledger, policies)."""

from __future__ import annotations

import ast
from pathlib import Path

SIM = Path(__file__).resolve().parents[2] / "sim"
PRSTEWARD_PACKAGES = {"bot", "ledger", "policies"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_sim_imports_nothing_from_prsteward() -> None:
    files = sorted(SIM.rglob("*.py"))
    assert files
    offenders = {
        str(f.relative_to(SIM)): sorted(imported_packages(f) & PRSTEWARD_PACKAGES) for f in files
    }
    assert {name: found for name, found in offenders.items() if found} == {}
