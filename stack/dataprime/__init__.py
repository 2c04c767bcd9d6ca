"""DataPrime domain package: parse/validate, generate from plain language, execute.

Public API (imported by the web services, Locust and tests):
    validate(query) -> ValidationResult          never raises
    generate(question) -> Generated              ValueError on empty question
    execute(query, *, preview=20) -> ExecutionResult   raises QueryError; NotExecuted (a
        QueryError subclass) for valid DataPrime the local engine does not run
    normalize_question(question) -> str          cache key
    INTENTS: tuple[str, ...]
"""

from .errors import Issue, QueryError
from .executor import ExecutionResult, NotExecuted, execute
from .generator import INTENTS, Generated, generate, normalize_question
from .validator import ValidationResult, validate

__all__ = [
    "INTENTS",
    "ExecutionResult",
    "Generated",
    "Issue",
    "NotExecuted",
    "QueryError",
    "ValidationResult",
    "execute",
    "generate",
    "normalize_question",
    "validate",
]
