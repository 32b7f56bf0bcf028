"""Convex's HTTP API on the deployment URL (reference/wire-protocol.md §1, §7).

Routes
------
* ``POST /api/query`` | ``/api/mutation`` | ``/api/action`` — ``{"path", "args", "format"}``;
  ``args`` is an object (the legacy Python client) or a one-element array (the npm client).
  ``GET /api/query?path=..&args=<JSON>&format=..`` too.
* ``POST /api/function`` — any kind of public function.
* ``POST /api/run/<module segments>/<export>`` — ``{"args", "format"?}``; clean JSON by default.
* ``POST /api/query_ts`` → ``{"ts"}``; ``POST /api/query_at_ts`` — a query body plus ``"ts"``:
  this backend keeps no old snapshots, so it answers while no commit has happened since ``ts``
  and otherwise says so (``{"code": "SnapshotTooOld"}``, 400): call ``query_ts`` again.
* ``POST /api/query_batch`` — ``{"queries": [...]}`` → ``{"results": [...]}``, all at one snapshot.
* ``GET /instance_name``, ``/instance_version``, ``/version``; ``POST /echo``.

Bodies: success ``{"status": "success", "value", "logLines"}``; a function's failure is HTTP 200
with ``{"status": "error", "errorMessage", "errorData"?, "logLines"}`` (a ``ConvexError``'s data
in ``errorData``; every other message redacted when the backend redacts errors). A request
refused before any function runs is Convex's ``{"code", "message"}`` with its status: 400 (bad
body, path, format), 401 (a bad ``Authorization`` header or token). ``format`` absent means clean
JSON, as for current clients (the official ones always send ``convex_encoded_json``). Only
public functions are reachable; ``Authorization: Bearer <jwt>`` is verified against
``app.auth``'s providers. Functions run in a worker thread.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from convex_lab.context import NO_AUTH, Auth
from convex_lab.errors import BackendClosedError, ConvexLabError
from convex_lab.server.wire import (
    CLEAN,
    ENCODED,
    STATUS,
    call,
    decode_args,
    encode,
    function_path,
    refusal,
    result_format,
    ts_from_wire,
    ts_to_wire,
)

if TYPE_CHECKING:
    from convex_lab.auth.verify import VerifiedToken
    from convex_lab.backend import Backend

VERSION = "convex_lab-1"
MAX_BODY_BYTES = 16 * 1024 * 1024


def auth_from_header(backend: Backend, header: str | None) -> Auth:
    """``Authorization: Bearer <jwt>`` → the verified identity (a refusal 401 if not)."""
    if header is None:
        return NO_AUTH
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise refusal("Authorization must be 'Bearer <jwt>' (admin keys are not used by "
                        "convex_lab: the notebook is the deployment's admin).",
                        code="InvalidAuthHeader")
    return auth_from_token(backend, token.strip())


def verified_token(backend: Backend, token: str) -> VerifiedToken:
    """``backend.verify_token`` with the API's refusal codes (401 for what does not verify)."""
    try:
        return backend.verify_token(token)
    except BackendClosedError:
        raise
    except ConvexLabError as e:
        code = e.code if STATUS.get(e.code) == 401 else "Unauthenticated"
        raise refusal(str(e), code=code) from None


def auth_from_token(backend: Backend, token: str) -> Auth:
    return Auth(verified_token(backend, token).identity)


def _error(e: ConvexLabError) -> JSONResponse:
    return JSONResponse({"code": e.code, "message": str(e)}, status_code=STATUS.get(e.code, 400))


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise refusal("The request body is over 16 MiB, Convex's limit for the API.",
                        code="RequestTooLarge")
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise refusal(f"The body is not JSON: {e}", code="BadJsonBody") from None
    except RecursionError:
        raise refusal("The body nests values deeper than Convex allows (64 levels).",
                      code="BadJsonBody") from None
    if not isinstance(body, dict):
        raise refusal("The body must be a JSON object such as {\"path\": \"messages:list\", "
                        "\"args\": {}}.", code="BadJsonBody")
    return body


def _udf_response(backend: Backend, body: dict[str, Any], kind: str | None, auth: Auth,
                  default_format: str, *, path: Any = None, snapshot: int | None = None,
                  ) -> dict[str, Any]:
    """Run one function call of a request body → Convex's UdfResponse."""
    fmt = result_format(body.get("format"), default_format)
    args = decode_args(body.get("args"))
    outcome = call(backend, function_path(backend, body.get("path") if path is None else path),
                   args, kind, auth, snapshot=snapshot)
    if outcome.ok:
        return {"status": "success", "value": encode(outcome.value, fmt),
                "logLines": outcome.log_lines}
    return {"status": "error", **outcome.error_fields(fmt), "logLines": outcome.log_lines}


def routes(backend: Backend) -> list[Route]:
    store = backend.store

    def endpoint(kind: str | None) -> Any:
        async def handle(request: Request) -> Response:
            try:
                auth = auth_from_header(backend, request.headers.get("authorization"))
                if request.method == "GET":
                    q = request.query_params
                    try:
                        args = json.loads(q.get("args") or "{}")
                    except ValueError as e:
                        raise refusal(f"args is not JSON: {e}", code="BadJsonBody") from None
                    body: dict[str, Any] = {"path": q.get("path"), "args": args,
                                            "format": q.get("format")}
                else:
                    body = await _body(request)
                response = await run_in_threadpool(_udf_response, backend, body, kind, auth,
                                                   CLEAN)
            except ConvexLabError as e:
                return _error(e)
            return JSONResponse(response)
        return handle

    async def run(request: Request) -> Response:
        segments = [unquote(s) for s in request.path_params["path"].split("/") if s]
        if not segments:
            return _error(refusal("POST /api/run/<module>/<function>, e.g. "
                                    "/api/run/messages/list.", code="BadConvexFunctionIdentifier"))
        path = (("/".join(segments[:-1]) + ":" + segments[-1]) if len(segments) > 1
                else segments[0])
        try:
            auth = auth_from_header(backend, request.headers.get("authorization"))
            body = await _body(request)
            response = await run_in_threadpool(lambda: _udf_response(backend, body, None, auth,
                                                                      CLEAN, path=path))
        except ConvexLabError as e:
            return _error(e)
        return JSONResponse(response)

    async def query_ts(_request: Request) -> Response:
        return JSONResponse({"ts": ts_to_wire(store.visible_ts)})

    def at_ts(body: dict[str, Any], auth: Auth) -> dict[str, Any]:
        ts = ts_from_wire(body.get("ts"))
        token, now = store.pin()
        try:
            if now != ts:
                raise refusal(
                    "This snapshot is gone: convex_lab keeps no old snapshots, and the data "
                    "changed since query_ts. Call query_ts again (consistentQuery retries).",
                    code="SnapshotTooOld")
            return _udf_response(backend, body, "query", auth, CLEAN, snapshot=now)
        finally:
            store.end(token)

    async def query_at_ts(request: Request) -> Response:
        try:
            auth = auth_from_header(backend, request.headers.get("authorization"))
            body = await _body(request)
            response = await run_in_threadpool(at_ts, body, auth)
        except ConvexLabError as e:
            return _error(e)
        return JSONResponse(response)

    def batch(queries: Any, auth: Auth) -> dict[str, Any]:
        if not isinstance(queries, list):
            raise refusal("query_batch takes {\"queries\": [{\"path\", \"args\", "
                            "\"format\"}, ...]}.", code="BadJsonBody")
        token, ts = store.pin()  # every query at one snapshot
        try:
            return {"results": [_udf_response(backend, q if isinstance(q, dict) else {},
                                              "query", auth, CLEAN, snapshot=ts)
                                for q in queries]}
        finally:
            store.end(token)

    async def query_batch(request: Request) -> Response:
        try:
            auth = auth_from_header(backend, request.headers.get("authorization"))
            body = await _body(request)
            response = await run_in_threadpool(batch, body.get("queries"), auth)
        except ConvexLabError as e:
            return _error(e)
        return JSONResponse(response)

    async def instance_name(_request: Request) -> Response:
        return PlainTextResponse("convex-lab")

    async def version(_request: Request) -> Response:
        return PlainTextResponse(VERSION)

    async def echo(request: Request) -> Response:
        return Response(await request.body(),
                        media_type=request.headers.get("content-type") or "text/plain")

    return [
        Route("/api/query", endpoint("query"), methods=["GET", "POST"]),
        Route("/api/mutation", endpoint("mutation"), methods=["POST"]),
        Route("/api/action", endpoint("action"), methods=["POST"]),
        Route("/api/function", endpoint(None), methods=["POST"]),
        Route("/api/run/{path:path}", run, methods=["POST"]),
        Route("/api/query_ts", query_ts, methods=["POST"]),
        Route("/api/query_at_ts", query_at_ts, methods=["POST"]),
        Route("/api/query_batch", query_batch, methods=["POST"]),
        Route("/instance_name", instance_name, methods=["GET"]),
        Route("/instance_version", version, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/echo", echo, methods=["POST"]),
    ]


__all__ = ["ENCODED", "auth_from_header", "auth_from_token", "routes"]
