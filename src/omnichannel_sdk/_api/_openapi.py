"""The OpenAPI 3.1 document, generated from :data:`OPERATIONS` and the pydantic models they name
(the same models that validate requests and serialise answers)."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from ._routes import OPERATIONS
from ._schemas import Problem

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document served at ``GET /api/v1/openapi.json``."""
    inputs: list[type[BaseModel]] = [op.body for op in OPERATIONS if op.body is not None]
    outputs: list[type[BaseModel]] = [Problem, *(op.answer for op in OPERATIONS if op.answer is not None)]
    pairs = [(m, "validation") for m in dict.fromkeys(inputs)] + \
            [(m, "serialization") for m in dict.fromkeys(outputs)]
    refs, defs = models_json_schema(pairs, ref_template=_REF)  # type: ignore[arg-type]

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return dict(refs[(model, mode)])  # type: ignore[index]

    problem = {"application/problem+json": {"schema": ref(Problem, "serialization")}}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        operation: dict[str, Any] = {"operationId": op.id, "summary": op.summary}
        if op.params:
            operation["parameters"] = [
                {"name": p.name, "in": p.where, "required": p.required, "description": p.description,
                 "schema": p.schema} for p in op.params]
        if op.body is not None:
            operation["requestBody"] = {"required": op.body_required, "content": {
                "application/json": {"schema": ref(op.body, "validation")}}}
        if op.answer is not None:
            content = {op.media_type: {"schema": ref(op.answer, "serialization")}}
        else:
            content = {op.media_type: {"schema": op.extra.get("content", {})}}
        answer: dict[str, Any] = {"description": "OK", "content": content}
        if op.extra.get("no_content"):
            answer = {"description": "Done (no body)."}
        responses: dict[str, Any] = {str(op.status): answer}
        for status in op.problems:
            responses[str(status)] = {"description": _PROBLEMS[status], "content": problem}
        operation["responses"] = responses
        operation["security"] = [{"apiKey": []}] if op.auth else []
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "omnichannel_sdk service API", "version": __version__,
                 "description": "Conversations, messages, replies, dead letters and the event feed "
                                "of an `omnichannel serve` gateway."},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "One of `[api] keys`."}},
        },
    }


_PROBLEMS = {401: "No key, or a wrong one.", 404: "Unknown conversation, contact, proposal or merge.",
             409: "The reply window is closed, the contact opted out, or a merge proposal was "
                  "already decided or a merge already undone (see `code`).",
             413: "The body is too large.", 422: "Invalid input (see `errors`).",
             429: "Too many event streams open."}
