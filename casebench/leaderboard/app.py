"""The web app: server-rendered pages (Jinja, no JavaScript needed) and a JSON API, over :mod:`.service`.

Pages: ``/`` (boards), ``/b/{benchmark}/{phase}`` (a board: ``?sort=conflict.macro_f1&order=desc&q=&zero_shot=``),
``/submit`` (the form), ``/submissions`` and ``/submissions/{id}`` (your own), ``/login``, ``/account``
(API tokens). Forms carry a CSRF token bound to the signed session cookie.

API (bearer tokens only for writes: ``Authorization: Bearer cbt_...``):

- ``GET /api/boards``, ``GET /api/boards/{benchmark}/{phase}``: boards as JSON (hidden scores left out);
- ``POST /api/submissions`` (multipart: ``file``, ``benchmark``, ``phase``, ``model_name``, ``model_revision``,
  ``model_url``, ``parameters``, ``trained_on``, ``description``; header ``Idempotency-Key``): 202 with the
  queued submission, 200 when the key was seen before, 4xx with ``{"error", "detail", "problems"}``;
- ``GET /api/submissions``, ``GET /api/submissions/{id}``: your submissions and their status;
- ``GET /api/submissions/{id}/results.json``: the (redacted for a test phase) results object, when visible;
- ``GET /api/me``, ``GET /healthz`` (the scoring pool's health and the queue; 503 when no scoring process
  is alive), ``GET /api/docs`` (Swagger UI, served from the ``swagger-ui-bundle`` package: no CDN).
"""

from __future__ import annotations

import logging
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from casebench.leaderboard.config import LeaderboardConfig
from casebench.leaderboard.security import RateLimiter, Sessions
from casebench.leaderboard.service import Leaderboard, ServiceError

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
FORM_OVERHEAD = 256 * 1024  # multipart framing and metadata fields beside the file
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
# Swagger UI sets inline styles on its elements; its scripts stay 'self' (served locally, no inline script)
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def templates():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["qs"] = lambda d: urlencode({k: v for k, v in d.items() if v not in (None, "", [])})
    env.filters["num"] = lambda v, d=3: "–" if v is None else f"{v:.{d}f}"
    env.filters["params"] = _fmt_params
    return env


def _fmt_params(n) -> str:
    if n is None:
        return "–"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, by Content-Length up front and by
    counting the bytes as they arrive (chunked uploads have no Content-Length)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._refuse(scope, send)
        seen = 0
        started = refused = False

        async def counting_receive():
            # Past the limit: answer 413 here and tell the app the client left. (Raising from receive would
            # surface as a 500: Starlette's middleware wraps receive in a task group.)
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    refused = True
                    if not started:
                        await self._refuse(scope, send)
                    return {"type": "http.disconnect"}
            return msg

        async def tracking_send(msg):
            nonlocal started
            if refused:
                return  # the 413 is out; whatever the app answers to the "disconnect" goes nowhere
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        await self.app(scope, counting_receive, tracking_send)

    async def _refuse(self, scope, send):
        mb = self.limit / 1024 / 1024
        body = orjson.dumps({"error": "too_large", "detail": f"the upload is larger than the limit of {mb:.1f} MB"
                                                             " (compress it with gzip: the server reads .jsonl.gz)"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def create_app(config: LeaderboardConfig, *, start_worker: bool = True, lb: Leaderboard | None = None,
               in_thread: bool = False) -> FastAPI:
    """The FastAPI app for ``config``; with ``start_worker`` and ``config.workers > 0`` the scoring worker
    runs in this process (``workers`` scoring processes; with ``in_thread``, in a thread instead: tests).
    ``workers = 0``: this process only queues; ``casebench leaderboard worker`` processes score."""
    lb = lb or Leaderboard(config)
    sessions = Sessions(config.secret(), config.session_max_age_s)
    limiter = RateLimiter(config.rate_limit.burst, config.rate_limit.per_minute)
    login_limiter = RateLimiter(10, 10)
    env = templates()
    state: dict = {}

    @asynccontextmanager
    async def lifespan(_app):
        if start_worker and (config.workers > 0 or in_thread):
            from casebench.leaderboard.worker import Worker

            worker = Worker(lb, processes=0 if in_thread else config.workers, name="server",
                            drain_s=config.drain_s).start()
            lb.on_accept = worker.wake
            state["worker"] = worker
        elif start_worker:  # no local scoring: still take back this server's jobs from an earlier run
            lb.requeue("server")
        yield
        if "worker" in state:
            await run_in_threadpool(state["worker"].stop)

    app = FastAPI(title=config.title, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    # the bundled Swagger UI (4.x) renders OpenAPI 3.0 documents only; nothing this API declares needs 3.1
    app.openapi_version = "3.0.3"
    app.state.lb = lb
    app.state.sessions = sessions
    app.state.worker = state
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    try:
        import swagger_ui_bundle

        app.mount("/api/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")
        docs_assets = True
    except ImportError:  # the leaderboard extra brings it; without it /api/docs says so
        docs_assets = False

    # -- sessions, headers, errors ---------------------------------------------------------------------

    @app.middleware("http")
    async def session_and_headers(request: Request, call_next):
        cookie = request.cookies.get(Sessions.cookie)
        sess = sessions.loads(cookie)
        request.state.session = sess or sessions.new()
        request.state.session_dirty = sess is None
        response = await call_next(request)
        if request.state.session_dirty:
            response.set_cookie(Sessions.cookie, sessions.dumps(request.state.session), httponly=True,
                                samesite="lax", secure=config.secure_cookies, max_age=config.session_max_age_s,
                                path="/")
        docs = request.url.path == "/api/docs" or request.url.path.startswith("/api/docs/")
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def error_response(request: Request, status: int, code: str, detail: str, problems=None, n_problems=None,
                       headers=None) -> Response:
        if is_api(request):
            body = {"error": code, "detail": detail}
            if problems:
                body["n_problems"], body["problems"] = n_problems or len(problems), problems
            return JSONResponse(body, status_code=status, headers=headers)
        return page(request, "error.html.j2", {"status": status, "code": code, "detail": detail,
                                               "problems": problems or [], "n_problems": n_problems},
                    status=status, headers=headers)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, e: ServiceError):
        return error_response(request, e.status, e.code, e.message, e.problems, e.n_problems, e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return error_response(request, e.status_code, code, str(e.detail), headers=getattr(e, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _gone(_request: Request, _e: ClientDisconnect):
        return Response(status_code=400)  # nobody reads it (or BodyLimit already answered 413)

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal_error", "internal error (logged on the server)")

    # -- helpers -----------------------------------------------------------------------------------------

    def viewer(request: Request):
        """The signed-in user (session cookie), or the bearer token's user on API GETs."""
        auth = request.headers.get("authorization", "")
        if is_api(request) and auth.lower().startswith("bearer "):
            user = lb.user_for_token(auth[7:].strip())
            if user is None:
                raise ServiceError(401, "invalid_token", "the API token is not valid (revoked or mistyped); "
                                   "create one on /account", headers={"WWW-Authenticate": "Bearer"})
            return user
        uid = request.state.session.get("uid")
        return lb.user(uid) if uid else None

    def api_user(request: Request):
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise ServiceError(401, "unauthenticated", "send your API token: 'Authorization: Bearer cbt_...' "
                                                       "(casebench submit reads it from CASEBENCH_TOKEN; create "
                                                       "one on /account)", headers={"WWW-Authenticate": "Bearer"})
        token = auth[7:].strip()
        user = lb.user_for_token(token)
        if user is None:
            raise ServiceError(401, "invalid_token", "the API token is not valid (revoked or mistyped); create one "
                                                     "on /account", headers={"WWW-Authenticate": "Bearer"})
        return user, token

    def rate_limit(key: str) -> None:
        ok, wait = limiter.allow(key)
        if not ok:
            raise ServiceError(429, "rate_limited", f"too many requests: wait {wait:.0f} s (at most "
                                                    f"{config.rate_limit.burst} at once, "
                                                    f"{config.rate_limit.per_minute:g} per minute)",
                               headers={"Retry-After": str(max(1, int(wait + 0.999)))})

    def page(request: Request, name: str, ctx: dict, status: int = 200, headers=None) -> HTMLResponse:
        sess = request.state.session
        try:
            user = viewer(request) if not is_api(request) else None
        except ServiceError:
            user = None
        base_url = config.base_url.rstrip("/") or str(request.base_url).rstrip("/")
        html = env.get_template(name).render(
            title=config.title, user=user, csrf=sessions.csrf_token(sess), boards=list(lb.boards.values()),
            request_path=request.url.path, static=False, base_url=base_url, **ctx)
        return HTMLResponse(html, status_code=status, headers=headers)

    def require_user(request: Request):
        user = viewer(request)
        if user is None:
            raise _Redirect("/login?" + urlencode({"next": request.url.path}))
        return user

    async def form_with_csrf(request: Request, **kw):
        form = await request.form(**kw)
        if not sessions.check_csrf(request.state.session, form.get("csrf")):
            raise ServiceError(403, "csrf_failed", "the form's security token is missing or stale: reload the page "
                                                   "and send it again")
        return form

    class _Redirect(Exception):
        def __init__(self, url):
            self.url = url

    @app.exception_handler(_Redirect)
    async def _redirect(_request: Request, e: _Redirect):
        return RedirectResponse(e.url, status_code=303)

    async def save_upload(file) -> Path:
        tmp = config.data_dir / "tmp" / uuid.uuid4().hex
        size = 0
        with open(tmp, "wb") as f:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > config.max_upload_bytes:
                    f.close()
                    tmp.unlink(missing_ok=True)
                    raise ServiceError(413, "too_large", f"the upload is larger than the limit of "
                                                         f"{config.max_upload_mb:g} MB (gzip it: .jsonl.gz is read)")
                f.write(chunk)
        return tmp

    def board_data(board, request: Request) -> dict:
        qp = request.query_params
        metrics = [m for m in (qp.get("metrics") or "").split(",") if m.strip()]
        return lb.board_view(board, sort=qp.get("sort"), order=qp.get("order"), q=qp.get("q", ""),
                             zero_shot=qp.get("zero_shot", ""), metrics=metrics)

    board_meta = lb.board_meta

    # -- pages -------------------------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz():
        worker = state.get("worker")
        pool = worker.health() if worker is not None else {"processes": 0, "ok": True,
                                                             "note": "no local scoring (workers = 0)"}
        try:
            queue = lb.queue_counts()
            db_ok = True
        except Exception:  # noqa: BLE001 - reported, not raised: this is the health check
            queue, db_ok = {}, False
        ok = bool(pool["ok"] and db_ok)
        return JSONResponse({"ok": ok, "database": db_ok, "pool": pool, "queue": queue},
                            status_code=200 if ok else 503)

    @app.get("/api/docs", include_in_schema=False)
    def api_docs():
        if not docs_assets:
            raise ServiceError(404, "not_found", "the API docs need the swagger-ui-bundle package (leaderboard extra)")
        html = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>' + config.title.replace("<", "")
                + ' · API</title><link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head><body>'
                '<div id="swagger-ui"></div><script src="/api/docs/assets/swagger-ui-bundle.js"></script>'
                '<script src="/static/api-docs.js"></script></body></html>')
        return HTMLResponse(html)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        return page(request, "index.html.j2", {"metas": [board_meta(b) for b in lb.boards.values()]})

    @app.get("/b/{benchmark}/{phase}", response_class=HTMLResponse)
    def board_page(request: Request, benchmark: str, phase: str):
        board = lb.board(f"{benchmark}/{phase}")
        user = viewer(request)
        data = board_data(board, request)
        pending = False
        if user is not None:
            pending = any(s.board == board.key and s.status in ("queued", "running")
                          for s in lb.submissions_of(user.id))
        return page(request, "board.html.j2", {"board": board_meta(board), "data": data, "pending": pending,
                                               "query": dict(request.query_params), "base": f"/b/{board.key}"})

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/"):
        return page(request, "login.html.j2", {"next": _safe_next(next), "failed": False})

    @app.post("/login")
    async def login(request: Request):
        form = await form_with_csrf(request)
        ip = request.client.host if request.client else "?"
        ok, wait = login_limiter.allow(f"login:{ip}")
        if not ok:
            raise ServiceError(429, "rate_limited", f"too many sign-in attempts: wait {wait:.0f} s",
                               headers={"Retry-After": str(max(1, int(wait + 0.999)))})
        user = await run_in_threadpool(lb.check_password, str(form.get("username", "")), str(form.get("password", "")))
        if user is None:
            return page(request, "login.html.j2", {"next": _safe_next(str(form.get("next", "/"))), "failed": True},
                        status=401)
        request.state.session = sessions.new(user.id)
        request.state.session_dirty = True
        return RedirectResponse(_safe_next(str(form.get("next", "/"))), status_code=303)

    @app.post("/logout")
    async def logout(request: Request):
        await form_with_csrf(request)
        request.state.session = sessions.new()
        request.state.session_dirty = True
        return RedirectResponse("/", status_code=303)

    @app.get("/submit", response_class=HTMLResponse)
    def submit_page(request: Request, board: str = ""):
        user = require_user(request)
        quotas = {b.key: lb.quota_left(user, b) for b in lb.boards.values()}
        return page(request, "submit.html.j2", {"selected": board, "quotas": quotas, "form": {},
                                                "max_mb": config.max_upload_mb})

    @app.post("/submit")
    async def submit_form(request: Request):
        user = require_user(request)
        rate_limit(f"user:{user.id}")
        form = await form_with_csrf(request, max_files=1, max_fields=30)
        file = form.get("file")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if file is None or isinstance(file, str) or not getattr(file, "filename", None):
            raise ServiceError(400, "no_file", "choose a predictions file (.jsonl or .jsonl.gz) to upload")
        tmp = await save_upload(file)
        try:
            sub, _ = await run_in_threadpool(lb.accept, user, fields.get("board", ""), tmp, file.filename, fields,
                                             fields.get("idempotency_key") or None)
        except ServiceError as e:
            if e.status != 422 and e.code not in ("bad_file_name", "board_closed"):
                raise  # an error page (413, 429, 404) rather than the form
            quotas = {b.key: lb.quota_left(user, b) for b in lb.boards.values()}
            return page(request, "submit.html.j2", {"selected": fields.get("board", ""), "quotas": quotas,
                                                    "form": fields, "error": e, "max_mb": config.max_upload_mb},
                        status=e.status)
        return RedirectResponse(f"/submissions/{sub.id}", status_code=303)

    @app.get("/submissions", response_class=HTMLResponse)
    def my_submissions(request: Request):
        user = require_user(request)
        subs = [lb.status_view(s, user) for s in lb.submissions_of(user.id)]
        return page(request, "submissions.html.j2", {"subs": subs})

    @app.get("/submissions/{sub_id}", response_class=HTMLResponse)
    def submission_page(request: Request, sub_id: int):
        user = require_user(request)
        sub = lb.own_submission(user, sub_id)
        view = lb.status_view(sub, user)
        return page(request, "submission.html.j2", {"sub": view, "board": board_meta(lb.board(sub.board))
                                                    if sub.board in lb.boards else None})

    @app.get("/account", response_class=HTMLResponse)
    def account(request: Request):
        user = require_user(request)
        return page(request, "account.html.j2", {"tokens": lb.tokens(user.id), "new_token": None})

    @app.post("/account/tokens")
    async def new_token(request: Request):
        user = require_user(request)
        form = await form_with_csrf(request)
        token = await run_in_threadpool(lb.create_token, user.id, str(form.get("name", ""))[:100])
        return page(request, "account.html.j2", {"tokens": lb.tokens(user.id), "new_token": token},
                    headers={"Cache-Control": "no-store"})

    @app.post("/account/tokens/{token_id}/revoke")
    async def revoke(request: Request, token_id: int):
        user = require_user(request)
        await form_with_csrf(request)
        lb.revoke_token(user.id, token_id)
        return RedirectResponse("/account", status_code=303)

    @app.post("/admin/reveal/{benchmark}/{phase}")
    async def reveal(request: Request, benchmark: str, phase: str):
        user = require_user(request)
        form = await form_with_csrf(request)
        if not user.is_admin:
            raise ServiceError(403, "forbidden", "only an organiser (admin) can reveal a phase")
        lb.reveal(f"{benchmark}/{phase}", user, hide=form.get("hide") == "1")
        return RedirectResponse(f"/b/{benchmark}/{phase}", status_code=303)

    # -- API ---------------------------------------------------------------------------------------------

    @app.get("/api/me")
    def api_me(request: Request):
        user, _ = api_user(request)
        return {"username": user.username, "is_admin": user.is_admin}

    @app.get("/api/boards")
    def api_boards():
        return [board_meta(b) for b in lb.boards.values()]

    @app.get("/api/boards/{benchmark}/{phase}")
    def api_board(request: Request, benchmark: str, phase: str):
        board = lb.board(f"{benchmark}/{phase}")
        data = board_data(board, request)
        return {"board": board_meta(board), **data}

    @app.post("/api/submissions")
    async def api_submit(request: Request):
        user, token = api_user(request)
        idem = request.headers.get("idempotency-key")
        if idem:  # a retry of an upload that was accepted: answer at once (no rate limit, body unread)
            prior = await run_in_threadpool(lb.by_idempotency_key, user.id, idem[:100])
            if prior is not None:
                return JSONResponse({**lb.status_view(prior, user), "url": f"/submissions/{prior.id}",
                                     "created": False}, status_code=200)
        rate_limit(f"token:{token}")
        form = await request.form(max_files=1, max_fields=30)
        file = form.get("file")
        if file is None or isinstance(file, str):
            raise ServiceError(400, "no_file", "send the predictions file as multipart field 'file'")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        board = lb.find_board(fields.get("benchmark", ""), fields.get("phase") or None)
        tmp = await save_upload(file)
        sub, created = await run_in_threadpool(lb.accept, user, board.key, tmp, file.filename, fields,
                                               request.headers.get("idempotency-key"))
        body = lb.status_view(sub, user)
        body["url"] = f"/submissions/{sub.id}"
        body["created"] = created
        return JSONResponse(body, status_code=202 if created else 200)

    @app.get("/api/submissions")
    def api_submissions(request: Request):
        user, _ = api_user(request)
        return [lb.status_view(s, user) for s in lb.submissions_of(user.id)]

    @app.get("/api/submissions/{sub_id}")
    def api_submission(request: Request, sub_id: int):
        user, _ = api_user(request)
        return lb.status_view(lb.own_submission(user, sub_id), user)

    @app.get("/api/submissions/{sub_id}/results.json")
    def api_results(request: Request, sub_id: int):
        user = viewer(request)
        sub = lb.submission(sub_id)
        if sub is None:
            raise ServiceError(404, "no_results", f"no visible results for submission {sub_id}")
        res = lb.results_view(sub, user)
        return Response(orjson.dumps(res, option=orjson.OPT_INDENT_2), media_type="application/json")

    return app


def _safe_next(url: str) -> str:
    """Only local paths after sign-in (no open redirect)."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else "/"


def make_app(config: LeaderboardConfig, **kw):
    """``create_app`` wrapped in the body-size limit (the ASGI app to serve)."""
    app = create_app(config, **kw)
    limited = BodyLimit(app, config.max_upload_bytes + FORM_OVERHEAD)
    limited.state = app.state  # for tests that reach the service through the app
    limited.fastapi = app
    return limited
