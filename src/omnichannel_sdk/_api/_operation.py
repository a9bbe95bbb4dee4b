"""One route of the service API, described: what the routes and the OpenAPI document are both
made from, and what its handlers are given (:class:`ApiContext`, so they need not know the app)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from .._service_settings import ApiSettings

if TYPE_CHECKING:
    from .._hub import Hub

__all__ = ["ApiContext", "Handler", "Operation", "Param"]


class ApiContext(Protocol):
    """What a handler may use of the app serving it (the :class:`~._app.ServiceApi`)."""

    hub: Hub
    settings: ApiSettings
    streams: int
    """Event streams open now."""

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document of the app's operations."""
        ...


Handler = Callable[[ApiContext, Request], Awaitable[Response]]


@dataclass(frozen=True)
class Param:
    """A documented path, query or header parameter."""

    name: str
    where: str  # path | query | header
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """One route of the API and what the OpenAPI document says about it."""

    method: str
    path: str
    id: str
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    body_required: bool = True
    status: int = 200
    answer: type[BaseModel] | None = None
    media_type: str = "application/json"
    problems: tuple[int, ...] = (401, 422)
    auth: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
