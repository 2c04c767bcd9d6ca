"""Error and diagnostic types shared by the parser, validator and executor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Issue:
    """One diagnostic, positioned 1-based like an editor cursor."""

    message: str
    line: int
    column: int
    severity: Literal["error", "warning"] = "error"

    def to_dict(self) -> dict[str, object]:
        return {"message": self.message, "line": self.line, "column": self.column}


class QueryError(Exception):
    """A query that cannot be parsed, validated or executed.

    Carries a human message plus the 1-based line/column it refers to.
    """

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return f"{self.message} (line {self.line}, column {self.column})"

    def to_issue(self) -> Issue:
        return Issue(self.message, self.line, self.column, "error")

    def to_dict(self) -> dict[str, object]:
        return {"message": self.message, "line": self.line, "column": self.column}
