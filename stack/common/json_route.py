"""Routes that take a JSON body and plain path parameters: the common case, by a shorter path.

Every hop between the services is a POST of one small JSON object to a route that takes one
pydantic model, or a GET or PUT naming a job in its path. For that, FastAPI's request handler
parses the content type with the email package, parses the query string, solves the
dependencies under an exit stack, decodes the body with the json module and validates the
Python objects: about a third of a small route's CPU (validation-service's POST /validate,
in-process: 104 → 72 µs a request, issue 19).

`JSONBodyRoute` takes the short path only for path parameters declared plain `str` (they arrive
as one), a JSON content type and a body pydantic validates (`model_validate_json`: decoded and
validated in one pass), and answers as FastAPI's handler does: the same response field,
validation and serialiser. Anything else — a route with other parameters or dependencies, a
constrained or converted path parameter, another content type, a body that fails validation —
goes to FastAPI's handler, with the body already read, so every refusal is FastAPI's own (and
the kit's problem details around it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
# Parameters FastAPI fills from the request itself (Request, Response, BackgroundTasks, ...).
_SPECIAL_PARAMS = (
    "request",
    "websocket",
    "http_connection",
    "response",
    "background_tasks",
    "security_scopes",
)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a route takes, when the short path can give it: path parameters as they come, and
    at most one pydantic model as the JSON body."""

    path: tuple[str, ...]
    body: str | None
    model: type[BaseModel] | None


class JSONBodyRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        full: Handler = super().get_route_handler()
        shape = _short_path(self)
        if shape is None:
            return full
        endpoint, path, body, model = self.endpoint, shape.path, shape.body, shape.model
        status = self.status_code or 200
        answer = self._answer

        async def handler(request: Request) -> Response:
            params = request.path_params
            kwargs: dict[str, Any] = {name: params[name] for name in path}
            if model is not None:
                content_type = request.headers.get("content-type", "")
                if content_type.split(";", 1)[0].strip().lower() != "application/json":
                    return await full(request)
                try:
                    raw = await request.body()
                except Exception:  # a body that cannot be read: FastAPI words it (a 400)
                    return await full(request)
                try:
                    kwargs[body] = model.model_validate_json(raw)  # type: ignore[index]
                except ValidationError:
                    return await full(request)  # FastAPI words the 422 (the body is cached)
            result = await endpoint(**kwargs)
            if isinstance(result, Response):
                return result
            return answer(result, status)

        return handler

    def _answer(self, result: Any, status: int) -> Response:
        """The response FastAPI builds from an endpoint's return value: through the response
        field its return annotation declares (validated, then written by pydantic), else
        through `jsonable_encoder` and a JSONResponse."""
        field = self.response_field
        if field is None:
            return JSONResponse(jsonable_encoder(result), status_code=status)
        value, errors = field.validate(result, {}, loc=("response",))
        if errors:
            raise ResponseValidationError(errors=errors, body=result)
        content = field.serialize_json(
            value,
            include=self.response_model_include,
            exclude=self.response_model_exclude,
            by_alias=self.response_model_by_alias,
            exclude_unset=self.response_model_exclude_unset,
            exclude_defaults=self.response_model_exclude_defaults,
            exclude_none=self.response_model_exclude_none,
        )
        return Response(content, status_code=status, media_type="application/json")


def _short_path(route: APIRoute) -> _Shape | None:
    """The shape of a coroutine route that takes plain `str` path parameters and at most one
    pydantic model as its body, and nothing else FastAPI would solve, answered with FastAPI's
    default JSON response; else None (FastAPI's handler serves it)."""
    dependant = route.dependant
    if (
        dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.dependencies
        or len(dependant.body_params) > 1
        or not 200 <= (route.status_code or 200) < 300
        or route.status_code in (204, 205)
        or not isinstance(route.response_class, DefaultPlaceholder)
        or getattr(route, "_embed_body_fields", True)
        or any(getattr(dependant, f"{kind}_param_name", None) for kind in _SPECIAL_PARAMS)
        or not inspect.iscoroutinefunction(route.endpoint)
    ):
        return None
    for param in dependant.path_params:
        info = param.field_info
        # A path parameter arrives as a str: one declared plain `str` needs no validation.
        if info.annotation is not str or info.metadata or param.alias != param.name:
            return None
    model: type[BaseModel] | None = None
    body: str | None = None
    if dependant.body_params:
        annotation = dependant.body_params[0].field_info.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model, body = annotation, dependant.body_params[0].name
    if model is None and not dependant.path_params:
        return None  # nothing to shorten: no body to decode, no parameters to solve
    return _Shape(tuple(p.name for p in dependant.path_params), body, model)
