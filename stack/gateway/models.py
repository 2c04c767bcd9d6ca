"""The public API's request and response models (they shape the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from stack.common.settings import Settings
from stack.dataprime.generator import normalize_question

# The settings' defaults; `request_models(settings)` applies a deployment's own limits.
QUESTION_MAX_CHARS: int = Settings.model_fields["question_max_chars"].default
COMMENT_MAX_CHARS: int = Settings.model_fields["comment_max_chars"].default


def _question_field(max_chars: int) -> Any:
    return Field(
        min_length=1,
        max_length=max_chars,
        description="A question about logs or traces in plain language",
        examples=["errors from checkout in the last hour by status code"],
    )


def _comment_field(max_chars: int) -> Any:
    return Field(None, max_length=max_chars)


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = _question_field(QUESTION_MAX_CHARS)

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        # The generator's own rule: punctuation alone (e.g. "=(") leaves nothing to work with.
        if not normalize_question(value):
            raise ValueError("needs at least one word, e.g. 'errors from checkout'")
        return value.strip()


class Issue(BaseModel):
    message: str
    line: int
    column: int


class Validation(BaseModel):
    valid: bool
    errors: list[Issue] = []
    warnings: list[Issue] = []
    normalized: str | None = None


class QueryAccepted(BaseModel):
    id: str
    status: Literal["queued"]
    query: str
    intent: str
    confidence: float
    explanation: str
    source: str
    cached: bool
    validation: Validation
    trace_id: str | None = Field(None, description="this question's trace (GET /api/traces/{id})")


class QueryStatus(BaseModel):
    id: str
    status: Literal["queued", "processing", "done", "failed"]
    question: str | None = None
    query: str | None = None
    intent: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: float | None = None
    completed_at: float | None = None


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5, description="1 (useless) to 5 (exactly right)")
    comment: str | None = _comment_field(COMMENT_MAX_CHARS)


def request_models(settings: Settings) -> tuple[type[QuestionIn], type[FeedbackIn]]:
    """`QuestionIn` and `FeedbackIn` with the length limits `settings` configure (the same
    classes when they are the defaults; otherwise subclasses of the same name and schema)."""
    question: type[QuestionIn] = QuestionIn
    feedback: type[FeedbackIn] = FeedbackIn
    if settings.question_max_chars != QUESTION_MAX_CHARS:
        question = create_model(
            "QuestionIn",
            __base__=QuestionIn,
            __module__=__name__,
            question=(str, _question_field(settings.question_max_chars)),
        )
    if settings.comment_max_chars != COMMENT_MAX_CHARS:
        feedback = create_model(
            "FeedbackIn",
            __base__=FeedbackIn,
            __module__=__name__,
            comment=(str | None, _comment_field(settings.comment_max_chars)),
        )
    return question, feedback


class FeedbackOut(BaseModel):
    id: int
    job_id: str
    rating: int


class HistoryItem(BaseModel):
    job_id: str
    question: str
    query: str
    intent: str
    status: str
    error: str | None = None
    attendee: str | None = None
    rating: int | None = None
    created_at: float
    completed_at: float | None = None
    trace_id: str | None = None


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    page: int
    page_size: int
    total: int


class ServiceHealth(BaseModel):
    status: Literal["ready", "unavailable"]
    detail: str | None = None
    url: str


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    services: dict[str, ServiceHealth]


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    service: str | None = None
    errors: list[dict[str, Any]] | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (400, 401, 403, 404, 413, 422, 429, 502, 503, 504)
}
