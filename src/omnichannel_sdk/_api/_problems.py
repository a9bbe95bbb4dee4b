"""Typed errors -> status codes and one problem+json shape, in one place."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.responses import Response

from .._errors import (
    ChannelError,
    ConfigurationError,
    MergeConflictError,
    NotFoundError,
    OmnichannelError,
    OptedOutError,
    PayloadError,
    UnsupportedFeatureError,
    WindowClosedError,
)
from ._schemas import FieldProblem, Problem

__all__ = ["ApiProblem", "from_exception", "from_validation", "problem_response"]

log = logging.getLogger("omnichannel_sdk.api")

_TITLES = {401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
           413: "Content Too Large", 422: "Unprocessable Content", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}

# the most specific class first: (type, status, code)
_MAPPING: list[tuple[type[BaseException], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (WindowClosedError, 409, "window_closed"),
    (OptedOutError, 409, "opted_out"),
    (MergeConflictError, 409, "merge_conflict"),
    (UnsupportedFeatureError, 422, "unsupported"),
    (PayloadError, 422, "invalid"),
    (ConfigurationError, 422, "invalid"),
    (ChannelError, 502, "channel"),
    (OmnichannelError, 503, "unavailable"),
]


class ApiProblem(Exception):
    """An answer that is a problem: raise it in a handler."""

    def __init__(self, status: int, code: str, detail: str | None = None,
                 errors: list[FieldProblem] | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


def problem_response(problem: ApiProblem) -> Response:
    """The problem+json answer."""
    body = Problem(type=f"https://omnichannel-sdk.dev/problems/{problem.code}",
                   title=_TITLES.get(problem.status, "Error"), status=problem.status,
                   detail=problem.detail, code=problem.code, errors=problem.errors)
    return Response(orjson.dumps(body.model_dump(mode="json")), problem.status,
                    headers=problem.headers, media_type="application/problem+json")


def from_validation(error: ValidationError, prefix: str = "") -> ApiProblem:
    """422 naming each invalid field (never echoing the input: it may hold a secret)."""
    errors = [FieldProblem(field=".".join(str(p) for p in (prefix, *e["loc"]) if p != "") or "body",
                           message=e["msg"]) for e in error.errors(include_input=False)]
    return ApiProblem(422, "invalid", "the request is invalid", errors)


def from_exception(exc: BaseException) -> ApiProblem:
    """The problem for any exception a handler let through."""
    if isinstance(exc, ApiProblem):
        return exc
    if isinstance(exc, ValidationError):
        return from_validation(exc)
    for kind, status, code in _MAPPING:
        if isinstance(exc, kind):
            if status >= 500:
                log.warning("API request failed: %s", type(exc).__name__)
            return ApiProblem(status, code, _detail(exc))
    log.exception("API request failed", exc_info=exc)
    return ApiProblem(500, "internal", "an internal error; it was logged")


def _detail(exc: BaseException) -> str:
    detail: Any = getattr(exc, "detail", None) or str(exc)
    return str(detail)[:500]
