"""A generated block inside a hand-written document: the text between two marker comments,
rewritten from a registry (docs/faults.md, docs/configuration.md) and drift-tested."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Markers:
    begin: str
    end: str

    def wrap(self, body: str) -> str:
        """The block as it belongs in the document, markers included."""
        return f"{self.begin}\n{body}\n{self.end}"

    def find(self, text: str) -> str | None:
        """The block now in `text`, markers included; None without markers."""
        if self.begin not in text or self.end not in text:
            return None
        start = text.index(self.begin)
        return text[start : text.index(self.end) + len(self.end)]

    def rewrite(self, doc: Path, body: str) -> bool:
        """Put `body` between the markers in `doc`; True when the file changed."""
        text = doc.read_text(encoding="utf-8")
        block = self.find(text)
        if block is None:
            raise SystemExit(f"{doc} has no generated-table markers")
        updated = text.replace(block, self.wrap(body))
        if updated == text:
            return False
        doc.write_text(updated, encoding="utf-8")
        return True
