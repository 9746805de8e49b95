"""The layers import downwards only: lakehouse (and infra, the embedded parts it falls back on) < synthetic,
transforms < quality < assets < orchestration. Imports inside functions and under TYPE_CHECKING count too."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

RANK = {
    "lakehouse": 0,
    "infra": 0,
    "synthetic": 1,
    "transforms": 1,
    "quality": 2,
    "assets": 3,
    "orchestration": 4,
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(RANK)


def upward_imports() -> list[str]:
    return sorted(
        f"{path.relative_to(REPO)} imports {target}"
        for package, rank in RANK.items()
        for path in (REPO / package).rglob("*.py")
        for target in _imports(path)
        if RANK[target] > rank or (rank == 1 and target != package and RANK[target] == 1)
    )


def test_no_layer_imports_a_layer_above_it():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "gate.py"
    module.write_text("def f():\n    from orchestration.resources import LakeResource\n")
    assert _imports(module) == {"orchestration"}
