"""Routes whose one argument is a JSON body: the common case answered along a shorter path.

Every hop between the services is a POST of one small JSON object to a route that takes one
pydantic model. For that, FastAPI's request handler parses the content type with the email
package, parses the query string, solves the dependencies under an exit stack, decodes the body
with the json module and validates the Python objects: about a third of a small route's CPU
(validation-service's POST /validate, in-process: 104 → 72 µs a request, issue 19).

`JSONBodyRoute` takes the short path only for a JSON content type and a body pydantic validates
(`model_validate_json`: decoded and validated in one pass), and answers as FastAPI's handler
does: the same response field, validation and serialiser. Anything else — a route with other
parameters or dependencies, another content type, a body that fails validation — goes to
FastAPI's handler, with the body already read, so every refusal is FastAPI's own (and the kit's
problem details around it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
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


class JSONBodyRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        full: Handler = super().get_route_handler()
        model = _only_body_model(self)
        if model is None:
            return full
        endpoint = self.endpoint
        name = self.dependant.body_params[0].name
        status = self.status_code or 200
        answer = self._answer

        async def handler(request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            if content_type.split(";", 1)[0].strip().lower() != "application/json":
                return await full(request)
            try:
                value = model.model_validate_json(await request.body())
            except ValidationError:
                return await full(request)  # FastAPI words the 422 (the body is cached)
            result = await endpoint(**{name: value})
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


def _only_body_model(route: APIRoute) -> type[BaseModel] | None:
    """The pydantic model of a coroutine route whose one parameter is that model as the body,
    answered with FastAPI's default JSON response and no response model; else None."""
    dependant = route.dependant
    if (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.dependencies
        or len(dependant.body_params) != 1
        or not 200 <= (route.status_code or 200) < 300
        or route.status_code in (204, 205)
        or not isinstance(route.response_class, DefaultPlaceholder)
        or getattr(route, "_embed_body_fields", True)
        or any(getattr(dependant, f"{kind}_param_name", None) for kind in _SPECIAL_PARAMS)
        or not inspect.iscoroutinefunction(route.endpoint)
    ):
        return None
    annotation = dependant.body_params[0].field_info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None
