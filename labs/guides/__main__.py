"""``python -m labs.guides [docs|notebooks|all]``: regenerate guides and/or notebooks."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from labs.guides.markdown import write_all
from labs.guides.notebooks import lab_script
from labs.runtime.spec import all_specs

ROOT = Path(__file__).resolve().parents[2]


def write_notebooks(root: Path = ROOT) -> list[Path]:
    """notebooks/<lab>.py from the specs, then the paired .ipynb (outputs empty)."""
    import jupytext

    out = []
    for spec in all_specs():
        py = root / "notebooks" / f"{spec.name}.py"
        py.parent.mkdir(parents=True, exist_ok=True)
        py.write_text(lab_script(spec))
        nb = jupytext.read(py)
        # Stable cell ids (nbformat ≥ 4.5 wants one per cell): regenerating changes nothing
        # that the specs did not change.
        for i, cell in enumerate(nb.cells):
            cell["id"] = hashlib.sha256(f"{spec.name}:{i}".encode()).hexdigest()[:8]
        jupytext.write(nb, py.with_suffix(".ipynb"), fmt="ipynb")
        out += [py, py.with_suffix(".ipynb")]
    return out


def main(argv: list[str]) -> None:
    what = argv[0] if argv else "all"
    if what in ("docs", "all"):
        for p in write_all(ROOT):
            print(p.relative_to(ROOT))
    if what in ("notebooks", "all"):
        for p in write_notebooks():
            print(p.relative_to(ROOT))


if __name__ == "__main__":
    main(sys.argv[1:])
