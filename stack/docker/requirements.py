"""Write the image's requirement lists from pyproject.toml (run by stack/Dockerfile's builder).

A script file rather than a `RUN python - <<'PY'` heredoc: heredocs need Dockerfile syntax >= 1.4,
i.e. BuildKit's external frontend (a `# syntax=` pull from Docker Hub); plain engine 20.10 answers
"unknown instruction". tests/deploy/test_dockerfile.py runs this same file natively.

    python requirements.py [pyproject.toml]   # -> requirements.txt, requirements-lab.txt (cwd)
"""

from __future__ import annotations

import sys
import tomllib

# JupyterLab is not a project dependency (natively `workshop lab serve` uses the labs extra's
# notebook stack); the lab image serves it.
LAB_EXTRA = ["jupyterlab>=4.4,<5"]


def main(pyproject: str = "pyproject.toml") -> None:
    with open(pyproject, "rb") as fh:
        project = tomllib.load(fh)["project"]
    extras = project.get("optional-dependencies", {})
    with open("requirements.txt", "w") as fh:
        fh.write("\n".join(project["dependencies"]) + "\n")
    lab = extras.get("labs", []) + extras.get("load", []) + LAB_EXTRA
    with open("requirements-lab.txt", "w") as fh:
        fh.write("\n".join(lab) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:2])
