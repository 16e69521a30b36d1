"""The web view's routes: each reads the request, checks who is asking, calls a function of
`views` (or `users`, `signoff`), and renders a template. Every page has a stable address;
errors are HTML pages in Vietnamese (`PageError`), a missing session a redirect to the login."""

from __future__ import annotations

from pathlib import Path
from typing import Callable
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shared.runtime import Runtime

from services.reports import words
from services.reports.handlers import ARCHIVED
from services.reports.service import BadRequest, ReportsService, parse_known_at
from services.reports.settings import ReportsSettings
from services.reports.web import notices, signoff, views
from services.reports.web.auth import PATH, LoginGuard, LoginRequired, PageError, Sessions, check_csrf, new_token, safe_next, viewer
from services.reports.web.users import ROLE_NAMES, BadInput, User, UsersStore, authenticate, change_password

HERE = Path(__file__).parent
MAX_FORM_BYTES = 16_384


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([HERE / "templates", HERE.parent / "templates"]),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(date=words.fmt_date, datetime=words.fmt_datetime, num=words.fmt_num, pct=lambda v: words.fmt_num(v, 1, fixed=True),
                       q=lambda v: quote(str(v), safe=""))
    env.globals.update(TASK_STATUS=words.TASK_STATUS, REPORT_STATUS=words.REPORT_STATUS,
                       INDICATOR_STATUS=words.INDICATOR_STATUS, ROLE_NAMES=ROLE_NAMES, achievement_pct=words.achievement_pct,
                       REPORT_STATES=signoff.STATUS_NAMES, FORMATS=ARCHIVED)
    return env


def mount(app: FastAPI, runtime: Runtime, service_for: Callable[[Runtime], ReportsService],
          settings: ReportsSettings) -> None:
    """Add the web view's routes, and the answers to its errors, to the reports app."""
    env, sessions, guard = _environment(), Sessions(settings), LoginGuard(settings)
    router = APIRouter(prefix=PATH, include_in_schema=False)

    def users() -> UsersStore:
        return UsersStore(runtime.db)

    def page(request: Request, template: str, user: User | None, http_status: int = 200, **context) -> HTMLResponse:
        token, session = sessions.csrf(request)
        body = env.get_template(template).render(user=user, csrf=token, path=request.url.path, **context)
        response = HTMLResponse(body, status_code=http_status, headers={"Cache-Control": "no-store"})
        if session != sessions.read(request):
            sessions.write(response, session)
        return response

    async def who(request: Request, *, everything: bool = False, **options) -> User:
        user = await viewer(request, sessions, users(), **options)
        if everything and user.role == "unit":
            raise PageError(403, "Trang này dành cho lãnh đạo và Văn phòng Thành ủy; tài khoản đơn vị "
                                 f"xem trang của đơn vị mình: {PATH}/units/{user.unit}")
        return user

    async def form(request: Request) -> dict:
        """The posted form, its CSRF token checked; 413 past a small bound."""
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            raise PageError(413, "Biểu mẫu quá lớn.")
        fields = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        check_csrf(sessions.read(request), fields.get("csrf"))
        return fields

    @app.exception_handler(PageError)
    async def on_page_error(request: Request, err: PageError) -> HTMLResponse:
        user = None
        try:
            user = await viewer(request, sessions, users(), changing_password=True)
        except LoginRequired:
            pass
        response = page(request, "error.html.j2", user, err.status, message=err.message)
        response.headers.update(err.headers)
        return response

    @app.exception_handler(LoginRequired)
    async def on_login_required(request: Request, err: LoginRequired) -> RedirectResponse:
        return RedirectResponse(err.to, status_code=303)

    @router.get("/login")
    async def login_form(request: Request, next: str = "") -> Response:
        return page(request, "login.html.j2", None, next=safe_next(next), message=None)

    @router.post("/login")
    async def login(request: Request) -> Response:
        fields = await form(request)
        name, address = fields.get("name", "").strip().lower(), request.client.host if request.client else "-"
        guard.check(name, address)
        user = await authenticate(users=users(), name=name, password=fields.get("password", ""))
        if user is None:
            guard.failed(name, address)
            return page(request, "login.html.j2", None, 401, next=safe_next(fields.get("next")),
                        message="Tên đăng nhập hoặc mật khẩu không đúng.")
        to = f"{PATH}/password" if user.must_change else safe_next(fields.get("next"))
        response = RedirectResponse(to, status_code=303)
        sessions.write(response, {"u": user.name, "s": user.session, "c": new_token()})
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        await form(request)
        response = RedirectResponse(f"{PATH}/login", status_code=303)
        sessions.clear(response)
        return response

    @router.get("/password")
    async def password_form(request: Request) -> Response:
        return page(request, "password.html.j2", await who(request, changing_password=True), message=None)

    @router.post("/password")
    async def password(request: Request) -> Response:
        user = await who(request, changing_password=True)
        fields = await form(request)
        try:
            user = await change_password(users=users(), user=user, current=fields.get("current", ""),
                                         new=fields.get("new", ""), repeat=fields.get("repeat", ""))
        except BadInput as err:
            return page(request, "password.html.j2", user, 400, message=str(err))
        response = RedirectResponse(f"{PATH}/", status_code=303)
        sessions.write(response, {"u": user.name, "s": user.session, "c": sessions.read(request)["c"]})
        return response

    @router.get("/")
    async def overview(request: Request) -> Response:
        user = await who(request)
        if user.role == "unit":
            return RedirectResponse(f"{PATH}/units/{user.unit}", status_code=303)
        return page(request, "overview.html.j2", user, **await views.overview(service=service_for(runtime)))

    @router.get("/programmes/{code}")
    async def programme(request: Request, code: str) -> Response:
        user = await who(request)
        return page(request, "programme.html.j2", user, **await views.programme(
            service=service_for(runtime), code=code, query=request.query_params, user=user))

    @router.get("/tasks/{task_id:path}")
    async def task(request: Request, task_id: str) -> Response:
        user = await who(request)
        return page(request, "task.html.j2", user, **await views.task(service=service_for(runtime), task_id=task_id,
                                                                       user=user))

    @router.get("/units")
    async def units(request: Request, report: str | None = None) -> Response:
        user = await who(request, everything=True)
        return page(request, "units.html.j2", user, **await views.units(service=service_for(runtime), report=report))

    @router.get("/units/{code}")
    async def unit(request: Request, code: str) -> Response:
        user = await who(request)
        if not user.sees_unit(code):
            raise PageError(403, f"Tài khoản của đơn vị {user.unit} chỉ xem được trang của đơn vị mình.")
        context = await views.unit(service=service_for(runtime), code=code, query=request.query_params)
        return page(request, "unit.html.j2", user, **context, notices=await notices.for_unit(settings=settings, unit=code))

    @router.get("/indicators")
    async def indicators(request: Request) -> Response:
        user = await who(request, everything=True)
        return page(request, "indicators.html.j2", user, **await views.indicators(service=service_for(runtime)))

    @router.get("/reports")
    async def reports(request: Request) -> Response:
        user = await who(request, everything=True)
        rows = await signoff.cycle_reports(service=service_for(runtime))
        return page(request, "reports.html.j2", user, rows=rows)

    @router.get("/reports/{cycle}")
    async def report(request: Request, cycle: str, known_at: str | None = None, done: str | None = None) -> Response:
        user = await who(request, everything=True)
        return page(request, "report.html.j2", user, **await _report(service_for(runtime), cycle, known_at),
                    done=done)

    @router.post("/reports/{cycle}/decision")
    async def decision(request: Request, cycle: str) -> Response:
        user = await who(request, everything=True)
        fields = await form(request)
        message = await signoff.decide(service=service_for(runtime), approve=app.state.approve,
                                       send_back=app.state.send_back, user=user, cycle_code=cycle,
                                       decision=fields.get("decision", ""), comment=fields.get("comment", ""))
        return RedirectResponse(f"{PATH}/reports/{cycle}?done={quote(message)}", status_code=303)

    app.include_router(router)


async def _report(service: ReportsService, cycle: str, known_at: str | None) -> dict:
    """One cycle's report: its status, and links to it in every format (as known at a chosen day)."""
    views.cycle_or_404(cycle)
    try:
        parse_known_at(known_at, service.clock)
    except BadRequest as err:
        raise PageError(400, f"Ngày “biết đến” không hợp lệ: {err}") from err
    rows = {r["cycle"]: r for r in await signoff.cycle_reports(service=service)}
    return {"cycle": cycle, "row": rows.get(cycle), "known_at": known_at or ""}

