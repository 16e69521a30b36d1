"""Who is looking at the web view: sessions in signed cookies, a CSRF token per session,
failed logins limited per user name and per address, and the page errors every route raises."""

from __future__ import annotations

import hmac
import logging
import secrets
import time

import limits
from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from shared.ratelimit import MovingWindow, retry_after

from services.reports.settings import ReportsSettings
from services.reports.web.users import User, UsersStore

log = logging.getLogger("nqt.reports.web")
COOKIE = "nqt_ui"
PATH = "/ui"


class PageError(Exception):
    """An HTML error page: what went wrong, in Vietnamese, with its HTTP status."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class LoginRequired(Exception):
    """No valid session (or a password to change first): the route sends the browser to `to`."""

    def __init__(self, to: str):
        self.to = to


class Sessions:
    """A session is a cookie signed with the secret, dated, holding the user's name, the
    user's session number (a password change ends older sessions) and the CSRF token."""

    def __init__(self, settings: ReportsSettings):
        secret = settings.ui_secret.get_secret_value() if settings.ui_secret else None
        if secret is None:
            log.warning("NQT_UI_SECRET is not set: web sessions are signed with a key of this process only")
        self.serializer = URLSafeTimedSerializer(secret or secrets.token_urlsafe(32), salt="nqt-ui-session")
        self.max_age = int(settings.ui_session_hours * 3600)
        self.secure = settings.ui_cookie_secure

    def read(self, request: Request) -> dict:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return {}
        try:
            data = self.serializer.loads(raw, max_age=self.max_age)
        except BadSignature:  # altered, or signed with another secret, or too old
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, response: Response, data: dict) -> None:
        response.set_cookie(COOKIE, self.serializer.dumps(data), max_age=self.max_age, path=PATH, httponly=True,
                            samesite="lax", secure=self.secure)

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax", secure=self.secure)

    def csrf(self, request: Request) -> tuple[str, dict]:
        """This browser's CSRF token, and the session that carries it (a new one if it had none)."""
        data = self.read(request)
        if not data.get("c"):
            data = {**data, "c": new_token()}
        return data["c"], data


def new_token() -> str:
    return secrets.token_urlsafe(24)


def check_csrf(session: dict, form_token: object) -> None:
    """A form posted from a page of this session carries its token; anything else is refused."""
    token = session.get("c")
    if not (token and isinstance(form_token, str) and hmac.compare_digest(token, form_token)):
        raise PageError(403, "Biểu mẫu đã hết hiệu lực hoặc không phải từ trang này. Hãy tải lại trang và gửi lại.")


async def viewer(request: Request, sessions: Sessions, users: UsersStore, *, changing_password: bool = False) -> User:
    """The signed-in user of a request; LoginRequired when there is none, or when the user must
    change the one-time password first."""
    data = sessions.read(request)
    doc = await users.get(data["u"]) if isinstance(data.get("u"), str) else None
    user = User.of(doc) if doc else None
    if user is None or data.get("s") != user.session:
        raise LoginRequired(f"{PATH}/login?next={_here(request)}")
    if user.must_change and not changing_password:
        raise LoginRequired(f"{PATH}/password")
    return user


def _here(request: Request) -> str:
    from urllib.parse import quote
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return quote(path, safe="")


def safe_next(value: str | None) -> str:
    """Where to go after login: only a page of the web view (never another site)."""
    if value and value.startswith(PATH + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return PATH + "/"


class LoginGuard:
    """Failed logins per user name and per client address, in moving windows of bounded memory."""

    def __init__(self, settings: ReportsSettings):
        self.rates = {what: limits.parse(rate) for what, rate in
                      (("user", settings.ui_login_rate_user), ("address", settings.ui_login_rate_address))}
        self.windows = {what: MovingWindow(limit=item.amount, seconds=item.get_expiry(), max_keys=settings.ui_login_keys)
                        for what, item in self.rates.items()}

    def check(self, name: str, address: str) -> None:
        """429 while either has failed too often; nothing is tried then."""
        now = time.monotonic()
        waits = [w for what, key in (("user", name), ("address", address))
                 if (w := self.windows[what].blocked(key, now)) is not None]
        if waits:
            wait = retry_after(max(waits))
            raise PageError(429, f"Đăng nhập sai quá nhiều lần. Hãy thử lại sau {wait} giây.",
                            headers={"Retry-After": str(wait)})

    def failed(self, name: str, address: str) -> None:
        now = time.monotonic()
        self.windows["user"].hit(name, now)
        self.windows["address"].hit(address, now)
