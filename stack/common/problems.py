"""RFC 9457 problem details: the one error shape every service answers with.

A stack trace never reaches a client: unexpected exceptions become a 500 problem and are logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("stack.problems")

PROBLEM_MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


class Problem(Exception):
    """Raise anywhere in a route to answer with a problem-details body."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        service: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        slug: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.service = service
        self.errors = errors
        self.headers = headers or {}
        self.slug = slug or self.title.lower().replace(" ", "-")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.service:
            body["service"] = self.service
        if self.errors:
            body["errors"] = self.errors
        return body


def problem_response(problem: Problem) -> Response:
    return Response(
        orjson.dumps(problem.body()),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


_WHERE = ("body", "query", "path", "header", "cookie")


def _parts(loc: tuple[Any, ...] | list[Any]) -> list[str]:
    # ("body", "rating") → ["rating"]: the field, without the part of the request it came in
    # (only the first item says that: ("body", "query") is a body field named `query`).
    return [str(p) for p in (loc[1:] if loc and loc[0] in _WHERE else loc)]


# A model's own check names the field it refuses, "kind: unknown fault kind …": that field,
# not the model (or the whole body), is the one the client has to fix.
_NAMED = re.compile(r"^([A-Za-z_]\w*(?:\.\w+)*): (.+)$", re.S)


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """pydantic's errors as `{"field", "reason"}`, worded for the client who sent them."""
    found = []
    for err in errors:
        kind = err.get("type", "")
        loc = err.get("loc", ())
        field = ".".join(_parts(loc)) or str(loc[0] if loc else "body")
        if kind == "json_invalid":
            # pydantic's location is (body, character offset): the field is the body.
            field = "body"
            where = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
            why = str((err.get("ctx") or {}).get("error", "")).strip()
            reason = "the body is not valid JSON" + (
                f" (at character {where}: {why})" if where is not None and why else ""
            )
        elif kind == "model_attributes_type" or kind == "dict_type":
            reason = "expected a JSON object (send Content-Type: application/json)"
        else:
            reason = str(err.get("msg", "invalid value"))
            if kind == "value_error":
                reason = reason.removeprefix("Value error, ")
                if named := _NAMED.match(reason):
                    field = ".".join([*_parts(loc), named[1]])
                    reason = named[2]
        found.append({"field": field, "reason": reason})
    return found


class _HasErrors(Protocol):
    def errors(self) -> Any: ...


def validation_problem(exc: _HasErrors) -> Problem:
    """A 422 naming every refused field: from FastAPI's request validation, or a model the
    route builds itself (pydantic's ValidationError)."""
    errors = field_errors(exc.errors())
    detail = "; ".join(f"`{e['field']}`: {e['reason']}" for e in errors) or "invalid request"
    return Problem(422, detail, errors=errors, slug="validation-error")


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> Response:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return problem_response(validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        return problem_response(
            Problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem(500, "an unexpected error occurred; see the service log"))
