"""The packages import downward only: `stack` ← `scenarios` ← `labs` ← `workshop`.

Every import in every module counts, lazy ones inside functions included: a lazy upward
import is still a cycle, it only fails later. The test reads the source (ast), so it also
sees imports on paths the other tests never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYERS = ("stack", "scenarios", "labs", "workshop")  # lowest first


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def upward_edges(root: Path = REPO) -> list[str]:
    edges = []
    for rank, layer in enumerate(LAYERS):
        above = set(LAYERS[rank + 1 :])
        for path in sorted((root / layer).rglob("*.py")):
            for line, package in imports(path):
                if package in above:
                    edges.append(f"{path.relative_to(root)}:{line} imports {package}")
    return edges


def test_no_package_imports_a_higher_layer() -> None:
    edges = upward_edges()
    assert not edges, "imports that go up the layers:\n" + "\n".join(edges)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The check can fail: a lazy `workshop` import inside a `stack` function is caught."""
    for layer in LAYERS:
        (tmp_path / layer).mkdir()
    (tmp_path / "stack" / "ok.py").write_text("import os\nfrom stack import common\n")
    (tmp_path / "stack" / "bad.py").write_text(
        "def f():\n    from workshop.api import Gateway\n    return Gateway\n"
    )
    (tmp_path / "labs" / "fine.py").write_text("import scenarios.runner\nimport stack\n")
    assert upward_edges(tmp_path) == ["stack/bad.py:2 imports workshop"]


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_exists(layer: str) -> None:
    assert (REPO / layer / "__init__.py").is_file()
