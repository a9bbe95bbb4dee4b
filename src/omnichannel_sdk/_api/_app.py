"""The service API (SPEC §11) as a Starlette app over the operations of :mod:`._routes`."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._service_settings import ApiSettings
from ._openapi import openapi_document
from ._operation import Operation
from ._problems import ApiProblem, from_exception, problem_response
from ._routes import OPERATIONS

if TYPE_CHECKING:
    from .._hub import Hub

__all__ = ["ServiceApi"]


class ServiceApi:
    """The API's Starlette app over one hub."""

    def __init__(self, hub: Hub, settings: ApiSettings) -> None:
        self.hub = hub
        self.settings = settings
        self._keys = [k.encode() for k in settings.keys]
        self.streams = 0
        """Event streams open now."""
        routes = [Route(op.path, self._endpoint(op), methods=[op.method]) for op in OPERATIONS]
        middleware = []
        if settings.cors_origins:
            middleware.append(Middleware(
                CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type", "idempotency-key", "last-event-id"]))
        self.app = Starlette(routes=routes, middleware=middleware,
                             exception_handlers={HTTPException: self._http_error})

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document of :data:`~._routes.OPERATIONS` (made once per process)."""
        return openapi_document()

    def authorized(self, request: Request) -> bool:
        """Whether the request carries one of the keys (every key compared, in constant time)."""
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        token = given.strip().encode("utf-8", "replace")
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(token, key)
        return found

    def _endpoint(self, op: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if op.auth and not self.authorized(request):
                return problem_response(ApiProblem(
                    401, "unauthorized", "give an API key: Authorization: Bearer <key>",
                    headers={"www-authenticate": 'Bearer realm="omnichannel"'}))
            try:
                return await op.handler(self, request)
            except Exception as exc:  # noqa: BLE001 - every error becomes a problem answer
                return problem_response(from_exception(exc))

        endpoint.__name__ = op.id
        return endpoint

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http")
        return problem_response(ApiProblem(status, code, "no such route" if status == 404 else None))
