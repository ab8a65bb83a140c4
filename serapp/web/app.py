"""The web listening test's HTTP side (Starlette): every path under the test's token, else 404.

    GET  /TOKEN/                 the page (index.html, app.js, style.css: package data, no CDN)
    POST /TOKEN/api/join         {"name": "..."} or {"code": true} -> the rater's handle and state
    GET  /TOKEN/api/state        the rater's next trial (X-Rater: handle)
    GET  /TOKEN/api/clip/TRIAL   the current trial's audio, a plain WAV
    POST /TOKEN/api/answer       {"trial", "label" | "skip", "response_ms", "replays"}

Bodies are bounded and checked (serapp.web.limits, serapp.web.raters.parse_answer); each rater,
and each address asking to join, is rate limited (429 with Retry-After). Blocking work (files,
fsync, decoding) runs in worker threads, one rater's requests at a time.
"""

from __future__ import annotations

import hmac
import math
from importlib import resources

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from serapp.labels import emotion_color
from serapp.web.limits import BodyError, KeyedBuckets, read_json
from serapp.web.raters import SKIP_REASONS, Refused, WebTest

WORKERS = 128
STATIC = {"": ("index.html", "text/html; charset=utf-8"), "app.js": ("app.js", "text/javascript; charset=utf-8"),
          "style.css": ("style.css", "text/css; charset=utf-8")}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "media-src 'self' blob:; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def static_files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("serapp.web") / "static"
    return {route: ((folder / name).read_bytes(), kind) for route, (name, kind) in STATIC.items()}


def _error(status: int, message: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def build_app(test: WebTest, token: str, join_rate: tuple[float, float] = (60, 2)) -> Starlette:
    files = static_files()
    # worker threads for files and fsync: one per rater answering at once (anyio's default is 40), so
    # a room of raters' fsyncs go to the disk together rather than queue
    limiter: list = []

    async def in_thread(func, *args):
        if not limiter:
            limiter.append(anyio.CapacityLimiter(WORKERS))
        return await anyio.to_thread.run_sync(func, *args, limiter=limiter[0])

    joins = KeyedBuckets(*join_rate)
    not_found = PlainTextResponse("not found", status_code=404)

    def guarded(endpoint, method: str = "GET"):
        """The token checked first (wrong or missing: 404, the same as a path that is not there,
        whatever the method), then the method, then the endpoint; a refusal is its status and
        line, anything unforeseen one logged line."""
        async def run(request):
            if not hmac.compare_digest(request.path_params.get("token", "").encode(), token.encode()):
                return PlainTextResponse("not found", status_code=404)
            if request.method not in (method, "HEAD" if method == "GET" else method):
                return _error(405, f"use {method} here")
            try:
                return await endpoint(request)
            except _Slow as exc:
                return _error(429, str(exc), retry_after=exc.wait)
            except (Refused, BodyError) as exc:
                return _error(exc.status, str(exc))
            except Exception as exc:  # a bug: one line in the log, no traceback, no detail to the browser
                test.log(f"internal error: {type(exc).__name__} in {endpoint.__name__}")
                return _error(500, "the server failed on this request")
        return run

    def limited(rater) -> None:
        wait = rater.bucket.take()
        if wait:
            raise _Slow(wait)

    async def page(request):
        name = request.path_params.get("file", "")
        if name not in files:
            return not_found
        body, kind = files[name]
        return Response(body, media_type=kind)

    async def to_page(request):
        return RedirectResponse(f"/{token}/", status_code=308)

    async def join(request):
        client = request.client.host if request.client else "-"
        wait = joins.take(client)
        if wait:
            raise _Slow(wait)
        given = await read_json(request)
        if given == {"code": True}:
            name = None  # a code is handed out
        elif isinstance(given, dict) and set(given) == {"name"} and isinstance(given["name"], str):
            name = given["name"]
        else:
            raise Refused(400, "join with a name (text), or ask for a code")
        rater = await in_thread(test.join, name)
        state = await in_thread(test.state, rater)
        colors = {label: emotion_color(label) for label in test.plan.labels}
        return JSONResponse({"rater": rater.handle, "skip_reasons": list(SKIP_REASONS), "colors": colors, "state": state})

    async def state(request):
        rater = test.rater(request.headers.get("x-rater"))
        limited(rater)
        return JSONResponse(await in_thread(test.state, rater))

    async def answer(request):
        rater = test.rater(request.headers.get("x-rater"))
        limited(rater)
        given = await read_json(request)
        return JSONResponse(await in_thread(test.answer, rater, given))

    async def clip(request):
        rater = test.rater(request.headers.get("x-rater"))
        limited(rater)
        trial = request.path_params["trial"]
        if len(trial) > 64:
            raise Refused(404, "no such clip")
        return Response(await in_thread(test.clip, rater, trial), media_type="audio/wav")

    every = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes = [Route(path, endpoint, methods=every) for path, endpoint in (
        ("/{token}", guarded(to_page)),
        ("/{token}/api/join", guarded(join, "POST")),
        ("/{token}/api/state", guarded(state)),
        ("/{token}/api/answer", guarded(answer, "POST")),
        ("/{token}/api/clip/{trial}", guarded(clip)),
        ("/{token}/{file}", guarded(page)),
        ("/{token}/", guarded(page)),
    )]
    app = Starlette(routes=routes)
    app.add_middleware(_Headers)
    return app


class _Slow(Refused):
    def __init__(self, wait: float):
        super().__init__(429, "too many requests: slow down")
        self.wait = wait


class _Headers:
    """The page's security headers on every response (404s and errors too)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(k.lower().encode(), v.encode())
                                                                 for k, v in HEADERS.items()]
            await send(message)
        await self.app(scope, receive, with_headers)
